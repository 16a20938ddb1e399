using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>The samples the README and docs/ point to, run as a user runs them.</summary>
public class SampleTests
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

    [Theory]
    [InlineData("approve", "approved by grace@example.com")]
    [InlineData("reject", "rejected by grace@example.com: over budget")]
    public async Task The_approval_sample_waits_for_the_managers_message(string decision, string outcome)
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var dll = Path.Combine(AppContext.BaseDirectory, "Approval.dll");
        await using var sample = WorkerProcess.StartDll(dll, new Dictionary<string, string?>(), db.Directory, decision);

        Assert.Equal(0, await sample.WaitForExitAsync());
        var output = sample.Output;
        Assert.Contains("Its status: waiting for approval", output, StringComparison.Ordinal);
        Assert.Contains("  submitted 84.20 for 'team lunch'", output, StringComparison.Ordinal);
        Assert.Contains($"  {outcome}", output, StringComparison.Ordinal);
        Assert.Contains($"Result: {outcome}", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Backend.Sqlite, Backend.Sqlite)]
    [InlineData(Backend.Postgres, Backend.Sqlite)]
    [InlineData(Backend.Sqlite, Backend.Postgres)]
    [InlineData(Backend.Postgres, Backend.Postgres)]
    public async Task The_inventory_sample_creates_its_databases_and_survives_a_crash_between_its_transactions(Backend system, Backend application)
    {
        await using var db = await TestDatabase.CreateAsync(system);

        // Neither database exists yet: DBOS creates the system database, the datasource the application database.
        var suffix = Guid.NewGuid().ToString("N")[..10];
        var systemDatabase = "dbos_inventory_" + suffix;
        var appDatabase = "dbos_inventory_app_" + suffix;
        var appUrl = application == Backend.Postgres ? TestDatabase.PostgresUrl(appDatabase) : $"sqlite:///{db.Directory}/inventory-app.sqlite";
        var environment = new Dictionary<string, string?>
        {
            ["DBOS_SYSTEM_DATABASE_URL"] = system == Backend.Postgres ? TestDatabase.PostgresUrl(systemDatabase) : null,
            ["INVENTORY_DATABASE_URL"] = application == Backend.Postgres ? appUrl : null,
        };
        var dll = Path.Combine(AppContext.BaseDirectory, "Inventory.dll");
        try
        {
            await using (var crashing = WorkerProcess.StartDll(dll, environment, db.Directory, "--crash-after-reserve"))
            {
                Assert.NotEqual(0, await crashing.WaitForExitAsync());
                Assert.Contains("[reserve-stock] took 3 x widget; 97 left", crashing.Output, StringComparison.Ordinal);
                Assert.Contains("Crashing now", crashing.Output, StringComparison.Ordinal);
                Assert.DoesNotContain("[record-order]", crashing.Output, StringComparison.Ordinal);
            }

            await using var resumed = WorkerProcess.StartDll(dll, environment, db.Directory);
            Assert.Equal(0, await resumed.WaitForExitAsync());
            Assert.Contains("left unfinished by an earlier run", resumed.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("[reserve-stock]", resumed.Output, StringComparison.Ordinal);
            Assert.Contains("[record-order] order", resumed.Output, StringComparison.Ordinal);
            Assert.Contains("Done: 97 widgets left in stock, 1 order(s) recorded in all.", resumed.Output, StringComparison.Ordinal);

            // The application database holds the stock taken once and the one order.
            Assert.Equal(["97"], await TestDatabase.QueryOnAsync(appUrl, "SELECT count FROM stock WHERE item = 'widget'"));
            Assert.Equal(["3"], await TestDatabase.QueryOnAsync(appUrl, "SELECT quantity FROM orders"));
            if (system == Backend.Sqlite)
            {
                Assert.True(File.Exists(Path.Combine(db.Directory, "inventory.sqlite")));
            }
        }
        finally
        {
            if (system == Backend.Postgres)
            {
                await TestDatabase.DropPostgresDatabaseAsync(systemDatabase);
            }

            if (application == Backend.Postgres)
            {
                await TestDatabase.DropPostgresDatabaseAsync(appDatabase);
            }
        }
    }
}
