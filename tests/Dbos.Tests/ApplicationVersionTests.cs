using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.Loader;
using System.Text.Json;
using Dbos.Execution;
using Dbos.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Dbos.Tests;

/// <summary>
/// The default application version follows the workflows' code: variants of one program, compiled here with Roslyn,
/// keep their version under edits outside every workflow and change it under edits inside one. Work left for another
/// version is reported at launch and moved on request (API and command line), also across real rebuilt processes.
/// </summary>
public class ApplicationVersionTests
{
    // One program with a workflow of each registration style: an async lambda (with a step lambda nested in it), a
    // method group (with a local function), and a workflow class. Markers are replaced to make the variants.
    private const string Library = """
        using System;
        using System.Threading;
        using System.Threading.Tasks;
        using Dbos;

        namespace Shop;

        public static class Registrations
        {
            //BEFORE

            public static string Helper() => "helper text";

            public static void Register(DbosApp dbos)
            {
                //UNRELATED
                var step = dbos.RegisterStep("add", (int x, CancellationToken ct) => Task.FromResult(x + 1));
                dbos.RegisterWorkflow("lambda", async (WorkflowContext ctx, int x) =>
                {
                    var y = await step.RunAsync(x);
                    //EXTRA_STEP
                    var z = await ctx.RunStepAsync("inner", _ => Task.FromResult("inner text " + y));
                    return Helper() + " workflow text " + z;
                });
                dbos.RegisterWorkflow<int, string>("method", RunAsync);
                dbos.RegisterWorkflow<Checkout, int, string>("class");
            }

            private static async Task<string> RunAsync(WorkflowContext ctx, int x)
            {
                var total = await ctx.RunStepAsync("local", _ => Task.FromResult(Twice(x)));
                return Helper() + total;

                int Twice(int v) => v * 2;
            }
        }

        public sealed class Checkout : IWorkflow<int, string>
        {
            public async Task<string> RunAsync(WorkflowContext context, int input)
            {
                var n = await context.RunStepAsync("count", _ => Task.FromResult(input));
                return "checkout " + n;
            }
        }
        """;

    private static readonly (string Name, string Source)[] OutsideEdits =
    [
        ("a helper's string literal", Library.Replace("\"helper text\"", "\"helper text, edited\"", StringComparison.Ordinal)),
        ("lambdas, a closure and a local function added before the workflows", Library
            .Replace(
                "//BEFORE",
                "public static int Unrelated(int a) { Func<int, int> f = b => b + a; Func<int, int> g = b => b * 2; return f(a) + g(a) + Local(); static int Local() => 1; }",
                StringComparison.Ordinal)
            .Replace("//UNRELATED", "Func<int, int> twice = v => v * 2; var k = twice(2); Func<int, int> plus = v => v + k; _ = plus(1);", StringComparison.Ordinal)),
    ];

    private static readonly (string Name, string Workflow, string Source)[] InsideEdits =
    [
        ("a string literal in the workflow", "lambda", Library.Replace("\" workflow text \"", "\" workflow text, edited \"", StringComparison.Ordinal)),
        ("an extra step call", "lambda", Library.Replace("//EXTRA_STEP", "y = await step.RunAsync(y);", StringComparison.Ordinal)),
        ("a lambda nested in the workflow", "lambda", Library.Replace("\"inner text \"", "\"inner text, edited \"", StringComparison.Ordinal)),
        ("a local function of the workflow method", "method", Library.Replace("v * 2;", "v * 3;", StringComparison.Ordinal)),
        ("the workflow class's method", "class", Library.Replace("\"checkout \"", "\"checkout, edited \"", StringComparison.Ordinal)),
    ];

    private static readonly string[] WorkflowNames = ["class", "lambda", "method"];

    [Theory]
    [InlineData(OptimizationLevel.Release)]
    [InlineData(OptimizationLevel.Debug)]
    public async Task The_code_hash_keeps_under_edits_outside_workflows_and_changes_under_edits_inside(OptimizationLevel optimization)
    {
        var baseline = await HashesAsync(Library, optimization);
        Assert.Equal(32, baseline["*"].Length);

        foreach (var (name, source) in OutsideEdits)
        {
            var edited = await HashesAsync(source, optimization);
            Assert.True(baseline.SequenceEqual(edited), $"An edit outside every workflow ({name}) changed a hash.");
        }

        foreach (var (name, workflow, source) in InsideEdits)
        {
            var edited = await HashesAsync(source, optimization);
            Assert.True(baseline["*"] != edited["*"], $"An edit inside workflow '{workflow}' ({name}) kept the version.");
            foreach (var other in WorkflowNames)
            {
                Assert.True((other == workflow) != (baseline[other] == edited[other]), $"Edit '{name}': workflow '{other}' hash {(other == workflow ? "kept" : "changed")}.");
            }
        }
    }

    [Theory, BothBackends]
    public async Task Launch_uses_the_code_hash_as_default_version(Backend backend)
    {
        Assert.Null(Environment.GetEnvironmentVariable(DbosConfig.ApplicationVersionVariable));
        await using var db = await TestDatabase.CreateAsync(backend);
        var baseline = await LaunchedVersionAsync(db, Library);
        var outside = await LaunchedVersionAsync(db, OutsideEdits[1].Source);
        var inside = await LaunchedVersionAsync(db, InsideEdits[0].Source);

        Assert.Equal(baseline.Expected, baseline.Launched);
        Assert.Equal(baseline.Launched, outside.Launched);
        Assert.NotEqual(baseline.Launched, inside.Launched);
        var versions = await db.QueryAsync("SELECT version_name FROM {application_versions}", r => r.GetString(0));
        Assert.Equal(new[] { baseline.Launched, inside.Launched }.Order(StringComparer.Ordinal), versions.Order(StringComparer.Ordinal));
    }

    [Theory, BothBackends]
    public async Task Workflows_without_IL_fail_launch_unless_a_version_is_set(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);

        // A method emitted at run time has no IL to hash (as under NativeAOT): no silent fallback.
        var emitted = new DynamicMethod("emitted", typeof(Task<int>), [typeof(WorkflowContext), typeof(int)]);
        var il = emitted.GetILGenerator();
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Call, typeof(Task).GetMethod(nameof(Task.FromResult))!.MakeGenericMethod(typeof(int)));
        il.Emit(OpCodes.Ret);
        var body = emitted.CreateDelegate<Func<WorkflowContext, int, Task<int>>>();

        await using (var dbos = DbosApp.Create(db.Config(applicationVersion: null)))
        {
            dbos.RegisterWorkflow("emitted", body);
            var error = await Assert.ThrowsAsync<DbosConfigurationException>(() => dbos.LaunchAsync());
            Assert.Contains("DbosConfig.ApplicationVersion", error.Message, StringComparison.Ordinal);
            Assert.Contains(DbosConfig.ApplicationVersionVariable, error.Message, StringComparison.Ordinal);
        }

        await using (var dbos = DbosApp.Create(db.Config(applicationVersion: "v-set")))
        {
            var workflow = dbos.RegisterWorkflow("emitted", body);
            await dbos.LaunchAsync();
            Assert.Equal(7, await workflow.RunAsync(7));
        }
    }

    [Theory, BothBackends]
    public async Task Work_of_other_versions_is_reported_and_moved_on_request(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var old = DbosApp.Create(db.Config(applicationVersion: "v1")))
        {
            await old.LaunchAsync();
        }

        // Work recorded for v1: enqueued, delayed and pending; and other-app's enqueued v1 work, which is none of ours.
        var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        await using (client)
        {
            foreach (var (id, app, delay) in new[] { ("e1", "test-app", (TimeSpan?)null), ("d1", "test-app", TimeSpan.FromHours(1)), ("p1", "test-app", null), ("x1", "other-app", null) })
            {
                await client.EnqueueAsync<int, int>(
                    new EnqueueOptions { WorkflowName = "double", QueueName = "q", WorkflowId = id, ApplicationVersion = "v1", ApplicationName = app, Delay = delay }, 21);
            }
        }

        await db.ExecuteAsync("UPDATE {workflow_status} SET status = 'PENDING', executor_id = 'gone' WHERE workflow_uuid = 'p1'");

        using var logs = new CapturingLoggerFactory();
        var config = db.Config(applicationVersion: "v2");
        config.LoggerFactory = logs;
        await using var dbos = DbosApp.Create(config);
        dbos.RegisterQueue("q");
        var doubled = dbos.RegisterWorkflow("double", (WorkflowContext ctx, int x) => Task.FromResult(x * 2));
        await dbos.LaunchAsync();

        var warning = Assert.Single(logs.Messages, m => m.Id.Id == 60).Message;
        Assert.Contains("3 unfinished workflow(s) of application test-app wait for application version v1", warning, StringComparison.Ordinal);
        Assert.Contains($"dbos version move v1 --to v2 --application-name test-app --sys-db-url {dbos.SystemDatabase}", warning, StringComparison.Ordinal);
        if (backend == Backend.Postgres)
        {
            Assert.DoesNotContain(":dbos@", warning, StringComparison.Ordinal);
        }

        // Callable again (after a takeover, say), and nothing of v1 ran here.
        Assert.Equal(new[] { ("v1", 3L) }, await dbos.Engine.ReportWaitingWorkOfOtherVersionsAsync(CancellationToken.None));
        await Task.Delay(300);
        Assert.Equal("ENQUEUED", await StatusAsync(db, "e1"));

        var moved = await dbos.MoveWorkflowsToVersionAsync("v1");
        Assert.Equal(new[] { "d1", "e1" }, moved.Order(StringComparer.Ordinal));
        Assert.Equal(42, await (await dbos.RetrieveWorkflowAsync<int>("e1")).GetResultAsync());
        Assert.Equal(("DELAYED", "v2"), await StatusAndVersionAsync(db, "d1"));
        Assert.Equal(("PENDING", "v1"), await StatusAndVersionAsync(db, "p1"));
        Assert.Equal(("ENQUEUED", "v1"), await StatusAndVersionAsync(db, "x1"));
        Assert.Equal(new[] { ("v1", 1L) }, await dbos.Engine.ReportWaitingWorkOfOtherVersionsAsync(CancellationToken.None));

        // A client of other-app: its default target is other-app's latest version, and it has none.
        var otherClient = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "other-app" });
        await using (otherClient)
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => otherClient.MoveWorkflowsToVersionAsync("v1"));
            Assert.Equal(new[] { "x1" }, await otherClient.MoveWorkflowsToVersionAsync("v1", "v9"));
        }

        Assert.Equal(("ENQUEUED", "v9"), await StatusAndVersionAsync(db, "x1"));
        Assert.Equal(("PENDING", "v1"), await StatusAndVersionAsync(db, "p1"));
    }

    [Theory, BothBackends]
    public async Task Cli_version_move(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var dbos = DbosApp.Create(db.Config(applicationVersion: "v2")))
        {
            await dbos.LaunchAsync();
        }

        var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        await using (client)
        {
            foreach (var (id, app) in new[] { ("a1", "test-app"), ("a2", "test-app"), ("b1", "other-app") })
            {
                await client.EnqueueAsync<int, int>(new EnqueueOptions { WorkflowName = "double", QueueName = "q", WorkflowId = id, ApplicationVersion = "v1", ApplicationName = app }, 1);
            }
        }

        var text = await DbosAsync(db, "version", "move", "v1", "--application-name", "test-app");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("Moved 2 workflow(s) from version v1 to the latest version.", text.Output, StringComparison.Ordinal);
        Assert.Equal(("ENQUEUED", "v2"), await StatusAndVersionAsync(db, "a1"));
        Assert.Equal(("ENQUEUED", "v1"), await StatusAndVersionAsync(db, "b1"));

        var json = await DbosAsync(db, "version", "move", "v1", "--to", "v3", "--json");
        Assert.Equal(0, json.ExitCode);
        using var document = JsonDocument.Parse(json.Output);
        Assert.Equal(1, document.RootElement.GetProperty("moved").GetInt32());
        Assert.Equal("b1", document.RootElement.GetProperty("workflowIds")[0].GetString());
        Assert.Equal(("ENQUEUED", "v3"), await StatusAndVersionAsync(db, "b1"));

        var none = await DbosAsync(db, "version", "move", "v0", "--to", "v3");
        Assert.Equal(0, none.ExitCode);
        Assert.Contains("Moved 0 workflow(s)", none.Output, StringComparison.Ordinal);
    }

    // ---- A real program, rebuilt after a crash ----

    private const string RebuildProgram = """
        using System;
        using System.IO;
        using System.Linq;
        using System.Threading;
        using System.Threading.Tasks;
        using Dbos;
        using Microsoft.Extensions.Logging;

        var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        Console.SetOut(stdout);
        var ledger = Environment.GetEnvironmentVariable("DBOS_TEST_LEDGER")!;
        var folder = Path.GetDirectoryName(ledger)!;
        await using var dbos = DbosApp.Create(new DbosConfig
        {
            Name = "rebuild-app",
            SystemDatabaseUrl = Environment.GetEnvironmentVariable("DBOS_TEST_URL"),
            SystemDatabaseSchema = Environment.GetEnvironmentVariable("DBOS_TEST_SCHEMA")!,
            ExecutorId = "rebuild-test",
            PollingInterval = TimeSpan.FromMilliseconds(100),
            LoggerFactory = new ConsoleLogs(),
        });
        dbos.RegisterQueue("work", new QueueOptions { WorkerConcurrency = 1 });
        var work = dbos.RegisterWorkflow("work", async (WorkflowContext ctx, string id) =>
        {
            await ctx.RunStepAsync("first", _ =>
            {
                File.AppendAllText(ledger, "first " + id + "\n");
                return Task.FromResult(1);
            });
            await ctx.RunStepAsync("wait", async ct =>
            {
                while (!File.Exists(Path.Combine(folder, "release-" + id)))
                {
                    await Task.Delay(50, ct);
                }

                return 2;
            });
            return "done " + id;
        });
        await dbos.LaunchAsync();
        Console.WriteLine("version " + dbos.ApplicationVersion);
        if (args[0] == "start")
        {
            foreach (var id in args.Skip(1))
            {
                await work.StartAsync(id, new StartOptions { WorkflowId = id, Queue = "work" });
            }

            await Task.Delay(Timeout.Infinite);
        }
        else
        {
            var handle = await dbos.RetrieveWorkflowAsync<string>(args[1]);
            Console.WriteLine("result " + await handle.GetResultAsync());
            if (args.Length > 2 && args[2] == "stay")
            {
                await Task.Delay(Timeout.Infinite);
            }
        }

        static string Describe() => "outside every workflow";

        sealed class ConsoleLogs : ILoggerFactory, ILogger
        {
            public ILogger CreateLogger(string categoryName) => this;
            public void AddProvider(ILoggerProvider provider) { }
            public void Dispose() { }
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                Console.WriteLine($"log {logLevel} {eventId.Id} {formatter(state, exception)}");
        }
        """;

    [Theory, BothBackends]
    public async Task A_rebuilt_program_recovers_its_work_and_a_changed_one_runs_it_only_once_moved(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var environment = db.WorkerEnvironment(ledger);
        var builds = new List<string>();
        try
        {
            var a = BuildProgram(RebuildProgram, builds);
            var b = BuildProgram(RebuildProgram.Replace("\"outside every workflow\"", "\"outside every workflow, edited\"", StringComparison.Ordinal), builds);
            var c = BuildProgram(RebuildProgram.Replace("\"done \" + id", "\"finished \" + id", StringComparison.Ordinal), builds);
            string versionA;

            // Build A starts w1 (which blocks after its first step) and w2, w3 behind it on a queue; then it crashes.
            await using (var first = WorkerProcess.StartDll(a, environment, db.Directory, "start", "w1", "w2", "w3"))
            {
                versionA = (await first.WaitForLineAsync("version "))["version ".Length..];
                await Eventually.HoldsAsync(() => Task.FromResult(Ledger(ledger).Contains("first w1")), "w1 ran its first step");

                // Killed once the step is checkpointed: a kill between its side effect and its checkpoint would rightly run it again.
                await Eventually.OperationsRecordedAsync(db, "w1", 1);
                await Eventually.StatusAsync(db, "w3", "ENQUEUED");
                first.Kill();
                await first.WaitForExitAsync();
            }

            // Build B, edited outside the workflow, has the same version: it recovers w1, which finishes without
            // re-running its first step; then it takes w2, which blocks, and crashes too.
            await File.WriteAllTextAsync(Path.Combine(db.Directory, "release-w1"), string.Empty);
            await using (var second = WorkerProcess.StartDll(b, environment, db.Directory, "await", "w1", "stay"))
            {
                Assert.Equal("version " + versionA, await second.WaitForLineAsync("version "));
                Assert.Equal("result done w1", await second.WaitForLineAsync("result "));
                await Eventually.HoldsAsync(() => Task.FromResult(Ledger(ledger).Contains("first w2")), "w2 ran its first step");
                second.Kill();
                await second.WaitForExitAsync();
            }

            Assert.Single(Ledger(ledger), l => l == "first w1");

            // Build C changed the workflow: another version, which does not run w3 and warns about it until it is moved.
            await File.WriteAllTextAsync(Path.Combine(db.Directory, "release-w3"), string.Empty);
            await using var third = WorkerProcess.StartDll(c, environment, db.Directory, "await", "w3");
            var versionC = (await third.WaitForLineAsync("version "))["version ".Length..];
            Assert.NotEqual(versionA, versionC);
            var warning = await third.WaitForLineAsync(l => l.StartsWith("log Warning 60 ", StringComparison.Ordinal));
            Assert.Contains($"2 unfinished workflow(s) of application rebuild-app wait for application version {versionA}", warning, StringComparison.Ordinal);
            Assert.Contains($"dbos version move {versionA} --to {versionC}", warning, StringComparison.Ordinal);
            await Task.Delay(1000);
            Assert.Equal("ENQUEUED", await StatusAsync(db, "w3"));
            Assert.DoesNotContain("first w3", Ledger(ledger));

            var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "rebuild-app" });
            await using (client)
            {
                Assert.Equal(new[] { "w3" }, await client.MoveWorkflowsToVersionAsync(versionA));
            }

            Assert.Equal("result finished w3", await third.WaitForLineAsync("result "));
            Assert.Equal(0, await third.WaitForExitAsync());
            Assert.Single(Ledger(ledger), l => l == "first w3");

            // w2 is pending, its executor's work not taken over: it stays with its version (and is still reported).
            Assert.Equal(("PENDING", versionA), await StatusAndVersionAsync(db, "w2"));
        }
        finally
        {
            foreach (var file in builds)
            {
                File.Delete(file);
            }
        }
    }

    // ---- Helpers ----

    private static string[] Ledger(string path) => File.Exists(path) ? File.ReadAllLines(path) : [];

    private static async Task<string?> StatusAsync(TestDatabase db, string workflowId) =>
        (await db.QueryAsync($"SELECT status FROM {{workflow_status}} WHERE workflow_uuid = '{workflowId}'", r => r.GetString(0))).SingleOrDefault();

    private static async Task<(string, string)> StatusAndVersionAsync(TestDatabase db, string workflowId) =>
        (await db.QueryAsync($"SELECT status, application_version FROM {{workflow_status}} WHERE workflow_uuid = '{workflowId}'", r => (r.GetString(0), r.GetString(1)))).Single();

    private static async Task<(int ExitCode, string Output)> DbosAsync(TestDatabase db, params string[] arguments)
    {
        string[] all = [.. arguments, "--sys-db-url", db.Url, "--schema", db.Schema];
        await using var cli = WorkerProcess.StartDll(Path.Combine(AppContext.BaseDirectory, "Dbos.Cli.dll"), new Dictionary<string, string?>(), db.Directory, all);
        var exit = await cli.WaitForExitAsync();
        return (exit, cli.StandardOutput + cli.StandardError);
    }

    /// <summary>The per-workflow hashes ("*": the whole version) of the workflows a compiled variant registers.</summary>
    private static async Task<Dictionary<string, string>> HashesAsync(string source, OptimizationLevel optimization)
    {
        var context = new AssemblyLoadContext("variant", isCollectible: true);
        try
        {
            var assembly = context.LoadFromStream(new MemoryStream(Compile(source, "Shop", OutputKind.DynamicallyLinkedLibrary, optimization)));
            var directory = Path.Combine(Path.GetTempPath(), "dbos-tests", Guid.NewGuid().ToString("N")[..12]);
            await using var dbos = DbosApp.Create(new DbosConfig { Name = "shop", SystemDatabaseUrl = $"sqlite:///{directory}/unused.sqlite" });
            assembly.GetType("Shop.Registrations")!.GetMethod("Register")!.Invoke(null, [dbos]);
            var methods = WorkflowNames.ToDictionary(n => n, n => dbos.Engine.Find(n).Method);
            var hashes = methods.ToDictionary(m => m.Key, m => WorkflowCodeHash.Compute("shop", [m]));
            hashes["*"] = WorkflowCodeHash.Compute("shop", methods);
            return hashes;
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>Launches a compiled variant without a configured version: the version it launched with, and the hash expected.</summary>
    private static async Task<(string Launched, string Expected)> LaunchedVersionAsync(TestDatabase db, string source)
    {
        var context = new AssemblyLoadContext("variant", isCollectible: true);
        try
        {
            var assembly = context.LoadFromStream(new MemoryStream(Compile(source, "Shop", OutputKind.DynamicallyLinkedLibrary, OptimizationLevel.Release)));
            await using var dbos = DbosApp.Create(db.Config(applicationVersion: null));
            assembly.GetType("Shop.Registrations")!.GetMethod("Register")!.Invoke(null, [dbos]);
            var expected = WorkflowCodeHash.Compute("test-app", WorkflowNames.Select(n => KeyValuePair.Create(n, dbos.Engine.Find(n).Method)));
            await dbos.LaunchAsync();
            return (dbos.ApplicationVersion, expected);
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>
    /// Compiles a program into the test's output folder (where its dependencies are), with the worker's runtime
    /// configuration and dependency list, so that <c>dotnet program.dll</c> runs it; the files are recorded in <paramref name="files"/> to delete.
    /// </summary>
    private static string BuildProgram(string source, List<string> files)
    {
        var name = "DbosRebuild" + Guid.NewGuid().ToString("N")[..10];
        var dll = Path.Combine(AppContext.BaseDirectory, name + ".dll");
        var runtimeConfig = Path.Combine(AppContext.BaseDirectory, name + ".runtimeconfig.json");
        var deps = Path.Combine(AppContext.BaseDirectory, name + ".deps.json");
        files.AddRange([dll, runtimeConfig, deps]);
        File.WriteAllBytes(dll, Compile(source, name, OutputKind.ConsoleApplication, OptimizationLevel.Release));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Dbos.Tests.Worker.runtimeconfig.json"), runtimeConfig);

        // The worker's dependency list names where the native SQLite library is, which a folder scan would not find.
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Dbos.Tests.Worker.deps.json"), deps);
        return dll;
    }

    private static readonly Lazy<MetadataReference[]> References = new(() =>
        [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))]);

    private static byte[] Compile(string source, string assemblyName, OutputKind kind, OptimizationLevel optimization)
    {
        var compilation = CSharpCompilation.Create(
            assemblyName,
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest))],
            References.Value,
            new CSharpCompilationOptions(kind, optimizationLevel: optimization, nullableContextOptions: NullableContextOptions.Enable, deterministic: true));
        using var stream = new MemoryStream();
        var result = compilation.Emit(stream);
        Assert.True(result.Success, string.Join(Environment.NewLine, result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        return stream.ToArray();
    }
}
