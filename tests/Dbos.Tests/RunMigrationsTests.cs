using Dbos.Internal;
using Dbos.SystemDatabase;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// <see cref="DbosConfig.RunMigrations"/> false, for a role that may not change the schema: a launch checks the schema
/// and changes nothing; a missing or older schema fails it clearly; a current one launches.
/// </summary>
public class RunMigrationsTests
{
    [Theory, BothBackends]
    public async Task A_missing_schema_fails_the_launch_clearly_and_nothing_is_created(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var config = db.Config();
        config.RunMigrations = false;
        await using var dbos = DbosApp.Create(config);
        dbos.RegisterWorkflow("w", (WorkflowContext ctx, int x) => Task.FromResult(x));

        var error = await Assert.ThrowsAsync<DbosDatabaseException>(() => dbos.LaunchAsync());
        Assert.Contains("RunMigrations is false", error.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was created or changed", error.Message, StringComparison.Ordinal);

        if (backend == Backend.Sqlite)
        {
            Assert.False(File.Exists(Path.Combine(db.Directory, "system.sqlite")), "the SQLite file was created");
        }
        else
        {
            var tables = await TestDatabase.QueryOnAsync(db.Url, $"SELECT count(*)::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{db.Schema}'");
            Assert.Equal("0", tables.Single());
        }
    }

    [Theory, BothBackends]
    public async Task A_current_schema_launches_without_migrating(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var migrator = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema }))
        {
            await migrator.MigrateAsync();
        }

        var config = db.Config();
        config.RunMigrations = false;
        await using var dbos = DbosApp.Create(config);
        var twice = dbos.RegisterWorkflow("twice", (WorkflowContext ctx, int x) => Task.FromResult(2 * x));
        await dbos.LaunchAsync();
        Assert.Equal(42, await twice.RunAsync(21));
    }

    [Fact]
    public async Task An_older_sqlite_schema_fails_the_launch_and_stays_as_it_was()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        await using (var migrator = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url }))
        {
            await migrator.MigrateAsync();
        }

        // The SQLite schema has one version so far: an older one is a file whose version row is gone.
        await db.ExecuteAsync("DELETE FROM dbos_migrations");
        var config = db.Config();
        config.RunMigrations = false;
        await using var dbos = DbosApp.Create(config);
        var error = await Assert.ThrowsAsync<DbosDatabaseException>(() => dbos.LaunchAsync());
        Assert.Contains("schema version 0, older than", error.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await db.CountAsync("SELECT count(*) FROM dbos_migrations"));
    }

    [Fact]
    public async Task An_older_postgres_schema_is_waited_for_while_it_rises_and_refused_when_it_stays()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using (var migrator = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url }))
        {
            await migrator.MigrateAsync();
        }

        var latest = PostgresSchema.LatestVersion;
        await db.ExecuteAsync($"UPDATE {{dbos_migrations}} SET version = {latest - 3}");
        await using var executor = new PostgresExecutor((PostgresUrl)DatabaseUrl.Parse(db.Url, "test"), "dbos", 2, null) { MigrationWaitBound = TimeSpan.FromSeconds(2) };

        // Another process raises the version: the check waits for it and passes.
        var check = executor.VerifySchemaAsync(CancellationToken.None);
        for (var version = latest - 2; version <= latest; version++)
        {
            await Task.Delay(300);
            Assert.False(check.IsCompleted, $"The check finished before version {version}.");
            await db.ExecuteAsync($"UPDATE {{dbos_migrations}} SET version = {version}");
        }

        await check.WaitAsync(TimeSpan.FromSeconds(10));

        // Nobody raises it: refused once the bound has passed, and nothing changed.
        await db.ExecuteAsync($"UPDATE {{dbos_migrations}} SET version = {latest - 1}");
        var error = await Assert.ThrowsAsync<DbosDatabaseException>(() => executor.VerifySchemaAsync(CancellationToken.None));
        Assert.Contains($"schema version {latest - 1}, older than the {latest}", error.Message, StringComparison.Ordinal);
        Assert.Equal((long)(latest - 1), await db.CountAsync("SELECT max(version) FROM {dbos_migrations}"));
    }
}
