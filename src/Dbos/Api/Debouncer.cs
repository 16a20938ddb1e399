using Dbos.Execution;

namespace Dbos;

/// <summary>Options of a <see cref="Debouncer{TInput, TResult}"/>.</summary>
public sealed record DebouncerOptions
{
    /// <summary>The queue the debounced workflow waits on and runs from. Default: the internal queue every process serves.</summary>
    public string? Queue { get; init; }

    /// <summary>
    /// The longest a debounced workflow waits after the first call for its key: later calls stop pushing its start back
    /// past this. Default: no limit (it starts once the calls stop for a whole period).
    /// </summary>
    public TimeSpan? DebounceTimeout { get; init; }

    /// <summary>The workflow's own timeout, counted from its start (as <see cref="StartOptions.Timeout"/>). Default: none.</summary>
    public TimeSpan? WorkflowTimeout { get; init; }

    /// <summary>The application version the workflow runs under. Default: the application's (from a client: the latest).</summary>
    public string? ApplicationVersion { get; init; }

    /// <summary>The application that runs the workflow. Default: the application's own (from a client: <see cref="DbosClientOptions.ApplicationName"/>).</summary>
    public string? ApplicationName { get; init; }

    internal void Validate()
    {
        StartOptions.ValidateQueueing(Queue, null, null);
        Internal.StorableText.Check(Queue, "The queue name", nameof(Queue));
        Internal.StorableText.Check(ApplicationVersion, "The application version", nameof(ApplicationVersion));
        Internal.StorableText.Check(ApplicationName, "The application name", nameof(ApplicationName));
        if (DebounceTimeout is { } limit && limit <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(DebounceTimeout), limit, "A debounce timeout must be positive.");
        }

        if (WorkflowTimeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(WorkflowTimeout), timeout, "A workflow timeout must be positive.");
        }
    }
}

/// <summary>
/// Starts a workflow once for a burst of calls: calls with the same key within a period start one workflow, with the
/// input of the last call, once a whole period has passed without a call (or once <see cref="DebouncerOptions.DebounceTimeout"/>
/// has passed since the first). The workflow waits as a <c>DELAYED</c> row of the system database, as in the other DBOS
/// implementations, so it survives the process that debounced it, and debouncers in other processes and languages share it.
/// </summary>
/// <typeparam name="TInput">The workflow's input type.</typeparam>
/// <typeparam name="TResult">The workflow's result type.</typeparam>
public sealed class Debouncer<TInput, TResult>
{
    private readonly ExternalAccess external;
    private readonly IWorkflowResults results;
    private readonly DebouncerOptions options;
    private readonly Func<string?>? defaultVersion;
    private readonly Action? ensureReady;

    /// <summary>Creates a debouncer of a workflow registered in this application.</summary>
    /// <param name="workflow">The workflow to start.</param>
    /// <param name="options">The queue, the longest wait and the workflow's options.</param>
    public Debouncer(Workflow<TInput, TResult> workflow, DebouncerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(workflow);
        var engine = workflow.Registration.Engine;
        external = engine.External;
        results = engine;
        WorkflowName = workflow.Name;
        this.options = options ?? new DebouncerOptions();
        this.options.Validate();
        defaultVersion = () => engine.ApplicationVersion;
        ensureReady = engine.EnsureLaunched;
    }

    /// <summary>Creates a debouncer of a workflow, by name, for a process that does not run it.</summary>
    /// <param name="client">The client to write through.</param>
    /// <param name="workflowName">The name the workflow is registered under in the application that runs it.</param>
    /// <param name="options">The queue, the longest wait, the target application and the workflow's options.</param>
    public Debouncer(DbosClient client, string workflowName, DebouncerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(workflowName);
        Internal.StorableText.Check(workflowName, "The workflow name", nameof(workflowName));
        external = client.External;
        results = client.External;
        WorkflowName = workflowName;
        this.options = options ?? new DebouncerOptions();
        this.options.Validate();
    }

    /// <summary>The name of the workflow this debouncer starts.</summary>
    public string WorkflowName { get; }

    /// <summary>
    /// Debounces one call: if a workflow for <paramref name="key"/> is still waiting, it will now run with
    /// <paramref name="input"/>, and not before <paramref name="period"/> from now (nor after the debounce timeout);
    /// otherwise a new workflow for the key waits <paramref name="period"/>. Inside a workflow, call it from a step.
    /// </summary>
    /// <param name="key">What calls are grouped by (a user, a document…).</param>
    /// <param name="period">How long to wait for another call before starting the workflow.</param>
    /// <param name="input">The workflow's input; the last call's is the one it runs with.</param>
    /// <param name="cancellationToken">Stops the call (the workflow it waited on stays as it is).</param>
    /// <returns>A handle to the workflow that will run.</returns>
    /// <exception cref="WorkflowDeduplicatedException">The key's deduplication ID is held on the queue by a workflow this debouncer did not start.</exception>
    /// <exception cref="InvalidOperationException">Called in a workflow's body rather than in a step.</exception>
    public async Task<WorkflowHandle<TResult>> DebounceAsync(string key, TimeSpan period, TInput input, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (period <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(period), period, "A debounce period must be positive.");
        }

        if (WorkflowExecution.Current is not null)
        {
            throw new InvalidOperationException(
                $"DebounceAsync of workflow '{WorkflowName}' was called in a workflow's body: call it from a step, so that a re-execution does not debounce again.");
        }

        ensureReady?.Invoke();
        var inputs = external.Codec.EncodeInputs(input, typeof(TInput), true, $"input of workflow '{WorkflowName}'");
        var id = await external.DebounceAsync(
            WorkflowName,
            key,
            period,
            inputs,
            options,
            options.ApplicationVersion ?? defaultVersion?.Invoke(),
            cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(results, id);
    }
}
