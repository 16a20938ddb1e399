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
/// DBOS_TEST_GRACE_MS (DbosConfig.LivenessGracePeriod), DBOS_TEST_LEDGER.
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

        await dbos.LaunchAsync();
        Console.WriteLine($"executor {dbos.ExecutorId}");
        for (var i = 0; i < start; i++)
        {
            await workflow.StartAsync(steps, new StartOptions { WorkflowId = $"{prefix}-{i}" });
        }

        Console.WriteLine("started");
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
