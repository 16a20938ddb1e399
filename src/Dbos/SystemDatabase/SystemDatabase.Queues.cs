using System.Data.Common;

namespace Dbos.SystemDatabase;

// Queues: requeueing on recovery, claiming under flow control, and the queues table.
internal sealed partial class SystemDatabase
{
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
            $"SELECT workflow_uuid FROM {ws} WHERE status = 'ENQUEUED' {InFlightIndexHint} AND queue_name = $1 AND " +

            // Like other DBOS implementations, only the latest version of the application takes work enqueued without one.
            $"(application_version = $2 OR (application_version IS NULL AND $2 = (SELECT version_name FROM {d.Table("application_versions")} " +
            "WHERE application_name = $3 OR application_name IS NULL ORDER BY version_timestamp DESC LIMIT 1))) " +
            // Ties of (priority, created_at) go in insertion order. On Postgres that is the order of the in-flight index,
            // which keeps equal keys in heap order, so the scan stops after LIMIT rows; naming ctid here made Postgres sort
            // every row sharing the first key on each claim (a backlog enqueued in one transaction shares created_at).
            $"AND {scope}{partitionFilter} AND {d.InList("name", 5)} ORDER BY priority, created_at{(d.IsPostgres ? "" : ", rowid")} LIMIT $6{lockMode}";
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
            $"{(d.IsPostgres ? "attributes::text" : "attributes")}, started_at_epoch_ms - created_at, authenticated_user, authenticated_roles";
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
                            AuthenticatedUser = NullableString(r, 9),
                            AuthenticatedRoles = NullableString(r, 10),
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
        catch (Exception ex) when (executor.IsContention(ex))
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
            "ws.queue_partition_key, ws.attributes::text AS attributes, ws.started_at_epoch_ms - ws.created_at AS waited, ws.inputs, " +
            "ws.authenticated_user, ws.authenticated_roles) " +
            "SELECT c.workflow_uuid, c.name, c.recovery_attempts, c.workflow_deadline_epoch_ms, c.serialization, c.parent_workflow_id, c.queue_partition_key, " +
            $"c.attributes, c.waited, COALESCE(wi.inputs, c.inputs), EXISTS (SELECT 1 FROM {d.Table("operation_outputs")} o WHERE o.workflow_uuid = c.workflow_uuid), " +
            "c.authenticated_user, c.authenticated_roles " +
            $"FROM claimed c LEFT JOIN {d.Table("workflow_input")} wi ON wi.workflow_uuid = c.workflow_uuid";
        var claimed = await executor.ExecuteQueryAsync(
            sql,
            [queue.Name, claim.ApplicationVersion, applicationName, claim.WorkflowNames, budget, claim.OwnerXid, claim.ExecutorId, queue.HasRateLimit],
            static r => new ClaimedRow(r.GetString(0), r.GetString(1), r.GetInt64(2), NullableLong(r, 3), NullableString(r, 4), NullableString(r, 5), NullableString(r, 9), NullableString(r, 6))
            {
                Attributes = NullableString(r, 7),
                WaitedMs = NullableLong(r, 8),
                HasOperations = r.GetBoolean(10),
                AuthenticatedUser = NullableString(r, 11),
                AuthenticatedRoles = NullableString(r, 12),
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

    /// <summary>
    /// Records a queue's flow control for this application (claiming an unowned row). Returns the application that owns
    /// the queue when it is another one (a queue name is shared by every application on the system database), in which
    /// case nothing was written; otherwise null.
    /// </summary>
    public Task<string?> UpsertQueueAsync(QueueRecord queue, long nowEpochMs, CancellationToken cancellationToken) =>
        UpsertQueueAsync(queue, applicationName, nowEpochMs, cancellationToken);

    /// <summary>
    /// Records a queue's flow control for <paramref name="owner"/>, as <see cref="UpsertQueueAsync(QueueRecord, long, CancellationToken)"/>;
    /// a writer without an application (a client with none) leaves the row's owner as it is and may change any row.
    /// </summary>
    public async Task<string?> UpsertQueueAsync(QueueRecord queue, string? owner, long nowEpochMs, CancellationToken cancellationToken)
    {
        owner = string.IsNullOrEmpty(owner) ? null : owner;
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
            "WHERE q.application_name IS NULL OR excluded.application_name IS NULL OR q.application_name = excluded.application_name",
            [queue.Name, queue.Concurrency, queue.WorkerConcurrency, queue.RateLimitMax, queue.RateLimitPeriodSec, queue.PriorityEnabled, queue.PartitionQueue,
                queue.PartitionConcurrency, queue.PartitionWorkerConcurrency, queue.PartitionRateLimitMax, queue.PartitionRateLimitPeriodSec, queue.PollingIntervalSec,
                nowEpochMs, owner],
            cancellationToken).ConfigureAwait(false);
        if (written > 0)
        {
            return null;
        }

        var owners = await executor.QueryAsync(
            $"SELECT application_name FROM {d.Table("queues")} WHERE name = $1", [queue.Name], static r => r.IsDBNull(0) ? null : r.GetString(0), cancellationToken).ConfigureAwait(false);
        return owners.FirstOrDefault();
    }

    /// <summary>
    /// Changes the flow control of an existing queue row (never creates one). Returns false when there is no row of that
    /// name or it belongs to another application than <paramref name="owner"/> (a writer without one may change any row).
    /// </summary>
    public async Task<bool> UpdateQueueAsync(QueueRecord queue, string? owner, long nowEpochMs, CancellationToken cancellationToken)
    {
        var scope = string.IsNullOrEmpty(owner) ? "" : " AND (application_name IS NULL OR application_name = $14)";
        object?[] args =
        [
            queue.Name, queue.Concurrency, queue.WorkerConcurrency, queue.RateLimitMax, queue.RateLimitPeriodSec, queue.PriorityEnabled, queue.PartitionQueue,
            queue.PartitionConcurrency, queue.PartitionWorkerConcurrency, queue.PartitionRateLimitMax, queue.PartitionRateLimitPeriodSec, queue.PollingIntervalSec, nowEpochMs,
        ];
        return await executor.ExecuteAsync(
            $"UPDATE {d.Table("queues")} SET concurrency = $2, worker_concurrency = $3, rate_limit_max = $4, rate_limit_period_sec = $5, priority_enabled = $6, " +
            "partition_queue = $7, partition_concurrency = $8, partition_worker_concurrency = $9, partition_rate_limit_max = $10, " +
            $"partition_rate_limit_period_sec = $11, polling_interval_sec = $12, updated_at = $13 WHERE name = $1{scope}",
            string.IsNullOrEmpty(owner) ? args : [.. args, owner],
            cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <summary>The application that owns a queue row (null when unowned), or whether there is no row.</summary>
    public async Task<(bool Exists, string? Owner)> GetQueueOwnerAsync(string name, CancellationToken cancellationToken)
    {
        var owners = await executor.QueryAsync(
            $"SELECT application_name FROM {d.Table("queues")} WHERE name = $1", [name], static r => r.IsDBNull(0) ? null : r.GetString(0), cancellationToken).ConfigureAwait(false);
        return owners.Count == 0 ? (false, null) : (true, owners[0]);
    }

    private const string QueueColumns = "name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, priority_enabled, partition_queue, " +
        "partition_concurrency, partition_worker_concurrency, partition_rate_limit_max, partition_rate_limit_period_sec, polling_interval_sec, application_name";

    /// <summary>A queue's flow control as the queues table has it now.</summary>
    public async Task<QueueRecord?> GetQueueAsync(string name, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync($"SELECT {QueueColumns} FROM {d.Table("queues")} WHERE name = $1", [name], ReadQueue, cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0].Queue;
    }

    /// <summary>
    /// The queue rows of an application and the unowned ones, by name (every row when <paramref name="application"/> is
    /// null or empty), with their owners: one statement, however many queues there are.
    /// </summary>
    public Task<List<(QueueRecord Queue, string? Owner)>> ListQueuesAsync(string? application, CancellationToken cancellationToken) =>
        string.IsNullOrEmpty(application)
            ? executor.QueryAsync($"SELECT {QueueColumns} FROM {d.Table("queues")} ORDER BY name", [], ReadQueue, cancellationToken)
            : executor.QueryAsync(
                $"SELECT {QueueColumns} FROM {d.Table("queues")} WHERE application_name = $1 OR application_name IS NULL ORDER BY name", [application], ReadQueue, cancellationToken);

    private static (QueueRecord Queue, string? Owner) ReadQueue(DbDataReader r) => (
        new QueueRecord
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
        }, r.IsDBNull(12) ? null : r.GetString(12));

    private static int? NullableInt(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt32(i);

    /// <summary>Moves this application's delayed workflows of a queue whose delay has passed to ENQUEUED.</summary>
    public Task<int> ReleaseDelayedAsync(string queueName, long nowEpochMs, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'ENQUEUED', updated_at = {d.NowMs}, " +
            "deduplication_id = CASE WHEN is_debounced THEN NULL ELSE deduplication_id END " +
            "WHERE status = 'DELAYED' AND queue_name = $1 AND delay_until_epoch_ms <= $2 AND (application_name = $3 OR application_name IS NULL)",
            [queueName, nowEpochMs, applicationName],
            cancellationToken);

    /// <summary>
    /// One debounce call, in one transaction, as the TypeScript SDK's <c>debounceDelayedWorkflow</c>: push the key's
    /// debounced DELAYED workflow back to <paramref name="delayUntilEpochMs"/> (capped by its debounce deadline), give it
    /// <paramref name="inputs"/>, and claim it for <paramref name="applicationName"/> if unclaimed. When none matched,
    /// report the key's holder, if any.
    /// </summary>
    public Task<BounceResult> DebounceAsync(
        string workflowName, string queueName, string deduplicationId, long delayUntilEpochMs, string inputs, string serialization, string? applicationName, CancellationToken cancellationToken)
    {
        var ws = d.Table("workflow_status");
        return executor.WriteAsync<BounceResult>(
            async (session, ct) =>
            {
                var bounced = await session.QueryAsync(
                    $"UPDATE {ws} SET delay_until_epoch_ms = CASE WHEN debounce_deadline_epoch_ms IS NOT NULL AND debounce_deadline_epoch_ms < $1 " +
                    $"THEN debounce_deadline_epoch_ms ELSE $1 END, serialization = $2, updated_at = {d.NowMs}, application_name = COALESCE(application_name, $6) " +
                    "WHERE name = $3 AND (class_name IS NULL OR class_name = '') AND queue_name = $4 AND deduplication_id = $5 " +
                    "AND status = 'DELAYED' AND is_debounced = TRUE AND ($6 IS NULL OR application_name = $6 OR application_name IS NULL) " +
                    "RETURNING workflow_uuid",
                    [delayUntilEpochMs, serialization, workflowName, queueName, deduplicationId, applicationName],
                    static r => r.GetString(0),
                    ct).ConfigureAwait(false);
                if (bounced.Count > 0)
                {
                    await session.ExecuteAsync(
                        $"INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) VALUES ($1, $2) " +
                        "ON CONFLICT (workflow_uuid) DO UPDATE SET inputs = excluded.inputs",
                        [bounced[0], inputs],
                        ct).ConfigureAwait(false);
                    return new BounceResult(bounced[0], null);
                }

                var holders = await session.QueryAsync(
                    $"SELECT workflow_uuid, is_debounced, name, class_name, application_name FROM {ws} WHERE queue_name = $1 AND deduplication_id = $2",
                    [queueName, deduplicationId],
                    static r => new KeyHolder(r.GetString(0), !r.IsDBNull(1) && r.GetBoolean(1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4)),
                    ct).ConfigureAwait(false);
                return new BounceResult(null, holders.Count > 0 ? holders[0] : null);
            },
            cancellationToken);
    }

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

    /// <summary>
    /// Marks a claimed workflow as having used up its recovery attempts. The status is tested through a CASE, as the
    /// ownership guards test it, so only the primary key can find the row (never the partial index of pending rows).
    /// </summary>
    public Task<int> DeadLetterAsync(string workflowId, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', owner_xid = NULL, deduplication_id = NULL, " +
            $"started_at_epoch_ms = NULL, queue_name = NULL, updated_at = {d.NowMs}, completed_at = {d.NowMs} WHERE workflow_uuid = $1 AND CASE WHEN status = 'PENDING' THEN 1 END = 1",
            [workflowId],
            cancellationToken);

    /// <summary>How many workflows wait on a queue (enqueued or delayed).</summary>
    public async Task<long> CountWaitingAsync(string queueName, CancellationToken cancellationToken) =>
        (await executor.QueryAsync(
            $"SELECT COUNT(*) FROM {d.Table("workflow_status")} WHERE queue_name = $1 AND status IN ('ENQUEUED', 'DELAYED')",
            [queueName],
            static r => r.GetInt64(0),
            cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// The workflow that holds a deduplication ID on a queue, or null if none does (any more), as the TypeScript SDK's
    /// <c>getDeduplicatedWorkflow</c>: the unique index on <c>(queue_name, deduplication_id)</c> admits at most one.
    /// </summary>
    public async Task<string?> GetDeduplicatedWorkflowAsync(string queueName, string deduplicationId, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            $"SELECT workflow_uuid FROM {d.Table("workflow_status")} WHERE queue_name = $1 AND deduplication_id = $2",
            [queueName, deduplicationId],
            static r => r.GetString(0),
            cancellationToken).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <summary>Deletes a queue's row, as the TypeScript SDK's <c>deleteQueue</c>: its workflows are left as they are. Returns whether it existed.</summary>
    public async Task<bool> DeleteQueueAsync(string name, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync($"DELETE FROM {d.Table("queues")} WHERE name = $1", [name], cancellationToken).ConfigureAwait(false) > 0;
}
