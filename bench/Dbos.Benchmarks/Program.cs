// The benchmark harness: every workload of DBOS against a raw baseline measured in the same run, on the same database
// and driver settings, printed as one table (workload, backend, raw, ours, ratio) because the machines this runs on
// are shared and noisy. Figures are medians over rounds that interleave the baseline and DBOS.
//
//   one step (sequential)              (a 10-step workflow - an empty workflow) / 10, vs one raw INSERT+COMMIT
//   empty workflow median / p99        start to result of a workflow without steps, vs one raw commit
//   10-step workflows, N at once       steps/s with N workflows running at once, vs raw commits/s from N connections
//   queued, enqueued one by one        the user's path: each StartAsync awaited before the next, served in-process, vs
//                                      as many one-row commits in a row (an awaited enqueue is one commit)
//   drain a backlog of 20,000/100,000  one process (worker concurrency 50) draining SQL-enqueued work (Postgres)
//   queued 1-step workflows            end to end (enqueue, claim, step, completion), one process and three processes,
//                                      vs a raw queue: insert, claim in batches with FOR UPDATE SKIP LOCKED, complete
//   recovery of 10,000 workflows       from launch until all are dispatched, and until all have finished
//   10,000 sleeping workflows          managed memory per sleeping workflow, and the process's peak working set
//   allocated per step                 managed bytes allocated per step of a sequential workflow
//   message round trip median / p99    from SendAsync to the waiting RecvAsync returning (in-process, and from a client)
//   durable transaction                a datasource transaction in a workflow vs the same transaction plainly
//   takeover after SIGKILL             from killing a replica until a live one has taken its pending workflows, vs the
//                                      time the database (or the OS, on SQLite) takes to release a killed process's lock
//   idle, N processes                  connections held and statements run per second by each of 1 and 10 idle replicas
//   dashboard pages at 1,000,000       server time (EXPLAIN ANALYZE, planning + execution) of each read of the dashboard's
//                                      pages on 1,000,000 workflows (Postgres), vs a primary-key lookup, target <= 50 ms;
//                                      and the pages over HTTP end to end
//   start to first workflow            a fresh process of a Quickstart-shaped program until its first workflow finished
//                                      (database present, and a first run that creates the schema), vs a trivial process
//
// Usage: dotnet run -c Release --project bench/Dbos.Benchmarks -- [--smoke] [--backend sqlite|postgres|both]
//        [--postgres-url URL] [--json FILE] [--only WORKLOAD[,WORKLOAD...]]
//        (WORKLOAD: Sequential, Concurrent, Queue, QueueOneByOne, QueueThreeProcesses, Drain, Recovery, Sleepers, RoundTrip, Transaction, Takeover, Idle, Dashboard, Startup; a
//        name runs that workload, a prefix that is no full name runs every workload it starts: QueueThree, Round, ...)
//        [--group-commit-in-flight N]   operation records on Postgres sent alone before the rest are combined (default 8)
//        [--concurrent-levels N[,N...]]   how many workflows run at once in Concurrent (default 1,8,32,64)
//        [--profile-alloc]   instead of the table: which types a step allocates (sampled allocation ticks)
// The Postgres URL defaults to DBOS_TEST_POSTGRES_URL (the server; scratch databases are created on it and dropped).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Dbos;
using Dbos.Benchmarks;

if (args.Length > 0 && args[0] == "--queue-worker")
{
    return await Workloads.ServeQueueAsync(args[1]);
}

if (args.Length > 0 && args[0] == "--first-workflow")
{
    return await Startup.FirstWorkflowAsync(args[1]);
}

if (args.Length > 0 && args[0] == "--hello")
{
    return Startup.Hello();
}

if (args.Length > 0 && args[0] == "--replica")
{
    return await Workloads.ServeReplicaAsync(args[1], args[2] == "1", int.Parse(args[3], CultureInfo.InvariantCulture), args[4]);
}

var smoke = args.Contains("--smoke");
var backend = Option("--backend") ?? "both";
var postgresServer = (Option("--postgres-url") ?? Environment.GetEnvironmentVariable("DBOS_TEST_POSTGRES_URL") ?? "postgresql://dbos:dbos@127.0.0.1:5432").TrimEnd('/');
var jsonPath = Option("--json");
var only = Option("--only")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
if (Option("--group-commit-in-flight") is { } inFlight)
{
    // For comparisons: how many operation records go out alone before the rest are combined (a large number: never combined).
    Dbos.SystemDatabase.SystemDatabase.MaxOperationWritesInFlight = int.Parse(inFlight, CultureInfo.InvariantCulture);
}

if (Option("--concurrent-levels") is { } levels)
{
    Workloads.ConcurrentLevels = [.. levels.Split(',').Select(l => int.Parse(l, CultureInfo.InvariantCulture))];
}

var workloads = new Workloads(smoke);
var all = new Func<string, Target, Task<List<Result>>>[]
{
    workloads.SequentialAsync, workloads.ConcurrentAsync, workloads.QueueAsync, workloads.QueueOneByOneAsync, workloads.QueueThreeProcessesAsync, workloads.DrainAsync,
    workloads.RecoveryAsync, workloads.SleepersAsync, workloads.RoundTripAsync, workloads.TransactionAsync,
    workloads.TakeoverAsync, workloads.IdleAsync, workloads.DashboardAsync, workloads.StartupAsync,
};
var results = new List<Result>();

foreach (var (name, create) in new (string Name, Func<Task<Target>> Create)[]
{
    ("SQLite", async () => await SqliteTarget.CreateAsync()),
    ("Postgres", async () => await PostgresTarget.CreateAsync(postgresServer)),
})
{
    if (backend != "both" && !string.Equals(backend, name, StringComparison.OrdinalIgnoreCase))
    {
        continue;
    }

    Console.Error.WriteLine($"== {name}");
    if (args.Contains("--profile-alloc"))
    {
        await using var profiled = await create();
        await AllocationProfile.RunAsync(name, profiled, smoke ? 20 : 500);
        continue;
    }

    foreach (var workload in all)
    {
        if (workload.Method.Name != nameof(Workloads.QueueThreeProcessesAsync) || name == "Postgres")
        {
            await Run(workload);
        }
    }

    async Task Run(Func<string, Target, Task<List<Result>>> workload)
    {
        if (only is not null && !only.Any(item => Selects(item, ShortName(workload))))
        {
            return;
        }

        await using var target = await create();
        var rows = await workload(name, target);
        foreach (var row in rows)
        {
            Console.Error.WriteLine($"   {row.Workload}: {row.Format(row.Ours)} {row.Unit}{(row.Ratio is { } r ? $" (ratio {r:0.00})" : string.Empty)}");
        }

        results.AddRange(rows);
    }
}

Console.WriteLine();
Console.WriteLine($"{"workload",-42} {"backend",-9} {"raw",12} {"ours",12} {"unit",-14} {"ratio",7}  target");
foreach (var row in results)
{
    Console.WriteLine(
        $"{row.Workload,-42} {row.Backend,-9} {(row.Raw is { } raw ? row.Format(raw) : "-"),12} {row.Format(row.Ours),12} {row.Unit,-14} " +
        $"{(row.Ratio is { } ratio ? ratio.ToString("0.00", CultureInfo.InvariantCulture) : "-"),7}  {row.Target}");
}

Console.WriteLine();
Console.WriteLine($"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}{(smoke ? " (smoke run: figures are not meaningful)" : string.Empty)}");
if (jsonPath is not null)
{
    await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(
        results.Select(r => new { workload = r.Workload, backend = r.Backend, unit = r.Unit, raw = r.Raw, ours = r.Ours, ratio = r.Ratio, sdk = "dotnet" }),
        new JsonSerializerOptions { WriteIndented = true }));
}

return 0;

// A workload's name (Queue) selects that workload alone, not QueueThreeProcesses; anything else is a prefix (QueueThree).
bool Selects(string item, string name) =>
    all.Any(w => string.Equals(ShortName(w), item, StringComparison.OrdinalIgnoreCase))
        ? string.Equals(item, name, StringComparison.OrdinalIgnoreCase)
        : name.StartsWith(item, StringComparison.OrdinalIgnoreCase);

static string ShortName(Func<string, Target, Task<List<Result>>> workload) => workload.Method.Name.Replace("Async", string.Empty, StringComparison.Ordinal);

string? Option(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

/// <summary>One line of the table. The ratio is ours over raw for times, ours over raw for rates (higher is better).</summary>
internal sealed record Result(string Workload, string Backend, string Unit, double? Raw, double Ours, string Target = "")
{
    public double? Ratio => Raw is { } raw && raw > 0 ? Ours / raw : null;

    public string Format(double value) => value >= 100 ? value.ToString("0", CultureInfo.InvariantCulture) : value.ToString("0.00", CultureInfo.InvariantCulture);
}

/// <summary>Small statistics over samples.</summary>
internal static class Stats
{
    public static double Median(IEnumerable<double> values) => Percentile(values, 0.5);

    public static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    /// <summary>Runs <paramref name="operation"/> <paramref name="count"/> times in sequence; each call's microseconds.</summary>
    public static async Task<List<double>> TimeEachAsync(int count, Func<int, Task> operation)
    {
        var times = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await operation(i);
            times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }

        return times;
    }
}
