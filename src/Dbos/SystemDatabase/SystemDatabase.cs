using System.Data.Common;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Dbos.SystemDatabase;

/// <summary>
/// Every statement DBOS runs against the system database, written once for both dialects. Each checkpoint on the
/// hot path is one statement (one round trip on Postgres): a start inserts or reads the status row, a step is one
/// conditional insert, a completion one conditional update.
/// </summary>
internal sealed class SystemDatabase : IAsyncDisposable
{
    private const string StatusColumns =
        "ws.workflow_uuid, ws.status, ws.name, ws.queue_name, ws.executor_id, ws.application_version, ws.application_name, " +
        "ws.created_at, ws.updated_at, ws.started_at_epoch_ms, ws.completed_at, ws.recovery_attempts, ws.workflow_timeout_ms, " +
        "ws.workflow_deadline_epoch_ms, ws.parent_workflow_id, ws.forked_from, ws.was_forked_from, ws.deduplication_id, ws.priority, ws.serialization, " +
        "ws.queue_partition_key, ws.delay_until_epoch_ms";

    private const string OperationColumns =
        "function_id, function_name, output, error, child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization";

    private readonly SqlExecutor executor;
    private readonly SqlDialect d;
    private readonly string applicationName;

    private readonly string insertStatusSql;
    private readonly string insertInputSql;
    private readonly string startSql;
    private readonly string recordOperationSql;
    private readonly string completeStatusSql;
    private readonly string completeOutputSql;
    private readonly string completeSql;
    private readonly string outcomeSql;
    private readonly string operationsSql;
    private readonly string operationSql;

    private readonly PostgresListener? listener;

    public SystemDatabase(SqlExecutor executor, string applicationName, ILogger logger, TimeProvider time)
    {
        this.executor = executor;
        this.applicationName = applicationName;
        d = executor.Dialect;
        executor.Logger = logger;
        executor.Time = time;
        if (executor is PostgresExecutor postgres)
        {
            listener = new PostgresListener(postgres.OpenListenerConnectionAsync, Notifier, logger, time);
        }

        var ws = d.Table("workflow_status");

        insertStatusSql =
            $"INSERT INTO {ws} AS ws (workflow_uuid, status, name, class_name, config_name, queue_name, authenticated_user, assumed_role, " +
            "authenticated_roles, executor_id, application_version, application_id, recovery_attempts, workflow_timeout_ms, " +
            "workflow_deadline_epoch_ms, parent_workflow_id, serialization, creator_xid, owner_xid, application_name, deduplication_id, priority, " +
            "queue_partition_key, delay_until_epoch_ms, schedule_name, attributes) " +
            "VALUES ($1, $2, $3, NULL, NULL, $4, '', '', '[]', $5, $6, '', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, " +
            (d.IsPostgres ? "CAST($20 AS jsonb)) " : "$20) ") +
            "ON CONFLICT (workflow_uuid) DO UPDATE SET creator_xid = ws.creator_xid " +
            "RETURNING status, name, queue_name, creator_xid, serialization";
        insertInputSql =
            $"INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) SELECT $1, $2 " +
            $"WHERE EXISTS (SELECT 1 FROM {ws} WHERE workflow_uuid = $1 AND creator_xid = $3) ON CONFLICT (workflow_uuid) DO NOTHING";

        // Postgres runs both inserts as one statement; the input is written only by the start that created the row.
        startSql =
            $"WITH ins AS ({insertStatusSql}), inp AS (INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) " +
            "SELECT $1, $21 FROM ins WHERE ins.creator_xid = $12 ON CONFLICT (workflow_uuid) DO NOTHING) " +
            "SELECT status, name, queue_name, creator_xid, serialization FROM ins";

        recordOperationSql =
            $"INSERT INTO {d.Table("operation_outputs")} (workflow_uuid, function_id, function_name, output, error, child_workflow_id, " +
            "started_at_epoch_ms, completed_at_epoch_ms, serialization, application_name) " +
            "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 " +
            $"WHERE EXISTS (SELECT 1 FROM {ws} WHERE workflow_uuid = $1 AND status = 'PENDING' AND owner_xid = $11) " +
            "ON CONFLICT (workflow_uuid, function_id) DO NOTHING";

        completeStatusSql =
            $"UPDATE {ws} SET status = $2, updated_at = {d.NowMs}, completed_at = {d.NowMs}, deduplication_id = NULL, owner_xid = NULL " +
            "WHERE workflow_uuid = $1 AND status = 'PENDING' AND owner_xid = $3 RETURNING workflow_uuid";
        completeOutputSql =
            $"INSERT INTO {d.Table("workflow_output")} (workflow_uuid, output, error) VALUES ($1, $4, $5) " +
            "ON CONFLICT (workflow_uuid) DO UPDATE SET output = excluded.output, error = excluded.error";
        completeSql =
            $"WITH upd AS ({completeStatusSql}) INSERT INTO {d.Table("workflow_output")} (workflow_uuid, output, error) " +
            "SELECT workflow_uuid, $4, $5 FROM upd ON CONFLICT (workflow_uuid) DO UPDATE SET output = excluded.output, error = excluded.error";

        outcomeSql =
            $"SELECT ws.status, COALESCE(wo.output, ws.output), COALESCE(wo.error, ws.error), ws.serialization, ws.name FROM {ws} ws " +
            $"LEFT JOIN {d.Table("workflow_output")} wo ON wo.workflow_uuid = ws.workflow_uuid WHERE ws.workflow_uuid = $1";

        operationsSql = $"SELECT {OperationColumns} FROM {d.Table("operation_outputs")} WHERE workflow_uuid = $1 ORDER BY function_id";
        operationSql = $"SELECT {OperationColumns} FROM {d.Table("operation_outputs")} WHERE workflow_uuid = $1 AND function_id = $2";
    }

    public SqlDialect Dialect => d;

    public SqlExecutor Executor => executor;

    public string Description => executor.Description;

    /// <summary>Signals waiters when messages, events and stream values may have been written.</summary>
    public ChangeNotifier Notifier { get; } = new();

    public Task MigrateAsync(CancellationToken cancellationToken) => executor.MigrateAsync(cancellationToken);

    /// <summary>Deletes the system tables and everything in them (the schema on Postgres).</summary>
    public Task ResetAsync(CancellationToken cancellationToken) =>
        d is PostgresDialect postgres
            ? executor.ExecuteAsync($"DROP SCHEMA IF EXISTS {postgres.QuotedSchema} CASCADE", [], cancellationToken)
            : executor.WriteAsync(
                async (session, ct) =>
                {
                    var tables = await session.QueryAsync("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", [], static r => r.GetString(0), ct).ConfigureAwait(false);
                    foreach (var table in tables)
                    {
                        await session.ExecuteAsync($"DROP TABLE IF EXISTS \"{table.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", [], ct).ConfigureAwait(false);
                    }

                    return tables.Count;
                },
                cancellationToken);

    /// <summary>Starts listening for changes made by other processes (Postgres); on SQLite other processes are polled.</summary>
    public Task StartListeningAsync() => listener?.StartAsync() ?? Task.CompletedTask;

    /// <summary>Inserts a workflow's status and input, or finds the existing row with that ID.</summary>
    public async Task<StartResult> StartWorkflowAsync(NewWorkflowRow row, CancellationToken cancellationToken)
    {
        var args = StartArgs(row);
        object?[] inputArgs = [row.WorkflowId, row.Inputs, row.CreatorXid];
        List<StartRow> rows;
        try
        {
            if (d.IsPostgres)
            {
                rows = await executor.ExecuteQueryAsync(startSql, args, ReadStart, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                rows = await executor.WriteAsync(
                    async (session, ct) =>
                    {
                        var result = await session.QueryAsync(insertStatusSql, args[..20], ReadStart, ct).ConfigureAwait(false);
                        await session.ExecuteAsync(insertInputSql, inputArgs, ct).ConfigureAwait(false);
                        return result;
                    },
                    cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (IsUniqueViolation(ex))
        {
            throw Deduplicated(row);
        }

        var r = rows[0];
        return new StartResult(r.Creator == row.CreatorXid, r.Status, r.Name, r.Queue, r.Serialization);
    }

    /// <summary>
    /// Starts a child workflow and records it as the parent's operation <paramref name="functionId"/>, in one transaction.
    /// Returns null when the parent no longer owns its execution (cancelled, or taken over), so nothing was recorded.
    /// </summary>
    public async Task<StartResult?> StartChildWorkflowAsync(NewWorkflowRow child, string parentOwnerXid, int functionId, long nowEpochMs, CancellationToken cancellationToken)
    {
        var startArgs = StartArgs(child);
        var recordArgs = OperationArgs(child.ParentWorkflowId!, functionId, child.Name, null, null, child.WorkflowId, nowEpochMs, nowEpochMs, null, parentOwnerXid);
        try
        {
            return await executor.WriteAsync<StartResult?>(
                async (session, ct) =>
                {
                    var recorded = await session.ExecuteAsync(recordOperationSql, recordArgs, ct).ConfigureAwait(false);
                    if (recorded == 0)
                    {
                        return null;
                    }

                    var rows = await session.QueryAsync(insertStatusSql, startArgs[..20], ReadStart, ct).ConfigureAwait(false);
                    await session.ExecuteAsync(insertInputSql, [child.WorkflowId, child.Inputs, child.CreatorXid], ct).ConfigureAwait(false);
                    var r = rows[0];
                    return new StartResult(r.Creator == child.CreatorXid, r.Status, r.Name, r.Queue, r.Serialization);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsUniqueViolation(ex))
        {
            throw Deduplicated(child);
        }
    }

    private static bool IsUniqueViolation(Exception ex) =>
        ex is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation }
        || ex is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 };

    private static WorkflowDeduplicatedException Deduplicated(NewWorkflowRow row) => new(
        $"Workflow '{row.WorkflowId}' was not enqueued: a workflow with deduplication ID '{row.DeduplicationId}' is already queued or running on queue '{row.QueueName}'.");

    private static object?[] StartArgs(NewWorkflowRow row) =>
    [
        row.WorkflowId, row.Status, row.Name, row.QueueName, row.ExecutorId, row.ApplicationVersion, row.RecoveryAttempts,
        row.TimeoutMs, row.DeadlineEpochMs, row.ParentWorkflowId, row.Serialization, row.CreatorXid, row.OwnerXid,
        row.ApplicationName, row.DeduplicationId, row.Priority, row.PartitionKey, row.DelayUntilEpochMs, row.ScheduleName, row.Attributes, row.Inputs,
    ];

    private static StartRow ReadStart(DbDataReader r) =>
        new(r.GetString(0), NullableString(r, 1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4));

    private sealed record StartRow(string Status, string? Name, string? Queue, string? Creator, string? Serialization);

    /// <summary>
    /// Records an operation's outcome while <paramref name="ownerXid"/> still owns the pending workflow.
    /// Returns 1 when written, 0 when not: the operation was already recorded, or the execution lost its ownership.
    /// </summary>
    public Task<int> RecordOperationAsync(
        string workflowId,
        int functionId,
        string name,
        string? output,
        string? error,
        string? childWorkflowId,
        long startedAtEpochMs,
        long completedAtEpochMs,
        string? serialization,
        string ownerXid,
        CancellationToken cancellationToken)
    {
        var args = OperationArgs(workflowId, functionId, name, output, error, childWorkflowId, startedAtEpochMs, completedAtEpochMs, serialization, ownerXid);
        return executor.ExecuteAsync(recordOperationSql, args, cancellationToken);
    }

    private object?[] OperationArgs(
        string workflowId, int functionId, string name, string? output, string? error, string? childWorkflowId, long startedAt, long completedAt, string? serialization, string ownerXid) =>
        [workflowId, functionId, name, output, error, childWorkflowId, startedAt, completedAt, serialization, applicationName, ownerXid];

    /// <summary>Writes a workflow's outcome if it is still pending and owned by this execution. Returns whether it was written.</summary>
    public async Task<bool> CompleteWorkflowAsync(string workflowId, string ownerXid, string status, string? output, string? error, CancellationToken cancellationToken)
    {
        object?[] args = [workflowId, status, ownerXid, output, error];
        if (d.IsPostgres)
        {
            return await executor.ExecuteAsync(completeSql, args, cancellationToken).ConfigureAwait(false) == 1;
        }

        return await executor.WriteAsync(
            async (session, ct) =>
            {
                var updated = await session.QueryAsync(completeStatusSql, args, static r => r.GetString(0), ct).ConfigureAwait(false);
                if (updated.Count == 0)
                {
                    return false;
                }

                await session.ExecuteAsync(completeOutputSql, args, ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
    }

    public async Task<OutcomeRow?> GetOutcomeAsync(string workflowId, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            outcomeSql,
            [workflowId],
            static r => new OutcomeRow(r.GetString(0), NullableString(r, 1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4)),
            cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    public Task<List<OperationRow>> GetOperationsAsync(string workflowId, CancellationToken cancellationToken) =>
        executor.QueryAsync(operationsSql, [workflowId], ReadOperation, cancellationToken);

    public async Task<OperationRow?> GetOperationAsync(string workflowId, int functionId, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(operationSql, [workflowId, functionId], ReadOperation, cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    private static OperationRow ReadOperation(DbDataReader r) => ReadOperation(r, 0);

    private static OperationRow ReadOperation(DbDataReader r, int first) => new(
        r.GetInt32(first), r.GetString(first + 1), NullableString(r, first + 2), NullableString(r, first + 3), NullableString(r, first + 4),
        NullableLong(r, first + 5), NullableLong(r, first + 6), NullableString(r, first + 7));

    /// <summary>
    /// Moves this executor's pending workflows of this application version back to their queues (the internal queue
    /// for those started directly), in one statement, so they are dispatched under the queues' rules.
    /// </summary>
    public Task<List<string>> RequeuePendingAsync(string executorId, string applicationVersion, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            $"UPDATE {d.Table("workflow_status")} SET started_at_epoch_ms = NULL, status = 'ENQUEUED', owner_xid = NULL, updated_at = {d.NowMs}, " +
            "queue_name = COALESCE(queue_name, $4) " +
            "WHERE status = 'PENDING' AND executor_id = $1 AND application_version = $2 AND (application_name = $3 OR application_name IS NULL) " +
            "RETURNING workflow_uuid",
            [executorId, applicationVersion, applicationName, StatusNames.InternalQueue],
            static r => r.GetString(0),
            cancellationToken);

    /// <summary>What a process knows when it claims from a queue: who it is, what it can run, and what it already runs.</summary>
    internal sealed record ClaimContext(
        string OwnerXid,
        string ExecutorId,
        string ApplicationVersion,
        string[] WorkflowNames,
        int MaxBatch,
        int LocalRunning,
        int PartitionLocalRunning);

    /// <summary>
    /// Claims the workflows of <paramref name="queue"/> (of one partition, if given) that every limit allows to start now,
    /// lowest priority number first, then oldest first: they become PENDING, owned by the claim's owner token, and count
    /// a recovery attempt. Limits shared between processes are counted and spent in one transaction that a concurrent
    /// claim makes fail (Postgres: repeatable read or serializable, with NOWAIT row locks) rather than overspend; such a
    /// contended claim returns nothing, to be retried.
    /// </summary>
    public async Task<List<ClaimedRow>> ClaimAsync(QueueRecord queue, string? partitionKey, ClaimContext claim, CancellationToken cancellationToken)
    {
        var ws = d.Table("workflow_status");
        var scope = "(application_name = $3 OR application_name IS NULL)";
        var partitionFilter = partitionKey is null ? string.Empty : " AND queue_partition_key = $4";
        var countRateSql =
            $"SELECT COUNT(*) FROM {ws} WHERE queue_name = $1 AND rate_limited = TRUE AND status NOT IN ('ENQUEUED', 'DELAYED') " +
            $"AND started_at_epoch_ms > {d.NowMs} - $2 AND {scope}";
        var countPendingSql = $"SELECT COUNT(*) FROM {ws} WHERE queue_name = $1 AND status = 'PENDING' AND (application_name = $2 OR application_name IS NULL)";
        var lockMode = queue.HasSharedBudget ? d.ForUpdateNoWait : d.ForUpdateSkipLocked;
        var selectSql =
            $"SELECT workflow_uuid FROM {ws} WHERE status = 'ENQUEUED' AND queue_name = $1 AND " +

            // Like other DBOS implementations, only the latest version of the application takes work enqueued without one.
            $"(application_version = $2 OR (application_version IS NULL AND $2 = (SELECT version_name FROM {d.Table("application_versions")} " +
            "WHERE application_name = $3 OR application_name IS NULL ORDER BY version_timestamp DESC LIMIT 1))) " +
            $"AND {scope}{partitionFilter} AND {d.InList("name", 5)} ORDER BY priority, created_at, {d.InsertionOrder} LIMIT $6{lockMode}";
        if (partitionKey is null)
        {
            // Without a partition the parameters are renumbered, so none goes unused (Postgres cannot type an unused one).
            selectSql = selectSql.Replace("$5", "$4", StringComparison.Ordinal).Replace("$6", "$5", StringComparison.Ordinal);
        }

        var claimSql =
            $"UPDATE {ws} SET status = 'PENDING', owner_xid = $1, executor_id = $2, application_version = $3, started_at_epoch_ms = {d.NowMs}, " +
            $"rate_limited = $6, application_name = COALESCE(application_name, $4), recovery_attempts = recovery_attempts + 1, updated_at = {d.NowMs}, " +
            "workflow_deadline_epoch_ms = CASE WHEN workflow_timeout_ms IS NOT NULL AND workflow_deadline_epoch_ms IS NULL " +
            $"THEN {d.NowMs} + workflow_timeout_ms ELSE workflow_deadline_epoch_ms END " +
            $"WHERE {d.InList("workflow_uuid", 5)} AND status = 'ENQUEUED' AND (application_name = $4 OR application_name IS NULL) " +
            "RETURNING workflow_uuid, name, recovery_attempts, workflow_deadline_epoch_ms, serialization, parent_workflow_id, queue_partition_key, " +
            $"{(d.IsPostgres ? "attributes::text" : "attributes")}, started_at_epoch_ms - created_at";
        var inputsSql =
            $"SELECT ws.workflow_uuid, COALESCE(wi.inputs, ws.inputs) FROM {ws} ws LEFT JOIN {d.Table("workflow_input")} wi " +
            $"ON wi.workflow_uuid = ws.workflow_uuid WHERE {d.InList("ws.workflow_uuid", 1)}";
        var batchOperationsSql = $"SELECT workflow_uuid, {OperationColumns} FROM {d.Table("operation_outputs")} WHERE {d.InList("workflow_uuid", 1)}";

        async ValueTask<long> CountAsync(ISqlSession session, string sql, object?[] args, bool partitionScoped, CancellationToken ct)
        {
            if (partitionScoped)
            {
                sql += $" AND queue_partition_key = ${args.Length + 1}";
                args = [.. args, partitionKey];
            }

            var rows = await session.QueryAsync(sql, args, static r => Convert.ToInt64(r.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), ct).ConfigureAwait(false);
            return rows[0];
        }

        static long Periodms(double? seconds) => (long)Math.Ceiling((seconds ?? 0) * 1000);

        if (d.IsPostgres && !queue.HasSharedBudget && partitionKey is null)
        {
            return await ClaimInOneStatementAsync(queue, claim, selectSql, batchOperationsSql, cancellationToken).ConfigureAwait(false);
        }

        var isolation = !queue.HasSharedBudget ? System.Data.IsolationLevel.ReadCommitted
            : partitionKey is not null && (queue.Concurrency is not null || queue.RateLimitMax is not null) ? System.Data.IsolationLevel.Serializable
            : System.Data.IsolationLevel.RepeatableRead;
        try
        {
            return await executor.WriteAsync(
                async (session, ct) =>
                {
                    long budget = claim.MaxBatch;
                    if (queue.WorkerConcurrency is { } worker)
                    {
                        budget = Math.Min(budget, worker - claim.LocalRunning);
                    }

                    if (partitionKey is not null && queue.PartitionWorkerConcurrency is { } partitionWorker)
                    {
                        budget = Math.Min(budget, partitionWorker - claim.PartitionLocalRunning);
                    }

                    if (budget > 0 && queue.RateLimitMax is { } rate)
                    {
                        budget = Math.Min(budget, rate - await CountAsync(session, countRateSql, [queue.Name, Periodms(queue.RateLimitPeriodSec), applicationName], false, ct).ConfigureAwait(false));
                    }

                    if (budget > 0 && partitionKey is not null && queue.PartitionRateLimitMax is { } partitionRate)
                    {
                        budget = Math.Min(budget, partitionRate - await CountAsync(session, countRateSql, [queue.Name, Periodms(queue.PartitionRateLimitPeriodSec), applicationName], true, ct).ConfigureAwait(false));
                    }

                    if (budget > 0 && queue.Concurrency is { } concurrency)
                    {
                        budget = Math.Min(budget, concurrency - await CountAsync(session, countPendingSql, [queue.Name, applicationName], false, ct).ConfigureAwait(false));
                    }

                    if (budget > 0 && partitionKey is not null && queue.PartitionConcurrency is { } partitionConcurrency)
                    {
                        budget = Math.Min(budget, partitionConcurrency - await CountAsync(session, countPendingSql, [queue.Name, applicationName], true, ct).ConfigureAwait(false));
                    }

                    if (budget <= 0)
                    {
                        return [];
                    }

                    object?[] selectArgs = partitionKey is null
                        ? [queue.Name, claim.ApplicationVersion, applicationName, claim.WorkflowNames, budget]
                        : [queue.Name, claim.ApplicationVersion, applicationName, partitionKey, claim.WorkflowNames, budget];
                    var ids = (await session.QueryAsync(
                        selectSql,
                        selectArgs,
                        static r => r.GetString(0),
                        ct).ConfigureAwait(false)).ToArray();
                    if (ids.Length == 0)
                    {
                        return [];
                    }

                    var claimed = await session.QueryAsync(
                        claimSql,
                        [claim.OwnerXid, claim.ExecutorId, claim.ApplicationVersion, applicationName, ids, queue.HasRateLimit],
                        static r => new ClaimedRow(r.GetString(0), r.GetString(1), r.GetInt64(2), NullableLong(r, 3), NullableString(r, 4), NullableString(r, 5), null, NullableString(r, 6))
                        {
                            Attributes = NullableString(r, 7),
                            WaitedMs = NullableLong(r, 8),
                        },
                        ct).ConfigureAwait(false);
                    var claimedIds = claimed.Select(c => c.WorkflowId).ToArray();
                    var inputs = (await session.QueryAsync(inputsSql, [claimedIds], static r => (r.GetString(0), NullableString(r, 1)), ct).ConfigureAwait(false))
                        .ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);

                    // What recovered, resumed and forked workflows already recorded, for the whole batch in one read.
                    var operations = (await session.QueryAsync(batchOperationsSql, [claimedIds], static r => (r.GetString(0), ReadOperation(r, 1)), ct).ConfigureAwait(false))
                        .ToLookup(o => o.Item1, o => o.Item2, StringComparer.Ordinal);
                    return claimed.Select(c => c with
                    {
                        Inputs = inputs.GetValueOrDefault(c.WorkflowId),
                        Recorded = operations[c.WorkflowId].ToDictionary(o => o.FunctionId),
                    }).ToList();
                },
                cancellationToken,
                isolation).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.LockNotAvailable or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected)
        {
            // Another process claimed from the same queue at the same moment; its claim stands, this one retries.
            return [];
        }
    }

    /// <summary>
    /// The claim of a Postgres queue whose limits are all local (no shared budget to count), as one statement in
    /// autocommit: pick with SKIP LOCKED, mark as claimed, return each with its input and whether it has recorded
    /// operations, which a second read loads only when some have (recovered, resumed or forked workflows). One round
    /// trip instead of a transaction of five, for the common case of a busy queue claimed a few workflows at a time.
    /// </summary>
    private async Task<List<ClaimedRow>> ClaimInOneStatementAsync(QueueRecord queue, ClaimContext claim, string selectSql, string batchOperationsSql, CancellationToken cancellationToken)
    {
        long budget = claim.MaxBatch;
        if (queue.WorkerConcurrency is { } worker)
        {
            budget = Math.Min(budget, worker - claim.LocalRunning);
        }

        if (budget <= 0)
        {
            return [];
        }

        // selectSql takes $1 queue, $2 version, $3 application, $4 names, $5 limit; the claim adds $6 owner, $7 executor, $8 rate limited.
        var ws = d.Table("workflow_status");
        var sql =
            $"WITH picked AS ({selectSql}), claimed AS (UPDATE {ws} AS ws SET status = 'PENDING', owner_xid = $6, executor_id = $7, application_version = $2, " +
            $"started_at_epoch_ms = {d.NowMs}, rate_limited = $8, application_name = COALESCE(ws.application_name, $3), " +
            $"recovery_attempts = ws.recovery_attempts + 1, updated_at = {d.NowMs}, " +
            "workflow_deadline_epoch_ms = CASE WHEN ws.workflow_timeout_ms IS NOT NULL AND ws.workflow_deadline_epoch_ms IS NULL " +
            $"THEN {d.NowMs} + ws.workflow_timeout_ms ELSE ws.workflow_deadline_epoch_ms END " +
            "FROM picked WHERE ws.workflow_uuid = picked.workflow_uuid AND ws.status = 'ENQUEUED' AND (ws.application_name = $3 OR ws.application_name IS NULL) " +
            "RETURNING ws.workflow_uuid, ws.name, ws.recovery_attempts, ws.workflow_deadline_epoch_ms, ws.serialization, ws.parent_workflow_id, " +
            "ws.queue_partition_key, ws.attributes::text AS attributes, ws.started_at_epoch_ms - ws.created_at AS waited, ws.inputs) " +
            "SELECT c.workflow_uuid, c.name, c.recovery_attempts, c.workflow_deadline_epoch_ms, c.serialization, c.parent_workflow_id, c.queue_partition_key, " +
            $"c.attributes, c.waited, COALESCE(wi.inputs, c.inputs), EXISTS (SELECT 1 FROM {d.Table("operation_outputs")} o WHERE o.workflow_uuid = c.workflow_uuid) " +
            $"FROM claimed c LEFT JOIN {d.Table("workflow_input")} wi ON wi.workflow_uuid = c.workflow_uuid";
        var claimed = await executor.ExecuteQueryAsync(
            sql,
            [queue.Name, claim.ApplicationVersion, applicationName, claim.WorkflowNames, budget, claim.OwnerXid, claim.ExecutorId, queue.HasRateLimit],
            static r => new ClaimedRow(r.GetString(0), r.GetString(1), r.GetInt64(2), NullableLong(r, 3), NullableString(r, 4), NullableString(r, 5), NullableString(r, 9), NullableString(r, 6))
            {
                Attributes = NullableString(r, 7),
                WaitedMs = NullableLong(r, 8),
                HasOperations = r.GetBoolean(10),
            },
            cancellationToken).ConfigureAwait(false);
        var withOperations = claimed.Where(c => c.HasOperations).Select(c => c.WorkflowId).ToArray();
        if (withOperations.Length == 0)
        {
            return claimed;
        }

        var operations = (await executor.QueryAsync(batchOperationsSql, [withOperations], static r => (r.GetString(0), ReadOperation(r, 1)), cancellationToken).ConfigureAwait(false))
            .ToLookup(o => o.Item1, o => o.Item2, StringComparer.Ordinal);
        return claimed.Select(c => c.HasOperations ? c with { Recorded = operations[c.WorkflowId].ToDictionary(o => o.FunctionId) } : c).ToList();
    }

    /// <summary>Records a queue's flow control in the queues table (claiming an unowned row; another application's row is left alone).</summary>
    /// <summary>
    /// Records a queue's flow control. Returns the application that owns the queue when it is another one (a queue name
    /// is shared by every application on the system database), in which case nothing was written; otherwise null.
    /// </summary>
    public async Task<string?> UpsertQueueAsync(QueueRecord queue, long nowEpochMs, CancellationToken cancellationToken)
    {
        var written = await executor.ExecuteAsync(
            $"INSERT INTO {d.Table("queues")} AS q (name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, priority_enabled, partition_queue, " +
            "partition_concurrency, partition_worker_concurrency, partition_rate_limit_max, partition_rate_limit_period_sec, polling_interval_sec, updated_at, application_name) " +
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) " +
            "ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, worker_concurrency = excluded.worker_concurrency, " +
            "rate_limit_max = excluded.rate_limit_max, rate_limit_period_sec = excluded.rate_limit_period_sec, priority_enabled = excluded.priority_enabled, " +
            "partition_queue = excluded.partition_queue, partition_concurrency = excluded.partition_concurrency, " +
            "partition_worker_concurrency = excluded.partition_worker_concurrency, partition_rate_limit_max = excluded.partition_rate_limit_max, " +
            "partition_rate_limit_period_sec = excluded.partition_rate_limit_period_sec, polling_interval_sec = excluded.polling_interval_sec, " +
            "updated_at = excluded.updated_at, application_name = COALESCE(q.application_name, excluded.application_name) " +
            "WHERE q.application_name IS NULL OR q.application_name = excluded.application_name",
            [queue.Name, queue.Concurrency, queue.WorkerConcurrency, queue.RateLimitMax, queue.RateLimitPeriodSec, queue.PriorityEnabled, queue.PartitionQueue,
                queue.PartitionConcurrency, queue.PartitionWorkerConcurrency, queue.PartitionRateLimitMax, queue.PartitionRateLimitPeriodSec, queue.PollingIntervalSec,
                nowEpochMs, applicationName],
            cancellationToken).ConfigureAwait(false);
        if (written > 0)
        {
            return null;
        }

        var owners = await executor.QueryAsync(
            $"SELECT application_name FROM {d.Table("queues")} WHERE name = $1", [queue.Name], static r => r.IsDBNull(0) ? null : r.GetString(0), cancellationToken).ConfigureAwait(false);
        return owners.FirstOrDefault();
    }

    /// <summary>A queue's flow control as the queues table has it now.</summary>
    public async Task<QueueRecord?> GetQueueAsync(string name, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            "SELECT name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, priority_enabled, partition_queue, partition_concurrency, " +
            $"partition_worker_concurrency, partition_rate_limit_max, partition_rate_limit_period_sec, polling_interval_sec FROM {d.Table("queues")} WHERE name = $1",
            [name],
            static r => new QueueRecord
            {
                Name = r.GetString(0),
                Concurrency = NullableInt(r, 1),
                WorkerConcurrency = NullableInt(r, 2),
                RateLimitMax = NullableInt(r, 3),
                RateLimitPeriodSec = r.IsDBNull(4) ? null : r.GetDouble(4),
                PriorityEnabled = r.GetBoolean(5),
                PartitionQueue = r.GetBoolean(6),
                PartitionConcurrency = NullableInt(r, 7),
                PartitionWorkerConcurrency = NullableInt(r, 8),
                PartitionRateLimitMax = NullableInt(r, 9),
                PartitionRateLimitPeriodSec = r.IsDBNull(10) ? null : r.GetDouble(10),
                PollingIntervalSec = r.GetDouble(11),
            },
            cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    private static int? NullableInt(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt32(i);

    /// <summary>Moves this application's delayed workflows of a queue whose delay has passed to ENQUEUED.</summary>
    public Task<int> ReleaseDelayedAsync(string queueName, long nowEpochMs, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'ENQUEUED', updated_at = {d.NowMs}, " +
            "deduplication_id = CASE WHEN is_debounced THEN NULL ELSE deduplication_id END " +
            "WHERE status = 'DELAYED' AND queue_name = $1 AND delay_until_epoch_ms <= $2 AND (application_name = $3 OR application_name IS NULL)",
            [queueName, nowEpochMs, applicationName],
            cancellationToken);

    /// <summary>The partition keys that have enqueued workflows on a queue.</summary>
    public Task<List<string>> ListPartitionsAsync(string queueName, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT DISTINCT queue_partition_key FROM {d.Table("workflow_status")} WHERE queue_name = $1 AND status = 'ENQUEUED' " +
            "AND queue_partition_key IS NOT NULL AND (application_name = $2 OR application_name IS NULL)",
            [queueName, applicationName],
            static r => r.GetString(0),
            cancellationToken);

    /// <summary>Changes the priority of a workflow still waiting on its queue. Returns whether it was waiting.</summary>
    public async Task<bool> SetPriorityAsync(string workflowId, int priority, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync(
            $"UPDATE {d.Table("workflow_status")} SET priority = $2, updated_at = {d.NowMs} WHERE workflow_uuid = $1 AND status IN ('ENQUEUED', 'DELAYED')",
            [workflowId, priority],
            cancellationToken).ConfigureAwait(false) == 1;

    /// <summary>Changes when a delayed workflow may start. Returns whether it was delayed.</summary>
    public async Task<bool> SetDelayAsync(string workflowId, long delayUntilEpochMs, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync(
            $"UPDATE {d.Table("workflow_status")} SET delay_until_epoch_ms = $2, updated_at = {d.NowMs} WHERE workflow_uuid = $1 AND status = 'DELAYED'",
            [workflowId, delayUntilEpochMs],
            cancellationToken).ConfigureAwait(false) == 1;

    /// <summary>Marks a claimed workflow as having used up its recovery attempts.</summary>
    public Task<int> DeadLetterAsync(string workflowId, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', owner_xid = NULL, deduplication_id = NULL, " +
            $"started_at_epoch_ms = NULL, queue_name = NULL, updated_at = {d.NowMs}, completed_at = {d.NowMs} WHERE workflow_uuid = $1 AND status = 'PENDING'",
            [workflowId],
            cancellationToken);

    /// <summary>How many workflows wait on a queue (enqueued or delayed).</summary>
    public async Task<long> CountWaitingAsync(string queueName, CancellationToken cancellationToken) =>
        (await executor.QueryAsync(
            $"SELECT COUNT(*) FROM {d.Table("workflow_status")} WHERE queue_name = $1 AND status IN ('ENQUEUED', 'DELAYED')",
            [queueName],
            static r => r.GetInt64(0),
            cancellationToken).ConfigureAwait(false))[0];

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

    /// <summary>Records this application version (claiming an unowned row of the same name), as other DBOS implementations do at launch.</summary>
    public Task RegisterApplicationVersionAsync(string version, CancellationToken cancellationToken)
    {
        var table = d.Table("application_versions");
        return executor.WriteAsync(
            async (session, ct) =>
            {
                var claimed = await session.ExecuteAsync(
                    $"UPDATE {table} SET application_name = $2 WHERE version_name = $1 AND application_name IS NULL", [version, applicationName], ct).ConfigureAwait(false);
                if (claimed == 0)
                {
                    await session.ExecuteAsync(
                        $"INSERT INTO {table} (version_id, version_name, application_name) VALUES ($3, $1, $2) ON CONFLICT DO NOTHING",
                        [version, applicationName, Guid.NewGuid().ToString()],
                        ct).ConfigureAwait(false);
                }

                return 0;
            },
            cancellationToken);
    }

    /// <summary>Lists workflow status rows matching <paramref name="query"/>.</summary>
    public Task<List<StatusRow>> ListWorkflowsAsync(StatusQuery query, CancellationToken cancellationToken)
    {
        var sql = new StringBuilder("SELECT ").Append(StatusColumns);
        sql.Append(query.LoadInput ? ", COALESCE(wi.inputs, ws.inputs)" : ", NULL");
        sql.Append(query.LoadOutput ? ", COALESCE(wo.output, ws.output), COALESCE(wo.error, ws.error)" : ", NULL, NULL");
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
        if (query.ApplicationVersion is not null)
        {
            Add("ws.application_version = $?", query.ApplicationVersion);
        }

        if (query.ApplicationName is not null)
        {
            Add("(ws.application_name = $? OR ws.application_name IS NULL)", query.ApplicationName);
        }

        if (query.ExecutorId is not null)
        {
            Add("ws.executor_id = $?", query.ExecutorId);
        }

        if (query.ParentWorkflowId is not null)
        {
            Add("ws.parent_workflow_id = $?", query.ParentWorkflowId);
        }

        if (query.AuthenticatedUser is not null)
        {
            Add("ws.authenticated_user = $?", query.AuthenticatedUser);
        }

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

        if (conditions.Count > 0)
        {
            sql.Append(" WHERE ").AppendJoin(" AND ", conditions);
        }

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
    };

    private static string? NullableString(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static long? NullableLong(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    // ---- Schedules ----

    private const string ScheduleColumns =
        "schedule_id, schedule_name, workflow_name, workflow_class_name, schedule, status, context, last_fired_at, automatic_backfill, cron_timezone, queue_name, application_name";

    private static ScheduleRow ReadSchedule(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), NullableString(r, 3), r.GetString(4), r.GetString(5), r.GetString(6),
        NullableString(r, 7), r.GetBoolean(8), NullableString(r, 9), NullableString(r, 10), NullableString(r, 11));

    private static object?[] ScheduleArgs(ScheduleRow s) =>
        [s.ScheduleId, s.ScheduleName, s.WorkflowName, s.WorkflowClassName, s.Schedule, s.Status, s.Context, s.LastFiredAt, s.AutomaticBackfill, s.CronTimezone, s.QueueName, s.ApplicationName];

    /// <summary>
    /// Records a schedule declared in code: a new one is inserted; an existing one of this application (or unowned) gets the
    /// declared definition but keeps its status and last firing, so a restart neither resumes a paused schedule nor forgets
    /// where it was.
    /// </summary>
    public Task ApplyScheduleAsync(ScheduleRow schedule, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(
            $"INSERT INTO {d.Table("workflow_schedules")} AS s ({ScheduleColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) " +
            "ON CONFLICT (schedule_name) DO UPDATE SET workflow_name = excluded.workflow_name, workflow_class_name = excluded.workflow_class_name, " +
            "schedule = excluded.schedule, context = excluded.context, automatic_backfill = excluded.automatic_backfill, cron_timezone = excluded.cron_timezone, " +
            "queue_name = excluded.queue_name, application_name = COALESCE(s.application_name, excluded.application_name) " +
            "WHERE s.application_name IS NULL OR s.application_name = excluded.application_name",
            ScheduleArgs(schedule),
            cancellationToken);

    /// <summary>Creates a schedule; false if one with that name exists.</summary>
    public async Task<bool> CreateScheduleAsync(ScheduleRow schedule, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync(
            $"INSERT INTO {d.Table("workflow_schedules")} ({ScheduleColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            ScheduleArgs(schedule),
            cancellationToken).ConfigureAwait(false) == 1;

    /// <summary>The schedules of <paramref name="owner"/> (and unowned ones), or of every application when null.</summary>
    public Task<List<ScheduleRow>> ListSchedulesAsync(string? owner, CancellationToken cancellationToken) =>
        owner is null
            ? executor.QueryAsync($"SELECT {ScheduleColumns} FROM {d.Table("workflow_schedules")} ORDER BY schedule_name", [], ReadSchedule, cancellationToken)
            : executor.QueryAsync(
                $"SELECT {ScheduleColumns} FROM {d.Table("workflow_schedules")} WHERE application_name = $1 OR application_name IS NULL ORDER BY schedule_name",
                [owner],
                ReadSchedule,
                cancellationToken);

    public async Task<ScheduleRow?> GetScheduleAsync(string name, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync($"SELECT {ScheduleColumns} FROM {d.Table("workflow_schedules")} WHERE schedule_name = $1", [name], ReadSchedule, cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    public async Task<bool> SetScheduleStatusAsync(string name, string status, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync($"UPDATE {d.Table("workflow_schedules")} SET status = $2 WHERE schedule_name = $1", [name, status], cancellationToken).ConfigureAwait(false) == 1;

    public async Task<bool> DeleteScheduleAsync(string name, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync($"DELETE FROM {d.Table("workflow_schedules")} WHERE schedule_name = $1", [name], cancellationToken).ConfigureAwait(false) == 1;

    public Task UpdateLastFiredAtAsync(string name, string lastFiredAt, CancellationToken cancellationToken) =>
        executor.ExecuteAsync($"UPDATE {d.Table("workflow_schedules")} SET last_fired_at = $2 WHERE schedule_name = $1", [name, lastFiredAt], cancellationToken);

    // ---- Application versions ----

    public Task<List<VersionRow>> ListApplicationVersionsAsync(string? owner, CancellationToken cancellationToken)
    {
        var sql = $"SELECT version_id, version_name, version_timestamp, created_at, application_name FROM {d.Table("application_versions")}";
        static VersionRow Read(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), NullableString(r, 4));
        return owner is null
            ? executor.QueryAsync(sql + " ORDER BY version_timestamp DESC", [], Read, cancellationToken)
            : executor.QueryAsync(sql + " WHERE application_name = $1 OR application_name IS NULL ORDER BY version_timestamp DESC", [owner], Read, cancellationToken);
    }

    /// <summary>Makes a version the latest (the one scheduled and unversioned work goes to). Returns whether it exists.</summary>
    public async Task<bool> SetLatestApplicationVersionAsync(string versionName, string? owner, long nowEpochMs, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync(
            $"UPDATE {d.Table("application_versions")} SET version_timestamp = $2 WHERE version_name = $1 AND (application_name = $3 OR application_name IS NULL OR $3 IS NULL)",
            [versionName, nowEpochMs, owner],
            cancellationToken).ConfigureAwait(false) >= 1;

    /// <summary>
    /// Counts this application's unfinished work (enqueued, delayed or pending) recorded for another application version
    /// than <paramref name="currentVersion"/>, by version: work this process will not take.
    /// </summary>
    public Task<List<(string Version, long Count)>> CountWorkOfOtherVersionsAsync(string currentVersion, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT application_version, COUNT(*) FROM {d.Table("workflow_status")} " +
            "WHERE status IN ('ENQUEUED', 'DELAYED', 'PENDING') AND application_version IS NOT NULL AND application_version <> $1 " +
            "AND (application_name = $2 OR application_name IS NULL) GROUP BY application_version ORDER BY application_version",
            [currentVersion, applicationName],
            static r => (r.GetString(0), r.GetInt64(1)),
            cancellationToken);

    /// <summary>
    /// Moves the enqueued and delayed workflows of version <paramref name="fromVersion"/> (of <paramref name="owner"/>,
    /// or of every application when null) to <paramref name="toVersion"/>, in one statement. Pending ones are left alone:
    /// they run somewhere, or become enqueued when their executor's work is taken over. Returns the IDs and queues moved.
    /// </summary>
    public Task<List<(string WorkflowId, string? QueueName)>> MoveWorkflowsToVersionAsync(string fromVersion, string toVersion, string? owner, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            $"UPDATE {d.Table("workflow_status")} SET application_version = $2, updated_at = {d.NowMs} " +
            "WHERE application_version = $1 AND status IN ('ENQUEUED', 'DELAYED') AND (application_name = $3 OR application_name IS NULL OR $3 IS NULL) " +
            "RETURNING workflow_uuid, queue_name",
            [fromVersion, toVersion, owner],
            static r => (r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            cancellationToken);

    // ---- Messages, events and streams ----

    /// <summary>A write refused because the execution no longer owns its workflow: rolls the transaction back.</summary>
    private sealed class NotOwnerException : Exception;

    /// <summary>Records <paramref name="operation"/> in <paramref name="session"/>, or throws <see cref="NotOwnerException"/> to roll back.</summary>
    private async ValueTask RecordInSessionAsync(ISqlSession session, OperationRecord operation, CancellationToken cancellationToken)
    {
        object?[] args =
        [
            operation.WorkflowId, operation.FunctionId, operation.Name, operation.Output, operation.Error, operation.ChildWorkflowId,
            operation.StartedAtEpochMs, operation.CompletedAtEpochMs, operation.Serialization, applicationName, operation.OwnerXid,
        ];
        if (await session.ExecuteAsync(recordOperationSql, args, cancellationToken).ConfigureAwait(false) == 0)
        {
            throw new NotOwnerException();
        }
    }

    /// <summary>Runs <paramref name="work"/> and records <paramref name="operation"/> in one transaction; false if the execution lost its ownership.</summary>
    private async Task<bool> WriteRecordedAsync(OperationRecord operation, Func<ISqlSession, CancellationToken, ValueTask> work, CancellationToken cancellationToken)
    {
        try
        {
            await executor.WriteAsync(
                async (session, ct) =>
                {
                    await RecordInSessionAsync(session, operation, ct).ConfigureAwait(false);
                    await work(session, ct).ConfigureAwait(false);
                    return 0;
                },
                cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (NotOwnerException)
        {
            return false;
        }
    }

    private static bool IsForeignKeyViolation(Exception ex) =>
        ex is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation }
        || ex is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 787 };

    private string InsertMessageSql =>
        $"INSERT INTO {d.Table("notifications")} (destination_uuid, topic, message, serialization, message_uuid) VALUES ($1, $2, $3, $4, $5) " +
        "ON CONFLICT (message_uuid) DO NOTHING";

    /// <summary>Sends a message from outside a workflow. A repeated <paramref name="messageId"/> is delivered once.</summary>
    /// <exception cref="WorkflowNotFoundException">No workflow has the destination ID.</exception>
    public async Task SendAsync(string destinationId, string topic, string message, string serialization, string messageId, CancellationToken cancellationToken)
    {
        try
        {
            await executor.ExecuteAsync(InsertMessageSql, [destinationId, topic, message, serialization, messageId], cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsForeignKeyViolation(ex))
        {
            throw new WorkflowNotFoundException($"Cannot send to workflow '{destinationId}': no workflow has that ID.");
        }

        Notifier.Signal(ChangeKind.Message, ChangeNotifier.Payload(destinationId, topic));
    }

    /// <summary>Sends a message from a workflow, recorded as its operation, in one transaction.</summary>
    public async Task<SendOutcome> SendFromWorkflowAsync(OperationRecord operation, string destinationId, string topic, string message, string serialization, CancellationToken cancellationToken)
    {
        try
        {
            var recorded = await WriteRecordedAsync(
                operation,
                (session, ct) => IgnoreCount(session.ExecuteAsync(InsertMessageSql, [destinationId, topic, message, serialization, Guid.NewGuid().ToString()], ct)),
                cancellationToken).ConfigureAwait(false);
            if (!recorded)
            {
                return SendOutcome.NotOwner;
            }
        }
        catch (Exception ex) when (IsForeignKeyViolation(ex))
        {
            return SendOutcome.NoSuchDestination;
        }

        Notifier.Signal(ChangeKind.Message, ChangeNotifier.Payload(destinationId, topic));
        return SendOutcome.Sent;
    }

    private static async ValueTask IgnoreCount(ValueTask<int> task) => await task.ConfigureAwait(false);

    /// <summary>Whether an unconsumed message waits for <paramref name="destinationId"/> on <paramref name="topic"/>.</summary>
    public async Task<bool> HasMessageAsync(string destinationId, string topic, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            $"SELECT 1 FROM {d.Table("notifications")} WHERE destination_uuid = $1 AND topic = $2 AND consumed = FALSE LIMIT 1",
            [destinationId, topic],
            static _ => true,
            cancellationToken).ConfigureAwait(false);
        return rows.Count > 0;
    }

    /// <summary>
    /// Consumes the oldest unconsumed message for the workflow and topic (if any) and records the receive as
    /// <paramref name="operation"/> with the message as its output, in one transaction, so a message is received exactly once.
    /// Returns null if the execution no longer owns its workflow (nothing is consumed then).
    /// </summary>
    public async Task<(StoredValue? Message, bool Recorded)> ReceiveAsync(OperationRecord operation, string topic, CancellationToken cancellationToken)
    {
        var notifications = d.Table("notifications");
        var consumeSql =
            $"UPDATE {notifications} SET consumed = TRUE, consumed_by_function_id = $3 WHERE message_uuid = (SELECT message_uuid FROM {notifications} " +
            $"WHERE destination_uuid = $1 AND topic = $2 AND consumed = FALSE ORDER BY created_at_epoch_ms, {d.InsertionOrder} LIMIT 1{d.ForUpdateSkipLocked}) " +
            "RETURNING message, serialization";
        StoredValue? message = null;
        try
        {
            await executor.WriteAsync(
                async (session, ct) =>
                {
                    var consumed = await session.QueryAsync(consumeSql, [operation.WorkflowId, topic, operation.FunctionId], static r => new StoredValue(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)), ct).ConfigureAwait(false);
                    message = consumed.Count > 0 ? consumed[0] : null;
                    await RecordInSessionAsync(session, operation with { Output = message?.Text, Serialization = message?.Serialization }, ct).ConfigureAwait(false);
                    return 0;
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (NotOwnerException)
        {
            return (null, false);
        }

        return (message, true);
    }

    /// <summary>Sets an event (the latest value wins; each value is kept in the history) and records it, in one transaction.</summary>
    public async Task<bool> SetEventAsync(OperationRecord operation, string key, string value, string serialization, CancellationToken cancellationToken)
    {
        var recorded = await WriteRecordedAsync(
            operation,
            async (session, ct) =>
            {
                await session.ExecuteAsync(
                    $"INSERT INTO {d.Table("workflow_events")} (workflow_uuid, key, value, serialization) VALUES ($1, $2, $3, $4) " +
                    "ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = excluded.value, serialization = excluded.serialization",
                    [operation.WorkflowId, key, value, serialization],
                    ct).ConfigureAwait(false);
                await session.ExecuteAsync(
                    $"INSERT INTO {d.Table("workflow_events_history")} (workflow_uuid, function_id, key, value, serialization) VALUES ($1, $2, $3, $4, $5) " +
                    "ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = excluded.value, serialization = excluded.serialization",
                    [operation.WorkflowId, operation.FunctionId, key, value, serialization],
                    ct).ConfigureAwait(false);
                await NotifyInSessionAsync(session, "dbos_workflow_events_channel", ChangeNotifier.Payload(operation.WorkflowId, key), ct).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
        if (recorded)
        {
            Notifier.Signal(ChangeKind.Event, ChangeNotifier.Payload(operation.WorkflowId, key));
        }

        return recorded;
    }

    /// <summary>On Postgres, tells other processes (delivered at commit); SQLite has no such channel and they poll.</summary>
    private async ValueTask NotifyInSessionAsync(ISqlSession session, string channel, string payload, CancellationToken cancellationToken)
    {
        if (d.IsPostgres)
        {
            await session.QueryAsync("SELECT pg_notify($1, $2)", [channel, payload], static _ => 0, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The latest value of a workflow's event, if set.</summary>
    public async Task<StoredValue?> GetEventAsync(string workflowId, string key, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            $"SELECT value, serialization FROM {d.Table("workflow_events")} WHERE workflow_uuid = $1 AND key = $2",
            [workflowId, key],
            static r => new StoredValue(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            cancellationToken).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <summary>Appends a value to a workflow's stream (at the next offset) and records it, in one transaction.</summary>
    public async Task<bool> WriteStreamAsync(OperationRecord operation, string key, string value, string serialization, CancellationToken cancellationToken)
    {
        var streams = d.Table("streams");
        var recorded = await WriteRecordedAsync(
            operation,
            async (session, ct) =>
            {
                await session.ExecuteAsync(
                    $"INSERT INTO {streams} (workflow_uuid, key, value, \"offset\", function_id, serialization) " +
                    $"SELECT $1, $2, $3, COALESCE(MAX(\"offset\"), -1) + 1, $4, $5 FROM {streams} WHERE workflow_uuid = $1 AND key = $2",
                    [operation.WorkflowId, key, value, operation.FunctionId, serialization],
                    ct).ConfigureAwait(false);
                await NotifyInSessionAsync(session, "dbos_streams_channel", ChangeNotifier.Payload(operation.WorkflowId, key), ct).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
        if (recorded)
        {
            Notifier.Signal(ChangeKind.Stream, ChangeNotifier.Payload(operation.WorkflowId, key));
        }

        return recorded;
    }

    /// <summary>Up to <paramref name="limit"/> values of a stream, from <paramref name="fromOffset"/> on, in order.</summary>
    public Task<List<(int Offset, StoredValue Value)>> ReadStreamAsync(string workflowId, string key, int fromOffset, int limit, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT \"offset\", value, serialization FROM {d.Table("streams")} WHERE workflow_uuid = $1 AND key = $2 AND \"offset\" >= $3 ORDER BY \"offset\" LIMIT $4",
            [workflowId, key, fromOffset, limit],
            static r => (r.GetInt32(0), new StoredValue(r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2))),
            cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (listener is not null)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await executor.DisposeAsync().ConfigureAwait(false);
    }
}
