using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>Garbage collection (by age and by a budget of rows, in batches, automatic) and the global timeout.</summary>
public class RetentionTests
{
    private sealed class Fixture
    {
        public required Workflow<int, int> Done { get; init; }

        public required Workflow<int, int> Wait { get; init; }

        public required Workflow<int, int> Parent { get; init; }

        public required Workflow<int, int> Child { get; init; }

        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Workflows that record a step, an event with its history, a stream and a received message; one that waits; a parent of a quick child.</summary>
    private static Fixture Register(DbosApp dbos)
    {
        TaskCompletionSource gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = dbos.RegisterWorkflow("done", async (WorkflowContext ctx, int x) =>
        {
            var y = await ctx.RunStepAsync("double", _ => Task.FromResult(x * 2));
            await ctx.SetEventAsync("progress", y);
            await ctx.WriteStreamAsync("values", y);
            await ctx.CloseStreamAsync("values");
            await ctx.SendAsync(ctx.WorkflowId, y, "self");
            return await ctx.RecvAsync<int>("self", TimeSpan.FromSeconds(30));
        });
        Fixture? fixture = null;
        var wait = dbos.RegisterWorkflow("wait", async (WorkflowContext ctx, int x) =>
        {
            await ctx.RunStepAsync("before", _ => Task.FromResult(x));
            await fixture!.Gate.Task.WaitAsync(ctx.CancellationToken);
            return await ctx.RunStepAsync("after", _ => Task.FromResult(x + 1));
        });
        var child = dbos.RegisterWorkflow("child", async (WorkflowContext ctx, int x) => await ctx.RunStepAsync("inc", _ => Task.FromResult(x + 1)));
        var parent = dbos.RegisterWorkflow("parent", async (WorkflowContext ctx, int x) =>
        {
            var handle = await fixture!.Child.StartAsync(x, new StartOptions { WorkflowId = ctx.WorkflowId + "-child" });
            await ctx.RunStepAsync("wait-for-gate", async ct => { await fixture.Gate.Task.WaitAsync(ct); return 0; });
            return await handle.GetResultAsync();
        });
        fixture = new Fixture { Done = done, Wait = wait, Parent = parent, Child = child };
        return fixture;
    }

    private static async Task<long> RowsOfAsync(TestDatabase db, IEnumerable<string> ids)
    {
        var list = string.Join(", ", ids.Select(id => $"'{id}'"));
        long total = 0;
        foreach (var table in (string[])["workflow_status", "workflow_input", "workflow_output", "operation_outputs", "workflow_events", "workflow_events_history", "streams"])
        {
            total += await db.CountAsync($"SELECT COUNT(*) FROM {{{table}}} WHERE workflow_uuid IN ({list})");
        }

        return total + await db.CountAsync($"SELECT COUNT(*) FROM {{notifications}} WHERE destination_uuid IN ({list})");
    }

    [Theory, BothBackends]
    public async Task Garbage_collection_removes_old_finished_workflows_with_all_their_rows_in_batches_and_leaves_unfinished_ones(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var config = db.Config();
        await using var dbos = DbosApp.Create(config);
        var f = Register(dbos);
        await dbos.LaunchAsync();

        string[] finished = [.. Enumerable.Range(0, 5).Select(i => $"old-done-{i}")];
        foreach (var id in finished)
        {
            Assert.Equal(2 * int.Parse(id[^1..], System.Globalization.CultureInfo.InvariantCulture), await f.Done.RunAsync(int.Parse(id[^1..], System.Globalization.CultureInfo.InvariantCulture), new StartOptions { WorkflowId = id }));
        }

        Assert.True(await RowsOfAsync(db, finished) >= 5 * 8, "the finished workflows recorded rows in every table");
        var running = await f.Wait.StartAsync(7, new StartOptions { WorkflowId = "old-running" });
        await Eventually.OperationsRecordedAsync(db, "old-running", 1);
        var queued = await f.Done.StartAsync(1, new StartOptions { WorkflowId = "old-queued", Queue = "nobody-serves-this" });
        var parent = await f.Parent.StartAsync(10, new StartOptions { WorkflowId = "old-parent" });
        await Eventually.StatusAsync(db, "old-parent-child", "SUCCESS");
        // A payload row whose status row another implementation deleted alone (no foreign key holds it).
        await db.ExecuteAsync("INSERT INTO {operation_outputs} (workflow_uuid, function_id, function_name, retention_timestamp) VALUES ('orphan', 0, 'gone', 1)");
        await Task.Delay(5);
        var cutoff = (await dbos.GetWorkflowStatusAsync("old-parent-child"))!.CreatedAt.AddMilliseconds(1);
        await Task.Delay(5);

        // New workflows keep running while the collection goes on; they are after the cutoff and finish normally.
        using var stopLoad = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            var results = new List<int>();
            for (var i = 0; !stopLoad.IsCancellationRequested && i < 200; i++)
            {
                results.Add(await f.Done.RunAsync(i, new StartOptions { WorkflowId = $"new-{i}" }));
            }

            return results;
        });

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });
        var removed = await client.GarbageCollectAsync(new GarbageCollectOptions { CreatedBefore = cutoff, BatchSize = 2 });
        await stopLoad.CancelAsync();
        var loadResults = await load;

        Assert.Equal(5, removed);
        Assert.Equal(0, await RowsOfAsync(db, finished));
        Assert.Equal(0, await db.CountAsync("SELECT COUNT(*) FROM {operation_outputs} WHERE workflow_uuid = 'orphan'"));
        Assert.Equal(Enumerable.Range(0, loadResults.Count).Select(i => 2 * i), loadResults);
        Assert.Equal(loadResults.Count, (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIdPrefix = "new-" })).Count);
        Assert.Equal(WorkflowState.Enqueued, (await dbos.GetWorkflowStatusAsync(queued.WorkflowId))!.State);
        // The finished child of an unfinished parent stays: the parent reads its result later.
        Assert.NotNull(await dbos.GetWorkflowStatusAsync("old-parent-child"));

        f.Gate.SetResult();
        Assert.Equal(8, await running.GetResultAsync());
        Assert.Equal(["before", "after"], (await dbos.ListWorkflowStepsAsync("old-running")).Select(s => s.Name));
        Assert.Equal(11, await parent.GetResultAsync());

        // Now the parent has finished, the same collection removes it and its child (and nothing else that is old is finished).
        Assert.Equal(0, await dbos.GarbageCollectAsync(new GarbageCollectOptions { CreatedBefore = cutoff.AddMilliseconds(-1000) }));
        Assert.Equal(3, await dbos.GarbageCollectAsync(new GarbageCollectOptions { CreatedBefore = cutoff }));
        Assert.Null(await dbos.GetWorkflowStatusAsync("old-parent-child"));
        Assert.Null(await dbos.GetWorkflowStatusAsync("old-running"));
        Assert.Equal(WorkflowState.Enqueued, (await dbos.GetWorkflowStatusAsync(queued.WorkflowId))!.State);
    }

    [Theory, BothBackends]
    public async Task A_budget_of_rows_keeps_the_newest_workflows(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var f = Register(dbos);
        await dbos.LaunchAsync();
        for (var i = 0; i < 6; i++)
        {
            await f.Done.RunAsync(i, new StartOptions { WorkflowId = $"wf-{i}" });
            await Task.Delay(3);
        }

        var running = await f.Wait.StartAsync(1, new StartOptions { WorkflowId = "wf-running" });
        await Eventually.OperationsRecordedAsync(db, running.WorkflowId, 1);
        await dbos.GlobalTimeoutAsync(DateTimeOffset.UtcNow.AddYears(-1)); // Nothing that old: cancels nothing.
        Assert.Equal(WorkflowState.Pending, (await dbos.GetWorkflowStatusAsync(running.WorkflowId))!.State);

        await Assert.ThrowsAsync<ArgumentException>(() => dbos.GarbageCollectAsync(new GarbageCollectOptions()));
        // The newest three are wf-4, wf-5 and the running one; wf-0…wf-3 go, in batches of one.
        Assert.Equal(4, await dbos.GarbageCollectAsync(new GarbageCollectOptions { KeepNewest = 3, BatchSize = 1 }));
        var left = await dbos.ListWorkflowsAsync();
        Assert.Equal(["wf-4", "wf-5", "wf-running"], left.Select(w => w.WorkflowId));

        // A budget of zero removes every finished workflow; the unfinished one stays.
        Assert.Equal(2, await dbos.GarbageCollectAsync(new GarbageCollectOptions { KeepNewest = 0 }));
        Assert.Equal(["wf-running"], (await dbos.ListWorkflowsAsync()).Select(w => w.WorkflowId));
        f.Gate.SetResult();
        Assert.Equal(2, await running.GetResultAsync());
    }

    [Theory, BothBackends]
    public async Task The_global_timeout_cancels_every_unfinished_workflow_created_before_the_cutoff(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var f = Register(dbos);
        await dbos.LaunchAsync();

        Assert.Equal(2, await f.Done.RunAsync(1, new StartOptions { WorkflowId = "old-done" }));
        var oldRunning = await f.Wait.StartAsync(1, new StartOptions { WorkflowId = "old-running" });
        await Eventually.OperationsRecordedAsync(db, "old-running", 1);
        var oldQueued = await f.Done.StartAsync(1, new StartOptions { WorkflowId = "old-queued", Queue = "nobody-serves-this" });
        await Task.Delay(5);
        var cutoff = (await dbos.GetWorkflowStatusAsync("old-queued"))!.CreatedAt.AddMilliseconds(1);
        await Task.Delay(5);
        var newRunning = await f.Wait.StartAsync(2, new StartOptions { WorkflowId = "new-running" });
        await Eventually.OperationsRecordedAsync(db, "new-running", 1);

        // From a client: the application's running workflow is cancelled in the application's process.
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });
        var cancelled = await client.GlobalTimeoutAsync(cutoff);
        Assert.Equal(["old-queued", "old-running"], cancelled.Order(StringComparer.Ordinal));
        await Assert.ThrowsAsync<WorkflowCancelledException>(() => oldRunning.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(WorkflowState.Cancelled, (await dbos.GetWorkflowStatusAsync(oldQueued.WorkflowId))!.State);
        Assert.Equal(WorkflowState.Success, (await dbos.GetWorkflowStatusAsync("old-done"))!.State);
        Assert.Equal(WorkflowState.Pending, (await dbos.GetWorkflowStatusAsync("new-running"))!.State);
        Assert.Empty(await dbos.GlobalTimeoutAsync(cutoff));

        f.Gate.SetResult();
        Assert.Equal(3, await newRunning.GetResultAsync());
        Assert.Equal(["before"], (await dbos.ListWorkflowStepsAsync("old-running")).Select(s => s.Name));
    }

    [Theory, BothBackends]
    public async Task Automatic_retention_keeps_the_configured_number_of_workflows(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var config = db.Config();
        config.Retention = new RetentionOptions { MaxWorkflows = 2, Interval = TimeSpan.FromMilliseconds(200), BatchSize = 1 };
        await using var dbos = DbosApp.Create(config);
        var f = Register(dbos);
        await dbos.LaunchAsync();
        for (var i = 0; i < 5; i++)
        {
            await f.Done.RunAsync(i, new StartOptions { WorkflowId = $"wf-{i}" });
            await Task.Delay(3);
        }

        await Eventually.HoldsAsync(async () => await db.CountAsync("SELECT COUNT(*) FROM {workflow_status}") == 2, "retention removes all but the newest two");
        Assert.Equal(["wf-3", "wf-4"], (await dbos.ListWorkflowsAsync()).Select(w => w.WorkflowId));
        Assert.Equal(0, await db.CountAsync("SELECT COUNT(*) FROM {operation_outputs} WHERE workflow_uuid NOT IN ('wf-3', 'wf-4')"));

        var bad = new DbosConfig(config) { Retention = new RetentionOptions { Interval = TimeSpan.Zero } };
        var problem = Assert.Throws<DbosConfigurationException>(bad.Validate);
        Assert.Contains("MaxAge, MaxWorkflows", problem.Message, StringComparison.Ordinal);
        Assert.Contains("Interval must be positive", problem.Message, StringComparison.Ordinal);
    }
}
