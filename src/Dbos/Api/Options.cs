namespace Dbos;

/// <summary>How a step is retried when it throws, and how long each attempt may take.</summary>
/// <remarks>These options apply where a step is checkpointed, inside a workflow; called anywhere else a step simply runs once.</remarks>
public sealed record StepOptions
{
    /// <summary>How many times the step may run before its error is recorded (1 = no retries). Default 1.</summary>
    public int MaxAttempts { get; init; } = 1;

    /// <summary>The wait before the first retry. Default 1 second.</summary>
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Each retry waits this many times longer than the one before. Default 2.</summary>
    public double BackoffRate { get; init; } = 2;

    /// <summary>The longest wait between two attempts. Default 1 hour.</summary>
    public TimeSpan MaxRetryInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The wait before the first retry, in seconds. Default 1.</summary>
    [Obsolete("Use RetryInterval, a TimeSpan: RetryInterval = TimeSpan.FromSeconds(n).")]
    public double IntervalSeconds
    {
        get => RetryInterval.TotalSeconds;
        init => RetryInterval = Seconds(value, nameof(IntervalSeconds));
    }

    /// <summary>The longest wait between two attempts, in seconds. Default 3600.</summary>
    [Obsolete("Use MaxRetryInterval, a TimeSpan: MaxRetryInterval = TimeSpan.FromSeconds(n).")]
    public double MaxIntervalSeconds
    {
        get => MaxRetryInterval.TotalSeconds;
        init => MaxRetryInterval = Seconds(value, nameof(MaxIntervalSeconds));
    }

    /// <summary>
    /// The longest one attempt may run. When it passes, the attempt's <see cref="CancellationToken"/> is cancelled and
    /// the attempt fails with a <see cref="DbosStepTimeoutException"/>, retried like any other failure. A body that
    /// ignores its token is abandoned: the workflow does not wait for it, and the next attempt starts only once the
    /// abandoned body has returned (waiting for it at most one more <see cref="Timeout"/>, after which the step fails
    /// without retrying). Default: no timeout.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// Decides whether a failed attempt is retried (while attempts are left): return false to record the error at once.
    /// Called with the attempt's exception (a <see cref="DbosStepTimeoutException"/> for a timed-out attempt). An
    /// exception thrown by the predicate is recorded as the step's error. Default: every exception is retried.
    /// </summary>
    public Func<Exception, bool>? ShouldRetry { get; init; }

    /// <summary>
    /// Exceptions of these types (or types derived from them) are never retried: the step's error is recorded at once.
    /// Checked before <see cref="ShouldRetry"/>. Default: none.
    /// </summary>
    public IReadOnlyList<Type> NonRetryableExceptionTypes { get; init; } = [];

    internal static StepOptions Default { get; } = new();

    /// <summary>The wait after failed attempt <paramref name="attempt"/> (1-based).</summary>
    internal TimeSpan DelayAfter(int attempt)
    {
        var seconds = RetryInterval.TotalSeconds * Math.Pow(BackoffRate, attempt - 1);
        return seconds >= MaxRetryInterval.TotalSeconds ? MaxRetryInterval : TimeSpan.FromSeconds(seconds);
    }

    /// <summary>Whether <paramref name="exception"/> may be retried; throws what <see cref="ShouldRetry"/> throws.</summary>
    internal bool IsRetryable(Exception exception)
    {
        foreach (var type in NonRetryableExceptionTypes)
        {
            if (type.IsInstanceOfType(exception))
            {
                return false;
            }
        }

        return ShouldRetry?.Invoke(exception) ?? true;
    }

    private static TimeSpan Seconds(double value, string name)
    {
        if (!(value > 0) || double.IsInfinity(value) || value > TimeSpan.MaxValue.TotalSeconds)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive number of seconds.");
        }

        return TimeSpan.FromSeconds(value);
    }

    internal void Validate(string stepName)
    {
        if (MaxAttempts < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxAttempts), MaxAttempts, $"Step '{stepName}': MaxAttempts must be at least 1.");
        }

        if (RetryInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RetryInterval), RetryInterval, $"Step '{stepName}': RetryInterval must be positive.");
        }

        if (!(BackoffRate >= 1) || double.IsInfinity(BackoffRate))
        {
            throw new ArgumentOutOfRangeException(nameof(BackoffRate), BackoffRate, $"Step '{stepName}': BackoffRate must be at least 1.");
        }

        if (MaxRetryInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRetryInterval), MaxRetryInterval, $"Step '{stepName}': MaxRetryInterval must be positive.");
        }

        if (Timeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), timeout, $"Step '{stepName}': Timeout must be positive (leave it null for no timeout).");
        }

        if (NonRetryableExceptionTypes is null)
        {
            throw new ArgumentNullException(nameof(NonRetryableExceptionTypes), $"Step '{stepName}': NonRetryableExceptionTypes must not be null.");
        }

        foreach (var type in NonRetryableExceptionTypes)
        {
            if (type is null || !typeof(Exception).IsAssignableFrom(type))
            {
                throw new ArgumentException($"Step '{stepName}': NonRetryableExceptionTypes lists {type?.FullName ?? "null"}, which is not an exception type.", nameof(NonRetryableExceptionTypes));
            }
        }
    }
}

/// <summary>Options of a registered workflow.</summary>
public sealed record WorkflowOptions
{
    /// <summary>
    /// How many times the workflow may be recovered without finishing before it is moved to
    /// <c>MAX_RECOVERY_ATTEMPTS_EXCEEDED</c>. Default: <see cref="DbosConfig.MaxRecoveryAttempts"/>.
    /// </summary>
    public int? MaxRecoveryAttempts { get; init; }

    internal static WorkflowOptions Default { get; } = new();

    internal void Validate(string workflowName)
    {
        if (MaxRecoveryAttempts is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRecoveryAttempts), MaxRecoveryAttempts, $"Workflow '{workflowName}': MaxRecoveryAttempts must be at least 1.");
        }
    }
}

/// <summary>Options for starting one workflow.</summary>
public sealed record StartOptions
{
    /// <summary>
    /// The workflow's ID: the identity of the work. Starting twice with the same ID runs the workflow once and returns
    /// the same result. Default: a new GUID (inside a workflow: derived from the parent's ID, so recovery finds the same child).
    /// Any Unicode text without a NUL character; quotes, wildcards and emoji are stored and listed exactly.
    /// </summary>
    public string? WorkflowId { get; init; }

    /// <summary>
    /// Cancel the workflow (and the children that inherit its deadline) if it has not finished this long after it starts.
    /// Default: no timeout of its own; a child inherits its parent's deadline.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// Enqueue the workflow on this queue instead of running it at once: it runs when the queue's flow control allows,
    /// in whichever process listening to the queue claims it. Its timeout then counts from when it is dequeued.
    /// </summary>
    public string? Queue { get; init; }

    /// <summary>With <see cref="Queue"/>: refuse the enqueue while a workflow with this ID is queued or running on the queue.</summary>
    public string? DeduplicationId { get; init; }

    /// <summary>
    /// With <see cref="DeduplicationId"/>: what the start does when the deduplication ID is already held on the queue,
    /// throw (default) or return the holder's ID (a handle to it). Inside a workflow, the holder is recorded as the child.
    /// </summary>
    public DeduplicationPolicy DeduplicationPolicy { get; init; }

    /// <summary>With <see cref="Queue"/>: the priority (lower runs first, 0 to 2,147,483,647) on a queue with priorities.</summary>
    public int? Priority { get; init; }

    /// <summary>With <see cref="Queue"/>: the partition, on a partitioned queue.</summary>
    public string? PartitionKey { get; init; }

    /// <summary>With <see cref="Queue"/>: do not start before this delay has passed (the workflow is <c>DELAYED</c> until then).</summary>
    public TimeSpan? Delay { get; init; }

    /// <summary>
    /// The user the workflow runs for, stored in its status (<c>authenticated_user</c>) and read in it from
    /// <see cref="WorkflowContext.AuthenticatedUser"/>. Default: inside a workflow, the parent's; otherwise none.
    /// </summary>
    public string? AuthenticatedUser { get; init; }

    /// <summary>
    /// The roles of <see cref="AuthenticatedUser"/>, stored in its status (<c>authenticated_roles</c>, a JSON array) and
    /// read from <see cref="WorkflowContext.AuthenticatedRoles"/>. Default: inside a workflow, the parent's; otherwise none.
    /// </summary>
    public IReadOnlyList<string>? AuthenticatedRoles { get; init; }

    /// <summary>
    /// Key-value pairs to store with the workflow (the <c>attributes</c> column, shared with the other DBOS
    /// implementations): shown in <see cref="WorkflowStatus.Attributes"/>, filtered on by
    /// <see cref="ListWorkflowsOptions.Attributes"/>, replaced from the workflow by <see cref="WorkflowContext.SetAttributesAsync"/>.
    /// Not inherited by children. The key <c>dbos.otelContext</c> is reserved. Default: none.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject? Attributes { get; init; }

    internal void Validate()
    {
        if (WorkflowId is { } id && string.IsNullOrWhiteSpace(id))
        {
            throw new ArgumentException("A workflow ID, when given, must not be empty.", nameof(WorkflowId));
        }

        Internal.StorableText.Check(WorkflowId, "The workflow ID", nameof(WorkflowId));
        Internal.StorableText.Check(Queue, "The queue name", nameof(Queue));
        Internal.StorableText.Check(DeduplicationId, "The deduplication ID", nameof(DeduplicationId));
        Internal.StorableText.Check(PartitionKey, "The partition key", nameof(PartitionKey));
        ValidateAuthentication(AuthenticatedUser, AuthenticatedRoles);
        Serialization.WorkflowAttributes.Validate(Attributes, nameof(Attributes));

        if (Timeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), timeout, "A workflow timeout must be positive.");
        }

        if (Queue is null && (DeduplicationId is not null || Priority is not null || PartitionKey is not null || Delay is not null))
        {
            throw new ArgumentException("DeduplicationId, Priority, PartitionKey and Delay apply to queued workflows: set Queue too.");
        }

        ValidateQueueing(Queue, Priority, Delay);
        ValidateDeduplication(DeduplicationId, DeduplicationPolicy);
    }

    internal static void ValidateDeduplication(string? deduplicationId, DeduplicationPolicy policy)
    {
        if (policy is not (DeduplicationPolicy.Throw or DeduplicationPolicy.ReturnExisting))
        {
            throw new ArgumentOutOfRangeException(nameof(DeduplicationPolicy), policy, "Unknown deduplication policy.");
        }

        if (policy == DeduplicationPolicy.ReturnExisting && deduplicationId is null)
        {
            throw new ArgumentException("DeduplicationPolicy.ReturnExisting needs a DeduplicationId (and a queue): it returns the workflow that holds that ID.", nameof(DeduplicationPolicy));
        }
    }

    internal static void ValidateAuthentication(string? user, IReadOnlyList<string>? roles)
    {
        Internal.StorableText.Check(user, "The authenticated user", nameof(AuthenticatedUser));
        foreach (var role in roles ?? [])
        {
            if (role is null)
            {
                throw new ArgumentException("AuthenticatedRoles must not contain null.", nameof(AuthenticatedRoles));
            }

            Internal.StorableText.Check(role, "The authenticated role", nameof(AuthenticatedRoles));
        }
    }

    internal static void ValidateQueueing(string? queue, int? priority, TimeSpan? delay)
    {
        if (queue is not null && string.IsNullOrWhiteSpace(queue))
        {
            throw new ArgumentException("A queue name must not be empty.", nameof(Queue));
        }

        if (priority is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Priority), priority, "A priority must be between 0 and 2,147,483,647.");
        }

        if (delay is { } d && d < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Delay), d, "A delay must not be negative.");
        }
    }
}

/// <summary>Options for forking a workflow.</summary>
public sealed record ForkOptions
{
    /// <summary>The new workflow's ID. Default: a new GUID.</summary>
    public string? NewWorkflowId { get; init; }

    /// <summary>The application version to run the fork under. Default: the original's.</summary>
    public string? ApplicationVersion { get; init; }
}

/// <summary>Filters and paging for listing workflows. Every filter left null matches everything.</summary>
public sealed record ListWorkflowsOptions
{
    /// <summary>Only these workflow IDs.</summary>
    public IReadOnlyList<string>? WorkflowIds { get; init; }

    /// <summary>Only workflows whose ID starts with this text.</summary>
    public string? WorkflowIdPrefix { get; init; }

    /// <summary>Only workflows in one of these states.</summary>
    public IReadOnlyList<WorkflowState>? Status { get; init; }

    /// <summary>Only workflows registered under this name (with <see cref="Names"/>: under any of them).</summary>
    public string? Name { get; init; }

    /// <summary>Only workflows registered under one of these names.</summary>
    public IReadOnlyList<string>? Names { get; init; }

    /// <summary>Only workflows on this queue (with <see cref="QueueNames"/>: on any of them).</summary>
    public string? QueueName { get; init; }

    /// <summary>Only workflows on one of these queues.</summary>
    public IReadOnlyList<string>? QueueNames { get; init; }

    /// <summary>Only workflows of this queue partition.</summary>
    public string? QueuePartitionKey { get; init; }

    /// <summary>Only workflows still on a queue (enqueued, delayed, or running from a queue).</summary>
    public bool QueuedOnly { get; init; }

    /// <summary>Only workflows created at or after this time.</summary>
    public DateTimeOffset? StartTime { get; init; }

    /// <summary>Only workflows created at or before this time.</summary>
    public DateTimeOffset? EndTime { get; init; }

    /// <summary>Only workflows of this application version (with <see cref="ApplicationVersions"/>: of any of them).</summary>
    public string? ApplicationVersion { get; init; }

    /// <summary>Only workflows of one of these application versions.</summary>
    public IReadOnlyList<string>? ApplicationVersions { get; init; }

    /// <summary>Only workflows of this application (and unclaimed ones). Default: the listing application's own.</summary>
    public string? ApplicationName { get; init; }

    /// <summary>Only workflows last run by this executor (with <see cref="ExecutorIds"/>: by any of them).</summary>
    public string? ExecutorId { get; init; }

    /// <summary>Only workflows last run by one of these executors.</summary>
    public IReadOnlyList<string>? ExecutorIds { get; init; }

    /// <summary>Only children of this workflow.</summary>
    public string? ParentWorkflowId { get; init; }

    /// <summary>Only children of some workflow (true) or only workflows started from outside any workflow (false).</summary>
    public bool? HasParent { get; init; }

    /// <summary>Only forks of this workflow.</summary>
    public string? ForkedFrom { get; init; }

    /// <summary>Only workflows run by this authenticated user (with <see cref="AuthenticatedUsers"/>: by any of them).</summary>
    public string? AuthenticatedUser { get; init; }

    /// <summary>Only workflows run by one of these authenticated users.</summary>
    public IReadOnlyList<string>? AuthenticatedUsers { get; init; }

    /// <summary>
    /// Only workflows whose attributes contain all these key-value pairs (on Postgres, JSON containment <c>@&gt;</c>,
    /// served by the index on the column). Values must be strings, numbers, booleans or null; numbers match by value.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject? Attributes { get; init; }

    /// <summary>At most this many workflows.</summary>
    public int? Limit { get; init; }

    /// <summary>Skip this many workflows first.</summary>
    public int? Offset { get; init; }

    /// <summary>Newest first (default: oldest first, by creation time).</summary>
    public bool SortDescending { get; init; }

    /// <summary>Whether to load each workflow's input. Default true.</summary>
    public bool LoadInput { get; init; } = true;

    /// <summary>Whether to load each workflow's output and error. Default true.</summary>
    public bool LoadOutput { get; init; } = true;

    internal void Validate()
    {
        if (Limit is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Limit), Limit, "Limit must not be negative.");
        }

        if (Offset is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Offset), Offset, "Offset must not be negative.");
        }

        if (Attributes is not null)
        {
            foreach (var (key, value) in Attributes)
            {
                if (value is not null && value.GetValueKind() is System.Text.Json.JsonValueKind.Object or System.Text.Json.JsonValueKind.Array)
                {
                    throw new ArgumentException(
                        $"The attribute filter '{key}' has a {value.GetValueKind()} value: filters match strings, numbers, booleans and null only.",
                        nameof(Attributes));
                }
            }

            Internal.StorableText.Check(Attributes.ToJsonString(), "The attribute filter", nameof(Attributes));
        }
    }
}
