using System.Diagnostics;
using System.Globalization;
using Dbos.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Dbos.Tests.Interop;

/// <summary>
/// .NET processes and a TypeScript SDK process launched at the same moment on a fresh database: whichever migrates, the
/// others wait or find the schema current, all of them come up, and the schema is the shared one at version 123. The
/// TypeScript process is started a little before or after the .NET one, by a different offset in each trial, so the
/// trials meet the different interleavings (TypeScript first, .NET first, both at once).
/// </summary>
public class ConcurrentLaunchInteropTests(ITestOutputHelper output)
{
    private const int Trials = 20;
    private const int ParallelTrials = 4;

    // Says it is ready once the SDK is loaded, then launches at the moment the test writes into the go file (plus a delay).
    private const string LaunchAtStartTime = """
        const fs = require('fs');
        main(async () => {
          console.log('ready');
          let start = NaN;
          while (!Number.isFinite(start)) {
            await new Promise((resolve) => setTimeout(resolve, 5));
            if (fs.existsSync(process.env.GO_FILE)) start = Number(fs.readFileSync(process.env.GO_FILE, 'utf8'));
          }
          const wait = start + Number(process.env.START_DELAY_MS) - Date.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          console.log('launching ' + Date.now());
          DBOS.setConfig({ name: 'ts-coop', systemDatabaseUrl: url });
          await DBOS.launch();
          report('launched');
          await DBOS.shutdown();
        });
        """;

    [Fact]
    public async Task A_dotnet_and_a_typescript_process_launched_together_on_a_fresh_database_both_come_up()
    {
        await TypeScriptPeer.EnsureInstalledAsync();
        var reference = await ReferenceAsync();
        var clock = Stopwatch.StartNew();
        using var slots = new SemaphoreSlim(ParallelTrials);
        var trials = Enumerable.Range(0, Trials).Select(async trial =>
        {
            await slots.WaitAsync();
            try
            {
                // Offsets from -300 ms (TypeScript first) to +270 ms (.NET first).
                return await RunTrialAsync(trial, dotnetProcesses: 1, TimeSpan.FromMilliseconds(-300 + (30 * trial)), reference);
            }
            finally
            {
                slots.Release();
            }
        }).ToList();
        var results = await Task.WhenAll(trials);
        foreach (var result in results)
        {
            output.WriteLine(result);
        }

        output.WriteLine($"{Trials} trials in {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task Three_dotnet_processes_and_a_typescript_process_launched_together_all_come_up()
    {
        await TypeScriptPeer.EnsureInstalledAsync();
        output.WriteLine(await RunTrialAsync(0, dotnetProcesses: 3, TimeSpan.Zero, await ReferenceAsync()));
    }

    /// <summary>
    /// The interleaving the timed trials meet only by chance: the TypeScript runner reads its version (no schema yet)
    /// just before the .NET install commits, then runs its whole history over the complete schema. It ignores the
    /// "already exists" errors, re-creates and drops again what its later migrations drop, lowers the recorded version
    /// and raises it back to 123, and the schema ends as the shared one. The stale read is staged by answering the
    /// runner's first look for the version table with "missing".
    /// </summary>
    [Fact]
    public async Task A_typescript_runner_that_read_no_schema_just_before_a_dotnet_install_committed_converges_on_it()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using (var dbos = DbosApp.Create(db.Config("dotnet-first")))
        {
            await dbos.LaunchAsync();
        }

        const string StaleRead = """
            const { Client } = require('pg');
            const sdk = './node_modules/@dbos-inc/dbos-sdk/dist/src/sysdb_migrations/';
            const { runSysMigrationsPg } = require(sdk + 'migration_runner');
            const { allMigrations } = require(sdk + 'internal/migrations');
            main(async () => {
              const client = new Client({ connectionString: url });
              await client.connect();
              let stale = true;
              const reader = { query: (sql, params) => {
                if (stale && sql.includes('information_schema.tables')) { stale = false; return Promise.resolve({ rows: [] }); }
                return client.query(sql, params);
              } };
              const result = await runSysMigrationsPg(reader, allMigrations('dbos'), 'dbos', { onWarn: () => {} });
              await client.end();
              report(result);
            });
            """;
        var result = Assert.Single(await Peer.RunAsync(db, StaleRead));
        Assert.Equal(0, result.GetProperty("fromVersion").GetInt32());
        Assert.Equal(123, result.GetProperty("toVersion").GetInt32());

        SchemaDump.AssertEqual(await ReferenceAsync(), await SchemaDump.OfAsync(db.Url));
        Assert.Equal(new long[] { 123 }, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    private static async Task<List<string>> ReferenceAsync() =>
        SchemaDump.Normalize(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Reference", "dbos-sdk-5.3.0.schema.sql")));

    /// <summary>When a process printed it was launching (unix milliseconds).</summary>
    private static long LaunchedAt(string output) =>
        long.Parse(output.Split('\n').First(line => line.StartsWith("launching ", StringComparison.Ordinal))["launching ".Length..].Trim(), CultureInfo.InvariantCulture);

    /// <summary>Runs one trial on a database of its own and returns a line describing what each process did.</summary>
    private static async Task<string> RunTrialAsync(int trial, int dotnetProcesses, TimeSpan typeScriptOffset, List<string> reference)
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var goFile = Path.Combine(db.Directory, "go");
        var delay = (long)typeScriptOffset.TotalMilliseconds;
        var environment = new Dictionary<string, string?>
        {
            ["DBOS_TEST_URL"] = db.Url,
            ["DBOS_TEST_GO_FILE"] = goFile,
            ["DBOS_TEST_START_DELAY_MS"] = Math.Max(0, -delay).ToString(CultureInfo.InvariantCulture),
            ["DBOS_TEST_PRINT_LOGS"] = "1",
        };
        var workers = Enumerable.Range(0, dotnetProcesses).Select(_ => WorkerProcess.Start(environment, db.Directory, "which-db")).ToList();
        try
        {
            workers.Add(await TypeScriptPeer.StartScriptAsync(
                Peer.Prelude + LaunchAtStartTime,
                Peer.Environment(db, ("GO_FILE", goFile), ("START_DELAY_MS", Math.Max(0, delay).ToString(CultureInfo.InvariantCulture)))));
            var typeScript = workers[^1];

            // Everyone is loaded and connected: name the moment, written whole so no reader sees half of it.
            foreach (var process in workers)
            {
                await process.WaitForLineAsync("ready", TimeSpan.FromSeconds(60));
            }

            await File.WriteAllTextAsync(goFile + ".tmp", DateTimeOffset.UtcNow.AddMilliseconds(50).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
            File.Move(goFile + ".tmp", goFile);

            var waited = 0;
            var dotnetLaunched = new List<long>();
            foreach (var worker in workers[..^1])
            {
                var exit = await worker.WaitForExitAsync(TimeSpan.FromSeconds(90));
                Assert.True(exit == 0, $"Trial {trial}: a .NET process failed (exit {exit}):{Environment.NewLine}{worker.Output}");
                Assert.Contains("result \"which-db:100\"", worker.StandardOutput, StringComparison.Ordinal);
                dotnetLaunched.Add(LaunchedAt(worker.StandardOutput));
                waited += worker.StandardOutput.Contains("log 19 ", StringComparison.Ordinal) ? 1 : 0;
            }

            var tsExit = await typeScript.WaitForExitAsync(TimeSpan.FromSeconds(90));
            var tsOutput = typeScript.Output;
            Assert.True(tsExit == 0, $"Trial {trial}: the TypeScript process failed (exit {tsExit}):{Environment.NewLine}{tsOutput}");
            Assert.Equal("launched", Assert.Single(Peer.Results(tsOutput)).GetString());

            SchemaDump.AssertEqual(reference, await SchemaDump.OfAsync(db.Url));
            Assert.Equal(new long[] { 123 }, await SchemaDump.MigrationVersionsAsync(db.Url));

            var tsMigrated = tsOutput.Contains("Running DBOS system database migrations", StringComparison.Ordinal);
            var tsIgnored = tsOutput.Split('\n').Count(line => line.Contains("Ignoring migration error", StringComparison.Ordinal));
            var actual = LaunchedAt(tsOutput) - dotnetLaunched.Min();
            return $"trial {trial}: TypeScript offset {typeScriptOffset.TotalMilliseconds:+0;-0;0} ms, launched {actual:+0;-0;0} ms after the first .NET process; TypeScript migrated: {tsMigrated} (ignored {tsIgnored} 'already exists' errors); .NET processes that waited for another: {waited} of {dotnetProcesses}";
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }
    }
}
