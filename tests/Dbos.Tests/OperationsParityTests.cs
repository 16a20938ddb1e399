using System.Text.Json;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Operations other DBOS implementations offer: the return-existing deduplication policy, sends to many workflows,
/// reading every event of a workflow, and misuse refused early (queues given as objects, duplicate steps, NaN inputs,
/// starts on queues nobody registered). Both backends.
/// </summary>
public class OperationsParityTests
{
    private static DbosClient Client(TestDatabase db) =>
        DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, PollingInterval = TimeSpan.FromMilliseconds(50) });

    [Theory, BothBackends]
    public async Task Return_existing_gives_the_holder_of_a_deduplication_id_instead_of_throwing(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = dbos.RegisterQueue("dedup", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var task = dbos.RegisterWorkflow("task", async (WorkflowContext ctx, string input) =>
        {
            await gate.Task.WaitAsync(ctx.CancellationToken);
            return input.ToUpperInvariant();
        });
        await dbos.LaunchAsync();

        var first = await task.StartAsync("first", new StartOptions { Queue = queue, DeduplicationId = "order-1", WorkflowId = "holder" });

        // The default still throws.
        await Assert.ThrowsAsync<WorkflowDeduplicatedException>(() => task.StartAsync("second", new StartOptions { Queue = queue, DeduplicationId = "order-1" }));

        var again = await task.StartAsync("second", new StartOptions { Queue = queue, DeduplicationId = "order-1", WorkflowId = "would-be", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting });
        Assert.Equal("holder", again.WorkflowId);

        await using var client = Client(db);
        var fromClient = await client.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "task", QueueName = queue, DeduplicationId = "order-1", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting }, "third");
        Assert.Equal("holder", fromClient.WorkflowId);
        var fromApp = await dbos.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "task", QueueName = queue, DeduplicationId = "order-1", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting }, "fourth");
        Assert.Equal("holder", fromApp.WorkflowId);

        gate.SetResult();
        Assert.Equal("FIRST", await first.GetResultAsync());
        Assert.Equal("FIRST", await again.GetResultAsync());
        Assert.Equal("FIRST", await fromClient.GetResultAsync());
        Assert.Null(await dbos.GetWorkflowStatusAsync("would-be"));
        Assert.Single(await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = "task" }));

        // Once the holder has finished, the ID is free: return-existing enqueues anew.
        var fresh = await task.StartAsync("fifth", new StartOptions { Queue = queue, DeduplicationId = "order-1", WorkflowId = "fresh", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting });
        Assert.Equal("fresh", fresh.WorkflowId);
        Assert.Equal("FIFTH", await fresh.GetResultAsync());
    }

    [Theory, BothBackends]
    public async Task Return_existing_inside_a_workflow_records_the_holder_as_its_child(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = dbos.RegisterQueue("dedup", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var task = dbos.RegisterWorkflow("task", async (WorkflowContext ctx, string input) =>
        {
            await gate.Task.WaitAsync(ctx.CancellationToken);
            return input;
        });
        var parent = dbos.RegisterWorkflow("parent", async (WorkflowContext ctx, string input) =>
        {
            var child = await task.StartAsync(input, new StartOptions { Queue = queue, DeduplicationId = "key", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting });
            return child.WorkflowId;
        });
        await dbos.LaunchAsync();

        await task.StartAsync("held", new StartOptions { Queue = queue, DeduplicationId = "key", WorkflowId = "holder" });
        var childId = await parent.RunAsync("mine", new StartOptions { WorkflowId = "parent-1" });
        Assert.Equal("holder", childId);
        var steps = await dbos.ListWorkflowStepsAsync("parent-1");
        var start = Assert.Single(steps);
        Assert.Equal("task", start.Name);
        Assert.Equal("holder", start.ChildWorkflowId);

        Assert.Throws<ArgumentException>(() => new StartOptions { Queue = "dedup", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting }.Validate());
        await using var client = Client(db);
        await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "task", QueueName = "dedup", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting }, "x"));
        gate.SetResult();
    }

    [Theory, BothBackends]
    public async Task Send_many_delivers_once_to_each_destination_and_all_or_nothing(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var receiver = dbos.RegisterWorkflow("receiver", async (WorkflowContext ctx, int count) =>
        {
            var got = new List<string>();
            for (var i = 0; i < count; i++)
            {
                got.Add((await ctx.RecvAsync<string>("news", TimeSpan.FromSeconds(30)))!);
            }

            // Nothing more arrives: a retried send with the same key delivered nothing twice.
            got.Add(await ctx.RecvAsync<string>("news", TimeSpan.FromMilliseconds(300)) ?? "none");
            return string.Join(",", got);
        });
        var broadcaster = dbos.RegisterWorkflow("broadcaster", async (WorkflowContext ctx, string[] destinations) =>
        {
            await ctx.SendManyAsync(destinations, "from-workflow", "news");
            return destinations.Length;
        });
        await dbos.LaunchAsync();

        var a = await receiver.StartAsync(3, new StartOptions { WorkflowId = "rx-a" });
        var b = await receiver.StartAsync(3, new StartOptions { WorkflowId = "rx-b" });
        await using var client = Client(db);

        // An unknown destination: refused, naming it, and no destination got anything.
        var missing = await Assert.ThrowsAsync<WorkflowNotFoundException>(() => client.SendManyAsync(["rx-a", "nobody", "rx-b"], "lost", "news"));
        Assert.Contains("'nobody'", missing.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => client.SendManyAsync(["rx-a", "rx-a"], "twice", "news"));

        await client.SendManyAsync(["rx-a", "rx-b"], "hello", "news", idempotencyKey: "k1");
        await client.SendManyAsync(["rx-a", "rx-b"], "hello", "news", idempotencyKey: "k1");
        await dbos.SendManyAsync(["rx-a", "rx-b"], "again", "news", idempotencyKey: "k2");
        Assert.Equal(2, await broadcaster.RunAsync(["rx-a", "rx-b"], new StartOptions { WorkflowId = "bc" }));

        Assert.Equal("hello,again,from-workflow,none", await a.GetResultAsync());
        Assert.Equal("hello,again,from-workflow,none", await b.GetResultAsync());
        var step = Assert.Single(await dbos.ListWorkflowStepsAsync("bc"));
        Assert.Equal("DBOS.send_bulk", step.Name);
    }

    [Theory, BothBackends]
    public async Task Get_all_events_reads_the_latest_value_of_every_key(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var setter = dbos.RegisterWorkflow("setter", async (WorkflowContext ctx, string input) =>
        {
            await ctx.SetEventAsync("status", "started");
            await ctx.SetEventAsync("count", 1);
            await ctx.SetEventAsync("status", "done");
            return input;
        });
        var reader = dbos.RegisterWorkflow("reader", async (WorkflowContext ctx, string target) =>
        {
            var events = await ctx.GetAllEventsAsync<JsonElement>(target);
            return string.Join(";", events.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key}={e.Value}"));
        });
        await dbos.LaunchAsync();

        await setter.RunAsync("x", new StartOptions { WorkflowId = "setter-1" });
        await using var client = Client(db);
        var all = await client.GetAllEventsAsync<JsonElement>("setter-1");
        Assert.Equal(2, all.Count);
        Assert.Equal("done", all["status"].GetString());
        Assert.Equal(1, all["count"].GetInt32());
        var fromApp = await dbos.GetAllEventsAsync<object>("setter-1");
        Assert.Equal(2, fromApp.Count);
        Assert.Empty(await client.GetAllEventsAsync<string>("no-such-workflow"));

        Assert.Equal("count=1;status=done", await reader.RunAsync("setter-1", new StartOptions { WorkflowId = "reader-1" }));
        var step = Assert.Single(await dbos.ListWorkflowStepsAsync("reader-1"));
        Assert.Equal("DBOS.get_events", step.Name);
    }

    [Theory, BothBackends]
    public async Task Misuse_is_caught_where_it_happens(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var queue = dbos.RegisterQueue("known", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var echo = dbos.RegisterWorkflow("echo", (WorkflowContext ctx, double value) => Task.FromResult(value));
        dbos.RegisterStep("fetch", () => 1);

        // A second step of the same name is refused, naming it.
        var duplicate = Assert.Throws<InvalidOperationException>(() => dbos.RegisterStep("fetch", () => 2));
        Assert.Contains("'fetch'", duplicate.Message, StringComparison.Ordinal);
        await dbos.LaunchAsync();

        // A Queue object is a queue name.
        var handle = await echo.StartAsync(1.5, new StartOptions { Queue = queue });
        Assert.Equal(1.5, await handle.GetResultAsync());
        Assert.Equal("known", (await handle.GetStatusAsync())!.QueueName);

        // NaN is called NaN (System.Text.Json's own message speaks of infinity).
        var nan = await Assert.ThrowsAsync<DbosSerializationException>(() => echo.RunAsync(double.NaN));
        Assert.Contains("NaN", nan.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("infinity", nan.Message, StringComparison.OrdinalIgnoreCase);
        var infinite = await Assert.ThrowsAsync<DbosSerializationException>(() => echo.RunAsync(double.PositiveInfinity));
        Assert.Contains("infinite", infinite.Message, StringComparison.Ordinal);

        // A start on a queue nobody registered warns once per name, listing the registered ones.
        await echo.StartAsync(2, new StartOptions { Queue = "typo" });
        await echo.StartAsync(3, new StartOptions { Queue = "typo" });
        await echo.StartAsync(4, new StartOptions { Queue = queue });
        var warnings = logs.Messages.Where(m => m.Id.Id == 120).ToList();
        var warning = Assert.Single(warnings);
        Assert.Contains("'typo'", warning.Message, StringComparison.Ordinal);
        Assert.Contains("known", warning.Message, StringComparison.Ordinal);

        // A queue another application registered (in the queues table) is not unknown.
        await using var other = DbosApp.Create(db.Config("other-app"));
        other.RegisterQueue("elsewhere");
        await other.LaunchAsync();
        await echo.StartAsync(5, new StartOptions { Queue = "elsewhere" });
        Assert.Single(logs.Messages, m => m.Id.Id == 120);
    }
}
