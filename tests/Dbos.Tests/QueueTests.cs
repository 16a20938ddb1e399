using System.Collections.Concurrent;
using Dbos.Tests.Infrastructure;
using Npgsql;

namespace Dbos.Tests;

/// <summary>Scenarios 32–35, 37, 51 and 52 in one process, on both backends; the multi-process ones are in <see cref="QueueProcessTests"/>.</summary>
public class QueueTests
{
    /// <summary>An app with a queue whose tasks record the order they start in and can be held at a gate.</summary>
    private sealed class QueueApp : IAsyncDisposable
    {
        private QueueApp(DbosApp dbos, Workflow<string, string> task)
        {
            Dbos = dbos;
            Task = task;
        }

        public DbosApp Dbos { get; }

        public Workflow<string, string> Task { get; }

        public ConcurrentQueue<string> Started { get; } = new();

        public ConcurrentDictionary<string, TaskCompletionSource> Gates { get; } = new();

        public static async Task<QueueApp> LaunchAsync(TestDatabase db, string queue, QueueOptions options, Action<DbosConfig>? configure = null)
        {
            var config = db.Config();
            configure?.Invoke(config);
            var dbos = DbosApp.Create(config);
            dbos.RegisterQueue(queue, options with { PollingInterval = TimeSpan.FromMilliseconds(50) });
            QueueApp? app = null;
            var task = dbos.RegisterWorkflow("task", async (WorkflowContext ctx, string name) =>
            {
                app!.Started.Enqueue(name);
                if (app.Gates.TryGetValue(name, out var gate))
                {
                    await gate.Task.WaitAsync(ctx.CancellationToken);
                }

                return name.ToUpperInvariant();
            });
            app = new QueueApp(dbos, task);
            await dbos.LaunchAsync();
            return app;
        }

        public TaskCompletionSource Gate(string name) => Gates.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        public ValueTask DisposeAsync() => Dbos.DisposeAsync();
    }

    [Theory, BothBackends]
    public async Task Enqueued_workflows_run_and_record_their_queue(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "plain", new QueueOptions());

        var handles = new List<WorkflowHandle<string>>();
        for (var i = 0; i < 5; i++)
        {
            handles.Add(await app.Task.StartAsync($"t{i}", new StartOptions { Queue = "plain", WorkflowId = $"q-{i}" }));
        }

        Assert.Equal(["T0", "T1", "T2", "T3", "T4"], await Task.WhenAll(handles.Select(h => h.GetResultAsync())));
        var rows = await db.QueryAsync(
            "SELECT queue_name, status, recovery_attempts, started_at_epoch_ms IS NOT NULL, executor_id FROM {workflow_status} ORDER BY workflow_uuid",
            r => (r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetBoolean(3), r.GetString(4)));
        Assert.All(rows, r => Assert.Equal(("plain", "SUCCESS", 1L, true, "local"), r));
        var queue = Assert.Single(await db.QueryAsync($"SELECT name, application_name, worker_concurrency FROM {db.Table("queues")}", r => (r.GetString(0), r.GetString(1), r.IsDBNull(2))));
        Assert.Equal(("plain", "test-app", true), queue);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => app.Task.StartAsync("x", new StartOptions { Queue = "plain", Priority = 3 }));
        Assert.Contains("priorities enabled", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => app.Task.StartAsync("x", new StartOptions { Priority = 3 }));
    }

    [Theory, BothBackends]
    public async Task A_queue_name_belongs_to_the_first_application_that_registers_it(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var owner = DbosApp.Create(db.Config("billing")))
        {
            owner.RegisterQueue("payments", new QueueOptions { Concurrency = 3 });
            await owner.LaunchAsync();
        }

        await using var other = DbosApp.Create(db.Config("shipping"));
        other.RegisterQueue("payments", new QueueOptions { Concurrency = 9 });
        var error = await Assert.ThrowsAsync<DbosConfigurationException>(() => other.LaunchAsync());
        Assert.Contains("Queue 'payments' belongs to application 'billing'", error.Message, StringComparison.Ordinal);
        Assert.Equal(
            [("billing", 3)],
            await db.QueryAsync("SELECT application_name, concurrency FROM {queues} WHERE name = 'payments'", r => (r.GetString(0), r.GetInt32(1))));

        // The owner registers it again (a restart, or a new version) and may change it.
        await using var again = DbosApp.Create(db.Config("billing"));
        again.RegisterQueue("payments", new QueueOptions { Concurrency = 5 });
        await again.LaunchAsync();
        Assert.Equal(5L, await db.CountAsync("SELECT concurrency FROM {queues} WHERE name = 'payments'"));
    }

    [Theory, BothBackends]
    public async Task With_priorities_lower_numbers_run_first_and_equal_ones_in_arrival_order(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "prio", new QueueOptions { WorkerConcurrency = 1, PriorityEnabled = true });
        var blocker = app.Gate("blocker");
        var first = await app.Task.StartAsync("blocker", new StartOptions { Queue = "prio" });
        await Eventually.HoldsAsync(() => Task.FromResult(app.Started.Contains("blocker")), "the blocker runs");

        var handles = new List<WorkflowHandle<string>>();
        foreach (var (name, priority) in new[] { ("low-a", 10), ("high-a", 1), ("mid", 5), ("high-b", 1), ("low-b", 10), ("none", 0) })
        {
            handles.Add(await app.Task.StartAsync(name, new StartOptions { Queue = "prio", Priority = priority }));
            await Task.Delay(5);
        }

        blocker.SetResult();
        await first.GetResultAsync();
        await Task.WhenAll(handles.Select(h => h.GetResultAsync()));
        Assert.Equal(["blocker", "none", "high-a", "high-b", "mid", "low-a", "low-b"], app.Started);
    }

    [Theory, BothBackends]
    public async Task A_second_enqueue_with_a_queued_or_running_deduplication_id_fails_and_is_accepted_after_completion(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "dedup", new QueueOptions());
        var gate = app.Gate("first");
        var first = await app.Task.StartAsync("first", new StartOptions { Queue = "dedup", DeduplicationId = "order-1" });

        var ex = await Assert.ThrowsAsync<WorkflowDeduplicatedException>(() => app.Task.StartAsync("second", new StartOptions { Queue = "dedup", DeduplicationId = "order-1", WorkflowId = "dup-2" }));
        Assert.Contains("'order-1'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'dedup'", ex.Message, StringComparison.Ordinal);
        Assert.Null(await app.Dbos.GetWorkflowStatusAsync("dup-2"));

        await Eventually.HoldsAsync(() => Task.FromResult(app.Started.Contains("first")), "the first runs");
        await Assert.ThrowsAsync<WorkflowDeduplicatedException>(() => app.Task.StartAsync("third", new StartOptions { Queue = "dedup", DeduplicationId = "order-1" }));

        gate.SetResult();
        await first.GetResultAsync();
        var again = await app.Task.StartAsync("fourth", new StartOptions { Queue = "dedup", DeduplicationId = "order-1" });
        Assert.Equal("FOURTH", await again.GetResultAsync());
    }

    [Theory, BothBackends]
    public async Task A_partitioned_queue_limits_concurrency_per_partition(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "parts", new QueueOptions { Partitioned = true, PartitionConcurrency = 1 });
        var gates = new[] { "a1", "b1" }.Select(app.Gate).ToArray();
        var handles = new List<WorkflowHandle<string>>();
        foreach (var (name, partition) in new[] { ("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B") })
        {
            handles.Add(await app.Task.StartAsync(name, new StartOptions { Queue = "parts", PartitionKey = partition }));
        }

        // One per partition runs; the second of each partition waits behind the first.
        await Eventually.HoldsAsync(() => Task.FromResult(app.Started.Contains("a1") && app.Started.Contains("b1")), "both partitions run");
        await Task.Delay(300);
        Assert.Equal(2, app.Started.Count);
        var queued = await app.Dbos.ListQueuedWorkflowsAsync(new ListWorkflowsOptions { QueueName = "parts", QueuePartitionKey = "A" });
        Assert.Equal([WorkflowState.Pending, WorkflowState.Enqueued], queued.Select(w => w.State).Order());

        foreach (var gate in gates)
        {
            gate.SetResult();
        }

        await Task.WhenAll(handles.Select(h => h.GetResultAsync()));
        Assert.Equal(4, app.Started.Count);
        await Assert.ThrowsAsync<ArgumentException>(() => app.Task.StartAsync("keyless", new StartOptions { Queue = "parts" }));
    }

    [Theory, BothBackends]
    public async Task A_delayed_workflow_starts_no_earlier_than_its_delay_and_the_delay_can_change(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "later", new QueueOptions());

        var enqueuedAt = DateTimeOffset.UtcNow;
        var delayed = await app.Task.StartAsync("delayed", new StartOptions { Queue = "later", Delay = TimeSpan.FromMilliseconds(800), WorkflowId = "delayed-1" });
        var postponed = await app.Task.StartAsync("postponed", new StartOptions { Queue = "later", Delay = TimeSpan.FromHours(1), WorkflowId = "postponed-1" });
        Assert.Equal(WorkflowState.Delayed, (await delayed.GetStatusAsync())!.State);

        Assert.Equal("DELAYED", await delayed.GetResultAsync());
        var status = (await delayed.GetStatusAsync())!;
        Assert.True(status.DequeuedAt >= enqueuedAt.AddMilliseconds(790), $"dequeued at {status.DequeuedAt:O}, enqueued at {enqueuedAt:O}");

        Assert.Equal(WorkflowState.Delayed, (await postponed.GetStatusAsync())!.State);
        await app.Dbos.SetWorkflowDelayAsync("postponed-1", DateTimeOffset.UtcNow);
        Assert.Equal("POSTPONED", await postponed.GetResultAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(() => app.Dbos.SetWorkflowDelayAsync("postponed-1", DateTimeOffset.UtcNow));
    }

    [Theory, BothBackends]
    public async Task Priorities_of_waiting_workflows_can_change_and_queued_workflows_list(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "serial", new QueueOptions { WorkerConcurrency = 1, PriorityEnabled = true });
        var blocker = app.Gate("blocker");
        await app.Task.StartAsync("blocker", new StartOptions { Queue = "serial" });
        await Eventually.HoldsAsync(() => Task.FromResult(app.Started.Contains("blocker")), "the blocker runs");
        var x = await app.Task.StartAsync("x", new StartOptions { Queue = "serial", Priority = 5, WorkflowId = "x" });
        var y = await app.Task.StartAsync("y", new StartOptions { Queue = "serial", Priority = 5, WorkflowId = "y" });

        var queued = await app.Dbos.ListQueuedWorkflowsAsync(new ListWorkflowsOptions { QueueName = "serial", Status = [WorkflowState.Enqueued] });
        Assert.Equal(["x", "y"], queued.Select(w => w.WorkflowId));
        await app.Dbos.SetWorkflowPriorityAsync("y", 1);
        Assert.Equal(1, (await y.GetStatusAsync())!.Priority);

        blocker.SetResult();
        await Task.WhenAll(x.GetResultAsync(), y.GetResultAsync());
        Assert.Equal(["blocker", "y", "x"], app.Started);
        await Assert.ThrowsAsync<InvalidOperationException>(() => app.Dbos.SetWorkflowPriorityAsync("y", 3));
        Assert.Empty(await app.Dbos.ListQueuedWorkflowsAsync());
    }

    [Theory, BothBackends]
    public async Task Enqueueing_from_a_workflow_is_recorded_so_recovery_does_not_enqueue_twice(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var runs = 0;

        DbosApp Build(bool block, out Workflow<int, string> parent)
        {
            var dbos = DbosApp.Create(db.Config());
            dbos.RegisterQueue("children", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
            var child = dbos.RegisterWorkflow("child", (WorkflowContext ctx, int x) =>
            {
                Interlocked.Increment(ref runs);
                return Task.FromResult(x + 1);
            });
            parent = dbos.RegisterWorkflow("fan-out", async (WorkflowContext ctx, int count) =>
            {
                var handles = new List<WorkflowHandle<int>>();
                for (var i = 0; i < count; i++)
                {
                    handles.Add(await child.StartAsync(i, new StartOptions { Queue = "children" }));
                }

                if (block)
                {
                    await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
                }

                var sum = 0;
                foreach (var handle in handles)
                {
                    sum += await handle.GetResultAsync();
                }

                return $"{sum}:{string.Join(",", handles.Select(h => h.WorkflowId))}";
            });
            return dbos;
        }

        await using (var first = Build(block: true, out var parent))
        {
            await first.LaunchAsync();
            await parent.StartAsync(3, new StartOptions { WorkflowId = "fan" });
            await Eventually.HoldsAsync(() => Task.FromResult(Volatile.Read(ref runs) == 3), "the three children ran");
        }

        await using var second = Build(block: false, out _);
        await second.LaunchAsync();
        Assert.Equal("6:fan-0,fan-1,fan-2", await (await second.RetrieveWorkflowAsync<string>("fan")).GetResultAsync());
        Assert.Equal(3, runs);
        Assert.Equal(3, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE queue_name = 'children' AND parent_workflow_id = 'fan'"));
    }

    [Theory, BothBackends]
    public async Task A_queued_workflows_timeout_counts_from_its_dequeue_not_its_enqueue(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "single", new QueueOptions { WorkerConcurrency = 1 });
        var blocker = app.Gate("blocker");
        var slow = app.Gate("slow");
        var blocked = await app.Task.StartAsync("blocker", new StartOptions { Queue = "single" });
        var timed = await app.Task.StartAsync("quick", new StartOptions { Queue = "single", Timeout = TimeSpan.FromMilliseconds(700), WorkflowId = "timed-q" });
        var timedSlow = await app.Task.StartAsync("slow", new StartOptions { Queue = "single", Timeout = TimeSpan.FromMilliseconds(300), WorkflowId = "timed-slow" });

        // The timed workflow waits longer than its timeout on the queue, and still runs: its clock starts at dequeue.
        await Task.Delay(1000);
        Assert.Null((await timed.GetStatusAsync())!.Deadline);
        blocker.SetResult();
        await blocked.GetResultAsync();
        Assert.Equal("QUICK", await timed.GetResultAsync());

        // Once dequeued, the deadline holds.
        await Assert.ThrowsAsync<WorkflowCancelledException>(() => timedSlow.GetResultAsync());
        var status = (await timedSlow.GetStatusAsync())!;
        Assert.True(status.State == WorkflowState.Cancelled);
        slow.SetResult();
    }

    [Theory, BothBackends]
    public async Task A_workflow_on_a_queue_nobody_serves_yet_waits_and_runs_once_it_is_registered(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var early = await QueueApp.LaunchAsync(db, "other", new QueueOptions()))
        {
            await early.Task.StartAsync("patient", new StartOptions { Queue = "not-yet", WorkflowId = "patient-1" });
            await Task.Delay(300);
            Assert.Equal(WorkflowState.Enqueued, (await early.Dbos.GetWorkflowStatusAsync("patient-1"))!.State);
        }

        await using var late = await QueueApp.LaunchAsync(db, "not-yet", new QueueOptions());
        Assert.Equal("PATIENT", await (await late.Dbos.RetrieveWorkflowAsync<string>("patient-1")).GetResultAsync());
        Assert.Equal(["patient"], late.Started);
    }

    [Theory, BothBackends]
    public async Task A_client_that_runs_no_workflows_enqueues_by_name_and_gets_the_result(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await QueueApp.LaunchAsync(db, "remote", new QueueOptions());
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, PollingInterval = TimeSpan.FromMilliseconds(50) });

        var handle = await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "task", QueueName = "remote", WorkflowId = "from-client" }, "hello");
        Assert.Equal("HELLO", await handle.GetResultAsync());
        var row = Assert.Single(await db.QueryAsync(
            "SELECT ws.executor_id, ws.application_name, ws.application_version, wi.inputs FROM {workflow_status} ws JOIN {workflow_input} wi ON wi.workflow_uuid = ws.workflow_uuid WHERE ws.workflow_uuid = 'from-client'",
            r => (r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3))));
        Assert.Equal(("local", "test-app", "test-version", """{"positionalArgs":["hello"]}"""), row);

        await Assert.ThrowsAsync<WorkflowDeduplicatedException>(async () =>
        {
            await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "task", QueueName = "nobody-serves", DeduplicationId = "d" }, "a");
            await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "task", QueueName = "nobody-serves", DeduplicationId = "d" }, "b");
        });
    }

    [Fact]
    public async Task A_workflow_enqueued_with_the_sql_function_enqueue_workflow_runs_in_dotnet()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        await using var app = await QueueApp.LaunchAsync(db, "sql-queue", new QueueOptions());

        await using var connection = new NpgsqlConnection(TestDatabase.ConnectionString(db.Url));
        await connection.OpenAsync();
        await using var enqueue = new NpgsqlCommand($"SELECT \"{db.Schema}\".enqueue_workflow('task', 'sql-queue', ARRAY['\"from sql\"'::json], workflow_id => 'sql-enqueued')", connection);
        Assert.Equal("sql-enqueued", await enqueue.ExecuteScalarAsync());

        Assert.Equal("FROM SQL", await (await app.Dbos.RetrieveWorkflowAsync<string>("sql-enqueued")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(20)));
    }
}
