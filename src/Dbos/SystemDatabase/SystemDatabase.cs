using System.Data.Common;
using Microsoft.Extensions.Logging;

namespace Dbos.SystemDatabase;

/// <summary>
/// Every statement DBOS runs against the system database, written once for both dialects. Each checkpoint on the
/// hot path is one statement (one round trip on Postgres): a start inserts or reads the status row, a step is one
/// conditional insert, a completion one conditional update.
/// </summary>
internal sealed partial class SystemDatabase : IAsyncDisposable
{
    private const string StatusColumns =
        "ws.workflow_uuid, ws.status, ws.name, ws.queue_name, ws.executor_id, ws.application_version, ws.application_name, " +
        "ws.created_at, ws.updated_at, ws.started_at_epoch_ms, ws.completed_at, ws.recovery_attempts, ws.workflow_timeout_ms, " +
        "ws.workflow_deadline_epoch_ms, ws.parent_workflow_id, ws.forked_from, ws.was_forked_from, ws.deduplication_id, ws.priority, ws.serialization, " +
        "ws.queue_partition_key, ws.delay_until_epoch_ms";

    /// <summary>
    /// The status columns read after <see cref="StatusColumns"/> and the three of input, output and error (which a query
    /// reads or replaces with NULL): <see cref="ReadStatus"/> reads <see cref="StatusFieldCount"/> fields in all.
    /// </summary>
    private string StatusTailColumns => d.IsPostgres
        ? ", ws.authenticated_user, ws.authenticated_roles, ws.attributes::text"
        : ", ws.authenticated_user, ws.authenticated_roles, ws.attributes";

    /// <summary>How many fields <see cref="ReadStatus"/> reads; a query may select more after them.</summary>
    private const int StatusFieldCount = 28;

    private const string OperationColumns =
        "function_id, function_name, output, error, child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization";

    private readonly SqlExecutor executor;
    private readonly SqlDialect d;
    private readonly string applicationName;

    private readonly string insertStatusSql;
    private readonly string insertInputSql;
    private readonly string startSql;
    private readonly string claimIfIdleStartSql;
    private readonly string recordOperationSql;
    private readonly string? recordOperationsSql;
    private readonly GroupCommit<OperationRecord, (string WorkflowId, int FunctionId), int>? operationGroupCommit;
    private readonly string? completeManySql;
    private readonly GroupCommit<CompletionRecord, string, int>? completionGroupCommit;
    private readonly string? startManySql;
    private readonly GroupCommit<NewWorkflowRow, string, StartRow?>? startGroupCommit;
    private readonly string completeStatusSql;
    private readonly string completeOutputSql;
    private readonly string completeSql;
    private readonly string outcomeSql;
    private readonly string operationsSql;
    private readonly string operationSql;

    private readonly PostgresListener? listener;

    /// <summary>
    /// Writes of one kind on Postgres (step records, completions, direct starts) that go out at once, each alone; more
    /// wait and go out together when one ends. Up to this many, concurrent commits cost Postgres little more than one (it
    /// flushes the log for all of them at once), and waiting would only add latency; beyond it, combining saves CPU on
    /// both sides (docs/performance.md, "Group commit, second pass": 2, 4 and 8 measured; 8 kept).
    /// </summary>
    internal static int MaxOperationWritesInFlight { get; set; } = 8;

    public SystemDatabase(SqlExecutor executor, string applicationName, ILogger logger)
    {
        this.executor = executor;
        this.applicationName = applicationName;
        d = executor.Dialect;
        executor.Logger = logger;
        if (executor is PostgresExecutor postgres)
        {
            listener = new PostgresListener(postgres.OpenListenerConnectionAsync, Notifier, logger, executor.Time);
        }

        var ws = d.Table("workflow_status");

        insertStatusSql =
            $"INSERT INTO {ws} AS ws (workflow_uuid, status, name, class_name, config_name, queue_name, authenticated_user, assumed_role, " +
            "authenticated_roles, executor_id, application_version, application_id, recovery_attempts, workflow_timeout_ms, " +
            "workflow_deadline_epoch_ms, parent_workflow_id, serialization, creator_xid, owner_xid, application_name, deduplication_id, priority, " +
            "queue_partition_key, delay_until_epoch_ms, schedule_name, attributes, is_debounced, debounce_deadline_epoch_ms) " +
            "VALUES ($1, $2, $3, NULL, NULL, $4, $23, '', $24, $5, $6, '', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, " +
            (d.IsPostgres ? "CAST($20 AS jsonb), " : "$20, ") + "$21, $22) " +
            "ON CONFLICT (workflow_uuid) DO UPDATE SET creator_xid = ws.creator_xid " +
            "RETURNING status, name, queue_name, creator_xid, serialization";
        insertInputSql =
            $"INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) SELECT $1, $2 " +
            $"WHERE EXISTS (SELECT 1 FROM {ws} WHERE workflow_uuid = $1 AND creator_xid = $3) ON CONFLICT (workflow_uuid) DO NOTHING";

        // Postgres runs both inserts as one statement; the input is written only by the start that created the row.
        startSql =
            $"WITH ins AS ({insertStatusSql}), inp AS (INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) " +
            "SELECT $1, $25 FROM ins WHERE ins.creator_xid = $12 ON CONFLICT (workflow_uuid) DO NOTHING) " +
            "SELECT status, name, queue_name, creator_xid, serialization FROM ins";

        // A start that claims its own enqueue (NewWorkflowRow.ClaimIfIdle; Postgres only): when nothing of this application
        // and version (or of no version) waits on the queue, the row is inserted as the queue's claim leaves it (PENDING,
        // owned, started now, one attempt counted, the deadline set); otherwise it is the usual ENQUEUED row, behind the
        // work already waiting. One probe of the in-flight index decides.
        var idleCte =
            $"queue_idle AS (SELECT NOT EXISTS (SELECT 1 FROM {ws} WHERE queue_name = $4 AND status = 'ENQUEUED' " +
            "AND (application_name = $14 OR application_name IS NULL) AND (application_version = $6 OR application_version IS NULL)) AS idle)";
        var claimedStatusInsert =
            $"INSERT INTO {ws} AS ws (workflow_uuid, status, name, class_name, config_name, queue_name, authenticated_user, assumed_role, " +
            "authenticated_roles, executor_id, application_version, application_id, recovery_attempts, workflow_timeout_ms, " +
            "workflow_deadline_epoch_ms, parent_workflow_id, serialization, creator_xid, owner_xid, application_name, deduplication_id, priority, " +
            "queue_partition_key, delay_until_epoch_ms, schedule_name, attributes, is_debounced, debounce_deadline_epoch_ms, started_at_epoch_ms) " +
            "VALUES ($1, CASE WHEN (SELECT idle FROM queue_idle) THEN 'PENDING' ELSE $2 END, $3, NULL, NULL, $4, $23, '', $24, $5, $6, '', " +
            "CASE WHEN (SELECT idle FROM queue_idle) THEN $7 + 1 ELSE $7 END, $8, CASE WHEN (SELECT idle FROM queue_idle) THEN CAST($9 AS bigint) END, " +
            "$10, $11, $12, CASE WHEN (SELECT idle FROM queue_idle) THEN $13 END, $14, $15, $16, $17, $18, $19, " +
            $"CAST($20 AS jsonb), $21, $22, CASE WHEN (SELECT idle FROM queue_idle) THEN {d.NowMs} END) " +
            "ON CONFLICT (workflow_uuid) DO UPDATE SET creator_xid = ws.creator_xid " +
            "RETURNING status, name, queue_name, creator_xid, serialization";
        claimIfIdleStartSql =
            $"WITH {idleCte}, ins AS ({claimedStatusInsert}), inp AS (INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) " +
            "SELECT $1, $25 FROM ins WHERE ins.creator_xid = $12 ON CONFLICT (workflow_uuid) DO NOTHING) " +
            "SELECT status, name, queue_name, creator_xid, serialization FROM ins";

        // The ownership guard of every write of an execution reads "the owner of the row if it is pending" as
        // CASE WHEN status = 'PENDING' THEN owner_xid END, never as status = 'PENDING' AND owner_xid = …: with the status
        // in the WHERE clause, Postgres may read the row through the partial index of PENDING rows
        // (idx_workflow_status_pending), whose statistics say it is small, and then scans every entry in it, including
        // the dead ones each completion leaves, on every checkpoint. Through the CASE only the primary key can find the row.
        recordOperationSql =
            $"INSERT INTO {d.Table("operation_outputs")} (workflow_uuid, function_id, function_name, output, error, child_workflow_id, " +
            "started_at_epoch_ms, completed_at_epoch_ms, serialization, application_name) " +
            "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 " +
            $"WHERE (SELECT CASE WHEN status = 'PENDING' THEN owner_xid END FROM {ws} WHERE workflow_uuid = $1) = $11 " +
            "ON CONFLICT (workflow_uuid, function_id) DO NOTHING";

        if (d.IsPostgres)
        {
            // Group commit: many records in one statement that no single record can make fail: a record already written or
            // not owned is skipped, as the one-record statement skips it (operation_outputs has no foreign key to fail).
            recordOperationsSql =
                "WITH v AS (SELECT * FROM unnest(CAST($1 AS text[]), CAST($2 AS integer[]), CAST($3 AS text[]), CAST($4 AS text[]), CAST($5 AS text[]), " +
                "CAST($6 AS text[]), CAST($7 AS bigint[]), CAST($8 AS bigint[]), CAST($9 AS text[]), CAST($10 AS text[])) " +
                "AS v(workflow_uuid, function_id, function_name, output, error, child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization, owner_xid)) " +
                $"INSERT INTO {d.Table("operation_outputs")} (workflow_uuid, function_id, function_name, output, error, child_workflow_id, " +
                "started_at_epoch_ms, completed_at_epoch_ms, serialization, application_name) " +
                "SELECT v.workflow_uuid, v.function_id, v.function_name, v.output, v.error, v.child_workflow_id, v.started_at_epoch_ms, " +
                "v.completed_at_epoch_ms, v.serialization, $11 FROM v " +
                $"WHERE (SELECT CASE WHEN ws.status = 'PENDING' THEN ws.owner_xid END FROM {ws} ws WHERE ws.workflow_uuid = v.workflow_uuid) = v.owner_xid " +
                "ON CONFLICT (workflow_uuid, function_id) DO NOTHING RETURNING workflow_uuid, function_id";
            operationGroupCommit = new(RecordOneOperationAsync, RecordOperationsAsync, static r => (r.WorkflowId, r.FunctionId), 0, MaxOperationWritesInFlight);

            // Group commit of completions: each status row is updated only while its execution owns it, and only the rows
            // updated get their output.
            completeManySql =
                "WITH v AS (SELECT * FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[]), CAST($4 AS text[]), CAST($5 AS text[])) " +
                "AS v(workflow_uuid, status, owner_xid, output, error)), " +
                $"upd AS (UPDATE {ws} ws SET status = v.status, updated_at = {d.NowMs}, completed_at = {d.NowMs}, deduplication_id = NULL, owner_xid = NULL " +
                "FROM v WHERE ws.workflow_uuid = v.workflow_uuid AND CASE WHEN ws.status = 'PENDING' THEN ws.owner_xid END = v.owner_xid " +
                "RETURNING ws.workflow_uuid), " +
                $"out AS (INSERT INTO {d.Table("workflow_output")} (workflow_uuid, output, error) SELECT v.workflow_uuid, v.output, v.error FROM v " +
                "JOIN upd ON upd.workflow_uuid = v.workflow_uuid ON CONFLICT (workflow_uuid) DO UPDATE SET output = excluded.output, error = excluded.error) " +
                "SELECT workflow_uuid FROM upd";
            completionGroupCommit = new(CompleteOneAsync, CompleteManyAsync, static r => r.WorkflowId, 0, MaxOperationWritesInFlight);

            // Group commit of direct starts (owned, PENDING, on no queue: see IsPlainDirectStart), as startSql does for one:
            // a row that exists already is returned as it is, and the input is written only with the row it created.
            startManySql =
                "WITH v AS (SELECT * FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[]), CAST($4 AS text[]), CAST($5 AS text[]), " +
                "CAST($6 AS text[]), CAST($7 AS text[]), CAST($8 AS bigint[]), CAST($9 AS bigint[]), CAST($10 AS bigint[]), CAST($11 AS text[]), " +
                "CAST($12 AS text[]), CAST($13 AS text[]), CAST($14 AS text[]), CAST($15 AS text[]), CAST($16 AS integer[]), CAST($17 AS text[]), " +
                "CAST($18 AS text[])) AS v(workflow_uuid, status, name, authenticated_user, authenticated_roles, executor_id, application_version, " +
                "recovery_attempts, workflow_timeout_ms, workflow_deadline_epoch_ms, parent_workflow_id, serialization, creator_xid, owner_xid, " +
                "application_name, priority, attributes, inputs)), " +
                $"ins AS (INSERT INTO {ws} AS ws (workflow_uuid, status, name, class_name, config_name, queue_name, authenticated_user, assumed_role, " +
                "authenticated_roles, executor_id, application_version, application_id, recovery_attempts, workflow_timeout_ms, " +
                "workflow_deadline_epoch_ms, parent_workflow_id, serialization, creator_xid, owner_xid, application_name, deduplication_id, priority, " +
                "queue_partition_key, delay_until_epoch_ms, schedule_name, attributes, is_debounced, debounce_deadline_epoch_ms) " +
                "SELECT v.workflow_uuid, v.status, v.name, NULL, NULL, NULL, v.authenticated_user, '', v.authenticated_roles, v.executor_id, " +
                "v.application_version, '', v.recovery_attempts, v.workflow_timeout_ms, v.workflow_deadline_epoch_ms, v.parent_workflow_id, " +
                "v.serialization, v.creator_xid, v.owner_xid, v.application_name, NULL, v.priority, NULL, NULL, NULL, CAST(v.attributes AS jsonb), false, NULL FROM v " +
                "ON CONFLICT (workflow_uuid) DO UPDATE SET creator_xid = ws.creator_xid " +
                "RETURNING ws.workflow_uuid, ws.status, ws.name, ws.queue_name, ws.creator_xid, ws.serialization), " +
                $"inp AS (INSERT INTO {d.Table("workflow_input")} (workflow_uuid, inputs) SELECT v.workflow_uuid, v.inputs FROM v " +
                "JOIN ins ON ins.workflow_uuid = v.workflow_uuid AND ins.creator_xid = v.creator_xid ON CONFLICT (workflow_uuid) DO NOTHING) " +
                "SELECT workflow_uuid, status, name, queue_name, creator_xid, serialization FROM ins";
            startGroupCommit = new(StartOneAsync, StartManyAsync, static r => r.WorkflowId, null, MaxOperationWritesInFlight);
        }

        completeStatusSql =
            $"UPDATE {ws} SET status = $2, updated_at = {d.NowMs}, completed_at = {d.NowMs}, deduplication_id = NULL, owner_xid = NULL " +
            "WHERE workflow_uuid = $1 AND CASE WHEN status = 'PENDING' THEN owner_xid END = $3 RETURNING workflow_uuid";
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

    /// <summary>
    /// The in-flight index's own condition, repeated for SQLite next to <c>status = 'ENQUEUED'</c> in the claim: SQLite uses
    /// a partial index only when the query names its condition, and without it scans every workflow (Postgres proves it alone).
    /// </summary>
    private string InFlightIndexHint => d.IsPostgres ? "" : "AND status IN ('ENQUEUED', 'PENDING')";

    /// <summary>Operation records written together with others by group commit (Postgres; 0 on SQLite, whose writer combines them).</summary>
    internal long CombinedOperationRecords => operationGroupCommit?.CombinedRecords ?? 0;

    /// <summary>Completions written together with others by group commit (Postgres; 0 on SQLite).</summary>
    internal long CombinedCompletions => completionGroupCommit?.CombinedRecords ?? 0;

    /// <summary>Direct starts written together with others by group commit (Postgres; 0 on SQLite).</summary>
    internal long CombinedStarts => startGroupCommit?.CombinedRecords ?? 0;

    /// <summary>
    /// Changes <see cref="MaxOperationWritesInFlight"/> for this database, for step records, completions and starts alike
    /// (the benchmark's A/B comparison); no effect on SQLite.
    /// </summary>
    internal void SetOperationWritesInFlight(int value)
    {
        if (operationGroupCommit is { } group)
        {
            group.MaxInFlight = value;
        }

        if (completionGroupCommit is { } completions)
        {
            completions.MaxInFlight = value;
        }

        if (startGroupCommit is { } starts)
        {
            starts.MaxInFlight = value;
        }
    }

    public SqlExecutor Executor => executor;

    public string Description => executor.Description;

    /// <summary>Signals waiters when messages, events and stream values may have been written.</summary>
    public ChangeNotifier Notifier { get; } = new();

    public Task MigrateAsync(CancellationToken cancellationToken) => executor.MigrateAsync(cancellationToken);

    /// <summary>Checks the schema is current without changing anything (<see cref="DbosConfig.RunMigrations"/> false).</summary>
    public Task VerifySchemaAsync(CancellationToken cancellationToken) => executor.VerifySchemaAsync(cancellationToken);

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

    /// <summary>
    /// Starts listening for changes made by other processes (Postgres); on SQLite other processes are polled. The returned
    /// task is <see cref="ListenerFirstAttempt"/>: nobody needs to wait for it, since waiters poll until the listener listens.
    /// </summary>
    public Task StartListeningAsync() => listener?.StartAsync() ?? Task.CompletedTask;

    /// <summary>Completes once the listener's first connection listens or has failed once (at once without a listener).</summary>
    public Task ListenerFirstAttempt => listener?.FirstAttempt ?? Task.CompletedTask;

    private static string? NullableString(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static long? NullableLong(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    public async ValueTask DisposeAsync()
    {
        if (listener is not null)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await executor.DisposeAsync().ConfigureAwait(false);
    }
}
