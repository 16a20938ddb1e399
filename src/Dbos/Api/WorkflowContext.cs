using Dbos.Execution;

namespace Dbos;

/// <summary>
/// What a running workflow can do durably: run steps, sleep, read the clock and make GUIDs, each recorded so that a
/// re-execution after a crash sees the same results. Passed to every workflow body, and also available as
/// <see cref="Current"/> to code the body calls. Abstract so that workflow code can be tested with a fake.
/// </summary>
public abstract class WorkflowContext
{
    /// <summary>The context of the workflow running on this async flow, or null outside a workflow (and inside a step).</summary>
    public static WorkflowContext? Current => WorkflowExecution.Current;

    /// <summary>The ID of the running workflow.</summary>
    public abstract string WorkflowId { get; }

    /// <summary>The name the running workflow is registered under.</summary>
    public abstract string WorkflowName { get; }

    /// <summary>Signalled when the workflow is cancelled or its timeout passes; steps receive it too.</summary>
    public abstract CancellationToken CancellationToken { get; }

    /// <summary>
    /// Services for this execution of the workflow: a dependency-injection scope created on first use and disposed when
    /// the execution ends, when <see cref="DbosConfig.ServiceProvider"/> is set (as <c>AddDbos</c> does); otherwise a
    /// provider that has no services.
    /// </summary>
    public virtual IServiceProvider Services => EmptyServiceProvider.Instance;

    /// <summary>
    /// Whether the workflow is re-executing operations an earlier execution already recorded (after a crash, a resume or
    /// a fork): their recorded results are returned without running them again.
    /// </summary>
    public virtual bool IsReplaying => false;

    /// <summary>
    /// A logger for the workflow's own messages that stays silent while <see cref="IsReplaying"/>, so a workflow
    /// recovered after a crash does not log again what it logged before its last checkpoint.
    /// </summary>
    public virtual Microsoft.Extensions.Logging.ILogger Logger => Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>
    /// The user the workflow runs for (<see cref="StartOptions.AuthenticatedUser"/>, or its parent's), stored in its
    /// status so every execution sees the same; null when none was given.
    /// </summary>
    public virtual string? AuthenticatedUser => null;

    /// <summary>The roles of <see cref="AuthenticatedUser"/> (<see cref="StartOptions.AuthenticatedRoles"/>, or its parent's); empty when none were given.</summary>
    public virtual IReadOnlyList<string> AuthenticatedRoles => [];

    /// <summary>
    /// Replaces the running workflow's attributes (<see cref="StartOptions.Attributes"/>) with <paramref name="attributes"/>
    /// (null clears them), recorded as an operation (<c>DBOS.updateWorkflowAttributes</c>, as DBOS for Python records it)
    /// so a re-execution does not write again. The trace context stored beside them is kept.
    /// </summary>
    /// <param name="attributes">The new attributes; the key <c>dbos.otelContext</c> is reserved.</param>
    /// <param name="cancellationToken">Stops waiting for the write.</param>
    /// <returns>A task that completes when the attributes are stored (or were found already recorded).</returns>
    public virtual Task SetAttributesAsync(System.Text.Json.Nodes.JsonObject? attributes, CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <summary>
    /// Runs <paramref name="step"/> as a checkpointed step named <paramref name="name"/>: once it has finished, its result
    /// (or error) is recorded and a re-execution returns it without running the step again.
    /// </summary>
    /// <typeparam name="T">The step's result type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="step">The step's code; receives a token signalled when the workflow is cancelled.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>The step's result.</returns>
    /// <exception cref="StepFailedException">The step failed (after its retries); the error is recorded.</exception>
    public abstract Task<T> RunStepAsync<T>(string name, Func<CancellationToken, Task<T>> step, StepOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="step"/>, which has no result, as a checkpointed step.</summary>
    /// <param name="name">The step's name, recorded with its completion.</param>
    /// <param name="step">The step's code; receives a token signalled when the workflow is cancelled.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>A task that completes when the step has run (or was found already recorded).</returns>
    public Task RunStepAsync(string name, Func<CancellationToken, Task> step, StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return RunStepAsync<object?>(
            name,
            async ct =>
            {
                await step(ct).ConfigureAwait(false);
                return null;
            },
            options,
            cancellationToken);
    }

    /// <summary>Runs <paramref name="step"/>, which takes no token, as a checkpointed step (see <see cref="RunStepAsync{T}(string, Func{CancellationToken, Task{T}}, StepOptions?, CancellationToken)"/>).</summary>
    /// <typeparam name="T">The step's result type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="step">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>The step's result.</returns>
    /// <exception cref="StepFailedException">The step failed (after its retries); the error is recorded.</exception>
    public Task<T> RunStepAsync<T>(string name, Func<Task<T>> step, StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return RunStepAsync<T>(name, _ => step(), options, cancellationToken);
    }

    /// <summary>Runs <paramref name="step"/>, which takes no token and has no result, as a checkpointed step.</summary>
    /// <param name="name">The step's name, recorded with its completion.</param>
    /// <param name="step">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>A task that completes when the step has run (or was found already recorded).</returns>
    public Task RunStepAsync(string name, Func<Task> step, StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return RunStepAsync(name, (CancellationToken _) => step(), options, cancellationToken);
    }

    /// <summary>Runs the synchronous <paramref name="step"/>, which takes no token, as a checkpointed step.</summary>
    /// <typeparam name="T">The step's result type; must be serializable (not a task: return a task from an async step instead).</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="step">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>The step's result.</returns>
    /// <exception cref="StepFailedException">The step failed (after its retries); the error is recorded.</exception>
    public Task<T> RunStepAsync<T>(string name, Func<T> step, StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return RunStepAsync<T>(name, StepDelegates.Sync<T>(_ => step(), nameof(step)), options, cancellationToken);
    }

    /// <summary>Runs the synchronous <paramref name="step"/>, which takes no token and has no result, as a checkpointed step.</summary>
    /// <param name="name">The step's name, recorded with its completion.</param>
    /// <param name="step">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>A task that completes when the step has run (or was found already recorded).</returns>
    public Task RunStepAsync(string name, Action step, StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return RunStepAsync(name, StepDelegates.SyncVoid(_ => step(), nameof(step)), options, cancellationToken);
    }

    /// <summary>
    /// Sleeps durably: the wake-up time is recorded, so a workflow restarted during the sleep wakes at the original time.
    /// </summary>
    /// <param name="duration">How long to sleep.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes at the wake-up time.</returns>
    public abstract Task SleepAsync(TimeSpan duration, CancellationToken cancellationToken = default);

    /// <summary>The current time, recorded: a re-execution gets the same value.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The recorded time (millisecond precision).</returns>
    public abstract Task<DateTimeOffset> NowAsync(CancellationToken cancellationToken = default);

    /// <summary>A new random GUID, recorded: a re-execution gets the same value.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The recorded GUID.</returns>
    public abstract Task<Guid> NewGuidAsync(CancellationToken cancellationToken = default);

    /// <summary>How long <see cref="RecvAsync{T}"/> and <see cref="GetEventAsync{T}"/> wait when no timeout is given: 60 seconds.</summary>
    public static TimeSpan DefaultWaitTimeout { get; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Sends a message to another workflow, recorded: a re-execution does not send it again. Messages to one workflow
    /// and topic are received in the order they were sent.
    /// </summary>
    /// <typeparam name="T">The message's type; must be serializable.</typeparam>
    /// <param name="destinationWorkflowId">The receiving workflow's ID.</param>
    /// <param name="message">The message.</param>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the message is stored.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has the destination ID (recorded: a re-execution throws it too).</exception>
    public abstract Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends one message to many workflows in one statement, recorded as one operation (<c>DBOS.send_bulk</c>): a
    /// re-execution sends nothing again. All or nothing: if one destination does not exist, none gets the message.
    /// </summary>
    /// <typeparam name="T">The message's type; must be serializable.</typeparam>
    /// <param name="destinationWorkflowIds">The receiving workflows' IDs, each once.</param>
    /// <param name="message">The message.</param>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the messages are stored.</returns>
    /// <exception cref="WorkflowNotFoundException">A destination ID is unknown; nothing was sent (recorded: a re-execution throws it too).</exception>
    /// <remarks>The base implementation throws <see cref="NotSupportedException"/>: a fake context in a test overrides it.</remarks>
    public virtual Task SendManyAsync<T>(IReadOnlyList<string> destinationWorkflowIds, T message, string? topic = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("SendManyAsync is implemented by the DBOS runtime; a fake WorkflowContext must override it.");

    /// <summary>
    /// Receives the oldest message sent to this workflow on <paramref name="topic"/>, waiting for one up to
    /// <paramref name="timeout"/>. The receive is recorded, so a re-execution gets the same message and a message is
    /// received exactly once. The timeout is durable too: a restarted workflow waits only for what is left of it.
    /// </summary>
    /// <typeparam name="T">The message's type. Receive a nullable type (<c>int?</c>) to tell a timeout from a default value.</typeparam>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="timeout">How long to wait; default <see cref="DefaultWaitTimeout"/>; <see cref="Timeout.InfiniteTimeSpan"/> waits forever.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The message, or default (null) if none arrived in time.</returns>
    public abstract Task<T?> RecvAsync<T>(string? topic = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sets an event of this workflow: a key-value pair anyone can read with <c>GetEventAsync</c>. Setting a key again
    /// replaces its value (every value is kept in the event history). Recorded: a re-execution does not set it again.
    /// </summary>
    /// <typeparam name="T">The value's type; must be serializable.</typeparam>
    /// <param name="key">The event's key.</param>
    /// <param name="value">The value.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the event is stored.</returns>
    public abstract Task SetEventAsync<T>(string key, T value, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads the latest value of another workflow's event, waiting up to <paramref name="timeout"/> for it to be set.
    /// Recorded: a re-execution gets the same value.
    /// </summary>
    /// <typeparam name="T">The value's type. Read a nullable type to tell a timeout from a default value.</typeparam>
    /// <param name="workflowId">The workflow that sets the event.</param>
    /// <param name="key">The event's key.</param>
    /// <param name="timeout">How long to wait; default <see cref="DefaultWaitTimeout"/>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The value, or default (null) if it was not set in time.</returns>
    public abstract Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads the latest value of every event another workflow has set so far, by key, without waiting. Recorded
    /// (<c>DBOS.get_events</c>, as DBOS for Python): a re-execution gets the same events.
    /// </summary>
    /// <typeparam name="T">The values' type (<see cref="System.Text.Json.JsonElement"/> or <see cref="object"/> for values of several types).</typeparam>
    /// <param name="workflowId">The workflow that sets the events.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The events, by key (empty if none is set, or no workflow has this ID).</returns>
    /// <remarks>The base implementation throws <see cref="NotSupportedException"/>: a fake context in a test overrides it.</remarks>
    public virtual Task<IReadOnlyDictionary<string, T?>> GetAllEventsAsync<T>(string workflowId, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("GetAllEventsAsync is implemented by the DBOS runtime; a fake WorkflowContext must override it.");

    /// <summary>Appends a value to this workflow's stream named <paramref name="key"/>. Recorded: a re-execution does not append it again.</summary>
    /// <typeparam name="T">The value's type; must be serializable.</typeparam>
    /// <param name="key">The stream's name.</param>
    /// <param name="value">The value.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the value is stored.</returns>
    public abstract Task WriteStreamAsync<T>(string key, T value, CancellationToken cancellationToken = default);

    /// <summary>Closes this workflow's stream: readers see its end. (A stream also ends when its workflow finishes.)</summary>
    /// <param name="key">The stream's name.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the end is stored.</returns>
    public abstract Task CloseStreamAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads a workflow's stream in order, from <paramref name="fromOffset"/> to its end, waiting for values as they are
    /// written. Each value read is recorded, so a re-execution reads the same values.
    /// </summary>
    /// <typeparam name="T">The values' type.</typeparam>
    /// <param name="workflowId">The workflow that writes the stream.</param>
    /// <param name="key">The stream's name.</param>
    /// <param name="fromOffset">The first offset to read (0: from the start).</param>
    /// <param name="cancellationToken">Stops reading.</param>
    /// <returns>The stream's values.</returns>
    public abstract IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0, CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether this execution takes the branch of the patch <paramref name="patchName"/>: true for an execution that
    /// started under code with the patch (a new execution records a marker, <c>DBOS.patch-</c> and the name, at this
    /// position), false for one that predates it (an operation of the old code is recorded at this position). Write
    /// <c>if (await ctx.PatchAsync("name")) { new code } else { old code }</c>. Needs <see cref="DbosConfig.EnablePatching"/>.
    /// Once no execution of the old code is left, replace it by <see cref="DeprecatePatchAsync"/>. A fake context returns true.
    /// </summary>
    /// <param name="patchName">The patch's name, recorded in the marker.</param>
    /// <param name="cancellationToken">Stops waiting for the marker to be recorded.</param>
    /// <returns>True to run the patched (new) code, false to run the code the execution started with.</returns>
    /// <exception cref="InvalidOperationException">Patching is not enabled.</exception>
    public virtual Task<bool> PatchAsync(string patchName, CancellationToken cancellationToken = default) => Task.FromResult(true);

    /// <summary>
    /// The second stage of retiring a patch, once no execution of the code before <see cref="PatchAsync"/> is left:
    /// always true, and it records nothing. An execution that recorded the patch's marker at this position skips it;
    /// any other goes on at the same position. Once no execution that recorded the marker is left, remove the call.
    /// Needs <see cref="DbosConfig.EnablePatching"/>.
    /// </summary>
    /// <param name="patchName">The patch's name, as given to <see cref="PatchAsync"/>.</param>
    /// <param name="cancellationToken">Not used; for symmetry with the other operations.</param>
    /// <returns>True.</returns>
    /// <exception cref="InvalidOperationException">Patching is not enabled.</exception>
    public virtual Task<bool> DeprecatePatchAsync(string patchName, CancellationToken cancellationToken = default) => Task.FromResult(true);

    /// <summary>
    /// Waits for the first of <paramref name="tasks"/> to complete and returns its index, recorded: a re-execution gets
    /// the index the first execution got, and waits for that same task, whichever would finish first this time. Use it
    /// instead of <see cref="Task.WhenAny(Task[])"/> when the workflow's next steps depend on which task won. The tasks
    /// are typically steps, child workflows' results or receives, started before this call. The wait is the workflow's
    /// next operation: it takes its function ID at the call, like every other operation.
    /// </summary>
    /// <param name="tasks">The tasks to wait for (at least one). A task that fails or is cancelled also counts as completed.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The index in <paramref name="tasks"/> of the task that completed first (the recorded one on a re-execution).</returns>
    /// <remarks>The base implementation, for fakes in tests, is an unrecorded <see cref="Task.WhenAny(IEnumerable{Task})"/>.</remarks>
    public virtual async Task<int> WhenAnyAsync(IReadOnlyList<Task> tasks, CancellationToken cancellationToken = default)
    {
        CheckWhenAnyTasks(tasks);
        var first = await Task.WhenAny(tasks).WaitAsync(cancellationToken).ConfigureAwait(false);
        return IndexOf(tasks, first);
    }

    /// <summary>
    /// Waits until one of the workflows of <paramref name="handles"/> has finished (succeeded, failed, or was cancelled)
    /// and returns its handle, recorded as DBOS for Python and TypeScript record <c>waitFirst</c>: an operation
    /// <c>DBOS.waitFirst</c> whose output is the finished workflow's ID. A re-execution returns the same handle.
    /// </summary>
    /// <typeparam name="THandle">The handles' type.</typeparam>
    /// <param name="handles">The workflows to wait for: at least one, no workflow twice.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The handle of a workflow that has finished (the recorded one on a re-execution). Await its result to see its outcome.</returns>
    /// <remarks>The base implementation throws <see cref="NotSupportedException"/>: a fake context in a test overrides it.</remarks>
    public virtual Task<THandle> WaitFirstAsync<THandle>(IReadOnlyList<THandle> handles, CancellationToken cancellationToken = default)
        where THandle : WorkflowHandle =>
        throw new NotSupportedException("WaitFirstAsync is implemented by the DBOS runtime; a fake WorkflowContext must override it.");

    private protected static string[] CheckWaitFirstHandles<THandle>(IReadOnlyList<THandle> handles)
        where THandle : WorkflowHandle
    {
        ArgumentNullException.ThrowIfNull(handles);
        if (handles.Count == 0)
        {
            throw new ArgumentException("WaitFirstAsync needs at least one handle; nothing was waited for.", nameof(handles));
        }

        var ids = new string[handles.Count];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = handles[i]?.WorkflowId ?? throw new ArgumentException($"Handle {i} passed to WaitFirstAsync is null; nothing was waited for.", nameof(handles));
            if (!seen.Add(ids[i]))
            {
                throw new ArgumentException($"Workflow '{ids[i]}' is passed to WaitFirstAsync twice; nothing was waited for.", nameof(handles));
            }
        }

        return ids;
    }

    private protected static void CheckWhenAnyTasks(IReadOnlyList<Task> tasks)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        if (tasks.Count == 0)
        {
            throw new ArgumentException("WhenAnyAsync needs at least one task; nothing was waited for.", nameof(tasks));
        }

        for (var i = 0; i < tasks.Count; i++)
        {
            if (tasks[i] is null)
            {
                throw new ArgumentException($"Task {i} passed to WhenAnyAsync is null; nothing was waited for.", nameof(tasks));
            }
        }
    }

    private protected static int IndexOf(IReadOnlyList<Task> tasks, Task task)
    {
        for (var i = 0; i < tasks.Count; i++)
        {
            if (ReferenceEquals(tasks[i], task))
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>A provider without services, for workflows run without dependency injection.</summary>
internal sealed class EmptyServiceProvider : IServiceProvider
{
    public static EmptyServiceProvider Instance { get; } = new();

    public object? GetService(Type serviceType) => null;
}
