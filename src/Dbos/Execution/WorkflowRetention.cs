using Dbos.Internal;
using Microsoft.Extensions.Logging;

namespace Dbos.Execution;

/// <summary>
/// Garbage collection and the global timeout, shared by <see cref="DbosApp"/>, <see cref="DbosClient"/> and the
/// automatic retention loop. Collection runs in batches, each its own short transaction, and never touches unfinished
/// workflows, nor a finished child whose parent is unfinished (the parent may still read its outcome).
/// </summary>
internal static class WorkflowRetention
{
    /// <summary>
    /// Removes what <paramref name="options"/> selects and returns the number of workflows removed; null when
    /// <paramref name="waitForOthers"/> is false and another process was collecting (nothing was done).
    /// </summary>
    public static async Task<long?> CollectAsync(ExternalAccess external, GarbageCollectOptions options, bool waitForOthers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var database = external.Database;
        long? cutoff = options.CreatedBefore?.ToUnixTimeMilliseconds();
        if (options.KeepNewest is { } keep)
        {
            var budget = keep == 0 ? long.MaxValue : await database.GetNewestKeptCreatedAtAsync(keep, external.ApplicationName, cancellationToken).ConfigureAwait(false);
            if (budget is { } b && (cutoff is null || b > cutoff))
            {
                cutoff = b;
            }
        }

        if (cutoff is not { } before)
        {
            return 0;
        }

        long removed = 0;
        while (true)
        {
            var batch = await database.DeleteFinishedBatchAsync(before, options.BatchSize, external.ApplicationName, waitForOthers, cancellationToken).ConfigureAwait(false);
            if (batch is null)
            {
                return removed == 0 ? null : removed;
            }

            removed += batch.Count;
            if (batch.Count < options.BatchSize)
            {
                break;
            }
        }

        // Payload rows whose workflow another implementation deleted alone (they have no foreign key): by retention_timestamp.
        while (await database.DeleteOrphanedPayloadBatchAsync(before, options.BatchSize, cancellationToken).ConfigureAwait(false) > 0)
        {
        }

        return removed;
    }

    /// <summary>Cancels every unfinished workflow created before <paramref name="createdBefore"/>. Returns their IDs.</summary>
    public static async Task<IReadOnlyList<string>> GlobalTimeoutAsync(ExternalAccess external, DateTimeOffset createdBefore, CancellationToken cancellationToken) =>
        await external.Database.CancelCreatedBeforeAsync(createdBefore.ToUnixTimeMilliseconds(), external.ApplicationName, cancellationToken).ConfigureAwait(false);
}

/// <summary>
/// Automatic retention (<see cref="DbosConfig.Retention"/>): a loop that collects every interval. Batches of different
/// processes never overlap (an advisory lock on Postgres, the write lock on SQLite); on Postgres a process that finds
/// another collecting skips its turn, so many replicas do not all do the same work.
/// </summary>
internal sealed class RetentionLoop : IAsyncDisposable
{
    private readonly ExternalAccess external;
    private readonly RetentionOptions options;
    private readonly ILogger logger;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;

    public RetentionLoop(ExternalAccess external, RetentionOptions options, ILogger logger)
    {
        this.external = external;
        this.options = options;
        this.logger = logger;
        loop = Task.Run(() => LoopAsync(stop.Token), CancellationToken.None);
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Interval, external.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    var removed = await WorkflowRetention.CollectAsync(
                        external,
                        new GarbageCollectOptions
                        {
                            CreatedBefore = options.MaxAge is { } age ? external.Time.GetUtcNow() - age : null,
                            KeepNewest = options.MaxWorkflows,
                            BatchSize = options.BatchSize,
                        },
                        waitForOthers: false,
                        cancellationToken).ConfigureAwait(false);
                    if (removed is > 0)
                    {
                        Log.RetentionCollected(logger, removed.Value);
                    }
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                {
                    Log.BackgroundFailure(logger, "removing old workflows (retention)", ex);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        stop.Dispose();
    }
}
