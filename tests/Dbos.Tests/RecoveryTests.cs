using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Dbos.Tests;

/// <summary>
/// Scenarios 11, 14, 15, 17, 19, 20 and 23. A "restart" here is a second <see cref="DbosApp"/> on the same database after
/// the first was abandoned mid-workflow (its executions stopped without recording anything, as a crash would leave them).
/// </summary>
public class RecoveryTests
{
    /// <summary>Blocks a workflow until it is abandoned (the first "process"), or lets it through (the restarted one).</summary>
    private sealed class Gate(bool blocked)
    {
        public Task PassAsync(WorkflowContext ctx) => blocked ? Task.Delay(Timeout.Infinite, ctx.CancellationToken) : Task.CompletedTask;
    }

    [Theory, BothBackends]
    public async Task A_recorded_step_error_is_rethrown_on_recovery_without_running_the_step_again(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var stepRuns = 0;

        DbosApp Build(Gate gate, out Workflow<string, string> workflow)
        {
            var dbos = DbosApp.Create(db.Config());
            var explode = dbos.RegisterStep("explode", (string s, CancellationToken _) =>
            {
                Interlocked.Increment(ref stepRuns);
                return Task.FromException<int>(new InvalidOperationException($"kaboom {s}"));
            });
            workflow = dbos.RegisterWorkflow("catcher", async (WorkflowContext ctx, string input) =>
            {
                string caught;
                try
                {
                    await explode.RunAsync(input);
                    caught = "no error";
                }
                catch (StepFailedException e)
                {
                    caught = $"{e.StepName}/{e.ErrorName}/{e.Message}";
                }

                await gate.PassAsync(ctx);
                return caught;
            });
            return dbos;
        }

        await using (var first = Build(new Gate(blocked: true), out var workflow))
        {
            await first.LaunchAsync();
            await workflow.StartAsync("x", new StartOptions { WorkflowId = "err-1" });
            await Eventually.OperationsRecordedAsync(db, "err-1", 1);
        }

        var recorded = await db.QueryAsync("SELECT output, error FROM {operation_outputs} WHERE workflow_uuid = 'err-1'", r => (r.IsDBNull(0), r.GetString(1)));
        Assert.Equal((true, """{"name":"InvalidOperationException","message":"kaboom x"}"""), Assert.Single(recorded));

        await using var second = Build(new Gate(blocked: false), out _);
        await second.LaunchAsync();
        var handle = await second.RetrieveWorkflowAsync<string>("err-1");
        Assert.Equal("explode/InvalidOperationException/kaboom x", await handle.GetResultAsync());
        Assert.Equal(1, stepRuns);
    }

    [Theory, BothBackends]
    public async Task A_child_workflow_is_recorded_in_its_parent_and_recovery_reuses_it(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var childRuns = 0;

        DbosApp Build(Gate gate, out Workflow<int, string> parent)
        {
            var dbos = DbosApp.Create(db.Config());
            var child = dbos.RegisterWorkflow("child", (WorkflowContext ctx, int x) =>
            {
                Interlocked.Increment(ref childRuns);
                return Task.FromResult(x * 2);
            });
            parent = dbos.RegisterWorkflow("parent", async (WorkflowContext ctx, int x) =>
            {
                var handle = await child.StartAsync(x);
                var doubled = await handle.GetResultAsync();
                await gate.PassAsync(ctx);
                var direct = await child.RunAsync(x + 1);
                return $"{handle.WorkflowId}={doubled},{direct}";
            });
            return dbos;
        }

        await using (var first = Build(new Gate(blocked: true), out var parent))
        {
            await first.LaunchAsync();
            await parent.StartAsync(21, new StartOptions { WorkflowId = "p1" });
            await Eventually.OperationsRecordedAsync(db, "p1", 2);
        }

        Assert.Equal(1, childRuns);
        await using var second = Build(new Gate(blocked: false), out _);
        await second.LaunchAsync();
        Assert.Equal("p1-0=42,44", await (await second.RetrieveWorkflowAsync<string>("p1")).GetResultAsync());
        Assert.Equal(2, childRuns);

        var steps = await second.ListWorkflowStepsAsync("p1");
        Assert.Equal(
            ["0:child:p1-0", "1:DBOS.getResult:p1-0", "2:child:p1-2", "3:DBOS.getResult:p1-2"],
            steps.Select(s => $"{s.FunctionId}:{s.Name}:{s.ChildWorkflowId}"));
        Assert.Equal(42, steps[1].GetOutput<int>());
        var children = await second.ListWorkflowsAsync(new ListWorkflowsOptions { ParentWorkflowId = "p1" });
        Assert.Equal(["p1-0", "p1-2"], children.Select(c => c.WorkflowId).Order());
        Assert.All(children, c => Assert.Equal((WorkflowState.Success, "child"), (c.State, c.Name)));
    }

    [Theory, BothBackends]
    public async Task A_step_recorded_under_another_name_is_reported_as_non_determinism_naming_both(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var first = DbosApp.Create(db.Config()))
        {
            var workflow = first.RegisterWorkflow("shifty", async (WorkflowContext ctx, int x) =>
            {
                await ctx.RunStepAsync("alpha", _ => Task.FromResult(x));
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
                return x;
            });
            await first.LaunchAsync();
            await workflow.StartAsync(1, new StartOptions { WorkflowId = "nd-1" });
            await Eventually.OperationsRecordedAsync(db, "nd-1", 1);
        }

        await using var second = DbosApp.Create(db.Config());
        second.RegisterWorkflow("shifty", async (WorkflowContext ctx, int x) => await ctx.RunStepAsync("beta", _ => Task.FromResult(x + 1)));
        await second.LaunchAsync();

        var ex = await Assert.ThrowsAsync<WorkflowFailedException>(async () => await (await second.RetrieveWorkflowAsync<int>("nd-1")).GetResultAsync());
        Assert.Equal(nameof(NonDeterministicWorkflowException), ex.ErrorName);
        Assert.Contains("'alpha'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'beta'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("operation 0", ex.Message, StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task A_durable_sleep_interrupted_by_a_restart_wakes_at_the_original_time(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var start = new DateTimeOffset(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);

        DbosApp Build(out Workflow<int, string> workflow)
        {
            var config = db.Config();
            config.TimeProvider = clock;
            var dbos = DbosApp.Create(config);
            workflow = dbos.RegisterWorkflow("sleepy", async (WorkflowContext ctx, int seconds) =>
            {
                await ctx.SleepAsync(TimeSpan.FromSeconds(seconds));
                return $"awake at {clock.GetUtcNow():HH:mm:ss}";
            });
            return dbos;
        }

        await using (var first = Build(out var workflow))
        {
            await first.LaunchAsync();
            await workflow.StartAsync(5, new StartOptions { WorkflowId = "nap" });
            await Eventually.OperationsRecordedAsync(db, "nap", 1);
            clock.Advance(TimeSpan.FromSeconds(2));
        }

        var sleep = await db.QueryAsync("SELECT function_name, output, completed_at_epoch_ms, serialization FROM {operation_outputs} WHERE workflow_uuid = 'nap'", r => (r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3)));
        var wake = start.AddSeconds(5).ToUnixTimeMilliseconds();
        Assert.Equal(("DBOS.sleep", wake.ToString(System.Globalization.CultureInfo.InvariantCulture), wake, "portable_json"), Assert.Single(sleep));

        await using var second = Build(out _);
        await second.LaunchAsync();
        var result = (await second.RetrieveWorkflowAsync<string>("nap")).GetResultAsync();
        await Eventually.StatusAsync(db, "nap", "PENDING");
        clock.Advance(TimeSpan.FromSeconds(2.9));
        await Task.Delay(300);
        Assert.False(result.IsCompleted, "woke before the recorded wake-up time");

        clock.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal("awake at 12:00:05", await result.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory, BothBackends]
    public async Task Durable_time_and_guids_are_the_same_on_recovery(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        (DateTimeOffset Now, Guid Id)? firstValues = null;

        DbosApp Build(Gate gate, out Workflow<string> workflow)
        {
            var dbos = DbosApp.Create(db.Config());
            workflow = dbos.RegisterWorkflow("clock", async ctx =>
            {
                var now = await ctx.NowAsync();
                var id = await ctx.NewGuidAsync();
                firstValues ??= (now, id);
                await gate.PassAsync(ctx);
                return $"{now.ToUnixTimeMilliseconds()}/{id}";
            });
            return dbos;
        }

        await using (var first = Build(new Gate(blocked: true), out var workflow))
        {
            await first.LaunchAsync();
            await workflow.StartAsync(new StartOptions { WorkflowId = "clock-1" });
            await Eventually.OperationsRecordedAsync(db, "clock-1", 2);
        }

        await Task.Delay(20);
        await using var second = Build(new Gate(blocked: false), out _);
        await second.LaunchAsync();
        var result = await (await second.RetrieveWorkflowAsync<string>("clock-1")).GetResultAsync();
        Assert.Equal($"{firstValues!.Value.Now.ToUnixTimeMilliseconds()}/{firstValues.Value.Id}", result);
        var steps = await second.ListWorkflowStepsAsync("clock-1");
        Assert.Equal(["DBOS.now", "DBOS.randomUUID"], steps.Select(s => s.Name));
        Assert.Equal(firstValues.Value.Id, steps[1].GetOutput<Guid>());
    }

    [Theory, BothBackends]
    public async Task A_cancelled_workflow_stops_at_its_next_step_is_not_recovered_and_resumes_from_its_last_step(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var runs = new int[2];
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        DbosApp Build(out Workflow<string, string> workflow)
        {
            var dbos = DbosApp.Create(db.Config());
            var first = dbos.RegisterStep("first", (string s, CancellationToken _) => Task.FromResult(Interlocked.Increment(ref runs[0])));
            var second = dbos.RegisterStep("second", (string s, CancellationToken _) => Task.FromResult(Interlocked.Increment(ref runs[1])));
            workflow = dbos.RegisterWorkflow("cancellable", async (WorkflowContext ctx, string input) =>
            {
                await first.RunAsync(input);
                await release.Task;
                await second.RunAsync(input);
                return "done";
            });
            return dbos;
        }

        await using (var app = Build(out var workflow))
        {
            await app.LaunchAsync();
            var handle = await workflow.StartAsync("x", new StartOptions { WorkflowId = "c-1" });
            await Eventually.OperationsRecordedAsync(db, "c-1", 1);

            await app.CancelWorkflowAsync("c-1");
            Assert.Equal(WorkflowState.Cancelled, (await handle.GetStatusAsync())!.State);
            await Assert.ThrowsAsync<WorkflowCancelledException>(() => handle.GetResultAsync());

            release.SetResult();
            await Task.Delay(200);
            Assert.Equal(0, runs[1]);
            await app.CancelWorkflowAsync("c-1"); // Cancelling again changes nothing.
        }

        // A restart does not recover it.
        await using var restarted = Build(out _);
        await restarted.LaunchAsync();
        await Task.Delay(300);
        Assert.Equal(WorkflowState.Cancelled, (await restarted.GetWorkflowStatusAsync("c-1"))!.State);
        Assert.Equal((1, 0), (runs[0], runs[1]));

        var resumed = await restarted.ResumeWorkflowAsync("c-1");
        Assert.Equal("done", await resumed.GetResultAsync<string>());
        Assert.Equal((1, 1), (runs[0], runs[1]));
        var status = await restarted.GetWorkflowStatusAsync("c-1");
        Assert.Equal((WorkflowState.Success, "_dbos_internal_queue", 1L), (status!.State, status.QueueName, status.RecoveryAttempts));
    }

    [Theory, BothBackends]
    public async Task A_workflow_cancelled_or_resumed_from_another_process_stops_waiting_here_and_the_resumed_run_finishes(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var config = db.Config();
        config.PollingInterval = TimeSpan.FromMilliseconds(100);
        await using var dbos = DbosApp.Create(config);
        var waitForGo = dbos.RegisterWorkflow("wait-for-go", async (WorkflowContext context, string name) =>
        {
            var go = await context.RecvAsync<string>("go", TimeSpan.FromMinutes(10));
            return $"{name}: {go}";
        });
        await dbos.LaunchAsync();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });

        var handle = await waitForGo.StartAsync("rover", new StartOptions { WorkflowId = "elsewhere-1" });
        Assert.Equal(["elsewhere-1"], await client.CancelWorkflowsAsync(["elsewhere-1"]));

        // The execution here notices (it is not left waiting ten minutes for a message).
        await Assert.ThrowsAsync<WorkflowCancelledException>(() => handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(["elsewhere-1"], await client.ResumeWorkflowsAsync(["elsewhere-1"]));
        await client.SendAsync("elsewhere-1", "go!", "go");
        Assert.Equal("rover: go!", await (await client.RetrieveWorkflowAsync<string>("elsewhere-1")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Theory, BothBackends]
    public async Task A_fork_reuses_the_outcomes_before_its_start_step_and_runs_the_rest(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = new int[3];
        var steps = Enumerable.Range(0, 3)
            .Select(i => dbos.RegisterStep($"s{i}", (int x, CancellationToken _) => Task.FromResult(x + (100 * i) + Interlocked.Increment(ref runs[i]))))
            .ToArray();
        var workflow = dbos.RegisterWorkflow("forkable", async (WorkflowContext ctx, int x) =>
        {
            var a = await steps[0].RunAsync(x);
            var b = await steps[1].RunAsync(x);
            var c = await steps[2].RunAsync(x);
            return $"{a},{b},{c}";
        });
        await dbos.LaunchAsync();
        Assert.Equal("1,101,201", await workflow.RunAsync(0, new StartOptions { WorkflowId = "orig" }));

        var fork = await dbos.ForkWorkflowAsync("orig", 2, new ForkOptions { NewWorkflowId = "fork-2" });
        Assert.Equal("fork-2", fork.WorkflowId);
        Assert.Equal("1,101,202", await fork.GetResultAsync<string>());
        Assert.Equal([1, 1, 2], runs);

        var forked = await dbos.GetWorkflowStatusAsync("fork-2");
        Assert.Equal(("orig", "forkable", 0), (forked!.ForkedFrom, forked.Name, forked.GetInput<int>()));
        Assert.True((await dbos.GetWorkflowStatusAsync("orig"))!.WasForkedFrom);
        var forkSteps = await dbos.ListWorkflowStepsAsync("fork-2");
        Assert.Equal(["s0:1", "s1:101", "s2:202"], forkSteps.Select(s => $"{s.Name}:{s.RawOutput}"));

        var fromScratch = await dbos.ForkWorkflowAsync("orig", 0);
        Assert.Equal("2,102,203", await fromScratch.GetResultAsync<string>());
        Assert.Equal([2, 2, 3], runs);
    }
}
