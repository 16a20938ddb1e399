using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>The README's demo: killed after step 2, it resumes at step 3 on the next run, on either backend.</summary>
public class QuickstartTests
{
    [Theory, BothBackends]
    public async Task The_quickstart_killed_after_step_2_resumes_at_step_3_when_run_again(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var database = "dbos_quickstart_" + Guid.NewGuid().ToString("N")[..10];
        var environment = new Dictionary<string, string?>
        {
            ["DBOS_SYSTEM_DATABASE_URL"] = backend == Backend.Postgres ? TestDatabase.PostgresUrl(database) : null,
        };
        var dll = Path.Combine(AppContext.BaseDirectory, "Quickstart.dll");
        try
        {
            await using (var crashing = WorkerProcess.StartDll(dll, environment, db.Directory, "--crash-after-step", "2"))
            {
                Assert.NotEqual(0, await crashing.WaitForExitAsync());
                var output = crashing.Output;
                Assert.Contains("[reserve-inventory] reserved 3 x widget", output, StringComparison.Ordinal);
                Assert.Contains("[charge-payment] charged $43.50", output, StringComparison.Ordinal);
                Assert.Contains("Crashing now", output, StringComparison.Ordinal);
                Assert.DoesNotContain("[ship]", output, StringComparison.Ordinal);
            }

            await using var resumed = WorkerProcess.StartDll(dll, environment, db.Directory);
            Assert.Equal(0, await resumed.WaitForExitAsync());
            var lines = resumed.Output;
            Assert.Contains("left unfinished by an earlier run", lines, StringComparison.Ordinal);
            Assert.DoesNotContain("[reserve-inventory]", lines, StringComparison.Ordinal);
            Assert.DoesNotContain("[charge-payment]", lines, StringComparison.Ordinal);
            Assert.Contains("[ship] shipped", lines, StringComparison.Ordinal);
            Assert.Contains("0. reserve-inventory  recorded by an earlier run, not repeated", lines, StringComparison.Ordinal);
            Assert.Contains("1. charge-payment     recorded by an earlier run, not repeated", lines, StringComparison.Ordinal);
            Assert.Contains("2. ship               ran in this process", lines, StringComparison.Ordinal);
            Assert.Contains("3. send-confirmation  ran in this process", lines, StringComparison.Ordinal);
            if (backend == Backend.Sqlite)
            {
                Assert.True(File.Exists(Path.Combine(db.Directory, "quickstart.sqlite")));
            }
        }
        finally
        {
            if (backend == Backend.Postgres)
            {
                await TestDatabase.DropPostgresDatabaseAsync(database);
            }
        }
    }
}
