using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Scenarios 9, 21 and 1–2: real child processes killed with <see cref="System.Diagnostics.Process.Kill()"/> in the
/// middle of a workflow (or crashing themselves), then started again on the same database.
/// </summary>
public class CrashTests
{
    private static async Task<string[]> ReadLedgerAsync(string path) => File.Exists(path) ? await File.ReadAllLinesAsync(path) : [];

    [Theory, BothBackends]
    public async Task A_process_killed_after_step_2_resumes_at_step_3_and_never_repeats_finished_steps(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");

        var crashing = db.WorkerEnvironment(ledger);
        crashing["DBOS_TEST_BLOCK_AFTER"] = "2";
        await using (var first = WorkerProcess.Start(crashing, db.Directory, "run", "four-steps", "order-9"))
        {
            await first.WaitForLineAsync("checkpointed 2");
            first.Kill();
        }

        Assert.Equal(["step1", "step2"], await ReadLedgerAsync(ledger));
        var pending = await db.QueryAsync("SELECT status FROM {workflow_status} WHERE workflow_uuid = 'order-9'", r => r.GetString(0));
        Assert.Equal("PENDING", Assert.Single(pending));

        await using (var second = WorkerProcess.Start(db.WorkerEnvironment(ledger), db.Directory, "await", "order-9"))
        {
            var result = await second.WaitForLineAsync("result ");
            Assert.Equal("result \"demo:100\"", result);
            Assert.Equal(0, await second.WaitForExitAsync());
        }

        Assert.Equal(["step1", "step2", "step3", "step4"], await ReadLedgerAsync(ledger));

        // An uninterrupted run gives the same result.
        await using var uninterrupted = WorkerProcess.Start(db.WorkerEnvironment(Path.Combine(db.Directory, "other.txt")), db.Directory, "run", "four-steps", "order-9b");
        Assert.Equal("result \"demo:100\"", await uninterrupted.WaitForLineAsync("result "));

        var steps = await db.QueryAsync(
            "SELECT function_id, function_name, output FROM {operation_outputs} WHERE workflow_uuid = 'order-9' ORDER BY function_id",
            r => $"{r.GetInt32(0)}:{r.GetString(1)}:{r.GetString(2)}");
        Assert.Equal(["0:step:10", "1:step:20", "2:step:30", "3:step:40"], steps);
        var status = await db.QueryAsync("SELECT status, recovery_attempts, queue_name FROM {workflow_status} WHERE workflow_uuid = 'order-9'", r => (r.GetString(0), r.GetInt64(1), r.GetString(2)));
        Assert.Equal(("SUCCESS", 2L, "_dbos_internal_queue"), Assert.Single(status));
    }

    [Theory, BothBackends]
    public async Task A_workflow_that_crashes_its_process_every_time_is_dead_lettered_after_its_recovery_attempts(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var environment = db.WorkerEnvironment(ledger);

        // The workflow allows 2 recovery attempts: the first run and two recoveries crash, the next launch gives up.
        await using (var start = WorkerProcess.Start(environment, db.Directory, "run", "crash-always", "doomed"))
        {
            await start.WaitForExitAsync();
        }

        for (var recovery = 1; recovery <= 2; recovery++)
        {
            await using var worker = WorkerProcess.Start(environment, db.Directory, "await", "doomed");
            await worker.WaitForLineAsync("crashing");
            await worker.WaitForExitAsync();
        }

        Assert.Equal(["attempt", "step1", "attempt", "attempt"], await ReadLedgerAsync(ledger));

        await using (var last = WorkerProcess.Start(environment, db.Directory, "await", "doomed"))
        {
            var error = await last.WaitForLineAsync("error ");
            Assert.Contains("MaxRecoveryAttemptsExceededException", error, StringComparison.Ordinal);
            Assert.Contains("maximum of 2 recovery attempts", error, StringComparison.Ordinal);
            Assert.Equal(3, await last.WaitForExitAsync());
        }

        Assert.Equal(3, (await ReadLedgerAsync(ledger)).Count(l => l == "attempt"));
        var dead = await db.QueryAsync("SELECT status, queue_name FROM {workflow_status} WHERE workflow_uuid = 'doomed'", r => (r.GetString(0), r.IsDBNull(1)));
        Assert.Equal(("MAX_RECOVERY_ATTEMPTS_EXCEEDED", true), Assert.Single(dead));

        // Not retried again until resumed: another launch leaves it alone.
        await using (var idle = WorkerProcess.Start(environment, db.Directory, "await", "doomed"))
        {
            await idle.WaitForLineAsync("error ");
        }

        Assert.Equal(3, (await ReadLedgerAsync(ledger)).Count(l => l == "attempt"));

        // Resuming resets the count and runs it again (this time without crashing); the recorded step is not repeated.
        var finish = db.WorkerEnvironment(ledger);
        finish["DBOS_TEST_NO_CRASH"] = "1";
        await using var healthy = WorkerProcess.Start(finish, db.Directory, "resume", "doomed");
        Assert.Equal("result \"crash\"", await healthy.WaitForLineAsync("result "));
        var resumed = await db.QueryAsync("SELECT status, recovery_attempts FROM {workflow_status} WHERE workflow_uuid = 'doomed'", r => (r.GetString(0), r.GetInt64(1)));
        Assert.Equal(("SUCCESS", 1L), Assert.Single(resumed));
        Assert.Equal(["attempt", "step1", "attempt", "attempt", "attempt"], await ReadLedgerAsync(ledger));
    }

    [Theory, BothBackends]
    public async Task A_receiver_killed_after_receiving_gets_the_same_message_on_restart_and_the_next_one_after_it(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });

        var blocking = db.WorkerEnvironment(ledger);
        blocking["DBOS_TEST_BLOCK_AFTER"] = "1";
        await using (var first = WorkerProcess.Start(blocking, db.Directory, "run", "mailbox", "mailbox-1", "2"))
        {
            await first.WaitForLineAsync("database ");
            await Eventually.StatusAsync(db, "mailbox-1", "PENDING");
            await client.SendAsync("mailbox-1", "alpha");
            await first.WaitForLineAsync("checkpointed 1");
            first.Kill();
        }

        await client.SendAsync("mailbox-1", "beta");
        await using (var second = WorkerProcess.Start(db.WorkerEnvironment(ledger), db.Directory, "await", "mailbox-1"))
        {
            Assert.Equal("result \"alpha+beta\"", await second.WaitForLineAsync("result "));
        }

        // The restarted run re-executed the first receive from its record (the body ran again, the message was not re-consumed).
        Assert.Equal(["received alpha", "received alpha", "received beta"], await ReadLedgerAsync(ledger));
        var consumed = await db.QueryAsync("SELECT message, consumed_by_function_id FROM {notifications} ORDER BY consumed_by_function_id", r => $"{r.GetString(0)}@{r.GetInt32(1)}");
        Assert.Equal(["\"alpha\"@0", "\"beta\"@2"], consumed);
    }
}
