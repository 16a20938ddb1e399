using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Dbos.Benchmarks;

/// <summary>
/// Start-up: from starting a process to its first workflow finished, in fresh processes of a small program shaped like
/// the Quickstart (create, register a workflow of four steps, launch, run one order, print), against a trivial process of
/// the same executable that prints and exits (the runtime's own start, measured in the same run).
/// </summary>
internal static class Startup
{
    private const string Done = "first-workflow-done";

    /// <summary>The child: the Quickstart without its pauses. Prints the time each phase took, then <see cref="Done"/>.</summary>
    public static async Task<int> FirstWorkflowAsync(string url)
    {
        var entered = Stopwatch.GetTimestamp();
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "quickstart", SystemDatabaseUrl = url });
        var reserve = dbos.RegisterStep("reserve-inventory", (string order, CancellationToken _) => Task.FromResult($"reserved {order}"));
        var charge = dbos.RegisterStep("charge-payment", (string order, CancellationToken _) => Task.FromResult($"charged {order}"));
        var ship = dbos.RegisterStep("ship", (string order, CancellationToken _) => Task.FromResult($"shipped {order}"));
        var email = dbos.RegisterStep("send-confirmation", (string order, CancellationToken _) => Task.FromResult($"emailed {order}"));
        var steps = new[] { reserve, charge, ship, email };
        var processOrder = dbos.RegisterWorkflow("process-order", async (WorkflowContext ctx, string order) =>
        {
            var results = new List<string>();
            foreach (var step in steps)
            {
                results.Add(await step.RunAsync(order));
            }

            return string.Join("; ", results);
        });
        var created = Stopwatch.GetTimestamp();
        await dbos.LaunchAsync();
        var launched = Stopwatch.GetTimestamp();
        var receipt = await processOrder.RunAsync("order-" + Guid.NewGuid().ToString("N")[..8]);
        var finished = Stopwatch.GetTimestamp();
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"phases create {Ms(entered, created):0.0} launch {Ms(created, launched):0.0} workflow {Ms(launched, finished):0.0} ({receipt.Length} chars)"));
        Console.WriteLine(Done);
        return 0;

        static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
    }

    /// <summary>The baseline child: a process of the same executable that prints and exits.</summary>
    public static int Hello()
    {
        Console.WriteLine(Done);
        return 0;
    }

    public static async Task<List<Result>> RunAsync(string backend, Target target, bool smoke)
    {
        var spawns = smoke ? 2 : 7;
        var hello = new List<double>();
        var existing = new List<double>();
        var first = new List<double>();
        var launch = new List<double>();
        var scratch = new List<string>();
        var directory = Path.Combine(Path.GetTempPath(), "dbos-bench-start-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            // The database every "existing" run reuses: created and migrated by a first run that is not counted.
            var existingUrl = target is PostgresTarget ? target.SystemDatabaseUrl : $"sqlite:///{directory}/existing.sqlite";
            await SpawnAsync("--first-workflow", existingUrl);
            await SpawnAsync("--hello");
            for (var i = 0; i < spawns; i++)
            {
                // Interleaved, so that the machine's load falls on all three alike.
                hello.Add((await SpawnAsync("--hello")).Elapsed);
                var (elapsed, phases) = await SpawnAsync("--first-workflow", existingUrl);
                existing.Add(elapsed);
                launch.Add(Phase(phases, "launch"));
                string freshUrl;
                if (target is PostgresTarget postgres)
                {
                    var name = "dbos_bench_start_" + Guid.NewGuid().ToString("N")[..8];
                    scratch.Add(name);
                    freshUrl = $"{postgres.Server}/{name}";
                }
                else
                {
                    freshUrl = $"sqlite:///{directory}/fresh-{i}.sqlite";
                }

                first.Add((await SpawnAsync("--first-workflow", freshUrl)).Elapsed);
                Console.Error.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"   start-up {i + 1}/{spawns}: trivial process {hello[^1]:0} ms, first workflow {existing[^1]:0} ms ({phases}), first run creating the schema {first[^1]:0} ms"));
            }
        }
        finally
        {
            if (target is PostgresTarget postgres)
            {
                await DropAsync(postgres.Server, scratch);
            }

            Directory.Delete(directory, recursive: true);
        }

        var raw = Stats.Median(hello);
        var schema = backend == "Postgres" ? "schema present" : "file present";
        return
        [
            new($"start to first workflow ({schema})", backend, "ms", raw, Stats.Median(existing)),
            new("start to first workflow (creates the schema)", backend, "ms", raw, Stats.Median(first)),
            new("launch, of which", backend, "ms", null, Stats.Median(launch)),
        ];
    }

    private static double Phase(string phases, string name)
    {
        var parts = phases.Split(' ');
        var index = Array.IndexOf(parts, name);
        return index >= 0 ? double.Parse(parts[index + 1], CultureInfo.InvariantCulture) : double.NaN;
    }

    /// <summary>Runs a child of this executable; the time from starting it to its <see cref="Done"/> line, and its phases.</summary>
    private static async Task<(double Elapsed, string Phases)> SpawnAsync(params string[] arguments)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
        {
            info.ArgumentList.Add(typeof(Startup).Assembly.Location);
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var start = Stopwatch.GetTimestamp();
        using var child = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var phases = string.Empty;
        double? elapsed = null;
        while (await child.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("phases ", StringComparison.Ordinal))
            {
                phases = line["phases ".Length..];
            }
            else if (line == Done)
            {
                elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }

        await child.WaitForExitAsync(timeout.Token);
        return elapsed is { } ms && child.ExitCode == 0
            ? (ms, phases)
            : throw new InvalidOperationException($"The start-up child ({string.Join(' ', arguments)}) exited with {child.ExitCode} before finishing its workflow.");
    }

    private static async Task DropAsync(string server, List<string> databases)
    {
        var uri = new Uri(server);
        var user = uri.UserInfo.Split(':', 2);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port > 0 ? uri.Port : 5432,
            Username = Uri.UnescapeDataString(user[0]),
            Password = user.Length > 1 ? Uri.UnescapeDataString(user[1]) : null,
            Database = "postgres",
            Pooling = false,
        };
        await using var admin = new NpgsqlConnection(builder.ConnectionString);
        await admin.OpenAsync();
        foreach (var database in databases)
        {
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
    }
}
