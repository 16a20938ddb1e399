using System.Collections.Concurrent;
using Dbos.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Dbos.Tests.Reliability;

/// <summary>
/// Faults of a SQLite system database: another connection holding the write lock, a file that cannot be created where
/// the URL points, and the file deleted under the running application.
/// </summary>
public class SqliteFaultTests
{
    private const int FileMovedEvent = 18;

    private static Workflow<int, int> RegisterCounted(DbosApp dbos, ConcurrentDictionary<string, int> runs, int steps) =>
        dbos.RegisterWorkflow("counted", async (WorkflowContext ctx, int n) =>
        {
            var sum = 0;
            for (var step = 0; step < steps; step++)
            {
                var s = step;
                var id = ctx.WorkflowId;
                sum += await ctx.RunStepAsync($"step-{s}", ct =>
                {
                    runs.AddOrUpdate($"{id}/{s}", 1, (_, c) => c + 1);
                    return Task.FromResult((n * 100) + s);
                });
            }

            return sum;
        });

    private static string FilePath(TestDatabase db) => db.Url["sqlite:///".Length..];

    [Fact]
    public async Task Writers_wait_while_another_connection_holds_the_write_lock_and_then_complete_with_nothing_lost()
    {
        const int Workflows = 6;
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = new ConcurrentDictionary<string, int>();
        var counted = RegisterCounted(dbos, runs, 3);
        await dbos.LaunchAsync();
        Assert.Equal(3, await counted.RunAsync(1, new StartOptions { WorkflowId = "before" }) - 300);
        runs.Clear();

        Task<WorkflowHandle<int>>[] starts;
        await using (var other = new SqliteConnection($"Data Source={FilePath(db)};Pooling=False"))
        {
            other.Open();
            await using (var begin = other.CreateCommand())
            {
                begin.CommandText = "BEGIN IMMEDIATE";
                begin.ExecuteNonQuery();
            }

            // A writer that finds the lock taken waits in SQLite's busy handler, on its own thread: start from the pool.
            starts = Enumerable.Range(0, Workflows).Select(i => Task.Run(() => counted.StartAsync(i, new StartOptions { WorkflowId = $"locked-{i}" }))).ToArray();

            // The lock is held for several seconds (the fault itself, not a wait for something to happen).
            await Task.Delay(TimeSpan.FromSeconds(3));
            await using (var count = other.CreateCommand())
            {
                count.CommandText = "SELECT count(*) FROM workflow_status WHERE workflow_uuid LIKE 'locked-%'";
                Assert.Equal(0L, (long)count.ExecuteScalar()!);
            }

            await using var rollback = other.CreateCommand();
            rollback.CommandText = "ROLLBACK";
            rollback.ExecuteNonQuery();
        }

        var handles = await Task.WhenAll(starts).WaitAsync(TimeSpan.FromSeconds(60));
        for (var i = 0; i < Workflows; i++)
        {
            Assert.Equal((i * 300) + 3, await handles[i].GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        }

        Assert.Equal(Workflows * 3, runs.Count);
        Assert.All(runs.Values, count => Assert.Equal(1, count));
        Assert.Equal(Workflows * 3, await db.CountAsync("SELECT count(*) FROM {operation_outputs} WHERE workflow_uuid LIKE 'locked-%'"));
    }

    /// <summary>
    /// Tests run as root, which file permissions do not stop, so a chmod-ed folder would not fail. These locations fail
    /// for root too: a folder whose parent is a regular file, and /proc, where no file can be created.
    /// </summary>
    [Fact]
    public async Task A_location_where_the_file_cannot_be_created_fails_launch_naming_the_path()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var regularFile = Path.Combine(db.Directory, "not-a-folder");
        await File.WriteAllTextAsync(regularFile, "x");

        var underFile = Path.Combine(regularFile, "sub", "system.sqlite");
        await using (var dbos = DbosApp.Create(new DbosConfig { Name = "under-file", SystemDatabaseUrl = "sqlite:///" + underFile }))
        {
            var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => dbos.LaunchAsync());
            Assert.Contains(Path.Combine(regularFile, "sub"), ex.Message, StringComparison.Ordinal);
        }

        var inProc = $"/proc/dbos-{Guid.NewGuid():N}.sqlite";
        await using (var dbos = DbosApp.Create(new DbosConfig { Name = "in-proc", SystemDatabaseUrl = "sqlite:///" + inProc }))
        {
            var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => dbos.LaunchAsync());
            Assert.Contains(inProc, ex.Message, StringComparison.Ordinal);
            Assert.Contains("unable to open", ex.Message, StringComparison.Ordinal);
        }

        // A client never creates the file or its folder; it names what is missing.
        var missing = Path.Combine(db.Directory, "missing", "system.sqlite");
        await using (var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = "sqlite:///" + missing }))
        {
            var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => client.ListWorkflowsAsync());
            Assert.Contains(missing, ex.Message, StringComparison.Ordinal);
            Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        }

        Assert.False(Directory.Exists(Path.Combine(db.Directory, "missing")));
    }

    [Fact]
    public async Task A_database_file_deleted_under_the_running_application_is_reported_and_no_write_is_acknowledged_into_it()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var runs = new ConcurrentDictionary<string, int>();
        var counted = RegisterCounted(dbos, runs, 2);
        await dbos.LaunchAsync();
        Assert.Equal(1, await counted.RunAsync(0, new StartOptions { WorkflowId = "before" }));

        var path = FilePath(db);
        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
        {
            File.Delete(file);
        }

        var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => counted.StartAsync(1, new StartOptions { WorkflowId = "after" }));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("deleted", ex.Message, StringComparison.Ordinal);
        Assert.Contains(logs.Messages, m => m.Id.Id == FileMovedEvent && m.Message.Contains(path, StringComparison.Ordinal));
        Assert.DoesNotContain(runs.Keys, k => k.StartsWith("after/", StringComparison.Ordinal));

        // A file put back at the path (a new, empty one here) is not the one the application has open: still refused.
        await File.WriteAllBytesAsync(path, []);
        await Assert.ThrowsAsync<DbosDatabaseException>(() => counted.StartAsync(2, new StartOptions { WorkflowId = "after-2" }));
    }
}
