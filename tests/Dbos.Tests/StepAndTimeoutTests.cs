using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Dbos.Tests;

/// <summary>Scenarios 12, 18, 48 and 53: step retries with backoff, workflow timeouts, and outcomes of cancelled runs.</summary>
public class StepAndTimeoutTests
{
    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting until {what}.");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>An app on a fake clock whose workflow runs one step that fails its first two attempts.</summary>
    private sealed class FlakyApp : IAsyncDisposable
    {
        private int attempts;

        private FlakyApp(DbosApp dbos, FakeTimeProvider clock, Workflow<string, string> workflow, CapturingLoggerFactory logs)
        {
            Dbos = dbos;
            Clock = clock;
            Workflow = workflow;
            Logs = logs;
        }

        public DbosApp Dbos { get; }

        public FakeTimeProvider Clock { get; }

        public Workflow<string, string> Workflow { get; }

        public int Attempts => Volatile.Read(ref attempts);

        public CapturingLoggerFactory Logs { get; }

        /// <summary>How many retries have been scheduled (each logged once its wait is set on the clock).</summary>
        public int RetriesScheduled => Logs.Messages.Count(m => m.Id.Id == 3);

        public static async Task<FlakyApp> LaunchAsync(TestDatabase db, StepOptions options)
        {
            var clock = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
            var config = db.Config();
            config.TimeProvider = clock;
            var logs = new CapturingLoggerFactory();
            config.LoggerFactory = logs;
            var dbos = DbosApp.Create(config);
            FlakyApp? app = null;
            var flaky = dbos.RegisterStep(
                "flaky",
                (string s, CancellationToken _) =>
                {
                    var attempt = Interlocked.Increment(ref app!.attempts);
                    return attempt < 3 ? Task.FromException<string>(new TimeoutException($"try {attempt}")) : Task.FromResult(s + attempt);
                },
                options);
            app = new FlakyApp(dbos, clock, dbos.RegisterWorkflow("retrying", (WorkflowContext ctx, string s) => flaky.RunAsync(s)), logs);
            await dbos.LaunchAsync();
            return app;
        }

        public ValueTask DisposeAsync() => Dbos.DisposeAsync();
    }

    [Theory, BothBackends]
    public async Task A_step_that_fails_twice_succeeds_on_its_third_attempt_after_growing_waits(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await FlakyApp.LaunchAsync(db, new StepOptions { MaxAttempts = 3, RetryInterval = TimeSpan.FromSeconds(1), BackoffRate = 2 });
        var (dbos, clock, workflow) = (app.Dbos, app.Clock, app.Workflow);

        var result = (await workflow.StartAsync("ok", new StartOptions { WorkflowId = "retry-1" })).GetResultAsync();
        await WaitForAsync(() => app.RetriesScheduled == 1, "the first retry is scheduled");
        clock.Advance(TimeSpan.FromSeconds(0.99));
        await Task.Delay(100);
        Assert.Equal(1, app.Attempts);
        clock.Advance(TimeSpan.FromSeconds(0.01));
        await WaitForAsync(() => app.Attempts == 2, "the second attempt ran after 1 s");
        await WaitForAsync(() => app.RetriesScheduled == 2, "the second retry is scheduled");
        clock.Advance(TimeSpan.FromSeconds(1.99));
        await Task.Delay(100);
        Assert.Equal(2, app.Attempts);
        clock.Advance(TimeSpan.FromSeconds(0.01));

        Assert.Equal("ok3", await result.WaitAsync(TimeSpan.FromSeconds(10)));
        var step = Assert.Single(await dbos.ListWorkflowStepsAsync("retry-1"));
        Assert.Equal(("flaky", "ok3", null), (step.Name, step.GetOutput<string>(), step.Error));
    }

    [Theory, BothBackends]
    public async Task A_step_that_exhausts_its_attempts_fails_the_workflow_with_every_attempts_error_and_no_final_wait(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var app = await FlakyApp.LaunchAsync(db, new StepOptions { MaxAttempts = 2, RetryInterval = TimeSpan.FromSeconds(5) });
        var (dbos, clock, workflow) = (app.Dbos, app.Clock, app.Workflow);

        var result = (await workflow.StartAsync("x", new StartOptions { WorkflowId = "retry-2" })).GetResultAsync();
        await WaitForAsync(() => app.RetriesScheduled == 1, "the retry is scheduled");
        clock.Advance(TimeSpan.FromSeconds(5));

        // The second attempt is the last: the workflow fails without waiting another interval.
        var ex = await Assert.ThrowsAsync<WorkflowFailedException>(() => result.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(2, app.Attempts);
        Assert.Equal("TimeoutException", ex.ErrorName);
        Assert.Contains("failed after 2 attempts", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[1] TimeoutException: try 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[2] TimeoutException: try 2", ex.Message, StringComparison.Ordinal);

        var step = Assert.Single(await dbos.ListWorkflowStepsAsync("retry-2"));
        Assert.Equal("TimeoutException", step.Error!.Name);
        Assert.Contains("\"attemptErrors\":[\"TimeoutException: try 1\",\"TimeoutException: try 2\"]", step.RawError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Zero_or_negative_retry_settings_are_refused_with_a_message_naming_the_setting()
    {
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "settings", SystemDatabaseUrl = "sqlite:///unused.sqlite" });
        Task<int> Step(int x, CancellationToken _) => Task.FromResult(x);

        Assert.Contains("MaxAttempts", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterStep<int, int>("a", Step, new StepOptions { MaxAttempts = 0 })).Message, StringComparison.Ordinal);
        Assert.Contains("RetryInterval", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterStep<int, int>("b", Step, new StepOptions { RetryInterval = TimeSpan.Zero })).Message, StringComparison.Ordinal);
        Assert.Contains("RetryInterval", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterStep<int, int>("c", Step, new StepOptions { RetryInterval = TimeSpan.FromSeconds(-1) })).Message, StringComparison.Ordinal);
        Assert.Contains("BackoffRate", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterStep<int, int>("d", Step, new StepOptions { BackoffRate = 0 })).Message, StringComparison.Ordinal);
        Assert.Contains("MaxRecoveryAttempts", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterWorkflow("e", (WorkflowContext c, int x) => Task.FromResult(x), new WorkflowOptions { MaxRecoveryAttempts = 0 })).Message, StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task A_workflow_past_its_timeout_is_cancelled_with_the_children_that_inherit_its_deadline(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var child = dbos.RegisterWorkflow("slow-child", async (WorkflowContext ctx, int seconds) =>
        {
            await ctx.SleepAsync(TimeSpan.FromSeconds(seconds));
            return seconds;
        });
        var parent = dbos.RegisterWorkflow("impatient", async (WorkflowContext ctx, int seconds) =>
        {
            var handle = await child.StartAsync(seconds);
            return await handle.GetResultAsync();
        });
        await dbos.LaunchAsync();

        var handle = await parent.StartAsync(60, new StartOptions { WorkflowId = "timed", Timeout = TimeSpan.FromMilliseconds(500) });
        var ex = await Assert.ThrowsAsync<WorkflowCancelledException>(() => handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("timed", ex.WorkflowId);

        await Eventually.StatusAsync(db, "timed-0", "CANCELLED");
        var parentStatus = (await dbos.GetWorkflowStatusAsync("timed"))!;
        var childStatus = (await dbos.GetWorkflowStatusAsync("timed-0"))!;
        Assert.Equal((WorkflowState.Cancelled, TimeSpan.FromMilliseconds(500)), (parentStatus.State, parentStatus.Timeout));
        Assert.Equal(parentStatus.Deadline, childStatus.Deadline);
        Assert.Equal("timed", childStatus.ParentWorkflowId);
        await Assert.ThrowsAsync<WorkflowCancelledException>(async () => await (await dbos.RetrieveWorkflowAsync<int>("timed-0")).GetResultAsync());
    }

    [Theory, BothBackends]
    public async Task A_workflow_cancelled_while_its_body_runs_stays_cancelled_when_the_body_finishes(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var workflow = dbos.RegisterWorkflow("stubborn", async (WorkflowContext ctx, int x) =>
        {
            entered.SetResult();
            await release.Task;
            return x;
        });
        await dbos.LaunchAsync();

        var handle = await workflow.StartAsync(1, new StartOptions { WorkflowId = "stubborn-1" });
        await entered.Task;
        await dbos.CancelWorkflowAsync("stubborn-1");
        release.SetResult();

        await Assert.ThrowsAsync<WorkflowCancelledException>(() => handle.GetResultAsync());
        await Task.Delay(200);
        var status = (await dbos.GetWorkflowStatusAsync("stubborn-1"))!;
        Assert.Equal((WorkflowState.Cancelled, null), (status.State, status.RawOutput));
        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {workflow_output} WHERE workflow_uuid = 'stubborn-1'"));
    }
}
