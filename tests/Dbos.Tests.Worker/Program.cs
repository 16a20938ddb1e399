// A child process for crash tests. The parent test starts it, watches its output, kills it with Process.Kill,
// and starts it again on the same database. Every step appends a line to a ledger file, so the parent can count how
// many times each step really ran across processes.
//
// Usage: Dbos.Tests.Worker <command> [workflowId]
//   run <workflow> <id>   launch (recovering pending work), start <workflow> with ID <id>, print its result
//   await <id>            launch (recovering pending work), wait for workflow <id>, print its result
//   resume <id>           launch, resume workflow <id>, print its result
//   which-db              launch with the default configuration and print the system database in use
//   serve                 launch and run queued workflows until killed (queues: global2, perworker1, rated, own, partitioned)
//   enqueue-own <id> <ms> launch, enqueue queued-task(<ms>) with ID <id> on the queue own, print "enqueued <id>", wait
//   chaos                 the process-crash harness's workload (see ChaosWorkload.cs); prints all-done when it has finished
//   replica               one replica of an application for the many-process tests (see ReplicaWorkload.cs)
//   debounce <prefix> <n> debounce the collect workflow n times (inputs <prefix>-1…n, period 3 s), print its ID, wait forever
// Environment:
//   DBOS_TEST_URL, DBOS_TEST_SCHEMA   the system database (unset: DBOS_SYSTEM_DATABASE_URL or the default)
//   DBOS_TEST_LEDGER                  the file each step appends to
//   DBOS_TEST_BLOCK_AFTER=N           the four-step workflow stops (forever) right after step N is checkpointed
//   DBOS_TEST_NO_CRASH=1              the crashing workflow does not crash
//   DBOS_TEST_TICKER=1                the ticker workflow is scheduled every second
//   DBOS_TEST_APP_URL                 the application database of the transaction workflows (table orders must exist)
//   DBOS_TEST_TRACE=1                 print "span <name> <trace id> <parent span id> <span id>" as each DBOS span starts
//   DBOS_TEST_GO_FILE=<path>          print "ready", wait for the file to hold a moment (unix ms), launch then
//   DBOS_TEST_START_DELAY_MS=<n>      ... plus this many milliseconds (several processes launch together)
//   DBOS_TEST_PRINT_LOGS=1            print "log <event id> <message>" for each message DBOS logs
//   DBOS_TEST_PATCH=old|patched|deprecated   enable patching; the patchable workflow is that variant of its code
//   DBOS_TEST_GATE=<path>             the gated steps of fan-out and first-wins wait until this file exists
using System.Data.Common;
using System.Text.Json;
using Dbos;
using Dbos.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

Console.Out.Flush();
var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
Console.SetOut(stdout);

var command = args.Length > 0 ? args[0] : "which-db";
var ledger = Environment.GetEnvironmentVariable("DBOS_TEST_LEDGER");
var blockAfter = int.TryParse(Environment.GetEnvironmentVariable("DBOS_TEST_BLOCK_AFTER"), out var n) ? n : -1;
var noCrash = Environment.GetEnvironmentVariable("DBOS_TEST_NO_CRASH") == "1";

// Appends are serialized within the process (File.AppendAllText is not atomic between threads); tests that run several
// workers at once give each its own ledger.
var ledgerLock = new object();
void Note(string line)
{
    if (ledger is not null)
    {
        lock (ledgerLock)
        {
            File.AppendAllText(ledger, line + Environment.NewLine);
        }
    }
}

using var spans = Environment.GetEnvironmentVariable("DBOS_TEST_TRACE") == "1" ? new System.Diagnostics.ActivityListener
{
    ShouldListenTo = source => source.Name == DbosInstrumentation.ActivitySourceName,
    Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
    ActivityStarted = a => Console.WriteLine($"span {a.DisplayName.Replace(' ', '_')} {a.TraceId} {a.ParentSpanId} {a.SpanId}"),
} : null;
if (spans is not null)
{
    System.Diagnostics.ActivitySource.AddActivityListener(spans);
}

var appUrl = Environment.GetEnvironmentVariable("DBOS_TEST_APP_URL");
var config = new DbosConfig { Name = "crash-worker", PollingInterval = TimeSpan.FromMilliseconds(100), ApplicationDatabaseUrl = appUrl };
if (Environment.GetEnvironmentVariable("DBOS_TEST_URL") is { Length: > 0 } url)
{
    config.SystemDatabaseUrl = url;
}

if (Environment.GetEnvironmentVariable("DBOS_TEST_PRINT_LOGS") == "1")
{
    config.LoggerFactory = new PrintingLoggerFactory();
}

var patchVariant = Environment.GetEnvironmentVariable("DBOS_TEST_PATCH");
config.EnablePatching = patchVariant is not null;

if (Environment.GetEnvironmentVariable("DBOS_TEST_SCHEMA") is { Length: > 0 } schema)
{
    config.SystemDatabaseSchema = schema;
}

if (command == "chaos")
{
    return await ChaosWorkload.RunAsync(config);
}

if (command == "replica")
{
    return await ReplicaWorkload.RunAsync(config);
}

await using var dbos = DbosApp.Create(config);

var step = dbos.RegisterStep("step", (int i, CancellationToken _) =>
{
    Note($"step{i}");
    return Task.FromResult(i * 10);
});

var fourSteps = dbos.RegisterWorkflow("four-steps", async (WorkflowContext ctx, string input) =>
{
    var total = 0;
    for (var i = 1; i <= 4; i++)
    {
        total += await step.RunAsync(i);
        if (i == blockAfter)
        {
            Console.WriteLine($"checkpointed {i}");
            await Task.Delay(Timeout.Infinite);
        }
    }

    return $"{input}:{total}";
});

var crashing = dbos.RegisterWorkflow("crash-always", async (WorkflowContext ctx, string input) =>
{
    Note("attempt");
    await step.RunAsync(1);
    if (!noCrash)
    {
        Console.WriteLine("crashing");
        System.Diagnostics.Process.GetCurrentProcess().Kill();
    }

    return input;
}, new WorkflowOptions { MaxRecoveryAttempts = 2 });

// One workflow in three versions of its code: the old one, one that patches its second step, and one whose patch is
// deprecated (every execution of the old code is gone). Stops forever after its second step with DBOS_TEST_BLOCK_AFTER=2.
var patchable = dbos.RegisterWorkflow("patchable", async (WorkflowContext ctx, string input) =>
{
    var total = await step.RunAsync(1);
    var patched = patchVariant switch
    {
        "patched" => await ctx.PatchAsync("fix"),
        "deprecated" => await ctx.DeprecatePatchAsync("fix"),
        _ => false,
    };
    total += patched ? await step.RunAsync(20) : await step.RunAsync(2);
    if (blockAfter == 2)
    {
        Console.WriteLine("checkpointed 2");
        await Task.Delay(Timeout.Infinite);
    }

    total += await step.RunAsync(3);
    return $"{input}:{(patched ? "new" : "old")}:{total}";
});

var collect = dbos.RegisterWorkflow("collect", (WorkflowContext ctx, string input) =>
{
    Note($"collected {input}");
    return Task.FromResult($"collected {input}");
});

var sleeper = dbos.RegisterWorkflow("sleeper", async (WorkflowContext ctx, int seconds) =>
{
    Console.WriteLine("sleeping");
    await ctx.SleepAsync(TimeSpan.FromSeconds(seconds));
    Note("woke");
    return seconds;
});

var mailbox = dbos.RegisterWorkflow("mailbox", async (WorkflowContext ctx, int count) =>
{
    var received = new List<string?>();
    for (var i = 1; i <= count; i++)
    {
        var message = await ctx.RecvAsync<string>(timeout: TimeSpan.FromSeconds(60));
        received.Add(message);
        Note($"received {message}");
        if (i == blockAfter)
        {
            Console.WriteLine($"checkpointed {i}");
            await Task.Delay(Timeout.Infinite);
        }
    }

    return string.Join("+", received);
});

// Concurrency inside a workflow. Even-numbered fan-out steps and race step 0 wait for the gate file; each notes when it finished.
var gate = Environment.GetEnvironmentVariable("DBOS_TEST_GATE");
async Task WaitForGateAsync(CancellationToken ct)
{
    while (gate is not null && !File.Exists(gate))
    {
        await Task.Delay(50, ct);
    }
}

var fanStep = dbos.RegisterStep("fan-step", async (int i, CancellationToken ct) =>
{
    if (i % 2 == 0)
    {
        await WaitForGateAsync(ct);
    }

    Note($"fan{i}");
    return i * 10;
});
var fanChild = dbos.RegisterWorkflow("fan-child", async (WorkflowContext ctx, int i) => await fanStep.RunAsync(i));

// Two steps and two child workflows run together; 1 and 3 finish at once, 2 and 4 wait for the gate.
var fanOut = dbos.RegisterWorkflow("fan-out", async (WorkflowContext ctx, string input) =>
{
    var quick1 = fanStep.RunAsync(1);
    var gated2 = fanStep.RunAsync(2);
    var quick3 = fanChild.RunAsync(3);
    var gated4 = fanChild.RunAsync(4);
    await Task.WhenAll(quick1, quick3);
    Console.WriteLine("quick recorded");
    var results = await Task.WhenAll(quick1, gated2, quick3, gated4);
    return $"{input}:{results.Sum()}";
});

var raceStep = dbos.RegisterStep("race-step", async (int i, CancellationToken ct) =>
{
    if (i == 0)
    {
        await WaitForGateAsync(ct);
    }

    Note($"race{i}");
    return i;
});

// Two branches raced with WhenAnyAsync; the workflow's next step depends on the winner.
var firstWins = dbos.RegisterWorkflow("first-wins", async (WorkflowContext ctx, string input) =>
{
    var branch0 = raceStep.RunAsync(0);
    var branch1 = raceStep.RunAsync(1);
    var winner = await ctx.WhenAnyAsync([branch0, branch1]);
    Console.WriteLine($"winner {winner}");
    await Task.WhenAll(branch0, branch1);
    if (blockAfter == 1)
    {
        Console.WriteLine("checkpointed 1");
        await Task.Delay(Timeout.Infinite);
    }

    await step.RunAsync(winner == 0 ? 5 : 6);
    return $"{input}:winner{winner}";
});

// Transactions in the application database, one per flavour: ADO.NET datasource, EF Core datasource, legacy registration.
SqlDatasource? adoDatasource = null;
EfDatasource<ShopContext>? efDatasource = null;
Transaction<string, string>? legacyInsert = null;
if (appUrl is not null)
{
    adoDatasource = await SqlDatasource.CreateAsync(appUrl);
    efDatasource = await EfDatasource<ShopContext>.CreateAsync(appUrl, ShopContext.On);
    legacyInsert = dbos.RegisterTransaction("legacy-insert", async (TransactionContext tx, string orderId, CancellationToken _) =>
    {
        Note("tx legacy");
        await tx.ExecuteAsync("INSERT INTO orders (id, item, quantity) VALUES ($1, 'legacy', 1)", orderId);
        return orderId + "/legacy";
    });
}

var txOrder = dbos.RegisterWorkflow("tx-order", async (WorkflowContext ctx, string input) =>
{
    var (orderId, flavour) = (input.Split(':')[0], input.Split(':')[1]);
    var recorded = flavour switch
    {
        "ado" => await adoDatasource!.RunTransactionAsync("ado-insert", async (tx, _) =>
        {
            Note("tx ado");
            await tx.ExecuteAsync("INSERT INTO orders (id, item, quantity) VALUES ($1, 'ado', 1)", orderId);
            return orderId + "/ado";
        }),
        "ef" => await efDatasource!.RunTransactionAsync("ef-insert", (shop, _) =>
        {
            Note("tx ef");
            shop.Orders.Add(new OrderRow { Id = orderId, Item = "ef", Quantity = 1 });
            return Task.FromResult(orderId + "/ef");
        }),
        _ => await legacyInsert!.RunAsync(orderId),
    };
    if (blockAfter == 1)
    {
        Console.WriteLine("checkpointed 1");
        await Task.Delay(Timeout.Infinite);
    }

    await step.RunAsync(2);
    return recorded;
});

// Queues for the multi-process tests. Every queued task records when it ran, by which executor, in the ledger.
dbos.RegisterQueue("global2", new QueueOptions { Concurrency = 2, PollingInterval = TimeSpan.FromMilliseconds(100) });
dbos.RegisterQueue("perworker1", new QueueOptions { WorkerConcurrency = 1, PollingInterval = TimeSpan.FromMilliseconds(100) });
dbos.RegisterQueue("rated", new QueueOptions { RateLimit = new RateLimit(5, TimeSpan.FromSeconds(2)), PollingInterval = TimeSpan.FromMilliseconds(100) });
dbos.RegisterQueue("own", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(100) });
var executor = Environment.GetEnvironmentVariable("DBOS__VMID") ?? "local";
var work = dbos.RegisterStep("work", async (int milliseconds, CancellationToken ct) =>
{
    var id = DbosApp.CurrentWorkflowId;
    Note($"start {id} {executor}");
    await Task.Delay(milliseconds, ct);
    Note($"end {id} {executor}");
    return milliseconds;
});
var queuedTask = dbos.RegisterWorkflow("queued-task", async (WorkflowContext ctx, int milliseconds) => await work.RunAsync(milliseconds));

// A schedule ticking every second, fired by every worker that serves it; each tick's step notes which worker ran it.
var tick = dbos.RegisterStep("tick", (DateTimeOffset at, CancellationToken _) =>
{
    Note($"tick {at.UtcDateTime:HH:mm:ss} {executor}");
    return Task.FromResult(0);
});
if (Environment.GetEnvironmentVariable("DBOS_TEST_TICKER") == "1")
{
    dbos.RegisterScheduledWorkflow("ticker", "* * * * * *", async (WorkflowContext ctx, DateTimeOffset at) => await tick.RunAsync(at));
}
else
{
    dbos.RegisterWorkflow("ticker", async (WorkflowContext ctx, DateTimeOffset at) => await tick.RunAsync(at));
}

if (Environment.GetEnvironmentVariable("DBOS_TEST_GO_FILE") is { Length: > 0 } goFile)
{
    // Open one connection first, so the launch at the agreed moment is not slowed by loading and compiling Npgsql.
    if (config.SystemDatabaseUrl is { } warmUrl && Uri.TryCreate(warmUrl, UriKind.Absolute, out var server) && server.Scheme.StartsWith("postgres", StringComparison.Ordinal))
    {
        var user = server.UserInfo.Split(':');
        var warm = new Npgsql.NpgsqlConnectionStringBuilder
        {
            Host = server.Host,
            Port = server.Port > 0 ? server.Port : 5432,
            Username = Uri.UnescapeDataString(user[0]),
            Password = user.Length > 1 ? Uri.UnescapeDataString(user[1]) : null,
            Database = "postgres",
        };
        await using var connection = new Npgsql.NpgsqlConnection(warm.ConnectionString);
        await connection.OpenAsync();
        await using var ping = new Npgsql.NpgsqlCommand("SELECT 1", connection);
        await ping.ExecuteScalarAsync();
    }

    Console.WriteLine("ready");
    long startAt;
    while (!File.Exists(goFile) || !long.TryParse(File.ReadAllText(goFile), out startAt))
    {
        await Task.Delay(5);
    }

    startAt += long.TryParse(Environment.GetEnvironmentVariable("DBOS_TEST_START_DELAY_MS"), out var delay) ? delay : 0;
    var wait = DateTimeOffset.FromUnixTimeMilliseconds(startAt) - DateTimeOffset.UtcNow;
    if (wait > TimeSpan.Zero)
    {
        await Task.Delay(wait);
    }

    Console.WriteLine($"launching {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}");
}

await dbos.LaunchAsync();
Console.WriteLine($"database {dbos.SystemDatabase}");

try
{
    switch (command)
    {
        case "run":
            {
                var (name, id) = (args[1], args[2]);
                WorkflowHandle handle = name switch
                {
                    "four-steps" => await fourSteps.StartAsync("demo", new StartOptions { WorkflowId = id }),
                    "crash-always" => await crashing.StartAsync("crash", new StartOptions { WorkflowId = id }),
                    "tx-order" => await txOrder.StartAsync(args[3], new StartOptions { WorkflowId = id }),
                    "mailbox" => await mailbox.StartAsync(int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture), new StartOptions { WorkflowId = id }),
                    "patchable" => await patchable.StartAsync("p", new StartOptions { WorkflowId = id }),
                    "fan-out" => await fanOut.StartAsync("fan", new StartOptions { WorkflowId = id }),
                    "first-wins" => await firstWins.StartAsync("race", new StartOptions { WorkflowId = id }),
                    "sleeper" => await sleeper.StartAsync(int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture), new StartOptions { WorkflowId = id }),
                    _ => throw new ArgumentException($"unknown workflow {name}"),
                };
                var result = await handle.GetResultAsync<JsonElement>();
                Console.WriteLine($"result {result.GetRawText()}");
                break;
            }

        case "await":
            {
                var handle = await dbos.RetrieveWorkflowAsync<JsonElement>(args[1]);
                var result = await handle.GetResultAsync();
                Console.WriteLine($"result {result.GetRawText()}");
                break;
            }

        case "resume":
            {
                var handle = await dbos.ResumeWorkflowAsync(args[1]);
                var result = await handle.GetResultAsync<JsonElement>();
                Console.WriteLine($"result {result.GetRawText()}");
                break;
            }

        case "debounce":
            {
                var debouncer = new Debouncer<string, string>(collect);
                var count = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
                string? debounced = null;
                for (var i = 1; i <= count; i++)
                {
                    // A period of 10 s: the test kills this process once it has read the line below, and under load reading
                    // it has taken longer than a 3 s period, which then ran the workflow before the kill.
                    debounced = (await debouncer.DebounceAsync("key", TimeSpan.FromSeconds(10), $"{args[1]}-{i}")).WorkflowId;
                }

                Console.WriteLine($"debounced {debounced}");
                await Task.Delay(Timeout.Infinite);
                break;
            }

        case "enqueue-own":
            {
                // Enqueue on a queue this process serves (claimed in the insert when the queue is idle), say so, and keep running.
                await queuedTask.StartAsync(int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture), new StartOptions { Queue = "own", WorkflowId = args[1] });
                Console.WriteLine($"enqueued {args[1]}");
                await Task.Delay(TimeSpan.FromMinutes(5));
                break;
            }

        case "serve":
            Console.WriteLine("serving");
            await Task.Delay(TimeSpan.FromMinutes(5));
            break;

        case "which-db":
            Console.WriteLine($"result {JsonSerializer.Serialize(await fourSteps.RunAsync("which-db"))}");
            break;
    }
}
catch (Exception ex) when (ex is DbosException or OperationCanceledException)
{
    Console.WriteLine($"error {ex.GetType().Name}: {ex.Message}");
    return 3;
}

return 0;

/// <summary>The application's orders, through Entity Framework Core.</summary>
public sealed class ShopContext(DbContextOptions<ShopContext> options) : DbContext(options)
{
    public DbSet<OrderRow> Orders => Set<OrderRow>();

    public static ShopContext On(DbConnection connection) => new(connection is Npgsql.NpgsqlConnection
        ? new DbContextOptionsBuilder<ShopContext>().UseNpgsql(connection).Options
        : new DbContextOptionsBuilder<ShopContext>().UseSqlite(connection).Options);

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<OrderRow>(order =>
        {
            order.ToTable("orders").HasKey(o => o.Id);
            order.Property(o => o.Id).HasColumnName("id");
            order.Property(o => o.Item).HasColumnName("item");
            order.Property(o => o.Quantity).HasColumnName("quantity");
        });
}

/// <summary>A row of the orders table.</summary>
public sealed class OrderRow
{
    public string Id { get; set; } = string.Empty;

    public string Item { get; set; } = string.Empty;

    public int Quantity { get; set; }
}

/// <summary>Prints what DBOS logs as "log &lt;event id&gt; &lt;message&gt;" lines, for tests that check what a process logged.</summary>
public sealed class PrintingLoggerFactory : Microsoft.Extensions.Logging.ILoggerFactory
{
    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Logger();

    public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class Logger : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Console.WriteLine($"log {eventId.Id} {formatter(state, exception)}");
    }
}
