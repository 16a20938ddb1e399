using System.Data.Common;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Dbos.Internal;
using Dbos.Serialization;
using Dbos.SystemDatabase;

namespace Dbos.Execution;

/// <summary>What a workflow handle needs: the workflow's result and status.</summary>
internal interface IWorkflowResults
{
    Task<T> GetResultAsync<T>(string workflowId, CancellationToken cancellationToken);

    Task<WorkflowStatus?> GetStatusAsync(string workflowId, CancellationToken cancellationToken);
}

/// <summary>
/// Everything that works from outside a workflow, in an application or in a <see cref="DbosClient"/>: waiting for results,
/// reading statuses and steps, sending messages, reading events and streams. Waits hold no connection: they re-read the
/// database when the <see cref="ChangeNotifier"/> signals a change, and poll only as a fallback.
/// </summary>
internal sealed class ExternalAccess : IWorkflowResults
{
    private readonly Func<string, RunningWorkflow?> localRun;
    private readonly Func<string?, int> maxRecoveryAttemptsOf;

    public ExternalAccess(
        SystemDatabase.SystemDatabase database,
        ValueCodec codec,
        TimeProvider time,
        TimeSpan pollingInterval,
        string? applicationName,
        Func<string, RunningWorkflow?>? localRun = null,
        Func<string?, int>? maxRecoveryAttemptsOf = null)
    {
        Database = database;
        Codec = codec;
        Time = time;
        PollingInterval = pollingInterval;
        ApplicationName = applicationName;
        this.localRun = localRun ?? (static _ => null);
        this.maxRecoveryAttemptsOf = maxRecoveryAttemptsOf ?? (static _ => 0);
    }

    public SystemDatabase.SystemDatabase Database { get; }

    public ValueCodec Codec { get; }

    public TimeProvider Time { get; }

    public TimeSpan PollingInterval { get; }

    /// <summary>
    /// The result of an execution that ran in this process: its value, or its error thrown; false when it recorded no
    /// outcome (cancelled, stopped), which the database then holds.
    /// </summary>
    public static bool TryOutcome<T>(WorkflowOutcome outcome, string workflowId, ValueCodec codec, out T value)
    {
        switch (outcome)
        {
            case WorkflowOutcome.Succeeded succeeded:
                value = succeeded.Value is T typed || (succeeded.Value is null && default(T) is null)
                    ? (T)succeeded.Value!
                    : (T)codec.Decode(succeeded.Encoded, succeeded.Serialization, typeof(T), $"output of workflow '{workflowId}'")!;
                return true;
            case WorkflowOutcome.Failed failed:
                throw failed.Error;
            default:
                value = default!;
                return false;
        }
    }

    /// <summary>The application whose workflows listings show (null: all).</summary>
    public string? ApplicationName { get; }

    Task<T> IWorkflowResults.GetResultAsync<T>(string workflowId, CancellationToken cancellationToken) => AwaitOutcomeAsync<T>(workflowId, cancellationToken);

    /// <summary>
    /// Waits for a workflow's outcome: directly when it runs in this process (or ran in it, as the execution its start
    /// launched, startedHere), otherwise by polling its row.
    /// </summary>
    public Task<T> AwaitOutcomeAsync<T>(string workflowId, CancellationToken cancellationToken) => AwaitOutcomeAsync<T>(workflowId, null, cancellationToken);

    /// <inheritdoc cref="AwaitOutcomeAsync{T}(string, CancellationToken)"/>
    public async Task<T> AwaitOutcomeAsync<T>(string workflowId, RunningWorkflow? startedHere, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Subscribed before looking, so a launch here between the look and the wait (a claim by this process's
            // dispatcher) ends the wait at once rather than a polling interval later.
            using var launched = Database.Notifier.Subscribe(ChangeKind.LaunchedHere, workflowId);
            var known = localRun(workflowId) ?? startedHere;
            startedHere = null;
            if (known is { } run)
            {
                // A run stopped by a cancel may still be unwinding: its outcome is already in the database.
                await Task.WhenAny(run.Completion, run.Execution.Stopped).WaitAsync(cancellationToken).ConfigureAwait(false);
                if (run.Completion.IsCompleted && TryOutcome(run.Completion.Result, workflowId, Codec, out T value))
                {
                    return value;
                }
            }

            var row = await Database.GetOutcomeAsync(workflowId, cancellationToken).ConfigureAwait(false)
                ?? throw new WorkflowNotFoundException($"No workflow with ID '{workflowId}' exists.");
            switch (row.Status)
            {
                case StatusNames.Success:
                    return (T)Codec.Decode(row.Output, row.Serialization, typeof(T), $"output of workflow '{workflowId}'")!;
                case StatusNames.Error:
                    var error = ValueCodec.DecodeError(row.Error ?? "{}");
                    throw new WorkflowFailedException(workflowId, error.Name, error.Message, error.Code);
                case StatusNames.Cancelled:
                    throw new WorkflowCancelledException(workflowId, $"Workflow '{workflowId}' was cancelled.");
                case StatusNames.MaxRecoveryAttemptsExceeded:
                    throw new MaxRecoveryAttemptsExceededException(workflowId, maxRecoveryAttemptsOf(row.Name));
            }

            var delay = Task.Delay(PollingInterval, Time, cancellationToken);
            await (localRun(workflowId) is { Execution.IsStopped: false } local
                ? Task.WhenAny(delay, local.Completion, local.Execution.Stopped)
                : Task.WhenAny(delay, launched.Signalled)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// Waits until one of <paramref name="workflowIds"/> has finished (a status other than PENDING, ENQUEUED, DELAYED,
    /// as DBOS's <c>waitFirst</c> checks) and returns its ID: the first in the given order among those finished.
    /// </summary>
    public async Task<string> FirstFinishedAsync(string[] workflowIds, CancellationToken cancellationToken)
    {
        while (true)
        {
            var statuses = await Database.GetOwnershipAsync(workflowIds, cancellationToken).ConfigureAwait(false);
            foreach (var id in workflowIds)
            {
                if (statuses.Exists(s => s.WorkflowId == id && StatusNames.IsTerminal(s.Status)))
                {
                    return id;
                }
            }

            var wakeUps = new List<Task> { Task.Delay(PollingInterval, Time, cancellationToken) };
            foreach (var id in workflowIds)
            {
                if (localRun(id) is { } run)
                {
                    wakeUps.Add(run.Completion);
                }
            }

            await Task.WhenAny(wakeUps).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    public async Task<WorkflowStatus?> GetStatusAsync(string workflowId, CancellationToken cancellationToken)
    {
        var rows = await Database.ListWorkflowsAsync(new StatusQuery { WorkflowIds = [workflowId] }, cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : new WorkflowStatus(rows[0], Codec);
    }

    public async Task<WorkflowStatus> GetExistingStatusAsync(string workflowId, CancellationToken cancellationToken) =>
        await GetStatusAsync(workflowId, cancellationToken).ConfigureAwait(false)
        ?? throw new WorkflowNotFoundException($"No workflow with ID '{workflowId}' exists.");

    public async Task<IReadOnlyList<WorkflowStatus>> ListWorkflowsAsync(ListWorkflowsOptions options, CancellationToken cancellationToken)
    {
        options.Validate();
        var rows = await Database.ListWorkflowsAsync(Query(options), cancellationToken).ConfigureAwait(false);
        return rows.Select(r => new WorkflowStatus(r, Codec)).ToList();
    }

    /// <summary>The database query of a listing's filters (and paging).</summary>
    private StatusQuery Query(ListWorkflowsOptions options) =>
        new()
        {
            WorkflowIds = options.WorkflowIds,
            WorkflowIdPrefix = options.WorkflowIdPrefix,
            Statuses = options.Status?.Select(WorkflowStates.ToName).ToArray(),
            Names = Merge(options.Name, options.Names),
            QueueNames = Merge(options.QueueName, options.QueueNames),
            QueuePartitionKey = options.QueuePartitionKey,
            QueuedOnly = options.QueuedOnly,
            CreatedFromEpochMs = options.StartTime?.ToUnixTimeMilliseconds(),
            CreatedToEpochMs = options.EndTime?.ToUnixTimeMilliseconds(),
            ApplicationVersion = options.ApplicationVersion,

            // Like other DBOS implementations, an application lists its own workflows (and unclaimed ones) unless asked by ID.
            ApplicationName = options.ApplicationName ?? (options.WorkflowIds is null ? ApplicationName : null),
            ExecutorId = options.ExecutorId,
            ParentWorkflowId = options.ParentWorkflowId,
            AuthenticatedUser = options.AuthenticatedUser,
            ApplicationVersions = options.ApplicationVersions,
            ExecutorIds = options.ExecutorIds,
            AuthenticatedUsers = options.AuthenticatedUsers,
            ForkedFrom = options.ForkedFrom,
            HasParent = options.HasParent,
            Attributes = options.Attributes,
            Limit = options.Limit,
            Offset = options.Offset,
            Descending = options.SortDescending,
            LoadInput = options.LoadInput,
            LoadOutput = options.LoadOutput,
        };

    private static IReadOnlyList<string>? Merge(string? one, IReadOnlyList<string>? many) =>
        one is null ? many : many is null ? [one] : [one, .. many];

    /// <summary>Counts the workflows matching <paramref name="options"/>'s filters, grouped by <paramref name="groupBy"/>.</summary>
    public async Task<IReadOnlyList<WorkflowCount>> CountWorkflowsAsync(ListWorkflowsOptions options, WorkflowGrouping groupBy, CancellationToken cancellationToken)
    {
        options.Validate();
        if ((groupBy & ~WorkflowGrouping.All) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(groupBy), groupBy, "Not a combination of WorkflowGrouping values.");
        }

        var query = Query(options) with { Limit = null, Offset = null, LoadInput = false, LoadOutput = false };
        var rows = await Database.CountWorkflowsAsync(
            query,
            groupBy.HasFlag(WorkflowGrouping.Status),
            groupBy.HasFlag(WorkflowGrouping.Name),
            groupBy.HasFlag(WorkflowGrouping.QueueName),
            groupBy.HasFlag(WorkflowGrouping.ApplicationVersion),
            groupBy.HasFlag(WorkflowGrouping.ExecutorId),
            cancellationToken).ConfigureAwait(false);
        return rows.Select(r => new WorkflowCount(r.Status is null ? null : WorkflowStates.Parse(r.Status), r.Status, r.Name, r.QueueName, r.ApplicationVersion, r.ExecutorId, r.Count)).ToList();
    }

    public async Task<IReadOnlyList<StepInfo>> ListStepsAsync(string workflowId, CancellationToken cancellationToken)
    {
        await GetExistingStatusAsync(workflowId, cancellationToken).ConfigureAwait(false);
        var rows = await Database.GetOperationsAsync(workflowId, cancellationToken).ConfigureAwait(false);
        return rows.Select(r => new StepInfo(r, Codec)).ToList();
    }

    /// <summary>
    /// Reads with <paramref name="read"/> until it finds something or <paramref name="deadline"/> passes, re-reading whenever a
    /// change to <paramref name="payload"/> is signalled, and at least every polling interval when other processes' changes
    /// are not signalled (SQLite, or a lost Postgres listener). Returns null at the deadline.
    /// </summary>
    public async Task<TValue?> WaitForAsync<TValue>(ChangeKind kind, string payload, Func<CancellationToken, Task<TValue?>> read, DateTimeOffset deadline, CancellationToken cancellationToken)
        where TValue : class
    {
        while (true)
        {
            using var subscription = Database.Notifier.Subscribe(kind, payload);
            if (await read(cancellationToken).ConfigureAwait(false) is { } found)
            {
                return found;
            }

            var remaining = deadline - Time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                return null;
            }

            // With a healthy listener every change is signalled; the longer poll only guards against the unforeseen.
            var poll = Database.Notifier.SeesOtherProcesses ? PollingInterval * 10 : PollingInterval;
            await Task.WhenAny(subscription.Signalled, Task.Delay(remaining < poll ? remaining : poll, Time, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>The deadline <paramref name="timeout"/> from now (a timeout too long to add means "never").</summary>
    public DateTimeOffset DeadlineAfter(TimeSpan timeout)
    {
        var now = Time.GetUtcNow();
        return timeout >= DateTimeOffset.MaxValue - now ? DateTimeOffset.MaxValue : now + timeout;
    }

    public static string Topic(string? topic) => topic ?? OperationNames.NullTopic;

    /// <summary>Throws, changing nothing, unless every one of <paramref name="workflowIds"/> exists; returns their statuses.</summary>
    public async Task<IReadOnlyList<WorkflowStatus>> RequireExistingAsync(IReadOnlyList<string> workflowIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workflowIds);
        if (workflowIds.Count == 0 || workflowIds.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("Give at least one workflow ID, and no empty ones.", nameof(workflowIds));
        }

        var rows = await Database.ListWorkflowsAsync(new StatusQuery { WorkflowIds = workflowIds, LoadInput = false, LoadOutput = false }, cancellationToken).ConfigureAwait(false);
        var missing = workflowIds.Except(rows.Select(r => r.WorkflowId), StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new WorkflowNotFoundException(
                $"No workflow with ID {string.Join(", ", missing.Select(m => $"'{m}'"))} exists; nothing was changed.");
        }

        return rows.Select(r => new WorkflowStatus(r, Codec)).ToList();
    }

    /// <summary>Cancels unfinished workflows; finished ones are left as they are. Returns the IDs cancelled.</summary>
    public async Task<IReadOnlyList<string>> CancelAsync(IReadOnlyList<string> workflowIds, bool cancelChildren, CancellationToken cancellationToken)
    {
        await RequireExistingAsync(workflowIds, cancellationToken).ConfigureAwait(false);
        string[] ids = [.. workflowIds];
        if (cancelChildren)
        {
            ids = [.. ids, .. await Database.GetDescendantsAsync(ids, cancellationToken).ConfigureAwait(false)];
        }

        return await Database.CancelAsync(ids, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Puts cancelled, dead-lettered or pending workflows back on a queue with a fresh budget of recovery attempts. Returns the IDs resumed.</summary>
    public async Task<IReadOnlyList<string>> ResumeAsync(IReadOnlyList<string> workflowIds, string? queueName, CancellationToken cancellationToken)
    {
        await RequireExistingAsync(workflowIds, cancellationToken).ConfigureAwait(false);
        return await Database.ResumeAsync([.. workflowIds], queueName ?? StatusNames.InternalQueue, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts a copy of a workflow that reuses the outcomes recorded before <paramref name="startStep"/>. Returns the new ID.</summary>
    public async Task<string> ForkAsync(string workflowId, int startStep, ForkOptions? options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        ArgumentOutOfRangeException.ThrowIfNegative(startStep);
        if (options?.NewWorkflowId is { } given && string.IsNullOrWhiteSpace(given))
        {
            throw new ArgumentException("The new workflow ID, when given, must not be empty.", nameof(options));
        }

        var newId = options?.NewWorkflowId ?? Guid.NewGuid().ToString();
        if (!await Database.ForkAsync(workflowId, newId, startStep, options?.ApplicationVersion, StatusNames.InternalQueue, cancellationToken).ConfigureAwait(false))
        {
            throw new WorkflowNotFoundException($"No workflow with ID '{workflowId}' exists; nothing was forked.");
        }

        return newId;
    }

    /// <summary>Deletes workflows and what they recorded (and, if asked, their children, recursively). Returns every ID deleted.</summary>
    public async Task<IReadOnlyList<string>> DeleteAsync(IReadOnlyList<string> workflowIds, bool deleteChildren, CancellationToken cancellationToken)
    {
        await RequireExistingAsync(workflowIds, cancellationToken).ConfigureAwait(false);
        string[] ids = [.. workflowIds];
        if (deleteChildren)
        {
            ids = [.. ids, .. await Database.GetDescendantsAsync(ids, cancellationToken).ConfigureAwait(false)];
        }

        await Database.DeleteAsync(ids, cancellationToken).ConfigureAwait(false);
        return ids;
    }

    // ---- Schedules ----

    internal static WorkflowSchedule ToSchedule(ScheduleRow row) => new()
    {
        Id = row.ScheduleId,
        Name = row.ScheduleName,
        WorkflowName = row.WorkflowName,
        Cron = row.Schedule,
        Status = row.Status == "PAUSED" ? ScheduleStatus.Paused : ScheduleStatus.Active,
        TimeZone = row.CronTimezone,
        QueueName = row.QueueName,
        LastFiredAt = DateTimeOffset.TryParse(row.LastFiredAt, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var fired) ? fired : null,
        AutomaticBackfill = row.AutomaticBackfill,
        ApplicationName = row.ApplicationName,
    };

    internal DateTimeOffset? ToScheduleLastFired(ScheduleRow row) => ToSchedule(row).LastFiredAt;

    /// <summary>A schedule row for a workflow, validated (cron expression and time zone).</summary>
    internal ScheduleRow NewSchedule(string workflowName, string cron, ScheduleOptions? options, string? owner)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(workflowName);
        var name = options?.Name ?? workflowName;
        CronSchedule.Parse(cron, name);
        CronSchedule.Zone(options?.TimeZone, name);
        return new ScheduleRow(
            Guid.NewGuid().ToString(), name, workflowName, null, cron, "ACTIVE", "null", null, options?.AutomaticBackfill ?? false, options?.TimeZone, options?.Queue, owner);
    }

    public async Task<WorkflowSchedule> CreateScheduleAsync(string workflowName, string cron, ScheduleOptions? options, CancellationToken cancellationToken)
    {
        var row = NewSchedule(workflowName, cron, options, ApplicationName);
        if (!await Database.CreateScheduleAsync(row, cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"A schedule named '{row.ScheduleName}' already exists.");
        }

        return ToSchedule(row);
    }

    /// <summary>Records a queue in the queues table (replacing the limits of a row this application owns); every process of the application serves it within seconds.</summary>
    public async Task<Queue> RegisterQueueAsync(string name, QueueOptions? options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        StorableText.Check(name, "The queue name", nameof(name));
        if (name.StartsWith("_dbos", StringComparison.Ordinal))
        {
            throw new ArgumentException($"Queue name '{name}' is reserved: names starting with '_dbos' belong to DBOS's internal queues.", nameof(name));
        }

        options ??= new QueueOptions();
        options.Validate(name);
        if (await Database.UpsertQueueAsync(QueueDispatcher.ToRecord(name, options), ApplicationName, Time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false) is { } owner)
        {
            throw new InvalidOperationException($"Queue '{name}' belongs to application '{owner}' on this system database; queue names are shared by every application on it. Nothing was registered.");
        }

        return new Queue(name, options);
    }

    public async Task UpdateQueueAsync(string name, QueueOptions options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(name);
        await UpdateQueueRowAsync(Database, QueueDispatcher.ToRecord(name, options), ApplicationName, Time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Changes an existing queue row of <paramref name="owner"/> (or an unowned one), or says why it cannot.</summary>
    internal static async Task UpdateQueueRowAsync(SystemDatabase.SystemDatabase database, QueueRecord record, string? owner, long nowEpochMs, CancellationToken cancellationToken)
    {
        if (await database.UpdateQueueAsync(record, owner, nowEpochMs, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var (exists, actual) = await database.GetQueueOwnerAsync(record.Name, cancellationToken).ConfigureAwait(false);
        throw new InvalidOperationException(exists
            ? $"Queue '{record.Name}' belongs to application '{actual}'; it cannot be changed from '{owner}'. Nothing was changed."
            : $"No queue named '{record.Name}' is registered in the queues table; register it with RegisterQueueAsync. Nothing was changed.");
    }

    public async Task<IReadOnlyList<Queue>> ListQueuesAsync(CancellationToken cancellationToken) =>
        (await Database.ListQueuesAsync(ApplicationName, cancellationToken).ConfigureAwait(false))
            .Select(row => new Queue(row.Queue.Name, QueueDispatcher.ToOptions(row.Queue))).ToList();

    public async Task<bool> DeleteQueueAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return await Database.DeleteQueueAsync(name, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<WorkflowSchedule>> ListSchedulesAsync(CancellationToken cancellationToken) =>
        (await Database.ListSchedulesAsync(ApplicationName, cancellationToken).ConfigureAwait(false)).Select(ToSchedule).ToList();

    private async Task<ScheduleRow> RequireScheduleAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return await Database.GetScheduleAsync(name, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"No schedule named '{name}' exists.");
    }

    public async Task SetScheduleStatusAsync(string name, ScheduleStatus status, CancellationToken cancellationToken)
    {
        await RequireScheduleAsync(name, cancellationToken).ConfigureAwait(false);
        await Database.SetScheduleStatusAsync(name, status == ScheduleStatus.Paused ? "PAUSED" : "ACTIVE", cancellationToken).ConfigureAwait(false);
    }

    public async Task DeleteScheduleAsync(string name, CancellationToken cancellationToken)
    {
        await RequireScheduleAsync(name, cancellationToken).ConfigureAwait(false);
        await Database.DeleteScheduleAsync(name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs a schedule's workflow now, outside its cron ticks. Returns the run's workflow ID.</summary>
    public async Task<string> TriggerScheduleAsync(string name, CancellationToken cancellationToken)
    {
        var schedule = await RequireScheduleAsync(name, cancellationToken).ConfigureAwait(false);
        var now = Time.GetUtcNow();
        var workflowId = $"sched-{name}-trigger-{CronSchedule.FormatTime(now)}";
        await EnqueueTickAsync(schedule, now, workflowId, cancellationToken).ConfigureAwait(false);
        return workflowId;
    }

    /// <summary>Runs every tick of a schedule in [<paramref name="start"/>, <paramref name="end"/>) that has not run yet. Returns the runs' IDs.</summary>
    public async Task<IReadOnlyList<string>> BackfillScheduleAsync(string name, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken)
    {
        var schedule = await RequireScheduleAsync(name, cancellationToken).ConfigureAwait(false);
        return await BackfillAsync(schedule, start, end, cancellationToken).ConfigureAwait(false);
    }

    internal async Task<IReadOnlyList<string>> BackfillAsync(ScheduleRow schedule, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken)
    {
        var cron = CronSchedule.Parse(schedule.Schedule, schedule.ScheduleName);
        var zone = CronSchedule.Zone(schedule.CronTimezone, schedule.ScheduleName);
        var ids = new List<string>();
        foreach (var tick in cron.GetOccurrences(start.UtcDateTime, end.UtcDateTime, zone, fromInclusive: false, toInclusive: false))
        {
            var time = new DateTimeOffset(tick, TimeSpan.Zero);
            var id = CronSchedule.TickWorkflowId(schedule.ScheduleName, time);
            await EnqueueTickAsync(schedule, time, id, cancellationToken).ConfigureAwait(false);
            ids.Add(id);
        }

        return ids;
    }

    /// <summary>
    /// Enqueues one run of a schedule's workflow with its tick time as input, as other DBOS implementations do: on the
    /// schedule's queue, under its owner's latest application version. The run's ID makes this idempotent, so processes
    /// that fire the same tick start it once.
    /// </summary>
    internal async Task<bool> EnqueueTickAsync(ScheduleRow schedule, DateTimeOffset tick, string workflowId, CancellationToken cancellationToken)
    {
        var owner = schedule.ApplicationName ?? ApplicationName;
        var latest = await Database.ListApplicationVersionsAsync(owner, cancellationToken).ConfigureAwait(false);
        var context = IsJson(schedule.Context) ? schedule.Context : "null";
        var row = NewWorkflowRow.Create(
            workflowId,
            schedule.WorkflowName,
            $$"""{"positionalArgs":["{{CronSchedule.FormatTime(tick)}}",{{context}}]}""",
            PortableJsonSerializer.FormatName,
            Time.GetUtcNow(),
            owner,
            latest.Count > 0 ? latest[0].VersionName : null,
            queue: schedule.QueueName ?? StatusNames.InternalQueue,
            scheduleName: schedule.ScheduleName);
        return (await Database.StartWorkflowAsync(row, cancellationToken).ConfigureAwait(false)).Inserted;
    }

    private static bool IsJson(string text)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(text);
            return true;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    // ---- Executors ----

    private ExecutorLiveness? liveness;

    /// <summary>Reads (and, when asked, moves) what the executors' liveness locks say; it holds no lock itself.</summary>
    private ExecutorLiveness Liveness(string operation) =>
        liveness ??= ExecutorLiveness.For(
            Database.Executor,
            ApplicationName ?? throw new InvalidOperationException($"{operation} needs the application's name: set DbosClientOptions.ApplicationName."));

    public Task<IReadOnlyList<ExecutorInfo>> ListExecutorsAsync(CancellationToken cancellationToken) =>
        ListExecutorsAsync(Liveness("Listing executors"), cancellationToken);

    /// <summary>The executors of another application than this access's own (the dashboard shows any application's).</summary>
    public Task<IReadOnlyList<ExecutorInfo>> ListExecutorsAsync(string applicationName, CancellationToken cancellationToken) =>
        ListExecutorsAsync(applicationName == ApplicationName ? Liveness("Listing executors") : ExecutorLiveness.For(Database.Executor, applicationName), cancellationToken);

    private static async Task<IReadOnlyList<ExecutorInfo>> ListExecutorsAsync(ExecutorLiveness liveness, CancellationToken cancellationToken) =>
        (await liveness.ListAsync(cancellationToken).ConfigureAwait(false))
            .Select(e => new ExecutorInfo(
                e.ExecutorId,
                e.Alive ? ExecutorState.Alive : ExecutorLiveness.IsGenerated(e.ExecutorId) ? ExecutorState.Dead : ExecutorState.Unknown,
                e.ApplicationVersion,
                e.PendingWorkflows,
                e.PendingVersions))
            .ToList();

    /// <summary>Puts an executor's pending workflows back on their queues, unless the executor is alive.</summary>
    public async Task<IReadOnlyList<(string WorkflowId, string QueueName)>> RecoverExecutorAsync(string executorId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(executorId);
        var inspector = Liveness("Recovering an executor");
        if ((await inspector.ListAsync(cancellationToken).ConfigureAwait(false)).Any(e => e.Alive && e.ExecutorId == executorId))
        {
            throw new InvalidOperationException($"Executor '{executorId}' is alive: its process runs its workflows. Only a dead or stopped executor's work can be recovered.");
        }

        // On Postgres the move itself checks again that the executor holds no liveness, in the same statement.
        return await inspector.TakeOverAsync(executorId, cancellationToken).ConfigureAwait(false);
    }

    // ---- Application versions ----

    public async Task<IReadOnlyList<ApplicationVersionInfo>> ListApplicationVersionsAsync(CancellationToken cancellationToken) =>
        (await Database.ListApplicationVersionsAsync(ApplicationName, cancellationToken).ConfigureAwait(false))
            .Select(v => new ApplicationVersionInfo(v.VersionName, DateTimeOffset.FromUnixTimeMilliseconds(v.VersionTimestamp), DateTimeOffset.FromUnixTimeMilliseconds(v.CreatedAt), v.ApplicationName))
            .ToList();

    public async Task SetLatestApplicationVersionAsync(string versionName, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(versionName);
        if (!await Database.SetLatestApplicationVersionAsync(versionName, ApplicationName, Time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"No application version named '{versionName}' is registered.");
        }
    }

    /// <summary>
    /// Moves this application's enqueued and delayed workflows of <paramref name="fromVersion"/> to <paramref name="toVersion"/>
    /// (default: the latest registered version), so that processes of that version run them. Returns the IDs and queues moved.
    /// </summary>
    public async Task<List<(string WorkflowId, string? QueueName)>> MoveWorkflowsToVersionAsync(string fromVersion, string? toVersion, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(fromVersion);
        if (toVersion is null)
        {
            var latest = await Database.ListApplicationVersionsAsync(ApplicationName, cancellationToken).ConfigureAwait(false);
            toVersion = latest.Count > 0
                ? latest[0].VersionName
                : throw new InvalidOperationException("No application version is registered yet; name the version to move the workflows to.");
        }

        StorableText.Check(toVersion, "The application version", nameof(toVersion));
        return await Database.MoveWorkflowsToVersionAsync(fromVersion, toVersion, ApplicationName, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Changes the priority of a workflow still waiting on its queue.</summary>
    public async Task SetPriorityAsync(string workflowId, int priority, CancellationToken cancellationToken)
    {
        StartOptions.ValidateQueueing(null, priority, null);
        if (!await Database.SetPriorityAsync(workflowId, priority, cancellationToken).ConfigureAwait(false))
        {
            var status = await GetExistingStatusAsync(workflowId, cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException($"Workflow '{workflowId}' is {status.StatusText}, not waiting on a queue: its priority cannot change.");
        }
    }

    /// <summary>Changes when a delayed workflow may start.</summary>
    public async Task SetDelayAsync(string workflowId, DateTimeOffset startAt, CancellationToken cancellationToken)
    {
        if (!await Database.SetDelayAsync(workflowId, startAt.ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false))
        {
            var status = await GetExistingStatusAsync(workflowId, cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException($"Workflow '{workflowId}' is {status.StatusText}, not DELAYED: its start time cannot change.");
        }
    }

    /// <summary>The span of putting a workflow on a queue, whose context the workflow stores and its execution continues.</summary>
    internal static Activity? StartEnqueueSpan(string workflowName, string? queue, string workflowId, string? applicationName)
    {
        if (queue is null)
        {
            return null;
        }

        var activity = Telemetry.Source.StartActivity($"enqueue {workflowName}", ActivityKind.Producer);
        activity?.SetTag("dbos.workflow.id", workflowId).SetTag("dbos.workflow.name", workflowName).SetTag("dbos.queue.name", queue)
            .SetTag("dbos.application.name", applicationName);
        return activity;
    }

    /// <summary>A workflow ID names one workflow: starting or enqueueing it under another name changes nothing and fails.</summary>
    internal static void CheckSameWorkflow(string workflowId, string? existingName, string requestedName)
    {
        if (!string.Equals(existingName, requestedName, StringComparison.Ordinal))
        {
            throw new WorkflowConflictException(
                $"Workflow ID '{workflowId}' is already used by workflow '{existingName}'; it cannot be started as '{requestedName}'. Nothing was changed.");
        }
    }

    /// <summary>The row of a workflow enqueued by name, checked; and its enqueue span, which the caller disposes.</summary>
    private NewWorkflowRow NewEnqueueRow(EnqueueOptions options, object? input, Type inputType, bool hasInput, out Activity? span)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.WorkflowName);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.QueueName);
        StartOptions.ValidateQueueing(options.QueueName, options.Priority, options.Delay);
        StartOptions.ValidateDeduplication(options.DeduplicationId, options.DeduplicationPolicy);
        StartOptions.ValidateAuthentication(options.AuthenticatedUser, options.AuthenticatedRoles);
        WorkflowAttributes.Validate(options.Attributes, nameof(options));
        if (options.WorkflowId is { } given && string.IsNullOrWhiteSpace(given))
        {
            throw new ArgumentException("A workflow ID, when given, must not be empty.", nameof(options));
        }

        var workflowId = options.WorkflowId ?? Guid.NewGuid().ToString();
        var applicationName = options.ApplicationName ?? ApplicationName;
        span = StartEnqueueSpan(options.WorkflowName, options.QueueName, workflowId, applicationName);
        return NewWorkflowRow.Create(
            workflowId,
            options.WorkflowName,
            Codec.EncodeInputs(input, inputType, hasInput, $"input of workflow '{options.WorkflowName}'"),
            Codec.Format,
            Time.GetUtcNow(),
            applicationName,
            options.ApplicationVersion,
            queue: options.QueueName,
            delay: options.Delay,
            timeout: options.Timeout,
            deduplicationId: options.DeduplicationId,
            priority: options.Priority,
            partitionKey: options.PartitionKey,
            authenticatedUser: options.AuthenticatedUser,
            authenticatedRoles: options.AuthenticatedRoles,
            attributes: options.Attributes);
    }

    /// <summary>
    /// Enqueues a workflow by name in the caller's own open transaction (the outbox): it exists, and its queue sees it,
    /// only once the caller commits. The system database must be the caller's database (Postgres).
    /// </summary>
    public async Task<string> EnqueueInTransactionAsync(
        DbConnection connection, DbTransaction transaction, EnqueueOptions options, object? input, Type inputType, bool hasInput, CancellationToken cancellationToken)
    {
        CheckCallerTransaction(connection, transaction);
        ArgumentNullException.ThrowIfNull(options);
        if (options.DeduplicationPolicy == DeduplicationPolicy.ReturnExisting)
        {
            // A refused insert aborts the caller's transaction, so the holder could not be looked up in it.
            throw new ArgumentException("DeduplicationPolicy.ReturnExisting cannot be used in your own transaction: a collision aborts it. Nothing was written.", nameof(options));
        }

        var row = NewEnqueueRow(options, input, inputType, hasInput, out var span);
        using var enqueueSpan = span;
        var caller = await Database.CallerSessionAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        var started = await Database.StartWorkflowInCallerAsync(caller, row, cancellationToken).ConfigureAwait(false);
        if (!started.Inserted)
        {
            CheckSameWorkflow(row.WorkflowId, started.Name, options.WorkflowName);
        }

        return row.WorkflowId;
    }

    /// <summary>Sends a message in the caller's own open transaction (the outbox): it is delivered only once the caller commits.</summary>
    public async Task SendInTransactionAsync<T>(
        DbConnection connection, DbTransaction transaction, string destinationWorkflowId, T message, string? topic, string? idempotencyKey, CancellationToken cancellationToken)
    {
        CheckCallerTransaction(connection, transaction);
        ArgumentException.ThrowIfNullOrEmpty(destinationWorkflowId);
        var text = Codec.Encode(message, typeof(T), $"message to workflow '{destinationWorkflowId}'");
        var messageId = idempotencyKey is null ? Guid.NewGuid().ToString() : $"{idempotencyKey}::{destinationWorkflowId}";
        var caller = await Database.CallerSessionAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        await Database.SendInCallerAsync(caller, destinationWorkflowId, Topic(topic), text, Codec.Format, messageId, cancellationToken).ConfigureAwait(false);
    }

    private static void CheckCallerTransaction(DbConnection connection, DbTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(transaction);
        if (connection.State != System.Data.ConnectionState.Open)
        {
            throw new ArgumentException("The connection must be open, with a transaction begun on it. Nothing was written.", nameof(connection));
        }

        if (!ReferenceEquals(transaction.Connection, connection))
        {
            throw new ArgumentException("The transaction must be one begun on this connection and still open (not committed or rolled back). Nothing was written.", nameof(transaction));
        }
    }

    /// <summary>Enqueues a workflow by name (for a process that does not run it), as other DBOS clients do.</summary>
    public async Task<string> EnqueueAsync(EnqueueOptions options, object? input, Type inputType, bool hasInput, CancellationToken cancellationToken)
    {
        var row = NewEnqueueRow(options, input, inputType, hasInput, out var span);
        using var enqueueSpan = span;
        var workflowId = row.WorkflowId;
        var (started, startedId) = await StartWorkflowAsync(row, options.DeduplicationPolicy, cancellationToken).ConfigureAwait(false);
        if (started is { Inserted: false })
        {
            CheckSameWorkflow(workflowId, started.Name, options.WorkflowName);
        }

        return startedId;
    }

    /// <summary>
    /// Inserts a new workflow's rows. When its deduplication ID is held and <paramref name="policy"/> is
    /// <see cref="DeduplicationPolicy.ReturnExisting"/>, returns no start and the holder's ID instead of throwing, as the
    /// TypeScript SDK's <c>'return-existing'</c> does: if the holder finished between the insert and the look, the
    /// insert is tried again.
    /// </summary>
    internal async Task<(StartResult? Started, string WorkflowId)> StartWorkflowAsync(NewWorkflowRow row, DeduplicationPolicy policy, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                return (await Database.StartWorkflowAsync(row, cancellationToken).ConfigureAwait(false), row.WorkflowId);
            }
            catch (WorkflowDeduplicatedException) when (policy == DeduplicationPolicy.ReturnExisting)
            {
                if (await Database.GetDeduplicatedWorkflowAsync(row.QueueName!, row.DeduplicationId!, cancellationToken).ConfigureAwait(false) is { } holder)
                {
                    return (null, holder);
                }
            }
        }
    }

    /// <summary>
    /// Debounces a call as the TypeScript SDK's <c>Debouncer</c> does, on the same rows: the key's deduplication ID
    /// (<c>.NAME-KEY</c>: an empty class name, a dot, the workflow's name, a dash, the key) is held on the queue by one
    /// <c>DELAYED</c> workflow with <c>is_debounced</c> set. A call pushes that workflow's start back to a period from
    /// now (never past its <c>debounce_deadline_epoch_ms</c>) and replaces its input; with no such workflow, it enqueues
    /// one delayed by the period. The dispatcher that moves it to <c>ENQUEUED</c> frees the key. Returns the workflow's ID.
    /// </summary>
    public async Task<string> DebounceAsync(
        string workflowName, string key, TimeSpan period, string inputs, DebouncerOptions options, string? applicationVersion, CancellationToken cancellationToken)
    {
        var queue = options.Queue ?? StatusNames.InternalQueue;
        var deduplicationId = $".{workflowName}-{key}";
        StorableText.Check(deduplicationId, "The debounce key", nameof(key));
        var target = options.ApplicationName ?? ApplicationName;
        for (var attempt = 0; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var now = Time.GetUtcNow();
            var bounce = await Database.DebounceAsync(
                workflowName, queue, deduplicationId, (now + period).ToUnixTimeMilliseconds(), inputs, Codec.Format, target, cancellationToken).ConfigureAwait(false);
            if (bounce.BouncedWorkflowId is { } bounced)
            {
                return bounced;
            }

            if (bounce.Holder is not { } holder)
            {
                var workflowId = Guid.NewGuid().ToString();
                using var span = StartEnqueueSpan(workflowName, queue, workflowId, target);
                var row = NewWorkflowRow.Create(
                    workflowId,
                    workflowName,
                    inputs,
                    Codec.Format,
                    now,
                    target,
                    applicationVersion,
                    queue: queue,
                    delay: period,
                    timeout: options.WorkflowTimeout,
                    deduplicationId: deduplicationId,
                    debounced: true,
                    debounceDeadline: options.DebounceTimeout is { } limit ? now + limit : null);
                try
                {
                    await Database.StartWorkflowAsync(row, cancellationToken).ConfigureAwait(false);
                    return workflowId;
                }
                catch (WorkflowDeduplicatedException)
                {
                    // Another call took the key between the bounce and this enqueue: bounce that workflow instead.
                    continue;
                }
            }

            // Held by something this debouncer must not extend: not debounced, another workflow, or another application's.
            if (!holder.IsDebounced || holder.Name != workflowName || !string.IsNullOrEmpty(holder.ClassName)
                || (target is not null && holder.ApplicationName is not null && holder.ApplicationName != target) || attempt >= 100)
            {
                throw new WorkflowDeduplicatedException(
                    $"Workflow '{workflowName}' was not debounced: deduplication ID '{deduplicationId}' is held on queue '{queue}' by workflow '{holder.WorkflowId}', which this debouncer cannot extend. Nothing was changed.");
            }

            // A debounced workflow of ours that just left DELAYED still holds the key for an instant: look again.
            await Task.Delay(TimeSpan.FromMilliseconds(10), Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sends a message from outside a workflow; the idempotency key makes a retried send deliver once.</summary>
    public Task SendAsync<T>(string destinationWorkflowId, T message, string? topic, string? idempotencyKey, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(destinationWorkflowId);
        var text = Codec.Encode(message, typeof(T), $"message to workflow '{destinationWorkflowId}'");
        var messageId = idempotencyKey is null ? Guid.NewGuid().ToString() : $"{idempotencyKey}::{destinationWorkflowId}";
        return Database.SendAsync(destinationWorkflowId, Topic(topic), text, Codec.Format, messageId, cancellationToken);
    }

    /// <summary>
    /// Sends one message to many workflows in one statement; an idempotency key gives each destination its own message ID
    /// (<c>KEY::DESTINATION</c>, as a single send), so a retry delivers nothing twice. With <paramref name="operation"/>,
    /// the send is recorded as that workflow operation in the same transaction.
    /// </summary>
    internal async Task<SendOutcome> SendManyAsync<T>(
        OperationRecord? operation, IReadOnlyList<string> destinationWorkflowIds, T message, string? topic, string? idempotencyKey, CancellationToken cancellationToken)
    {
        var destinations = CheckDestinations(destinationWorkflowIds);
        var text = Codec.Encode(message, typeof(T), $"message to {destinations.Length} workflow(s)");
        var messageIds = destinations.Select(d => idempotencyKey is null ? Guid.NewGuid().ToString() : $"{idempotencyKey}::{d}").ToArray();
        return destinations.Length == 0
            ? SendOutcome.Sent
            : await Database.SendManyAsync(operation, destinations, messageIds, Topic(topic), text, Codec.Format, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends one message to many workflows from outside a workflow (see <see cref="SendManyAsync{T}(OperationRecord?, IReadOnlyList{string}, T, string?, string?, CancellationToken)"/>).</summary>
    public async Task SendManyAsync<T>(IReadOnlyList<string> destinationWorkflowIds, T message, string? topic, string? idempotencyKey, CancellationToken cancellationToken)
    {
        if (await SendManyAsync(null, destinationWorkflowIds, message, topic, idempotencyKey, cancellationToken).ConfigureAwait(false) == SendOutcome.NoSuchDestination)
        {
            throw await NoSuchDestinationsAsync(destinationWorkflowIds, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The error of a send to many workflows that named an unknown one: which, and that nothing was sent.</summary>
    internal async Task<WorkflowNotFoundException> NoSuchDestinationsAsync(IReadOnlyList<string> destinationWorkflowIds, CancellationToken cancellationToken)
    {
        var missing = await Database.MissingWorkflowsAsync([.. destinationWorkflowIds], cancellationToken).ConfigureAwait(false);
        return new WorkflowNotFoundException(
            $"Cannot send to workflow(s) {string.Join(", ", missing.Select(m => $"'{m}'"))}: no workflow has that ID. No message was sent to any destination.");
    }

    private static string[] CheckDestinations(IReadOnlyList<string> destinationWorkflowIds)
    {
        ArgumentNullException.ThrowIfNull(destinationWorkflowIds);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in destinationWorkflowIds)
        {
            if (string.IsNullOrEmpty(id))
            {
                throw new ArgumentException("A destination workflow ID must not be null or empty.", nameof(destinationWorkflowIds));
            }

            StorableText.Check(id, "A destination workflow ID", nameof(destinationWorkflowIds));
            if (!seen.Add(id))
            {
                throw new ArgumentException($"Destination workflow '{id}' is listed twice; each destination gets the message once.", nameof(destinationWorkflowIds));
            }
        }

        return [.. destinationWorkflowIds];
    }

    /// <summary>The latest value of every event a workflow has set, by key (an empty dictionary for none or no such workflow).</summary>
    public async Task<Dictionary<string, T?>> GetAllEventsAsync<T>(string workflowId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        var rows = await Database.GetAllEventsAsync(workflowId, cancellationToken).ConfigureAwait(false);
        var events = new Dictionary<string, T?>(rows.Count, StringComparer.Ordinal);
        foreach (var (key, value) in rows)
        {
            events[key] = (T?)Codec.Decode(value.Text, value.Serialization, typeof(T), $"event '{key}' of workflow '{workflowId}'");
        }

        return events;
    }

    /// <summary>Waits until the workflow sets the event (or the timeout passes), and returns its latest value.</summary>
    public async Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var value = await WaitForEventAsync(workflowId, key, DeadlineAfter(timeout), cancellationToken).ConfigureAwait(false);
        return value is null ? default : (T?)Codec.Decode(value.Text, value.Serialization, typeof(T), $"event '{key}' of workflow '{workflowId}'");
    }

    public Task<StoredValue?> WaitForEventAsync(string workflowId, string key, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        ArgumentException.ThrowIfNullOrEmpty(key);
        return WaitForAsync(ChangeKind.Event, ChangeNotifier.Payload(workflowId, key), ct => Database.GetEventAsync(workflowId, key, ct), deadline, cancellationToken);
    }

    /// <summary>
    /// The next value of a stream at or after <paramref name="offset"/>, waiting for it; null when the stream is closed, or
    /// when its writer has finished and no value is left.
    /// </summary>
    public async Task<(int Offset, StoredValue Value)?> NextStreamValueAsync(string workflowId, string key, int offset, CancellationToken cancellationToken)
    {
        var found = await WaitForAsync(
            ChangeKind.Stream,
            ChangeNotifier.Payload(workflowId, key),
            async ct =>
            {
                var values = await Database.ReadStreamAsync(workflowId, key, offset, 1, ct).ConfigureAwait(false);
                if (values.Count > 0)
                {
                    return new StreamRead(values[0].Offset, values[0].Value);
                }

                // A writer that finished without closing the stream ends it; look once more for a value it wrote just before.
                var writer = await Database.GetOutcomeAsync(workflowId, ct).ConfigureAwait(false);
                if (writer is null || StatusNames.IsTerminal(writer.Status))
                {
                    values = await Database.ReadStreamAsync(workflowId, key, offset, 1, ct).ConfigureAwait(false);
                    return values.Count > 0 ? new StreamRead(values[0].Offset, values[0].Value) : StreamRead.End;
                }

                return null;
            },
            DateTimeOffset.MaxValue,
            cancellationToken).ConfigureAwait(false);
        return found is null || found.IsEnd || IsStreamEnd(found.Value!) ? null : (found.Offset, found.Value!);
    }

    public static bool IsStreamEnd(StoredValue value) => value.Text == OperationNames.StreamClosed;

    /// <summary>Reads a stream from <paramref name="fromOffset"/> to its end, waiting for values as they are written.</summary>
    public async IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentOutOfRangeException.ThrowIfNegative(fromOffset);
        var offset = fromOffset;
        while (await NextStreamValueAsync(workflowId, key, offset, cancellationToken).ConfigureAwait(false) is { } next)
        {
            yield return (T)Codec.Decode(next.Value.Text, next.Value.Serialization, typeof(T), $"value {next.Offset} of stream '{key}' of workflow '{workflowId}'")!;
            offset = next.Offset + 1;
        }
    }

    private sealed record StreamRead(int Offset, StoredValue? Value, bool IsEnd = false)
    {
        public static StreamRead End { get; } = new(-1, null, IsEnd: true);
    }
}
