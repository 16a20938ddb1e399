using System.Collections.Concurrent;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>Scenario 41 and the schedule and version APIs.</summary>
public class ScheduleTests
{
    [Theory, BothBackends]
    public async Task A_schedule_runs_once_per_tick_with_its_time_and_can_be_paused_resumed_triggered_and_backfilled(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ticks = new ConcurrentQueue<DateTimeOffset>();
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterScheduledWorkflow("every-second", "* * * * * *", (WorkflowContext ctx, DateTimeOffset at) =>
        {
            ticks.Enqueue(at);
            return Task.FromResult(at.Second);
        });
        await dbos.LaunchAsync();

        await Eventually.HoldsAsync(() => Task.FromResult(ticks.Count >= 3), "three ticks ran", TimeSpan.FromSeconds(15));
        // Ticks run concurrently on the internal queue, so they may finish out of order: every second from the first
        // tick to the last one seen runs, each once.
        var seen = ticks.Order().ToArray();
        var seconds = (int)(seen[^1] - seen[0]).TotalSeconds;
        await Eventually.HoldsAsync(
            () => Task.FromResult(Enumerable.Range(0, seconds + 1).All(i => ticks.Contains(seen[0].AddSeconds(i)))),
            "every tick between the first and the last seen ran",
            TimeSpan.FromSeconds(15));
        Assert.All(seen, t => Assert.Equal(0, t.Millisecond));
        Assert.Equal(ticks.Count, ticks.Distinct().Count());

        var runs = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = "every-second" });
        var first = runs.First();
        Assert.Equal($"sched-every-second-{seen[0].UtcDateTime:yyyy-MM-dd'T'HH:mm:ss}.000Z", first.WorkflowId);
        Assert.Equal(seen[0], first.GetInput<DateTimeOffset>());
        var scheduleColumn = await db.QueryAsync($"SELECT schedule_name FROM {{workflow_status}} WHERE workflow_uuid = '{first.WorkflowId}'", r => r.GetString(0));
        Assert.Equal("every-second", Assert.Single(scheduleColumn));

        var schedule = Assert.Single(await dbos.ListSchedulesAsync());
        Assert.Equal(("every-second", "every-second", "* * * * * *", ScheduleStatus.Active), (schedule.Name, schedule.WorkflowName, schedule.Cron, schedule.Status));
        Assert.NotNull(schedule.LastFiredAt);

        await dbos.PauseScheduleAsync("every-second");
        await Task.Delay(1500); // The supervisor stops the loop within a second.
        var pausedAt = ticks.Count;
        await Task.Delay(2000);
        Assert.InRange(ticks.Count, pausedAt, pausedAt + 1);
        Assert.Equal(ScheduleStatus.Paused, (await dbos.ListSchedulesAsync())[0].Status);

        await dbos.ResumeScheduleAsync("every-second");
        var resumedFrom = ticks.Count;
        await Eventually.HoldsAsync(() => Task.FromResult(ticks.Count >= resumedFrom + 2), "ticks resume", TimeSpan.FromSeconds(15));

        var triggered = await dbos.TriggerScheduleAsync("every-second");
        Assert.StartsWith("sched-every-second-trigger-", triggered.WorkflowId, StringComparison.Ordinal);
        await triggered.GetResultAsync<int>();

        var start = new DateTimeOffset(2030, 5, 1, 0, 0, 0, TimeSpan.Zero);
        var backfilled = await dbos.BackfillScheduleAsync("every-second", start, start.AddSeconds(4));
        Assert.Equal(3, backfilled.Count);
        Assert.Equal(backfilled, await dbos.BackfillScheduleAsync("every-second", start, start.AddSeconds(4)));
        foreach (var id in backfilled)
        {
            await (await dbos.RetrieveWorkflowAsync<int>(id)).GetResultAsync();
        }

        Assert.Equal(3, ticks.Count(t => t.Year == 2030));
        await Assert.ThrowsAsync<ArgumentException>(() => dbos.CreateScheduleAsync("every-second", "not a cron"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => dbos.CreateScheduleAsync("every-second", "* * * * *", new ScheduleOptions { Name = "every-second" }));
    }

    [Theory, BothBackends]
    public async Task Schedules_created_at_runtime_fire_in_their_time_zone_and_can_be_deleted(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ticks = new ConcurrentQueue<DateTimeOffset>();
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterWorkflow("report", (WorkflowContext ctx, DateTimeOffset at) =>
        {
            ticks.Enqueue(at);
            return Task.FromResult(0);
        });
        await dbos.LaunchAsync();

        var created = await dbos.CreateScheduleAsync("report", "*/2 * * * * *", new ScheduleOptions { Name = "report-paris", TimeZone = "Europe/Paris" });
        Assert.Equal(("report-paris", "Europe/Paris"), (created.Name, created.TimeZone));
        await Eventually.HoldsAsync(() => Task.FromResult(ticks.Count >= 2), "the runtime schedule fires", TimeSpan.FromSeconds(20));
        Assert.All(ticks, t => Assert.Equal(0, t.Second % 2));

        await dbos.DeleteScheduleAsync("report-paris");
        Assert.Empty(await dbos.ListSchedulesAsync());
        await Assert.ThrowsAsync<ArgumentException>(() => dbos.CreateScheduleAsync("report", "* * * * *", new ScheduleOptions { Name = "bad-zone", TimeZone = "Mars/Olympus" }));
    }

    [Fact]
    public async Task Two_processes_sharing_a_schedule_run_each_tick_exactly_once_and_do_not_replay_missed_ticks()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var workers = new List<WorkerProcess>();
        for (var i = 1; i <= 2; i++)
        {
            var environment = db.WorkerEnvironment(Path.Combine(db.Directory, $"ledger-{i}.txt"));
            environment["DBOS__VMID"] = $"worker-{i}";
            environment["DBOS_TEST_TICKER"] = "1";
            workers.Add(WorkerProcess.Start(environment, db.Directory, "serve"));
        }

        try
        {
            foreach (var worker in workers)
            {
                await worker.WaitForLineAsync("serving");
            }

            await Task.Delay(TimeSpan.FromSeconds(7));
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }

        var stoppedAt = DateTimeOffset.UtcNow;
        var lines = Directory.GetFiles(db.Directory, "ledger-*.txt").SelectMany(File.ReadAllLines).Where(l => l.StartsWith("tick ", StringComparison.Ordinal)).ToList();
        var perTick = lines.GroupBy(l => l.Split(' ')[1]).ToList();
        Assert.True(perTick.Count >= 5, $"only {perTick.Count} ticks ran: {string.Join(", ", lines)}");
        Assert.All(perTick, tick => Assert.Single(tick));
        // Every tick that ran is one recorded workflow. The workers are killed, so a tick caught mid-run, or enqueued and
        // not started yet (at most one per worker: each enqueues one tick at a time), is not finished; every other one succeeded.
        var recorded = await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE name = 'ticker'");
        var succeeded = await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE name = 'ticker' AND status = 'SUCCESS'");
        Assert.InRange(recorded, perTick.Count, perTick.Count + workers.Count);
        Assert.InRange(succeeded, perTick.Count - workers.Count, perTick.Count);
        Assert.InRange(recorded - succeeded, 0, workers.Count);

        // Ticks missed while nothing ran are not replayed when a process starts again.
        await Task.Delay(TimeSpan.FromSeconds(3));
        var environmentAgain = db.WorkerEnvironment(Path.Combine(db.Directory, "ledger-3.txt"));
        environmentAgain["DBOS_TEST_TICKER"] = "1";
        var restartedAt = DateTimeOffset.UtcNow;
        await using (var again = WorkerProcess.Start(environmentAgain, db.Directory, "serve"))
        {
            await again.WaitForLineAsync("serving");
            await Task.Delay(TimeSpan.FromSeconds(2));
        }

        var runs = await db.QueryAsync("SELECT workflow_uuid FROM {workflow_status} WHERE name = 'ticker'", r => r.GetString(0));
        var gap = runs.Select(id => DateTimeOffset.Parse(id["sched-ticker-".Length..], System.Globalization.CultureInfo.InvariantCulture))
            .Where(t => t > stoppedAt.AddSeconds(1) && t < restartedAt.AddSeconds(-1))
            .ToList();
        Assert.Empty(gap);
    }

    [Theory, BothBackends]
    public async Task Versions_are_listed_and_only_the_latest_takes_work_enqueued_without_a_version(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ranBy = new ConcurrentQueue<string>();

        DbosApp Build(string version)
        {
            // Two live processes, each with an executor ID of its own.
            var config = db.Config(applicationVersion: version);
            config.ExecutorId = $"executor-{version}";
            var app = DbosApp.Create(config);
            app.RegisterQueue("work", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
            app.RegisterWorkflow("job", (WorkflowContext ctx, int x) =>
            {
                ranBy.Enqueue(version);
                return Task.FromResult(x);
            });
            return app;
        }

        await using var v1 = Build("v1");
        await v1.LaunchAsync();
        await Task.Delay(20);
        await using var v2 = Build("v2");
        await v2.LaunchAsync();

        var versions = await v1.ListApplicationVersionsAsync();
        Assert.Equal(["v2", "v1"], versions.Select(v => v.Name));

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        var first = await client.EnqueueAsync<int, int>(new EnqueueOptions { WorkflowName = "job", QueueName = "work" }, 1);
        Assert.Equal(1, await first.GetResultAsync());
        Assert.Equal(["v2"], ranBy);

        await client.SetLatestApplicationVersionAsync("v1");
        Assert.Equal("v1", (await client.ListApplicationVersionsAsync())[0].Name);
        var second = await client.EnqueueAsync<int, int>(new EnqueueOptions { WorkflowName = "job", QueueName = "work" }, 2);
        Assert.Equal(2, await second.GetResultAsync());
        Assert.Equal(["v2", "v1"], ranBy);
    }
}
