using System.Data;
using System.Reflection;
using Dbos.EntityFrameworkCore;
using Dbos.Tests.Infrastructure;
using Xunit.Sdk;

namespace Dbos.Tests;

public enum Flavour
{
    Ado,
    Ef,
    Legacy,
}

/// <summary>Runs a theory for each datasource flavour on each backend.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class FlavoursAndBackendsAttribute : DataAttribute
{
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) =>
        from flavour in Enum.GetValues<Flavour>()
        from backend in Enum.GetValues<Backend>()
        select new object[] { flavour, backend };
}

/// <summary>Scenarios 8, 42–45 and 57: transactions in an application database that run exactly once.</summary>
public class DatasourceTests
{
    /// <summary>An app with a workflow that inserts an order in a transaction of the chosen flavour, then may block.</summary>
    private sealed class ShopApp : IAsyncDisposable
    {
        private readonly SqlDatasource? ado;
        private readonly EfDatasource<ShopContext>? ef;
        private int bodyRuns;

        private ShopApp(DbosApp dbos, SqlDatasource? ado, EfDatasource<ShopContext>? ef)
        {
            Dbos = dbos;
            this.ado = ado;
            this.ef = ef;
        }

        public DbosApp Dbos { get; private set; }

        public Workflow<string, string> PlaceOrder { get; private set; } = null!;

        public int BodyRuns => Volatile.Read(ref bodyRuns);

        public static async Task<ShopApp> LaunchAsync(TestDatabase db, string appUrl, Flavour flavour, bool blockAfterInsert, bool failInsert = false, string? systemUrl = null)
        {
            var config = db.Config();
            if (systemUrl is not null)
            {
                config.SystemDatabaseUrl = systemUrl;
            }

            if (flavour == Flavour.Legacy)
            {
                config.ApplicationDatabaseUrl = appUrl;
            }

            var dbos = DbosApp.Create(config);
            var app = new ShopApp(
                dbos,
                flavour == Flavour.Ado ? await SqlDatasource.CreateAsync(appUrl) : null,
                flavour == Flavour.Ef ? await EfDatasource<ShopContext>.CreateAsync(appUrl, ShopContext.On) : null);
            Transaction<string, string>? legacy = flavour == Flavour.Legacy
                ? dbos.RegisterTransaction("insert-order", async (TransactionContext tx, string id, CancellationToken _) => await app.InsertAdoAsync(tx, id, failInsert))
                : null;

            app.PlaceOrder = dbos.RegisterWorkflow("place-order", async (WorkflowContext ctx, string id) =>
            {
                string inserted;
                try
                {
                    inserted = flavour switch
                    {
                        Flavour.Ado => await app.ado!.RunTransactionAsync("insert-order", (tx, _) => app.InsertAdoAsync(tx, id, failInsert)),
                        Flavour.Ef => await app.ef!.RunTransactionAsync("insert-order", (shop, _) => app.InsertEfAsync(shop, id, failInsert)),
                        _ => await legacy!.RunAsync(id),
                    };
                }
                catch (StepFailedException e)
                {
                    inserted = $"failed: {e.StepName}/{e.ErrorName}/{e.Message}";
                }

                if (blockAfterInsert)
                {
                    await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
                }

                var after = await ctx.RunStepAsync("after", _ => Task.FromResult("done"));
                return $"{inserted}|{after}";
            });
            await dbos.LaunchAsync();
            return app;
        }

        private async Task<string> InsertAdoAsync(TransactionContext tx, string id, bool fail)
        {
            Interlocked.Increment(ref bodyRuns);
            await tx.ExecuteAsync("INSERT INTO orders (id, item, quantity) VALUES ($1, 'widget', 2)", id);
            if (fail)
            {
                throw new InvalidOperationException($"out of stock for {id}");
            }

            return $"{id}@{tx.WorkflowId}";
        }

        private Task<string> InsertEfAsync(ShopContext shop, string id, bool fail)
        {
            Interlocked.Increment(ref bodyRuns);
            shop.Orders.Add(new OrderRow { Id = id, Item = "widget", Quantity = 2 });
            if (fail)
            {
                throw new InvalidOperationException($"out of stock for {id}");
            }

            return Task.FromResult($"{id}@{DbosApp.CurrentWorkflowId}");
        }

        public async ValueTask DisposeAsync()
        {
            await Dbos.DisposeAsync();
            if (ado is not null)
            {
                await ado.DisposeAsync();
            }

            if (ef is not null)
            {
                await ef.DisposeAsync();
            }
        }
    }

    private static async Task<long> OrdersAsync(string appUrl, string id) =>
        long.Parse((await TestDatabase.QueryOnAsync(appUrl, $"SELECT count(*) FROM orders WHERE id = '{id}'")).Single()!, System.Globalization.CultureInfo.InvariantCulture);

    [Theory, FlavoursAndBackends]
    public async Task A_committed_transaction_is_not_run_again_when_its_workflow_is_recovered(Flavour flavour, Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var appUrl = await db.CreateApplicationDatabaseAsync(backend);
        int firstRuns;
        await using (var first = await ShopApp.LaunchAsync(db, appUrl, flavour, blockAfterInsert: true))
        {
            await first.PlaceOrder.StartAsync("o-1", new StartOptions { WorkflowId = "wf-1" });
            await Eventually.OperationsRecordedAsync(db, "wf-1", 1);
            firstRuns = first.BodyRuns;
        }

        await using var second = await ShopApp.LaunchAsync(db, appUrl, flavour, blockAfterInsert: false);
        Assert.Equal("o-1@wf-1|done", await (await second.Dbos.RetrieveWorkflowAsync<string>("wf-1")).GetResultAsync());
        Assert.Equal((1, 0), (firstRuns, second.BodyRuns));
        Assert.Equal(1, await OrdersAsync(appUrl, "o-1"));
        var checkpoint = await TestDatabase.QueryOnAsync(appUrl, $"SELECT output FROM {(backend == Backend.Postgres ? "dbos." : string.Empty)}transaction_completion WHERE workflow_id = 'wf-1' AND function_num = 0");
        Assert.Equal("\"o-1@wf-1\"", Assert.Single(checkpoint));
        var steps = await second.Dbos.ListWorkflowStepsAsync("wf-1");
        Assert.Equal(["insert-order", "after"], steps.Select(s => s.Name));
    }

    [Theory, FlavoursAndBackends]
    public async Task A_process_killed_after_the_transaction_commits_does_not_repeat_it(Flavour flavour, Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var appUrl = await db.CreateApplicationDatabaseAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var name = flavour.ToString().ToLowerInvariant();
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS_TEST_APP_URL"] = appUrl;
        environment["DBOS_TEST_BLOCK_AFTER"] = "1";
        await using (var first = WorkerProcess.Start(environment, db.Directory, "run", "tx-order", "tx-1", $"order-7:{name}"))
        {
            await first.WaitForLineAsync("checkpointed 1");
            first.Kill();
        }

        environment.Remove("DBOS_TEST_BLOCK_AFTER");
        await using (var second = WorkerProcess.Start(environment, db.Directory, "await", "tx-1"))
        {
            Assert.Equal($"result \"order-7/{name}\"", await second.WaitForLineAsync("result "));
        }

        Assert.Equal([$"tx {name}", "step2"], await File.ReadAllLinesAsync(ledger));
        Assert.Equal(1, await OrdersAsync(appUrl, "order-7"));
    }

    [Theory, FlavoursAndBackends]
    public async Task A_transaction_that_throws_rolls_back_and_its_recorded_error_is_rethrown_without_running_again(Flavour flavour, Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var appUrl = await db.CreateApplicationDatabaseAsync(backend);
        await using var app = await ShopApp.LaunchAsync(db, appUrl, flavour, blockAfterInsert: false, failInsert: true);

        var result = await app.PlaceOrder.RunAsync("o-2", new StartOptions { WorkflowId = "wf-2" });

        Assert.Equal("failed: insert-order/InvalidOperationException/out of stock for o-2|done", result);
        Assert.Equal(0, await OrdersAsync(appUrl, "o-2"));
        var step = (await app.Dbos.ListWorkflowStepsAsync("wf-2"))[0];
        Assert.Equal(("insert-order", "InvalidOperationException"), (step.Name, step.Error?.Name));

        var replay = await app.Dbos.ForkWorkflowAsync("wf-2", 1);
        Assert.Equal(result, await replay.GetResultAsync<string>());
        Assert.Equal(1, app.BodyRuns);
    }

    [Theory, BothBackends]
    public async Task A_lost_workflow_checkpoint_is_replayed_from_the_application_database_without_running_again(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var appUrl = await db.CreateApplicationDatabaseAsync(backend);
        await using (var first = await ShopApp.LaunchAsync(db, appUrl, Flavour.Ado, blockAfterInsert: true))
        {
            await first.PlaceOrder.StartAsync("o-3", new StartOptions { WorkflowId = "wf-3" });
            await Eventually.OperationsRecordedAsync(db, "wf-3", 1);
        }

        // As if the process had died between the application commit and the workflow's checkpoint.
        Assert.Equal(1, await db.ExecuteAsync("DELETE FROM {operation_outputs} WHERE workflow_uuid = 'wf-3'"));

        await using var second = await ShopApp.LaunchAsync(db, appUrl, Flavour.Ado, blockAfterInsert: false);
        Assert.Equal("o-3@wf-3|done", await (await second.Dbos.RetrieveWorkflowAsync<string>("wf-3")).GetResultAsync());
        Assert.Equal(0, second.BodyRuns);
        Assert.Equal(1, await OrdersAsync(appUrl, "o-3"));
        Assert.Equal(["insert-order", "after"], (await second.Dbos.ListWorkflowStepsAsync("wf-3")).Select(s => s.Name));
    }

    [Theory]
    [InlineData(Backend.Sqlite, Backend.Postgres)]
    [InlineData(Backend.Postgres, Backend.Sqlite)]
    public async Task The_application_database_can_be_on_another_backend_than_the_system_database(Backend system, Backend application)
    {
        await using var db = await TestDatabase.CreateAsync(system);
        var appUrl = await db.CreateApplicationDatabaseAsync(application);
        await using var app = await ShopApp.LaunchAsync(db, appUrl, Flavour.Ado, blockAfterInsert: false);

        Assert.Equal("o-4@wf-4|done", await app.PlaceOrder.RunAsync("o-4", new StartOptions { WorkflowId = "wf-4" }));
        Assert.Equal(1, await OrdersAsync(appUrl, "o-4"));
        Assert.Equal(1, await db.CountAsync("SELECT count(*) FROM {operation_outputs} WHERE workflow_uuid = 'wf-4' AND function_name = 'insert-order'"));
        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE workflow_uuid = 'o-4'"));
    }

    [Theory, BothBackends]
    public async Task Conflicting_concurrent_transactions_are_retried_until_each_succeeds(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var appUrl = await db.CreateApplicationDatabaseAsync(backend);
        await TestDatabase.ExecuteOnAsync(appUrl, "INSERT INTO stock (item, count) VALUES ('widget', 0)");
        await using var datasource = await SqlDatasource.CreateAsync(appUrl);
        var attempts = 0;
        var serializable = new TransactionOptions { IsolationLevel = IsolationLevel.Serializable };

        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => datasource.RunTransactionAsync(
            "increment",
            async (tx, _) =>
            {
                Interlocked.Increment(ref attempts);
                var count = Convert.ToInt64(await tx.ScalarAsync("SELECT count FROM stock WHERE item = 'widget'"), System.Globalization.CultureInfo.InvariantCulture);
                await Task.Delay(5);
                return await tx.ExecuteAsync("UPDATE stock SET count = $1 WHERE item = 'widget'", count + 1);
            },
            serializable))));

        Assert.Equal("20", (await TestDatabase.QueryOnAsync(appUrl, "SELECT count FROM stock")).Single());
        if (backend == Backend.Postgres)
        {
            Assert.True(attempts > 20, "serialization failures were retried");
        }
    }

    [Theory, BothBackends]
    public async Task Datasources_work_from_synchronous_and_asynchronous_code_outside_workflows(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var appUrl = await db.CreateApplicationDatabaseAsync(backend);
        using var datasource = SqlDatasource.Create(appUrl, new DatasourceOptions { PoolSize = 3 });

        datasource.RunTransaction("sync-insert", tx => tx.Execute("INSERT INTO orders (id, item, quantity) VALUES ('s-1', 'sync', 1)"));
        var count = datasource.RunTransaction("sync-count", tx => tx.Scalar("SELECT count(*) FROM orders"));
        var asyncCount = await datasource.RunTransactionAsync("async-count", (tx, _) => tx.ScalarAsync("SELECT count(*) FROM orders"));
        Assert.Equal(1L, Convert.ToInt64(count, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1L, Convert.ToInt64(asyncCount, System.Globalization.CultureInfo.InvariantCulture));

        // A throwing body rolls back, synchronously too.
        Assert.Throws<InvalidOperationException>(() => datasource.RunTransaction<int>("sync-fail", tx =>
        {
            tx.Execute("INSERT INTO orders (id, item, quantity) VALUES ('s-2', 'sync', 1)");
            throw new InvalidOperationException("no");
        }));
        Assert.Equal(0, await OrdersAsync(appUrl, "s-2"));

        // More concurrent transactions than pooled connections wait for a connection rather than fail.
        await Task.WhenAll(Enumerable.Range(0, 12).Select(i => datasource.RunTransactionAsync(
            "pooled",
            async (tx, _) =>
            {
                await Task.Delay(20);
                return await tx.ExecuteAsync("INSERT INTO orders (id, item, quantity) VALUES ($1, 'pooled', 1)", $"p-{i}");
            })));
        Assert.Equal("12", (await TestDatabase.QueryOnAsync(appUrl, "SELECT count(*) FROM orders WHERE item = 'pooled'")).Single());

        await using var ef = await EfDatasource<ShopContext>.CreateAsync(appUrl, ShopContext.On);
        Assert.Equal(13, ef.RunTransaction("ef-sync", shop => shop.Orders.Count()));
    }

    [Theory, BothBackends]
    public async Task A_missing_application_database_is_created_unless_CreateDatabaseIfMissing_is_off(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        string[] names = ["dbos_app_new_" + Guid.NewGuid().ToString("N")[..10], "dbos_app_new_" + Guid.NewGuid().ToString("N")[..10]];
        string UrlOf(string name) => backend == Backend.Postgres ? TestDatabase.PostgresUrl(name) : $"sqlite:///{db.Directory}/{name}.sqlite";
        async Task<bool> ExistsAsync(string name) => backend == Backend.Postgres
            ? (await TestDatabase.QueryOnAsync(TestDatabase.PostgresUrl("postgres"), $"SELECT count(*) FROM pg_database WHERE datname = '{name}'")).Single() == "1"
            : File.Exists(Path.Combine(db.Directory, name + ".sqlite"));
        var url = UrlOf(names[0]);
        var off = new DatasourceOptions { CreateDatabaseIfMissing = false };
        try
        {
            // Off: a missing database fails, asynchronously and synchronously, and is not created.
            var refused = await Assert.ThrowsAsync<DbosDatabaseException>(() => SqlDatasource.CreateAsync(url, off));
            Assert.StartsWith("Cannot connect to the datasource at ", refused.Message, StringComparison.Ordinal);
            // (The name's end only: the test server's password is "dbos", which messages mask wherever it appears.)
            Assert.Contains(backend == Backend.Postgres ? $"{names[0][^10..]}\" does not exist" : $"{names[0][^10..]}.sqlite does not exist", refused.Message, StringComparison.Ordinal);
            Assert.EndsWith("and DatasourceOptions.CreateDatabaseIfMissing is off", refused.Message, StringComparison.Ordinal);
            Assert.Throws<DbosDatabaseException>(() => SqlDatasource.Create(url, off));
            Assert.False(await ExistsAsync(names[0]));

            // By default it is created, also by several processes starting at once; then it is an application database like any other.
            var datasources = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => SqlDatasource.CreateAsync(url)));
            Assert.True(await ExistsAsync(names[0]));
            await datasources[0].RunTransactionAsync("create", (tx, _) => tx.ExecuteAsync("CREATE TABLE notes (id INTEGER PRIMARY KEY)"));
            await datasources[1].RunTransactionAsync("insert", (tx, _) => tx.ExecuteAsync("INSERT INTO notes (id) VALUES (1)"));
            foreach (var datasource in datasources)
            {
                await datasource.DisposeAsync();
            }

            // Once it exists, the option makes no difference.
            await using (var existing = await SqlDatasource.CreateAsync(url, off))
            {
                Assert.Equal(1L, Convert.ToInt64(await existing.RunTransactionAsync("count", (tx, _) => tx.ScalarAsync("SELECT count(*) FROM notes")), System.Globalization.CultureInfo.InvariantCulture));
            }

            // The synchronous factory creates it too.
            using (var created = SqlDatasource.Create(UrlOf(names[1])))
            {
                Assert.Equal(1L, Convert.ToInt64(created.RunTransaction("one", tx => tx.Scalar("SELECT 1")), System.Globalization.CultureInfo.InvariantCulture));
            }

            Assert.True(await ExistsAsync(names[1]));
        }
        finally
        {
            if (backend == Backend.Postgres)
            {
                foreach (var name in names)
                {
                    await TestDatabase.DropPostgresDatabaseAsync(name);
                }
            }
        }
    }

    [Theory, BothBackends]
    public async Task Misuse_fails_with_clear_errors(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var appUrl = await db.CreateApplicationDatabaseAsync(backend);
        var datasource = await SqlDatasource.CreateAsync(appUrl);
        await using var dbos = DbosApp.Create(db.Config());
        var insideStep = dbos.RegisterWorkflow("nested", async (WorkflowContext ctx, int x) =>
            await ctx.RunStepAsync("outer", _ => datasource.RunTransactionAsync("inner", (tx, _) => Task.FromResult(x))));
        var syncInside = dbos.RegisterWorkflow("sync-inside", (WorkflowContext ctx, int x) => Task.FromResult(datasource.RunTransaction("sync", tx => x)));
        await dbos.LaunchAsync();

        var nested = await Assert.ThrowsAsync<WorkflowFailedException>(() => insideStep.RunAsync(1));
        Assert.Contains("Transaction 'inner' was called inside a step", nested.Message, StringComparison.Ordinal);
        var sync = await Assert.ThrowsAsync<WorkflowFailedException>(() => syncInside.RunAsync(1));
        Assert.Contains("use RunTransactionAsync", sync.Message, StringComparison.Ordinal);

        await datasource.DisposeAsync();
        var disposed = await Assert.ThrowsAsync<ObjectDisposedException>(() => datasource.RunTransactionAsync("late", (tx, _) => Task.FromResult(1)));
        Assert.Contains("has been disposed", disposed.Message, StringComparison.Ordinal);

        var malformed = await Assert.ThrowsAsync<DbosConfigurationException>(() => SqlDatasource.CreateAsync("postgresql://app:S3cretPw@db:nope/app"));
        Assert.Contains("port 'nope'", malformed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("S3cretPw", malformed.Message, StringComparison.Ordinal);
        var unreachable = await Assert.ThrowsAsync<DbosDatabaseException>(() => SqlDatasource.CreateAsync("postgresql://app:S3cretPw@127.0.0.1:1/app?connect_timeout=3"));
        Assert.Contains("Cannot connect to the datasource at postgresql://app:***@127.0.0.1:1/app", unreachable.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("S3cretPw", unreachable.ToString(), StringComparison.Ordinal);
        Assert.Throws<DbosConfigurationException>(() => DbosApp.Create(db.Config()).RegisterTransaction<int, int>("no-app-db", (tx, x, _) => Task.FromResult(x)));
    }
}
