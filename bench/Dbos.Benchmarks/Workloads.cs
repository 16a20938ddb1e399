using System.Diagnostics;

namespace Dbos.Benchmarks;

/// <summary>The workloads, each measured with its raw baseline in the same run.</summary>
internal sealed partial class Workloads(bool smoke)
{
    private const string Version = "bench";
    private readonly int rounds = smoke ? 2 : 7;

    private static DbosConfig Config(string name, Target target) =>
        new() { Name = name, SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationVersion = Version, SystemDatabasePoolSize = 32 };

    /// <summary>One step, an empty workflow (median and p99) and the memory each step allocates, all sequential.</summary>
    public async Task<List<Result>> SequentialAsync(string backend, Target target)
    {
        var rawPerRound = smoke ? 20 : 1000;
        var workflowsPerRound = smoke ? 5 : 150;
        await using var dbos = DbosApp.Create(Config("bench", target));
        var step = dbos.RegisterStep("step", (int i, CancellationToken _) => Task.FromResult(i + 1));
        var empty = dbos.RegisterWorkflow("empty", (WorkflowContext ctx, int i) => Task.FromResult(i));
        var tenSteps = dbos.RegisterWorkflow("ten-steps", async (WorkflowContext ctx, int i) =>
        {
            for (var s = 0; s < 10; s++)
            {
                i = await step.RunAsync(i);
            }

            return i;
        });
        await dbos.LaunchAsync();

        // Warm up every path (JIT, pools, prepared statements).
        for (var i = 0; i < (smoke ? 3 : 200); i++)
        {
            await target.InsertAsync();
            await empty.RunAsync(i);
            await tenSteps.RunAsync(i);
        }

        for (var i = 0; i < (smoke ? 3 : 200); i++)
        {
            await target.StepStatementAsync();
            await target.WorkflowStatementsAsync();
        }

        var raw = new List<double>();
        var stepFloor = new List<double>();
        var workflowFloor = new List<double>();
        var emptyAll = new List<double>();
        var rawAll = new List<double>();
        var perStep = new List<double>();
        var emptyMedians = new List<double>();
        var pgbench = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            if (target is PostgresTarget postgres && await postgres.PgbenchInsertAsync(1, smoke ? 1 : 2) is { } bench)
            {
                pgbench.Add(bench.LatencyUs);
            }

            var rawTimes = await Stats.TimeEachAsync(rawPerRound, _ => target.InsertAsync());
            stepFloor.Add(Stats.Median(await Stats.TimeEachAsync(rawPerRound, _ => target.StepStatementAsync())));
            workflowFloor.Add(Stats.Median(await Stats.TimeEachAsync(workflowsPerRound, _ => target.WorkflowStatementsAsync())));
            var emptyTimes = await Stats.TimeEachAsync(workflowsPerRound, i => empty.RunAsync(i));
            var tenTimes = await Stats.TimeEachAsync(workflowsPerRound, i => tenSteps.RunAsync(i));
            raw.Add(Stats.Median(rawTimes));
            rawAll.AddRange(rawTimes);
            emptyAll.AddRange(emptyTimes);
            emptyMedians.Add(Stats.Median(emptyTimes));
            perStep.Add((Stats.Median(tenTimes) - Stats.Median(emptyTimes)) / 10);
            Console.Error.WriteLine($"   round {round + 1}/{rounds}: raw {raw[^1]:0.0} us, empty workflow {emptyMedians[^1]:0.0} us, per step {perStep[^1]:0.0} us");
        }

        // Managed memory allocated per step: a batch of 10-step workflows against the same number of empty ones.
        var batch = smoke ? 5 : 200;
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < batch; i++)
        {
            await empty.RunAsync(i);
        }

        var emptyBytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < batch; i++)
        {
            await tenSteps.RunAsync(i);
        }

        var tenBytes = GC.GetTotalAllocatedBytes(precise: true) - before;

        // Round trips: the statements Npgsql runs (each one round trip in autocommit) per empty workflow and per step.
        var statements = new List<Result>();
        if (backend == "Postgres")
        {
            var perEmpty = await CountStatementsAsync(batch, i => empty.RunAsync(i));
            var perTen = await CountStatementsAsync(batch, i => tenSteps.RunAsync(i));
            statements.Add(new("statements per empty workflow", backend, "statements", null, perEmpty, "2 (start, completion)"));
            statements.Add(new("statements per step", backend, "statements", null, (perTen - perEmpty) / 10, "1"));
        }

        var stepTarget = backend == "Postgres" ? "ratio <= 1.15" : "ratio <= 1.3";
        return
        [
            new("one step (sequential)", backend, "us", Stats.Median(raw), Stats.Median(perStep), stepTarget),
            .. pgbench.Count > 0 ? [new Result("one step vs pgbench one-row commit", backend, "us", Stats.Median(pgbench), Stats.Median(perStep), "ratio <= 1.5")] : Array.Empty<Result>(),
            new("one step vs its own SQL run raw", backend, "us", Stats.Median(stepFloor), Stats.Median(perStep)),
            new("empty workflow median", backend, "us", Stats.Median(raw), Stats.Median(emptyMedians), "ratio <= 2.3"),
            new("empty workflow vs its own SQL run raw", backend, "us", Stats.Median(workflowFloor), Stats.Median(emptyMedians)),
            new("empty workflow p99", backend, "us", Stats.Percentile(rawAll, 0.99), Stats.Percentile(emptyAll, 0.99)),
            new("allocated per step", backend, "bytes", null, (tenBytes - emptyBytes) / (10.0 * batch), "<= 1536"),
            .. statements,
        ];
    }

    /// <summary>Npgsql's commands (its activities) per call of <paramref name="run"/>, the application's background loops included.</summary>
    private static async Task<double> CountStatementsAsync(int count, Func<int, Task> run)
    {
        var commands = 0;
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.PropagationData,
            ActivityStarted = _ => Interlocked.Increment(ref commands),
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        for (var i = 0; i < count; i++)
        {
            await run(i);
        }

        return Volatile.Read(ref commands) / (double)count;
    }

    /// <summary>How many 10-step workflows run at once in <see cref="ConcurrentAsync"/> (<c>--concurrent-levels</c>).</summary>
    public static int[] ConcurrentLevels { get; set; } = [1, 8, 32, 64];

    /// <summary>
    /// Checkpoints a 10-step workflow writes, each a commit it waits for: its start (status and input, one statement), its
    /// ten step records and its completion (status and output, one statement).
    /// </summary>
    private const int CheckpointsPerTenStepWorkflow = 12;

    /// <summary>
    /// 10-step workflows with 1, 8, 32 and 64 at once, against raw commits from as many connections; on Postgres also the
    /// CPU each checkpoint costs this process and the server's backends, with group commit and with each record alone.
    /// </summary>
    public async Task<List<Result>> ConcurrentAsync(string backend, Target target)
    {
        await using var dbos = DbosApp.Create(Config("bench-concurrent", target));
        var step = dbos.RegisterStep("step", (int i, CancellationToken _) => Task.FromResult(i + 1));
        var tenSteps = dbos.RegisterWorkflow("ten-steps", async (WorkflowContext ctx, int i) =>
        {
            for (var s = 0; s < 10; s++)
            {
                i = await step.RunAsync(i);
            }

            return i;
        });
        await dbos.LaunchAsync();
        for (var i = 0; i < (smoke ? 3 : 100); i++)
        {
            await tenSteps.RunAsync(i);
        }

        var results = new List<Result>();
        var rawPeak = 0.0;
        var oursPeak = 0.0;
        var oursAt32 = 0.0;
        double? pgbench16 = null;
        var postgres = target as PostgresTarget;
        // Warm up the combined paths too (JIT), 32 at once.
        var warmUp = smoke ? 0 : 1000;
        await Task.WhenAll(Enumerable.Range(0, 32).Select(async w =>
        {
            for (var i = w; i < warmUp; i += 32)
            {
                await tenSteps.RunAsync(i);
            }
        }));
        if (postgres is not null)
        {
            // Measure the steady state, where autovacuum keeps the statistics current. On a new database they say
            // workflow_status is a few rows, Postgres plans the ownership guard of every checkpoint as a sequential scan,
            // and the prepared statement keeps that plan while the table grows, until the next automatic ANALYZE.
            await postgres.ScalarAsync("ANALYZE dbos.workflow_status");
        }

        foreach (var level in ConcurrentLevels)
        {
            var workflows = smoke ? level * 2 : Math.Max(60, level * 12);
            var raw = new List<double>();
            var ours = new List<double>();
            var ungrouped = new List<double>();
            var cpu = new List<(double Ours, double Server)>();
            var ungroupedCpu = new List<(double Ours, double Server)>();
            for (var round = 0; round < Math.Min(rounds, smoke ? 1 : 4); round++)
            {
                raw.Add(await target.InsertConcurrentlyAsync(level, workflows * 10));
                var compare = postgres is not null && level >= 8;

                // The same workload with every record sent alone (no group commit), interleaved in the same run, and first in
                // every other round, so neither setting always runs right after the raw baseline. (At 8 at once both
                // settings run the very same code, as no record ever waits for 8 in flight: what differs there is noise.)
                if (compare && round % 2 == 1)
                {
                    ungrouped.Add(await RunAloneAsync());
                }

                ours.Add(await RunAllAsync(cpu));
                if (compare && round % 2 == 0)
                {
                    ungrouped.Add(await RunAloneAsync());
                }

                if (compare)
                {
                    Console.Error.WriteLine(
                        $"   {level} at once, round {round + 1} ({(round % 2 == 0 ? "group commit first" : "each record alone first")}): " +
                        $"raw {raw[^1]:0}, group commit {ours[^1]:0}, each record alone {ungrouped[^1]:0} steps/s");
                }
            }

            async Task<double> RunAloneAsync()
            {
                dbos.Engine.Database.SetOperationWritesInFlight(int.MaxValue);
                try
                {
                    return await RunAllAsync(ungroupedCpu);
                }
                finally
                {
                    dbos.Engine.Database.SetOperationWritesInFlight(Dbos.SystemDatabase.SystemDatabase.MaxOperationWritesInFlight);
                }
            }

            async Task<double> RunAllAsync(List<(double Ours, double Server)> cpuPerCheckpoint)
            {
                var cpuWatch = await CpuWatch.StartAsync(postgres);
                var watch = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, level).Select(async w =>
                {
                    for (var i = w; i < workflows; i += level)
                    {
                        await tenSteps.RunAsync(i);
                    }
                }));
                var elapsed = watch.Elapsed.TotalSeconds;
                if (await cpuWatch.ReadAsync() is (var processCpu, double serverCpu))
                {
                    var checkpoints = workflows * (double)CheckpointsPerTenStepWorkflow;
                    cpuPerCheckpoint.Add((processCpu / checkpoints * 1e6, serverCpu / checkpoints * 1e6));
                }

                return workflows * 10 / elapsed;
            }

            if (ungrouped.Count > 0)
            {
                results.Add(new($"{level} at once: group commit vs each record alone", backend, "steps/s", Stats.Median(ungrouped), Stats.Median(ours)));
            }

            foreach (var (label, samples) in new[] { ("group commit", cpu), ("each record alone", ungroupedCpu) })
            {
                if (samples.Count > 0)
                {
                    Console.Error.WriteLine(
                        $"   {level} at once, {label}: CPU per checkpoint {Stats.Median(samples.Select(s => s.Ours)):0.0} us in this process, " +
                        $"{Stats.Median(samples.Select(s => s.Server)):0.0} us in the server's backends");
                }
            }

            if (cpu.Count > 0 && level >= 32)
            {
                results.Add(new($"{level} at once: CPU per checkpoint, server vs this process", backend, "us", Stats.Median(cpu.Select(s => s.Ours)), Stats.Median(cpu.Select(s => s.Server))));
            }

            if (level == 32 && postgres is not null && await postgres.PgbenchInsertAsync(16, smoke ? 1 : 3) is { } bench)
            {
                pgbench16 = bench.Tps;
            }

            if (level >= 32)
            {
                oursAt32 = Math.Max(oursAt32, Stats.Median(ours));
            }

            rawPeak = Math.Max(rawPeak, Stats.Median(raw));
            oursPeak = Math.Max(oursPeak, Stats.Median(ours));
            results.Add(new($"10-step workflows, {level} at once", backend, "steps/s", Stats.Median(raw), Stats.Median(ours)));
        }

        results.Add(new("step throughput, best vs peak raw", backend, "steps/s", rawPeak, oursPeak, backend == "Postgres" ? "ratio >= 0.75" : string.Empty));
        if (pgbench16 is { } tps)
        {
            results.Add(new("steps/s at >= 32 at once vs pgbench, 16 clients", backend, "steps/s", tps, oursAt32));
            results.Add(new(
                $"checkpoints/s (={CheckpointsPerTenStepWorkflow}/workflow) at >= 32 at once vs pgbench, 16 clients", backend, "commits/s", tps,
                oursAt32 / 10 * CheckpointsPerTenStepWorkflow, "ratio >= 1.0"));
        }

        return results;
    }

    /// <summary>Queued 1-step workflows end to end in one process, against a raw claim-and-complete queue.</summary>
    public async Task<List<Result>> QueueAsync(string backend, Target target)
    {
        const int writers = 16;
        var count = smoke ? 48 : 3008;
        await using var dbos = DbosApp.Create(Config("queue-bench", target));
        dbos.RegisterQueue("bench-queue", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var step = dbos.RegisterStep("work", (int i, CancellationToken _) => Task.FromResult(i + 1));
        var oneStep = dbos.RegisterWorkflow("one-step", (WorkflowContext ctx, int i) => step.RunAsync(i));
        await dbos.LaunchAsync();

        var raw = new List<double>();
        var ours = new List<double>();
        for (var round = 0; round < Math.Min(rounds, 3); round++)
        {
            raw.Add(await target.RawQueueAsync(count, writers, 500));
            var watch = Stopwatch.StartNew();
            var handles = new WorkflowHandle<int>[count];
            await Task.WhenAll(Enumerable.Range(0, writers).Select(async w =>
            {
                for (var i = w; i < count; i += writers)
                {
                    handles[i] = await oneStep.StartAsync(i, new StartOptions { Queue = "bench-queue" });
                }
            }));
            foreach (var handle in handles)
            {
                await handle.GetResultAsync();
            }

            ours.Add(count / watch.Elapsed.TotalSeconds);
        }

        return [new("queued 1-step workflows, one process", backend, "workflows/s", Stats.Median(raw), Stats.Median(ours), backend == "Postgres" ? "ratio >= 0.7, >= 2000/s" : string.Empty)];
    }

    /// <summary>
    /// The queue as a user writes it: 1-step workflows enqueued one at a time, each start awaited before the next, served
    /// by the same process; from the first enqueue until the last result. Raw: as many one-row commits one after the
    /// other, the bound of a loop that waits for each enqueue to be durable (one commit each).
    /// </summary>
    public async Task<List<Result>> QueueOneByOneAsync(string backend, Target target)
    {
        var count = smoke ? 40 : 1000;
        await using var dbos = DbosApp.Create(Config("queue-one-by-one", target));
        dbos.RegisterQueue("user-queue");
        var step = dbos.RegisterStep("work", (int i, CancellationToken _) => Task.FromResult(i + 1));
        var oneStep = dbos.RegisterWorkflow("one-step", (WorkflowContext ctx, int i) => step.RunAsync(i));
        await dbos.LaunchAsync();
        for (var i = 0; i < (smoke ? 5 : 100); i++)
        {
            await (await oneStep.StartAsync(i, new StartOptions { Queue = "user-queue" })).GetResultAsync();
        }

        var raw = new List<double>();
        var ours = new List<double>();
        var profiles = new List<(double Ours, double Server, double Commits, double Waiting)>();
        var postgres = target as PostgresTarget;
        const string Commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()";
        for (var round = 0; round < Math.Min(rounds, 3); round++)
        {
            var rawWatch = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                await target.InsertAsync();
            }

            raw.Add(count / rawWatch.Elapsed.TotalSeconds);

            // Where the time goes: the CPU this process and the server's backends spend per workflow, the commits per
            // workflow, and how long the caller waits for each awaited start.
            var commitsBefore = postgres is null ? 0 : await postgres.ScalarAsync(Commits);
            var cpuWatch = await CpuWatch.StartAsync(postgres);
            var waiting = TimeSpan.Zero;
            var watch = Stopwatch.StartNew();
            var handles = new WorkflowHandle<int>[count];
            for (var i = 0; i < count; i++)
            {
                var startedAt = Stopwatch.GetTimestamp();
                handles[i] = await oneStep.StartAsync(i, new StartOptions { Queue = "user-queue" });
                waiting += Stopwatch.GetElapsedTime(startedAt);
            }

            foreach (var handle in handles)
            {
                await handle.GetResultAsync();
            }

            ours.Add(count / watch.Elapsed.TotalSeconds);
            if (await cpuWatch.ReadAsync() is (var processCpu, double serverCpu))
            {
                // The statistics of the last commits reach pg_stat_database within a second.
                await Task.Delay(TimeSpan.FromSeconds(1));
                var commits = await postgres!.ScalarAsync(Commits) - commitsBefore;
                profiles.Add((processCpu / count * 1e6, serverCpu / count * 1e6, commits / (double)count, waiting.TotalMilliseconds / count));
                Console.Error.WriteLine(
                    $"   round {round + 1}: {ours[^1]:0} workflows/s, raw {raw[^1]:0} sequential commits/s; per workflow: CPU {profiles[^1].Ours:0} us here, " +
                    $"{profiles[^1].Server:0} us in the server, {profiles[^1].Commits:0.00} commits, start awaited {profiles[^1].Waiting:0.000} ms");
            }
            else
            {
                Console.Error.WriteLine($"   round {round + 1}: {ours[^1]:0} workflows/s, raw {raw[^1]:0} sequential commits/s");
            }
        }

        var results = new List<Result> { new("queued 1-step workflows, enqueued one by one", backend, "workflows/s", Stats.Median(raw), Stats.Median(ours), backend == "Postgres" ? ">= 2000/s" : string.Empty) };
        if (profiles.Count > 0)
        {
            var cpu = Stats.Median(profiles.Select(p => p.Ours + p.Server));
            results.Add(new("queue one by one: CPU per workflow, server vs this process", backend, "us", Stats.Median(profiles.Select(p => p.Ours)), Stats.Median(profiles.Select(p => p.Server))));
            results.Add(new("queue one by one: workflows/s the CPU allows vs measured", backend, "workflows/s", Environment.ProcessorCount / cpu * 1e6, Stats.Median(ours)));
            results.Add(new("queue one by one: commits per workflow", backend, "commits", null, Stats.Median(profiles.Select(p => p.Commits))));
            results.Add(new("queue one by one: awaited start", backend, "ms", null, Stats.Median(profiles.Select(p => p.Waiting))));
        }

        return results;
    }

    /// <summary>
    /// One process draining a backlog enqueued in SQL (<c>dbos.enqueue_workflow</c>, Postgres), worker concurrency 50, at
    /// two sizes: the rate should not fall as the backlog grows.
    /// </summary>
    public async Task<List<Result>> DrainAsync(string backend, Target target)
    {
        if (backend != "Postgres")
        {
            return [];
        }

        var rates = new List<double>();
        var sizes = smoke ? new[] { 200, 1000 } : new[] { 20_000, 100_000 };
        foreach (var size in sizes)
        {
            await using var scratch = await PostgresTarget.CreateAsync(((PostgresTarget)target).Server);
            rates.Add(await DrainOnceAsync(scratch, size));
            Console.Error.WriteLine($"   backlog {size}: {rates[^1]:0} workflows/s");
        }

        return
        [
            new($"drain a backlog of {sizes[0]:N0} (SQL-enqueued)", backend, "workflows/s", null, rates[0]),
            new($"drain a backlog of {sizes[1]:N0} vs of {sizes[0]:N0}", backend, "workflows/s", rates[0], rates[1], "ratio >= 0.8"),
        ];
    }

    private static async Task<double> DrainOnceAsync(PostgresTarget target, int size)
    {
        var finished = 0;
        await using var dbos = DbosApp.Create(Config("drain", target));
        dbos.RegisterQueue("drain", new QueueOptions { WorkerConcurrency = 50 });
        var step = dbos.RegisterStep("work", (int i, CancellationToken _) => Task.FromResult(i + 1));
        dbos.RegisterWorkflow("drain-one", async (WorkflowContext ctx, int i) =>
        {
            var result = await step.RunAsync(i);
            Interlocked.Increment(ref finished);
            return result;
        });
        await using (var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationName = "drain" }))
        {
            await client.MigrateAsync();
        }

        for (var done = 0; done < size; done += 5_000)
        {
            await target.ScalarAsync(
                $"SELECT count(dbos.enqueue_workflow('drain-one', 'drain', ARRAY[i::text::json], app_version => '{Version}', application_name => 'drain')) " +
                $"FROM generate_series({done}, {Math.Min(done + 5_000, size) - 1}) AS i");
        }

        await target.ScalarAsync("ANALYZE dbos.workflow_status");
        var watch = Stopwatch.StartNew();
        await dbos.LaunchAsync();
        while (await target.ScalarAsync("SELECT count(*) FROM dbos.workflow_status WHERE status IN ('ENQUEUED', 'PENDING')") > 0 || Volatile.Read(ref finished) < size)
        {
            await Task.Delay(100);
        }

        return size / watch.Elapsed.TotalSeconds;
    }

    /// <summary>Queued 1-step workflows served by three processes on one Postgres, enqueued by a client.</summary>
    public async Task<List<Result>> QueueThreeProcessesAsync(string backend, Target target)
    {
        const int writers = 16;
        var count = smoke ? 48 : 3008;
        var workers = new List<Process>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                workers.Add(StartWorker(target.SystemDatabaseUrl, $"bench-worker-{i}"));
                if (i == 0)
                {
                    // The first creates the schema; the others start once it exists.
                    await WaitReadyAsync(workers[0]);
                }
            }

            foreach (var worker in workers.Skip(1))
            {
                await WaitReadyAsync(worker);
            }

            await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationName = "queue-bench" });
            var ours = new List<double>();
            for (var round = 0; round < Math.Min(rounds, 3); round++)
            {
                var prefix = $"r{round}-";
                var watch = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, writers).Select(async w =>
                {
                    for (var i = w; i < count; i += writers)
                    {
                        await client.EnqueueAsync<int, int>(new EnqueueOptions { WorkflowName = "one-step", QueueName = "bench-queue", WorkflowId = prefix + i }, i);
                    }
                }));
                while (await target.ScalarAsync($"SELECT COUNT(*) FROM {target.Qualified("workflow_status")} WHERE status = 'SUCCESS' AND workflow_uuid LIKE '{prefix}%'") < count)
                {
                    // A worker that died must not hang the whole run.
                    if (watch.Elapsed > TimeSpan.FromMinutes(3) || workers.Any(w => w.HasExited))
                    {
                        throw new InvalidOperationException($"The queue workers stopped finishing work (round {round}).");
                    }

                    await Task.Delay(5);
                }

                ours.Add(count / watch.Elapsed.TotalSeconds);
            }

            var raw = await target.RawQueueAsync(count, writers, 500);
            return [new("queued 1-step workflows, three processes", backend, "workflows/s", raw, Stats.Median(ours))];
        }
        finally
        {
            foreach (var worker in workers)
            {
                worker.Kill(entireProcessTree: true);
                await worker.WaitForExitAsync();
                worker.Dispose();
            }
        }
    }

    private static Process StartWorker(string url, string executorId)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
        {
            info.ArgumentList.Add(typeof(Workloads).Assembly.Location);
        }

        info.ArgumentList.Add("--queue-worker");
        info.ArgumentList.Add(url);
        info.Environment["DBOS__VMID"] = executorId;
        return Process.Start(info)!;
    }

    /// <summary>Waits for a child to print <c>ready</c>; returns the executor ID it printed before, if any.</summary>
    private static async Task<string?> WaitReadyAsync(Process worker)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        string? executor = null;
        while (await worker.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("executor ", StringComparison.Ordinal))
            {
                executor = line["executor ".Length..];
            }

            if (line == "ready")
            {
                return executor;
            }
        }

        throw new InvalidOperationException("A queue worker exited before it was ready.");
    }

    /// <summary>The child process of <see cref="QueueThreeProcessesAsync"/>: serves the queue until killed.</summary>
    public static async Task<int> ServeQueueAsync(string url)
    {
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "queue-bench", SystemDatabaseUrl = url, ApplicationVersion = Version, SystemDatabasePoolSize = 16 });
        dbos.RegisterQueue("bench-queue", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var step = dbos.RegisterStep("work", (int i, CancellationToken _) => Task.FromResult(i + 1));
        dbos.RegisterWorkflow("one-step", (WorkflowContext ctx, int i) => step.RunAsync(i));
        await dbos.LaunchAsync();
        Console.WriteLine("ready");
        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    /// <summary>
    /// Takeover of a killed process's work: a survivor replica serves while, again and again, a victim replica (its own
    /// generated executor ID) starts two workflows whose step never finishes there, and is killed with SIGKILL. Measured
    /// from the kill until no workflow is pending under the victim's executor any more (moved back to its queue by the
    /// survivor), against the raw floor: the time the database (Postgres) or the operating system (SQLite) takes to
    /// release the same kind of lock held by a killed child process.
    /// </summary>
    public async Task<List<Result>> TakeoverAsync(string backend, Target target)
    {
        var kills = smoke ? 2 : 20;
        var raw = new List<double>();
        for (var i = 0; i < Math.Min(kills, 10); i++)
        {
            using var holder = target.HoldRawLock();
            await WaitUntilAsync(async () => !await target.IsRawLockFreeAsync(), "the raw lock is held");
            var watch = Stopwatch.StartNew();
            holder.Kill(entireProcessTree: true);
            await WaitUntilAsync(target.IsRawLockFreeAsync, "the raw lock is released", pollMs: 1);
            raw.Add(watch.Elapsed.TotalSeconds);
            await holder.WaitForExitAsync();
        }

        using var survivor = StartReplica(target.SystemDatabaseUrl, block: false, start: 0, prefix: "none");
        await WaitReadyAsync(survivor);
        var ours = new List<double>();
        try
        {
            for (var i = 0; i < kills; i++)
            {
                using var victim = StartReplica(target.SystemDatabaseUrl, block: true, start: 2, prefix: $"kill{i}");
                var executor = await WaitReadyAsync(victim);
                var pending = $"SELECT COUNT(*) FROM {target.Qualified("workflow_status")} WHERE status = 'PENDING' AND executor_id = '{executor}'";
                await WaitUntilAsync(async () => await target.ScalarAsync(pending) == 2, "the victim runs its workflows");
                var watch = Stopwatch.StartNew();
                victim.Kill();
                await WaitUntilAsync(async () => await target.ScalarAsync(pending) == 0, "the victim's workflows are taken over", pollMs: 5);
                ours.Add(watch.Elapsed.TotalSeconds);
                await victim.WaitForExitAsync();
            }
        }
        finally
        {
            survivor.Kill();
            await survivor.WaitForExitAsync();
        }

        return
        [
            new("takeover after SIGKILL, median", backend, "s", Stats.Median(raw), Stats.Median(ours), "<= 10 s (2 liveness intervals)"),
            new("takeover after SIGKILL, max", backend, "s", raw.Max(), ours.Max(), "<= 10 s"),
        ];
    }

    /// <summary>
    /// What liveness costs an idle application on Postgres: 1 and 10 idle replicas, counting the connections each holds
    /// and the statements each runs per second (from pg_stat_database's transaction counters) over a quiet interval.
    /// </summary>
    public async Task<List<Result>> IdleAsync(string backend, Target target)
    {
        if (backend != "Postgres")
        {
            return [];
        }

        var results = new List<Result>();
        var seconds = smoke ? 1 : 10;
        const string Transactions = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()";
        foreach (var count in smoke ? new[] { 1, 2 } : [1, 10])
        {
            var replicas = Enumerable.Range(0, count).Select(_ => StartReplica(target.SystemDatabaseUrl, block: false, start: 0, prefix: "none")).ToList();
            try
            {
                foreach (var replica in replicas)
                {
                    await WaitReadyAsync(replica);
                }

                await Task.Delay(TimeSpan.FromSeconds(smoke ? 0.5 : 2));
                var before = await target.ScalarAsync(Transactions);
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                var connections = await target.ScalarAsync(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND application_name LIKE 'dbos%'");
                await Task.Delay(TimeSpan.FromSeconds(1)); // the statistics of the last statements are flushed within a second
                var after = await target.ScalarAsync(Transactions);
                results.Add(new($"idle, {count} process(es): connections each", backend, "connections", null, (double)connections / count));
                results.Add(new($"idle, {count} process(es): statements/s each", backend, "statements/s", null, (after - before - 2) / (double)(seconds + 1) / count));
            }
            finally
            {
                foreach (var replica in replicas)
                {
                    replica.Kill();
                    await replica.WaitForExitAsync();
                    replica.Dispose();
                }
            }
        }

        return results;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int pollMs = 10)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > TimeSpan.FromMinutes(1))
            {
                throw new TimeoutException($"Timed out waiting until {what}.");
            }

            await Task.Delay(pollMs);
        }
    }

    private static Process StartReplica(string url, bool block, int start, string prefix)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
        {
            info.ArgumentList.Add(typeof(Workloads).Assembly.Location);
        }

        foreach (var argument in new[] { "--replica", url, block ? "1" : "0", start.ToString(System.Globalization.CultureInfo.InvariantCulture), prefix })
        {
            info.ArgumentList.Add(argument);
        }

        return Process.Start(info)!;
    }

    /// <summary>The child process of <see cref="TakeoverAsync"/> and <see cref="IdleAsync"/>: one replica, with the default executor ID.</summary>
    public static async Task<int> ServeReplicaAsync(string url, bool block, int start, string prefix)
    {
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "takeover-bench", SystemDatabaseUrl = url, ApplicationVersion = Version });
        var hold = dbos.RegisterStep("hold", async (int i, CancellationToken ct) =>
        {
            if (block)
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            return i;
        });
        var blocker = dbos.RegisterWorkflow("blocker", (WorkflowContext ctx, int i) => hold.RunAsync(i));
        await dbos.LaunchAsync();
        Console.WriteLine($"executor {dbos.ExecutorId}");
        for (var i = 0; i < start; i++)
        {
            await blocker.StartAsync(i, new StartOptions { WorkflowId = $"{prefix}-{i}" });
        }

        Console.WriteLine("ready");
        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    /// <summary>
    /// Recovery of many pending workflows: they are left pending by a first application (its steps never finish), then
    /// a second one launches on the same database and executor. Measured from its launch until every workflow has
    /// started again (dispatched), and until all have finished, against the time the same writes take as raw commits.
    /// </summary>
    public async Task<List<Result>> RecoveryAsync(string backend, Target target)
    {
        var count = smoke ? 200 : 10_000;
        var blocked = true;
        var started = 0;
        DbosApp Build(out Workflow<int, int> workflow)
        {
            // One executor ID for both: the second recovers the first's work at launch, as a process restarted under its ID does.
            var config = Config("recovery-bench", target);
            config.ExecutorId = "recovery-bench";
            var app = DbosApp.Create(config);
            workflow = app.RegisterWorkflow("recover-me", async (WorkflowContext ctx, int i) =>
            {
                Interlocked.Increment(ref started);
                return await ctx.RunStepAsync("work", async ct =>
                {
                    if (Volatile.Read(ref blocked))
                    {
                        await Task.Delay(Timeout.Infinite, ct);
                    }

                    return i;
                });
            });
            return app;
        }

        await using (var first = Build(out var workflow))
        {
            await first.LaunchAsync();
            await Task.WhenAll(Enumerable.Range(0, 16).Select(async w =>
            {
                for (var i = w; i < count; i += 16)
                {
                    await workflow.StartAsync(i, new StartOptions { WorkflowId = $"recover-{i}" });
                }
            }));
        }

        // Raw bound: one step and one completion per workflow, committed from 32 connections.
        var rawRate = await target.InsertConcurrentlyAsync(32, smoke ? 320 : 8000);
        var bound = count * 2 / rawRate;

        Volatile.Write(ref blocked, false);
        Volatile.Write(ref started, 0);
        await using var second = Build(out _);
        var watch = Stopwatch.StartNew();
        await second.LaunchAsync();
        while (Volatile.Read(ref started) < count)
        {
            await Task.Delay(1);
        }

        var dispatched = watch.Elapsed.TotalSeconds;
        while (await target.ScalarAsync($"SELECT COUNT(*) FROM {target.Qualified("workflow_status")} WHERE status = 'SUCCESS'") < count)
        {
            await Task.Delay(10);
        }

        var finished = watch.Elapsed.TotalSeconds;
        return
        [
            new($"recovery of {count:N0}: all dispatched", backend, "s", null, dispatched, "<= 1 s"),
            new($"recovery of {count:N0}: all finished", backend, "s", bound, finished, "ratio <= 1.2"),
        ];
    }

    /// <summary>Many workflows sleeping at once: the managed memory each holds, and the process's peak working set.</summary>
    public async Task<List<Result>> SleepersAsync(string backend, Target target)
    {
        var count = smoke ? 200 : 10_000;
        var sleeping = 0;
        await using var dbos = DbosApp.Create(Config("sleep-bench", target));
        var sleeper = dbos.RegisterWorkflow("sleeper", async (WorkflowContext ctx, int i) =>
        {
            Interlocked.Increment(ref sleeping);
            await ctx.SleepAsync(TimeSpan.FromHours(1));
            return i;
        });
        await dbos.LaunchAsync();
        await sleeper.RunAsync(-1, new StartOptions { Timeout = TimeSpan.FromMilliseconds(1) }).ContinueWith(_ => 0, TaskScheduler.Default);
        Volatile.Write(ref sleeping, 0);

        var before = GC.GetTotalMemory(forceFullCollection: true);
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async w =>
        {
            for (var i = w; i < count; i += 16)
            {
                await sleeper.StartAsync(i, new StartOptions { WorkflowId = $"sleeper-{i}" });
            }
        }));
        while (Volatile.Read(ref sleeping) < count
            || await target.ScalarAsync($"SELECT COUNT(*) FROM {target.Qualified("operation_outputs")} WHERE function_name = 'DBOS.sleep'") < count)
        {
            await Task.Delay(20);
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        using var process = Process.GetCurrentProcess();
        return
        [
            new($"{count:N0} sleeping workflows, memory each", backend, "bytes", null, (after - before) / (double)count, "<= 2048"),
            new("peak working set of the process", backend, "MiB", null, process.PeakWorkingSet64 / 1048576.0),
        ];
    }

    /// <summary>Message round trip: a workflow waiting in RecvAsync, a message sent from the same application or a client.</summary>
    public async Task<List<Result>> RoundTripAsync(string backend, Target target)
    {
        var samples = smoke ? 5 : 300;
        var received = new List<double>();
        using var signal = new SemaphoreSlim(0);
        await using var dbos = DbosApp.Create(Config("latency", target));
        var receiver = dbos.RegisterWorkflow("receiver", async (WorkflowContext ctx, int count) =>
        {
            for (var i = 0; i < count; i++)
            {
                var sentAt = await ctx.RecvAsync<long>("ping", TimeSpan.FromMinutes(1));
                lock (received)
                {
                    received.Add(Stopwatch.GetElapsedTime(sentAt).TotalMilliseconds);
                }

                signal.Release();
            }

            return count;
        });
        await dbos.LaunchAsync();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = target.SystemDatabaseUrl });

        var rows = new List<Result>();
        foreach (var (suffix, send, limit) in new (string, Func<string, Task>, int)[]
        {
            (string.Empty, id => dbos.SendAsync(id, Stopwatch.GetTimestamp(), "ping"), samples),
            (backend == "Postgres" ? ", from a client (NOTIFY)" : ", from a client (1 s polling)", id => client.SendAsync(id, Stopwatch.GetTimestamp(), "ping"), backend == "Postgres" ? samples : Math.Min(samples, smoke ? 3 : 30)),
        })
        {
            lock (received)
            {
                received.Clear();
            }

            var id = "receiver-" + Guid.NewGuid().ToString("N")[..8];
            var handle = await receiver.StartAsync(limit, new StartOptions { WorkflowId = id });
            for (var i = 0; i < limit; i++)
            {
                // Let the receiver get back to waiting, then send; the next send waits for this one's arrival.
                await Task.Delay(smoke ? 5 : 20);
                await send(id);
                await signal.WaitAsync(TimeSpan.FromSeconds(30));
            }

            await handle.GetResultAsync();
            List<double> copy;
            lock (received)
            {
                copy = [.. received];
            }

            rows.Add(new($"message round trip median{suffix}", backend, "ms", null, Stats.Median(copy)));
            rows.Add(new($"message round trip p99{suffix}", backend, "ms", null, Stats.Percentile(copy, 0.99)));
        }

        return rows;
    }

    /// <summary>
    /// A durable transaction (a step of a workflow, checkpointed in the application database and recorded in the system
    /// database) against the same transaction run plainly through the same datasource.
    /// </summary>
    public async Task<List<Result>> TransactionAsync(string backend, Target target)
    {
        var perRound = smoke ? 10 : 500;
        var workflowsPerRound = smoke ? 3 : 75;
        await using var datasource = await SqlDatasource.CreateAsync(target.SystemDatabaseUrl);
        await datasource.RunTransactionAsync("setup", (tx, _) => tx.ExecuteAsync("CREATE TABLE IF NOT EXISTS tx_rows (id TEXT PRIMARY KEY, payload TEXT)"));
        await using var dbos = DbosApp.Create(Config("tx-bench", target));
        Task<int> Insert(TransactionContext tx) => tx.ExecuteAsync("INSERT INTO tx_rows (id, payload) VALUES ($1, '42')", Guid.NewGuid().ToString());
        var empty = dbos.RegisterWorkflow("no-tx", (WorkflowContext ctx, int i) => Task.FromResult(i));
        var tenTransactions = dbos.RegisterWorkflow("ten-tx", async (WorkflowContext ctx, int i) =>
        {
            for (var t = 0; t < 10; t++)
            {
                await datasource.RunTransactionAsync("insert", (tx, _) => Insert(tx));
            }

            return i;
        });
        await dbos.LaunchAsync();
        for (var i = 0; i < (smoke ? 3 : 100); i++)
        {
            await datasource.RunTransactionAsync("plain", (tx, _) => Insert(tx));
            await empty.RunAsync(i);
            await tenTransactions.RunAsync(i);
        }

        var plain = new List<double>();
        var durable = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            plain.Add(Stats.Median(await Stats.TimeEachAsync(perRound, _ => datasource.RunTransactionAsync("plain", (tx, _) => Insert(tx)))));
            var emptyMedian = Stats.Median(await Stats.TimeEachAsync(workflowsPerRound, i => empty.RunAsync(i)));
            var tenMedian = Stats.Median(await Stats.TimeEachAsync(workflowsPerRound, i => tenTransactions.RunAsync(i)));
            durable.Add((tenMedian - emptyMedian) / 10);
        }

        return [new("durable transaction vs plain", backend, "us", Stats.Median(plain), Stats.Median(durable))];
    }

    /// <summary>Process start to the first workflow finished (see <see cref="Startup"/>).</summary>
    public Task<List<Result>> StartupAsync(string backend, Target target) => Startup.RunAsync(backend, target, smoke);
}
