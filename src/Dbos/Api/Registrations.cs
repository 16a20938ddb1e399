using Dbos.Execution;

namespace Dbos;

/// <summary>A registered workflow that takes a <typeparamref name="TInput"/> and returns a <typeparamref name="TResult"/>.</summary>
/// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Workflow<TInput, TResult>
{
    private readonly WorkflowRegistration registration;

    internal Workflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    internal WorkflowRegistration Registration => registration;

    /// <summary>
    /// Starts the workflow and returns at once with a handle. Inside another workflow this starts a child workflow,
    /// recorded as a step of the parent.
    /// </summary>
    /// <param name="input">The workflow's input.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="DbosSerializationException">The input cannot be serialized; nothing was recorded.</exception>
    /// <exception cref="WorkflowConflictException">The ID is used by a workflow with another name.</exception>
    public async Task<WorkflowHandle<TResult>> StartAsync(TInput input, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, input, options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for its result.</summary>
    /// <param name="input">The workflow's input.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>The workflow's result.</returns>
    public Task<TResult> RunAsync(TInput input, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<TResult>(registration, input, options, cancellationToken);
}

/// <summary>A registered workflow without input that returns a <typeparamref name="TResult"/>.</summary>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Workflow<TResult>
{
    private readonly WorkflowRegistration registration;

    internal Workflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow).</summary>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle<TResult>> StartAsync(StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, null, options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for its result.</summary>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>The workflow's result.</returns>
    public Task<TResult> RunAsync(StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<TResult>(registration, null, options, cancellationToken);
}

/// <summary>
/// A registered step that takes a <typeparamref name="TInput"/> and returns a <typeparamref name="TResult"/>. Called inside
/// a workflow it is checkpointed; called anywhere else it simply runs.
/// </summary>
/// <typeparam name="TInput">The input's type.</typeparam>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Step<TInput, TResult>
{
    private readonly Func<TInput, CancellationToken, Task<TResult>> function;
    private readonly StepOptions options;

    internal Step(string name, Func<TInput, CancellationToken, Task<TResult>> function, StepOptions options)
    {
        Name = name;
        this.function = function;
        this.options = options;
    }

    /// <summary>The step's name, recorded with its result.</summary>
    public string Name { get; }

    /// <summary>Runs the step: checkpointed inside a workflow, directly elsewhere.</summary>
    /// <param name="input">The step's input.</param>
    /// <param name="cancellationToken">Signalled to the step's code (together with the workflow's cancellation).</param>
    /// <returns>The step's result.</returns>
    /// <exception cref="StepFailedException">Inside a workflow: the step failed after its retries.</exception>
    public Task<TResult> RunAsync(TInput input, CancellationToken cancellationToken = default)
    {
        var workflow = WorkflowExecution.Current;
        return workflow is null
            ? function(input, cancellationToken)
            : workflow.RunStepAsync(Name, ct => function(input, ct), options, cancellationToken);
    }
}

/// <summary>A registered step without input. Called inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Step<TResult>
{
    private readonly Func<CancellationToken, Task<TResult>> function;
    private readonly StepOptions options;

    internal Step(string name, Func<CancellationToken, Task<TResult>> function, StepOptions options)
    {
        Name = name;
        this.function = function;
        this.options = options;
    }

    /// <summary>The step's name, recorded with its result.</summary>
    public string Name { get; }

    /// <summary>Runs the step: checkpointed inside a workflow, directly elsewhere.</summary>
    /// <param name="cancellationToken">Signalled to the step's code (together with the workflow's cancellation).</param>
    /// <returns>The step's result.</returns>
    public Task<TResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var workflow = WorkflowExecution.Current;
        return workflow is null ? function(cancellationToken) : workflow.RunStepAsync(Name, function, options, cancellationToken);
    }
}

/// <summary>
/// A transaction registered on the application (the legacy style): it runs in the application database of
/// <see cref="DbosConfig.ApplicationDatabaseUrl"/>, as a durable step inside workflows and a plain transaction elsewhere.
/// </summary>
/// <typeparam name="TInput">The input's type.</typeparam>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public sealed class Transaction<TInput, TResult>
{
    private readonly Func<SqlDatasource> datasource;
    private readonly Func<TransactionContext, TInput, CancellationToken, Task<TResult>> body;
    private readonly TransactionOptions? options;

    internal Transaction(string name, Func<SqlDatasource> datasource, Func<TransactionContext, TInput, CancellationToken, Task<TResult>> body, TransactionOptions? options)
    {
        Name = name;
        this.datasource = datasource;
        this.body = body;
        this.options = options;
    }

    /// <summary>The transaction's name, recorded as its step's name.</summary>
    public string Name { get; }

    /// <summary>Runs the transaction: exactly once inside a workflow (a re-execution returns the recorded result).</summary>
    /// <param name="input">The transaction's input.</param>
    /// <param name="cancellationToken">Stops the transaction (rolling it back).</param>
    /// <returns>The transaction's result.</returns>
    /// <exception cref="StepFailedException">Inside a workflow: the transaction threw; it was rolled back and the error recorded.</exception>
    public Task<TResult> RunAsync(TInput input, CancellationToken cancellationToken = default) =>
        datasource().RunTransactionAsync(Name, (context, ct) => body(context, input, ct), options, cancellationToken);
}

/// <summary>A registered workflow that takes a <typeparamref name="TInput"/> and returns no value (its body returns <see cref="Task"/>).</summary>
/// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
/// <remarks>
/// Its recorded output is what the TypeScript SDK records for a function returning nothing: <c>null</c> in
/// <c>portable_json</c> (the configured format's null), and that SDK's <c>undefined</c> when a TypeScript client enqueued
/// it in its default format.
/// </remarks>
public sealed class VoidWorkflow<TInput>
{
    private readonly WorkflowRegistration registration;

    internal VoidWorkflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>
    /// Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow). Wait for it
    /// with <c>GetResultAsync&lt;object?&gt;()</c>, which returns null.
    /// </summary>
    /// <param name="input">The workflow's input.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle> StartAsync(TInput input, StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, input, options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for it to finish.</summary>
    /// <param name="input">The workflow's input.</param>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>A task that completes when the workflow has finished.</returns>
    public Task RunAsync(TInput input, StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<object?>(registration, input, options, cancellationToken);
}

/// <summary>A registered workflow without input that returns no value (its body returns <see cref="Task"/>).</summary>
/// <remarks>
/// Its recorded output is what the TypeScript SDK records for a function returning nothing: <c>null</c> in
/// <c>portable_json</c> (the configured format's null), and that SDK's <c>undefined</c> when a TypeScript client enqueued
/// it in its default format.
/// </remarks>
public sealed class VoidWorkflow
{
    private readonly WorkflowRegistration registration;

    internal VoidWorkflow(WorkflowRegistration registration) => this.registration = registration;

    /// <summary>The name the workflow is registered under.</summary>
    public string Name => registration.Name;

    /// <summary>
    /// Starts the workflow and returns at once with a handle (a child workflow when called inside a workflow). Wait for it
    /// with <c>GetResultAsync&lt;object?&gt;()</c>, which returns null.
    /// </summary>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops the start (not the workflow).</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle> StartAsync(StartOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (id, run) = await registration.Engine.StartForHandleAsync(registration, null, options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(registration.Engine, id) { StartedHere = run };
    }

    /// <summary>Starts the workflow and waits for it to finish.</summary>
    /// <param name="options">The workflow ID, timeout and other start options.</param>
    /// <param name="cancellationToken">Stops waiting (not the workflow).</param>
    /// <returns>A task that completes when the workflow has finished.</returns>
    public Task RunAsync(StartOptions? options = null, CancellationToken cancellationToken = default) =>
        registration.Engine.RunAsync<object?>(registration, null, options, cancellationToken);
}

/// <summary>
/// A registered step that takes a <typeparamref name="TInput"/> and returns no value. Called inside a workflow it is
/// checkpointed (its recorded output is the configured format's null); called anywhere else it simply runs.
/// </summary>
/// <typeparam name="TInput">The input's type.</typeparam>
public sealed class VoidStep<TInput>
{
    private readonly Func<TInput, CancellationToken, Task> function;
    private readonly StepOptions options;

    internal VoidStep(string name, Func<TInput, CancellationToken, Task> function, StepOptions options)
    {
        Name = name;
        this.function = function;
        this.options = options;
    }

    /// <summary>The step's name, recorded with its completion.</summary>
    public string Name { get; }

    /// <summary>Runs the step: checkpointed inside a workflow, directly elsewhere.</summary>
    /// <param name="input">The step's input.</param>
    /// <param name="cancellationToken">Signalled to the step's code (together with the workflow's cancellation).</param>
    /// <returns>A task that completes when the step has run (or was found already recorded).</returns>
    /// <exception cref="StepFailedException">Inside a workflow: the step failed after its retries.</exception>
    public Task RunAsync(TInput input, CancellationToken cancellationToken = default)
    {
        var workflow = WorkflowExecution.Current;
        return workflow is null
            ? function(input, cancellationToken)
            : workflow.RunStepAsync(Name, ct => function(input, ct), options, cancellationToken);
    }
}

/// <summary>A registered step without input that returns no value. Called inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
public sealed class VoidStep
{
    private readonly Func<CancellationToken, Task> function;
    private readonly StepOptions options;

    internal VoidStep(string name, Func<CancellationToken, Task> function, StepOptions options)
    {
        Name = name;
        this.function = function;
        this.options = options;
    }

    /// <summary>The step's name, recorded with its completion.</summary>
    public string Name { get; }

    /// <summary>Runs the step: checkpointed inside a workflow, directly elsewhere.</summary>
    /// <param name="cancellationToken">Signalled to the step's code (together with the workflow's cancellation).</param>
    /// <returns>A task that completes when the step has run (or was found already recorded).</returns>
    /// <exception cref="StepFailedException">Inside a workflow: the step failed after its retries.</exception>
    public Task RunAsync(CancellationToken cancellationToken = default)
    {
        var workflow = WorkflowExecution.Current;
        return workflow is null ? function(cancellationToken) : workflow.RunStepAsync(Name, function, options, cancellationToken);
    }
}

/// <summary>Turns the step forms users write (with or without a token, synchronous or not, with or without a result) into the one form steps run as.</summary>
internal static class StepDelegates
{
    public static Func<CancellationToken, Task<T>> Sync<T>(Func<CancellationToken, T> function, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(function, parameterName);
        RefuseTaskLike(typeof(T), parameterName);
        return ct =>
        {
            try
            {
                return Task.FromResult(function(ct));
            }
            catch (Exception ex)
            {
                return Task.FromException<T>(ex);
            }
        };
    }

    public static Func<CancellationToken, Task> SyncVoid(Action<CancellationToken> function, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(function, parameterName);
        return ct =>
        {
            try
            {
                function(ct);
                return Task.CompletedTask;
            }
            catch (Exception ex)
            {
                return Task.FromException(ex);
            }
        };
    }

    /// <summary>A synchronous step returning an awaitable would record the awaitable itself, not its result: refused.</summary>
    public static void RefuseTaskLike(Type type, string parameterName)
    {
        if (typeof(Task).IsAssignableFrom(type) || type == typeof(ValueTask) || (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            throw new ArgumentException(
                $"The step returns a {type.Name} from a synchronous delegate; DBOS would record the task, not its result. Return a Task or Task<T> (for a ValueTask, call .AsTask()).",
                parameterName);
        }
    }
}
