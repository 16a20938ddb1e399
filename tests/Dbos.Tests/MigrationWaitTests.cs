using System.Diagnostics;
using Dbos.Internal;
using Dbos.SystemDatabase;
using Dbos.Tests.Infrastructure;
using Npgsql;

namespace Dbos.Tests;

/// <summary>
/// A launch that finds another process's migration under way (a schema below the shared version, as another DBOS
/// implementation leaves it between its lock-free steps) waits for it, logging once, and goes on when it is done;
/// a version that stays put below the shared base is refused with a clear error once the wait's bound has passed.
/// </summary>
public class MigrationWaitTests
{
    private const int WaitingEventId = 19;

    [Fact]
    public async Task A_launch_waits_while_another_process_raises_the_version_and_then_comes_up()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var other = await OpenAsync(db);
        await RunAsync(other, [.. PostgresSchema.FreshInstall("dbos"), "INSERT INTO dbos.dbos_migrations (version) VALUES (50)"]);

        var logs = new CapturingLoggerFactory();
        var config = db.Config("waiter");
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var launch = dbos.LaunchAsync();
        for (var version = 57; version < 123; version += 7)
        {
            await Task.Delay(150);
            Assert.False(launch.IsCompleted, $"The launch finished at version {version - 7}, before the other process was done.");
            await RunAsync(other, [$"UPDATE dbos.dbos_migrations SET version = {version}"]);
        }

        await RunAsync(other, ["UPDATE dbos.dbos_migrations SET version = 123"]);
        await launch.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Single(logs.Messages, m => m.Id.Id == WaitingEventId);
        SchemaDump.AssertEqual(await ReferenceAsync(), await SchemaDump.OfAsync(db.Url));
        Assert.Equal(new long[] { 123 }, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    /// <summary>
    /// Waiting for another process is real time, whatever clock the application is given: a launch with a fake clock
    /// that nobody advances, finding the migration lock held, went on polling that clock forever.
    /// </summary>
    [Fact]
    public async Task A_launch_with_a_fake_clock_that_finds_the_migration_lock_held_comes_up_once_it_is_released()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var other = await OpenAsync(db);
        await RunAsync(other, ["SELECT pg_advisory_lock(x'44424f535f4d4947'::bigint)"]);

        var logs = new CapturingLoggerFactory();
        var config = db.Config("fake-clock");
        config.LoggerFactory = logs;
        config.TimeProvider = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var dbos = DbosApp.Create(config);
        var launch = dbos.LaunchAsync();
        await Task.Delay(500);
        Assert.False(launch.IsCompleted, "The launch did not wait for the migration lock.");
        Assert.Single(logs.Messages, m => m.Id.Id == WaitingEventId);

        await RunAsync(other, ["SELECT pg_advisory_unlock(x'44424f535f4d4947'::bigint)"]);
        await launch.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(new long[] { PostgresSchema.LatestVersion }, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    /// <summary>
    /// Another implementation creates the schema in a statement of its own before any table. An install that runs its
    /// CREATE SCHEMA IF NOT EXISTS at that moment waits on the other session's uncommitted schema row and then fails
    /// with a unique violation on pg_namespace, while the schema is still empty; the launch used to die of it (seen once
    /// in twenty timed launches beside the TypeScript SDK). Staged here by holding the schema in an open transaction
    /// until the install is seen waiting on it.
    /// </summary>
    [Fact]
    public async Task A_launch_whose_install_meets_another_sessions_create_schema_installs_once_it_commits()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var other = await OpenAsync(db);
        await using (var transaction = await other.BeginTransactionAsync())
        {
            await using (var create = new NpgsqlCommand("CREATE SCHEMA dbos", other, transaction))
            {
                await create.ExecuteNonQueryAsync();
            }

            await using var dbos = DbosApp.Create(db.Config("schema-race"));
            var launch = dbos.LaunchAsync();
            await using (var monitor = await OpenAsync(db))
            {
                var stopwatch = Stopwatch.StartNew();
                while (!await IsWaitingOnLockAsync(monitor, other.ProcessID))
                {
                    Assert.False(launch.IsCompleted, "The launch finished while another session held the schema uncommitted.");
                    Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(20), "The install never waited on the other session's CREATE SCHEMA.");
                    await Task.Delay(20);
                }
            }

            await transaction.CommitAsync();
            await launch.WaitAsync(TimeSpan.FromSeconds(30));
        }

        SchemaDump.AssertEqual(await ReferenceAsync(), await SchemaDump.OfAsync(db.Url));
        Assert.Equal(new long[] { 123 }, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    /// <summary>Whether some session is waiting for a lock that the session with process ID <paramref name="holder"/> holds.</summary>
    private static async Task<bool> IsWaitingOnLockAsync(NpgsqlConnection monitor, int holder)
    {
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", monitor);
        command.Parameters.Add(new NpgsqlParameter { Value = holder });
        return (long)(await command.ExecuteScalarAsync())! > 0;
    }

    [Fact]
    public async Task A_migration_that_stops_in_the_shared_range_is_finished_here_after_the_bound()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var other = await OpenAsync(db);
        var baseline = PostgresSchema.Migrations("dbos")[0];
        Assert.Equal(PostgresSchema.BaselineVersion, baseline.Version);
        await RunAsync(other, [.. baseline.Migration.Statements, "INSERT INTO dbos.dbos_migrations (version) VALUES (95)"]);

        var logs = new CapturingLoggerFactory();
        await using var executor = Executor(db, logs, TimeSpan.FromSeconds(1));
        var clock = Stopwatch.StartNew();
        var migrate = executor.MigrateAsync(CancellationToken.None);
        await Task.Delay(200);
        await RunAsync(other, ["UPDATE dbos.dbos_migrations SET version = 97"]);
        await Task.Delay(200);
        await RunAsync(other, ["UPDATE dbos.dbos_migrations SET version = 99"]);
        await migrate.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.4), $"Finished after {clock.Elapsed}, before the version stayed put for the bound.");
        Assert.Single(logs.Messages, m => m.Id.Id == WaitingEventId);
        SchemaDump.AssertEqual(await ReferenceAsync(), await SchemaDump.OfAsync(db.Url));
        Assert.Equal(new long[] { 123 }, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    [Fact]
    public async Task A_version_that_stays_below_the_shared_base_is_refused_after_the_bound_and_left_unchanged()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var other = await OpenAsync(db);
        await RunAsync(other, [.. PostgresSchema.Migrations("dbos")[0].Migration.Statements, "INSERT INTO dbos.dbos_migrations (version) VALUES (50)"]);
        var before = await SchemaDump.OfAsync(db.Url);

        var logs = new CapturingLoggerFactory();
        await using var executor = Executor(db, logs, TimeSpan.FromSeconds(1));
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => executor.MigrateAsync(CancellationToken.None));

        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"Refused after {clock.Elapsed}, before the bound.");
        Assert.Contains("schema version 50", ex.Message, StringComparison.Ordinal);
        Assert.Contains("older release", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", ex.Message, StringComparison.Ordinal);
        Assert.Single(logs.Messages, m => m.Id.Id == WaitingEventId);
        SchemaDump.AssertEqual(before, await SchemaDump.OfAsync(db.Url));
        Assert.Equal(new long[] { 50 }, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    [Fact]
    public async Task System_tables_without_a_version_that_stay_so_are_refused_after_the_bound()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var other = await OpenAsync(db);
        await RunAsync(other, ["CREATE SCHEMA dbos", "CREATE TABLE dbos.dbos_migrations (version bigint PRIMARY KEY)"]);

        await using var executor = Executor(db, new CapturingLoggerFactory(), TimeSpan.FromSeconds(1));
        var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => executor.MigrateAsync(CancellationToken.None));

        Assert.Contains("no schema version", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", ex.Message, StringComparison.Ordinal);
        await using var count = new NpgsqlCommand("SELECT count(*) FROM dbos.dbos_migrations", other);
        Assert.Equal(0L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_schema_holding_only_a_datasource_checkpoint_table_is_installed_into_at_once()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var other = await OpenAsync(db);
        await RunAsync(other, ["CREATE SCHEMA dbos", "CREATE TABLE dbos.transaction_completion (workflow_id TEXT NOT NULL, function_num INT4 NOT NULL, PRIMARY KEY (workflow_id, function_num))"]);

        var logs = new CapturingLoggerFactory();
        await using var executor = Executor(db, logs, TimeSpan.FromSeconds(30));
        await executor.MigrateAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.DoesNotContain(logs.Messages, m => m.Id.Id == WaitingEventId);
        Assert.Equal(new long[] { 123 }, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    private static PostgresExecutor Executor(TestDatabase db, CapturingLoggerFactory logs, TimeSpan bound) =>
        new((PostgresUrl)DatabaseUrl.Parse(db.Url, "test"), "dbos", 2, null)
        {
            MigrationWaitBound = bound,
            Logger = logs.CreateLogger("migration"),
        };

    private static async Task<NpgsqlConnection> OpenAsync(TestDatabase db)
    {
        var connection = new NpgsqlConnection(TestDatabase.ConnectionString(db.Url));
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Runs the statements in one transaction, as another implementation's migration step would.</summary>
    private static async Task RunAsync(NpgsqlConnection connection, IEnumerable<string> statements)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var statement in statements)
        {
            await using var command = new NpgsqlCommand(statement, connection, transaction);
            await command.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
    }

    private static async Task<List<string>> ReferenceAsync() =>
        SchemaDump.Normalize(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Reference", "dbos-sdk-5.3.0.schema.sql")));
}
