using Dbos.Execution;

namespace Dbos;

/// <summary>Packs the arguments of a workflow of several parameters with their declared types.</summary>
internal static class Arguments
{
    public static Serialization.PositionalArguments Of(WorkflowRegistration registration, params object?[] values) => new(values, registration.ArgumentTypes!);
}

/// <summary>A registered workflow that takes 2 arguments and returns a <typeparamref name="TResult"/>.</summary>
/// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
/// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Workflow<T1, T2, TResult>
{
    private readonly WorkflowRegistration registration;

    internal Workflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>
    /// Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow). The
    /// arguments are stored as the workflow's positional arguments.
    /// </summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="DbosSerializationException">An argument cannot be serialized; nothing was recorded.</exception>
    public async Task<WorkflowHandle<TResult>> StartAsync(T1 arg1, T2 arg2, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, Arguments.Of(registration, arg1, arg2), options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for its result.</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>The workflow's result.</returns>
    public Task<TResult> RunAsync(T1 arg1, T2 arg2, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<TResult>(registration, Arguments.Of(registration, arg1, arg2), options, cancellationToken);
}

/// <summary>A registered workflow that takes 2 arguments and returns no value.</summary>
/// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
/// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
public sealed class VoidWorkflow<T1, T2>
{
    private readonly WorkflowRegistration registration;

    internal VoidWorkflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow).</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle> StartAsync(T1 arg1, T2 arg2, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, Arguments.Of(registration, arg1, arg2), options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for it to finish.</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>A task that completes when the workflow has finished.</returns>
    public Task RunAsync(T1 arg1, T2 arg2, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<object?>(registration, Arguments.Of(registration, arg1, arg2), options, cancellationToken);
}

/// <summary>A registered workflow that takes 3 arguments and returns a <typeparamref name="TResult"/>.</summary>
/// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
/// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
/// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Workflow<T1, T2, T3, TResult>
{
    private readonly WorkflowRegistration registration;

    internal Workflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>
    /// Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow). The
    /// arguments are stored as the workflow's positional arguments.
    /// </summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="DbosSerializationException">An argument cannot be serialized; nothing was recorded.</exception>
    public async Task<WorkflowHandle<TResult>> StartAsync(T1 arg1, T2 arg2, T3 arg3, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, Arguments.Of(registration, arg1, arg2, arg3), options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for its result.</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>The workflow's result.</returns>
    public Task<TResult> RunAsync(T1 arg1, T2 arg2, T3 arg3, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<TResult>(registration, Arguments.Of(registration, arg1, arg2, arg3), options, cancellationToken);
}

/// <summary>A registered workflow that takes 3 arguments and returns no value.</summary>
/// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
/// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
/// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
public sealed class VoidWorkflow<T1, T2, T3>
{
    private readonly WorkflowRegistration registration;

    internal VoidWorkflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow).</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle> StartAsync(T1 arg1, T2 arg2, T3 arg3, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, Arguments.Of(registration, arg1, arg2, arg3), options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for it to finish.</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>A task that completes when the workflow has finished.</returns>
    public Task RunAsync(T1 arg1, T2 arg2, T3 arg3, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<object?>(registration, Arguments.Of(registration, arg1, arg2, arg3), options, cancellationToken);
}

/// <summary>A registered workflow that takes 4 arguments and returns a <typeparamref name="TResult"/>.</summary>
/// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
/// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
/// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
/// <typeparam name="T4">The type of the fourth argument; must be serializable.</typeparam>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Workflow<T1, T2, T3, T4, TResult>
{
    private readonly WorkflowRegistration registration;

    internal Workflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>
    /// Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow). The
    /// arguments are stored as the workflow's positional arguments.
    /// </summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="arg4">The fourth argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="DbosSerializationException">An argument cannot be serialized; nothing was recorded.</exception>
    public async Task<WorkflowHandle<TResult>> StartAsync(T1 arg1, T2 arg2, T3 arg3, T4 arg4, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, Arguments.Of(registration, arg1, arg2, arg3, arg4), options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for its result.</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="arg4">The fourth argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>The workflow's result.</returns>
    public Task<TResult> RunAsync(T1 arg1, T2 arg2, T3 arg3, T4 arg4, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<TResult>(registration, Arguments.Of(registration, arg1, arg2, arg3, arg4), options, cancellationToken);
}

/// <summary>A registered workflow that takes 4 arguments and returns no value.</summary>
/// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
/// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
/// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
/// <typeparam name="T4">The type of the fourth argument; must be serializable.</typeparam>
public sealed class VoidWorkflow<T1, T2, T3, T4>
{
    private readonly WorkflowRegistration registration;

    internal VoidWorkflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow).</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="arg4">The fourth argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle> StartAsync(T1 arg1, T2 arg2, T3 arg3, T4 arg4, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, Arguments.Of(registration, arg1, arg2, arg3, arg4), options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for it to finish.</summary>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="arg4">The fourth argument.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>A task that completes when the workflow has finished.</returns>
    public Task RunAsync(T1 arg1, T2 arg2, T3 arg3, T4 arg4, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<object?>(registration, Arguments.Of(registration, arg1, arg2, arg3, arg4), options, cancellationToken);
}
