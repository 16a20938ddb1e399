using System.Data.Common;
using System.Globalization;
using System.Text;

namespace Dbos.SystemDatabase;

/// <summary>What the dashboard's workflow list asks for: filters, the keyset to continue from, and the bounds of one page.</summary>
internal sealed record WorkflowPageQuery
{
    /// <summary>
    /// The filters, as <see cref="SystemDatabase.ListWorkflowsAsync"/> takes them (the dashboard sets statuses, name, queue,
    /// version, executor, ID prefix and time range); its paging and loading members are ignored.
    /// </summary>
    public StatusQuery Filter { get; init; } = new();

    /// <summary>Continue with the rows older than this one (newest first); null for the first page.</summary>
    public WorkflowKey? After { get; init; }

    /// <summary>Go back to the rows newer than this one: the page of the nearest newer rows, still shown newest first.</summary>
    public WorkflowKey? Before { get; init; }

    public int PageSize { get; init; } = 50;

    /// <summary>At most this many rows (in the list's order, from the keyset) are read to fill one page on the <see cref="WorkflowListPath.CreatedAtScan"/> path.</summary>
    public int ScanLimit { get; init; } = 100_000;

    /// <summary>Postgres stops the statement after this long (<c>statement_timeout</c>, local to its transaction).</summary>
    public TimeSpan StatementTimeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>A position in the order of the list: the <c>workflow_status_created_at_index</c> order, then the ID.</summary>
internal readonly record struct WorkflowKey(long CreatedAt, string WorkflowId);

/// <summary>How the list reaches its rows; chosen from the filters (<see cref="SystemDatabase.ChooseListPath"/>).</summary>
internal enum WorkflowListPath
{
    /// <summary>Along <c>workflow_status_created_at_index</c>, filtering the rows read, at most <see cref="WorkflowPageQuery.ScanLimit"/> of them.</summary>
    CreatedAtScan,

    /// <summary>
    /// Only rows of the chosen statuses, each status through the partial index that holds it (pending, failed, in flight,
    /// delayed): the statuses of few rows, so no bound is needed and a short page is the whole answer.
    /// </summary>
    StatusIndex,
}

/// <param name="Rows">The matching rows of the page, newest first.</param>
/// <param name="Next">Where the older page starts (rows older than this key), or null when no older rows remain (or the page went newer and is empty).</param>
/// <param name="Previous">Where the newer page starts (rows newer than this key), or null when this page starts at the newest (or went older and is empty).</param>
/// <param name="ScanStopped">True when the page is short because the scan reached its bound: rows further on, in the direction of travel, were not searched yet.</param>
/// <param name="TimedOut">True when the statement ran past its timeout: the page holds nothing, and the filters should be narrowed.</param>
/// <param name="Path">How the rows were reached.</param>
internal sealed record WorkflowPage(List<StatusRow> Rows, WorkflowKey? Next, WorkflowKey? Previous, bool ScanStopped, bool TimedOut, WorkflowListPath Path);

/// <summary>The in-flight workflows of one queue in one status.</summary>
internal sealed record QueueStatusCount(string QueueName, string Status, long Count, long OldestCreatedAt, long Partitions);

/// <summary>How many workflows of a queue one executor runs.</summary>
internal sealed record QueueExecutorCount(string QueueName, string? ExecutorId, long Count, long? LongestWaitMs);

/// <summary>A recorded event, message or stream of a workflow, as stored text.</summary>
internal sealed record RecordedValue(string Key, string? Value, string? Serialization, long? At, bool Consumed, long Count);

/// <summary>
/// The reads of the dashboard (src/Dbos.Dashboard). They never change anything and never use OFFSET: the workflow list pages
/// on (created_at, workflow_uuid), and a filter the shared schema has no index for reads at most a bounded number of rows.
/// </summary>
internal sealed partial class SystemDatabase
{
    /// <summary>
    /// The statuses a partial index of the shared schema holds, with the condition that lets the planner use it: constants,
    /// because a partial index serves only a condition that implies its predicate at planning time (a parameter does not),
    /// and the index's own predicate repeated, because SQLite uses a partial index only when the query states it.
    /// </summary>
    private static readonly Dictionary<string, string> IndexedStatusConditions = new(StringComparer.Ordinal)
    {
        // idx_workflow_status_pending (created_at) WHERE status = 'PENDING'
        ["PENDING"] = "ws.status = 'PENDING'",

        // idx_workflow_status_failed (status, created_at) WHERE status IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
        ["ERROR"] = "ws.status = 'ERROR' AND ws.status IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')",
        ["CANCELLED"] = "ws.status = 'CANCELLED' AND ws.status IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')",
        ["MAX_RECOVERY_ATTEMPTS_EXCEEDED"] = "ws.status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' AND ws.status IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')",

        // idx_workflow_status_in_flight_v2 (queue_name, status, priority, created_at) WHERE status IN ('ENQUEUED', 'PENDING')
        ["ENQUEUED"] = "ws.status = 'ENQUEUED' AND ws.status IN ('ENQUEUED', 'PENDING')",

        // idx_workflow_status_delayed (delay_until_epoch_ms) WHERE status = 'DELAYED'
        ["DELAYED"] = "ws.status = 'DELAYED'",
    };

    /// <summary>
    /// The statuses whose index is not in created_at order (in flight: by queue and priority; delayed: by delay). Their
    /// branch orders by <c>created_at + 0</c>, which no index serves: otherwise the planner, assuming such rows spread evenly
    /// in time, may walk workflow_status_created_at_index from the newest row to find them, through the whole table when
    /// they are old (a backlog nobody serves). This way it reads the status's rows through its index and sorts them.
    /// </summary>
    private static readonly HashSet<string> UnorderedIndexStatuses = new(StringComparer.Ordinal) { "ENQUEUED", "DELAYED" };

    /// <summary>
    /// The list's access path for <paramref name="filter"/>: statuses that a partial index holds are read through it; anything
    /// else (no status, or SUCCESS, which most rows have) scans along created_at, where common rows fill a page at once.
    /// </summary>
    public static WorkflowListPath ChooseListPath(StatusQuery filter) =>
        filter.Statuses is { Count: > 0 } statuses && statuses.All(IndexedStatusConditions.ContainsKey) ? WorkflowListPath.StatusIndex : WorkflowListPath.CreatedAtScan;

    /// <summary>
    /// A read-only query that Postgres stops after <paramref name="timeout"/> (<c>statement_timeout</c>, local to its
    /// transaction); null when it did. SQLite has no statement timeout: its reads are bounded by their indexes.
    /// </summary>
    private async Task<List<T>?> QueryWithTimeoutAsync<T>(string sql, object?[] args, Func<DbDataReader, T> read, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!d.IsPostgres)
        {
            return await executor.QueryAsync(sql, args, read, cancellationToken).ConfigureAwait(false);
        }

        return await executor.WriteAsync(
            async (session, ct) =>
            {
                await session.QueryAsync(
                    "SELECT set_config('statement_timeout', $1, true)",
                    [((long)Math.Max(1, timeout.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture)],
                    static r => r.GetString(0),
                    ct).ConfigureAwait(false);

                // A savepoint keeps the transaction usable when the statement times out, so the executor sees no failure to retry.
                await session.ExecuteAsync("SAVEPOINT dashboard_bounded", [], ct).ConfigureAwait(false);
                try
                {
                    return await session.QueryAsync(sql, args, read, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (executor.IsStatementTimeout(ex))
                {
                    await session.ExecuteAsync("ROLLBACK TO SAVEPOINT dashboard_bounded", [], ct).ConfigureAwait(false);
                    return null;
                }
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One page of the workflow list, newest first: after <see cref="WorkflowPageQuery.After"/>, before <see cref="WorkflowPageQuery.Before"/>, or the newest.</summary>
    public async Task<WorkflowPage> ListWorkflowPageAsync(WorkflowPageQuery query, CancellationToken cancellationToken)
    {
        var page = await ReadWorkflowPageAsync(query, cancellationToken).ConfigureAwait(false);
        if (query.Before is null || page.TimedOut || page.ScanStopped || page.Previous is not null || page.Rows.Count == query.PageSize)
        {
            return page;
        }

        // Back at the newest rows with a short page: the newest page holds it and more, unless that page stops its scan
        // before reaching this page's rows.
        var newest = await ReadWorkflowPageAsync(query with { Before = null, After = null }, cancellationToken).ConfigureAwait(false);
        return page.Rows.Count == 0 || newest.Rows.Any(r => r.WorkflowId == page.Rows[^1].WorkflowId && r.CreatedAt == page.Rows[^1].CreatedAt) ? newest : page;
    }

    private async Task<WorkflowPage> ReadWorkflowPageAsync(WorkflowPageQuery query, CancellationToken cancellationToken)
    {
        var path = ChooseListPath(query.Filter);
        var (statement, argArray) = WorkflowPageStatement(query, path);

        static (StatusRow Row, bool Matches, long Scanned) Read(DbDataReader r) => (ReadStatus(r), r.GetInt64(StatusFieldCount) == 1, r.GetInt64(StatusFieldCount + 1));

        var read = await QueryWithTimeoutAsync(statement, argArray, Read, query.StatementTimeout, cancellationToken).ConfigureAwait(false);
        if (read is null)
        {
            return new WorkflowPage([], null, null, ScanStopped: false, TimedOut: true, path);
        }

        // The rows come in the direction of travel: newest first going older, oldest first going newer.
        var rows = new List<StatusRow>();
        WorkflowKey? further = null;
        var scanStopped = false;
        foreach (var (row, matches, scanned) in read)
        {
            if (rows.Count == query.PageSize && matches)
            {
                // One more match than the page holds: more rows remain beyond this page's last.
                further = Key(rows[^1]);
                break;
            }

            if (matches)
            {
                rows.Add(row);
            }

            if (scanned == query.ScanLimit)
            {
                // The scan's last row (returned even when it does not match): the rows beyond it were not searched, and
                // every match before it is on this page. The page is partial unless it is full.
                scanStopped = rows.Count < query.PageSize;
                further = Key(row);
                break;
            }
        }

        // The way back (opposite to the travel) starts from this page's rows: the keyset excludes its own key, so an empty
        // page has none (the key it came from may be a row shown on the page before); the newest page is always reachable.
        if (query.Before is not null)
        {
            rows.Reverse();
            return new WorkflowPage(rows, rows.Count > 0 ? Key(rows[^1]) : null, further, scanStopped, TimedOut: false, path);
        }

        WorkflowKey? newer = query.After is not null && rows.Count > 0 ? Key(rows[0]) : null;
        return new WorkflowPage(rows, further, newer, scanStopped, TimedOut: false, path);

        static WorkflowKey Key(StatusRow row) => new(row.CreatedAt, row.WorkflowId);
    }

    /// <summary>
    /// The statement of one page and its arguments. Each row comes with two more columns: whether it matches the filters
    /// (the scan also returns its last row read, matching or not, to say where it stopped), and its position in the scan.
    /// </summary>
    internal (string Sql, object?[] Args) WorkflowPageStatement(WorkflowPageQuery query, WorkflowListPath path)
    {
        var args = new List<object?>();
        string Arg(object? value)
        {
            args.Add(value);
            return "$" + args.Count.ToString(CultureInfo.InvariantCulture);
        }

        // Going newer reads in ascending order from the key (the caller reverses the rows); otherwise descending.
        var newer = query.Before is not null;
        var order = newer ? "ws.created_at ASC, ws.workflow_uuid ASC" : "ws.created_at DESC, ws.workflow_uuid DESC";
        var keyset = new List<string>();
        if (query.Before is { } before)
        {
            var keysetAt = Arg(before.CreatedAt);
            var keysetId = Arg(before.WorkflowId);
            keyset.Add($"ws.created_at >= {keysetAt} AND (ws.created_at > {keysetAt} OR ws.workflow_uuid > {keysetId})");
        }
        else if (query.After is { } after)
        {
            var keysetAt = Arg(after.CreatedAt);
            var keysetId = Arg(after.WorkflowId);
            keyset.Add($"ws.created_at <= {keysetAt} AND (ws.created_at < {keysetAt} OR ws.workflow_uuid < {keysetId})");
        }

        var sql = new StringBuilder("SELECT ").Append(StatusColumns).Append(", NULL, NULL, NULL").Append(StatusTailColumns);
        if (path == WorkflowListPath.StatusIndex)
        {
            // One branch per status, each in the list's order along its own index and limited to the page, then merged.
            // The branches carry only the keys (a sort of narrow rows); the page's rows are then read by primary key.
            var conditions = FilterConditions(args, query.Filter with { Statuses = null });
            conditions.InsertRange(0, keyset);
            var limit = Arg((long)query.PageSize + 1);
            sql.Append(", 1, 0 FROM (");
            var branch = 0;
            foreach (var status in query.Filter.Statuses!.Distinct(StringComparer.Ordinal))
            {
                sql.Append(branch == 0 ? string.Empty : " UNION ALL ").Append("SELECT * FROM (SELECT ws.created_at, ws.workflow_uuid FROM ").Append(d.Table("workflow_status"))
                    .Append(" ws WHERE ").Append(IndexedStatusConditions[status]);
                foreach (var condition in conditions)
                {
                    sql.Append(" AND ").Append(condition);
                }

                sql.Append(" ORDER BY ").Append(UnorderedIndexStatuses.Contains(status) ? (newer ? "ws.created_at + 0 ASC, ws.workflow_uuid ASC" : "ws.created_at + 0 DESC, ws.workflow_uuid DESC") : order)
                    .Append(" LIMIT ").Append(limit).Append(") b").Append(branch++);
            }

            sql.Append(") k JOIN ").Append(d.Table("workflow_status")).Append(" ws ON ws.workflow_uuid = k.workflow_uuid ORDER BY ").Append(order).Append(" LIMIT ").Append(limit);
        }
        else
        {
            // The scan: along workflow_status_created_at_index from the keyset, within the time range, at most ScanLimit rows.
            var scanned = FilterConditions(args, new StatusQuery { CreatedFromEpochMs = query.Filter.CreatedFromEpochMs, CreatedToEpochMs = query.Filter.CreatedToEpochMs });
            scanned.InsertRange(0, keyset);

            // The filters, applied to the scanned rows.
            var filters = FilterConditions(args, query.Filter with { CreatedFromEpochMs = null, CreatedToEpochMs = null });
            var filter = filters.Count == 0 ? "1 = 1" : string.Join(" AND ", filters);
            var limit = Arg((long)query.ScanLimit);
            sql.Append(", CASE WHEN ").Append(filter).Append(" THEN 1 ELSE 0 END, ws.dashboard_rn FROM (SELECT ws.*, ROW_NUMBER() OVER (ORDER BY ").Append(order)
                .Append(") AS dashboard_rn FROM ").Append(d.Table("workflow_status")).Append(" ws");
            if (scanned.Count > 0)
            {
                sql.Append(" WHERE ").AppendJoin(" AND ", scanned);
            }

            // The last scanned row comes back even when it does not match: it is where a short page's scan stopped.
            sql.Append(" ORDER BY ").Append(order).Append(" LIMIT ").Append(limit).Append(") ws WHERE (").Append(filter)
                .Append(") OR ws.dashboard_rn = ").Append(limit).Append(" ORDER BY ").Append(order).Append(" LIMIT ").Append(Arg((long)query.PageSize + 1));
        }

        var argArray = args.ToArray();
        SqlArguments.CheckStorable(argArray);
        return (sql.ToString(), argArray);
    }

    /// <summary>The in-flight (enqueued, pending, delayed) workflows of every queue, by status.</summary>
    public Task<List<QueueStatusCount>> CountQueuedByStatusAsync(CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT queue_name, status, COUNT(*), MIN(created_at), COUNT(DISTINCT queue_partition_key) FROM {d.Table("workflow_status")} " +
            "WHERE queue_name IS NOT NULL AND status IN ('ENQUEUED', 'PENDING', 'DELAYED') GROUP BY queue_name, status ORDER BY queue_name, status",
            [],
            static r => new QueueStatusCount(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4)),
            cancellationToken);

    /// <summary>The dequeued (pending) workflows of every queue, by executor, with the longest time one of them waited to start.</summary>
    public Task<List<QueueExecutorCount>> CountQueuedByExecutorAsync(CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT queue_name, executor_id, COUNT(*), MAX(started_at_epoch_ms - created_at) FROM {d.Table("workflow_status")} " +
            "WHERE queue_name IS NOT NULL AND status = 'PENDING' GROUP BY queue_name, executor_id ORDER BY queue_name, executor_id",
            [],
            static r => new QueueExecutorCount(r.GetString(0), NullableString(r, 1), r.GetInt64(2), NullableLong(r, 3)),
            cancellationToken);

    /// <summary>The current value of each event a workflow set.</summary>
    public Task<List<RecordedValue>> ListEventsAsync(string workflowId, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT key, value, serialization FROM {d.Table("workflow_events")} WHERE workflow_uuid = $1 ORDER BY key",
            [workflowId],
            static r => new RecordedValue(r.GetString(0), NullableString(r, 1), NullableString(r, 2), null, false, 1),
            cancellationToken);

    /// <summary>The messages sent to a workflow (at most <paramref name="limit"/>, oldest first), consumed or not.</summary>
    public Task<List<RecordedValue>> ListMessagesAsync(string workflowId, int limit, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT COALESCE(topic, ''), message, serialization, created_at_epoch_ms, consumed FROM {d.Table("notifications")} " +
            "WHERE destination_uuid = $1 ORDER BY created_at_epoch_ms LIMIT $2",
            [workflowId, (long)limit],
            static r => new RecordedValue(r.GetString(0), NullableString(r, 1), NullableString(r, 2), r.GetInt64(3), r.GetBoolean(4), 1),
            cancellationToken);

    /// <summary>The streams a workflow wrote: each key with its number of values and its last value.</summary>
    public Task<List<RecordedValue>> ListStreamsAsync(string workflowId, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT s.key, s.value, s.serialization, c.n FROM {d.Table("streams")} s JOIN (SELECT key, COUNT(*) AS n, MAX(\"offset\") AS last " +
            $"FROM {d.Table("streams")} WHERE workflow_uuid = $1 GROUP BY key) c ON c.key = s.key AND c.last = s.\"offset\" " +
            "WHERE s.workflow_uuid = $1 ORDER BY s.key",
            [workflowId],
            static r => new RecordedValue(r.GetString(0), NullableString(r, 1), NullableString(r, 2), null, false, r.GetInt64(3)),
            cancellationToken);

    /// <summary>The workflows a workflow started (at most <paramref name="limit"/>), oldest first.</summary>
    public Task<List<StatusRow>> ListChildrenAsync(string workflowId, int limit, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT {StatusColumns}, NULL, NULL, NULL{StatusTailColumns} FROM {d.Table("workflow_status")} ws WHERE ws.parent_workflow_id = $1 " +
            "ORDER BY ws.created_at, ws.workflow_uuid LIMIT $2",
            [workflowId, (long)limit],
            ReadStatus,
            cancellationToken);
}
