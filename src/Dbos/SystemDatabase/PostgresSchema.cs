namespace Dbos.SystemDatabase;

/// <summary>One forward-only schema migration.</summary>
/// <param name="Name">A label for logs.</param>
/// <param name="Statements">The DDL, run in order.</param>
/// <param name="Online">Whether it builds or drops indexes CONCURRENTLY, and so must run outside a transaction.</param>
internal sealed record Migration(string Name, string[] Statements, bool Online = false);

/// <summary>
/// The shared DBOS system database schema on Postgres, as <c>@dbos-inc/dbos-sdk</c> 5.3.0 leaves it (version 123).
/// </summary>
/// <remarks>
/// Versions are positions in one list shared by every DBOS implementation from <see cref="SharedBase"/> on;
/// below it each implementation has its own history. This one has a single baseline at version 99 that builds the
/// schema as every implementation has it at that point, then applies the shared migrations 100 onward, exactly as
/// the others define them. A database at a version between 1 and 98 was made by an older release of another
/// implementation and is refused rather than guessed at.
/// </remarks>
internal static class PostgresSchema
{
    public const int SharedBase = 100;

    public const int BaselineVersion = SharedBase - 1;

    private const string NowMsDefault = "(EXTRACT(EPOCH FROM now()) * 1000.0)::bigint";

    /// <summary>The version this library brings a database to.</summary>
    public static int LatestVersion => BaselineVersion + Shared("dbos").Count;

    /// <summary>The migrations to reach <see cref="LatestVersion"/>, keyed by the version each one records.</summary>
    public static IReadOnlyList<(int Version, Migration Migration)> Migrations(string schema)
    {
        var list = new List<(int, Migration)> { (BaselineVersion, Baseline(Quote(schema))) };
        var shared = Shared(schema);
        for (var i = 0; i < shared.Count; i++)
        {
            list.Add((SharedBase + i, shared[i]));
        }

        return list;
    }

    /// <summary>
    /// Every migration, as statements for one transaction that takes an empty schema straight to
    /// <see cref="LatestVersion"/>. The online ones build and drop their indexes without CONCURRENTLY, which a
    /// transaction does not allow and tables just created do not need; the indexes are the same.
    /// </summary>
    public static IEnumerable<string> FreshInstall(string schema) =>
        Migrations(schema).SelectMany(m => m.Migration.Online
            ? m.Migration.Statements.Select(statement => statement.Replace("INDEX CONCURRENTLY", "INDEX", StringComparison.Ordinal))
            : m.Migration.Statements);

    internal static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static Migration Baseline(string s) => new(
        "099_baseline",
        [
            $"CREATE SCHEMA IF NOT EXISTS {s}",
            $"""CREATE TABLE {s}."dbos_migrations" ("version" bigint NOT NULL, CONSTRAINT "dbos_migrations_pkey" PRIMARY KEY ("version"))""",
            $"""
            CREATE TABLE {s}."workflow_status" (
                "workflow_uuid" text NOT NULL,
                "status" text,
                "name" text,
                "authenticated_user" text,
                "assumed_role" text,
                "authenticated_roles" text,
                "request" text,
                "output" text,
                "error" text,
                "executor_id" text,
                "created_at" bigint NOT NULL DEFAULT {NowMsDefault},
                "updated_at" bigint NOT NULL DEFAULT {NowMsDefault},
                "application_version" text,
                "application_id" text,
                "class_name" varchar(255) DEFAULT NULL,
                "config_name" varchar(255) DEFAULT NULL,
                "recovery_attempts" bigint DEFAULT 0,
                "queue_name" text,
                "workflow_timeout_ms" bigint,
                "workflow_deadline_epoch_ms" bigint,
                "inputs" text,
                "started_at_epoch_ms" bigint,
                "deduplication_id" text,
                "priority" int4 NOT NULL DEFAULT 0,
                "queue_partition_key" text,
                "forked_from" text,
                "owner_xid" text DEFAULT NULL,
                "parent_workflow_id" text DEFAULT NULL,
                "serialization" text DEFAULT NULL,
                "delay_until_epoch_ms" bigint DEFAULT NULL,
                "was_forked_from" boolean NOT NULL DEFAULT FALSE,
                "rate_limited" boolean NOT NULL DEFAULT FALSE,
                "completed_at" bigint,
                "attributes" jsonb,
                "schedule_name" text,
                "debounce_deadline_epoch_ms" bigint DEFAULT NULL,
                "is_debounced" boolean NOT NULL DEFAULT FALSE,
                CONSTRAINT "workflow_status_pkey" PRIMARY KEY ("workflow_uuid")
            )
            """,
            $"""CREATE INDEX "workflow_status_created_at_index" ON {s}."workflow_status" ("created_at")""",
            $"""CREATE INDEX "idx_workflow_status_delayed" ON {s}."workflow_status" ("delay_until_epoch_ms") WHERE status = 'DELAYED'""",
            $"""CREATE INDEX "idx_workflow_status_forked_from" ON {s}."workflow_status" ("forked_from") WHERE "forked_from" IS NOT NULL""",
            $"""CREATE INDEX "idx_workflow_status_parent_workflow_id" ON {s}."workflow_status" ("parent_workflow_id") WHERE "parent_workflow_id" IS NOT NULL""",
            $"""CREATE UNIQUE INDEX "uq_workflow_status_dedup_id" ON {s}."workflow_status" ("queue_name", "deduplication_id") WHERE "deduplication_id" IS NOT NULL""",
            $"""CREATE INDEX "idx_workflow_status_pending" ON {s}."workflow_status" ("created_at") WHERE "status" = 'PENDING'""",
            $"""CREATE INDEX "idx_workflow_status_failed" ON {s}."workflow_status" ("status", "created_at") WHERE "status" IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')""",
            $"""CREATE INDEX "idx_workflow_status_in_flight" ON {s}."workflow_status" ("queue_name", "status", "priority", "created_at") WHERE "status" IN ('ENQUEUED', 'PENDING')""",
            $"""CREATE INDEX "idx_workflow_status_rate_limited" ON {s}."workflow_status" ("queue_name", "started_at_epoch_ms") WHERE "rate_limited" = TRUE""",
            $"""CREATE INDEX "idx_workflow_status_completed_at" ON {s}."workflow_status" ("completed_at") WHERE "completed_at" IS NOT NULL""",
            $"""CREATE INDEX "idx_workflow_status_started_at" ON {s}."workflow_status" ("started_at_epoch_ms") WHERE "started_at_epoch_ms" IS NOT NULL""",
            $"""CREATE INDEX "idx_workflow_status_attributes" ON {s}."workflow_status" USING GIN ("attributes") WHERE "attributes" IS NOT NULL""",
            $"""CREATE INDEX "idx_workflow_status_schedule_name" ON {s}."workflow_status" ("schedule_name") WHERE "schedule_name" IS NOT NULL""",
            $"""CREATE INDEX "idx_workflow_status_partition_dequeue_v2" ON {s}."workflow_status" ("queue_name", "status", "queue_partition_key", "priority", "created_at", "workflow_uuid") WHERE "status" IN ('ENQUEUED', 'PENDING') AND "queue_partition_key" IS NOT NULL""",
            $"""
            CREATE TABLE {s}."operation_outputs" (
                "workflow_uuid" text NOT NULL,
                "function_id" int4 NOT NULL,
                "function_name" text NOT NULL DEFAULT '',
                "output" text,
                "error" text,
                "child_workflow_id" text,
                "started_at_epoch_ms" bigint,
                "completed_at_epoch_ms" bigint,
                "serialization" text DEFAULT NULL,
                CONSTRAINT "operation_outputs_pkey" PRIMARY KEY ("workflow_uuid", "function_id"),
                CONSTRAINT "operation_outputs_workflow_uuid_foreign" FOREIGN KEY ("workflow_uuid") REFERENCES {s}."workflow_status" ("workflow_uuid") ON UPDATE CASCADE ON DELETE CASCADE
            )
            """,
            $"""CREATE INDEX "idx_operation_outputs_completed_at_function_name" ON {s}."operation_outputs" ("completed_at_epoch_ms", "function_name")""",
            $"""
            CREATE TABLE {s}."notifications" (
                "message_uuid" text NOT NULL DEFAULT gen_random_uuid(),
                "destination_uuid" text NOT NULL,
                "topic" text,
                "message" text NOT NULL,
                "created_at_epoch_ms" bigint NOT NULL DEFAULT {NowMsDefault},
                "serialization" text DEFAULT NULL,
                "consumed" boolean NOT NULL DEFAULT false,
                CONSTRAINT "notifications_pkey" PRIMARY KEY ("message_uuid"),
                CONSTRAINT "notifications_destination_uuid_fkey" FOREIGN KEY ("destination_uuid") REFERENCES {s}."workflow_status" ("workflow_uuid") ON UPDATE CASCADE ON DELETE CASCADE
            )
            """,
            $"""CREATE INDEX "idx_workflow_topic" ON {s}."notifications" ("destination_uuid", "topic")""",
            $"""CREATE INDEX "idx_notifications" ON {s}."notifications" ("destination_uuid", "topic")""",
            $"""
            CREATE OR REPLACE FUNCTION {s}.notifications_function() RETURNS TRIGGER AS $$
                DECLARE
                    payload text := NEW.destination_uuid || '::' || NEW.topic;
                BEGIN
                    PERFORM pg_notify('dbos_notifications_channel', payload);
                    RETURN NEW;
                END;
                $$ LANGUAGE plpgsql
            """,
            $"ALTER FUNCTION {s}.notifications_function() SET search_path = pg_catalog, pg_temp",
            $"CREATE TRIGGER dbos_notifications_trigger AFTER INSERT ON {s}.notifications FOR EACH ROW EXECUTE FUNCTION {s}.notifications_function()",
            $"""
            CREATE TABLE {s}."workflow_events" (
                "workflow_uuid" text NOT NULL,
                "key" text NOT NULL,
                "value" text NOT NULL,
                "serialization" text DEFAULT NULL,
                CONSTRAINT "workflow_events_pkey" PRIMARY KEY ("workflow_uuid", "key"),
                CONSTRAINT "workflow_events_workflow_uuid_fkey" FOREIGN KEY ("workflow_uuid") REFERENCES {s}."workflow_status" ("workflow_uuid") ON UPDATE CASCADE ON DELETE CASCADE
            )
            """,
            $"""
            CREATE TABLE {s}."workflow_events_history" (
                "workflow_uuid" text NOT NULL,
                "function_id" int4 NOT NULL,
                "key" text NOT NULL,
                "value" text NOT NULL,
                "serialization" text DEFAULT NULL,
                PRIMARY KEY ("workflow_uuid", "function_id", "key"),
                FOREIGN KEY ("workflow_uuid") REFERENCES {s}."workflow_status" ("workflow_uuid") ON UPDATE CASCADE ON DELETE CASCADE
            )
            """,
            $"""
            CREATE TABLE {s}."streams" (
                "workflow_uuid" text NOT NULL,
                "key" text NOT NULL,
                "value" text NOT NULL,
                "offset" int4 NOT NULL,
                "function_id" int4 NOT NULL DEFAULT 0,
                "serialization" text DEFAULT NULL,
                CONSTRAINT "streams_pkey" PRIMARY KEY ("workflow_uuid", "key", "offset"),
                CONSTRAINT "streams_workflow_uuid_fkey" FOREIGN KEY ("workflow_uuid") REFERENCES {s}."workflow_status" ("workflow_uuid") ON UPDATE CASCADE ON DELETE CASCADE
            )
            """,
            $"""
            CREATE TABLE {s}."event_dispatch_kv" (
                "service_name" text NOT NULL,
                "workflow_fn_name" text NOT NULL,
                "key" text NOT NULL,
                "value" text,
                "update_seq" decimal(38, 0),
                "update_time" decimal(38, 15),
                CONSTRAINT "event_dispatch_kv_pkey" PRIMARY KEY ("service_name", "workflow_fn_name", "key")
            )
            """,
            $"""
            CREATE TABLE {s}."workflow_schedules" (
                "schedule_id" TEXT PRIMARY KEY,
                "schedule_name" TEXT NOT NULL UNIQUE,
                "workflow_name" TEXT NOT NULL,
                "workflow_class_name" TEXT,
                "schedule" TEXT NOT NULL,
                "status" TEXT NOT NULL DEFAULT 'ACTIVE',
                "context" TEXT NOT NULL,
                "last_fired_at" TEXT DEFAULT NULL,
                "automatic_backfill" BOOLEAN NOT NULL DEFAULT FALSE,
                "cron_timezone" TEXT DEFAULT NULL,
                "queue_name" TEXT DEFAULT NULL
            )
            """,
            $"""
            CREATE TABLE {s}."application_versions" (
                "version_id" TEXT NOT NULL,
                "version_name" TEXT NOT NULL UNIQUE,
                "version_timestamp" BIGINT NOT NULL DEFAULT {NowMsDefault},
                "created_at" BIGINT NOT NULL DEFAULT {NowMsDefault},
                CONSTRAINT "application_versions_pkey" PRIMARY KEY ("version_id")
            )
            """,
            $"""
            CREATE TABLE {s}."queues" (
                "queue_id" TEXT PRIMARY KEY DEFAULT gen_random_uuid()::TEXT,
                "name" TEXT NOT NULL UNIQUE,
                "concurrency" INT4,
                "worker_concurrency" INT4,
                "rate_limit_max" INT4,
                "rate_limit_period_sec" DOUBLE PRECISION,
                "priority_enabled" BOOLEAN NOT NULL DEFAULT FALSE,
                "partition_queue" BOOLEAN NOT NULL DEFAULT FALSE,
                "polling_interval_sec" DOUBLE PRECISION NOT NULL DEFAULT 1.0,
                "created_at" BIGINT NOT NULL DEFAULT {NowMsDefault},
                "updated_at" BIGINT NOT NULL DEFAULT {NowMsDefault}
            )
            """,
            $"""
            CREATE FUNCTION {s}.send_message(
                destination_id TEXT,
                message JSON,
                topic TEXT DEFAULT NULL,
                message_id TEXT DEFAULT NULL
            ) RETURNS VOID AS $$
                DECLARE
                    v_topic TEXT := COALESCE(topic, '__null__topic__');
                    v_message_id TEXT := COALESCE(message_id, gen_random_uuid()::TEXT);
                BEGIN
                    INSERT INTO {s}.notifications (
                        destination_uuid, topic, message, message_uuid, serialization
                    ) VALUES (
                        destination_id, v_topic, message, v_message_id, 'portable_json'
                    )
                    ON CONFLICT (message_uuid) DO NOTHING;
                EXCEPTION
                    WHEN foreign_key_violation THEN
                        RAISE EXCEPTION 'DBOS non-existent workflow'
                           USING DETAIL = format('Destination workflow %s does not exist', destination_id),
                                ERRCODE = 'foreign_key_violation';
                END;
                $$ LANGUAGE plpgsql
            """,
            $"ALTER FUNCTION {s}.send_message(TEXT, JSON, TEXT, TEXT) SET search_path = pg_catalog, pg_temp",
        ]);

    /// <summary>The shared migrations, from version <see cref="SharedBase"/> on, in order.</summary>
    private static List<Migration> Shared(string schema)
    {
        var s = Quote(schema);
        var enqueueArgs = "TEXT, TEXT, JSON[], JSON, TEXT, TEXT, TEXT, TEXT, BIGINT, BIGINT, TEXT, INT4, TEXT, TEXT, TEXT, BIGINT";
        return
        [
            new("100_workflow_status_application_name", [$"""ALTER TABLE {s}."workflow_status" ADD COLUMN IF NOT EXISTS "application_name" TEXT DEFAULT NULL"""]),
            new("101_queues_application_name", [$"""ALTER TABLE {s}."queues" ADD COLUMN IF NOT EXISTS "application_name" TEXT DEFAULT NULL"""]),
            new("102_workflow_schedules_application_name", [$"""ALTER TABLE {s}."workflow_schedules" ADD COLUMN IF NOT EXISTS "application_name" TEXT DEFAULT NULL"""]),
            new("103_application_versions_application_name", [$"""ALTER TABLE {s}."application_versions" ADD COLUMN IF NOT EXISTS "application_name" TEXT DEFAULT NULL"""]),
            new("104_operation_outputs_application_name", [$"""ALTER TABLE {s}."operation_outputs" ADD COLUMN IF NOT EXISTS "application_name" TEXT DEFAULT NULL"""]),
            new("105_enqueue_workflow_application_name",
            [
                $"DROP FUNCTION IF EXISTS {s}.enqueue_workflow({enqueueArgs})",
                EnqueueWorkflowFunction(s, splitInput: false),
                $"ALTER FUNCTION {s}.enqueue_workflow({enqueueArgs}, TEXT) SET search_path = pg_catalog, pg_temp",
            ]),
            new("106_application_versions_owner_key",
            [
                $"""CREATE UNIQUE INDEX IF NOT EXISTS "uq_application_versions_owner_version" ON {s}."application_versions" ("application_name", "version_name") WHERE "application_name" IS NOT NULL""",
            ]),
            new("107_application_versions_unclaimed_key",
            [
                $"""CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "uq_application_versions_unclaimed_version" ON {s}."application_versions" ("version_name") WHERE "application_name" IS NULL""",
            ], Online: true),
            new("108_queue_partition_limits",
            [
                $"""ALTER TABLE {s}."queues" ADD COLUMN IF NOT EXISTS "partition_concurrency" INT4 DEFAULT NULL""",
                $"""ALTER TABLE {s}."queues" ADD COLUMN IF NOT EXISTS "partition_worker_concurrency" INT4 DEFAULT NULL""",
                $"""ALTER TABLE {s}."queues" ADD COLUMN IF NOT EXISTS "partition_rate_limit_max" INT4 DEFAULT NULL""",
                $"""ALTER TABLE {s}."queues" ADD COLUMN IF NOT EXISTS "partition_rate_limit_period_sec" DOUBLE PRECISION DEFAULT NULL""",
            ]),
            new("109_workflow_payload_tables",
            [
                $"""
                CREATE TABLE IF NOT EXISTS {s}."workflow_input" (
                    workflow_uuid TEXT NOT NULL PRIMARY KEY,
                    inputs TEXT,
                    retention_timestamp BIGINT NOT NULL DEFAULT {NowMsDefault}
                )
                """,
                $"""
                CREATE TABLE IF NOT EXISTS {s}."workflow_output" (
                    workflow_uuid TEXT NOT NULL PRIMARY KEY,
                    output TEXT,
                    error TEXT,
                    retention_timestamp BIGINT NOT NULL DEFAULT {NowMsDefault}
                )
                """,
                $"""CREATE INDEX IF NOT EXISTS "idx_workflow_input_retention" ON {s}."workflow_input" ("retention_timestamp")""",
                $"""CREATE INDEX IF NOT EXISTS "idx_workflow_output_retention" ON {s}."workflow_output" ("retention_timestamp")""",
            ]),
            new("110_operation_outputs_retention_timestamp",
            [
                $"""ALTER TABLE {s}."operation_outputs" ADD COLUMN IF NOT EXISTS "retention_timestamp" BIGINT NOT NULL DEFAULT {NowMsDefault}""",
            ]),
            new("111_operation_outputs_retention_index",
            [
                $"""CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_operation_outputs_retention" ON {s}."operation_outputs" ("retention_timestamp")""",
            ], Online: true),
            new("112_drop_operation_outputs_foreign_key",
            [
                $"""ALTER TABLE {s}."operation_outputs" DROP CONSTRAINT IF EXISTS "operation_outputs_workflow_uuid_foreign" """,
                $"""ALTER TABLE {s}."operation_outputs" DROP CONSTRAINT IF EXISTS "operation_outputs_workflow_uuid_fkey" """,
            ]),
            new("113_enqueue_workflow_split_input",
            [
                EnqueueWorkflowFunction(s, splitInput: true),
                $"ALTER FUNCTION {s}.enqueue_workflow({enqueueArgs}, TEXT) SET search_path = pg_catalog, pg_temp",
            ]),
            new("114_drop_idx_notifications", [$"""DROP INDEX CONCURRENTLY IF EXISTS {s}."idx_notifications" """], Online: true),
            new("115_workflow_status_in_flight_index_v2",
            [
                $"""CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_workflow_status_in_flight_v2" ON {s}."workflow_status" ("queue_name", "status", "priority", "created_at") INCLUDE ("application_name") WHERE "status" IN ('ENQUEUED', 'PENDING')""",
            ], Online: true),
            new("116_drop_workflow_status_in_flight_index", [$"""DROP INDEX CONCURRENTLY IF EXISTS {s}."idx_workflow_status_in_flight" """], Online: true),
            new("117_workflow_status_partition_dequeue_index_v3",
            [
                $"""CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_workflow_status_partition_dequeue_v3" ON {s}."workflow_status" ("queue_name", "status", "queue_partition_key", "priority", "created_at", "workflow_uuid") INCLUDE ("application_name") WHERE "status" IN ('ENQUEUED', 'PENDING') AND "queue_partition_key" IS NOT NULL""",
            ], Online: true),
            new("118_drop_workflow_status_partition_dequeue_index_v2", [$"""DROP INDEX CONCURRENTLY IF EXISTS {s}."idx_workflow_status_partition_dequeue_v2" """], Online: true),
            new("119_operation_outputs_completed_at_function_name_index_v2",
            [
                $"""CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_operation_outputs_completed_at_function_name_v2" ON {s}."operation_outputs" ("completed_at_epoch_ms", "function_name") INCLUDE ("application_name")""",
            ], Online: true),
            new("120_drop_operation_outputs_completed_at_function_name_index", [$"""DROP INDEX CONCURRENTLY IF EXISTS {s}."idx_operation_outputs_completed_at_function_name" """], Online: true),
            new("121_notifications_consumed_by_function_id", [$"""ALTER TABLE {s}."notifications" ADD COLUMN IF NOT EXISTS "consumed_by_function_id" INT4"""]),
            new("122_workflow_status_deadline_index",
            [
                $"""CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_workflow_status_deadline" ON {s}."workflow_status" ("workflow_deadline_epoch_ms") WHERE "status" IN ('ENQUEUED', 'PENDING', 'DELAYED') AND "workflow_deadline_epoch_ms" IS NOT NULL""",
            ], Online: true),
            new("123_workflow_status_creator_xid", [$"""ALTER TABLE {s}."workflow_status" ADD COLUMN IF NOT EXISTS "creator_xid" TEXT DEFAULT NULL"""]),
        ];
    }

    /// <summary>
    /// <c>enqueue_workflow</c>, the SQL function any client can call to enqueue a workflow in <c>portable_json</c>.
    /// Version 105 wrote the inputs into <c>workflow_status</c>; version 113 moved them to <c>workflow_input</c>.
    /// </summary>
    private static string EnqueueWorkflowFunction(string s, bool splitInput)
    {
        var statusInputColumn = splitInput ? string.Empty : " inputs,";
        var statusInputValue = splitInput ? string.Empty : " v_serialized_inputs,";
        var inputInsert = splitInput
            ? $"""

                INSERT INTO {s}.workflow_input (
                    workflow_uuid, inputs, retention_timestamp
                ) VALUES (
                    v_workflow_id, v_serialized_inputs, v_now
                )
                ON CONFLICT (workflow_uuid) DO NOTHING;
            """
            : string.Empty;
        return $"""
            CREATE OR REPLACE FUNCTION {s}.enqueue_workflow(
                workflow_name TEXT,
                queue_name TEXT,
                positional_args JSON[] DEFAULT ARRAY[]::JSON[],
                named_args JSON DEFAULT '{"{}"}'::JSON,
                class_name TEXT DEFAULT NULL,
                config_name TEXT DEFAULT NULL,
                workflow_id TEXT DEFAULT NULL,
                app_version TEXT DEFAULT NULL,
                timeout_ms BIGINT DEFAULT NULL,
                deadline_epoch_ms BIGINT DEFAULT NULL,
                deduplication_id TEXT DEFAULT NULL,
                priority INT4 DEFAULT NULL,
                queue_partition_key TEXT DEFAULT NULL,
                authenticated_user TEXT DEFAULT NULL,
                authenticated_roles TEXT DEFAULT NULL,
                delay_until_epoch_ms BIGINT DEFAULT NULL,
                application_name TEXT DEFAULT NULL
            ) RETURNS TEXT AS $$
            DECLARE
                v_workflow_id TEXT;
                v_serialized_inputs TEXT;
                v_owner_xid TEXT;
                v_now BIGINT;
                v_recovery_attempts INT4 := 0;
                v_priority INT4;
                v_status TEXT;
            BEGIN
                IF workflow_name IS NULL OR workflow_name = '' THEN
                    RAISE EXCEPTION 'Workflow name cannot be null or empty';
                END IF;
                IF queue_name IS NULL OR queue_name = '' THEN
                    RAISE EXCEPTION 'Queue name cannot be null or empty';
                END IF;
                IF named_args IS NOT NULL AND jsonb_typeof(named_args::jsonb) != 'object' THEN
                    RAISE EXCEPTION 'Named args must be a JSON object';
                END IF;
                IF workflow_id IS NOT NULL AND workflow_id = '' THEN
                    RAISE EXCEPTION 'Workflow ID cannot be an empty string if provided.';
                END IF;
                IF delay_until_epoch_ms IS NOT NULL AND delay_until_epoch_ms < 0 THEN
                    RAISE EXCEPTION 'delay_until_epoch_ms must be >= 0';
                END IF;

                v_workflow_id := COALESCE(workflow_id, gen_random_uuid()::TEXT);
                v_owner_xid := gen_random_uuid()::TEXT;
                v_priority := COALESCE(priority, 0);
                v_serialized_inputs := json_build_object(
                    'positionalArgs', positional_args,
                    'namedArgs', named_args
                )::TEXT;
                v_now := EXTRACT(epoch FROM now()) * 1000;
                v_status := CASE WHEN delay_until_epoch_ms IS NULL THEN 'ENQUEUED' ELSE 'DELAYED' END;

                INSERT INTO {s}.workflow_status (
                    workflow_uuid, status,{statusInputColumn}
                    name, class_name, config_name,
                    queue_name, deduplication_id, priority, queue_partition_key,
                    application_version,
                    created_at, updated_at, recovery_attempts,
                    workflow_timeout_ms, workflow_deadline_epoch_ms,
                    parent_workflow_id, owner_xid, serialization,
                    authenticated_user, authenticated_roles,
                    delay_until_epoch_ms, application_name
                ) VALUES (
                    v_workflow_id, v_status,{statusInputValue}
                    workflow_name, class_name, config_name,
                    queue_name, deduplication_id, v_priority, queue_partition_key,
                    app_version,
                    v_now, v_now, v_recovery_attempts,
                    timeout_ms, deadline_epoch_ms,
                    NULL, v_owner_xid, 'portable_json',
                    authenticated_user, authenticated_roles,
                    delay_until_epoch_ms, application_name
                )
                ON CONFLICT (workflow_uuid)
                DO UPDATE SET
                    updated_at = EXCLUDED.updated_at;
            {inputInsert}
                RETURN v_workflow_id;

            EXCEPTION
                WHEN unique_violation THEN
                    RAISE EXCEPTION 'DBOS queue duplicated'
                        USING DETAIL = format('Workflow %s with queue %s and deduplication ID %s already exists', v_workflow_id, queue_name, deduplication_id),
                            ERRCODE = 'unique_violation';
            END;
            $$ LANGUAGE plpgsql
            """;
    }
}
