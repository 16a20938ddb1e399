using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using Dbos.Internal;
using Dbos.Serialization;
using Dbos.SystemDatabase;
using Microsoft.Extensions.Logging;

namespace Dbos.Execution;

/// <summary>
/// The durable-execution rules: starting workflows (once per ID), running their bodies, recording outcomes only while
/// the execution still owns the workflow, recovery through the internal queue, timeouts, and the management operations.
/// It talks to the system database only through <see cref="SystemDatabase.SystemDatabase"/>, never to a driver.
/// </summary>
internal sealed class WorkflowEngine : IWorkflowResults, IClaimingProcess, IAsyncDisposable
{
    private readonly DbosConfig config;
    private readonly Dictionary<string, WorkflowRegistration> workflows = new(StringComparer.Ordinal);
    private readonly HashSet<string> stepNames = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> warnedQueues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RunningWorkflow> running = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource shutdown = new();
    private string[] workflowNames = [];
    private volatile bool launched;

    public WorkflowEngine(DbosConfig config, SystemDatabase.SystemDatabase database, ValueCodec codec, TimeProvider time, ILogger logger, string executorId)
    {
        this.config = config;
        Database = database;
        Codec = codec;
        Time = time;
        Logger = logger;
        ExecutorId = executorId;
        Dispatcher = new QueueDispatcher(database, this, time, logger, config.Name, config.PollingInterval);
        Watch = new ExecutorWatch(
            ExecutorLiveness.For(database.Executor, config.Name),
            time,
            logger,
            config.LivenessInterval,
            config.LivenessGracePeriod,
            config.TakeOverDeadExecutors,
            TookOverAsync);
        External = new ExternalAccess(
            database,
            codec,
            time,
            config.PollingInterval,
            config.Name,
            id => running.TryGetValue(id, out var run) ? run : null,
            MaxRecoveryAttemptsOf);
        Schedules = new ScheduleRunner(database, External, Dispatcher, this, time, logger, config.Name);
    }

    /// <summary>The queues this process knows, and the loops that take work from them.</summary>
    public QueueDispatcher Dispatcher { get; }

    /// <summary>This process's liveness, and the takeover of dead executors' work.</summary>
    public ExecutorWatch Watch { get; }

    /// <inheritdoc/>
    public bool IsLive => Watch.IsLive;

    /// <summary>The cron schedules this process fires.</summary>
    public ScheduleRunner Schedules { get; }

    /// <summary>The names of the workflows this process can run (fixed at launch).</summary>
    public string[] WorkflowNames => workflowNames;

    /// <summary>Results, statuses, listings, messages, events and streams, as seen from outside a workflow.</summary>
    public ExternalAccess External { get; }

    public SystemDatabase.SystemDatabase Database { get; }

    public ValueCodec Codec { get; }

    public TimeProvider Time { get; }

    public ILogger Logger { get; }

    /// <summary>Where workflows' own loggers (<see cref="WorkflowContext.Logger"/>) come from.</summary>
    /// <summary>Whether workflows may use patches (<see cref="DbosConfig.EnablePatching"/>).</summary>
    public bool PatchingEnabled => config.EnablePatching;

    public ILoggerFactory LoggerFactory => config.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;

    /// <summary>The application's services, when it uses dependency injection.</summary>
    public IServiceProvider? Services => config.ServiceProvider;

    public string ExecutorId { get; }

    public string ApplicationName => config.Name;

    public string ApplicationVersion { get; private set; } = string.Empty;

    public bool IsLaunched => launched;

    /// <summary>How many executions this process tracks right now (every one leaves when it ends, however it ends).</summary>
    public int RunningCount => running.Count;

    public WorkflowRegistration Register(
        string name, Type inputType, bool hasInput, Type outputType, Func<WorkflowContext, object?, Task<object?>> invoke, MethodInfo method, WorkflowOptions? options, Type[]? argumentTypes = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        StorableText.Check(name, "The workflow name", nameof(name));
        options ??= WorkflowOptions.Default;
        options.Validate(name);
        lock (workflows)
        {
            if (launched)
            {
                throw new InvalidOperationException($"Workflow '{name}' must be registered before LaunchAsync.");
            }

            if (workflows.ContainsKey(name))
            {
                throw new InvalidOperationException($"A workflow named '{name}' is already registered.");
            }

            var registration = new WorkflowRegistration(this, name, inputType, hasInput, outputType, invoke, method, options, argumentTypes);
            workflows.Add(name, registration);
            return registration;
        }
    }

    /// <summary>The workflow registered under <paramref name="name"/>.</summary>
    public WorkflowRegistration Find(string name)
    {
        lock (workflows)
        {
            return workflows.TryGetValue(name, out var registration)
                ? registration
                : throw new WorkflowNotFoundException($"No workflow named '{name}' is registered in this application (registered: {string.Join(", ", workflows.Keys.Order(StringComparer.Ordinal))}).");
        }
    }

    /// <summary>Records a step name, refusing one already registered: two steps of one name would replay each other's results.</summary>
    public void RegisterStepName(string name)
    {
        lock (workflows)
        {
            if (!stepNames.Add(name))
            {
                throw new InvalidOperationException(
                    $"A step named '{name}' is already registered in this application: step names must be unique, since a step's recorded result is matched by its name. Nothing was registered.");
            }
        }
    }

    public void RegisterSchedule(string workflowName, string cron, ScheduleOptions? options)
    {
        var row = External.NewSchedule(workflowName, cron, options, ApplicationName);
        lock (workflows)
        {
            if (launched)
            {
                throw new InvalidOperationException($"Schedule '{row.ScheduleName}' must be registered before LaunchAsync.");
            }

            Schedules.Declare(row);
        }
    }

    public Queue RegisterQueue(string name, QueueOptions? options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        StorableText.Check(name, "The queue name", nameof(name));
        options ??= new QueueOptions();
        options.Validate(name);
        lock (workflows)
        {
            if (launched)
            {
                throw new InvalidOperationException($"Queue '{name}': after LaunchAsync, register queues with RegisterQueueAsync (which records them in the queues table). Nothing was registered.");
            }

            Dispatcher.Register(name, options);
            return new Queue(name, options);
        }
    }

    /// <summary>Registers a queue before or after launch (after: recorded in the queues table and served at once).</summary>
    public async Task<Queue> RegisterQueueAsync(string name, QueueOptions? options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        StorableText.Check(name, "The queue name", nameof(name));
        options ??= new QueueOptions();
        options.Validate(name);
        lock (workflows)
        {
            if (!launched)
            {
                Dispatcher.Register(name, options);
                return new Queue(name, options);
            }
        }

        await Dispatcher.RegisterAtRuntimeAsync(name, options, cancellationToken).ConfigureAwait(false);
        warnedQueues.TryRemove(name, out _);
        return new Queue(name, options);
    }

    /// <summary>Changes a queue's flow control in the queues table (every process serving it applies it within seconds), and here at once.</summary>
    public async Task UpdateQueueAsync(string name, QueueOptions options, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(name);
        var record = QueueDispatcher.ToRecord(name, options);
        await ExternalAccess.UpdateQueueRowAsync(Database, record, ApplicationName, NowMs(), cancellationToken).ConfigureAwait(false);
        if (Dispatcher.Find(name) is { Persisted: true } state)
        {
            state.Record = record;
            state.ConfigReadAtMs = NowMs();
            state.Wake();
        }
    }

    /// <summary>Deletes a queue's row and stops serving it here (other processes stop within seconds); its work stays ENQUEUED.</summary>
    public async Task<bool> DeleteQueueAsync(string name, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var deleted = await Database.DeleteQueueAsync(name, cancellationToken).ConfigureAwait(false);
        if (Dispatcher.Find(name) is { Persisted: true })
        {
            Dispatcher.Forget(name);
            Log.QueueDeleted(Logger, name);
        }

        return deleted;
    }

    /// <remarks>
    /// What the first workflow needs is done before this returns, in as few sequential round trips as it can: the code
    /// hash (the default version) is computed while the schema is checked; the version's row and the liveness lock are
    /// then taken at once. The notification listener connects in the background: until it listens, waits poll (as they
    /// do whenever it is down), and its first connection signals every waiter to read again, so nothing is missed.
    /// </remarks>
    public async Task LaunchAsync(CancellationToken cancellationToken)
    {
        Task<string>? codeHash = null;
        lock (workflows)
        {
            if (launched)
            {
                throw new InvalidOperationException("This DBOS application is already launched.");
            }

            workflowNames = [.. workflows.Keys];
            // As the TypeScript SDK decides: a configured version, else the patching constant, else the environment's.
            var chosen = config.ApplicationVersion
                ?? (config.EnablePatching ? DbosConfig.PatchingVersion : null)
                ?? Environment.GetEnvironmentVariable(DbosConfig.ApplicationVersionVariable);
            ApplicationVersion = chosen ?? string.Empty;
            if (chosen is null)
            {
                var registered = workflows.Values.Select(r => KeyValuePair.Create(r.Name, r.Method)).ToList();
                codeHash = Task.Run(() => WorkflowCodeHash.Compute(config.Name, registered), CancellationToken.None);
            }
        }

        try
        {
            await (config.RunMigrations ? Database.MigrateAsync(cancellationToken) : Database.VerifySchemaAsync(cancellationToken)).ConfigureAwait(false);
        }
        finally
        {
            if (codeHash is not null)
            {
                ApplicationVersion = await codeHash.ConfigureAwait(false);
            }
        }

        _ = Database.StartListeningAsync();
        await Task.WhenAll(
            Database.RegisterApplicationVersionAsync(ApplicationVersion, cancellationToken),
            Watch.StartAsync(ExecutorId, ApplicationVersion, cancellationToken)).ConfigureAwait(false);
        launched = true;
        Log.Launched(Logger, ApplicationName, ExecutorId, ApplicationVersion, Database.Description);

        // A generated executor ID is new with this process: a dead predecessor's work is taken over by the watch instead.
        if (config.RecoverPendingWorkflows && !ExecutorLiveness.IsGenerated(ExecutorId))
        {
            var requeued = await Database.RequeuePendingAsync(ExecutorId, ApplicationVersion, cancellationToken).ConfigureAwait(false);
            if (requeued.Count > 0)
            {
                Telemetry.WorkflowsRecovered.Add(requeued.Count, new KeyValuePair<string, object?>("dbos.application.name", ApplicationName));
                Log.Recovering(Logger, requeued.Count, ExecutorId);
            }
        }

        // Advice for the log, read while the queues and schedules start (it reports its own failures).
        var versionReport = ReportWaitingWorkOfOtherVersionsAsync(cancellationToken);
        await Dispatcher.StartAsync(config.ListenQueues, cancellationToken).ConfigureAwait(false);
        await Schedules.StartAsync(cancellationToken).ConfigureAwait(false);
        ownershipWatch = Task.Run(WatchRunningWorkflowsAsync, CancellationToken.None);
        if (config.Retention is { } retention)
        {
            retentionLoop = new RetentionLoop(External, retention, Logger);
        }

        RecoveryDispatched = true;
        queueDepthSource = Telemetry.AddQueueDepthSource(Dispatcher.ObserveDepths);
        await versionReport.ConfigureAwait(false);
    }

    /// <summary>
    /// Warns, per version, about this application's unfinished work recorded for another application version, which this
    /// process will not run: after a change to workflow code it may wait for a process that never comes back. Failures
    /// are logged, not thrown (this is advice, not part of launching).
    /// </summary>
    public async Task<IReadOnlyList<(string Version, long Count)>> ReportWaitingWorkOfOtherVersionsAsync(CancellationToken cancellationToken)
    {
        try
        {
            var waiting = await Database.CountWorkOfOtherVersionsAsync(ApplicationVersion, cancellationToken).ConfigureAwait(false);
            foreach (var (version, count) in waiting)
            {
                var schema = Database.Dialect is PostgresDialect { Schema: not "dbos" and var name } ? $" --schema {name}" : string.Empty;
                Log.WorkOfOtherVersionWaits(
                    Logger, count, ApplicationName, version, ApplicationVersion,
                    $"dbos version move {version} --to {ApplicationVersion} --application-name {ApplicationName} --sys-db-url {Database.Description}{schema}");
            }

            return waiting;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.BackgroundFailure(Logger, "looking for work waiting for other application versions", ex);
            return [];
        }
    }

    /// <summary>Moves the enqueued and delayed workflows of one version to another (default: this one) and wakes their queues here.</summary>
    public async Task<IReadOnlyList<string>> MoveWorkflowsToVersionAsync(string fromVersion, string? toVersion, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        var moved = await External.MoveWorkflowsToVersionAsync(fromVersion, toVersion ?? ApplicationVersion, cancellationToken).ConfigureAwait(false);
        Dispatcher.Wake(moved.Select(m => m.QueueName));

        return [.. moved.Select(m => m.WorkflowId)];
    }

    /// <summary>Puts a stopped executor's pending workflows back on their queues, by an operator's request, and wakes those queues here.</summary>
    public async Task<IReadOnlyList<string>> RecoverExecutorAsync(string executorId, CancellationToken cancellationToken)
    {
        var moved = await External.RecoverExecutorAsync(executorId, cancellationToken).ConfigureAwait(false);
        Dispatcher.Wake(moved.Select(m => m.QueueName));
        return [.. moved.Select(m => m.WorkflowId)];
    }

    /// <summary>Puts a dead executor's workflows, just moved back to their queues, in the way of this process's dispatchers.</summary>
    private async Task TookOverAsync(string deadExecutorId, List<(string WorkflowId, string QueueName)> moved)
    {
        Telemetry.WorkflowsRecovered.Add(moved.Count, new KeyValuePair<string, object?>("dbos.application.name", ApplicationName));
        Dispatcher.Wake(moved.Select(m => m.QueueName));

        // The dead executor may have run another version: its work now waits on the queues for a process of that version.
        await ReportWaitingWorkOfOtherVersionsAsync(shutdown.Token).ConfigureAwait(false);
    }

    private Task ownershipWatch = Task.CompletedTask;
    private RetentionLoop? retentionLoop;

    /// <summary>Whether launching has recovered this executor's pending work and started the queues (a health probe).</summary>
    public bool RecoveryDispatched { get; private set; }

    /// <summary>Whether the application is shutting down (a health probe).</summary>
    public bool IsShuttingDown => shutdown.IsCancellationRequested;
    private IDisposable? queueDepthSource;
    private bool disposed;

    /// <summary>
    /// Stops executions whose workflow was cancelled, resumed, taken over or deleted by another process (a command line,
    /// a client, another application instance): nothing tells this process, so the running workflows' rows are polled.
    /// </summary>
    private async Task WatchRunningWorkflowsAsync()
    {
        using var timer = new PeriodicTimer(config.PollingInterval, Time);
        try
        {
            while (await timer.WaitForNextTickAsync(shutdown.Token).ConfigureAwait(false))
            {
                if (running.IsEmpty)
                {
                    continue;
                }

                var runs = running.ToArray();
                try
                {
                    var rows = (await Database.GetOwnershipAsync([.. runs.Select(r => r.Key)], shutdown.Token).ConfigureAwait(false))
                        .ToDictionary(r => r.WorkflowId);
                    foreach (var (id, run) in runs)
                    {
                        var change = !rows.TryGetValue(id, out var row) ? "deleted"
                            : row.Status == StatusNames.Cancelled ? "cancelled"
                            : row.Status is StatusNames.Success or StatusNames.Error ? null
                            : row.OwnerXid != run.Execution.OwnerXid ? (row.Status == StatusNames.Pending ? "taken over" : "resumed")
                            : null;
                        // An execution already told to stop may linger (waiting for liveness, finishing a step): once is enough.
                        if (change is null || !running.TryGetValue(id, out var current) || current != run || run.Execution.StopReason is not null)
                        {
                            continue;
                        }

                        Log.ChangedElsewhere(Logger, id, change);
                        if (change == "cancelled")
                        {
                            run.Execution.Cancel("cancelled");
                        }
                        else
                        {
                            run.Execution.Abandon($"the workflow was {change} by another process");
                        }
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.BackgroundFailure(Logger, "watching running workflows for changes made elsewhere", ex);
                }
            }
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    public void EnsureLaunched()
    {
        if (!launched)
        {
            throw new InvalidOperationException("Call LaunchAsync before starting or managing workflows.");
        }

        ObjectDisposedException.ThrowIf(shutdown.IsCancellationRequested, this);
    }

    private long NowMs() => Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Starts a workflow (a child when called inside a workflow). Returns its ID.</summary>
    public async Task<string> StartAsync(WorkflowRegistration registration, object? input, StartOptions? options, CancellationToken cancellationToken) =>
        (await StartCoreAsync(registration, input, options, runHere: false, cancellationToken).ConfigureAwait(false)).WorkflowId;

    /// <summary>
    /// Starts a workflow for a handle: its ID, and the execution this call launched in this process, if any (a direct
    /// start, or an enqueue claimed at once), whose outcome the handle then takes without reading the database.
    /// </summary>
    public async Task<(string WorkflowId, RunningWorkflow? Run)> StartForHandleAsync(
        WorkflowRegistration registration, object? input, StartOptions? options, CancellationToken cancellationToken)
    {
        var (workflowId, run, _) = await StartCoreAsync(registration, input, options, runHere: false, cancellationToken).ConfigureAwait(false);
        return (workflowId, run);
    }

    /// <summary>
    /// Starts a workflow and waits for its outcome. A workflow started directly, outside any workflow and any
    /// synchronization context, runs on the caller's own flow until its first wait: the caller waits for it anyway, and
    /// this saves the two thread hops (to the pool and back) that a sequential caller would otherwise pay for each run.
    /// </summary>
    public async Task<T> RunAsync<T>(WorkflowRegistration registration, object? input, StartOptions? options, CancellationToken cancellationToken)
    {
        if (WorkflowExecution.Current is { } parent)
        {
            // Both of the parent's function IDs (start, result) are taken at the call, before any await.
            EnsureLaunched();
            options?.Validate();
            return await parent.RunChildAsync<T>(registration, input, options, cancellationToken).ConfigureAwait(false);
        }

        var runHere = options?.Queue is null && WorkflowExecution.Current is null && SynchronizationContext.Current is null && TaskScheduler.Current == TaskScheduler.Default;
        var (workflowId, run, running) = await StartCoreAsync(registration, input, options, runHere, cancellationToken).ConfigureAwait(false);
        if (run is not null && running is not null)
        {
            await running.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (ExternalAccess.TryOutcome(run.Completion.Result, workflowId, Codec, out T value))
            {
                return value;
            }
        }

        // Through the engine: inside a workflow, waiting for a child's result is itself a recorded operation.
        return await GetResultAsync<T>(workflowId, cancellationToken).ConfigureAwait(false);
    }

    private async Task<(string WorkflowId, RunningWorkflow? Run, Task? Running)> StartCoreAsync(
        WorkflowRegistration registration, object? input, StartOptions? options, bool runHere, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        options?.Validate();
        if (WorkflowExecution.Current is { } parent)
        {
            return (await parent.StartChildAsync(registration, input, options, cancellationToken).ConfigureAwait(false), null, null);
        }

        var workflowId = options?.WorkflowId ?? Guid.NewGuid().ToString();
        if (running.TryGetValue(workflowId, out var existing))
        {
            ExternalAccess.CheckSameWorkflow(workflowId, existing.Execution.Registration.Name, registration.Name);
            return (workflowId, null, null);
        }

        var inputs = Codec.EncodeInputs(input, registration.InputType, registration.HasInput, $"input of workflow '{registration.Name}'");
        var owner = Guid.NewGuid().ToString();
        using var enqueueSpan = ExternalAccess.StartEnqueueSpan(registration.Name, options?.Queue, workflowId, ApplicationName);

        // An enqueue on a queue this process serves, whose limits are all its own, claims the workflow in its own insert
        // when nothing waits on the queue: no claim round trip, no dispatcher wake-up. A slot of the worker concurrency is
        // held meanwhile, so the dispatcher cannot fill it too.
        var ownClaim = options?.Queue is { } queueName && !(options.Delay > TimeSpan.Zero) ? Dispatcher.TryReserveOwnClaim(queueName) : null;
        try
        {
            var row = NewRow(registration, workflowId, owner, inputs, options, inheritedDeadline: null, parent: null, claimIfIdle: ownClaim is not null);
            var (started, startedId) = await External.StartWorkflowAsync(row, options?.DeduplicationPolicy ?? DeduplicationPolicy.Throw, cancellationToken).ConfigureAwait(false);
            if (started is null)
            {
                return (startedId, null, null);
            }

            if (!started.Inserted)
            {
                ExternalAccess.CheckSameWorkflow(workflowId, started.Name, registration.Name);
                return (workflowId, null, null);
            }

            if (row.QueueName is { } queue)
            {
                if (ownClaim is not null && started.Status == StatusNames.Pending)
                {
                    Log.ClaimedOwnEnqueue(Logger, workflowId, queue);
                    await RunClaimedAsync(ClaimedAtInsert(row), owner, ownClaim).ConfigureAwait(false);
                    return (workflowId, running.GetValueOrDefault(workflowId), null);
                }

                await WarnIfUnknownQueueAsync(queue, workflowId, cancellationToken).ConfigureAwait(false);
                Dispatcher.Wake(queue);
                return (workflowId, null, null);
            }

            var (run, runningTask) = Launch(NewExecution(registration, row, owner), input, runHere);
            return (workflowId, run, runningTask);
        }
        finally
        {
            ownClaim?.Unreserve(1);
        }
    }

    /// <summary>A row its own insert claimed, as a queue's claim would have returned it (nothing recorded yet, nothing waited).</summary>
    private static ClaimedRow ClaimedAtInsert(NewWorkflowRow row) =>
        new(row.WorkflowId, row.Name, row.RecoveryAttempts + 1, row.DeadlineEpochMs, row.Serialization, row.ParentWorkflowId, row.Inputs, row.PartitionKey)
        {
            Attributes = row.Attributes,
            WaitedMs = 0,
            AuthenticatedUser = row.AuthenticatedUser,
            AuthenticatedRoles = row.AuthenticatedRoles,
        };

    /// <summary>
    /// Warns, once per queue name, about a start on a queue neither this process nor the queues table knows (no
    /// application of any language has ever registered it): the workflow would otherwise wait silently.
    /// </summary>
    internal async Task WarnIfUnknownQueueAsync(string queue, string workflowId, CancellationToken cancellationToken)
    {
        if (Dispatcher.Find(queue) is not null || !warnedQueues.TryAdd(queue, 0))
        {
            return;
        }

        if (await Database.GetQueueAsync(queue, cancellationToken).ConfigureAwait(false) is null)
        {
            var registered = Dispatcher.Queues.Where(q => q.Persisted).Select(q => q.Name).Order(StringComparer.Ordinal).ToList();
            Log.UnknownQueue(Logger, workflowId, queue, registered.Count == 0 ? "none" : string.Join(", ", registered));
        }
    }

    private static DateTimeOffset? Deadline(NewWorkflowRow row) =>
        row.DeadlineEpochMs is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    /// <summary>The first execution of a workflow this process just created (<paramref name="row"/>) and runs at once.</summary>
    private WorkflowExecution NewExecution(WorkflowRegistration registration, NewWorkflowRow row, string owner) =>
        new(this, registration, row.WorkflowId, owner, Deadline(row), recorded: null)
        {
            AuthenticatedUserStored = row.AuthenticatedUser,
            AuthenticatedRolesStored = ValueCodec.DecodeRoles(row.AuthenticatedRoles),
        };

    /// <summary>The status row of a new workflow started by this process (see <see cref="NewWorkflowRow.Create"/>).</summary>
    private NewWorkflowRow NewRow(
        WorkflowRegistration registration, string workflowId, string owner, string inputs, StartOptions? options, DateTimeOffset? inheritedDeadline, WorkflowExecution? parent,
        bool claimIfIdle = false)
    {
        if (options?.Queue is { } queue && Dispatcher.Find(queue) is { } known)
        {
            CheckQueueOptions(known.Record, options);
        }

        return NewWorkflowRow.Create(
            workflowId,
            registration.Name,
            inputs,
            Codec.Format,
            Time.GetUtcNow(),
            ApplicationName,
            ApplicationVersion,
            executorId: ExecutorId,
            owner: owner,
            queue: options?.Queue,
            delay: options?.Delay,
            timeout: options?.Timeout,
            inheritedDeadline: inheritedDeadline,
            parentWorkflowId: parent?.WorkflowId,
            deduplicationId: options?.DeduplicationId,
            priority: options?.Priority,
            partitionKey: options?.PartitionKey,
            // A child runs for its parent's user unless told otherwise, as in the other DBOS implementations.
            authenticatedUser: options?.AuthenticatedUser ?? parent?.AuthenticatedUserStored,
            authenticatedRoles: options?.AuthenticatedRoles ?? parent?.AuthenticatedRolesStored,
            attributes: options?.Attributes,
            claimIfIdle: claimIfIdle);
    }

    private static void CheckQueueOptions(QueueRecord queue, StartOptions options)
    {
        if (queue.PartitionQueue && options.PartitionKey is null)
        {
            throw new ArgumentException($"Queue '{queue.Name}' is partitioned: enqueue with a PartitionKey.", nameof(options));
        }

        if (!queue.PartitionQueue && options.PartitionKey is not null)
        {
            throw new ArgumentException($"Queue '{queue.Name}' is not partitioned: a PartitionKey cannot be used on it.", nameof(options));
        }

        if (!queue.PriorityEnabled && options.Priority is not null)
        {
            throw new ArgumentException($"Queue '{queue.Name}' does not have priorities enabled (QueueOptions.PriorityEnabled).", nameof(options));
        }
    }


    /// <summary>
    /// Starts a child workflow recorded as operation <paramref name="functionId"/> of <paramref name="parent"/>. Returns null
    /// when the parent no longer owns its workflow; otherwise the start and, if this call created the child, how to run it.
    /// </summary>
    public async Task<(StartResult? Started, Action? Launch)> StartChildAsync(
        WorkflowExecution parent, int functionId, WorkflowRegistration registration, string childId, object? input, StartOptions? options, CancellationToken cancellationToken)
    {
        var inputs = Codec.EncodeInputs(input, registration.InputType, registration.HasInput, $"input of workflow '{registration.Name}'");
        var owner = Guid.NewGuid().ToString();
        using var enqueueSpan = ExternalAccess.StartEnqueueSpan(registration.Name, options?.Queue, childId, ApplicationName);
        var row = NewRow(registration, childId, owner, inputs, options, parent.Deadline, parent);
        var started = await Database.StartChildWorkflowAsync(row, parent.OwnerXid, functionId, NowMs(), cancellationToken).ConfigureAwait(false);
        if (started is null)
        {
            return (null, null);
        }

        if (!started.Inserted)
        {
            ExternalAccess.CheckSameWorkflow(childId, started.Name, registration.Name);
            return (started, null);
        }

        if (row.QueueName is { } childQueue)
        {
            await WarnIfUnknownQueueAsync(childQueue, childId, cancellationToken).ConfigureAwait(false);
        }

        return row.QueueName is { } queue
            ? (started, () => Dispatcher.Wake(queue))
            : (started, () => Launch(NewExecution(registration, row, owner), input));
    }

    /// <summary>
    /// Runs an execution in the background (or, with <paramref name="runHere"/>, on this flow until its first wait),
    /// tracked so that waiters in this process get its outcome directly.
    /// </summary>
    private (RunningWorkflow Run, Task Running) Launch(WorkflowExecution execution, object? input, bool runHere = false)
    {
        var run = new RunningWorkflow(execution);
        if (running.TryGetValue(execution.WorkflowId, out var previous))
        {
            previous.Execution.Abandon("another execution of the same workflow started");
        }

        running[execution.WorkflowId] = run;
        Database.Notifier.Signal(ChangeKind.LaunchedHere, execution.WorkflowId);
        return (run, runHere ? RunAsync(run, input) : Task.Run(() => RunAsync(run, input), CancellationToken.None));
    }

    private async Task RunAsync(RunningWorkflow run, object? input)
    {
        var execution = run.Execution;
        var registration = execution.Registration;
        WorkflowExecution.Enter(execution);
        using var activity = StartWorkflowSpan(execution);
        using var logScope = Logger.BeginScope(new WorkflowLogScope(execution.WorkflowId, registration.Name));
        var nameTag = new KeyValuePair<string, object?>("dbos.workflow.name", registration.Name);
        Telemetry.WorkflowsStarted.Add(1, nameTag);
        ITimer? deadlineTimer = null;
        WorkflowOutcome outcome = new WorkflowOutcome.InDatabase();
        try
        {
            if (execution.Deadline is { } deadline)
            {
                var due = deadline - Time.GetUtcNow();
                deadlineTimer = Time.CreateTimer(_ => _ = OnDeadlineAsync(execution), null, due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }

            object? output;
            try
            {
                output = await registration.Invoke(execution, input).ConfigureAwait(false);
            }
            catch (Exception) when (execution.IsStopped)
            {
                if (execution.IsSuperseded)
                {
                    Log.Superseded(Logger, execution.WorkflowId, execution.StopReason ?? "it no longer owns the workflow");
                }

                return;
            }
            catch (Exception ex) when (ex is not ExecutionSupersededException)
            {
                // Past its deadline the workflow is cancelled, whatever its body threw on the way out (for example a
                // child that timed out first with the same deadline).
                if (!await CancelledByDeadlineAsync(execution, ex).ConfigureAwait(false))
                {
                    outcome = await RecordFailureAsync(execution, ex).ConfigureAwait(false);
                }

                return;
            }

            string encoded, format;
            try
            {
                (encoded, format) = Codec.EncodeWorkflowOutput(output, registration.OutputType, $"output of workflow '{execution.WorkflowId}'", execution.StoredFormat);
            }
            catch (DbosSerializationException ex)
            {
                outcome = await RecordFailureAsync(execution, ex).ConfigureAwait(false);
                return;
            }

            if (await Database.CompleteWorkflowAsync(execution.WorkflowId, execution.OwnerXid, StatusNames.Success, encoded, null, CancellationToken.None).ConfigureAwait(false))
            {
                outcome = new WorkflowOutcome.Succeeded(output, encoded, format);
            }
        }
        catch (ExecutionSupersededException ex)
        {
            Log.Superseded(Logger, execution.WorkflowId, ex.Message);
        }
        catch (Exception ex)
        {
            // The outcome could not be written (the database is unreachable): leave the workflow pending for recovery.
            Log.BackgroundFailure(Logger, $"completing workflow {execution.WorkflowId}", ex);
        }
        finally
        {
            if (deadlineTimer is not null)
            {
                await deadlineTimer.DisposeAsync().ConfigureAwait(false);
            }

            running.TryRemove(new KeyValuePair<string, RunningWorkflow>(execution.WorkflowId, run));
            execution.Queue?.Finished(execution.PartitionKey);
            RecordOutcome(activity, outcome, nameTag);
            run.Complete(outcome);
            await execution.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The span of one execution of a workflow. A workflow started here continues the caller's trace; one claimed from a
    /// queue (enqueued elsewhere, recovered, resumed) continues the trace stored with it, never the dispatcher's.
    /// </summary>
    private Activity? StartWorkflowSpan(WorkflowExecution execution)
    {
        if (!Telemetry.Source.HasListeners())
        {
            return null;
        }

        if (execution.Queue is not null)
        {
            Activity.Current = null;
        }

        var activity = Telemetry.Source.StartActivity(
            $"workflow {execution.WorkflowName}", execution.Queue is null ? ActivityKind.Internal : ActivityKind.Consumer, execution.TraceParent);
        activity?.SetTag("dbos.workflow.id", execution.WorkflowId).SetTag("dbos.workflow.name", execution.WorkflowName)
            .SetTag("dbos.application.name", ApplicationName).SetTag("dbos.application.version", ApplicationVersion).SetTag("dbos.executor.id", ExecutorId);
        if (execution.Queue is { } queue)
        {
            activity?.SetTag("dbos.queue.name", queue.Name);
        }

        return activity;
    }

    private static void RecordOutcome(Activity? activity, WorkflowOutcome outcome, KeyValuePair<string, object?> nameTag)
    {
        switch (outcome)
        {
            case WorkflowOutcome.Succeeded:
                Telemetry.WorkflowsCompleted.Add(1, nameTag);
                activity?.SetTag("dbos.workflow.status", StatusNames.Success);
                break;
            case WorkflowOutcome.Failed { Error: DbosRecordedException error }:
                Telemetry.WorkflowsFailed.Add(1, nameTag);
                activity?.SetTag("dbos.workflow.status", StatusNames.Error);
                Telemetry.RecordError(activity, error, error.ErrorName);
                break;
            default:
                // Cancelled, or stopped without recording an outcome (shutdown, taken over): not a failure of this span.
                activity?.SetTag("dbos.workflow.status", "STOPPED");
                break;
        }
    }

    private async Task<WorkflowOutcome> RecordFailureAsync(WorkflowExecution execution, Exception error)
    {
        var name = WorkflowExecution.ErrorName(error);
        Log.WorkflowFailed(Logger, execution.WorkflowId, execution.WorkflowName, name, error.Message);
        var written = await Database.CompleteWorkflowAsync(
            execution.WorkflowId, execution.OwnerXid, StatusNames.Error, null, ValueCodec.EncodeWorkflowError(error, execution.StoredFormat), CancellationToken.None).ConfigureAwait(false);
        return written
            ? new WorkflowOutcome.Failed(new WorkflowFailedException(execution.WorkflowId, name, error.Message, (error as DbosRecordedException)?.ErrorCode, error))
            : new WorkflowOutcome.InDatabase();
    }

    /// <summary>Whether the workflow's failure is its deadline passing: then it is cancelled rather than failed.</summary>
    private async Task<bool> CancelledByDeadlineAsync(WorkflowExecution execution, Exception error)
    {
        if (execution.Deadline is not { } deadline)
        {
            return false;
        }

        // A child sharing this deadline may be cancelled by its own timer a moment before this workflow's timer fires.
        var remaining = deadline - Time.GetUtcNow();
        if (error is WorkflowCancelledException && remaining > TimeSpan.Zero && remaining < TimeSpan.FromSeconds(1))
        {
            // Rounded up to whole milliseconds and one more, as timers count them: a wait of 0.7 ms would end at once,
            // before the deadline, and the workflow would be recorded as failed.
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(remaining.TotalMilliseconds) + 1), Time).ConfigureAwait(false);
        }

        return deadline <= Time.GetUtcNow() && await CancelForDeadlineAsync(execution).ConfigureAwait(false);
    }

    /// <summary>Cancels the workflow if its recorded deadline is still the one this execution runs under.</summary>
    private async Task<bool> CancelForDeadlineAsync(WorkflowExecution execution)
    {
        // Compared with the deadline itself, not the clock: a timer may fire a moment early, and the condition only
        // guards against a deadline that was reset meanwhile (by a resume).
        var deadline = Math.Max(execution.Deadline!.Value.ToUnixTimeMilliseconds(), NowMs());
        var cancelled = await Database.CancelIfDeadlinePassedAsync(execution.WorkflowId, deadline, CancellationToken.None).ConfigureAwait(false);
        if (cancelled.Count == 0)
        {
            return false;
        }

        Log.TimedOut(Logger, execution.WorkflowId);
        execution.Cancel("cancelled because its timeout passed");
        return true;
    }

    private async Task OnDeadlineAsync(WorkflowExecution execution)
    {
        try
        {
            await CancelForDeadlineAsync(execution).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.BackgroundFailure(Logger, $"timing out workflow {execution.WorkflowId}", ex);
        }
    }

    /// <summary>The result of a workflow; inside a workflow the wait is recorded as an operation.</summary>
    public Task<T> GetResultAsync<T>(string workflowId, CancellationToken cancellationToken) => GetResultAsync<T>(workflowId, null, cancellationToken);

    /// <summary>
    /// The result of a workflow whose execution <paramref name="startedHere"/> this process launched when it started it:
    /// outside a workflow its outcome is taken from that execution, even after it finished, without reading the database.
    /// </summary>
    public Task<T> GetResultAsync<T>(string workflowId, RunningWorkflow? startedHere, CancellationToken cancellationToken) =>
        WorkflowExecution.Current is { } execution
            ? execution.AwaitResultAsync<T>(workflowId, cancellationToken)
            : External.AwaitOutcomeAsync<T>(workflowId, startedHere, cancellationToken);

    private int MaxRecoveryAttemptsOf(string? workflowName) =>
        (workflowName is not null && workflows.TryGetValue(workflowName, out var registration) ? registration.Options.MaxRecoveryAttempts : null)
        ?? config.MaxRecoveryAttempts;

    /// <summary>Runs a workflow claimed from <paramref name="queue"/> (or dead-letters it if it used up its recovery attempts).</summary>
    public async Task RunClaimedAsync(ClaimedRow row, string owner, QueueState queue)
    {
        var registration = workflows[row.Name];
        var maxRecoveryAttempts = registration.Options.MaxRecoveryAttempts ?? config.MaxRecoveryAttempts;
        if (row.RecoveryAttempts > maxRecoveryAttempts + 1)
        {
            await Database.DeadLetterAsync(row.WorkflowId, CancellationToken.None).ConfigureAwait(false);
            Log.DeadLettered(Logger, row.WorkflowId, maxRecoveryAttempts);
            return;
        }

        object? input;
        try
        {
            // A schedule's tick passes its time and a context (in every DBOS implementation, also when forked), so a workflow
            // taking a time accepts more arguments; any other refuses them, since it would silently drop them.
            var takesTime = Nullable.GetUnderlyingType(registration.InputType) ?? registration.InputType;
            input = registration.ArgumentTypes is { } argumentTypes
                ? Codec.DecodeArguments(row.Inputs, row.Serialization, argumentTypes, $"workflow '{row.WorkflowId}'")
                : Codec.DecodeInputs(
                    row.Inputs, row.Serialization, registration.InputType, registration.HasInput, $"workflow '{row.WorkflowId}'",
                    single: takesTime != typeof(DateTimeOffset) && takesTime != typeof(DateTime));
        }
        catch (DbosSerializationException ex)
        {
            Log.CannotStart(Logger, row.WorkflowId, row.Name, ex.Message);
            await Database.CompleteWorkflowAsync(row.WorkflowId, owner, StatusNames.Error, null, ValueCodec.EncodeWorkflowError(ex, row.Serialization), CancellationToken.None).ConfigureAwait(false);
            return;
        }

        var recorded = row.Recorded;
        var deadline = row.DeadlineEpochMs is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
        queue.Started(row.PartitionKey);
        if (row.WaitedMs is { } waited && queue.Persisted)
        {
            Telemetry.QueueWaitTime.Record(waited / 1000.0, new KeyValuePair<string, object?>("dbos.queue.name", queue.Name));
        }

        Launch(
            new WorkflowExecution(this, registration, row.WorkflowId, owner, deadline, recorded)
            {
                Queue = queue,
                PartitionKey = row.PartitionKey,
                StoredFormat = row.Serialization,
                TraceParent = WorkflowAttributes.ParseTraceContext(row.Attributes),
                AuthenticatedUserStored = row.AuthenticatedUser ?? string.Empty,
                AuthenticatedRolesStored = ValueCodec.DecodeRoles(row.AuthenticatedRoles),
            },
            input);
    }

    public Task<WorkflowStatus?> GetStatusAsync(string workflowId, CancellationToken cancellationToken) => External.GetStatusAsync(workflowId, cancellationToken);

    public async Task<IReadOnlyList<string>> CancelAsync(IReadOnlyList<string> workflowIds, bool cancelChildren, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        var cancelled = await External.CancelAsync(workflowIds, cancelChildren, cancellationToken).ConfigureAwait(false);
        foreach (var id in cancelled)
        {
            if (running.TryGetValue(id, out var run))
            {
                run.Execution.Cancel("cancelled");
            }
        }

        return cancelled;
    }

    /// <summary>Cancels every unfinished workflow created before the cutoff, and stops those running here at once.</summary>
    public async Task<IReadOnlyList<string>> GlobalTimeoutAsync(DateTimeOffset createdBefore, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        var cancelled = await WorkflowRetention.GlobalTimeoutAsync(External, createdBefore, cancellationToken).ConfigureAwait(false);
        foreach (var id in cancelled)
        {
            if (running.TryGetValue(id, out var run))
            {
                run.Execution.Cancel("cancelled");
            }
        }

        if (cancelled.Count > 0)
        {
            Log.GlobalTimeoutCancelled(Logger, cancelled.Count, createdBefore);
        }

        return cancelled;
    }

    public async Task<IReadOnlyList<string>> ResumeAsync(IReadOnlyList<string> workflowIds, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        foreach (var status in await External.RequireExistingAsync(workflowIds, cancellationToken).ConfigureAwait(false))
        {
            if (!workflows.ContainsKey(status.Name))
            {
                throw new WorkflowNotFoundException(
                    $"Workflow '{status.WorkflowId}' is a '{status.Name}' workflow, which is not registered in this application; it cannot be resumed here. Nothing was changed.");
            }
        }

        var resumed = await External.ResumeAsync(workflowIds, null, cancellationToken).ConfigureAwait(false);
        foreach (var id in resumed)
        {
            if (running.TryGetValue(id, out var run))
            {
                run.Execution.Abandon("the workflow was resumed");
            }
        }

        Dispatcher.Wake(StatusNames.InternalQueue);
        return resumed;
    }

    public async Task<string> ForkAsync(string workflowId, int startStep, ForkOptions? options, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        var newId = await External.ForkAsync(workflowId, startStep, options, cancellationToken).ConfigureAwait(false);
        Dispatcher.Wake(StatusNames.InternalQueue);
        return newId;
    }

    public async Task<IReadOnlyList<string>> DeleteAsync(IReadOnlyList<string> workflowIds, bool deleteChildren, CancellationToken cancellationToken)
    {
        EnsureLaunched();
        var deleted = await External.DeleteAsync(workflowIds, deleteChildren, cancellationToken).ConfigureAwait(false);
        foreach (var id in deleted)
        {
            if (running.TryGetValue(id, out var run))
            {
                run.Execution.Abandon("the workflow was deleted");
            }
        }

        return deleted;
    }

    /// <summary>
    /// Stops taking work (queues, schedules), then lets running workflows finish the steps they are in: each stops at
    /// its next step boundary (at once if it is waiting), staying pending for recovery. When
    /// <paramref name="cancellationToken"/> fires first, the rest are stopped at once, as <see cref="DisposeAsync"/> does.
    /// </summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken)
    {
        // Drained before stopping the queues and schedules (which takes a moment), so no running workflow starts another
        // step meanwhile; again after, for any that a dispatcher started before it stopped.
        foreach (var run in running.Values)
        {
            run.Execution.Drain();
        }

        await StopTakingWorkAsync().ConfigureAwait(false);
        var runs = running.Values.ToList();
        foreach (var run in runs)
        {
            run.Execution.Drain();
        }

        try
        {
            await Task.WhenAll(runs.Select(r => r.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Out of time: DisposeAsync stops the rest.
        }
    }

    private async Task StopTakingWorkAsync()
    {
        if (shutdown.IsCancellationRequested)
        {
            return;
        }

        await shutdown.CancelAsync().ConfigureAwait(false);
        queueDepthSource?.Dispose();
        if (retentionLoop is not null)
        {
            await retentionLoop.DisposeAsync().ConfigureAwait(false);
        }

        await Schedules.DisposeAsync().ConfigureAwait(false);
        await Dispatcher.DisposeAsync().ConfigureAwait(false);
        await Watch.StopAsync().ConfigureAwait(false);
        await ownershipWatch.ConfigureAwait(false);
    }

    /// <summary>Stops dispatching, stops running executions without recording anything (they stay pending for recovery), and waits for them.</summary>
    public async ValueTask DisposeAsync()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        await StopTakingWorkAsync().ConfigureAwait(false);

        var runs = running.Values.ToList();
        foreach (var run in runs)
        {
            run.Execution.Abandon("the application is shutting down");
        }

        try
        {
            // Real time, as the executor's waits: a fake clock nobody advances must not hold a shutdown forever.
            await Task.WhenAll(runs.Select(r => r.Completion)).WaitAsync(TimeSpan.FromSeconds(10), Database.Executor.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Workflows that ignore cancellation keep running; they can no longer record anything useful.
        }

        // Released last: once it is gone, live processes take over whatever this one leaves pending.
        await Watch.DisposeAsync().ConfigureAwait(false);
        shutdown.Dispose();
    }
}
