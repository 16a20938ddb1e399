namespace Dbos.SystemDatabase;

/// <summary>The status strings of the shared schema.</summary>
internal static class StatusNames
{
    public const string Pending = "PENDING";
    public const string Success = "SUCCESS";
    public const string Error = "ERROR";
    public const string Cancelled = "CANCELLED";
    public const string Enqueued = "ENQUEUED";
    public const string Delayed = "DELAYED";
    public const string MaxRecoveryAttemptsExceeded = "MAX_RECOVERY_ATTEMPTS_EXCEEDED";

    /// <summary>The queue that recovered, resumed and forked workflows run on (not a row in the queues table).</summary>
    public const string InternalQueue = "_dbos_internal_queue";

    public static bool IsTerminal(string status) => status is Success or Error or Cancelled or MaxRecoveryAttemptsExceeded;
}

/// <summary>The names the shared schema records for operations other than user steps.</summary>
internal static class OperationNames
{
    public const string Sleep = "DBOS.sleep";
    public const string Now = "DBOS.now";
    public const string RandomUuid = "DBOS.randomUUID";
    public const string GetResult = "DBOS.getResult";
    public const string Send = "DBOS.send";
    public const string Recv = "DBOS.recv";
    public const string SetEvent = "DBOS.setEvent";
    public const string GetEvent = "DBOS.getEvent";
    public const string WriteStream = "DBOS.writeStream";
    public const string CloseStream = "DBOS.closeStream";
    public const string ReadStream = "DBOS.readStream";

    /// <summary>The prefix of a patch's marker (<c>DBOS.patch-</c> and the patch's name).</summary>
    public const string PatchPrefix = "DBOS.patch-";

    /// <summary>
    /// <c>WorkflowContext.WhenAnyAsync</c>: the index of the task that completed first, as a portable JSON number. DBOS's
    /// own <c>DBOS.waitFirst</c> records a workflow ID and covers workflow handles only, so this is a name of its own.
    /// </summary>
    public const string WhenAny = "DBOS.whenAny";

    /// <summary><c>WorkflowContext.WaitFirstAsync</c>: the ID of the first workflow found finished, as DBOS's <c>waitFirst</c> records it.</summary>
    public const string WaitFirst = "DBOS.waitFirst";

    /// <summary>A send to many workflows from a workflow, as DBOS for Python names its bulk send.</summary>
    public const string SendMany = "DBOS.send_bulk";

    /// <summary>Reading every event of a workflow from a workflow, as DBOS for Python names it (output: the key → value object).</summary>
    public const string GetAllEvents = "DBOS.get_events";

    /// <summary><c>WorkflowContext.SetAttributesAsync</c>, named as DBOS for Python records <c>update_workflow_attributes</c>.</summary>
    public const string UpdateWorkflowAttributes = "DBOS.updateWorkflowAttributes";

    /// <summary>The topic stored for messages sent without one.</summary>
    public const string NullTopic = "__null__topic__";

    /// <summary>The value (portable JSON) that marks the end of a stream.</summary>
    public const string StreamClosed = "\"__DBOS_STREAM_CLOSED__\"";
}

/// <summary>An operation recorded by a workflow execution: the row to write in <c>operation_outputs</c>.</summary>
internal sealed record OperationRecord(
    string WorkflowId,
    int FunctionId,
    string Name,
    string OwnerXid,
    long StartedAtEpochMs,
    long CompletedAtEpochMs,
    string? Output = null,
    string? Error = null,
    string? Serialization = null,
    string? ChildWorkflowId = null);

/// <summary>A workflow's outcome written by the execution that owns it: its status row's update and its <c>workflow_output</c> row.</summary>
internal sealed record CompletionRecord(string WorkflowId, string OwnerXid, string Status, string? Output, string? Error);

/// <summary>A stored value and the format it is stored in.</summary>
internal sealed record StoredValue(string Text, string? Serialization);

/// <summary>How a send from a workflow went.</summary>
internal enum SendOutcome
{
    Sent,
    NotOwner,
    NoSuchDestination,
}

/// <summary>A new <c>workflow_status</c> row.</summary>
internal sealed class NewWorkflowRow
{
    /// <summary>
    /// The one place a new workflow's row is built, for every way a workflow comes to be (started or enqueued here, a
    /// child, a client's enqueue, a schedule's tick). Started directly (an <paramref name="owner"/> and no
    /// <paramref name="queue"/>) it is PENDING and owned at once, its deadline counting from <paramref name="now"/>; put
    /// on a queue it is ENQUEUED (or DELAYED) and unowned, its timeout counting from its dequeue. A child inherits its
    /// parent's deadline unless it has a timeout of its own. Its attributes are the user's <paramref name="attributes"/> and the
    /// current trace context, for its execution to continue.
    /// </summary>
    public static NewWorkflowRow Create(
        string workflowId,
        string name,
        string inputs,
        string serialization,
        DateTimeOffset now,
        string? applicationName,
        string? applicationVersion,
        string executorId = "",
        string? owner = null,
        string? queue = null,
        TimeSpan? delay = null,
        TimeSpan? timeout = null,
        DateTimeOffset? inheritedDeadline = null,
        string? parentWorkflowId = null,
        string? deduplicationId = null,
        int? priority = null,
        string? partitionKey = null,
        string? scheduleName = null,
        bool debounced = false,
        DateTimeOffset? debounceDeadline = null,
        string? authenticatedUser = null,
        IReadOnlyList<string>? authenticatedRoles = null,
        System.Text.Json.Nodes.JsonObject? attributes = null,
        bool claimIfIdle = false)
    {
        var startedHere = queue is null;
        var delayed = !startedHere && delay is { } d && d > TimeSpan.Zero;
        DateTimeOffset? deadline = timeout is null ? inheritedDeadline : startedHere || claimIfIdle ? now + timeout.Value : null;
        if (claimIfIdle && (startedHere || delayed || owner is null))
        {
            throw new ArgumentException("Only an undelayed start on a queue, with an owner, can claim its own enqueue.", nameof(claimIfIdle));
        }
        return new()
        {
            WorkflowId = workflowId,
            Status = startedHere ? StatusNames.Pending : delayed ? StatusNames.Delayed : StatusNames.Enqueued,
            Name = name,
            QueueName = queue,
            ExecutorId = executorId,
            ApplicationVersion = applicationVersion,
            ApplicationName = applicationName,
            RecoveryAttempts = startedHere ? 1 : 0,
            TimeoutMs = timeout is { } t ? (long)t.TotalMilliseconds : null,
            DeadlineEpochMs = deadline?.ToUnixTimeMilliseconds(),
            ParentWorkflowId = parentWorkflowId,
            CreatorXid = owner ?? Guid.NewGuid().ToString(),
            OwnerXid = startedHere || claimIfIdle ? owner : null,
            ClaimIfIdle = claimIfIdle,
            Serialization = serialization,
            Inputs = inputs,
            Attributes = Dbos.Serialization.WorkflowAttributes.Compose(attributes),
            DeduplicationId = deduplicationId,
            Priority = priority ?? 0,
            PartitionKey = partitionKey,
            DelayUntilEpochMs = delayed ? (now + delay!.Value).ToUnixTimeMilliseconds() : null,
            ScheduleName = scheduleName,
            IsDebounced = debounced,
            DebounceDeadlineEpochMs = debounceDeadline?.ToUnixTimeMilliseconds(),
            AuthenticatedUser = authenticatedUser ?? string.Empty,
            AuthenticatedRoles = Dbos.Serialization.ValueCodec.EncodeRoles(authenticatedRoles),
        };
    }

    public required string WorkflowId { get; init; }

    /// <summary>The JSON attributes (the user's, and the trace context to continue), or null.</summary>
    public string? Attributes { get; init; }

    public required string Status { get; init; }

    public required string Name { get; init; }

    public string? QueueName { get; init; }

    public string? ExecutorId { get; init; }

    public string? ApplicationVersion { get; init; }

    public string? ApplicationName { get; init; }

    public long RecoveryAttempts { get; init; }

    public long? TimeoutMs { get; init; }

    public long? DeadlineEpochMs { get; init; }

    public string? ParentWorkflowId { get; init; }

    public required string CreatorXid { get; init; }

    /// <summary>The owner token of an execution started with the row: set for a direct start, and for <see cref="ClaimIfIdle"/>.</summary>
    public string? OwnerXid { get; init; }

    /// <summary>
    /// Enqueued by a process that serves the queue and has a free slot on it: the insert claims the row for that process
    /// (PENDING, owned by <see cref="OwnerXid"/>, as a claim leaves it) unless work is already waiting on the queue, in
    /// which case it is enqueued as usual, behind that work. <see cref="Status"/> is the status without a claim;
    /// <see cref="OwnerXid"/> and <see cref="DeadlineEpochMs"/> (the timeout counting from now) are written only with one.
    /// </summary>
    public bool ClaimIfIdle { get; init; }

    public required string Serialization { get; init; }

    public required string Inputs { get; init; }

    public string? DeduplicationId { get; init; }

    public int Priority { get; init; }

    public string? PartitionKey { get; init; }

    public long? DelayUntilEpochMs { get; init; }

    public string? ScheduleName { get; init; }

    /// <summary>Whether a debouncer enqueued it: its deduplication ID is the debounce key, freed when it leaves DELAYED.</summary>
    public bool IsDebounced { get; init; }

    /// <summary>The latest start a debouncer may push it back to.</summary>
    public long? DebounceDeadlineEpochMs { get; init; }

    /// <summary>The user it runs for; empty for none, as the TypeScript SDK writes it.</summary>
    public string AuthenticatedUser { get; init; } = string.Empty;

    /// <summary>The user's roles as a JSON array (<c>[]</c> for none), as the TypeScript SDK writes them.</summary>
    public string AuthenticatedRoles { get; init; } = "[]";
}

/// <summary>
/// What a debounce call found: the debounced workflow it pushed back, or else the workflow holding the key (null when the
/// key is free).
/// </summary>
internal sealed record BounceResult(string? BouncedWorkflowId, KeyHolder? Holder);

/// <summary>The workflow holding a deduplication ID on a queue.</summary>
internal sealed record KeyHolder(string WorkflowId, bool IsDebounced, string? Name, string? ClassName, string? ApplicationName);

/// <summary>A <c>workflow_schedules</c> row.</summary>
internal sealed record ScheduleRow(
    string ScheduleId,
    string ScheduleName,
    string WorkflowName,
    string? WorkflowClassName,
    string Schedule,
    string Status,
    string Context,
    string? LastFiredAt,
    bool AutomaticBackfill,
    string? CronTimezone,
    string? QueueName,
    string? ApplicationName);

/// <summary>An <c>application_versions</c> row.</summary>
internal sealed record VersionRow(string VersionId, string VersionName, long VersionTimestamp, long CreatedAt, string? ApplicationName);

/// <summary>A <c>queues</c> row: a queue's flow control, as registered or as changed since.</summary>
internal sealed record QueueRecord
{
    public required string Name { get; init; }

    public int? Concurrency { get; init; }

    public int? WorkerConcurrency { get; init; }

    public int? RateLimitMax { get; init; }

    public double? RateLimitPeriodSec { get; init; }

    public bool PriorityEnabled { get; init; }

    public bool PartitionQueue { get; init; }

    public int? PartitionConcurrency { get; init; }

    public int? PartitionWorkerConcurrency { get; init; }

    public int? PartitionRateLimitMax { get; init; }

    public double? PartitionRateLimitPeriodSec { get; init; }

    public double PollingIntervalSec { get; init; } = 1.0;

    /// <summary>Whether any limit is shared between processes (so concurrent claims must not both spend it).</summary>
    public bool HasSharedBudget => Concurrency is not null || RateLimitMax is not null || PartitionConcurrency is not null || PartitionRateLimitMax is not null;

    public bool HasRateLimit => RateLimitMax is not null || PartitionRateLimitMax is not null;
}

/// <summary>The row a start found or created; <c>Inserted</c> says whether this call created it (and so runs the workflow).</summary>
internal sealed record StartResult(bool Inserted, string Status, string? Name, string? QueueName, string? Serialization);

/// <summary>A recorded operation (<c>operation_outputs</c> row).</summary>
internal sealed record OperationRow(
    int FunctionId,
    string Name,
    string? Output,
    string? Error,
    string? ChildWorkflowId,
    long? StartedAtEpochMs,
    long? CompletedAtEpochMs,
    string? Serialization);

/// <summary>A workflow's status with its outcome.</summary>
internal sealed record OutcomeRow(string Status, string? Output, string? Error, string? Serialization, string? Name);

/// <summary>A workflow this process claimed from a queue, with what it needs to run.</summary>
internal sealed record ClaimedRow(
    string WorkflowId,
    string Name,
    long RecoveryAttempts,
    long? DeadlineEpochMs,
    string? Serialization,
    string? ParentWorkflowId,
    string? Inputs,
    string? PartitionKey)
{
    /// <summary>The operations already recorded for the workflow (it may be a recovered, resumed or forked one).</summary>
    public IReadOnlyDictionary<int, OperationRow> Recorded { get; init; } = new Dictionary<int, OperationRow>();

    /// <summary>The workflow's attributes: the trace context of the code that started it, when it was traced.</summary>
    public string? Attributes { get; init; }

    /// <summary>How long it waited on its queue, from its creation to this claim.</summary>
    public long? WaitedMs { get; init; }

    /// <summary>Whether it has recorded operations to load (set by the one-statement claim, which reads them only then).</summary>
    public bool HasOperations { get; init; }

    /// <summary>The <c>authenticated_user</c> column.</summary>
    public string? AuthenticatedUser { get; init; }

    /// <summary>The <c>authenticated_roles</c> column (a JSON array).</summary>
    public string? AuthenticatedRoles { get; init; }
}

/// <summary>A full <c>workflow_status</c> row as listed.</summary>
internal sealed record StatusRow
{
    public required string WorkflowId { get; init; }

    public required string Status { get; init; }

    public string? Name { get; init; }

    public string? QueueName { get; init; }

    public string? ExecutorId { get; init; }

    public string? ApplicationVersion { get; init; }

    public string? ApplicationName { get; init; }

    public long CreatedAt { get; init; }

    public long UpdatedAt { get; init; }

    public long? StartedAtEpochMs { get; init; }

    public long? CompletedAt { get; init; }

    public long RecoveryAttempts { get; init; }

    public long? TimeoutMs { get; init; }

    public long? DeadlineEpochMs { get; init; }

    public string? ParentWorkflowId { get; init; }

    public string? ForkedFrom { get; init; }

    public bool WasForkedFrom { get; init; }

    public string? DeduplicationId { get; init; }

    public int Priority { get; init; }

    public string? QueuePartitionKey { get; init; }

    public long? DelayUntilEpochMs { get; init; }

    public string? Serialization { get; init; }

    public string? Inputs { get; init; }

    public string? Output { get; init; }

    public string? Error { get; init; }

    public string? AuthenticatedUser { get; init; }

    /// <summary>The <c>authenticated_roles</c> column (a JSON array).</summary>
    public string? AuthenticatedRoles { get; init; }

    /// <summary>The <c>attributes</c> column (a JSON object), as text.</summary>
    public string? Attributes { get; init; }
}

/// <summary>One group of a workflow count: the grouped columns (null when not grouped by) and the count.</summary>
internal sealed record CountRow(string? Status, string? Name, string? QueueName, string? ApplicationVersion, string? ExecutorId, long Count);

/// <summary>Filters for listing workflows; null means "any".</summary>
internal sealed record StatusQuery
{
    public IReadOnlyList<string>? WorkflowIds { get; init; }

    public IReadOnlyList<string>? Statuses { get; init; }

    public IReadOnlyList<string>? Names { get; init; }

    public IReadOnlyList<string>? QueueNames { get; init; }

    public string? ApplicationVersion { get; init; }

    public string? ApplicationName { get; init; }

    public string? ExecutorId { get; init; }

    public string? ParentWorkflowId { get; init; }

    public string? AuthenticatedUser { get; init; }

    public IReadOnlyList<string>? ApplicationVersions { get; init; }

    public IReadOnlyList<string>? ExecutorIds { get; init; }

    public IReadOnlyList<string>? AuthenticatedUsers { get; init; }

    public string? ForkedFrom { get; init; }

    public bool? HasParent { get; init; }

    /// <summary>Pairs the attributes must contain (scalar values).</summary>
    public System.Text.Json.Nodes.JsonObject? Attributes { get; init; }

    public string? ScheduleName { get; init; }

    public string? WorkflowIdPrefix { get; init; }

    public string? QueuePartitionKey { get; init; }

    public long? CreatedFromEpochMs { get; init; }

    public long? CreatedToEpochMs { get; init; }

    public bool QueuedOnly { get; init; }

    public int? Limit { get; init; }

    public int? Offset { get; init; }

    public bool Descending { get; init; }

    public bool LoadInput { get; init; } = true;

    public bool LoadOutput { get; init; } = true;
}
