using System.Diagnostics;
using Dbos.Tests.Infrastructure;
using Npgsql;

namespace Dbos.Tests;

/// <summary>Scenarios 1–3 and 5–7: where the system database is, creating it, reaching it, and migrating it.</summary>
public class ConfigurationTests
{
    [Fact]
    public async Task Without_a_url_or_environment_variable_the_app_uses_a_sqlite_file_named_after_it_in_the_working_directory()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var environment = new Dictionary<string, string?> { ["DBOS_TEST_URL"] = null, ["DBOS_SYSTEM_DATABASE_URL"] = null };

        await using var worker = WorkerProcess.Start(environment, db.Directory, "which-db");
        Assert.Equal("database sqlite:///crash-worker.sqlite", await worker.WaitForLineAsync("database "));
        Assert.Equal("result \"which-db:100\"", await worker.WaitForLineAsync("result "));
        Assert.Equal(0, await worker.WaitForExitAsync());
        Assert.True(File.Exists(Path.Combine(db.Directory, "crash-worker.sqlite")));
    }

    [Theory, BothBackends]
    public async Task The_environment_variable_wins_over_the_default_and_an_explicit_url_wins_over_both(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var masked = backend == Backend.Postgres ? db.Url.Replace(":dbos@", ":***@", StringComparison.Ordinal) : db.Url;

        var fromEnvironment = new Dictionary<string, string?> { ["DBOS_TEST_URL"] = null, ["DBOS_SYSTEM_DATABASE_URL"] = db.Url, ["DBOS_TEST_SCHEMA"] = db.Schema };
        await using (var worker = WorkerProcess.Start(fromEnvironment, db.Directory, "which-db"))
        {
            Assert.Equal($"database {masked}", await worker.WaitForLineAsync("database "));
            Assert.Equal(0, await worker.WaitForExitAsync());
        }

        Assert.False(File.Exists(Path.Combine(db.Directory, "crash-worker.sqlite")));
        Assert.Equal(1, await db.CountAsync("SELECT count(*) FROM {workflow_status}"));

        var explicitUrl = $"sqlite:///{db.Directory}/explicit.sqlite";
        var both = new Dictionary<string, string?> { ["DBOS_TEST_URL"] = explicitUrl, ["DBOS_SYSTEM_DATABASE_URL"] = db.Url, ["DBOS_TEST_SCHEMA"] = db.Schema };
        await using (var worker = WorkerProcess.Start(both, db.Directory, "which-db"))
        {
            Assert.Equal($"database {explicitUrl}", await worker.WaitForLineAsync("database "));
            Assert.Equal(0, await worker.WaitForExitAsync());
        }

        Assert.Equal(1, await db.CountAsync("SELECT count(*) FROM {workflow_status}"));
    }

    [Fact]
    public async Task A_postgres_database_that_does_not_exist_is_created_then_migrated()
    {
        var name = "dbos_created_" + Guid.NewGuid().ToString("N")[..10];
        var url = TestDatabase.PostgresUrl(name);
        try
        {
            await using (var dbos = DbosApp.Create(new DbosConfig { Name = "creator", SystemDatabaseUrl = url }))
            {
                var workflow = dbos.RegisterWorkflow("hello", (WorkflowContext ctx, string who) => Task.FromResult("hello " + who));
                await dbos.LaunchAsync();
                Assert.Equal("hello world", await workflow.RunAsync("world"));
            }

            await using var connection = new NpgsqlConnection(TestDatabase.ConnectionString(url));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT version FROM dbos.dbos_migrations", connection);
            Assert.Equal(123L, await command.ExecuteScalarAsync());
        }
        finally
        {
            await TestDatabase.DropPostgresDatabaseAsync(name);
        }
    }

    [Fact]
    public async Task A_wrong_password_fails_launch_with_a_clear_error_and_the_password_masked()
    {
        var server = new Uri(TestDatabase.PostgresServerUrl);
        var url = $"postgresql://dbos:Wr0ngSecretPw@{server.Host}:{server.Port}/dbos_tests";
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "bad-password", SystemDatabaseUrl = url });

        var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => dbos.LaunchAsync());

        Assert.Contains("password authentication failed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("postgresql://dbos:***@", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Wr0ngSecretPw", ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_host_fails_launch_within_the_connect_timeout_with_the_password_masked()
    {
        // Port 1 on the loopback address refuses connections; the timeout bounds the wait either way.
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "unreachable", SystemDatabaseUrl = "postgresql://dbos:An0therSecret@127.0.0.1:1/db?connect_timeout=3" });

        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => dbos.LaunchAsync());

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"launch took {watch.Elapsed}");
        Assert.Contains("Cannot connect to the system database at postgresql://dbos:***@127.0.0.1:1/db", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("An0therSecret", ex.ToString(), StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task Two_apps_launched_at_once_on_a_fresh_database_both_migrate_and_the_schema_is_created_once(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var apps = Enumerable.Range(0, 4).Select(i => DbosApp.Create(db.Config($"app-{i}"))).ToList();
        try
        {
            var workflows = apps.Select(a => a.RegisterWorkflow("echo", (WorkflowContext ctx, int x) => Task.FromResult(x))).ToList();
            await Task.WhenAll(apps.Select(a => a.LaunchAsync()));
            var results = await Task.WhenAll(workflows.Select((w, i) => w.RunAsync(i)));
            Assert.Equal([0, 1, 2, 3], results);
        }
        finally
        {
            foreach (var app in apps)
            {
                await app.DisposeAsync();
            }
        }

        var versions = await db.QueryAsync("SELECT version FROM {dbos_migrations}", r => r.GetInt64(0));
        Assert.Equal(backend == Backend.Postgres ? 123L : 1L, Assert.Single(versions));
    }

    [Theory, BothBackends]
    public async Task A_database_migrated_by_a_newer_version_is_refused_and_left_unchanged(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var dbos = DbosApp.Create(db.Config()))
        {
            var workflow = dbos.RegisterWorkflow("keep", (WorkflowContext ctx, string s) => Task.FromResult(s));
            await dbos.LaunchAsync();
            await workflow.RunAsync("recorded", new StartOptions { WorkflowId = "keep-me" });
        }

        await db.ExecuteAsync("UPDATE {dbos_migrations} SET version = 999");
        await using var newer = DbosApp.Create(db.Config());
        var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => newer.LaunchAsync());

        Assert.Contains("schema version 999", ex.Message, StringComparison.Ordinal);
        Assert.Contains("newer", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", ex.Message, StringComparison.Ordinal);
        Assert.Equal(999L, Assert.Single(await db.QueryAsync("SELECT version FROM {dbos_migrations}", r => r.GetInt64(0))));
        Assert.Equal("\"recorded\"", Assert.Single(await db.QueryAsync("SELECT output FROM {workflow_output} WHERE workflow_uuid = 'keep-me'", r => r.GetString(0))));
    }
}
