using System.Diagnostics;
using System.Globalization;
using Dbos.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Dbos.Tests.Reliability;

/// <summary>The soak tests measure this process's memory, so they run alone, after the tests that run in parallel.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SoakCollection
{
    public const string Name = "Soak";
}

/// <summary>
/// A bounded load soak: many short workflows (thousands in flight at once, some through a queue, some waited on through
/// events) run in this process; after a warm-up and again at the end the managed heap, the database connections and the
/// engine's in-memory tracking are measured, and must not grow with the number of workflows run.
/// <para>
/// Settings (environment variables, for soak runs): DBOS_SOAK_WORKFLOWS (default 20,000; e.g. 100,000),
/// DBOS_SOAK_IN_FLIGHT (default 2,000).
/// </para>
/// </summary>
[Collection(SoakCollection.Name)]
public class SoakTests(ITestOutputHelper output)
{
    private const long AllowedHeapGrowth = 8L * 1024 * 1024;

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : fallback;

    private static long ManagedHeap()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    /// <summary>The smallest of a few readings: other work in the process only adds to a reading, a leak is in all of them.</summary>
    private static async Task<long> SettledHeapAsync()
    {
        var smallest = long.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            smallest = Math.Min(smallest, ManagedHeap());
            await Task.Delay(100);
        }

        return smallest;
    }

    /// <summary>Client connections to the test's own database (Postgres; not autovacuum workers), or open handles on its files (SQLite, where /proc shows them).</summary>
    private static async Task<int> ConnectionsAsync(TestDatabase db)
    {
        if (db.Backend == Backend.Postgres)
        {
            var database = db.Url[(db.Url.LastIndexOf('/') + 1)..];
            var rows = await TestDatabase.QueryOnAsync(
                TestDatabase.PostgresUrl("postgres"),
                $"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
            return int.Parse(rows.Single()!, CultureInfo.InvariantCulture);
        }

        var file = db.Url["sqlite:///".Length..];
        if (!Directory.Exists("/proc/self/fd"))
        {
            return 0;
        }

        var count = 0;
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith(file, StringComparison.Ordinal))
                {
                    count++;
                }
            }
            catch (IOException)
            {
                // The descriptor closed meanwhile.
            }
        }

        return count;
    }

    [Theory, BothBackends]
    public async Task Twenty_thousand_short_workflows_leave_no_growing_heap_connections_or_in_memory_tracking(Backend backend)
    {
        var total = Setting("DBOS_SOAK_WORKFLOWS", 20_000);
        var inFlight = Setting("DBOS_SOAK_IN_FLIGHT", 2_000);
        var warmUp = Math.Min(inFlight * 2, total / 4);
        await using var db = await TestDatabase.CreateAsync(backend, ownDatabase: true);
        var config = db.Config();
        await using var dbos = DbosApp.Create(config);
        dbos.RegisterQueue("soak-q", new QueueOptions { WorkerConcurrency = 200, PollingInterval = TimeSpan.FromMilliseconds(50) });
        var work = dbos.RegisterWorkflow("soak", async (WorkflowContext ctx, int i) =>
        {
            var doubled = await ctx.RunStepAsync("double", _ => Task.FromResult(i * 2));
            if (i % 10 == 3)
            {
                await ctx.SetEventAsync("doubled", doubled);
            }

            return doubled + 1;
        });
        await dbos.LaunchAsync();

        // Connections (and, for SQLite, whose read connections follow the threads that read, thread-pool threads) are
        // sampled all along.
        var peakConnections = 0;
        var peakThreads = 0;
        var peakRunning = 0;
        using var stopSampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                peakThreads = Math.Max(peakThreads, ThreadPool.ThreadCount);
                peakRunning = Math.Max(peakRunning, dbos.Engine.RunningCount);
                peakConnections = Math.Max(peakConnections, await ConnectionsAsync(db));
                await Task.Delay(50);
            }
        });
        var failures = 0;
        async Task RunAsync(int from, int to)
        {
            using var slots = new SemaphoreSlim(inFlight);
            var tasks = new List<Task>(to - from);
            for (var i = from; i < to; i++)
            {
                await slots.WaitAsync();
                var n = i;
                tasks.Add(Task.Run(async () =>
                {
                    try
                    {
                        var handle = await work.StartAsync(n, new StartOptions { WorkflowId = $"soak-{n}", Queue = n % 5 == 1 ? "soak-q" : null });
                        if (n % 10 == 3)
                        {
                            Assert.Equal(n * 2, await dbos.GetEventAsync<int>(handle.WorkflowId, "doubled", TimeSpan.FromMinutes(2)));
                        }

                        Assert.Equal((n * 2) + 1, await handle.GetResultAsync());
                    }
                    catch (Exception ex)
                    {
                        if (Interlocked.Increment(ref failures) <= 5)
                        {
                            output.WriteLine($"soak-{n}: {ex.GetType().Name}: {ex.Message}");
                        }
                    }
                    finally
                    {
                        slots.Release();
                    }
                }));
            }

            await Task.WhenAll(tasks);
        }

        var clock = Stopwatch.StartNew();
        await RunAsync(0, warmUp);
        Assert.Equal(0, failures);
        var engine = dbos.Engine;
        await Eventually.HoldsAsync(() => Task.FromResult(engine.RunningCount == 0), "the warm-up's executions are forgotten");
        var heapAfterWarmUp = await SettledHeapAsync();
        var connectionsAfterWarmUp = await ConnectionsAsync(db);
        output.WriteLine($"{backend}: warm-up of {warmUp} in {clock.Elapsed.TotalSeconds:F1} s; heap {heapAfterWarmUp / 1024} KiB, {connectionsAfterWarmUp} connections");

        await RunAsync(warmUp, total);
        Assert.Equal(0, failures);
        await Eventually.HoldsAsync(() => Task.FromResult(engine.RunningCount == 0), "every execution is forgotten");
        await Eventually.HoldsAsync(() => Task.FromResult(engine.Database.Notifier.WaitingKeys == 0), "no waiter is left behind");
        await Eventually.HoldsAsync(() => Task.FromResult(engine.Dispatcher.Queues.All(q => q.Running == 0)), "the queues count nothing running");
        await stopSampling.CancelAsync();
        await sampler;
        var heapAtEnd = await SettledHeapAsync();
        var connectionsAtEnd = await ConnectionsAsync(db);
        output.WriteLine(
            $"{backend}: {total} workflows ({inFlight} in flight, up to {peakRunning} executing at once) in {clock.Elapsed.TotalSeconds:F1} s; heap {heapAtEnd / 1024} KiB " +
            $"({(heapAtEnd - heapAfterWarmUp) / 1024:+#;-#;0} KiB since the warm-up); connections {connectionsAtEnd} (peak seen {peakConnections}, {peakThreads} threads)");

        Assert.Equal(total, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE status = 'SUCCESS'"));

        // No leak: what the first workflows left behind (caches, pools, JIT) does not grow with the rest.
        Assert.True(heapAtEnd - heapAfterWarmUp < AllowedHeapGrowth, $"the heap grew by {(heapAtEnd - heapAfterWarmUp) / 1024} KiB after the warm-up");

        // No runaway connections, whatever the number in flight: on Postgres the pool's size plus the listener and the
        // liveness session; on SQLite
        // the writer and at most one reader per thread (each a handle on the database file and one on its log, plus the
        // shared-memory file).
        var limit = backend == Backend.Postgres ? config.SystemDatabasePoolSize + 2 : (2 * (peakThreads + 1)) + 1;
        Assert.True(peakConnections <= limit, $"{peakConnections} connections at the peak (limit {limit}, {peakThreads} threads)");
        Assert.True(connectionsAtEnd <= limit, $"{connectionsAtEnd} connections at the end (limit {limit})");
    }
}
