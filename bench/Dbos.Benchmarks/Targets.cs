using Microsoft.Data.Sqlite;
using Npgsql;

namespace Dbos.Benchmarks;

/// <summary>A scratch database holding both the raw baseline table and the DBOS system tables.</summary>
internal abstract class Target : IAsyncDisposable
{
    public abstract string SystemDatabaseUrl { get; }

    /// <summary>One raw INSERT, committed on its own.</summary>
    public abstract Task<int> InsertAsync();

    /// <summary>Raw INSERT+COMMITs from <paramref name="connections"/> connections at once: commits per second.</summary>
    public abstract Task<double> InsertConcurrentlyAsync(int connections, int total);

    /// <summary>
    /// A raw queue: <paramref name="count"/> rows inserted by <paramref name="writers"/> writers while a loop claims them
    /// in batches (<c>FOR UPDATE SKIP LOCKED</c> on Postgres) and completes each with its own commit: items per second.
    /// </summary>
    public abstract Task<double> RawQueueAsync(int count, int writers, int batch);

    /// <summary>
    /// The floor under a checkpoint: the statement DBOS writes for one step (an operation_outputs row, guarded by its
    /// workflow's ownership) run raw, prepared, committed on its own, on the DBOS schema. The difference between this and
    /// <see cref="InsertAsync"/> is the schema's cost (more indexes, a wider row), not the library's.
    /// </summary>
    public abstract Task StepStatementAsync();

    /// <summary>The floor under an empty workflow: DBOS's start (status and input rows) and completion (status update and output row), raw.</summary>
    public abstract Task WorkflowStatementsAsync();

    /// <summary>SQL shared by both backends for the floors, with the schema prefix and the clock of each.</summary>
    protected static class FloorSql
    {
        public static string Step(string prefix) =>
            $"INSERT INTO {prefix}operation_outputs (workflow_uuid, function_id, function_name, output, error, child_workflow_id, started_at_epoch_ms, " +
            "completed_at_epoch_ms, serialization, application_name) SELECT $1, $2, 'step', '2', NULL, NULL, $3, $3, 'portable_json', 'bench' " +
            $"WHERE EXISTS (SELECT 1 FROM {prefix}workflow_status WHERE workflow_uuid = $1 AND status = 'PENDING' AND owner_xid = 'floor') " +
            "ON CONFLICT (workflow_uuid, function_id) DO NOTHING";

        public static string PendingOwner(string prefix) =>
            $"INSERT INTO {prefix}workflow_status (workflow_uuid, status, name, owner_xid, created_at, updated_at) VALUES ('floor-steps', 'PENDING', 'floor', 'floor', 0, 0)";

        public static string StartStatus(string prefix) =>
            $"INSERT INTO {prefix}workflow_status (workflow_uuid, status, name, queue_name, authenticated_user, assumed_role, authenticated_roles, executor_id, " +
            "application_version, application_id, recovery_attempts, serialization, creator_xid, owner_xid, application_name, priority, created_at, updated_at) " +
            "VALUES ($1, 'PENDING', 'empty', NULL, '', '', '[]', 'local', 'bench', '', 1, 'portable_json', 'floor', 'floor', 'bench', 0, $2, $2) " +
            "ON CONFLICT (workflow_uuid) DO UPDATE SET creator_xid = excluded.creator_xid RETURNING status, name, queue_name, creator_xid, serialization";

        public static string StartInput(string prefix) =>
            $"INSERT INTO {prefix}workflow_input (workflow_uuid, inputs) VALUES ($1, '[1]') ON CONFLICT (workflow_uuid) DO NOTHING";

        public static string CompleteStatus(string prefix) =>
            $"UPDATE {prefix}workflow_status SET status = 'SUCCESS', updated_at = $2, completed_at = $2, deduplication_id = NULL, owner_xid = NULL " +
            "WHERE workflow_uuid = $1 AND status = 'PENDING' AND owner_xid = 'floor' RETURNING workflow_uuid";

        public static string CompleteOutput(string prefix) =>
            $"INSERT INTO {prefix}workflow_output (workflow_uuid, output, error) VALUES ($1, '1', NULL) ON CONFLICT (workflow_uuid) DO UPDATE SET output = excluded.output";
    }

    /// <summary>A system table's name as raw SQL must write it.</summary>
    public abstract string Qualified(string table);

    /// <summary>
    /// The raw floor under a takeover: a child process that takes the backend's kind of lock raw (a session advisory lock
    /// through psql; an exclusive flock on a file), to be killed; <see cref="IsRawLockFreeAsync"/> says when it is released.
    /// </summary>
    public abstract System.Diagnostics.Process HoldRawLock();

    /// <summary>Whether the lock of <see cref="HoldRawLock"/> is free (false while the child holds it).</summary>
    public abstract Task<bool> IsRawLockFreeAsync();

    /// <summary>Runs a query returning one number.</summary>
    public abstract Task<long> ScalarAsync(string sql);

    public abstract ValueTask DisposeAsync();
}

internal sealed class SqliteTarget : Target
{
    private readonly string directory;
    private readonly SqliteConnection connection;
    private readonly SqliteCommand insert;
    private long next;

    private SqliteTarget(string directory, SqliteConnection connection, SqliteCommand insert)
    {
        this.directory = directory;
        this.connection = connection;
        this.insert = insert;
    }

    public override string SystemDatabaseUrl => $"sqlite:///{directory}/bench.sqlite";

    public static Task<SqliteTarget> CreateAsync()
    {
        var directory = Path.Combine(Path.GetTempPath(), "dbos-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        var connection = new SqliteConnection($"Data Source={directory}/bench.sqlite");
        connection.Open();
        using (var setup = connection.CreateCommand())
        {
            setup.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000; " +
                "CREATE TABLE raw_inserts (id TEXT NOT NULL, n INTEGER NOT NULL, payload TEXT, PRIMARY KEY (id, n))";
            setup.ExecuteNonQuery();
        }

        var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO raw_inserts (id, n, payload) VALUES ($1, $2, $3)";
        insert.Parameters.Add(new SqliteParameter("$1", "bench"));
        insert.Parameters.Add(new SqliteParameter("$2", 0L));
        insert.Parameters.Add(new SqliteParameter("$3", "42"));
        insert.Prepare();
        return Task.FromResult(new SqliteTarget(directory, connection, insert));
    }

    private string RawLockPath => Path.Combine(directory, "raw.lock");

    public override System.Diagnostics.Process HoldRawLock() =>
        System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("flock", ["--exclusive", RawLockPath, "sleep", "3600"]) { UseShellExecute = false })!;

    public override Task<bool> IsRawLockFreeAsync()
    {
        try
        {
            using var probe = new FileStream(RawLockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return Task.FromResult(true);
        }
        catch (IOException)
        {
            return Task.FromResult(false);
        }
    }

    public override Task<int> InsertAsync()
    {
        insert.Parameters[1].Value = ++next;
        return Task.FromResult(insert.ExecuteNonQuery());
    }

    public override string Qualified(string table) => table;

    private SqliteCommand? stepFloor;
    private SqliteCommand[]? workflowFloor;

    private SqliteCommand Prepared(string sql, int parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        for (var i = 1; i <= parameters; i++)
        {
            command.Parameters.Add(new SqliteParameter("$" + i, DBNull.Value));
        }

        command.Prepare();
        return command;
    }

    public override Task StepStatementAsync()
    {
        if (stepFloor is null)
        {
            using (var owner = connection.CreateCommand())
            {
                owner.CommandText = FloorSql.PendingOwner(string.Empty);
                owner.ExecuteNonQuery();
            }

            stepFloor = Prepared(FloorSql.Step(string.Empty), 3);
            stepFloor.Parameters[0].Value = "floor-steps";
        }

        stepFloor.Parameters[1].Value = ++next;
        stepFloor.Parameters[2].Value = next;
        stepFloor.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public override Task WorkflowStatementsAsync()
    {
        // As DBOS writes them on SQLite: one transaction to start, one to complete.
        workflowFloor ??=
        [
            Prepared("BEGIN IMMEDIATE", 0), Prepared(FloorSql.StartStatus(string.Empty), 2), Prepared(FloorSql.StartInput(string.Empty), 1),
            Prepared("COMMIT", 0), Prepared(FloorSql.CompleteStatus(string.Empty), 2), Prepared(FloorSql.CompleteOutput(string.Empty), 1),
        ];
        var id = "floor-" + Guid.NewGuid().ToString("N");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var command in workflowFloor)
        {
            if (command.Parameters.Count > 0)
            {
                command.Parameters[0].Value = id;
            }

            if (command.Parameters.Count > 1)
            {
                command.Parameters[1].Value = now;
            }
        }

        workflowFloor[0].ExecuteNonQuery();
        using (var reader = workflowFloor[1].ExecuteReader())
        {
            reader.Read();
        }

        workflowFloor[2].ExecuteNonQuery();
        workflowFloor[3].ExecuteNonQuery();
        workflowFloor[0].ExecuteNonQuery();
        using (var reader = workflowFloor[4].ExecuteReader())
        {
            reader.Read();
        }

        workflowFloor[5].ExecuteNonQuery();
        workflowFloor[3].ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public override Task<long> ScalarAsync(string sql)
    {
        using var c = Open();
        using var command = c.CreateCommand();
        command.CommandText = sql;
        return Task.FromResult(Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture));
    }

    private SqliteConnection Open()
    {
        var c = new SqliteConnection($"Data Source={directory}/bench.sqlite");
        c.Open();
        using var pragma = c.CreateCommand();
        pragma.CommandText = "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000;";
        pragma.ExecuteNonQuery();
        return c;
    }

    public override async Task<double> InsertConcurrentlyAsync(int connections, int total)
    {
        var perConnection = total / connections;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, connections).Select(w => Task.Run(() =>
        {
            using var c = Open();
            using var command = c.CreateCommand();
            command.CommandText = "INSERT INTO raw_inserts (id, n, payload) VALUES ($1, $2, '42')";
            command.Parameters.Add(new SqliteParameter("$1", $"c{w}-{Guid.NewGuid():N}"));
            command.Parameters.Add(new SqliteParameter("$2", 0L));
            for (var i = 0; i < perConnection; i++)
            {
                command.Parameters[1].Value = (long)i;
                command.ExecuteNonQuery();
            }
        })));
        return perConnection * connections / watch.Elapsed.TotalSeconds;
    }

    public override async Task<double> RawQueueAsync(int count, int writers, int batch)
    {
        using (var setup = Open())
        using (var create = setup.CreateCommand())
        {
            create.CommandText = "DROP TABLE IF EXISTS raw_queue; CREATE TABLE raw_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, payload TEXT)";
            create.ExecuteNonQuery();
        }

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var enqueue = Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(() =>
        {
            using var c = Open();
            using var command = c.CreateCommand();
            command.CommandText = "INSERT INTO raw_queue (status, payload) VALUES ('ENQUEUED', '42')";
            for (var i = 0; i < count / writers; i++)
            {
                command.ExecuteNonQuery();
            }
        })));
        var done = await Task.Run(() =>
        {
            using var c = Open();
            using var claim = c.CreateCommand();
            claim.CommandText = "UPDATE raw_queue SET status = 'RUNNING' WHERE id IN (SELECT id FROM raw_queue WHERE status = 'ENQUEUED' ORDER BY id LIMIT $1) RETURNING id";
            claim.Parameters.Add(new SqliteParameter("$1", batch));
            using var complete = c.CreateCommand();
            complete.CommandText = "UPDATE raw_queue SET status = 'DONE' WHERE id = $1";
            complete.Parameters.Add(new SqliteParameter("$1", 0L));
            var completed = 0;
            while (completed < count / writers * writers)
            {
                var ids = new List<long>();
                using (var reader = claim.ExecuteReader())
                {
                    while (reader.Read())
                    {
                        ids.Add(reader.GetInt64(0));
                    }
                }

                foreach (var id in ids)
                {
                    complete.Parameters[0].Value = id;
                    complete.ExecuteNonQuery();
                }

                completed += ids.Count;
            }

            return completed;
        });
        await enqueue;
        return done / watch.Elapsed.TotalSeconds;
    }

    public override ValueTask DisposeAsync()
    {
        insert.Dispose();
        connection.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}

internal sealed class PostgresTarget : Target
{
    private readonly string server;
    private readonly string database;
    private readonly NpgsqlDataSource dataSource;
    private long next;

    private PostgresTarget(string server, string database, NpgsqlDataSource dataSource)
    {
        this.server = server;
        this.database = database;
        this.dataSource = dataSource;
    }

    public override string SystemDatabaseUrl => $"{server}/{database}";

    /// <summary>The server's URL, without a database.</summary>
    public string Server => server;

    /// <summary>The scratch database's connection string (no pool settings).</summary>
    public string ConnectionString() => ConnectionString(server, database);

    /// <summary>Runs a statement that may take long (filling a large table): no command timeout.</summary>
    public async Task ExecuteLongAsync(string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 0;
        await command.ExecuteNonQueryAsync();
    }

    public static async Task<PostgresTarget> CreateAsync(string server)
    {
        var database = "dbos_bench_" + Guid.NewGuid().ToString("N")[..8];
        await using (var admin = new NpgsqlConnection(ConnectionString(server, "postgres")))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        // The same pooled, auto-prepared, no-reset-on-close settings DBOS uses for its own connections.
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString(server, database))
        {
            NoResetOnClose = true,
            MaxAutoPrepare = 128,
            AutoPrepareMinUsages = 2,
            MaxPoolSize = 64,
        };
        var dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        await using (var command = dataSource.CreateCommand(
            "CREATE TABLE raw_inserts (id text NOT NULL, n int8 NOT NULL, payload text, PRIMARY KEY (id, n)); " +
            "CREATE TABLE pgbench_inserts (id bigserial PRIMARY KEY, payload text)"))
        {
            await command.ExecuteNonQueryAsync();
        }

        return new PostgresTarget(server, database, dataSource);
    }

    private static string ConnectionString(string server, string database)
    {
        var uri = new Uri(server);
        var user = uri.UserInfo.Split(':', 2);
        return new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port > 0 ? uri.Port : 5432,
            Username = Uri.UnescapeDataString(user[0]),
            Password = user.Length > 1 ? Uri.UnescapeDataString(user[1]) : null,
            Database = database,
        }.ConnectionString;
    }

    public override async Task<int> InsertAsync()
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("INSERT INTO raw_inserts (id, n, payload) VALUES ($1, $2, $3)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = "bench" });
        command.Parameters.Add(new NpgsqlParameter { Value = Interlocked.Increment(ref next) });
        command.Parameters.Add(new NpgsqlParameter { Value = "42" });
        return await command.ExecuteNonQueryAsync();
    }

    public override string Qualified(string table) => "dbos." + table;

    /// <summary>pgbench's one-row INSERTs from <paramref name="clients"/> clients on this database; null without pgbench.</summary>
    public Task<(double Tps, double LatencyUs)?> PgbenchInsertAsync(int clients, double seconds) =>
        Pgbench.InsertAsync(new Uri(server), database, clients, seconds);

    private const long RawLockKey = 4242;

    // The session is left idle with the lock, as a liveness session is: a backend busy in a statement would not notice
    // its client's death until the statement ends.
    public override System.Diagnostics.Process HoldRawLock()
    {
        var psql = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("psql", [SystemDatabaseUrl, "-q"])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        })!;
        psql.StandardInput.WriteLine($"SELECT pg_advisory_lock({RawLockKey});");
        psql.StandardInput.Flush();
        return psql;
    }

    public override async Task<bool> IsRawLockFreeAsync() =>
        await ScalarAsync($"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {RawLockKey} AND granted") == 0;

    private bool ownerInserted;

    public override async Task StepStatementAsync()
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        if (!ownerInserted)
        {
            await using var owner = new NpgsqlCommand(FloorSql.PendingOwner("dbos."), connection);
            await owner.ExecuteNonQueryAsync();
            ownerInserted = true;
        }

        var n = Interlocked.Increment(ref next);
        await using var command = new NpgsqlCommand(FloorSql.Step("dbos."), connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "floor-steps" });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = (int)n });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = n });
        await command.ExecuteNonQueryAsync();
    }

    public override async Task WorkflowStatementsAsync()
    {
        // As DBOS writes them on Postgres: the start in one round trip and one commit, the completion likewise.
        await using var connection = await dataSource.OpenConnectionAsync();
        var id = "floor-" + Guid.NewGuid().ToString("N");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using (var start = new NpgsqlBatch(connection))
        {
            start.BatchCommands.Add(Command(FloorSql.StartStatus("dbos."), id, now));
            start.BatchCommands.Add(Command(FloorSql.StartInput("dbos."), id, null));
            await start.ExecuteNonQueryAsync();
        }

        await using var complete = new NpgsqlBatch(connection);
        complete.BatchCommands.Add(Command(FloorSql.CompleteStatus("dbos."), id, now));
        complete.BatchCommands.Add(Command(FloorSql.CompleteOutput("dbos."), id, null));
        await complete.ExecuteNonQueryAsync();

        static NpgsqlBatchCommand Command(string sql, string id, long? now)
        {
            var command = new NpgsqlBatchCommand(sql);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = id });
            if (now is { } ms)
            {
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ms });
            }

            return command;
        }
    }

    /// <summary>
    /// CPU seconds used so far by the server processes serving this database (its backends, read from /proc), or null
    /// where /proc is not readable. A backend that exits between two readings takes its share with it, so compare two
    /// readings around work done on pooled connections that stay open.
    /// </summary>
    public async Task<double?> BackendCpuSecondsAsync()
    {
        var ticks = 0L;
        await using var command = dataSource.CreateCommand("SELECT pid FROM pg_stat_activity WHERE datname = current_database()");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            if (ProcessCpu.Ticks(reader.GetInt32(0)) is not { } used)
            {
                return null;
            }

            ticks += used;
        }

        return ticks / ProcessCpu.TicksPerSecond;
    }

    public override async Task<long> ScalarAsync(string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public override async Task<double> InsertConcurrentlyAsync(int connections, int total)
    {
        var perConnection = total / connections;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            for (var i = 0; i < perConnection; i++)
            {
                await InsertAsync();
            }
        }));
        return perConnection * connections / watch.Elapsed.TotalSeconds;
    }

    public override async Task<double> RawQueueAsync(int count, int writers, int batch)
    {
        await using (var create = dataSource.CreateCommand("DROP TABLE IF EXISTS raw_queue; CREATE TABLE raw_queue (id bigserial PRIMARY KEY, status text NOT NULL, payload text)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var total = count / writers * writers;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var enqueue = Task.WhenAll(Enumerable.Range(0, writers).Select(async _ =>
        {
            for (var i = 0; i < count / writers; i++)
            {
                await using var command = dataSource.CreateCommand("INSERT INTO raw_queue (status, payload) VALUES ('ENQUEUED', '42')");
                await command.ExecuteNonQueryAsync();
            }
        }));
        var claimed = 0;
        using var inFlight = new SemaphoreSlim(16);
        var completions = new List<Task>();
        while (claimed < total)
        {
            var ids = new List<long>();
            await using (var claim = dataSource.CreateCommand(
                "UPDATE raw_queue SET status = 'RUNNING' WHERE id IN (SELECT id FROM raw_queue WHERE status = 'ENQUEUED' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id"))
            {
                claim.Parameters.Add(new NpgsqlParameter { Value = batch });
                await using var reader = await claim.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    ids.Add(reader.GetInt64(0));
                }
            }

            if (ids.Count == 0)
            {
                await Task.Delay(1);
                continue;
            }

            claimed += ids.Count;
            foreach (var id in ids)
            {
                await inFlight.WaitAsync();
                completions.Add(Task.Run(async () =>
                {
                    try
                    {
                        await using var complete = dataSource.CreateCommand("UPDATE raw_queue SET status = 'DONE' WHERE id = $1");
                        complete.Parameters.Add(new NpgsqlParameter { Value = id });
                        await complete.ExecuteNonQueryAsync();
                    }
                    finally
                    {
                        inFlight.Release();
                    }
                }));
            }
        }

        await Task.WhenAll(completions);
        await enqueue;
        return total / watch.Elapsed.TotalSeconds;
    }

    public override async ValueTask DisposeAsync()
    {
        await dataSource.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(ConnectionString(server, "postgres"));
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}

/// <summary>CPU time of a process from /proc/PID/stat (Linux): user plus system, in clock ticks.</summary>
internal static class ProcessCpu
{
    /// <summary>USER_HZ, 100 on every Linux this runs on.</summary>
    public const double TicksPerSecond = 100;

    public static long? Ticks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");

            // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>
/// The CPU spent, from its start to a reading, by this process and, on Postgres, by the server's backends serving the
/// target database (see <see cref="PostgresTarget.BackendCpuSecondsAsync"/>).
/// </summary>
internal sealed class CpuWatch
{
    private readonly PostgresTarget? server;
    private readonly double? serverAtStart;
    private readonly TimeSpan processAtStart;

    private CpuWatch(PostgresTarget? server, double? serverAtStart, TimeSpan processAtStart)
    {
        this.server = server;
        this.serverAtStart = serverAtStart;
        this.processAtStart = processAtStart;
    }

    public static async Task<CpuWatch> StartAsync(PostgresTarget? server) =>
        new(server, server is null ? null : await server.BackendCpuSecondsAsync(), System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime);

    /// <summary>CPU seconds since the start here, and in the server's backends (null without Postgres or without /proc).</summary>
    public async Task<(double Process, double? Server)> ReadAsync()
    {
        var process = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - processAtStart).TotalSeconds;
        return (process, serverAtStart is { } before && await server!.BackendCpuSecondsAsync() is { } after ? after - before : null);
    }
}
