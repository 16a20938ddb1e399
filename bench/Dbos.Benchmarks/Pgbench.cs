using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Dbos.Benchmarks;

/// <summary>
/// Postgres's own pgbench as a baseline beside the Npgsql one: a one-row INSERT committed on its own, from N clients over
/// TCP, with prepared statements. It is the database's cost without any client library; absent pgbench, the rows are skipped.
/// </summary>
internal static partial class Pgbench
{
    private static string? executable;
    private static bool looked;

    /// <summary>pgbench on the PATH, or the newest one under /usr/lib/postgresql; null when there is none.</summary>
    public static string? Executable
    {
        get
        {
            if (!looked)
            {
                looked = true;
                executable = FindOnPath() ?? (Directory.Exists("/usr/lib/postgresql")
                    ? Directory.GetDirectories("/usr/lib/postgresql")
                        .Select(d => Path.Combine(d, "bin", "pgbench"))
                        .Where(File.Exists)
                        .OrderByDescending(p => int.TryParse(Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(p))), out var v) ? v : 0)
                        .FirstOrDefault()
                    : null);
                if (executable is null)
                {
                    Console.Error.WriteLine("   pgbench not found (Debian: apt-get install postgresql-client or postgresql-contrib): its baseline rows are skipped");
                }
            }

            return executable;
        }
    }

    private static string? FindOnPath() =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "pgbench")).FirstOrDefault(File.Exists);

    /// <summary>Commits per second and mean latency in microseconds of one-row INSERTs, or null when pgbench is absent or failed.</summary>
    public static async Task<(double Tps, double LatencyUs)?> InsertAsync(Uri server, string database, int clients, double seconds)
    {
        if (Executable is not { } pgbench)
        {
            return null;
        }

        var script = Path.Combine(Path.GetTempPath(), $"dbos-bench-pgbench-{Environment.ProcessId}.sql");
        await File.WriteAllTextAsync(script, "INSERT INTO pgbench_inserts (payload) VALUES ('42');\n");
        var user = server.UserInfo.Split(':', 2);
        var start = new ProcessStartInfo(pgbench)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[]
        {
            "-n", "-M", "prepared", "-f", script, "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", Math.Min(clients, 2).ToString(CultureInfo.InvariantCulture),
            "-T", Math.Max(1, (int)Math.Round(seconds)).ToString(CultureInfo.InvariantCulture),
            "-h", server.Host, "-p", (server.Port > 0 ? server.Port : 5432).ToString(CultureInfo.InvariantCulture), "-U", Uri.UnescapeDataString(user[0]), database,
        })
        {
            start.ArgumentList.Add(arg);
        }

        if (user.Length > 1)
        {
            start.Environment["PGPASSWORD"] = Uri.UnescapeDataString(user[1]);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var text = await output;
        var tps = Tps().Match(text);
        var latency = Latency().Match(text);
        if (process.ExitCode != 0 || !tps.Success || !latency.Success)
        {
            Console.Error.WriteLine($"   pgbench failed (exit {process.ExitCode}): {(await error).Trim()}");
            return null;
        }

        return (double.Parse(tps.Groups[1].Value, CultureInfo.InvariantCulture), double.Parse(latency.Groups[1].Value, CultureInfo.InvariantCulture) * 1000);
    }

    [GeneratedRegex(@"tps = ([0-9.]+)")]
    private static partial Regex Tps();

    [GeneratedRegex(@"latency average = ([0-9.]+) ms")]
    private static partial Regex Latency();
}
