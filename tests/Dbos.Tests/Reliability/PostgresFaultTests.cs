using System.Collections.Concurrent;
using Dbos.Tests.Infrastructure;
using Npgsql;

namespace Dbos.Tests.Reliability;

/// <summary>
/// Faults of a Postgres system database while workflows run: connections killed, the database refusing connections for
/// a while, the notification connection dropped, statements cancelled by a statement timeout, the pool exhausted. Each
/// fault is injected only into the test's own database (or its own connections), so tests running beside it are not
/// disturbed. After each, every workflow completes with the right output and no step whose output was recorded ran twice.
/// </summary>
public class PostgresFaultTests
{
    private const int LostEvent = 13;
    private const int StillLostEvent = 14;
    private const int BackEvent = 15;
    private const int StatementRetryEvent = 16;
    private const int ListenerLostEvent = 10;
    private const int ListenerBackEvent = 17;

    /// <summary>A workflow of steps in three phases; each step counts its executions in <paramref name="runs"/>.</summary>
    private static Workflow<int, int> RegisterPhased(DbosApp dbos, ConcurrentDictionary<string, int> runs, Task gateA, Task gateB, int stepsPerPhase)
    {
        return dbos.RegisterWorkflow("phased", async (WorkflowContext ctx, int n) =>
        {
            var sum = 0;
            for (var phase = 0; phase < 3; phase++)
            {
                await (phase == 1 ? gateA : phase == 2 ? gateB : Task.CompletedTask);
                for (var s = 0; s < stepsPerPhase; s++)
                {
                    var step = phase * stepsPerPhase + s;
                    var id = ctx.WorkflowId;
                    sum += await ctx.RunStepAsync($"step-{step}", async ct =>
                    {
                        runs.AddOrUpdate($"{id}/{step}", 1, (_, c) => c + 1);
                        await Task.Delay(5, ct);
                        return (n * 100) + step;
                    });
                }
            }

            return sum;
        });
    }

    private static int Expected(int n, int steps) => Enumerable.Range(0, steps).Sum(step => (n * 100) + step);

    private static string DatabaseName(TestDatabase db) => new Uri(db.Url).AbsolutePath.Trim('/');

    /// <summary>Runs a statement on the server's maintenance database (outside the test's database, so it is not killed with it).</summary>
    private static async Task<long> AdminAsync(string sql, string database)
    {
        await using var admin = new NpgsqlConnection(TestDatabase.ConnectionString(TestDatabase.PostgresUrl("postgres")));
        await admin.OpenAsync();
        await using var command = new NpgsqlCommand(sql, admin);
        if (sql.Contains("$1", StringComparison.Ordinal))
        {
            command.Parameters.AddWithValue(database);
        }

        return Convert.ToInt64(await command.ExecuteScalarAsync() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Kills every backend connected to the test's own database: what a server restart does to its clients.</summary>
    private static Task<long> KillBackendsAsync(string database) =>
        AdminAsync("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database);

    private static Task AllowConnectionsAsync(string database, bool allow) =>
        AdminAsync($"ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS {(allow ? "true" : "false")}", database);

    private static bool Logged(CapturingLoggerFactory logs, int eventId, int count = 1) => logs.Messages.Count(m => m.Id.Id == eventId) >= count;

    private static void AssertEachStepRanOnce(ConcurrentDictionary<string, int> runs, int workflows, int steps)
    {
        Assert.Equal(workflows * steps, runs.Count);
        var repeated = runs.Where(r => r.Value != 1).Select(r => $"{r.Key} ran {r.Value} times").ToList();
        Assert.True(repeated.Count == 0, string.Join("; ", repeated));
    }

    [Fact]
    public async Task Killed_connections_and_a_database_refusing_connections_for_a_while_are_ridden_out_with_each_step_run_once()
    {
        const int Workflows = 12;
        const int PerPhase = 3;
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var database = DatabaseName(db);
        var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var runs = new ConcurrentDictionary<string, int>();
        var gateA = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gateB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var phased = RegisterPhased(dbos, runs, gateA.Task, gateB.Task, PerPhase);
        await dbos.LaunchAsync();

        var handles = new List<WorkflowHandle<int>>();
        for (var i = 0; i < Workflows; i++)
        {
            handles.Add(await phased.StartAsync(i, new StartOptions { WorkflowId = $"phased-{i}" }));
        }

        await Eventually.HoldsAsync(async () => await db.CountAsync("SELECT count(*) FROM {operation_outputs}") >= Workflows * PerPhase, "the first phase is recorded", TimeSpan.FromSeconds(60));

        // Fault 1: every connection of the application is killed (pooled ones and the listener), as by a server restart;
        // the second phase then runs on a pool of dead connections.
        Assert.True(await KillBackendsAsync(database) >= 1);
        gateA.SetResult();
        await Eventually.HoldsAsync(async () => await db.CountAsync("SELECT count(*) FROM {operation_outputs}") >= Workflows * PerPhase * 2, "the second phase is recorded", TimeSpan.FromSeconds(90));
        Assert.True(Logged(logs, LostEvent), "the lost connection is logged");

        // Fault 2: the database refuses new connections for a while and every connection is killed again: steps finish
        // while nothing can be recorded, and their records wait for the database to come back.
        try
        {
            // Counted before the fault: a background poll (dispatcher, ownership watch) may meet it, and log it, first.
            var lostBefore = logs.Messages.Count(m => m.Id.Id == LostEvent);
            await AllowConnectionsAsync(database, allow: false);
            await KillBackendsAsync(database);
            gateB.SetResult();
            await Eventually.HoldsAsync(
                () => Task.FromResult(Logged(logs, LostEvent, lostBefore + 1) && Logged(logs, StillLostEvent, 3)),
                "the application has retried against the refusing database a few times",
                TimeSpan.FromSeconds(90));
        }
        finally
        {
            await AllowConnectionsAsync(database, allow: true);
        }

        for (var i = 0; i < Workflows; i++)
        {
            Assert.Equal(Expected(i, 3 * PerPhase), await handles[i].GetResultAsync().WaitAsync(TimeSpan.FromSeconds(120)));
        }

        AssertEachStepRanOnce(runs, Workflows, 3 * PerPhase);
        Assert.Equal(Workflows, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE status = 'SUCCESS'"));
        Assert.Equal(Workflows * 3 * PerPhase, await db.CountAsync("SELECT count(*) FROM {operation_outputs}"));
        await Eventually.HoldsAsync(() => Task.FromResult(Logged(logs, BackEvent)), "the reconnection is logged");
        Assert.Contains(logs.Messages, m => m.Id.Id == BackEvent && m.Message.Contains("reachable again", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Messages, m => m.Message.Contains("dbos:dbos@", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_dropped_notification_connection_is_re_established_and_its_waiters_are_woken_by_notifications_again()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var database = DatabaseName(db);
        var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;

        // Polling is so slow that only a notification can wake the waiter within the test's time.
        config.PollingInterval = TimeSpan.FromMinutes(10);
        await using var dbos = DbosApp.Create(config);
        var inbox = dbos.RegisterWorkflow("inbox", async (WorkflowContext ctx, int unused) =>
        {
            await ctx.SetEventAsync("ready", "yes");
            return await ctx.RecvAsync<string>("mail", TimeSpan.FromMinutes(30));
        });
        await dbos.LaunchAsync();
        var handle = await inbox.StartAsync(0, new StartOptions { WorkflowId = "inbox-1" });
        Assert.Equal("yes", await dbos.GetEventAsync<string>("inbox-1", "ready", TimeSpan.FromSeconds(60)));

        const string ListenerPid = "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE '% listener'";
        var listener = await AdminAsync(ListenerPid, database);
        Assert.NotEqual(0, listener);
        Assert.Equal(1, await AdminAsync($"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid = {listener}", database));

        await Eventually.HoldsAsync(() => Task.FromResult(Logged(logs, ListenerLostEvent) && Logged(logs, ListenerBackEvent)), "the listener is lost and back", TimeSpan.FromSeconds(60));
        await Eventually.HoldsAsync(async () => await AdminAsync(ListenerPid, database) is var pid && pid != 0 && pid != listener, "a new listener connection is open");
        Assert.False(handle.GetResultAsync().IsCompleted);

        // Sent by another process's client: only the notification from the database tells the application.
        await using (var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema }))
        {
            await client.SendAsync("inbox-1", "hello", "mail");
        }

        Assert.Equal("hello", await handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(120)));
        Assert.Contains(logs.Messages, m => m.Id.Id == ListenerBackEvent && m.Message.Contains("Re-established", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Statements_cancelled_by_a_statement_timeout_behind_a_held_lock_are_retried_and_nothing_is_lost()
    {
        const int Workflows = 8;
        const int PerPhase = 2;
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var database = DatabaseName(db);

        // The schema is created first, without a timeout; then every new connection to the database gets a short one.
        await using (var first = DbosApp.Create(db.Config()))
        {
            await first.LaunchAsync();
        }

        await AdminAsync($"ALTER DATABASE \"{database}\" SET statement_timeout = '300ms'", database);
        var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var runs = new ConcurrentDictionary<string, int>();
        var gateA = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var phased = RegisterPhased(dbos, runs, gateA.Task, Task.CompletedTask, PerPhase);
        await dbos.LaunchAsync();

        var handles = new List<WorkflowHandle<int>>();
        for (var i = 0; i < Workflows; i++)
        {
            handles.Add(await phased.StartAsync(i, new StartOptions { WorkflowId = $"timed-{i}" }));
        }

        await Eventually.HoldsAsync(async () => await db.CountAsync("SELECT count(*) FROM {operation_outputs}") >= Workflows * PerPhase, "the first phase is recorded", TimeSpan.FromSeconds(60));

        // Another connection locks the steps table: every step record waits behind it until the server cancels it.
        await using (var holder = new NpgsqlConnection(TestDatabase.ConnectionString(db.Url)))
        {
            await holder.OpenAsync();
            await using (var command = new NpgsqlCommand("SET statement_timeout = 0; BEGIN; LOCK TABLE \"dbos\".operation_outputs IN EXCLUSIVE MODE", holder))
            {
                await command.ExecuteNonQueryAsync();
            }

            gateA.SetResult();
            await Eventually.HoldsAsync(() => Task.FromResult(Logged(logs, StatementRetryEvent, 3)), "cancelled statements are retried", TimeSpan.FromSeconds(60));
            Assert.Equal(Workflows * PerPhase, await db.CountAsync("SELECT count(*) FROM {operation_outputs}"));
            await using var commit = new NpgsqlCommand("COMMIT", holder);
            await commit.ExecuteNonQueryAsync();
        }

        for (var i = 0; i < Workflows; i++)
        {
            Assert.Equal(Expected(i, 3 * PerPhase), await handles[i].GetResultAsync().WaitAsync(TimeSpan.FromSeconds(120)));
        }

        AssertEachStepRanOnce(runs, Workflows, 3 * PerPhase);
        Assert.Contains(logs.Messages, m => m.Id.Id == StatementRetryEvent && m.Message.Contains("57014", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pool_of_two_runs_many_concurrent_workflows_without_deadlock()
    {
        const int Workflows = 40;
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var config = db.Config();
        config.SystemDatabasePoolSize = 2;
        await using var dbos = DbosApp.Create(config);
        var runs = new ConcurrentDictionary<string, int>();
        var phased = RegisterPhased(dbos, runs, Task.CompletedTask, Task.CompletedTask, 2);
        await dbos.LaunchAsync();

        var handles = await Task.WhenAll(Enumerable.Range(0, Workflows).Select(i => phased.StartAsync(i, new StartOptions { WorkflowId = $"pool-{i}" })));
        for (var i = 0; i < Workflows; i++)
        {
            Assert.Equal(Expected(i, 6), await handles[i].GetResultAsync().WaitAsync(TimeSpan.FromSeconds(120)));
        }

        AssertEachStepRanOnce(runs, Workflows, 6);
    }

    [Fact]
    public async Task Work_waits_while_every_pooled_connection_is_held_elsewhere_and_completes_once_they_are_released()
    {
        const int Workflows = 6;
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);

        // The application's own data source: four connections, of which the listener and the liveness session keep one each,
        // and a short wait for one.
        var connectionString = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString(db.Url)) { Pooling = true, MaxPoolSize = 4, Timeout = 1 }.ConnectionString;
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var logs = new CapturingLoggerFactory();
        var config = db.Config();
        config.SystemDatabaseDataSource = dataSource;
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        var runs = new ConcurrentDictionary<string, int>();
        var phased = RegisterPhased(dbos, runs, Task.CompletedTask, Task.CompletedTask, 1);
        await dbos.LaunchAsync();

        var held = new List<NpgsqlConnection>();
        Task<WorkflowHandle<int>>[] starts;
        try
        {
            // The two connections the listener and the liveness session leave are taken by someone else (a long report, a leak).
            await Eventually.HoldsAsync(
                async () =>
                {
                    try
                    {
                        held.Add(await dataSource.OpenConnectionAsync());
                    }
                    catch (NpgsqlException)
                    {
                        // The application holds one for a moment; try again.
                    }

                    return held.Count == 2;
                },
                "two connections are held");
            starts = Enumerable.Range(0, Workflows).Select(i => phased.StartAsync(i, new StartOptions { WorkflowId = $"held-{i}" })).ToArray();
            await Eventually.HoldsAsync(
                () => Task.FromResult(logs.Messages.Any(m => m.Id.Id == LostEvent && m.Message.Contains("pool", StringComparison.OrdinalIgnoreCase))),
                "the exhausted pool is logged",
                TimeSpan.FromSeconds(60));
            Assert.DoesNotContain(starts, s => s.IsCompleted);
        }
        finally
        {
            foreach (var connection in held)
            {
                await connection.DisposeAsync();
            }
        }

        var handles = await Task.WhenAll(starts).WaitAsync(TimeSpan.FromSeconds(120));
        for (var i = 0; i < Workflows; i++)
        {
            Assert.Equal(Expected(i, 3), await handles[i].GetResultAsync().WaitAsync(TimeSpan.FromSeconds(120)));
        }

        AssertEachStepRanOnce(runs, Workflows, 3);
        await Eventually.HoldsAsync(() => Task.FromResult(Logged(logs, BackEvent)), "the end of the wait is logged");
    }
}
