using System.Globalization;
using System.Text;
using Dbos;

/// <summary>
/// The workload of the process-crash harness (command <c>chaos</c>): many parent workflows, each with steps, a child
/// workflow it exchanges messages with, a durable sleep and a workflow on a queue. The parent test kills this process at
/// random moments and starts it again; every start launches (recovering what was pending), starts the parents again (a
/// no-op for those that exist) and waits for all of them, printing <c>all-done</c> when every one has finished.
/// <para>
/// Every step execution appends <c>exec workflowId stepName incarnation marker ticks</c> to this incarnation's ledger file,
/// flushed to disk, midway through its work; the step's output carries the marker, so the test can tell which execution's
/// output was recorded and whether the step ran again afterwards.
/// </para>
/// Environment: DBOS_CHAOS_WORKFLOWS (how many parents), DBOS_CHAOS_INCARNATION (this start's number), DBOS_TEST_LEDGER
/// (this incarnation's ledger file).
/// </summary>
public static class ChaosWorkload
{
    public const string QueueName = "chaos-queue";

    /// <summary>The output a parent must end with (the test computes it the same way).</summary>
    public static string ExpectedOutput(int i) =>
        string.Create(CultureInfo.InvariantCulture, $"p{i}:first{i}:pong{i}:child{i}-{i * 2}:queued{i * 3}:last{i}");

    public static async Task<int> RunAsync(DbosConfig config)
    {
        var count = int.Parse(Environment.GetEnvironmentVariable("DBOS_CHAOS_WORKFLOWS") ?? "60", CultureInfo.InvariantCulture);
        var incarnation = Environment.GetEnvironmentVariable("DBOS_CHAOS_INCARNATION") ?? "0";
        var ledgerPath = Environment.GetEnvironmentVariable("DBOS_TEST_LEDGER") ?? throw new InvalidOperationException("DBOS_TEST_LEDGER is not set");
        await using var ledger = new FileStream(ledgerPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        var ledgerLock = new object();

        // A step that does some work, records its execution durably, and returns its value with this execution's marker.
        async Task<string> Execute(string stepName, string value, int workMs, CancellationToken ct)
        {
            // Half the work before the side effect, half after: a kill in the second half leaves a recorded side effect
            // whose step output was never checkpointed, so the step must run again.
            await Task.Delay(workMs / 2, ct);
            var marker = Guid.NewGuid().ToString("N");
            // The time orders executions of several processes that run at once (the clock is the machine's, shared by all).
            var at = TimeProvider.System.GetUtcNow().UtcTicks;
            var line = Encoding.UTF8.GetBytes($"exec {DbosApp.CurrentWorkflowId} {stepName} {incarnation} {marker} {at}\n");
            lock (ledgerLock)
            {
                ledger.Write(line);
                ledger.Flush(flushToDisk: true);
            }

            await Task.Delay(workMs - (workMs / 2), ct);
            return value + "#" + marker;
        }

        static string Value(string stepOutput) => stepOutput[..stepOutput.IndexOf('#', StringComparison.Ordinal)];

        config.PollingInterval = TimeSpan.FromMilliseconds(100);
        await using var dbos = DbosApp.Create(config);
        dbos.RegisterQueue(QueueName, new QueueOptions { Concurrency = 2, PollingInterval = TimeSpan.FromMilliseconds(100) });

        var queued = dbos.RegisterWorkflow("chaos-queued", async (WorkflowContext ctx, int i) =>
            Value(await ctx.RunStepAsync("q-work", ct => Execute("q-work", $"queued{i * 3}", 300, ct))));

        // The child receives a ping from its parent, answers with a pong, and returns.
        var child = dbos.RegisterWorkflow("chaos-child", async (WorkflowContext ctx, string parent) =>
        {
            var i = int.Parse(parent["chaos-".Length..], CultureInfo.InvariantCulture);
            var first = Value(await ctx.RunStepAsync("c-first", ct => Execute("c-first", $"child{i}", 20, ct)));
            var ping = await ctx.RecvAsync<string>("ping", TimeSpan.FromMinutes(10));
            if (ping != $"ping{i}")
            {
                throw new InvalidOperationException($"child of {parent} received '{ping}'");
            }

            await ctx.SendAsync(parent, $"pong{i}", "pong");
            var second = Value(await ctx.RunStepAsync("c-last", ct => Execute("c-last", (i * 2).ToString(CultureInfo.InvariantCulture), 20, ct)));
            return $"{first}-{second}";
        });

        var parentWorkflow = dbos.RegisterWorkflow("chaos-parent", async (WorkflowContext ctx, int i) =>
        {
            var first = Value(await ctx.RunStepAsync("p-first", ct => Execute("p-first", $"first{i}", 50, ct)));
            var childHandle = await child.StartAsync(ctx.WorkflowId);
            var queuedHandle = await queued.StartAsync(i, new StartOptions { Queue = QueueName });
            await ctx.SendAsync(childHandle.WorkflowId, $"ping{i}", "ping");
            await ctx.SleepAsync(TimeSpan.FromMilliseconds(300 + (i % 7 * 150)));
            var pong = await ctx.RecvAsync<string>("pong", TimeSpan.FromMinutes(10));
            var childResult = await childHandle.GetResultAsync();
            var queuedResult = await queuedHandle.GetResultAsync();
            var last = Value(await ctx.RunStepAsync("p-last", ct => Execute("p-last", $"last{i}", 50, ct)));
            return $"p{i}:{first}:{pong}:{childResult}:{queuedResult}:{last}";
        });

        await dbos.LaunchAsync();
        Console.WriteLine($"launched {incarnation}");
        var handles = new List<WorkflowHandle<string>>();
        for (var i = 0; i < count; i++)
        {
            handles.Add(await parentWorkflow.StartAsync(i, new StartOptions { WorkflowId = string.Create(CultureInfo.InvariantCulture, $"chaos-{i}") }));
        }

        Console.WriteLine("started");
        var results = await Task.WhenAll(handles.Select(h => h.GetResultAsync()));
        for (var i = 0; i < count; i++)
        {
            if (results[i] != ExpectedOutput(i))
            {
                Console.WriteLine($"wrong chaos-{i}: {results[i]}");
                return 4;
            }
        }

        Console.WriteLine("all-done");
        return 0;
    }
}
