using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// A step's per-attempt timeout (and what happens to a body that ignores its token), which errors are retried
/// (<see cref="StepOptions.ShouldRetry"/>, <see cref="StepOptions.NonRetryableExceptionTypes"/>), and intervals as
/// <see cref="TimeSpan"/>s.
/// </summary>
public class StepOptionsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Theory, BothBackends]
    public async Task An_attempt_past_its_timeout_has_its_token_cancelled_and_is_retried(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var attempts = 0;
        var firstSawCancellation = false;
        var workflow = dbos.RegisterWorkflow("timeout-retried", async (WorkflowContext ctx, string s) =>
            await ctx.RunStepAsync("slow-once", async ct =>
            {
                if (Interlocked.Increment(ref attempts) == 1)
                {
                    try
                    {
                        await Task.Delay(Timeout.Infinite, ct);
                    }
                    catch (OperationCanceledException)
                    {
                        firstSawCancellation = true;
                        throw;
                    }
                }

                return s + attempts;
            },
            new StepOptions { Timeout = TimeSpan.FromMilliseconds(200), MaxAttempts = 3, RetryInterval = TimeSpan.FromMilliseconds(10) }));
        await dbos.LaunchAsync();

        Assert.Equal("ok2", await workflow.RunAsync("ok", new StartOptions { WorkflowId = "t-1" }).WaitAsync(Patience));
        Assert.True(firstSawCancellation);
        var step = Assert.Single(await dbos.ListWorkflowStepsAsync("t-1"));
        Assert.Equal(("slow-once", "ok2", null), (step.Name, step.GetOutput<string>(), step.Error));
    }

    [Theory, BothBackends]
    public async Task A_step_that_times_out_on_its_last_attempt_records_a_DbosStepTimeoutException(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var attempts = 0;
        var workflow = dbos.RegisterWorkflow("timeout-failed", async (WorkflowContext ctx, string s) =>
        {
            try
            {
                await ctx.RunStepAsync("always-slow", async ct =>
                {
                    Interlocked.Increment(ref attempts);
                    await Task.Delay(Timeout.Infinite, ct);
                },
                new StepOptions { Timeout = TimeSpan.FromMilliseconds(100), MaxAttempts = 2, RetryInterval = TimeSpan.FromMilliseconds(10) });
                return "finished";
            }
            catch (StepFailedException e)
            {
                // The first execution has the original exception; every execution has its recorded name.
                return $"{e.ErrorName} {e.InnerException?.GetType().Name} {e.AttemptErrors.Count}";
            }
        });
        await dbos.LaunchAsync();

        Assert.Equal("DbosStepTimeoutException DbosStepTimeoutException 2", await workflow.RunAsync("x", new StartOptions { WorkflowId = "t-2" }).WaitAsync(Patience));
        Assert.Equal(2, attempts);
        var step = Assert.Single(await dbos.ListWorkflowStepsAsync("t-2"));
        Assert.Equal("DbosStepTimeoutException", step.Error!.Name);
        Assert.Contains("Step 'always-slow' timed out after 100 ms.", step.Error.Message, StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task A_body_that_ignores_its_token_is_abandoned_and_its_next_attempt_starts_only_once_it_returned(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var attempts = 0;
        var running = 0;
        var mostAtOnce = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var workflow = dbos.RegisterWorkflow("stubborn-step", async (WorkflowContext ctx, string s) =>
            await ctx.RunStepAsync("ignores-token", async () =>
            {
                var attempt = Interlocked.Increment(ref attempts);
                var now = Interlocked.Increment(ref running);
                InterlockedMax(ref mostAtOnce, now);
                try
                {
                    if (attempt == 1)
                    {
                        await release.Task; // ignores its token
                    }

                    return $"{s}{attempt}";
                }
                finally
                {
                    Interlocked.Decrement(ref running);
                }
            },
            new StepOptions { Timeout = TimeSpan.FromMilliseconds(600), MaxAttempts = 2, RetryInterval = TimeSpan.FromMilliseconds(10) }));
        await dbos.LaunchAsync();

        var result = workflow.RunAsync("r", new StartOptions { WorkflowId = "t-3" });
        await Task.Delay(800); // past the timeout and the retry interval, within the wait for the abandoned body
        Assert.Equal(1, Volatile.Read(ref attempts));
        release.SetResult();

        Assert.Equal("r2", await result.WaitAsync(Patience));
        Assert.Equal(1, mostAtOnce);
    }

    [Theory, BothBackends]
    public async Task A_body_that_never_returns_fails_the_step_one_timeout_later_without_a_second_attempt(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var attempts = 0;
        var release = new ManualResetEventSlim();
        try
        {
            // A synchronous body that blocks its thread: abandoned too.
            var stuck = dbos.RegisterStep("blocks", () =>
            {
                Interlocked.Increment(ref attempts);
                release.Wait();
            },
            new StepOptions { Timeout = TimeSpan.FromMilliseconds(200), MaxAttempts = 5, RetryInterval = TimeSpan.FromMilliseconds(10) });
            var workflow = dbos.RegisterWorkflow("never-returns", async (WorkflowContext ctx) => await stuck.RunAsync());
            await dbos.LaunchAsync();

            var ex = await Assert.ThrowsAsync<WorkflowFailedException>(() => workflow.RunAsync(new StartOptions { WorkflowId = "t-4" }).WaitAsync(Patience));
            Assert.Equal("DbosStepTimeoutException", ex.ErrorName);
            Assert.Contains("attempt 1 ignored its cancellation and was still running when attempt 2 was due", ex.Message, StringComparison.Ordinal);
            Assert.Equal(1, Volatile.Read(ref attempts));
            var step = Assert.Single(await dbos.ListWorkflowStepsAsync("t-4"));
            Assert.Equal("DbosStepTimeoutException", step.Error!.Name);
        }
        finally
        {
            release.Set();
        }
    }

    [Theory, BothBackends]
    public async Task A_workflow_cancelled_while_a_timed_step_ignores_its_token_stops_at_once(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bodyEnded = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var workflow = dbos.RegisterWorkflow("cancel-timed", async (WorkflowContext ctx) =>
        {
            try
            {
                await ctx.RunStepAsync("deaf", async () =>
                {
                    entered.TrySetResult();
                    await release.Task; // ignores its token
                },
                new StepOptions { Timeout = TimeSpan.FromMinutes(5) });
                bodyEnded.TrySetResult(null);
            }
            catch (Exception e)
            {
                bodyEnded.TrySetResult(e);
                throw;
            }
        });
        await dbos.LaunchAsync();

        try
        {
            var handle = await workflow.StartAsync(new StartOptions { WorkflowId = "t-5" });
            await entered.Task.WaitAsync(Patience);
            await dbos.CancelWorkflowAsync("t-5");

            // The workflow's execution stops waiting for the abandoned body: its RunStepAsync throws while the body still runs.
            Assert.IsType<WorkflowCancelledException>(await bodyEnded.Task.WaitAsync(Patience));
            Assert.False(release.Task.IsCompleted);
            await Assert.ThrowsAsync<WorkflowCancelledException>(() => handle.GetResultAsync<object?>().WaitAsync(Patience));
            Assert.Equal(WorkflowState.Cancelled, (await dbos.GetWorkflowStatusAsync("t-5"))!.State);
            Assert.Empty(await dbos.ListWorkflowStepsAsync("t-5"));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Theory, BothBackends]
    public async Task ShouldRetry_and_NonRetryableExceptionTypes_decide_which_errors_are_retried(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var attempts = new Dictionary<string, int>();
        StepOptions Options(Func<Exception, bool>? shouldRetry = null, params Type[] never) => new()
        {
            MaxAttempts = 3,
            RetryInterval = TimeSpan.FromMilliseconds(1),
            ShouldRetry = shouldRetry,
            NonRetryableExceptionTypes = never,
        };
        var workflow = dbos.RegisterWorkflow("retry-rules", async (WorkflowContext ctx, string kind) =>
        {
            var options = kind switch
            {
                "predicate-no" => Options(e => e is not InvalidOperationException),
                "predicate-yes" => Options(e => e is InvalidOperationException),
                "type" => Options(null, typeof(ArgumentException)),
                "type-first" => Options(_ => true, typeof(ArgumentException)),
                _ => Options(_ => throw new FormatException("predicate broke")),
            };
            try
            {
                await ctx.RunStepAsync("fails", () =>
                {
                    lock (attempts)
                    {
                        attempts[kind] = attempts.GetValueOrDefault(kind) + 1;
                    }

                    throw kind.StartsWith("type", StringComparison.Ordinal) ? new ArgumentNullException(kind) : new InvalidOperationException(kind);
                },
                options);
                return "no error";
            }
            catch (StepFailedException e)
            {
                return e.ErrorName;
            }
        });
        await dbos.LaunchAsync();

        Assert.Equal("InvalidOperationException", await workflow.RunAsync("predicate-no"));
        Assert.Equal("InvalidOperationException", await workflow.RunAsync("predicate-yes"));
        Assert.Equal("ArgumentNullException", await workflow.RunAsync("type"));
        Assert.Equal("ArgumentNullException", await workflow.RunAsync("type-first"));
        Assert.Equal("FormatException", await workflow.RunAsync("predicate-throws"));
        Assert.Equal(1, attempts["predicate-no"]);
        Assert.Equal(3, attempts["predicate-yes"]);
        Assert.Equal(1, attempts["type"]);
        Assert.Equal(1, attempts["type-first"]);
        Assert.Equal(1, attempts["predicate-throws"]);
    }

    [Theory, BothBackends]
    public async Task A_timed_out_attempt_is_not_retried_when_ShouldRetry_says_so(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var attempts = 0;
        var step = dbos.RegisterStep("slow", async (CancellationToken ct) =>
        {
            Interlocked.Increment(ref attempts);
            await Task.Delay(Timeout.Infinite, ct);
        },
        new StepOptions { Timeout = TimeSpan.FromMilliseconds(100), MaxAttempts = 3, ShouldRetry = e => e is not TimeoutException });
        var workflow = dbos.RegisterWorkflow("no-retry-on-timeout", async (WorkflowContext ctx) => await step.RunAsync());
        await dbos.LaunchAsync();

        var ex = await Assert.ThrowsAsync<WorkflowFailedException>(() => workflow.RunAsync().WaitAsync(Patience));
        Assert.Equal("DbosStepTimeoutException", ex.ErrorName);
        Assert.Equal(1, attempts);
    }

    [Fact]
    public async Task Retry_intervals_are_TimeSpans_and_the_obsolete_seconds_settings_still_set_them()
    {
#pragma warning disable CS0618 // The obsolete settings are what this checks.
        var legacy = new StepOptions { IntervalSeconds = 2.5, MaxIntervalSeconds = 30 };
        Assert.Equal((TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(30)), (legacy.RetryInterval, legacy.MaxRetryInterval));
        Assert.Equal(2.5, new StepOptions { RetryInterval = TimeSpan.FromSeconds(2.5) }.IntervalSeconds);
        Assert.Contains("IntervalSeconds", Assert.Throws<ArgumentOutOfRangeException>(() => new StepOptions { IntervalSeconds = 0 }).Message, StringComparison.Ordinal);
        Assert.Contains("MaxIntervalSeconds", Assert.Throws<ArgumentOutOfRangeException>(() => new StepOptions { MaxIntervalSeconds = double.NaN }).Message, StringComparison.Ordinal);
#pragma warning restore CS0618

        await using var dbos = DbosApp.Create(new DbosConfig { Name = "settings", SystemDatabaseUrl = "sqlite:///unused.sqlite" });
        Task<int> Step(int x, CancellationToken _) => Task.FromResult(x);
        Assert.Contains("RetryInterval", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterStep<int, int>("a", Step, new StepOptions { RetryInterval = TimeSpan.Zero })).Message, StringComparison.Ordinal);
        Assert.Contains("MaxRetryInterval", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterStep<int, int>("b", Step, new StepOptions { MaxRetryInterval = TimeSpan.FromSeconds(-1) })).Message, StringComparison.Ordinal);
        Assert.Contains("Timeout", Assert.Throws<ArgumentOutOfRangeException>(() => dbos.RegisterStep<int, int>("c", Step, new StepOptions { Timeout = TimeSpan.Zero })).Message, StringComparison.Ordinal);
        Assert.Contains("String", Assert.Throws<ArgumentException>(() => dbos.RegisterStep<int, int>("d", Step, new StepOptions { NonRetryableExceptionTypes = [typeof(string)] })).Message, StringComparison.Ordinal);

        // Backoff grows from RetryInterval and stops at MaxRetryInterval.
        var options = new StepOptions { RetryInterval = TimeSpan.FromMilliseconds(500), BackoffRate = 3, MaxRetryInterval = TimeSpan.FromSeconds(2) };
        Assert.Equal(
            [TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(1500), TimeSpan.FromSeconds(2)],
            new[] { 1, 2, 3 }.Select(options.DelayAfter));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
