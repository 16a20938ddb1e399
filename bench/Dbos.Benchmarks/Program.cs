// Measures the cost of durability against the raw database, in one run, on the same database and driver settings:
//   raw commit      one prepared INSERT committed on its own (autocommit), through a pooled connection
//   empty workflow  start to result of a workflow with no steps
//   per step        (a 10-step workflow - an empty workflow) / 10, sequential
// Every figure is a median over rounds that interleave the raw baseline and DBOS, and is reported as a ratio to the
// raw commit, because the machines this runs on are shared and noisy.
//
// It then measures the wake-up latency of a workflow waiting in RecvAsync: from the moment a message is sent to the
// moment RecvAsync returns, sent from the same application (woken in-process) and from a DbosClient, which stands for
// another process (woken by LISTEN/NOTIFY on Postgres, by polling on SQLite), with the default polling interval.
//
// Usage: dotnet run -c Release --project bench/Dbos.Benchmarks -- [--smoke] [--backend sqlite|postgres|both] [--postgres-url URL]
// The Postgres URL defaults to DBOS_TEST_POSTGRES_URL (the server; a scratch database is created on it and dropped).
using System.Diagnostics;
using System.Globalization;
using Dbos;
using Microsoft.Data.Sqlite;
using Npgsql;

var smoke = args.Contains("--smoke");
var backend = Option("--backend") ?? "both";
var postgresServer = Option("--postgres-url") ?? Environment.GetEnvironmentVariable("DBOS_TEST_POSTGRES_URL") ?? "postgresql://dbos:dbos@127.0.0.1:5432";
var rounds = smoke ? 2 : 7;
var rawPerRound = smoke ? 20 : 1000;
var workflowsPerRound = smoke ? 5 : 150;

var results = new List<Row>();
var latencies = new List<LatencyRow>();
var throughputs = new List<ThroughputRow>();
var transactions = new List<Row>();
if (backend is "sqlite" or "both")
{
    results.AddRange(await MeasureAsync("SQLite (WAL, synchronous=NORMAL)", await SqliteTarget.CreateAsync()));
    latencies.AddRange(await MeasureLatencyAsync("SQLite", await SqliteTarget.CreateAsync()));
    throughputs.Add(await MeasureQueueAsync("SQLite", await SqliteTarget.CreateAsync()));
    transactions.Add(await MeasureTransactionAsync("SQLite", await SqliteTarget.CreateAsync()));
}

if (backend is "postgres" or "both")
{
    results.AddRange(await MeasureAsync("Postgres", await PostgresTarget.CreateAsync(postgresServer.TrimEnd('/'))));
    latencies.AddRange(await MeasureLatencyAsync("Postgres", await PostgresTarget.CreateAsync(postgresServer.TrimEnd('/'))));
    throughputs.Add(await MeasureQueueAsync("Postgres", await PostgresTarget.CreateAsync(postgresServer.TrimEnd('/'))));
    transactions.Add(await MeasureTransactionAsync("Postgres", await PostgresTarget.CreateAsync(postgresServer.TrimEnd('/'))));
}

Console.WriteLine();
Console.WriteLine($"{"backend",-34} {"measure",-30} {"raw commit (us)",16} {"DBOS (us)",12} {"ratio",8}");
foreach (var row in results)
{
    Console.WriteLine($"{row.Backend,-34} {row.Measure,-30} {row.RawMicros,16:0.0} {row.OursMicros,12:0.0} {row.OursMicros / row.RawMicros,8:0.00}");
}

Console.WriteLine();
Console.WriteLine($"{"backend",-10} {"message sent from",-48} {"median (ms)",12} {"p99 (ms)",10} {"samples",8}");
foreach (var row in latencies)
{
    Console.WriteLine($"{row.Backend,-10} {row.Sender,-48} {row.MedianMs,12:0.00} {row.P99Ms,10:0.00} {row.Samples,8}");
}

Console.WriteLine();
Console.WriteLine($"{"backend",-10} {"datasource transaction (one INSERT)",-44} {"plain (us)",12} {"durable (us)",12} {"ratio",8}");
foreach (var row in transactions)
{
    Console.WriteLine($"{row.Backend,-10} {row.Measure,-44} {row.RawMicros,12:0.0} {row.OursMicros,12:0.0} {row.OursMicros / row.RawMicros,8:0.00}");
}

Console.WriteLine();
Console.WriteLine($"{"backend",-10} {"queued 1-step workflows, one process",-44} {"raw commits/s",14} {"workflows/s",12} {"ratio",8}");
foreach (var row in throughputs)
{
    Console.WriteLine($"{row.Backend,-10} {$"{row.Workflows} enqueued by {row.Writers} writers",-44} {row.RawPerSecond,14:0} {row.WorkflowsPerSecond,12:0} {row.WorkflowsPerSecond / row.RawPerSecond,8:0.00}");
}

Console.WriteLine();
Console.WriteLine($"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}{(smoke ? " (smoke run: figures are not meaningful)" : string.Empty)}");
return 0;

string? Option(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

async Task<List<Row>> MeasureAsync(string name, Target target)
{
    await using (target)
    {
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "bench", SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationVersion = "bench" });
        var step = dbos.RegisterStep("step", (int i, CancellationToken _) => Task.FromResult(i + 1));
        var empty = dbos.RegisterWorkflow("empty", (WorkflowContext ctx, int i) => Task.FromResult(i));
        var tenSteps = dbos.RegisterWorkflow("ten-steps", async (WorkflowContext ctx, int i) =>
        {
            for (var s = 0; s < 10; s++)
            {
                i = await step.RunAsync(i);
            }

            return i;
        });
        await dbos.LaunchAsync();

        // Warm up every path (JIT, pools, prepared statements).
        for (var i = 0; i < (smoke ? 3 : 200); i++)
        {
            await target.InsertAsync();
            await empty.RunAsync(i);
            await tenSteps.RunAsync(i);
        }

        var raw = new List<double>();
        var emptyTimes = new List<double>();
        var tenStepTimes = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            raw.Add(await TimeAsync(rawPerRound, _ => target.InsertAsync()));
            emptyTimes.Add(await TimeAsync(workflowsPerRound, i => empty.RunAsync(i)));
            tenStepTimes.Add(await TimeAsync(workflowsPerRound, i => tenSteps.RunAsync(i)));
            Console.Error.WriteLine($"{name} round {round + 1}/{rounds}: raw {raw[^1]:0.0} us, empty workflow {emptyTimes[^1]:0.0} us, 10-step workflow {tenStepTimes[^1]:0.0} us");
        }

        var rawMedian = Median(raw);
        var emptyMedian = Median(emptyTimes);
        var perStep = (Median(tenStepTimes) - emptyMedian) / 10;
        return
        [
            new(name, "each extra step, sequential", rawMedian, perStep),
            new(name, "empty workflow, start to result", rawMedian, emptyMedian),
        ];
    }
}

async Task<List<LatencyRow>> MeasureLatencyAsync(string name, Target target)
{
    await using (target)
    {
        var samples = smoke ? 5 : 300;
        var received = new List<double>();
        var signal = new SemaphoreSlim(0);
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "latency", SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationVersion = "bench" });
        var receiver = dbos.RegisterWorkflow("receiver", async (WorkflowContext ctx, int count) =>
        {
            for (var i = 0; i < count; i++)
            {
                var sentAt = await ctx.RecvAsync<long>("ping", TimeSpan.FromMinutes(1));
                lock (received)
                {
                    received.Add(Stopwatch.GetElapsedTime(sentAt).TotalMilliseconds);
                }

                signal.Release();
            }

            return count;
        });
        await dbos.LaunchAsync();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = target.SystemDatabaseUrl });

        var rows = new List<LatencyRow>();
        foreach (var (sender, send) in new (string, Func<string, Task>)[]
        {
            ("the same application (in-process wake-up)", id => dbos.SendAsync(id, Stopwatch.GetTimestamp(), "ping")),
            (name == "Postgres" ? "a DbosClient (another process: LISTEN/NOTIFY)" : "a DbosClient (another process: 1 s polling)", id => client.SendAsync(id, Stopwatch.GetTimestamp(), "ping")),
        })
        {
            lock (received)
            {
                received.Clear();
            }

            var count = sender.Contains("polling", StringComparison.Ordinal) ? Math.Min(samples, smoke ? 3 : 40) : samples;
            var id = "receiver-" + Guid.NewGuid().ToString("N")[..8];
            var handle = await receiver.StartAsync(count, new StartOptions { WorkflowId = id });
            for (var i = 0; i < count; i++)
            {
                // Let the receiver get back to waiting, then send; the next send waits for this one's arrival.
                await Task.Delay(smoke ? 5 : 20);
                await send(id);
                await signal.WaitAsync(TimeSpan.FromSeconds(30));
            }

            await handle.GetResultAsync();
            List<double> sorted;
            lock (received)
            {
                sorted = received.Order().ToList();
            }

            rows.Add(new(name, sender, Percentile(sorted, 0.5), Percentile(sorted, 0.99), sorted.Count));
            Console.Error.WriteLine($"{name} latency from {sender}: median {rows[^1].MedianMs:0.00} ms, p99 {rows[^1].P99Ms:0.00} ms");
        }

        return rows;
    }
}

async Task<ThroughputRow> MeasureQueueAsync(string name, Target target)
{
    await using (target)
    {
        const int writers = 16;
        var count = smoke ? 50 : 3000;
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "queue-bench", SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationVersion = "bench" });
        dbos.RegisterQueue("bench-queue", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var step = dbos.RegisterStep("work", (int i, CancellationToken _) => Task.FromResult(i + 1));
        var oneStep = dbos.RegisterWorkflow("one-step", (WorkflowContext ctx, int i) => step.RunAsync(i));
        await dbos.LaunchAsync();

        // The raw commit rate with as many concurrent writers as enqueue below.
        var rawWatch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(async _ =>
        {
            for (var i = 0; i < count / writers; i++)
            {
                await target.InsertAsync();
            }
        }));
        var rawPerSecond = count / writers * writers / rawWatch.Elapsed.TotalSeconds;

        var watch = Stopwatch.StartNew();
        var handles = new WorkflowHandle<int>[count];
        await Task.WhenAll(Enumerable.Range(0, writers).Select(async w =>
        {
            for (var i = w; i < count; i += writers)
            {
                handles[i] = await oneStep.StartAsync(i, new StartOptions { Queue = "bench-queue" });
            }
        }));
        foreach (var handle in handles)
        {
            await handle.GetResultAsync();
        }

        var perSecond = count / watch.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"{name} queue: {perSecond:0} workflows/s end to end, raw {rawPerSecond:0} commits/s");
        return new ThroughputRow(name, count, writers, rawPerSecond, perSecond);
    }
}

// A durable transaction (a step of a workflow, checkpointed in the application database and recorded in the system
// database) against the same transaction run plainly through the same datasource, on one database of each backend.
async Task<Row> MeasureTransactionAsync(string name, Target target)
{
    await using (target)
    {
        await using var datasource = await SqlDatasource.CreateAsync(target.SystemDatabaseUrl);
        await datasource.RunTransactionAsync("setup", (tx, _) => tx.ExecuteAsync("CREATE TABLE IF NOT EXISTS tx_rows (id TEXT PRIMARY KEY, payload TEXT)"));
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "tx-bench", SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationVersion = "bench" });
        Task<int> Insert(TransactionContext tx) => tx.ExecuteAsync("INSERT INTO tx_rows (id, payload) VALUES ($1, '42')", Guid.NewGuid().ToString());
        var empty = dbos.RegisterWorkflow("no-tx", (WorkflowContext ctx, int i) => Task.FromResult(i));
        var tenTransactions = dbos.RegisterWorkflow("ten-tx", async (WorkflowContext ctx, int i) =>
        {
            for (var t = 0; t < 10; t++)
            {
                await datasource.RunTransactionAsync("insert", (tx, _) => Insert(tx));
            }

            return i;
        });
        await dbos.LaunchAsync();
        for (var i = 0; i < (smoke ? 3 : 100); i++)
        {
            await datasource.RunTransactionAsync("plain", (tx, _) => Insert(tx));
            await empty.RunAsync(i);
            await tenTransactions.RunAsync(i);
        }

        var plain = new List<double>();
        var emptyTimes = new List<double>();
        var tenTimes = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            plain.Add(await TimeAsync(rawPerRound / 2, _ => datasource.RunTransactionAsync("plain", (tx, _) => Insert(tx))));
            emptyTimes.Add(await TimeAsync(workflowsPerRound / 2, i => empty.RunAsync(i)));
            tenTimes.Add(await TimeAsync(workflowsPerRound / 2, i => tenTransactions.RunAsync(i)));
        }

        var durable = (Median(tenTimes) - Median(emptyTimes)) / 10;
        Console.Error.WriteLine($"{name} transactions: plain {Median(plain):0.0} us, durable {durable:0.0} us");
        return new Row(name, "plain transaction vs the same in a workflow", Median(plain), durable);
    }
}

static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

static async Task<double> TimeAsync<T>(int count, Func<int, Task<T>> operation)
{
    var watch = Stopwatch.StartNew();
    for (var i = 0; i < count; i++)
    {
        await operation(i);
    }

    return watch.Elapsed.TotalMicroseconds / count;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
}

internal sealed record Row(string Backend, string Measure, double RawMicros, double OursMicros);

internal sealed record ThroughputRow(string Backend, int Workflows, int Writers, double RawPerSecond, double WorkflowsPerSecond);

internal sealed record LatencyRow(string Backend, string Sender, double MedianMs, double P99Ms, int Samples);

/// <summary>A scratch database holding both the raw baseline table and the DBOS system tables.</summary>
internal abstract class Target : IAsyncDisposable
{
    public abstract string SystemDatabaseUrl { get; }

    /// <summary>One raw INSERT, committed on its own.</summary>
    public abstract Task<int> InsertAsync();

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
            MaxPoolSize = 20,
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
        command.Parameters.Add(new NpgsqlParameter { Value = ++next });
        command.Parameters.Add(new NpgsqlParameter { Value = "42" });
        return await command.ExecuteNonQueryAsync();
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
