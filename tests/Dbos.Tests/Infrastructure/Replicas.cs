using System.Globalization;

namespace Dbos.Tests.Infrastructure;

/// <summary>A replica process (Dbos.Tests.Worker <c>replica</c>), its executor ID and its ledger.</summary>
public sealed record Replica(WorkerProcess Process, string ExecutorId, string Ledger) : IAsyncDisposable
{
    /// <summary>The replica's operating-system process ID, as its ledger and step outputs carry it.</summary>
    public string Pid => Process.ProcessId.ToString(CultureInfo.InvariantCulture);

    public ValueTask DisposeAsync() => Process.DisposeAsync();

    /// <summary>The liveness events (<c>log EventId message</c> lines) the replica printed with <paramref name="eventId"/>.</summary>
    public List<string> Logged(int eventId) =>
        [.. Process.StandardOutput.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith($"log {eventId} ", StringComparison.Ordinal))];

    /// <summary>
    /// Starts a replica on <paramref name="db"/>; <paramref name="extra"/> overrides environment variables (null removes
    /// one), and <paramref name="wrapper"/> runs it under another program (for example <c>ip netns exec ns</c>).
    /// </summary>
    public static async Task<Replica> StartReplicaAsync(
        TestDatabase db,
        string name,
        int start = 0,
        string prefix = "wf",
        int steps = 6,
        int stepMs = 300,
        Dictionary<string, string?>? extra = null,
        string[]? wrapper = null)
    {
        var ledger = Path.Combine(db.Directory, $"ledger-{name}.txt");
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS_TEST_START"] = start.ToString(CultureInfo.InvariantCulture);
        environment["DBOS_TEST_PREFIX"] = prefix;
        environment["DBOS_TEST_STEPS"] = steps.ToString(CultureInfo.InvariantCulture);
        environment["DBOS_TEST_STEP_MS"] = stepMs.ToString(CultureInfo.InvariantCulture);
        foreach (var (key, value) in extra ?? [])
        {
            environment[key] = value;
        }

        var process = wrapper is { Length: > 0 }
            ? WorkerProcess.StartProgram(wrapper[0], environment, db.Directory, null, [.. wrapper[1..], "dotnet", WorkerProcess.WorkerDll, "replica"])
            : WorkerProcess.Start(environment, db.Directory, "replica");
        try
        {
            var executor = (await process.WaitForLineAsync("executor ", TimeSpan.FromSeconds(90)))["executor ".Length..];
            await process.WaitForLineAsync("started", TimeSpan.FromSeconds(60));
            return new Replica(process, executor, ledger);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every step execution of every ledger: (workflow, step, process).</summary>
    public static List<(string Workflow, int Step, string Process)> Runs(params Replica[] replicas) =>
        [.. replicas.Where(r => File.Exists(r.Ledger)).SelectMany(r => File.ReadAllLines(r.Ledger))
            .Select(l => l.Split(' '))
            .Select(p => (p[1], int.Parse(p[2], CultureInfo.InvariantCulture), p[3]))];

    /// <summary>Every recorded step outcome: (workflow, step, the process whose execution was recorded).</summary>
    public static async Task<List<(string Workflow, int Step, string Process)>> RecordedAsync(TestDatabase db) =>
        [.. (await db.QueryAsync(
            "SELECT workflow_uuid, output FROM {operation_outputs} ORDER BY workflow_uuid, function_id",
            r => (r.GetString(0), r.GetString(1).Trim('"').Split(':'))))
            .Select(r => (r.Item1, int.Parse(r.Item2[1], CultureInfo.InvariantCulture), r.Item2[0]))];

    public static Task AllSucceededAsync(TestDatabase db, string prefix, int count, TimeSpan timeout) =>
        Eventually.HoldsAsync(
            async () => await db.CountAsync($"SELECT count(*) FROM {{workflow_status}} WHERE status = 'SUCCESS' AND workflow_uuid LIKE '{prefix}-%'") == count,
            $"all {count} workflows {prefix}-* succeeded",
            timeout);
}
