// A child process for crash tests. The parent test starts it, watches its output, kills it with Process.Kill,
// and starts it again on the same database. Every step appends a line to a ledger file, so the parent can count how
// many times each step really ran across processes.
//
// Usage: Dbos.Tests.Worker <command> [workflowId]
//   run <workflow> <id>   launch (recovering pending work), start <workflow> with ID <id>, print its result
//   await <id>            launch (recovering pending work), wait for workflow <id>, print its result
//   resume <id>           launch, resume workflow <id>, print its result
//   which-db              launch with the default configuration and print the system database in use
//   serve                 launch and run queued workflows until killed (queues: global2, perworker1, rated, partitioned)
// Environment:
//   DBOS_TEST_URL, DBOS_TEST_SCHEMA   the system database (unset: DBOS_SYSTEM_DATABASE_URL or the default)
//   DBOS_TEST_LEDGER                  the file each step appends to
//   DBOS_TEST_BLOCK_AFTER=N           the four-step workflow stops (forever) right after step N is checkpointed
//   DBOS_TEST_NO_CRASH=1              the crashing workflow does not crash
using System.Text.Json;
using Dbos;

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

var config = new DbosConfig { Name = "crash-worker", PollingInterval = TimeSpan.FromMilliseconds(100) };
if (Environment.GetEnvironmentVariable("DBOS_TEST_URL") is { Length: > 0 } url)
{
    config.SystemDatabaseUrl = url;
}

if (Environment.GetEnvironmentVariable("DBOS_TEST_SCHEMA") is { Length: > 0 } schema)
{
    config.SystemDatabaseSchema = schema;
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

// Queues for the multi-process tests. Every queued task records when it ran, by which executor, in the ledger.
dbos.RegisterQueue("global2", new QueueOptions { Concurrency = 2, PollingInterval = TimeSpan.FromMilliseconds(100) });
dbos.RegisterQueue("perworker1", new QueueOptions { WorkerConcurrency = 1, PollingInterval = TimeSpan.FromMilliseconds(100) });
dbos.RegisterQueue("rated", new QueueOptions { RateLimit = new RateLimit(5, TimeSpan.FromSeconds(2)), PollingInterval = TimeSpan.FromMilliseconds(100) });
var executor = Environment.GetEnvironmentVariable("DBOS__VMID") ?? "local";
var work = dbos.RegisterStep("work", async (int milliseconds, CancellationToken ct) =>
{
    var id = DbosApp.CurrentWorkflowId;
    Note($"start {id} {executor}");
    await Task.Delay(milliseconds, ct);
    Note($"end {id} {executor}");
    return milliseconds;
});
dbos.RegisterWorkflow("queued-task", async (WorkflowContext ctx, int milliseconds) => await work.RunAsync(milliseconds));

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
                    "mailbox" => await mailbox.StartAsync(int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture), new StartOptions { WorkflowId = id }),
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
