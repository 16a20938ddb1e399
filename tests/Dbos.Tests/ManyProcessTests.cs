using System.Diagnostics;
using System.Globalization;
using Dbos.Tests.Infrastructure;
using Xunit.Abstractions;
using static Dbos.Tests.Infrastructure.Replica;

namespace Dbos.Tests;

/// <summary>
/// Scenarios 60, 61, 63 and 66: replicas of one application, each a real process with the default configuration (so its
/// own generated executor ID), on one system database; processes die by SIGKILL. Every step execution is written to its
/// process's ledger as it begins, and returns <c>processId:step</c>, so the assertions see which process ran each step
/// and whose outcome was recorded.
/// </summary>
public class ManyProcessTests(ITestOutputHelper output)
{
    [Theory, BothBackends]
    public async Task A_second_replica_started_beside_a_running_one_runs_no_step_a_second_time(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var first = await StartReplicaAsync(db, "first", start: 5);

        // The second replica launches while the first is in the middle of all five workflows.
        await Eventually.HoldsAsync(async () => Runs(first).Select(r => r.Workflow).Distinct().Count() == 5, "the first replica runs all five workflows");
        await using var second = await StartReplicaAsync(db, "second");
        Assert.NotEqual(first.ExecutorId, second.ExecutorId);
        Assert.StartsWith("dbos-dotnet-", second.ExecutorId, StringComparison.Ordinal);

        await AllSucceededAsync(db, "wf", 5, TimeSpan.FromSeconds(60));
        var runs = Runs(first, second);
        Assert.All(runs.GroupBy(r => (r.Workflow, r.Step)), g => Assert.Single(g));
        Assert.Equal(5 * 6, runs.Count);
        Assert.DoesNotContain(runs, r => r.Process != runs[0].Process);
    }

    [Theory, BothBackends]
    public async Task A_replica_killed_for_good_has_its_work_taken_over_by_a_live_one_within_the_bound(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var survivor = await StartReplicaAsync(db, "survivor");
        // 600 ms steps: the kill lands seconds before any of the five could finish, however late a loaded machine notices.
        await using var doomed = await StartReplicaAsync(db, "doomed", start: 5, steps: 8, stepMs: 600);
        await Eventually.HoldsAsync(async () => (await RecordedAsync(db)).Count >= 10, "the doomed replica checkpointed some steps");

        doomed.Process.Kill();
        var killedAt = Stopwatch.StartNew();
        var recordedBeforeKill = await RecordedAsync(db);
        await Eventually.HoldsAsync(
            async () => await db.CountAsync($"SELECT count(*) FROM {{workflow_status}} WHERE executor_id = '{doomed.ExecutorId}' AND status = 'PENDING'") == 0,
            "the dead executor's workflows are taken over",
            TimeSpan.FromSeconds(30));
        var takeover = killedAt.Elapsed;
        output.WriteLine($"{backend}: taken over {takeover.TotalSeconds:F2} s after the kill");
        await AllSucceededAsync(db, "wf", 5, TimeSpan.FromSeconds(60));

        // Steps recorded before the kill never ran again; every step is recorded exactly once, each by the process that ran it.
        var runs = Runs(doomed, survivor);
        var recorded = await RecordedAsync(db);
        Assert.Equal(5 * 8, recorded.Count);
        foreach (var before in recordedBeforeKill)
        {
            Assert.Single(runs, r => r.Workflow == before.Workflow && r.Step == before.Step);
            Assert.Contains(before, recorded);
        }

        Assert.All(recorded, r => Assert.Contains(runs, run => run == r));

        Assert.All(runs.GroupBy(r => (r.Workflow, r.Step)), g => Assert.True(g.Count() <= 2, $"{g.Key} ran {g.Count()} times"));
        Assert.Contains("took over 5", survivor.Process.StandardOutput, StringComparison.Ordinal);
        Assert.True(takeover < TimeSpan.FromSeconds(10), $"taken over after {takeover.TotalSeconds:F1} s");
    }

    [Theory, BothBackends]
    public async Task Three_live_replicas_noticing_one_dead_executor_take_its_workflows_exactly_once(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var takers = new List<Replica>();
        for (var i = 0; i < 3; i++)
        {
            takers.Add(await StartReplicaAsync(db, $"taker{i}"));
        }

        try
        {
            // Steps of a second each: however late this loaded machine notices the six running, the kill still lands
            // while they run (with 300 ms steps, all six once finished before it, and there was nothing to take over).
            await using var doomed = await StartReplicaAsync(db, "doomed", start: 6, steps: 5, stepMs: 1000);
            await Eventually.HoldsAsync(async () => Runs(doomed).Select(r => r.Workflow).Distinct().Count() == 6, "the doomed replica runs all six workflows");
            doomed.Process.Kill();
            var recordedBeforeKill = await RecordedAsync(db);
            Assert.True(recordedBeforeKill.Count < 6 * 5, "The doomed replica finished every step before it was killed: nothing was left to take over.");
            await AllSucceededAsync(db, "wf", 6, TimeSpan.FromSeconds(60));

            // Of the three, the takeovers add up to exactly the six workflows, and no step ran twice among the survivors.
            // Each taker logs its takeover as it happens, but this process reads their output asynchronously, and under load
            // a line may arrive after the workflows' rows say they finished: wait for the lines, then count them.
            int TookOver() => takers.Sum(t => t.Process.StandardOutput.Split('\n')
                .Where(l => l.StartsWith("log 44 ", StringComparison.Ordinal))
                .Sum(l => int.Parse(l.Split("took over ")[1].Split(' ')[0], CultureInfo.InvariantCulture)));
            await Eventually.HoldsAsync(() => Task.FromResult(TookOver() >= 6), "the takers logged their takeovers", TimeSpan.FromSeconds(10));
            Assert.Equal(6, TookOver());
            var survivorRuns = Runs([.. takers]);
            Assert.All(survivorRuns.GroupBy(r => (r.Workflow, r.Step)), g => Assert.Single(g));
            Assert.DoesNotContain(survivorRuns, r => recordedBeforeKill.Any(k => k.Workflow == r.Workflow && k.Step == r.Step));
        }
        finally
        {
            foreach (var taker in takers)
            {
                await taker.DisposeAsync();
            }
        }
    }

    [Theory, BothBackends]
    public async Task Live_executors_are_listed_idle_ones_too_and_a_stopped_executors_work_is_recovered_only_by_hand(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        DbosApp Build(string executorId, out Workflow<int, int> waiting)
        {
            var config = db.Config();
            config.ExecutorId = executorId;
            var app = DbosApp.Create(config);
            waiting = app.RegisterWorkflow("waiting", async (WorkflowContext ctx, int x) =>
            {
                await ctx.RunStepAsync("before", _ => Task.FromResult(x));
                await gate.Task;
                return x * 2;
            });
            return app;
        }

        // A configured executor leaves two pending workflows behind; it holds no liveness once stopped, which says
        // nothing about whether it will come back, so no live process takes its work by itself.
        await using (var stopped = Build("worker-7", out var waiting))
        {
            await stopped.LaunchAsync();
            await waiting.StartAsync(1, new StartOptions { WorkflowId = "held-1" });
            await waiting.StartAsync(2, new StartOptions { WorkflowId = "held-2" });
            await Eventually.OperationsRecordedAsync(db, "held-2", 1);
        }

        gate.SetResult();
        await using var live = Build("worker-8", out _);
        await live.LaunchAsync();
        await using var idle = await StartReplicaAsync(db, "idle");
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(2, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE executor_id = 'worker-7' AND status = 'PENDING'"));
        if (backend == Backend.Sqlite)
        {
            // The stopped executor's lock file is swept; the two live processes' stay.
            var folder = db.Url["sqlite:///".Length..] + ".executors";
            await Eventually.HoldsAsync(() => Task.FromResult(Directory.GetFiles(folder, "*.lock").Length == 2), "only the live executors' lock files remain");
        }

        var executors = await live.ListExecutorsAsync();
        var self = Assert.Single(executors, e => e.ExecutorId == "worker-8");
        Assert.Equal((ExecutorState.Alive, "test-version", 0L), (self.State, self.ApplicationVersion, self.PendingWorkflows));
        var held = Assert.Single(executors, e => e.ExecutorId == "worker-7");
        Assert.Equal((ExecutorState.Unknown, 2L, "test-version"), (held.State, held.PendingWorkflows, Assert.Single(held.PendingVersions)));
        Assert.DoesNotContain(executors, e => e.ExecutorId == idle.ExecutorId); // another application's

        // The idle replica of the other application is listed, with its version, from a client of that application.
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "replicas" });
        var replica = Assert.Single(await client.ListExecutorsAsync());
        Assert.Equal((idle.ExecutorId, ExecutorState.Alive, 0L), (replica.ExecutorId, replica.State, replica.PendingWorkflows));
        Assert.False(string.IsNullOrEmpty(replica.ApplicationVersion));

        // A live executor's work is not recovered; a stopped one's is, and runs here.
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => live.RecoverExecutorAsync("worker-8"));
        Assert.Contains("is alive", refused.Message, StringComparison.Ordinal);
        Assert.Equal(["held-1", "held-2"], (await live.RecoverExecutorAsync("worker-7")).Order());
        Assert.Equal(2, await (await live.RetrieveWorkflowAsync<int>("held-1")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(4, await (await live.RetrieveWorkflowAsync<int>("held-2")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Empty(await live.RecoverExecutorAsync("worker-7"));
    }

    [Theory, BothBackends]
    public async Task Two_live_processes_given_the_same_executor_id_are_refused_with_a_clear_error(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var first = DbosApp.Create(db.Config());
        await first.LaunchAsync();
        await using var second = DbosApp.Create(db.Config());
        var refused = await Assert.ThrowsAsync<DbosConfigurationException>(() => second.LaunchAsync());
        Assert.Contains("executor ID 'local' is in use by another live process", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("dbos:dbos@", refused.Message, StringComparison.Ordinal);

        // Once the first is gone, the ID is free again.
        await first.DisposeAsync();
        await using var third = DbosApp.Create(db.Config());
        await third.LaunchAsync();
    }
}
