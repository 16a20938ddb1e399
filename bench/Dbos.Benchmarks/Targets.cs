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

    /// <summary>A system table's name as raw SQL must write it.</summary>
    public abstract string Qualified(string table);

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

    public override Task<int> InsertAsync()
    {
        insert.Parameters[1].Value = ++next;
        return Task.FromResult(insert.ExecuteNonQuery());
    }

    public override string Qualified(string table) => table;

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
        await using (var command = dataSource.CreateCommand("CREATE TABLE raw_inserts (id text NOT NULL, n int8 NOT NULL, payload text, PRIMARY KEY (id, n))"))
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
