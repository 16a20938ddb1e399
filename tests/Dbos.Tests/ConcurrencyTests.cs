using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Operations started together inside a workflow: function IDs are taken at the call, so a re-execution after a crash
/// finds every recorded operation at the same ID; <see cref="WorkflowContext.WhenAnyAsync"/> replays the recorded winner.
/// </summary>
public class ConcurrencyTests
{
    private static async Task<string[]> ReadLedgerAsync(string path) => File.Exists(path) ? await File.ReadAllLinesAsync(path) : [];

    [Theory, BothBackends]
    public async Task Steps_and_children_awaited_together_resume_after_a_crash_without_repeating_the_recorded_ones(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var gate = Path.Combine(db.Directory, "gate");
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS_TEST_GATE"] = gate;

        await using (var first = WorkerProcess.Start(environment, db.Directory, "run", "fan-out", "fan"))
        {
            await first.WaitForLineAsync("quick recorded");
            first.Kill();
        }

        // Only the quick step and the quick child finished; the gated ones were still waiting.
        Assert.Equal(["fan1", "fan3"], (await ReadLedgerAsync(ledger)).Order());
        var recorded = await db.QueryAsync(
            "SELECT function_id, function_name FROM {operation_outputs} WHERE workflow_uuid = 'fan' AND (output IS NOT NULL OR child_workflow_id IS NOT NULL) ORDER BY function_id",
            r => $"{r.GetInt32(0)}:{r.GetString(1)}");
        Assert.Contains("0:fan-step", recorded);
        Assert.Contains("3:DBOS.getResult", recorded);
        Assert.DoesNotContain("1:fan-step", recorded);
        Assert.DoesNotContain("5:DBOS.getResult", recorded);

        await File.WriteAllTextAsync(gate, "open");
        await using (var second = WorkerProcess.Start(environment, db.Directory, "await", "fan"))
        {
            Assert.Equal("result \"fan:100\"", await second.WaitForLineAsync("result "));
            Assert.Equal(0, await second.WaitForExitAsync());
        }

        // Every step ran once in all: the recorded ones were not run again.
        Assert.Equal(["fan1", "fan2", "fan3", "fan4"], (await ReadLedgerAsync(ledger)).Order());

        // IDs in call order: step 1, step 2, then each child's start and result, whichever finished first.
        var steps = await db.QueryAsync(
            "SELECT function_id, function_name, child_workflow_id FROM {operation_outputs} WHERE workflow_uuid = 'fan' ORDER BY function_id",
            r => $"{r.GetInt32(0)}:{r.GetString(1)}:{(r.IsDBNull(2) ? "" : r.GetString(2))}");
        Assert.Equal(
            ["0:fan-step:", "1:fan-step:", "2:fan-child:fan-2", "3:DBOS.getResult:fan-2", "4:fan-child:fan-4", "5:DBOS.getResult:fan-4"],
            steps);
    }

    [Theory, BothBackends]
    public async Task WhenAnyAsync_replays_the_recorded_winner_after_a_crash_even_when_the_other_branch_is_done_first(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var gate = Path.Combine(db.Directory, "gate");
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS_TEST_GATE"] = gate;
        environment["DBOS_TEST_BLOCK_AFTER"] = "1";

        await using (var first = WorkerProcess.Start(environment, db.Directory, "run", "first-wins", "race"))
        {
            // Branch 0 waits for the gate, so branch 1 wins; then branch 0 is let through and recorded as well.
            Assert.Equal("winner 1", await first.WaitForLineAsync("winner "));
            await File.WriteAllTextAsync(gate, "open");
            await first.WaitForLineAsync("checkpointed 1");
            first.Kill();
        }

        Assert.Equal(["race0", "race1"], (await ReadLedgerAsync(ledger)).Order());
        var whenAny = await db.QueryAsync(
            "SELECT function_id, output FROM {operation_outputs} WHERE workflow_uuid = 'race' AND function_name = 'DBOS.whenAny'",
            r => $"{r.GetInt32(0)}:{r.GetString(1)}");
        Assert.Equal("2:1", Assert.Single(whenAny));

        // On the re-execution both branches are recorded and done at once, branch 0 first in the list (a plain
        // Task.WhenAny would pick it); the recorded winner, branch 1, is taken.
        var again = db.WorkerEnvironment(ledger);
        again["DBOS_TEST_GATE"] = gate;
        await using (var second = WorkerProcess.Start(again, db.Directory, "await", "race"))
        {
            Assert.Equal("result \"race:winner1\"", await second.WaitForLineAsync("result "));
            Assert.Equal(0, await second.WaitForExitAsync());
            Assert.Contains("winner 1", second.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("winner 0", second.Output, StringComparison.Ordinal);
        }

        Assert.Equal(["race0", "race1", "step6"], (await ReadLedgerAsync(ledger)).Order());
        var steps = await db.QueryAsync(
            "SELECT function_id, function_name FROM {operation_outputs} WHERE workflow_uuid = 'race' ORDER BY function_id",
            r => $"{r.GetInt32(0)}:{r.GetString(1)}");
        Assert.Equal(["0:race-step", "1:race-step", "2:DBOS.whenAny", "3:step"], steps);
    }

    [Theory, BothBackends]
    public async Task WaitFirstAsync_records_the_finished_child_as_DBOS_waitFirst_and_a_re_execution_returns_the_same_handle(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = dbos.RegisterWorkflow("slow-child", async (WorkflowContext ctx, string s) =>
            await ctx.RunStepAsync("wait", async ct => { await release.Task.WaitAsync(ct); return s; }));
        var fast = dbos.RegisterWorkflow("fast-child", (WorkflowContext ctx, string s) => Task.FromResult(s));
        var parent = dbos.RegisterWorkflow("wait-first", async (WorkflowContext ctx, string input) =>
        {
            var first = await slow.StartAsync("slow");
            var second = await fast.StartAsync("fast");
            var winner = await ctx.WaitFirstAsync([first, second]);
            var result = await winner.GetResultAsync();
            release.TrySetResult();
            await first.GetResultAsync();
            return $"{input}:{result}";
        });
        await dbos.LaunchAsync();

        Assert.Equal("p:fast", await parent.RunAsync("p", new StartOptions { WorkflowId = "wf" }));
        var steps = await dbos.ListWorkflowStepsAsync("wf");
        Assert.Equal(["slow-child", "fast-child", "DBOS.waitFirst", "DBOS.getResult", "DBOS.getResult"], steps.Select(s => s.Name));
        Assert.Equal("\"wf-1\"", steps[2].RawOutput);   // the winner's workflow ID, as DBOS records it
        Assert.Null(steps[2].ChildWorkflowId);

        // A fork from the step after the wait replays it: both children have finished now, and the slow one comes
        // first in the list, but the recorded winner is returned.
        var fork = await dbos.ForkWorkflowAsync("wf", 3);
        Assert.Equal("p:fast", await fork.GetResultAsync<string>());
    }

    [Theory, BothBackends]
    public async Task WhenAnyAsync_returns_the_index_of_a_received_message_and_records_it(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var workflow = dbos.RegisterWorkflow("race", async (WorkflowContext ctx, string input) =>
        {
            var step = ctx.RunStepAsync("slow", async ct => { await release.Task.WaitAsync(ct); return "step"; });
            var message = ctx.RecvAsync<string>("go", TimeSpan.FromSeconds(30));
            var first = await ctx.WhenAnyAsync([step, message]);
            release.TrySetResult();
            await Task.WhenAll(step, (Task)message);
            return $"{first}:{await message}:{await step}";
        });
        await dbos.LaunchAsync();

        var handle = await workflow.StartAsync("x", new StartOptions { WorkflowId = "wf" });
        await dbos.SendAsync("wf", "hello", "go");
        Assert.Equal("1:hello:step", await handle.GetResultAsync());
        var steps = await dbos.ListWorkflowStepsAsync("wf");
        Assert.Equal([(0, "slow"), (1, "DBOS.recv"), (2, "DBOS.sleep"), (3, "DBOS.whenAny")], steps.Select(s => (s.FunctionId, s.Name)));
        Assert.Equal("1", steps[3].RawOutput);

        await Assert.ThrowsAsync<ArgumentException>(() => new FakeContext().WhenAnyAsync([]));
    }

    private sealed class FakeContext : WorkflowContext
    {
        public override string WorkflowId => "fake";

        public override string WorkflowName => "fake";

        public override CancellationToken CancellationToken => default;

        public override Task<T> RunStepAsync<T>(string name, Func<CancellationToken, Task<T>> step, StepOptions? options = null, CancellationToken cancellationToken = default) => step(cancellationToken);

        public override Task SleepAsync(TimeSpan duration, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public override Task<DateTimeOffset> NowAsync(CancellationToken cancellationToken = default) => Task.FromResult(DateTimeOffset.UnixEpoch);

        public override Task<Guid> NewGuidAsync(CancellationToken cancellationToken = default) => Task.FromResult(Guid.Empty);

        public override Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public override Task<T?> RecvAsync<T>(string? topic = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default) where T : default => Task.FromResult(default(T));

        public override Task SetEventAsync<T>(string key, T value, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public override Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default) where T : default => Task.FromResult(default(T));

        public override Task WriteStreamAsync<T>(string key, T value, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public override Task CloseStreamAsync(string key, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public override IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0, CancellationToken cancellationToken = default) => AsyncEnumerable.Empty<T>();
    }
}
