using System.Globalization;
using Dbos;
using Microsoft.Extensions.Logging;

/// <summary>
/// One replica of an application for the many-process tests (command <c>replica</c>): launched with the default
/// configuration (its own generated executor ID), it optionally starts workflows of slow steps, then serves until killed.
/// <para>
/// Every step execution appends <c>run workflowId step processId</c> to this process's ledger as it begins, and returns
/// <c>processId:step</c>, so the test can tell which process ran and which process's outcome was recorded.
/// </para>
/// Prints <c>executor ID</c> once launched, <c>started</c> once its workflows are started, and <c>log EventId message</c>
/// for each liveness event the library logs (<c>event EventId Level message</c> for its other events).
/// Environment: DBOS_TEST_START (how many workflows to start, IDs DBOS_TEST_PREFIX-0..), DBOS_TEST_STEPS (steps each,
/// default 6), DBOS_TEST_STEP_MS (each step's duration, default 300), DBOS_TEST_LIVENESS_MS (DbosConfig.LivenessInterval),
/// DBOS_TEST_GRACE_MS (DbosConfig.LivenessGracePeriod), DBOS_TEST_LEDGER; DBOS_TEST_RETENTION_AGE_MS (turns automatic
/// retention on with this MaxAge), DBOS_TEST_RETENTION_INTERVAL_MS, DBOS_TEST_RETENTION_BATCH; DBOS_TEST_KEEP_STARTING_MS
/// (after "started", starts a short "recorded" workflow every this many milliseconds, noted in the ledger's .starts file).
/// </summary>
public static class ReplicaWorkload
{
    public const string ApplicationName = "replicas";

    public static async Task<int> RunAsync(DbosConfig config)
    {
        int Setting(string name, int fallback) =>
            int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var value) ? value : fallback;

        var ledgerPath = Environment.GetEnvironmentVariable("DBOS_TEST_LEDGER") ?? throw new InvalidOperationException("DBOS_TEST_LEDGER is not set");
        var start = Setting("DBOS_TEST_START", 0);
        var steps = Setting("DBOS_TEST_STEPS", 6);
        var stepMs = Setting("DBOS_TEST_STEP_MS", 300);
        var prefix = Environment.GetEnvironmentVariable("DBOS_TEST_PREFIX") ?? "wf";
        var process = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

        config.Name = ApplicationName;
        if (Setting("DBOS_TEST_LIVENESS_MS", 0) is var liveness and > 0)
        {
            config.LivenessInterval = TimeSpan.FromMilliseconds(liveness);
        }

        if (Setting("DBOS_TEST_GRACE_MS", -1) is var grace and >= 0)
        {
            config.LivenessGracePeriod = TimeSpan.FromMilliseconds(grace);
        }

        if (Setting("DBOS_TEST_RETENTION_AGE_MS", 0) is var maxAge and > 0)
        {
            config.Retention = new RetentionOptions
            {
                MaxAge = TimeSpan.FromMilliseconds(maxAge),
                Interval = TimeSpan.FromMilliseconds(Setting("DBOS_TEST_RETENTION_INTERVAL_MS", 250)),
                BatchSize = Setting("DBOS_TEST_RETENTION_BATCH", 1000),
            };
        }

        using var loggers = new LoggerFactory([new LivenessEventPrinter()]);
        config.LoggerFactory = loggers;

        var ledgerLock = new object();
        await using var dbos = DbosApp.Create(config);
        var step = dbos.RegisterStep("slow-step", async (int i, CancellationToken ct) =>
        {
            lock (ledgerLock)
            {
                File.AppendAllText(ledgerPath, $"run {DbosApp.CurrentWorkflowId} {i} {process}{Environment.NewLine}");
            }

            await Task.Delay(stepMs, ct);
            return $"{process}:{i}";
        });
        var workflow = dbos.RegisterWorkflow("replicated", async (WorkflowContext ctx, int count) =>
        {
            var outputs = new List<string>();
            for (var i = 1; i <= count; i++)
            {
                outputs.Add(await step.RunAsync(i));
            }

            return string.Join(",", outputs);
        });

        var recorded = dbos.RegisterWorkflow("recorded", async (WorkflowContext ctx, int i) =>
        {
            var doubled = await ctx.RunStepAsync("double", _ => Task.FromResult(i * 2));
            await ctx.SetEventAsync("progress", doubled);
            await ctx.WriteStreamAsync("values", doubled);
            await ctx.CloseStreamAsync("values");
            return doubled;
        });

        await dbos.LaunchAsync();
        Console.WriteLine($"executor {dbos.ExecutorId}");
        for (var i = 0; i < start; i++)
        {
            await workflow.StartAsync(steps, new StartOptions { WorkflowId = $"{prefix}-{i}" });
        }

        Console.WriteLine("started");
        if (Setting("DBOS_TEST_KEEP_STARTING_MS", 0) is var every and > 0)
        {
            // A stream of short workflows (a step, an event, a stream), each noted in <ledger>.starts as "id unixMs" after
            // its row exists, with the time taken before it was started (so at or before its created_at).
            for (var k = 0; ; k++)
            {
                var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                var id = $"rec-{process}-{k}";
                await recorded.StartAsync(k, new StartOptions { WorkflowId = id });
                File.AppendAllText(ledgerPath + ".starts", $"{id} {before}{Environment.NewLine}");
                await Task.Delay(every);
            }
        }

        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    /// <summary>Prints the library's liveness events (event IDs 40 to 49) to standard output, and its other events as <c>event Id Level message</c>.</summary>
    private sealed class LivenessEventPrinter : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Printer();

        public void Dispose()
        {
        }

        private sealed class Printer : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (eventId.Id is >= 40 and < 50)
                {
                    Console.WriteLine($"log {eventId.Id} {formatter(state, exception)}");
                }
                else if (logLevel >= LogLevel.Information && eventId.Id != 1)
                {
                    // Everything else the library reports, for the reader of a failed test.
                    Console.WriteLine($"event {eventId.Id} {logLevel} {formatter(state, exception)}{(exception is null ? string.Empty : " | " + exception.GetType().Name + ": " + exception.Message)}");
                }
            }
        }
    }
}
