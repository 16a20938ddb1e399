using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Scenarios 29–31 and 36: three real worker processes on one Postgres (and a killed one), judged from the recorded rows:
/// when each workflow was dequeued and completed, by which executor, and how often its step ran.
/// </summary>
public class QueueProcessTests
{
    private sealed record Run(string WorkflowId, string Executor, long StartedAt, long CompletedAt);

    private static async Task<List<Run>> RunsAsync(TestDatabase db, string queue) =>
        await db.QueryAsync(
            $"SELECT workflow_uuid, executor_id, started_at_epoch_ms, completed_at FROM {{workflow_status}} WHERE name = 'queued-task' AND queue_name = '{queue}' AND status = 'SUCCESS'",
            r => new Run(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3)));

    /// <summary>The most runs that overlapped at any moment (an interval ends exactly when another may start).</summary>
    private static int MaxOverlap(IEnumerable<Run> runs)
    {
        var events = runs.SelectMany(r => new[] { (Time: r.StartedAt, Delta: 1), (Time: r.CompletedAt, Delta: -1) })
            .OrderBy(e => e.Time).ThenBy(e => e.Delta);
        int current = 0, max = 0;
        foreach (var (_, delta) in events)
        {
            current += delta;
            max = Math.Max(max, current);
        }

        return max;
    }

    /// <summary>Starts worker processes, each with its own ledger file (<c>ledger-N.txt</c> in the test's folder).</summary>
    private static async Task<List<WorkerProcess>> StartWorkersAsync(TestDatabase db, int count)
    {
        var workers = new List<WorkerProcess>();
        for (var i = 1; i <= count; i++)
        {
            var environment = db.WorkerEnvironment(Path.Combine(db.Directory, $"ledger-{i}.txt"));
            environment["DBOS__VMID"] = $"worker-{i}";
            workers.Add(WorkerProcess.Start(environment, db.Directory, "serve"));
        }

        foreach (var worker in workers)
        {
            await worker.WaitForLineAsync("serving");
        }

        return workers;
    }

    private static async Task EnqueueAsync(TestDatabase db, string queue, int count, int milliseconds)
    {
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "crash-worker" });
        for (var i = 0; i < count; i++)
        {
            await client.EnqueueAsync<int, int>(new EnqueueOptions { WorkflowName = "queued-task", QueueName = queue, WorkflowId = $"{queue}-{i:D2}" }, milliseconds);
        }
    }

    private static async Task WaitForSuccessAsync(TestDatabase db, string queue, int count, TimeSpan timeout) =>
        await Eventually.HoldsAsync(
            async () => await db.CountAsync($"SELECT count(*) FROM {{workflow_status}} WHERE queue_name = '{queue}' AND status = 'SUCCESS'") == count,
            $"{count} workflows of {queue} succeed",
            timeout);

    private static async Task<List<string>> LedgerAsync(TestDatabase db)
    {
        var lines = new List<string>();
        foreach (var file in Directory.GetFiles(db.Directory, "ledger*.txt").Order())
        {
            lines.AddRange(await File.ReadAllLinesAsync(file));
        }

        return lines;
    }

    private static async Task AssertEachRanOnceAsync(TestDatabase db, IEnumerable<Run> runs)
    {
        var lines = await LedgerAsync(db);
        foreach (var run in runs)
        {
            var ends = lines.Count(l => l.StartsWith($"end {run.WorkflowId} ", StringComparison.Ordinal));
            Assert.True(ends == 1, $"{run.WorkflowId} finished its step {ends} times. Ledger:{Environment.NewLine}{string.Join(Environment.NewLine, lines)}");
        }
    }

    [Fact]
    public async Task Global_concurrency_holds_across_three_processes_and_each_workflow_runs_once()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var workers = await StartWorkersAsync(db, 3);
        try
        {
            await EnqueueAsync(db, "global2", 10, 300);
            await WaitForSuccessAsync(db, "global2", 10, TimeSpan.FromSeconds(60));
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }

        var runs = await RunsAsync(db, "global2");
        Assert.Equal(10, runs.Count);
        Assert.True(MaxOverlap(runs) <= 2, $"{MaxOverlap(runs)} ran at once");
        Assert.Equal(2, MaxOverlap(runs));
        Assert.All(await db.QueryAsync("SELECT recovery_attempts FROM {workflow_status}", r => r.GetInt64(0)), a => Assert.Equal(1L, a));
        await AssertEachRanOnceAsync(db, runs);
    }

    [Fact]
    public async Task Worker_concurrency_limits_each_process_to_one_at_a_time()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var workers = await StartWorkersAsync(db, 3);
        try
        {
            await EnqueueAsync(db, "perworker1", 9, 300);
            await WaitForSuccessAsync(db, "perworker1", 9, TimeSpan.FromSeconds(60));
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }

        var runs = await RunsAsync(db, "perworker1");
        Assert.Equal(9, runs.Count);
        foreach (var executor in runs.GroupBy(r => r.Executor))
        {
            Assert.Equal(1, MaxOverlap(executor));
        }

        Assert.True(MaxOverlap(runs) > 1, "the processes ran in parallel with each other");
        await AssertEachRanOnceAsync(db, runs);
    }

    [Fact]
    public async Task A_rate_limit_of_five_per_two_seconds_holds_across_three_processes()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var workers = await StartWorkersAsync(db, 3);
        try
        {
            await EnqueueAsync(db, "rated", 12, 10);
            await WaitForSuccessAsync(db, "rated", 12, TimeSpan.FromSeconds(60));
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }

        var starts = (await RunsAsync(db, "rated")).Select(r => r.StartedAt).Order().ToList();
        Assert.Equal(12, starts.Count);
        foreach (var start in starts)
        {
            var inWindow = starts.Count(s => s >= start && s < start + 2000);
            Assert.True(inWindow <= 5, $"{inWindow} started in the 2 s after {start}");
        }

        // Twelve at five per two seconds take at least two full periods.
        Assert.True(starts[^1] - starts[0] >= 4000, $"all started within {starts[^1] - starts[0]} ms");
    }

    [Fact]
    public async Task Queued_workflows_of_a_process_that_dies_are_recovered_when_it_restarts_and_none_is_lost()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS__VMID"] = "phoenix";
        await using (var first = WorkerProcess.Start(environment, db.Directory, "serve"))
        {
            await first.WaitForLineAsync("serving");
            await EnqueueAsync(db, "global2", 6, 1500);
            await Eventually.HoldsAsync(
                async () => File.Exists(ledger) && (await File.ReadAllLinesAsync(ledger)).Count(l => l.StartsWith("start ", StringComparison.Ordinal)) >= 2,
                "two workflows are running");
            first.Kill();
        }

        var interrupted = (await File.ReadAllLinesAsync(ledger)).Where(l => l.StartsWith("start ", StringComparison.Ordinal)).Select(l => l.Split(' ')[1]).ToList();
        Assert.Equal(2, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE status = 'PENDING' AND executor_id = 'phoenix'"));

        await using (var second = WorkerProcess.Start(environment, db.Directory, "serve"))
        {
            await WaitForSuccessAsync(db, "global2", 6, TimeSpan.FromSeconds(60));
        }

        var runs = await RunsAsync(db, "global2");
        Assert.Equal(6, runs.Count);
        Assert.True(MaxOverlap(runs) <= 2);
        await AssertEachRanOnceAsync(db, runs);
        var attempts = await db.QueryAsync("SELECT workflow_uuid, recovery_attempts, executor_id FROM {workflow_status}", r => (r.GetString(0), r.GetInt64(1), r.GetString(2)));
        var ledgerText = string.Join(Environment.NewLine, await File.ReadAllLinesAsync(ledger));
        Assert.All(attempts, a => Assert.True(a.Item2 == (interrupted.Contains(a.Item1) ? 2L : 1L), $"{a} interrupted: {string.Join(",", interrupted)}{Environment.NewLine}{ledgerText}"));
    }
    [Fact]
    public async Task A_process_killed_right_after_claiming_its_own_enqueue_has_the_workflow_recovered_and_run_once()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS__VMID"] = "phoenix";
        await using (var first = WorkerProcess.Start(environment, db.Directory, "enqueue-own", "own-1", "1500"))
        {
            await first.WaitForLineAsync("enqueued own-1");
            first.Kill();
        }

        // Claimed by its own insert: PENDING, owned by the dead process, exactly as a claim leaves a row.
        var row = (await db.QueryAsync(
            "SELECT status, executor_id, owner_xid IS NOT NULL, started_at_epoch_ms IS NOT NULL, recovery_attempts, queue_name FROM {workflow_status} WHERE workflow_uuid = 'own-1'",
            r => (r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetBoolean(3), r.GetInt64(4), r.GetString(5)))).Single();
        Assert.Equal(("PENDING", "phoenix", true, true, 1L, "own"), row);

        await using (var second = WorkerProcess.Start(environment, db.Directory, "serve"))
        {
            await WaitForSuccessAsync(db, "own", 1, TimeSpan.FromSeconds(60));
        }

        var lines = await File.ReadAllLinesAsync(ledger);
        Assert.Equal(1, lines.Count(l => l.StartsWith("end own-1 ", StringComparison.Ordinal)));
        Assert.Equal(2L, await db.CountAsync("SELECT recovery_attempts FROM {workflow_status} WHERE workflow_uuid = 'own-1'"));
    }
}
