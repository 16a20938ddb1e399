using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// On Postgres, a start on a queue this process serves, whose limits are all its own, claims the workflow in the
/// statement that enqueues it when nothing waits on the queue (log event 220): the row must look exactly as a queue's
/// claim leaves it, worker concurrency must hold, and anything shared, delayed or already waiting sends the start the
/// usual way. On SQLite every enqueue goes the usual way, with the same outcome.
/// </summary>
public class OwnEnqueueClaimTests
{
    private const int ClaimedOwnEnqueue = 220;

    private sealed record ClaimedColumns(
        string Status, string? Executor, string? Version, string? Application, long Attempts, bool Owned, bool Started, bool RateLimited, bool HasDeadline, string? Queue);

    private static async Task<ClaimedColumns> ColumnsAsync(TestDatabase db, string workflowId) =>
        (await db.QueryAsync(
            "SELECT status, executor_id, application_version, application_name, recovery_attempts, owner_xid IS NOT NULL, started_at_epoch_ms IS NOT NULL, " +
            $"rate_limited, workflow_deadline_epoch_ms IS NOT NULL, queue_name FROM {{workflow_status}} WHERE workflow_uuid = '{workflowId}'",
            r => new ClaimedColumns(
                r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                Convert.ToInt64(r.GetValue(4), System.Globalization.CultureInfo.InvariantCulture), Convert.ToBoolean(r.GetValue(5), System.Globalization.CultureInfo.InvariantCulture),
                Convert.ToBoolean(r.GetValue(6), System.Globalization.CultureInfo.InvariantCulture), !r.IsDBNull(7) && Convert.ToBoolean(r.GetValue(7), System.Globalization.CultureInfo.InvariantCulture),
                Convert.ToBoolean(r.GetValue(8), System.Globalization.CultureInfo.InvariantCulture), r.IsDBNull(9) ? null : r.GetString(9)))).Single();

    private static bool ClaimedAtInsert(CapturingLoggerFactory logs, string workflowId) =>
        logs.Messages.Any(m => m.Id.Id == ClaimedOwnEnqueue && m.Message.Contains(workflowId, StringComparison.Ordinal));

    [Theory, BothBackends]
    public async Task An_enqueue_claimed_in_its_insert_looks_like_a_row_the_queue_claimed_and_runs_once(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        dbos.RegisterQueue("own", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var runs = 0;
        var step = dbos.RegisterStep("held", async (string input, CancellationToken ct) =>
        {
            Interlocked.Increment(ref runs);
            await gate.Task.WaitAsync(ct);
            return input + "!";
        });
        var held = dbos.RegisterWorkflow("held-workflow", (WorkflowContext ctx, string input) => step.RunAsync(input));
        await dbos.LaunchAsync();

        // The same workflow enqueued by a client: claimed by the queue's dispatcher, the usual way.
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });
        await client.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "held-workflow", QueueName = "own", WorkflowId = "claimed-by-queue", ApplicationVersion = "test-version", Timeout = TimeSpan.FromMinutes(5) }, "a");
        await Eventually.HoldsAsync(async () => (await ColumnsAsync(db, "claimed-by-queue")).Status == "PENDING", "the client's enqueue is claimed");

        // Enqueued here: on Postgres, claimed by its own insert. (The queue is idle again: the first workflow is running, not waiting.)
        var own = await held.StartAsync("b", new StartOptions { Queue = "own", WorkflowId = "claimed-at-insert", Timeout = TimeSpan.FromMinutes(5) });
        Assert.Equal(backend == Backend.Postgres, ClaimedAtInsert(logs, "claimed-at-insert"));
        Assert.False(ClaimedAtInsert(logs, "claimed-by-queue"));
        await Eventually.HoldsAsync(async () => (await ColumnsAsync(db, "claimed-at-insert")).Status == "PENDING", "the start is claimed");

        var byQueue = await ColumnsAsync(db, "claimed-by-queue");
        var atInsert = await ColumnsAsync(db, "claimed-at-insert");
        Assert.Equal(new ClaimedColumns("PENDING", "local", "test-version", "test-app", 1, true, true, false, true, "own"), byQueue);
        Assert.Equal(byQueue, atInsert);

        // Its timeout counts from the claim, as the dispatcher's claim counts it.
        var deadline = (await db.QueryAsync(
            "SELECT workflow_deadline_epoch_ms - started_at_epoch_ms FROM {workflow_status} WHERE workflow_uuid = 'claimed-at-insert'",
            r => Convert.ToInt64(r.GetValue(0), System.Globalization.CultureInfo.InvariantCulture))).Single();
        Assert.InRange(deadline, TimeSpan.FromMinutes(5).TotalMilliseconds - 10_000, TimeSpan.FromMinutes(5).TotalMilliseconds + 10_000);

        gate.SetResult();
        Assert.Equal("b!", await own.GetResultAsync());
        Assert.Equal("a!", await (await dbos.RetrieveWorkflowAsync<string>("claimed-by-queue")).GetResultAsync());
        Assert.Equal(2, runs);
        Assert.Equal(WorkflowState.Success, (await own.GetStatusAsync())!.State);
    }

    [Theory, BothBackends]
    public async Task Enqueues_claimed_in_their_insert_respect_the_worker_concurrency(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        // A dispatcher's claim reserves the free slots while it runs, and a start meanwhile goes the usual way (correctly).
        // So that the first two starts meet no claim in flight, the queue is polled rarely: its loop then runs only when
        // woken (by an enqueue that goes the usual way, or a finished run), and at idle intervals that double from 10 ms.
        dbos.RegisterQueue("two-at-a-time", new QueueOptions { WorkerConcurrency = 2, PollingInterval = TimeSpan.FromSeconds(10) });
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = 0;
        var mostAtOnce = 0;
        var step = dbos.RegisterStep("held", async (int i, CancellationToken ct) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref mostAtOnce, now);
            await gate.Task.WaitAsync(ct);
            Interlocked.Decrement(ref running);
            return i;
        });
        var held = dbos.RegisterWorkflow("held-workflow", (WorkflowContext ctx, int i) => step.RunAsync(i));
        await dbos.LaunchAsync();

        // The idle polls after launch come at 10, 20, 40 … 1,280 ms, the next one 2,560 ms after that: start in the gap.
        await Task.Delay(TimeSpan.FromMilliseconds(2_700));
        var handles = new List<WorkflowHandle<int>>();
        for (var i = 0; i < 6; i++)
        {
            handles.Add(await held.StartAsync(i, new StartOptions { Queue = "two-at-a-time", WorkflowId = $"w{i}" }));
        }

        // On Postgres the first two took the two slots in their inserts; the other four wait for the dispatcher.
        Assert.Equal(backend == Backend.Postgres, ClaimedAtInsert(logs, "w0") && ClaimedAtInsert(logs, "w1"));
        Assert.DoesNotContain(logs.Messages, m => m.Id.Id == ClaimedOwnEnqueue && (m.Message.Contains("w2", StringComparison.Ordinal) || m.Message.Contains("w5", StringComparison.Ordinal)));
        await Task.Delay(300);
        Assert.Equal(2L, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE queue_name = 'two-at-a-time' AND status = 'PENDING'"));
        Assert.Equal(4L, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE queue_name = 'two-at-a-time' AND status = 'ENQUEUED'"));

        // While the others drain, enqueues keep arriving: none may take a third slot.
        gate.SetResult();
        for (var i = 6; i < 20; i++)
        {
            handles.Add(await held.StartAsync(i, new StartOptions { Queue = "two-at-a-time", WorkflowId = $"w{i}" }));
        }

        for (var i = 0; i < handles.Count; i++)
        {
            Assert.Equal(i, await handles[i].GetResultAsync());
        }

        Assert.InRange(mostAtOnce, 1, 2);
        Assert.Equal(0L, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE queue_name = 'two-at-a-time' AND status <> 'SUCCESS'"));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }

    [Theory, BothBackends]
    public async Task Shared_limits_delays_and_waiting_work_send_the_enqueue_the_usual_way(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var fast = TimeSpan.FromMilliseconds(50);
        dbos.RegisterQueue("global", new QueueOptions { Concurrency = 5, PollingInterval = fast });
        dbos.RegisterQueue("rated", new QueueOptions { RateLimit = new RateLimit(100, TimeSpan.FromSeconds(1)), PollingInterval = fast });
        dbos.RegisterQueue("partitioned", new QueueOptions { Partitioned = true, PollingInterval = fast });
        dbos.RegisterQueue("plain", new QueueOptions { PollingInterval = fast });
        var echo = dbos.RegisterWorkflow("echo", (WorkflowContext ctx, string input) => Task.FromResult(input));
        await dbos.LaunchAsync();

        var usual = new List<WorkflowHandle<string>>
        {
            await echo.StartAsync("g", new StartOptions { Queue = "global", WorkflowId = "on-global" }),
            await echo.StartAsync("r", new StartOptions { Queue = "rated", WorkflowId = "on-rated" }),
            await echo.StartAsync("p", new StartOptions { Queue = "partitioned", PartitionKey = "k", WorkflowId = "on-partition" }),
            await echo.StartAsync("d", new StartOptions { Queue = "plain", Delay = TimeSpan.FromMilliseconds(200), WorkflowId = "delayed" }),
        };

        // Work waiting on the queue (here a workflow no process of this application can run) goes first: a new enqueue
        // waits behind it rather than jumping ahead.
        await using (var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" }))
        {
            await client.EnqueueAsync<string, string>(
                new EnqueueOptions { WorkflowName = "not-registered-here", QueueName = "plain", WorkflowId = "waiting", ApplicationVersion = "test-version" }, "w");
        }

        usual.Add(await echo.StartAsync("behind", new StartOptions { Queue = "plain", WorkflowId = "behind-waiting" }));

        foreach (var handle in usual)
        {
            await handle.GetResultAsync();
        }

        Assert.DoesNotContain(logs.Messages, m => m.Id.Id == ClaimedOwnEnqueue);
        Assert.Equal(5L, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE name = 'echo' AND status = 'SUCCESS' AND recovery_attempts = 1"));

        // The queue without such work takes the shortcut again (on Postgres).
        await db.ExecuteAsync("DELETE FROM {workflow_status} WHERE workflow_uuid = 'waiting'");
        Assert.Equal("x", await (await echo.StartAsync("x", new StartOptions { Queue = "plain", WorkflowId = "idle-again" })).GetResultAsync());
        Assert.Equal(backend == Backend.Postgres, ClaimedAtInsert(logs, "idle-again"));
    }

    [Theory, BothBackends]
    public async Task A_process_that_does_not_serve_the_queue_leaves_its_enqueue_to_those_that_do(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        config.ListenQueues = ["served"];
        await using var dbos = DbosApp.Create(config);
        dbos.RegisterQueue("served", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        dbos.RegisterQueue("elsewhere", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var echo = dbos.RegisterWorkflow("echo", (WorkflowContext ctx, string input) => Task.FromResult(input));
        await dbos.LaunchAsync();

        await echo.StartAsync("e", new StartOptions { Queue = "elsewhere", WorkflowId = "not-here" });
        Assert.Equal("s", await (await echo.StartAsync("s", new StartOptions { Queue = "served", WorkflowId = "here" })).GetResultAsync());
        await Task.Delay(300);
        Assert.Equal("ENQUEUED", (await ColumnsAsync(db, "not-here")).Status);
        Assert.False(ClaimedAtInsert(logs, "not-here"));
        Assert.Equal(backend == Backend.Postgres, ClaimedAtInsert(logs, "here"));
    }
}
