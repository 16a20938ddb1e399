using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>Queues registered, changed and deleted while the application runs, through the shared queues table.</summary>
public class RuntimeQueueTests
{
    [Theory, BothBackends]
    public async Task A_queue_registered_after_launch_is_served_updated_and_when_deleted_its_work_waits(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var echo = dbos.RegisterWorkflow("echo", (WorkflowContext ctx, string input) => Task.FromResult(input));
        await dbos.LaunchAsync();

        // The synchronous registration still belongs before launch, and says what to use instead.
        var late = Assert.Throws<InvalidOperationException>(() => dbos.RegisterQueue("late"));
        Assert.Contains("RegisterQueueAsync", late.Message, StringComparison.Ordinal);

        var queue = await dbos.RegisterQueueAsync("runtime", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var first = await echo.StartAsync("a", new StartOptions { Queue = queue });
        Assert.Equal("a", await first.GetResultAsync());
        Assert.Equal(1L, await db.CountAsync("SELECT count(*) FROM {queues} WHERE name = 'runtime'"));
        Assert.DoesNotContain(logs.Messages, m => m.Id.Id == 120);

        // Updated limits reach the table (and every process serving the queue).
        await dbos.UpdateQueueAsync("runtime", new QueueOptions { Concurrency = 3, PollingInterval = TimeSpan.FromMilliseconds(50) });
        Assert.Equal(3L, await db.CountAsync("SELECT concurrency FROM {queues} WHERE name = 'runtime'"));
        Assert.Equal("b", await (await echo.StartAsync("b", new StartOptions { Queue = queue })).GetResultAsync());

        // Deleted: the row goes, work enqueued on it waits, and registering it again runs that work.
        Assert.True(await dbos.DeleteQueueAsync("runtime"));
        Assert.Equal(0L, await db.CountAsync("SELECT count(*) FROM {queues} WHERE name = 'runtime'"));
        Assert.Contains(logs.Messages, m => m.Id.Id == 121);
        var waiting = await echo.StartAsync("c", new StartOptions { Queue = "runtime", WorkflowId = "waits" });
        Assert.Contains(logs.Messages, m => m.Id.Id == 120 && m.Message.Contains("'runtime'", StringComparison.Ordinal));
        await Task.Delay(500);
        Assert.Equal(WorkflowState.Enqueued, (await waiting.GetStatusAsync())!.State);

        await dbos.RegisterQueueAsync("runtime", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        Assert.Equal("c", await waiting.GetResultAsync());
    }

    [Theory, BothBackends]
    public async Task A_queue_deleted_by_another_process_stops_being_served_here(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("shared", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var echo = dbos.RegisterWorkflow("echo", (WorkflowContext ctx, string input) => Task.FromResult(input));
        await dbos.LaunchAsync();
        Assert.Equal("x", await (await echo.StartAsync("x", new StartOptions { Queue = "shared" })).GetResultAsync());

        // Another process (here: SQL, as any DBOS implementation's deleteQueue) deletes the row.
        await db.ExecuteAsync("DELETE FROM {queues} WHERE name = 'shared'");
        var gone = DateTime.UtcNow.AddSeconds(30);
        while (dbos.Engine.Dispatcher.Find("shared") is not null)
        {
            Assert.True(DateTime.UtcNow < gone, "the deleted queue was still served after 30 s");
            await Task.Delay(100);
        }

        var waiting = await echo.StartAsync("y", new StartOptions { Queue = "shared" });
        await Task.Delay(500);
        Assert.Equal(WorkflowState.Enqueued, (await waiting.GetStatusAsync())!.State);
    }

    [Theory, BothBackends]
    public async Task A_process_serves_a_queue_a_client_registers_after_launch_applies_its_updates_and_stops_when_the_client_deletes_it(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var running = 0;
        var mostAtOnce = 0;
        dbos.RegisterWorkflow("hold", async (WorkflowContext ctx, string input) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref mostAtOnce, now);
            await Task.Delay(100);
            Interlocked.Decrement(ref running);
            return input;
        });
        await dbos.LaunchAsync();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        await using var foreign = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "other-app" });

        // Another application's queue is not this process's to serve; an unowned one (a client without an application) is.
        await foreign.RegisterQueueAsync("theirs");
        await client.RegisterQueueAsync("remote", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        Assert.Contains(await client.ListQueuesAsync(), q => q.Name == "remote");
        var first = await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "hold", QueueName = "remote" }, "a");
        Assert.Equal("a", await first.GetResultAsync());
        Assert.Contains(logs.Messages, m => m.Id.Id == 122 && m.Message.Contains("'remote'", StringComparison.Ordinal));
        Assert.Null(dbos.Engine.Dispatcher.Find("theirs"));
        Assert.DoesNotContain(logs.Messages, m => m.Id.Id == 122 && m.Message.Contains("'theirs'", StringComparison.Ordinal));

        // The client's update reaches the serving process: one at a time from then on.
        await client.UpdateQueueAsync("remote", new QueueOptions { WorkerConcurrency = 1, PollingInterval = TimeSpan.FromMilliseconds(50) });
        Assert.Equal(1, (await client.ListQueuesAsync()).Single(q => q.Name == "remote").Options.WorkerConcurrency);
        await WaitUntilAsync(() => dbos.Engine.Dispatcher.Find("remote")?.Record.WorkerConcurrency == 1, "the update was not applied");
        var handles = new List<WorkflowHandle<string>>();
        for (var i = 0; i < 4; i++)
        {
            handles.Add(await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "hold", QueueName = "remote" }, $"w{i}"));
        }

        foreach (var handle in handles)
        {
            await handle.GetResultAsync();
        }

        Assert.Equal(1, mostAtOnce);

        // An update of a queue the table does not have is refused.
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.UpdateQueueAsync("missing", new QueueOptions()));

        // The client's delete stops it here; its work waits.
        Assert.True(await client.DeleteQueueAsync("remote"));
        await WaitUntilAsync(() => dbos.Engine.Dispatcher.Find("remote") is null, "the deleted queue was still served");
        var waiting = await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "hold", QueueName = "remote" }, "z");
        await Task.Delay(500);
        Assert.Equal(WorkflowState.Enqueued, (await waiting.GetStatusAsync())!.State);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure + " after 30 s");
            await Task.Delay(50);
        }
    }
}
