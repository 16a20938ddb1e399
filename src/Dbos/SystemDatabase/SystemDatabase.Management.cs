using System.Data.Common;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dbos.SystemDatabase;

// Managing workflows from outside: cancel, resume, fork, delete, descendants, and listing.
internal sealed partial class SystemDatabase
{
    /// <summary>The status and owner of each of the given workflows that still exists.</summary>
    public Task<List<(string WorkflowId, string Status, string? OwnerXid)>> GetOwnershipAsync(string[] workflowIds, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            $"SELECT workflow_uuid, status, owner_xid FROM {d.Table("workflow_status")} WHERE {d.InList("workflow_uuid", 1)}",
            [workflowIds],
            static r => (r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2)),
            cancellationToken);

    /// <summary>Cancels workflows that have not finished. Returns the IDs that were cancelled.</summary>
    public Task<List<string>> CancelAsync(string[] workflowIds, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'CANCELLED', owner_xid = NULL, queue_name = NULL, deduplication_id = NULL, " +
            $"started_at_epoch_ms = NULL, updated_at = {d.NowMs}, completed_at = {d.NowMs} " +
            $"WHERE {d.InList("workflow_uuid", 1)} AND status NOT IN ('SUCCESS', 'ERROR') RETURNING workflow_uuid",
            [workflowIds],
            static r => r.GetString(0),
            cancellationToken);

    /// <summary>Cancels workflows whose deadline has passed (those of this application). Returns their IDs.</summary>
    public Task<List<string>> CancelIfDeadlinePassedAsync(string workflowId, long nowEpochMs, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'CANCELLED', owner_xid = NULL, queue_name = NULL, deduplication_id = NULL, " +
            $"started_at_epoch_ms = NULL, updated_at = {d.NowMs}, completed_at = {d.NowMs} " +
            "WHERE workflow_uuid = $1 AND status IN ('ENQUEUED', 'PENDING', 'DELAYED') AND workflow_deadline_epoch_ms IS NOT NULL " +
            "AND workflow_deadline_epoch_ms <= $2 RETURNING workflow_uuid",
            [workflowId, nowEpochMs],
            static r => r.GetString(0),
            cancellationToken);

    /// <summary>Puts unfinished workflows back on a queue with a fresh budget of recovery attempts. Returns the IDs resumed.</summary>
    public Task<List<string>> ResumeAsync(string[] workflowIds, string queueName, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'ENQUEUED', owner_xid = NULL, queue_name = $2, recovery_attempts = 0, " +
            $"workflow_deadline_epoch_ms = NULL, deduplication_id = NULL, started_at_epoch_ms = NULL, updated_at = {d.NowMs}, completed_at = NULL " +
            $"WHERE {d.InList("workflow_uuid", 1)} AND status NOT IN ('SUCCESS', 'ERROR') RETURNING workflow_uuid",
            [workflowIds, queueName],
            static r => r.GetString(0),
            cancellationToken);

    /// <summary>
    /// Creates <paramref name="newWorkflowId"/> as a copy of <paramref name="workflowId"/> that reuses the recorded outcomes of
    /// operations before <paramref name="startStep"/>, and enqueues it. Returns false if the original does not exist.
    /// </summary>
    public Task<bool> ForkAsync(string workflowId, string newWorkflowId, int startStep, string? applicationVersion, string queueName, CancellationToken cancellationToken)
    {
        var ws = d.Table("workflow_status");
        return executor.WriteAsync(
            async (session, ct) =>
            {
                var inserted = await session.ExecuteAsync(
                    $"INSERT INTO {ws} (workflow_uuid, status, name, class_name, config_name, queue_name, authenticated_user, assumed_role, " +
                    "authenticated_roles, application_version, application_id, forked_from, serialization, attributes, application_name) " +
                    "SELECT $2, 'ENQUEUED', name, class_name, config_name, $3, authenticated_user, assumed_role, authenticated_roles, " +
                    "COALESCE($4, application_version), NULL, workflow_uuid, serialization, attributes, COALESCE(application_name, $5) " +
                    $"FROM {ws} WHERE workflow_uuid = $1",
                    [workflowId, newWorkflowId, queueName, applicationVersion, applicationName],
                    ct).ConfigureAwait(false);
                if (inserted == 0)
                {
                    return false;
                }

                await session.ExecuteAsync(
                    $"INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) SELECT $2, COALESCE(wi.inputs, ws.inputs) FROM {ws} ws " +
                    $"LEFT JOIN {d.Table("workflow_input")} wi ON wi.workflow_uuid = ws.workflow_uuid WHERE ws.workflow_uuid = $1",
                    [workflowId, newWorkflowId],
                    ct).ConfigureAwait(false);
                await session.ExecuteAsync($"UPDATE {ws} SET was_forked_from = TRUE WHERE workflow_uuid = $1", [workflowId], ct).ConfigureAwait(false);
                if (startStep > 0)
                {
                    object?[] copyArgs = [workflowId, newWorkflowId, startStep];
                    await session.ExecuteAsync(
                        $"INSERT INTO {d.Table("operation_outputs")} (workflow_uuid, function_id, function_name, output, error, child_workflow_id, " +
                        "started_at_epoch_ms, completed_at_epoch_ms, serialization, application_name) " +
                        $"SELECT $2, function_id, function_name, output, error, child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization, $4 " +
                        $"FROM {d.Table("operation_outputs")} WHERE workflow_uuid = $1 AND function_id < $3",
                        [workflowId, newWorkflowId, startStep, applicationName],
                        ct).ConfigureAwait(false);
                    await session.ExecuteAsync(
                        $"INSERT INTO {d.Table("streams")} (workflow_uuid, key, value, \"offset\", function_id, serialization) " +
                        $"SELECT $2, key, value, \"offset\", function_id, serialization FROM {d.Table("streams")} WHERE workflow_uuid = $1 AND function_id < $3",
                        copyArgs,
                        ct).ConfigureAwait(false);
                    await session.ExecuteAsync(
                        $"INSERT INTO {d.Table("workflow_events_history")} (workflow_uuid, function_id, key, value, serialization) " +
                        $"SELECT $2, function_id, key, value, serialization FROM {d.Table("workflow_events_history")} WHERE workflow_uuid = $1 AND function_id < $3",
                        copyArgs,
                        ct).ConfigureAwait(false);
                    await session.ExecuteAsync(
                        $"INSERT INTO {d.Table("workflow_events")} (workflow_uuid, key, value, serialization) " +
                        "SELECT $2, key, value, serialization FROM (SELECT key, value, serialization, " +
                        "ROW_NUMBER() OVER (PARTITION BY key ORDER BY function_id DESC) AS rn " +
                        $"FROM {d.Table("workflow_events_history")} WHERE workflow_uuid = $1 AND function_id < $3) latest WHERE rn = 1",
                        copyArgs,
                        ct).ConfigureAwait(false);
                }

                return true;
            },
            cancellationToken);
    }

    /// <summary>Deletes workflows and everything recorded for them. Returns the number of workflows deleted.</summary>
    public Task<int> DeleteAsync(string[] workflowIds, CancellationToken cancellationToken) =>
        executor.WriteAsync(
            async (session, ct) =>
            {
                foreach (var table in (string[])["workflow_input", "workflow_output", "operation_outputs"])
                {
                    await session.ExecuteAsync($"DELETE FROM {d.Table(table)} WHERE {d.InList("workflow_uuid", 1)}", [workflowIds], ct).ConfigureAwait(false);
                }

                return await session.ExecuteAsync($"DELETE FROM {d.Table("workflow_status")} WHERE {d.InList("workflow_uuid", 1)}", [workflowIds], ct).ConfigureAwait(false);
            },
            cancellationToken);

    /// <summary>The IDs of the workflows started by <paramref name="workflowIds"/>, and by those, all the way down.</summary>
    public Task<List<string>> GetDescendantsAsync(string[] workflowIds, CancellationToken cancellationToken) =>
        executor.ReadAsync(
            async (session, ct) =>
            {
                var found = new List<string>();
                var seen = new HashSet<string>(workflowIds, StringComparer.Ordinal);
                var frontier = workflowIds;
                while (frontier.Length > 0)
                {
                    var children = await session.QueryAsync(
                        $"SELECT workflow_uuid FROM {d.Table("workflow_status")} WHERE {d.InList("parent_workflow_id", 1)}",
                        [frontier],
                        static r => r.GetString(0),
                        ct).ConfigureAwait(false);
                    frontier = children.Where(seen.Add).ToArray();
                    found.AddRange(frontier);
                }

                return found;
            },
            cancellationToken);

    /// <summary>Lists workflow status rows matching <paramref name="query"/>.</summary>
    public Task<List<StatusRow>> ListWorkflowsAsync(StatusQuery query, CancellationToken cancellationToken)
    {
        var sql = new StringBuilder("SELECT ").Append(StatusColumns);
        sql.Append(query.LoadInput ? ", COALESCE(wi.inputs, ws.inputs)" : ", NULL");
        sql.Append(query.LoadOutput ? ", COALESCE(wo.output, ws.output), COALESCE(wo.error, ws.error)" : ", NULL, NULL");
        sql.Append(StatusTailColumns);
        sql.Append(" FROM ").Append(d.Table("workflow_status")).Append(" ws");
        if (query.LoadInput)
        {
            sql.Append(" LEFT JOIN ").Append(d.Table("workflow_input")).Append(" wi ON wi.workflow_uuid = ws.workflow_uuid");
        }

        if (query.LoadOutput)
        {
            sql.Append(" LEFT JOIN ").Append(d.Table("workflow_output")).Append(" wo ON wo.workflow_uuid = ws.workflow_uuid");
        }

        var args = new List<object?>();
        AppendWhere(sql, args, query);

        sql.Append(" ORDER BY ws.created_at ").Append(query.Descending ? "DESC" : "ASC").Append(", ws.workflow_uuid ").Append(query.Descending ? "DESC" : "ASC");
        if (query.Limit is { } limit)
        {
            args.Add((long)limit);
            sql.Append(" LIMIT $").Append(args.Count);
        }
        else if (query.Offset is not null && !d.IsPostgres)
        {
            sql.Append(" LIMIT -1");
        }

        if (query.Offset is { } offset)
        {
            args.Add((long)offset);
            sql.Append(" OFFSET $").Append(args.Count);
        }

        return executor.QueryAsync(sql.ToString(), args.ToArray(), ReadStatus, cancellationToken);
    }

    /// <summary>Counts the workflow status rows matching <paramref name="query"/>'s filters, grouped by the chosen columns.</summary>
    public Task<List<CountRow>> CountWorkflowsAsync(
        StatusQuery query, bool byStatus, bool byName, bool byQueue, bool byVersion, bool byExecutor, CancellationToken cancellationToken)
    {
        var grouped = new List<string>();
        var sql = new StringBuilder("SELECT ");
        void Column(bool chosen, string column)
        {
            sql.Append(chosen ? column : "NULL").Append(", ");
            if (chosen)
            {
                grouped.Add(column);
            }
        }

        Column(byStatus, "ws.status");
        Column(byName, "ws.name");
        Column(byQueue, "ws.queue_name");
        Column(byVersion, "ws.application_version");
        Column(byExecutor, "ws.executor_id");
        sql.Append("COUNT(*) FROM ").Append(d.Table("workflow_status")).Append(" ws");
        var args = new List<object?>();
        AppendWhere(sql, args, query);
        if (grouped.Count > 0)
        {
            sql.Append(" GROUP BY ").AppendJoin(", ", grouped).Append(" ORDER BY ").AppendJoin(", ", grouped);
        }

        return executor.QueryAsync(
            sql.ToString(),
            args.ToArray(),
            static r => new CountRow(NullableString(r, 0), NullableString(r, 1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4), r.GetInt64(5)),
            cancellationToken);
    }

    /// <summary>Appends the WHERE clause of <paramref name="query"/>'s filters to <paramref name="sql"/>, adding their values to <paramref name="args"/>.</summary>
    private void AppendWhere(StringBuilder sql, List<object?> args, StatusQuery query)
    {
        var conditions = FilterConditions(args, query);
        if (conditions.Count > 0)
        {
            sql.Append(" WHERE ").AppendJoin(" AND ", conditions);
        }
    }

    /// <summary>
    /// The conditions of <paramref name="query"/>'s filters on <c>workflow_status ws</c> (to be joined with AND), adding their
    /// values to <paramref name="args"/>: the one place every listing (ListWorkflowsAsync, CountWorkflowsAsync, the dashboard) builds them.
    /// </summary>
    private List<string> FilterConditions(List<object?> args, StatusQuery query)
    {
        var conditions = new List<string>();
        void Add(string condition, object? value)
        {
            args.Add(value);
            conditions.Add(condition.Replace("$?", "$" + args.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        }

        void AddList(string column, IReadOnlyList<string>? values)
        {
            if (values is not null)
            {
                args.Add(values.ToArray());
                conditions.Add(d.InList(column, args.Count));
            }
        }

        AddList("ws.workflow_uuid", query.WorkflowIds);
        AddList("ws.status", query.Statuses);
        AddList("ws.name", query.Names);
        AddList("ws.queue_name", query.QueueNames);
        AddList("ws.application_version", Merge(query.ApplicationVersion, query.ApplicationVersions));

        if (query.ApplicationName is not null)
        {
            Add("(ws.application_name = $? OR ws.application_name IS NULL)", query.ApplicationName);
        }

        AddList("ws.executor_id", Merge(query.ExecutorId, query.ExecutorIds));

        if (query.ParentWorkflowId is not null)
        {
            Add("ws.parent_workflow_id = $?", query.ParentWorkflowId);
        }

        AddList("ws.authenticated_user", Merge(query.AuthenticatedUser, query.AuthenticatedUsers));
        if (query.ForkedFrom is not null)
        {
            Add("ws.forked_from = $?", query.ForkedFrom);
        }

        if (query.HasParent is { } hasParent)
        {
            conditions.Add(hasParent ? "ws.parent_workflow_id IS NOT NULL" : "ws.parent_workflow_id IS NULL");
        }

        AddAttributes(query.Attributes);

        if (query.ScheduleName is not null)
        {
            Add("ws.schedule_name = $?", query.ScheduleName);
        }

        if (query.WorkflowIdPrefix is not null)
        {
            args.Add(query.WorkflowIdPrefix);
            conditions.Add(d.StartsWith("ws.workflow_uuid", args.Count));
        }

        if (query.QueuePartitionKey is not null)
        {
            Add("ws.queue_partition_key = $?", query.QueuePartitionKey);
        }

        if (query.CreatedFromEpochMs is { } from)
        {
            Add("ws.created_at >= $?", from);
        }

        if (query.CreatedToEpochMs is { } to)
        {
            Add("ws.created_at <= $?", to);
        }

        if (query.QueuedOnly)
        {
            conditions.Add("ws.queue_name IS NOT NULL AND ws.status IN ('ENQUEUED', 'PENDING', 'DELAYED')");
        }

        return conditions;

        static IReadOnlyList<string>? Merge(string? one, IReadOnlyList<string>? many) =>
            one is null ? many : many is null ? [one] : [one, .. many];

        void AddAttributes(JsonObject? attributes)
        {
            if (attributes is null || attributes.Count == 0)
            {
                return;
            }

            if (d.IsPostgres)
            {
                // Containment, which the GIN index idx_workflow_status_attributes serves.
                Add("ws.attributes @> CAST($? AS jsonb)", attributes.ToJsonString());
                return;
            }

            // SQLite: each pair must be a top-level member of the same JSON type and value (numbers compare by value, as in jsonb).
            foreach (var (key, value) in attributes)
            {
                switch (value?.GetValueKind() ?? JsonValueKind.Null)
                {
                    case JsonValueKind.String:
                        AddPair("EXISTS (SELECT 1 FROM json_each(ws.attributes) a WHERE a.key = $?k AND a.type = 'text' AND a.atom = $?v)", key, value!.GetValue<string>());
                        break;
                    case JsonValueKind.Number:
                        AddPair(
                            "EXISTS (SELECT 1 FROM json_each(ws.attributes) a WHERE a.key = $?k AND a.type IN ('integer', 'real') AND a.atom = $?v)",
                            key,
                            double.Parse(value!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture));
                        break;
                    case JsonValueKind.True:
                        AddPair("EXISTS (SELECT 1 FROM json_each(ws.attributes) a WHERE a.key = $?k AND a.type = 'true')", key, null);
                        break;
                    case JsonValueKind.False:
                        AddPair("EXISTS (SELECT 1 FROM json_each(ws.attributes) a WHERE a.key = $?k AND a.type = 'false')", key, null);
                        break;
                    default:
                        AddPair("EXISTS (SELECT 1 FROM json_each(ws.attributes) a WHERE a.key = $?k AND a.type = 'null')", key, null);
                        break;
                }
            }
        }

        void AddPair(string condition, string key, object? value)
        {
            args.Add(key);
            condition = condition.Replace("$?k", "$" + args.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            if (condition.Contains("$?v", StringComparison.Ordinal))
            {
                args.Add(value);
                condition = condition.Replace("$?v", "$" + args.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            }

            conditions.Add(condition);
        }

    }

    private static StatusRow ReadStatus(DbDataReader r) => new()
    {
        WorkflowId = r.GetString(0),
        Status = r.GetString(1),
        Name = NullableString(r, 2),
        QueueName = NullableString(r, 3),
        ExecutorId = NullableString(r, 4),
        ApplicationVersion = NullableString(r, 5),
        ApplicationName = NullableString(r, 6),
        CreatedAt = r.GetInt64(7),
        UpdatedAt = r.GetInt64(8),
        StartedAtEpochMs = NullableLong(r, 9),
        CompletedAt = NullableLong(r, 10),
        RecoveryAttempts = NullableLong(r, 11) ?? 0,
        TimeoutMs = NullableLong(r, 12),
        DeadlineEpochMs = NullableLong(r, 13),
        ParentWorkflowId = NullableString(r, 14),
        ForkedFrom = NullableString(r, 15),
        WasForkedFrom = r.GetBoolean(16),
        DeduplicationId = NullableString(r, 17),
        Priority = r.GetInt32(18),
        Serialization = NullableString(r, 19),
        QueuePartitionKey = NullableString(r, 20),
        DelayUntilEpochMs = NullableLong(r, 21),
        Inputs = NullableString(r, 22),
        Output = NullableString(r, 23),
        Error = NullableString(r, 24),
        AuthenticatedUser = NullableString(r, 25),
        AuthenticatedRoles = NullableString(r, 26),
        Attributes = NullableString(r, 27),
    };
}
