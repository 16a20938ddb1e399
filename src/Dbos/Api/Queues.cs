namespace Dbos;

/// <summary>A limit on how many workflows may start in a rolling period.</summary>
/// <param name="Limit">How many may start per period.</param>
/// <param name="Period">The period.</param>
public sealed record RateLimit(int Limit, TimeSpan Period);

/// <summary>The flow control of a queue. Every limit left null is unlimited.</summary>
public sealed record QueueOptions
{
    /// <summary>How many of the queue's workflows may run at once, across every process.</summary>
    public int? Concurrency { get; init; }

    /// <summary>How many of the queue's workflows may run at once in each process.</summary>
    public int? WorkerConcurrency { get; init; }

    /// <summary>How many of the queue's workflows may start per period, across every process.</summary>
    public RateLimit? RateLimit { get; init; }

    /// <summary>
    /// Whether the queue honours workflow priorities (lower numbers first; first in, first out within a priority).
    /// Recorded in the queues table; enqueueing with a priority on a queue without it is refused.
    /// </summary>
    public bool PriorityEnabled { get; init; }

    /// <summary>
    /// Whether the queue is partitioned: every workflow is enqueued with a partition key, and the partition limits below
    /// apply to each partition separately (the queue-wide limits still apply to the whole queue).
    /// </summary>
    public bool Partitioned { get; init; }

    /// <summary>How many workflows of one partition may run at once, across every process.</summary>
    public int? PartitionConcurrency { get; init; }

    /// <summary>How many workflows of one partition may run at once in each process.</summary>
    public int? PartitionWorkerConcurrency { get; init; }

    /// <summary>How many workflows of one partition may start per period.</summary>
    public RateLimit? PartitionRateLimit { get; init; }

    /// <summary>The longest a process waits between two looks at an idle queue. Default 1 second.</summary>
    public TimeSpan PollingInterval { get; init; } = TimeSpan.FromSeconds(1);

    internal void Validate(string name)
    {
        void Positive(int? value, string option)
        {
            if (value is < 1)
            {
                throw new ArgumentOutOfRangeException(option, value, $"Queue '{name}': {option} must be at least 1.");
            }
        }

        void ValidRate(RateLimit? rate, string option)
        {
            if (rate is not null && (rate.Limit < 1 || rate.Period <= TimeSpan.Zero))
            {
                throw new ArgumentOutOfRangeException(option, rate, $"Queue '{name}': {option} needs a limit of at least 1 and a positive period.");
            }
        }

        void NotAbove(int? smaller, string smallerOption, int? larger, string largerOption)
        {
            if (smaller is not null && larger is not null && smaller > larger)
            {
                throw new ArgumentException($"Queue '{name}': {smallerOption} ({smaller}) cannot exceed {largerOption} ({larger}).");
            }
        }

        Positive(Concurrency, nameof(Concurrency));
        Positive(WorkerConcurrency, nameof(WorkerConcurrency));
        Positive(PartitionConcurrency, nameof(PartitionConcurrency));
        Positive(PartitionWorkerConcurrency, nameof(PartitionWorkerConcurrency));
        ValidRate(RateLimit, nameof(RateLimit));
        ValidRate(PartitionRateLimit, nameof(PartitionRateLimit));
        NotAbove(WorkerConcurrency, nameof(WorkerConcurrency), Concurrency, nameof(Concurrency));
        NotAbove(PartitionConcurrency, nameof(PartitionConcurrency), Concurrency, nameof(Concurrency));
        NotAbove(PartitionWorkerConcurrency, nameof(PartitionWorkerConcurrency), PartitionConcurrency, nameof(PartitionConcurrency));
        NotAbove(PartitionWorkerConcurrency, nameof(PartitionWorkerConcurrency), WorkerConcurrency, nameof(WorkerConcurrency));
        if (!Partitioned && (PartitionConcurrency is not null || PartitionWorkerConcurrency is not null || PartitionRateLimit is not null))
        {
            throw new ArgumentException($"Queue '{name}': partition limits need Partitioned = true.");
        }

        if (PollingInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PollingInterval), PollingInterval, $"Queue '{name}': PollingInterval must be positive.");
        }
    }
}

/// <summary>A registered queue. Start a workflow on it with <see cref="StartOptions.Queue"/>.</summary>
public sealed class Queue
{
    internal Queue(string name, QueueOptions options)
    {
        Name = name;
        Options = options;
    }

    /// <summary>The queue's name.</summary>
    public string Name { get; }

    /// <summary>The flow control it was registered with, or read from the queues table when listed (the table may since have been changed).</summary>
    public QueueOptions Options { get; }

    /// <summary>The queue's name, so a <see cref="Queue"/> can be given wherever a queue name is expected (<see cref="StartOptions.Queue"/>, <see cref="EnqueueOptions.QueueName"/>).</summary>
    /// <param name="queue">The queue (null gives null).</param>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(queue))]
    public static implicit operator string?(Queue? queue) => queue?.Name;

    /// <summary>The queue's name.</summary>
    /// <returns>The name.</returns>
    public override string ToString() => Name;
}

/// <summary>How to enqueue a workflow by name from a <see cref="DbosClient"/>.</summary>
public sealed record EnqueueOptions
{
    /// <summary>The name the workflow is registered under in the application that runs it.</summary>
    public required string WorkflowName { get; init; }

    /// <summary>The queue to put it on.</summary>
    public required string QueueName { get; init; }

    /// <summary>The workflow's ID. Default: a new GUID.</summary>
    public string? WorkflowId { get; init; }

    /// <summary>The application version to run it under. Default: whichever version dequeues it.</summary>
    public string? ApplicationVersion { get; init; }

    /// <summary>The application that owns it. Default: the client's <see cref="DbosClientOptions.ApplicationName"/>, or none (any application with the queue may run it).</summary>
    public string? ApplicationName { get; init; }

    /// <summary>Refuse the enqueue while a workflow with this deduplication ID is queued or running on the queue.</summary>
    public string? DeduplicationId { get; init; }

    /// <summary>
    /// What the enqueue does when <see cref="DeduplicationId"/> is already held on the queue: throw (default) or return
    /// a handle to the workflow that holds it.
    /// </summary>
    public DeduplicationPolicy DeduplicationPolicy { get; init; }

    /// <summary>The priority (lower runs first) on a queue with priorities.</summary>
    public int? Priority { get; init; }

    /// <summary>The partition, on a partitioned queue.</summary>
    public string? PartitionKey { get; init; }

    /// <summary>Do not start it before this delay has passed.</summary>
    public TimeSpan? Delay { get; init; }

    /// <summary>Cancel it if it has not finished this long after it is dequeued.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>The user it runs for (as <see cref="StartOptions.AuthenticatedUser"/>). Default: none.</summary>
    public string? AuthenticatedUser { get; init; }

    /// <summary>The roles of <see cref="AuthenticatedUser"/> (as <see cref="StartOptions.AuthenticatedRoles"/>). Default: none.</summary>
    public IReadOnlyList<string>? AuthenticatedRoles { get; init; }

    /// <summary>Key-value pairs to store with the workflow (as <see cref="StartOptions.Attributes"/>). Default: none.</summary>
    public System.Text.Json.Nodes.JsonObject? Attributes { get; init; }
}

/// <summary>What an enqueue does when its deduplication ID is already held on its queue by a queued or running workflow.</summary>
public enum DeduplicationPolicy
{
    /// <summary>Throw a <see cref="WorkflowDeduplicatedException"/>; nothing is enqueued (the default).</summary>
    Throw,

    /// <summary>
    /// Enqueue nothing and return a handle to the workflow that holds the deduplication ID (its input is the one it was
    /// enqueued with; this call's input is discarded). Needs a deduplication ID. As DBOS for TypeScript's
    /// <c>duplicationPolicy: 'return-existing'</c>.
    /// </summary>
    ReturnExisting,
}

/// <summary>A workflow could not be enqueued because one with the same deduplication ID is queued or running.</summary>
public sealed class WorkflowDeduplicatedException : DbosException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which queue and deduplication ID collided.</param>
    public WorkflowDeduplicatedException(string message)
        : base(message)
    {
    }
}
