using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using Dbos.Internal;
using Dbos.SystemDatabase;
using Microsoft.Extensions.Logging;

namespace Dbos.Execution;

/// <summary>A queue this process knows: its flow control (as last read from the queues table) and its local runs.</summary>
internal sealed class QueueState(string name, QueueRecord record, bool persisted)
{
    private readonly ConcurrentDictionary<string, int> partitionRunning = new(StringComparer.Ordinal);
    private TaskCompletionSource signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int running;

    // Slots promised to claims in flight (the dispatcher's, and a start claiming its own enqueue), counted with the running
    // ones so that two claimers never both fill the last slot of the worker concurrency.
    private int reserved;

    public string Name { get; } = name;

    /// <summary>The flow control in force; re-read from the queues table from time to time, so changes made at runtime apply.</summary>
    public QueueRecord Record { get; set; } = record;

    /// <summary>Whether the queue lives in the queues table (every user queue; not the internal one).</summary>
    public bool Persisted { get; } = persisted;

    public long ConfigReadAtMs { get; set; }

    /// <summary>Whether this process found the queue in the queues table rather than registering it itself.</summary>
    public bool Discovered { get; init; }

    /// <summary>Set when the queue's row was deleted: its loop stops.</summary>
    public bool Deleted { get => Volatile.Read(ref deleted); set => Volatile.Write(ref deleted, value); }

    private bool deleted;
    /// <summary>When delayed workflows were last released (a real-time timestamp), 0 before the first time.</summary>
    public long DelayedReleasedAt { get; set; }

    /// <summary>How many workflows wait on the queue, as last counted (only while someone observes the metric).</summary>
    public long? Depth { get; set; }

    public long DepthReadAtMs { get; set; }

    public Task Signal => Volatile.Read(ref signal).Task;

    public int Running => Volatile.Read(ref running);

    /// <summary>The running workflows plus the slots reserved by claims in flight: what a new claim must count as taken.</summary>
    public int Occupied => Volatile.Read(ref running) + Volatile.Read(ref reserved);

    /// <summary>
    /// Reserves up to <paramref name="wanted"/> slots within <paramref name="limit"/> (all of them without a limit), for a
    /// claim about to run; returns how many. Release them with <see cref="Unreserve"/> once the claimed workflows have
    /// <see cref="Started"/>, so the slots are counted once taken, and never twice.
    /// </summary>
    public int Reserve(int? limit, int wanted)
    {
        while (true)
        {
            var current = Volatile.Read(ref reserved);
            var granted = limit is { } l ? Math.Min(wanted, l - Volatile.Read(ref running) - current) : wanted;
            if (granted <= 0)
            {
                return 0;
            }

            if (Interlocked.CompareExchange(ref reserved, current + granted, current) == current)
            {
                return granted;
            }
        }
    }

    public void Unreserve(int slots)
    {
        if (slots > 0)
        {
            Interlocked.Add(ref reserved, -slots);
        }
    }

    public int PartitionRunning(string? partition) => partition is null ? 0 : partitionRunning.GetValueOrDefault(partition);

    /// <summary>Wakes the queue's dispatcher (a local enqueue, or a slot of a concurrency limit freed by a finished run).</summary>
    public void Wake() => Interlocked.Exchange(ref signal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    public void Started(string? partition)
    {
        Interlocked.Increment(ref running);
        if (partition is not null)
        {
            partitionRunning.AddOrUpdate(partition, 1, static (_, n) => n + 1);
        }
    }

    public void Finished(string? partition)
    {
        Interlocked.Decrement(ref running);
        if (partition is not null)
        {
            partitionRunning.AddOrUpdate(partition, 0, static (_, n) => n - 1);
        }

        // A freed slot lets a claim take more only under a concurrency limit; without one, waking would only run an empty
        // claim after every finished workflow.
        var limits = Record;
        if (limits.Concurrency is not null || limits.WorkerConcurrency is not null || limits.PartitionConcurrency is not null || limits.PartitionWorkerConcurrency is not null)
        {
            Wake();
        }
    }
}

/// <summary>
/// Takes work from the queues this process listens to: one loop per queue, so a busy queue never starves another.
/// A loop claims everything the queue's limits allow, runs it, and claims again at once while it finds work; when the
/// queue is idle it backs off up to the queue's polling interval, and is woken early by a local enqueue or a finished run.
/// </summary>
internal sealed class QueueDispatcher : IAsyncDisposable
{
    // Large enough that recovering thousands of workflows is one claim: every later claim would queue for a pooled
    // connection behind the step writes of the workflows the earlier ones started.
    private const int MaxBatch = 10_000;
    private static readonly TimeSpan FastestPoll = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan ConfigRefresh = TimeSpan.FromSeconds(5);

    // How often the queues table is read for queues registered elsewhere (another process, a client, the CLI, another
    // DBOS implementation): one statement for all of them, as often as the TypeScript SDK reconciles its queues.
    private static readonly TimeSpan Discovery = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan DepthRefresh = TimeSpan.FromSeconds(1);

    // A busy queue claims many times a second; releasing due delayed workflows that often would add a write to each claim.
    private static readonly TimeSpan DelayedRelease = TimeSpan.FromMilliseconds(50);

    private readonly SystemDatabase.SystemDatabase database;
    private readonly IClaimingProcess process;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly string applicationName;
    // Concurrent: queues are registered and deleted at runtime while loops and starts look them up.
    private readonly ConcurrentDictionary<string, QueueState> queues = new(StringComparer.Ordinal);
    private readonly List<Task> loops = [];
    private IReadOnlyList<string>? listening;
    private readonly CancellationTokenSource stop = new();

    public QueueDispatcher(SystemDatabase.SystemDatabase database, IClaimingProcess process, TimeProvider time, ILogger logger, string applicationName, TimeSpan internalPollingInterval)
    {
        this.database = database;
        this.process = process;
        this.time = time;
        this.logger = logger;
        this.applicationName = applicationName;
        queues.TryAdd(StatusNames.InternalQueue, new QueueState(
            StatusNames.InternalQueue,
            new QueueRecord { Name = StatusNames.InternalQueue, PollingIntervalSec = internalPollingInterval.TotalSeconds },
            persisted: false));
    }

    public IEnumerable<QueueState> Queues => queues.Values;

    public QueueState Register(string name, QueueOptions options)
    {
        if (name.StartsWith("_dbos", StringComparison.Ordinal))
        {
            throw new ArgumentException($"Queue name '{name}' is reserved: names starting with '_dbos' belong to DBOS's internal queues.", nameof(name));
        }

        var state = new QueueState(name, ToRecord(name, options), persisted: true);
        if (!queues.TryAdd(name, state))
        {
            throw new InvalidOperationException($"A queue named '{name}' is already registered.");
        }

        return state;
    }

    public QueueState? Find(string name) => queues.GetValueOrDefault(name);

    internal static QueueRecord ToRecord(string name, QueueOptions options) => new()
    {
        Name = name,
        Concurrency = options.Concurrency,
        WorkerConcurrency = options.WorkerConcurrency,
        RateLimitMax = options.RateLimit?.Limit,
        RateLimitPeriodSec = options.RateLimit?.Period.TotalSeconds,
        PriorityEnabled = options.PriorityEnabled,
        PartitionQueue = options.Partitioned,
        PartitionConcurrency = options.PartitionConcurrency,
        PartitionWorkerConcurrency = options.PartitionWorkerConcurrency,
        PartitionRateLimitMax = options.PartitionRateLimit?.Limit,
        PartitionRateLimitPeriodSec = options.PartitionRateLimit?.Period.TotalSeconds,
        PollingIntervalSec = options.PollingInterval.TotalSeconds,
    };

    internal static QueueOptions ToOptions(QueueRecord record) => new()
    {
        Concurrency = record.Concurrency,
        WorkerConcurrency = record.WorkerConcurrency,
        RateLimit = record.RateLimitMax is { } limit && record.RateLimitPeriodSec is { } period ? new RateLimit(limit, TimeSpan.FromSeconds(period)) : null,
        PriorityEnabled = record.PriorityEnabled,
        Partitioned = record.PartitionQueue,
        PartitionConcurrency = record.PartitionConcurrency,
        PartitionWorkerConcurrency = record.PartitionWorkerConcurrency,
        PartitionRateLimit = record.PartitionRateLimitMax is { } partitionLimit && record.PartitionRateLimitPeriodSec is { } partitionPeriod
            ? new RateLimit(partitionLimit, TimeSpan.FromSeconds(partitionPeriod)) : null,
        PollingInterval = TimeSpan.FromSeconds(record.PollingIntervalSec),
    };

    /// <summary>Records the registered queues in the queues table and starts a loop for each queue listened to.</summary>
    public async Task StartAsync(IReadOnlyList<string>? listenQueues, CancellationToken cancellationToken)
    {
        foreach (var name in listenQueues ?? [])
        {
            if (!queues.ContainsKey(name))
            {
                throw new DbosConfigurationException($"DbosConfig.ListenQueues names the queue '{name}', which is not registered; register it with RegisterQueue.");
            }
        }

        listening = listenQueues;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var queue in queues.Values.Where(q => q.Persisted))
        {
            if (await database.UpsertQueueAsync(queue.Record, now, cancellationToken).ConfigureAwait(false) is { } owner)
            {
                throw new DbosConfigurationException(
                    $"Queue '{queue.Name}' belongs to application '{owner}' on this system database; queue names are shared by every application on it " +
                    $"(and by DBOS applications in other languages), so '{applicationName}' must use another name.");
            }

            queue.ConfigReadAtMs = now;
        }

        foreach (var queue in queues.Values.Where(q => !q.Persisted || listenQueues is null || listenQueues.Contains(q.Name)))
        {
            loops.Add(Task.Run(() => LoopAsync(queue, stop.Token), CancellationToken.None));
        }

        // Rows already in the table (registered by others) are served from the start, not a discovery interval later.
        await DiscoverAsync(cancellationToken).ConfigureAwait(false);
        loops.Add(Task.Run(() => DiscoveryLoopAsync(stop.Token), CancellationToken.None));
    }

    private async Task DiscoveryLoopAsync(CancellationToken cancellationToken)
    {
        // Real time (the executor's clock), like delayed releases: a test's fake clock must not stop discovery.
        var clock = database.Executor.Time;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Discovery, clock, cancellationToken).ConfigureAwait(false);
                await DiscoverAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.BackgroundFailure(logger, "reading the queues table", ex);
            }
        }
    }

    /// <summary>
    /// Starts serving the queue rows of this application (and the unowned ones) that this process does not know yet,
    /// with the row's limits, when <see cref="DbosConfig.ListenQueues"/> allows. Known queues keep their own refresh
    /// (and stop when their row goes), so this only adds.
    /// </summary>
    private async Task DiscoverAsync(CancellationToken cancellationToken)
    {
        foreach (var (record, _) in await database.ListQueuesAsync(applicationName, cancellationToken).ConfigureAwait(false))
        {
            if (queues.ContainsKey(record.Name) || record.Name.StartsWith("_dbos", StringComparison.Ordinal) || (listening is not null && !listening.Contains(record.Name)))
            {
                continue;
            }

            // ConfigReadAtMs stays 0, so the loop's first round reads the row again: a queue deleted here while this
            // list was read is dropped at once rather than served until the next refresh.
            var state = new QueueState(record.Name, record, persisted: true) { Discovered = true };
            if (!queues.TryAdd(record.Name, state))
            {
                continue;
            }

            Log.QueueDiscovered(logger, record.Name, record.Concurrency?.ToString(CultureInfo.InvariantCulture) ?? "unlimited",
                record.WorkerConcurrency?.ToString(CultureInfo.InvariantCulture) ?? "unlimited");
            lock (loops)
            {
                loops.Add(Task.Run(() => LoopAsync(state, stop.Token), CancellationToken.None));
            }
        }
    }

    /// <summary>
    /// Registers a queue after launch: records it in the queues table (refused, and forgotten, when another application
    /// owns the name) and starts its loop when this process listens to it.
    /// </summary>
    public async Task<QueueState> RegisterAtRuntimeAsync(string name, QueueOptions options, CancellationToken cancellationToken)
    {
        if (Find(name) is { Discovered: true } discovered)
        {
            // Served already from its row (registered elsewhere): registering it here writes these limits to the row.
            if (await database.UpsertQueueAsync(ToRecord(name, options), time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false) is { } other)
            {
                throw new InvalidOperationException(
                    $"Queue '{name}' belongs to application '{other}' on this system database; queue names are shared by every application on it, so '{applicationName}' must use another name. Nothing was registered.");
            }

            discovered.Record = ToRecord(name, options);
            discovered.ConfigReadAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
            discovered.Wake();
            return discovered;
        }

        var state = Register(name, options);
        try
        {
            if (await database.UpsertQueueAsync(state.Record, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false) is { } owner)
            {
                throw new InvalidOperationException(
                    $"Queue '{name}' belongs to application '{owner}' on this system database; queue names are shared by every application on it, so '{applicationName}' must use another name. Nothing was registered.");
            }
        }
        catch
        {
            queues.TryRemove(name, out _);
            throw;
        }

        state.ConfigReadAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (listening is null || listening.Contains(name))
        {
            lock (loops)
            {
                loops.Add(Task.Run(() => LoopAsync(state, stop.Token), CancellationToken.None));
            }
        }

        return state;
    }

    /// <summary>Forgets a queue whose row was deleted: its loop ends at its next round; its waiting work stays ENQUEUED.</summary>
    public void Forget(string name)
    {
        if (queues.TryRemove(name, out var state))
        {
            state.Deleted = true;
            state.Wake();
        }
    }

    private async Task LoopAsync(QueueState queue, CancellationToken cancellationToken)
    {
        var idle = FastestPoll;
        while (!cancellationToken.IsCancellationRequested && !queue.Deleted)
        {
            var signal = queue.Signal;
            var claimed = 0;
            try
            {
                claimed = await DispatchOnceAsync(queue, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.BackgroundFailure(logger, $"dispatching queue {queue.Name}", ex);
            }

            if (claimed > 0)
            {
                idle = FastestPoll;
                continue;
            }

            var ceiling = TimeSpan.FromSeconds(Math.Max(queue.Record.PollingIntervalSec, FastestPoll.TotalSeconds));
            idle = idle * 2 < ceiling ? idle * 2 : ceiling;
            try
            {
                await Task.WhenAny(signal, Task.Delay(idle, time, cancellationToken)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One round on a queue: refresh its configuration if due, release due delayed workflows, claim and run what the limits allow.</summary>
    private async Task<int> DispatchOnceAsync(QueueState queue, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (queue.Persisted && now - queue.ConfigReadAtMs >= ConfigRefresh.TotalMilliseconds)
        {
            if (await database.GetQueueAsync(queue.Name, cancellationToken).ConfigureAwait(false) is not { } record)
            {
                // The row was deleted (DeleteQueueAsync, here or in any process, or another DBOS implementation): stop serving it.
                Log.QueueDeleted(logger, queue.Name);
                Forget(queue.Name);
                return 0;
            }

            queue.Record = record;
            queue.ConfigReadAtMs = now;
        }

        // Measured in real time (the executor's clock): a test's fake clock that nobody advances must not stop releases.
        var clock = database.Executor.Time;
        if (queue.DelayedReleasedAt == 0 || clock.GetElapsedTime(queue.DelayedReleasedAt) >= DelayedRelease)
        {
            queue.DelayedReleasedAt = clock.GetTimestamp();
            await database.ReleaseDelayedAsync(queue.Name, now, cancellationToken).ConfigureAwait(false);
        }
        if (Telemetry.QueueDepth.Enabled && now - queue.DepthReadAtMs >= DepthRefresh.TotalMilliseconds)
        {
            queue.Depth = await database.CountWaitingAsync(queue.Name, cancellationToken).ConfigureAwait(false);
            queue.DepthReadAtMs = now;
        }

        if (!queue.Record.PartitionQueue)
        {
            return await ClaimAndRunAsync(queue, null, cancellationToken).ConfigureAwait(false);
        }

        var claimed = 0;
        foreach (var partition in await database.ListPartitionsAsync(queue.Name, cancellationToken).ConfigureAwait(false))
        {
            claimed += await ClaimAndRunAsync(queue, partition, cancellationToken).ConfigureAwait(false);
        }

        return claimed;
    }

    private async Task<int> ClaimAndRunAsync(QueueState queue, string? partition, CancellationToken cancellationToken)
    {
        // Without liveness this process may be judged dead, and its claims taken: it claims nothing until it is back.
        if (process.WorkflowNames.Length == 0 || !process.IsLive)
        {
            return 0;
        }

        // The worker concurrency's free slots are reserved for this claim, so a start claiming its own enqueue meanwhile
        // (TryReserveOwnClaim) cannot take one of them too; the claim then takes at most that many.
        var slots = queue.Reserve(queue.Record.WorkerConcurrency, MaxBatch);
        if (slots == 0)
        {
            return 0;
        }

        try
        {
            var owner = Guid.NewGuid().ToString();
            var context = new SystemDatabase.SystemDatabase.ClaimContext(
                owner, process.ExecutorId, process.ApplicationVersion, process.WorkflowNames, slots, 0, queue.PartitionRunning(partition));
            var claimed = await database.ClaimAsync(queue.Record, partition, context, cancellationToken).ConfigureAwait(false);
            foreach (var row in claimed)
            {
                await process.RunClaimedAsync(row, owner, queue).ConfigureAwait(false);
            }

            return claimed.Count;
        }
        finally
        {
            queue.Unreserve(slots);
        }
    }

    /// <summary>
    /// The queue a start on <paramref name="queueName"/> may claim for this process in the statement that enqueues it, with
    /// one slot of its worker concurrency reserved (release it with <see cref="QueueState.Unreserve"/>), or null when the
    /// start must go the usual way: this process does not serve the queue or cannot claim now (not live, the queue deleted),
    /// the queue's limits are shared with other processes (a global concurrency or rate limit) or per partition, its
    /// worker concurrency is used up, or the system database is SQLite. Nothing shared is counted here, which is what
    /// makes the shortcut cheap.
    /// </summary>
    public QueueState? TryReserveOwnClaim(string queueName)
    {
        // Postgres only: there a claim is a statement and a commit of its own. SQLite's one writer already combines the
        // dispatcher's claims and the steps of the workflows it claims together; measured, workflows claimed one by one
        // in their enqueues ran slower there (docs/performance.md).
        if (!database.Dialect.IsPostgres
            || queues.GetValueOrDefault(queueName) is not { Persisted: true, Deleted: false } queue
            || (listening is not null && !listening.Contains(queueName))
            || process.WorkflowNames.Length == 0 || !process.IsLive)
        {
            return null;
        }

        var record = queue.Record;
        if (record.HasSharedBudget || record.PartitionQueue || record.PartitionWorkerConcurrency is not null)
        {
            return null;
        }

        return queue.Reserve(record.WorkerConcurrency, 1) == 1 ? queue : null;
    }

    /// <summary>The queue depths last counted, for the <c>dbos.queue.depth</c> gauge.</summary>
    public IEnumerable<Measurement<long>> ObserveDepths() =>
        queues.Values.Where(q => q.Depth is not null).Select(q => new Measurement<long>(
            q.Depth!.Value, new KeyValuePair<string, object?>("dbos.queue.name", q.Name), new KeyValuePair<string, object?>("dbos.application.name", applicationName)));

    public void Wake(string queueName) => Find(queueName)?.Wake();

    /// <summary>Wakes the queues that workflows were just put back on (the internal one for those without a queue).</summary>
    public void Wake(IEnumerable<string?> queueNames)
    {
        foreach (var queue in queueNames.Select(q => q ?? StatusNames.InternalQueue).Distinct(StringComparer.Ordinal))
        {
            Wake(queue);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        Task[] running;
        lock (loops)
        {
            running = [.. loops];
        }

        await Task.WhenAll(running).ConfigureAwait(false);
        stop.Dispose();
    }
}

/// <summary>What the queue dispatcher needs of the process it claims work for.</summary>
internal interface IClaimingProcess
{
    /// <summary>The executor ID recorded on claimed workflows.</summary>
    string ExecutorId { get; }

    /// <summary>The application version whose workflows this process claims (known once launched).</summary>
    string ApplicationVersion { get; }

    /// <summary>The workflow names this process can run; empty until launched.</summary>
    string[] WorkflowNames { get; }

    /// <summary>Whether the process holds its liveness: without it, it claims nothing.</summary>
    bool IsLive { get; }

    /// <summary>Runs a workflow just claimed from a queue.</summary>
    Task RunClaimedAsync(ClaimedRow row, string owner, QueueState queue);
}
