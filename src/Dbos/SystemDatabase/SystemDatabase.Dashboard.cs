using System.Data.Common;
using System.Globalization;
using System.Text;

namespace Dbos.SystemDatabase;

/// <summary>What the dashboard's workflow list asks for: filters, the keyset to continue after, and the bounds of one page.</summary>
internal sealed record WorkflowPageQuery
{
    public IReadOnlyList<string>? Statuses { get; init; }

    public string? Name { get; init; }

    public string? QueueName { get; init; }

    public string? ApplicationVersion { get; init; }

    public string? ExecutorId { get; init; }

    public string? WorkflowIdPrefix { get; init; }

    public long? CreatedFromEpochMs { get; init; }

    public long? CreatedToEpochMs { get; init; }

    /// <summary>Continue with the rows older than this one (newest first); null for the first page.</summary>
    public WorkflowKey? After { get; init; }

    public int PageSize { get; init; } = 50;

    /// <summary>At most this many rows (newest first, from <see cref="After"/>) are read to fill one page.</summary>
    public int ScanLimit { get; init; } = 100_000;

    /// <summary>Postgres stops the statement after this long (<c>statement_timeout</c>, local to its transaction).</summary>
    public TimeSpan StatementTimeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>A position in the order of the list: the <c>workflow_status_created_at_index</c> order, then the ID.</summary>
internal readonly record struct WorkflowKey(long CreatedAt, string WorkflowId);

/// <param name="Rows">The matching rows of the page, newest first.</param>
/// <param name="Next">Where the next page starts, or null when no older rows remain.</param>
/// <param name="ScanStopped">True when the page is short because the scan reached its bound: older rows were not searched yet.</param>
/// <param name="TimedOut">True when the statement ran past its timeout: the page holds nothing, and the filters should be narrowed.</param>
internal sealed record WorkflowPage(List<StatusRow> Rows, WorkflowKey? Next, bool ScanStopped, bool TimedOut);

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
    /// <summary>One page of the workflow list, newest first.</summary>
    public async Task<WorkflowPage> ListWorkflowPageAsync(WorkflowPageQuery query, CancellationToken cancellationToken)
    {
        var args = new List<object?>();
        string Arg(object? value)
        {
            args.Add(value);
            return "$" + args.Count.ToString(CultureInfo.InvariantCulture);
        }

        // The scan: newest first along workflow_status_created_at_index, bounded by the time range, the keyset and ScanLimit.
        var scanConditions = new List<string>();
        if (query.After is { } after)
        {
            var keysetAt = Arg(after.CreatedAt);
            var keysetId = Arg(after.WorkflowId);
            scanConditions.Add($"ws.created_at <= {keysetAt} AND (ws.created_at < {keysetAt} OR ws.workflow_uuid < {keysetId})");
        }

        if (query.CreatedFromEpochMs is { } from)
        {
            scanConditions.Add($"ws.created_at >= {Arg(from)}");
        }

        if (query.CreatedToEpochMs is { } to)
        {
            scanConditions.Add($"ws.created_at <= {Arg(to)}");
        }

        // The filters, applied to the scanned rows.
        var filters = new List<string>();
        if (query.Statuses is { Count: > 0 } statuses)
        {
            args.Add(statuses.ToArray());
            filters.Add(d.InList("ws.status", args.Count));
        }

        if (query.Name is not null)
        {
            filters.Add($"ws.name = {Arg(query.Name)}");
        }

        if (query.QueueName is not null)
        {
            filters.Add($"ws.queue_name = {Arg(query.QueueName)}");
        }

        if (query.ApplicationVersion is not null)
        {
            filters.Add($"ws.application_version = {Arg(query.ApplicationVersion)}");
        }

        if (query.ExecutorId is not null)
        {
            filters.Add($"ws.executor_id = {Arg(query.ExecutorId)}");
        }

        if (query.WorkflowIdPrefix is not null)
        {
            args.Add(query.WorkflowIdPrefix);
            filters.Add(d.StartsWith("ws.workflow_uuid", args.Count));
        }

        var limit = Arg((long)query.ScanLimit);
        var order = "ws.created_at DESC, ws.workflow_uuid DESC";
        var filter = filters.Count == 0 ? "1 = 1" : string.Join(" AND ", filters);
        var sql = new StringBuilder("SELECT ").Append(StatusColumns).Append(", NULL, NULL, NULL").Append(StatusTailColumns).Append(", CASE WHEN ").Append(filter)
            .Append(" THEN 1 ELSE 0 END, ws.dashboard_rn FROM (SELECT ws.*, ROW_NUMBER() OVER (ORDER BY ").Append(order)
            .Append(") AS dashboard_rn FROM ").Append(d.Table("workflow_status")).Append(" ws");
        if (scanConditions.Count > 0)
        {
            sql.Append(" WHERE ").AppendJoin(" AND ", scanConditions);
        }

        // The last scanned row comes back even when it does not match: it is where a short page's scan stopped.
        sql.Append(" ORDER BY ").Append(order).Append(" LIMIT ").Append(limit).Append(") ws WHERE (").Append(filter)
            .Append(") OR ws.dashboard_rn = ").Append(limit).Append(" ORDER BY ").Append(order).Append(" LIMIT ").Append(Arg((long)query.PageSize + 1));
        var statement = sql.ToString();
        var argArray = args.ToArray();
        SqlArguments.CheckStorable(argArray);

        static (StatusRow Row, bool Matches, long Scanned) Read(DbDataReader r) => (ReadStatus(r), r.GetInt64(StatusFieldCount) == 1, r.GetInt64(StatusFieldCount + 1));

        List<(StatusRow Row, bool Matches, long Scanned)>? read;
        if (d.IsPostgres)
        {
            read = await executor.WriteAsync(
                async (session, ct) =>
                {
                    await session.QueryAsync(
                        "SELECT set_config('statement_timeout', $1, true)",
                        [((long)query.StatementTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)],
                        static r => r.GetString(0),
                        ct).ConfigureAwait(false);

                    // A savepoint keeps the transaction usable when the statement times out, so the executor sees no failure to retry.
                    await session.ExecuteAsync("SAVEPOINT dashboard_list", [], ct).ConfigureAwait(false);
                    try
                    {
                        return await session.QueryAsync(statement, argArray, Read, ct).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (executor.IsStatementTimeout(ex))
                    {
                        await session.ExecuteAsync("ROLLBACK TO SAVEPOINT dashboard_list", [], ct).ConfigureAwait(false);
                        return null;
                    }
                },
                cancellationToken).ConfigureAwait(false);
        }
        else
        {
            read = await executor.QueryAsync(statement, argArray, Read, cancellationToken).ConfigureAwait(false);
        }

        if (read is null)
        {
            return new WorkflowPage([], null, ScanStopped: false, TimedOut: true);
        }

        var rows = new List<StatusRow>();
        WorkflowKey? next = null;
        var scanStopped = false;
        foreach (var (row, matches, scanned) in read)
        {
            if (!matches)
            {
                // The scan's last row: the page is short, and older rows were not searched.
                scanStopped = true;
                next = new WorkflowKey(row.CreatedAt, row.WorkflowId);
                break;
            }

            if (rows.Count == query.PageSize)
            {
                // One more match than the page holds: older rows remain; the next page starts after this page's last.
                next = new WorkflowKey(rows[^1].CreatedAt, rows[^1].WorkflowId);
                break;
            }

            rows.Add(row);
            if (scanned == query.ScanLimit && rows.Count < query.PageSize)
            {
                scanStopped = true;
                next = new WorkflowKey(row.CreatedAt, row.WorkflowId);
                break;
            }
        }

        return new WorkflowPage(rows, next, scanStopped, TimedOut: false);
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
