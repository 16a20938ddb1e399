using System.Globalization;
using System.Text;
using System.Text.Json;
using Dbos.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Dbos.Tests.Reliability;

/// <summary>
/// The process-crash harness: a workload of many workflows (steps, child workflows, durable sleeps, messages between
/// workflows, a queue with a concurrency limit) runs in a child process that is killed (SIGKILL) at random moments and
/// started again, many times; then the application's side effects (a ledger every step execution appends to and flushes
/// to disk midway through the step) are compared with the rows DBOS recorded.
/// <para>
/// Settings (environment variables, for longer runs): DBOS_CRASH_KILLS (default 8), DBOS_CRASH_WORKFLOWS (default 60),
/// DBOS_CRASH_SEED (default: random; printed in the test output so a failure can be replayed).
/// </para>
/// </summary>
public class CrashHarnessTests(ITestOutputHelper output)
{
    private static readonly string[] StepNames = ["p-first", "p-last", "c-first", "c-last", "q-work"];

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : fallback;

    /// <summary>The run's settings, printed so that a failure can be replayed, and its random source.</summary>
    private (int Kills, int Workflows, int Seed, Random Random) Settings(string run)
    {
        var kills = Setting("DBOS_CRASH_KILLS", 8);
        var workflows = Setting("DBOS_CRASH_WORKFLOWS", 60);
        var seed = Setting("DBOS_CRASH_SEED", Random.Shared.Next(1, int.MaxValue));
        output.WriteLine($"{run}: DBOS_CRASH_SEED={seed} DBOS_CRASH_KILLS={kills} DBOS_CRASH_WORKFLOWS={workflows}");
        return (kills, workflows, seed, new Random(seed));
    }

    private sealed record Execution(string WorkflowId, string Step, int Incarnation, string Marker, long At);

    [Theory, BothBackends]
    public async Task Workflows_killed_at_random_moments_all_finish_once_with_every_step_recorded_from_its_last_execution(Backend backend)
    {
        var (kills, workflows, seed, random) = Settings($"crash harness on {backend}");
        await using var db = await TestDatabase.CreateAsync(backend);
        string LedgerOf(int incarnation) => Path.Combine(db.Directory, $"ledger-{incarnation}.txt");
        Dictionary<string, string?> EnvironmentOf(int incarnation)
        {
            var environment = db.WorkerEnvironment(LedgerOf(incarnation));
            environment["DBOS_CHAOS_WORKFLOWS"] = workflows.ToString(CultureInfo.InvariantCulture);
            environment["DBOS_CHAOS_INCARNATION"] = incarnation.ToString(CultureInfo.InvariantCulture);
            return environment;
        }

        // Kill at a random moment after the start: a quarter early (while the process starts, migrates and recovers), the
        // rest mostly mid-workload.
        var killed = new HashSet<int>();
        var incarnation = 0;
        while (killed.Count < kills)
        {
            incarnation++;
            var delay = TimeSpan.FromMilliseconds(random.Next(4) == 0 ? random.Next(50, 600) : random.Next(300, 2500));
            await using var worker = WorkerProcess.Start(EnvironmentOf(incarnation), db.Directory, "chaos");
            try
            {
                await worker.WaitForLineAsync("all-done", delay);
                output.WriteLine($"incarnation {incarnation}: the workload finished before its kill at {delay.TotalMilliseconds} ms");
                Assert.Equal(0, await worker.WaitForExitAsync());
                break;
            }
            catch (TimeoutException)
            {
                worker.Kill();
                killed.Add(incarnation);
                output.WriteLine($"incarnation {incarnation}: killed after {delay.TotalMilliseconds} ms");
            }
        }

        // A last start finishes everything.
        if (killed.Contains(incarnation))
        {
            incarnation++;
            await using var last = WorkerProcess.Start(EnvironmentOf(incarnation), db.Directory, "chaos");
            await last.WaitForLineAsync("all-done", TimeSpan.FromSeconds(180));
            Assert.Equal(0, await last.WaitForExitAsync());
        }

        await VerifyAsync(db, workflows, incarnation, LedgerOf, killed, seed);
    }

    /// <summary>
    /// The harness with several worker processes at once, each with its own executor ID: at random moments one of them is
    /// killed, and a third of the time it stays dead (its slot is not refilled); otherwise a new process, under a new
    /// identity, takes its place. The survivors take over the dead ones' work. Besides every check of the single-process
    /// harness, this asserts that no step ran again while the process that ran it first was alive.
    /// </summary>
    [Theory, BothBackends]
    public async Task Several_workers_killed_at_random_some_for_good_finish_every_workflow_once(Backend backend)
    {
        var (kills, workflows, seed, random) = Settings($"multi-process crash harness on {backend}");
        await using var db = await TestDatabase.CreateAsync(backend);
        string LedgerOf(int incarnation) => Path.Combine(db.Directory, $"ledger-{incarnation}.txt");
        var killed = new HashSet<int>();
        var live = new List<(int Incarnation, WorkerProcess Worker)>();
        var incarnation = 0;
        void StartOne()
        {
            incarnation++;
            var environment = db.WorkerEnvironment(LedgerOf(incarnation));
            environment["DBOS_CHAOS_WORKFLOWS"] = workflows.ToString(CultureInfo.InvariantCulture);
            environment["DBOS_CHAOS_INCARNATION"] = incarnation.ToString(CultureInfo.InvariantCulture);
            live.Add((incarnation, WorkerProcess.Start(environment, db.Directory, "chaos")));
        }

        try
        {
            for (var i = 0; i < 3; i++)
            {
                StartOne();
            }

            for (var k = 0; k < kills; k++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(random.Next(300, 2500)));
                if (live.Any(w => w.Worker.StandardOutput.Contains("all-done", StringComparison.Ordinal)))
                {
                    output.WriteLine($"the workload finished before kill {k + 1}");
                    break;
                }

                var victim = live[random.Next(live.Count)];
                victim.Worker.Kill();
                await victim.Worker.DisposeAsync();
                live.Remove(victim);
                killed.Add(victim.Incarnation);
                var forGood = random.Next(3) == 0 && live.Count > 0;
                if (!forGood)
                {
                    StartOne();
                }

                output.WriteLine($"killed process {victim.Incarnation}{(forGood ? " for good" : $"; process {incarnation} started in its place")}; {live.Count} running");
            }

            // The survivors finish everything (each waits for every workflow): the dead ones' work is taken over.
            if (live.Count == 0)
            {
                StartOne();
            }

            foreach (var (_, worker) in live)
            {
                await worker.WaitForLineAsync("all-done", TimeSpan.FromSeconds(180));
            }
        }
        finally
        {
            foreach (var (_, worker) in live)
            {
                await worker.DisposeAsync();
            }
        }

        await VerifyAsync(db, workflows, incarnation, LedgerOf, killed, seed);
    }

    /// <summary>Compares what the workload recorded with its ledgers: everything finished once, and no step ran again needlessly.</summary>
    private async Task VerifyAsync(TestDatabase db, int workflows, int final, Func<int, string> ledgerOf, HashSet<int> killed, int seed)
    {
        // Every workflow finished successfully, parents with the right output.
        var rows = await db.QueryAsync(
            "SELECT ws.workflow_uuid, ws.name, ws.status, COALESCE(wo.output, ws.output) FROM {workflow_status} ws LEFT JOIN {workflow_output} wo ON wo.workflow_uuid = ws.workflow_uuid",
            r => (Id: r.GetString(0), Name: r.GetString(1), Status: r.GetString(2), Output: r.IsDBNull(3) ? null : r.GetString(3)));
        Assert.All(rows, r => Assert.True(r.Status == "SUCCESS", $"{r.Id} ({r.Name}) is {r.Status}"));
        Assert.Equal(workflows, rows.Count(r => r.Name == "chaos-parent"));
        Assert.Equal(workflows, rows.Count(r => r.Name == "chaos-child"));
        Assert.Equal(workflows, rows.Count(r => r.Name == "chaos-queued"));
        Assert.Equal(3 * workflows, rows.Count);
        foreach (var parent in rows.Where(r => r.Name == "chaos-parent"))
        {
            var i = int.Parse(parent.Id["chaos-".Length..], CultureInfo.InvariantCulture);
            Assert.Equal(ChaosWorkload.ExpectedOutput(i), JsonSerializer.Deserialize<string>(parent.Output!));
        }

        // Replays were deterministic: every workflow of a kind recorded the same operations, numbered without gaps.
        var operations = await db.QueryAsync(
            "SELECT ws.name, oo.workflow_uuid, oo.function_id, oo.function_name FROM {operation_outputs} oo JOIN {workflow_status} ws ON ws.workflow_uuid = oo.workflow_uuid",
            r => (Kind: r.GetString(0), Id: r.GetString(1), FunctionId: r.GetInt32(2), Name: r.GetString(3)));
        foreach (var kind in operations.GroupBy(o => o.Kind))
        {
            var sequences = kind.GroupBy(o => o.Id).Select(w => string.Join(",", w.OrderBy(o => o.FunctionId).Select(o => $"{o.FunctionId}:{o.Name}"))).ToList();
            Assert.Equal(workflows, sequences.Count);
            Assert.True(sequences.Distinct().Count() == 1, $"{kind.Key} workflows recorded different operations:{Environment.NewLine}{string.Join(Environment.NewLine, sequences.Distinct())}");
            var ids = kind.Where(o => o.Id == kind.First().Id).Select(o => o.FunctionId).Order().ToList();
            Assert.Equal(Enumerable.Range(0, ids.Count), ids);
        }

        // Every message was delivered once and received once.
        Assert.Equal(2L * workflows, await db.CountAsync("SELECT count(*) FROM {notifications}"));
        Assert.Equal(0L, await db.CountAsync("SELECT count(*) FROM {notifications} WHERE consumed = FALSE"));

        // Every step of every workflow is recorded once, with the output of one of its executions.
        var recorded = (await db.QueryAsync(
                $"SELECT workflow_uuid, function_name, output FROM {{operation_outputs}} WHERE function_name IN ({string.Join(", ", StepNames.Select(s => $"'{s}'"))})",
                r => (Key: (r.GetString(0), r.GetString(1)), Output: JsonSerializer.Deserialize<string>(r.GetString(2))!)))
            .ToDictionary(r => r.Key, r => r.Output[(r.Output.IndexOf('#', StringComparison.Ordinal) + 1)..]);
        Assert.Equal(5 * workflows, recorded.Count);

        var executions = await ReadLedgersAsync(final, ledgerOf, killed);
        var byStep = executions.GroupBy(e => (e.WorkflowId, e.Step)).ToDictionary(g => g.Key, g => g.ToList());
        var problems = new List<string>();
        foreach (var (key, marker) in recorded)
        {
            if (!byStep.TryGetValue(key, out var runs))
            {
                problems.Add($"{key}: recorded, but no execution is in the ledger");
                continue;
            }

            var description = $"{key}: executions {string.Join(", ", runs.Select(r => $"{r.Marker[..8]}@{r.Incarnation}"))}, recorded {marker[..8]}";

            // The recorded output is the last execution's: the step never ran again once its output was recorded.
            if (runs[^1].Marker != marker)
            {
                problems.Add($"{description}: the recorded output is not the last execution's (it ran after its output was recorded, or its output was lost)");
            }

            // At least once, never more than once per process, and re-run only when the process running it died first.
            if (runs.Select(r => r.Incarnation).Distinct().Count() != runs.Count)
            {
                problems.Add($"{description}: ran twice in one process");
            }

            if (runs.SkipLast(1).Any(r => !killed.Contains(r.Incarnation)))
            {
                problems.Add($"{description}: ran again although the process that ran it first was not killed");
            }
        }

        foreach (var key in byStep.Keys.Where(k => !recorded.ContainsKey(k)))
        {
            problems.Add($"{key}: executed ({byStep[key].Count} times) but never recorded");
        }

        var rerun = byStep.Values.Count(r => r.Count > 1);
        output.WriteLine(
            $"{killed.Count} kills, {final} processes; {executions.Count} step executions for {recorded.Count} recorded steps; {rerun} steps ran again after a kill (at most {byStep.Values.Max(r => r.Count)} times)");
        Assert.True(problems.Count == 0, $"seed {seed}:{Environment.NewLine}{string.Join(Environment.NewLine, problems)}");
    }

    /// <summary>
    /// The step executions of every process, in the order they happened. A killed process may have been stopped in the middle of writing its
    /// last line (which then never returned to the workflow); any other malformed line fails the test.
    /// </summary>
    private static async Task<List<Execution>> ReadLedgersAsync(int incarnations, Func<int, string> ledgerOf, HashSet<int> killed)
    {
        var executions = new List<Execution>();
        for (var incarnation = 1; incarnation <= incarnations; incarnation++)
        {
            var path = ledgerOf(incarnation);
            if (!File.Exists(path))
            {
                continue;
            }

            var text = await File.ReadAllTextAsync(path, Encoding.UTF8);
            var lines = text.Split('\n');
            for (var l = 0; l < lines.Length; l++)
            {
                var parts = lines[l].Split(' ');
                var complete = l < lines.Length - 1;
                if (!complete)
                {
                    Assert.True(lines[l].Length == 0 || killed.Contains(incarnation), $"ledger {incarnation} ends in a partial line: {lines[l]}");
                    continue;
                }

                Assert.True(parts is ["exec", _, _, _, _, _] && parts[3] == incarnation.ToString(CultureInfo.InvariantCulture), $"ledger {incarnation}, line {l + 1}: {lines[l]}");
                executions.Add(new Execution(parts[1], parts[2], incarnation, parts[4], long.Parse(parts[5], CultureInfo.InvariantCulture)));
            }
        }

        // In the order they happened: with several processes at once, a later process may have run a step first.
        return [.. executions.OrderBy(e => e.At)];
    }
}
