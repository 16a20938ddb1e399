using System.Data.Common;
using System.Globalization;

namespace Dbos.SystemDatabase;

/// <summary>
/// A span of time cut into equal buckets, for the dashboard's charts: bucket <c>i</c> covers
/// [<see cref="FromEpochMs"/> + i × <see cref="BucketMs"/>, the same + <see cref="BucketMs"/>).
/// </summary>
internal sealed record ActivityWindow(long FromEpochMs, long BucketMs, int Buckets)
{
    /// <summary>Where the window ends (exclusive).</summary>
    public long ToEpochMs => FromEpochMs + (BucketMs * Buckets);

    /// <summary>
    /// The <paramref name="buckets"/> buckets of <paramref name="bucket"/> that end with the one holding
    /// <paramref name="now"/>, aligned on multiples of the bucket's length (whole minutes, whole quarter hours…).
    /// </summary>
    public static ActivityWindow Ending(DateTimeOffset now, TimeSpan bucket, int buckets)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucket, TimeSpan.FromMilliseconds(1));
        ArgumentOutOfRangeException.ThrowIfLessThan(buckets, 1);
        var width = (long)bucket.TotalMilliseconds;
        var end = ((now.ToUnixTimeMilliseconds() / width) + 1) * width;
        return new ActivityWindow(end - (width * buckets), width, buckets);
    }

    /// <summary>When bucket <paramref name="index"/> starts.</summary>
    public DateTimeOffset StartOf(int index) => DateTimeOffset.FromUnixTimeMilliseconds(FromEpochMs + (BucketMs * index));
}

/// <summary>Workflows started (created) and finished, by outcome, in each bucket of a window.</summary>
internal sealed record WorkflowActivity(long[] Started, long[] Succeeded, long[] Failed, long[] Cancelled);

/// <summary>
/// One queue over a window: how many workflows waited on it at the end of each bucket (enqueued or delayed, not yet
/// started), how many it started in each bucket, and how long those waited (from enqueue, or from the end of their delay).
/// </summary>
internal sealed record QueueActivity(string QueueName, long[] Depth, long[] Started, long[] TotalWaitMs, long[] MaxWaitMs);

/// <summary>
/// The reads behind the dashboard's charts. Buckets are computed in SQL (<see cref="SqlDialect.TimeBucket"/>); every
/// statement is bounded by the window on an indexed time column (<c>created_at</c>, <c>completed_at</c>,
/// <c>started_at_epoch_ms</c>) and, on Postgres, by a statement timeout: a read that runs past it returns null.
/// </summary>
internal sealed partial class SystemDatabase
{
    private const string FinishedStatuses = "'SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED'";

    /// <summary>
    /// Workflows created, and workflows finished (by <c>completed_at</c>, which every DBOS implementation sets when a
    /// workflow ends), in each bucket of <paramref name="window"/>. Null when the read ran past <paramref name="timeout"/>.
    /// </summary>
    public async Task<WorkflowActivity?> GetWorkflowActivityAsync(ActivityWindow window, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var ws = d.Table("workflow_status");
        var sql =
            $"SELECT kind, bucket, COUNT(*) FROM (" +
            $"SELECT 'STARTED' AS kind, {d.TimeBucket("created_at", 1, 3)} AS bucket FROM {ws} WHERE created_at >= $1 AND created_at < $2 " +
            $"UNION ALL SELECT status, {d.TimeBucket("completed_at", 1, 3)} FROM {ws} " +
            $"WHERE completed_at >= $1 AND completed_at < $2 AND status IN ({FinishedStatuses})" +
            ") activity GROUP BY kind, bucket";
        var rows = await QueryWithTimeoutAsync(
            sql,
            [window.FromEpochMs, window.ToEpochMs, window.BucketMs],
            static r => (Kind: r.GetString(0), Bucket: ToLong(r, 1), Count: ToLong(r, 2)),
            timeout,
            cancellationToken).ConfigureAwait(false);
        if (rows is null)
        {
            return null;
        }

        var activity = new WorkflowActivity(new long[window.Buckets], new long[window.Buckets], new long[window.Buckets], new long[window.Buckets]);
        foreach (var (kind, bucket, count) in rows)
        {
            var series = kind switch
            {
                "STARTED" => activity.Started,
                "SUCCESS" => activity.Succeeded,
                "CANCELLED" => activity.Cancelled,
                _ => activity.Failed, // ERROR, MAX_RECOVERY_ATTEMPTS_EXCEEDED
            };
            if (bucket >= 0 && bucket < window.Buckets)
            {
                series[bucket] += count;
            }
        }

        return activity;
    }

    /// <summary>
    /// Each queue's depth, starts and waits in each bucket of <paramref name="window"/>, reconstructed from the rows that
    /// still name their queue: a workflow waits from <c>created_at</c> until <c>started_at_epoch_ms</c> (or, never started,
    /// until it finished). The depth at the end of a bucket is the depth when the window opened, plus arrivals, minus
    /// departures. Null when the read ran past <paramref name="timeout"/>.
    /// </summary>
    public async Task<List<QueueActivity>?> GetQueueActivityAsync(ActivityWindow window, string? queueName, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var ws = d.Table("workflow_status");
        var queue = queueName is null ? "queue_name IS NOT NULL" : "queue_name = $4";
        var wait = "started_at_epoch_ms - CASE WHEN delay_until_epoch_ms > created_at THEN delay_until_epoch_ms ELSE created_at END";

        // Kinds: 0 arrivals, 1 starts (with their waits), 2 departures of workflows that finished without starting,
        // 3 workflows already waiting when the window opened. Each branch is bounded on an indexed column.
        var sql =
            $"SELECT kind, queue_name, bucket, COUNT(*), SUM(wait_ms), MAX(wait_ms) FROM (" +
            $"SELECT 0 AS kind, queue_name, {d.TimeBucket("created_at", 1, 3)} AS bucket, 0 AS wait_ms FROM {ws} " +
            $"WHERE {queue} AND created_at >= $1 AND created_at < $2 " +
            $"UNION ALL SELECT 1, queue_name, {d.TimeBucket("started_at_epoch_ms", 1, 3)}, {wait} FROM {ws} " +
            $"WHERE {queue} AND started_at_epoch_ms >= $1 AND started_at_epoch_ms < $2 AND created_at < $2 " +
            $"UNION ALL SELECT 2, queue_name, {d.TimeBucket("completed_at", 1, 3)}, 0 FROM {ws} " +
            $"WHERE {queue} AND completed_at >= $1 AND completed_at < $2 AND started_at_epoch_ms IS NULL AND created_at < $2 " +
            $"UNION ALL SELECT 3, queue_name, -1, 0 FROM {ws} WHERE {queue} AND started_at_epoch_ms >= $1 AND created_at < $1 " +
            $"UNION ALL SELECT 3, queue_name, -1, 0 FROM {ws} WHERE {queue} AND completed_at >= $1 AND started_at_epoch_ms IS NULL AND created_at < $1 " +
            $"UNION ALL SELECT 3, queue_name, -1, 0 FROM {ws} WHERE {queue} AND status = 'ENQUEUED' AND started_at_epoch_ms IS NULL AND completed_at IS NULL AND created_at < $1 " +
            $"UNION ALL SELECT 3, queue_name, -1, 0 FROM {ws} WHERE {queue} AND status = 'DELAYED' AND started_at_epoch_ms IS NULL AND completed_at IS NULL AND created_at < $1" +
            ") activity GROUP BY kind, queue_name, bucket";
        object?[] args = queueName is null ? [window.FromEpochMs, window.ToEpochMs, window.BucketMs] : [window.FromEpochMs, window.ToEpochMs, window.BucketMs, queueName];
        SqlArguments.CheckStorable(args);
        var rows = await QueryWithTimeoutAsync(
            sql,
            args,
            static r => (Kind: ToLong(r, 0), Queue: r.GetString(1), Bucket: ToLong(r, 2), Count: ToLong(r, 3), TotalWait: ToLong(r, 4), MaxWait: ToLong(r, 5)),
            timeout,
            cancellationToken).ConfigureAwait(false);
        if (rows is null)
        {
            return null;
        }

        var n = window.Buckets;
        var queues = new SortedDictionary<string, (long Initial, long[] Arrived, long[] Left, QueueActivity Activity)>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (!queues.TryGetValue(row.Queue, out var q))
            {
                q = (0, new long[n], new long[n], new QueueActivity(row.Queue, new long[n], new long[n], new long[n], new long[n]));
            }

            var inWindow = row.Bucket >= 0 && row.Bucket < n;
            switch (row.Kind)
            {
                case 0 when inWindow:
                    q.Arrived[row.Bucket] += row.Count;
                    break;
                case 1 when inWindow:
                    q.Left[row.Bucket] += row.Count;
                    q.Activity.Started[row.Bucket] += row.Count;
                    q.Activity.TotalWaitMs[row.Bucket] += row.TotalWait;
                    q.Activity.MaxWaitMs[row.Bucket] = Math.Max(q.Activity.MaxWaitMs[row.Bucket], row.MaxWait);
                    break;
                case 2 when inWindow:
                    q.Left[row.Bucket] += row.Count;
                    break;
                case 3:
                    q.Initial += row.Count;
                    break;
            }

            queues[row.Queue] = q;
        }

        var result = new List<QueueActivity>(queues.Count);
        foreach (var (_, q) in queues)
        {
            var depth = q.Initial;
            for (var i = 0; i < n; i++)
            {
                depth += q.Arrived[i] - q.Left[i];

                // A start recorded by a clock behind the enqueuer's can precede its arrival: never show a negative queue.
                q.Activity.Depth[i] = Math.Max(0, depth);
            }

            result.Add(q.Activity);
        }

        return result;
    }

    /// <summary>A count, sum or bucket number: bigint, numeric (a Postgres SUM) or INTEGER; NULL reads as 0.</summary>
    private static long ToLong(DbDataReader r, int i) => r.IsDBNull(i) ? 0 : Convert.ToInt64(r.GetValue(i), CultureInfo.InvariantCulture);
}
