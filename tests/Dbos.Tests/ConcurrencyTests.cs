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
}
