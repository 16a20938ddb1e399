using System.Diagnostics;
using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace Dbos.Tests;

/// <summary>Spans, metrics and log scopes: what DBOS reports through ActivitySource "Dbos", Meter "Dbos" and ILogger.</summary>
public class ObservabilityTests
{
    [Theory, BothBackends]
    public async Task Spans_continue_the_callers_trace_through_steps_queues_and_child_workflows(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var spans = new SpanCollector();
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("traced-q");
        var child = dbos.RegisterWorkflow("traced-child", async (WorkflowContext ctx, int x) => await ctx.RunStepAsync("double", _ => Task.FromResult(x * 2)));
        var parent = dbos.RegisterWorkflow("traced-parent", async (WorkflowContext ctx, int x) =>
        {
            var a = await ctx.RunStepAsync("add-one", _ => Task.FromResult(x + 1));
            await Assert.ThrowsAsync<StepFailedException>(() => ctx.RunStepAsync<int>("fail", _ => throw new InvalidOperationException("boom")));
            var handle = await child.StartAsync(a, new StartOptions { Queue = "traced-q" });
            return await handle.GetResultAsync();
        });
        await dbos.LaunchAsync();

        ActivityTraceId traceId;
        ActivitySpanId callerId;
        using (var caller = SpanCollector.Caller.StartActivity("caller")!)
        {
            (traceId, callerId) = (caller.TraceId, caller.SpanId);
            Assert.Equal(4, await parent.RunAsync(1, new StartOptions { WorkflowId = "traced-1" }));
        }

        await Eventually.HoldsAsync(() => Task.FromResult(spans.Trace(traceId).Count >= 7), "every span of the trace has ended");
        var trace = spans.Trace(traceId);
        Assert.Equal(7, trace.Count);
        Activity Span(string name) => Assert.Single(trace, a => a.DisplayName == name);

        var workflow = Span("workflow traced-parent");
        Assert.Equal((callerId, ActivityKind.Internal), (workflow.ParentSpanId, workflow.Kind));
        Assert.Equal("traced-1", workflow.GetTagItem("dbos.workflow.id"));
        Assert.Equal("SUCCESS", workflow.GetTagItem("dbos.workflow.status"));
        Assert.Equal(workflow.SpanId, Span("step add-one").ParentSpanId);
        var failed = Span("step fail");
        Assert.Equal((workflow.SpanId, ActivityStatusCode.Error, "InvalidOperationException"), (failed.ParentSpanId, failed.Status, failed.GetTagItem("error.type")));

        var enqueue = Span("enqueue traced-child");
        Assert.Equal((workflow.SpanId, ActivityKind.Producer, "traced-q"), (enqueue.ParentSpanId, enqueue.Kind, enqueue.GetTagItem("dbos.queue.name")));
        var childSpan = Span("workflow traced-child");
        Assert.Equal((enqueue.SpanId, ActivityKind.Consumer), (childSpan.ParentSpanId, childSpan.Kind));
        Assert.Equal(childSpan.SpanId, Span("step double").ParentSpanId);
    }

    [Theory, BothBackends]
    public async Task A_recovered_workflow_continues_its_trace_and_steps_it_replays_have_no_spans(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var spans = new SpanCollector();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        DbosApp Build(out Workflow<string, string> workflow)
        {
            var app = DbosApp.Create(db.Config());
            workflow = app.RegisterWorkflow("resumable", async (WorkflowContext ctx, string input) =>
            {
                var first = await ctx.RunStepAsync("first", _ => Task.FromResult(input + "1"));
                return await ctx.RunStepAsync("second", async ct =>
                {
                    await gate.Task.WaitAsync(ct);
                    return first + "2";
                });
            });
            return app;
        }

        ActivityTraceId traceId;
        ActivitySpanId callerId;
        await using (var first = Build(out var workflow))
        {
            await first.LaunchAsync();
            using var caller = SpanCollector.Caller.StartActivity("caller")!;
            (traceId, callerId) = (caller.TraceId, caller.SpanId);
            await workflow.StartAsync("x", new StartOptions { WorkflowId = "recovered-trace" });
            await Eventually.OperationsRecordedAsync(db, "recovered-trace", 1);
        }

        gate.SetResult();
        await using var second = Build(out _);
        await second.LaunchAsync();
        Assert.Equal("x12", await (await second.RetrieveWorkflowAsync<string>("recovered-trace")).GetResultAsync());

        await Eventually.HoldsAsync(() => Task.FromResult(spans.Trace(traceId).Count(a => a.DisplayName == "workflow resumable") == 2), "both executions' spans ended");
        var trace = spans.Trace(traceId);
        var executions = trace.Where(a => a.DisplayName == "workflow resumable").ToList();
        Assert.All(executions, e => Assert.Equal(callerId, e.ParentSpanId));
        var recovered = Assert.Single(executions, e => (string?)e.GetTagItem("dbos.workflow.status") == "SUCCESS");
        Assert.Single(trace, a => a.DisplayName == "step first");
        Assert.Equal(["step second"], trace.Where(a => a.ParentSpanId == recovered.SpanId).Select(a => a.DisplayName));
    }

    [Theory, BothBackends]
    public async Task A_workflow_enqueued_by_a_client_continues_its_trace_in_the_process_that_runs_it_and_after_that_process_crashes(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var spans = new SpanCollector();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "crash-worker" });
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS_TEST_TRACE"] = "1";
        await client.MigrateAsync();

        ActivityTraceId traceId;
        using (SpanCollector.Caller.StartActivity("caller"))
        {
            traceId = Activity.Current!.TraceId;
            await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "four-steps", QueueName = "global2", WorkflowId = "traced-remote" }, "remote");
        }

        var enqueue = Assert.Single(spans.Trace(traceId), a => a.DisplayName == "enqueue four-steps");

        // The first worker runs two steps and is killed; the second recovers the workflow and finishes it.
        string firstOutput;
        await using (var first = WorkerProcess.Start(new Dictionary<string, string?>(environment) { ["DBOS_TEST_BLOCK_AFTER"] = "2" }, db.Directory, "serve"))
        {
            await first.WaitForLineAsync("checkpointed 2");
            first.Kill();
            firstOutput = first.StandardOutput;
        }

        await using var second = WorkerProcess.Start(environment, db.Directory, "serve");
        Assert.Equal("remote:100", await (await client.RetrieveWorkflowAsync<string>("traced-remote")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));

        static List<string[]> Spans(string output) =>
            output.Split('\n').Where(l => l.StartsWith("span ", StringComparison.Ordinal)).Select(l => l.Trim().Split(' ')).ToList();
        var firstWorkflow = Assert.Single(Spans(firstOutput), s => s[1] == "workflow_four-steps");
        Assert.Equal([traceId.ToString(), enqueue.SpanId.ToString()], firstWorkflow[2..4]);

        await Eventually.HoldsAsync(() => Task.FromResult(Spans(second.StandardOutput).Any(s => s[1] == "step_step" && s[3] != firstWorkflow[4])), "the second worker ran a step");
        var secondSpans = Spans(second.StandardOutput).Where(s => s[2] == traceId.ToString()).ToList();
        var recovered = Assert.Single(secondSpans, s => s[1] == "workflow_four-steps");
        Assert.Equal(enqueue.SpanId.ToString(), recovered[3]);
        Assert.Equal(2, secondSpans.Count(s => s[1] == "step_step" && s[3] == recovered[4]));
    }

    [Theory, BothBackends]
    public async Task Metrics_count_workflows_step_durations_queue_depth_wait_time_and_recoveries(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var metrics = new MetricCollector();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var appName = "metered-" + Guid.NewGuid().ToString("N")[..8];
        DbosApp Build(out Workflow<int, int> ok, out Workflow<int, int> failing, out Workflow<int, int> slow)
        {
            var config = db.Config(appName);
            config.PollingInterval = TimeSpan.FromMilliseconds(50);
            var app = DbosApp.Create(config);
            app.RegisterQueue("metered-q", new QueueOptions { Concurrency = 1, PollingInterval = TimeSpan.FromMilliseconds(50) });
            ok = app.RegisterWorkflow("metered-ok", async (WorkflowContext ctx, int x) => await ctx.RunStepAsync("metered-step", _ => Task.FromResult(x)));
            failing = app.RegisterWorkflow<int, int>("metered-fail", (_, _) => throw new InvalidOperationException("no"));
            slow = app.RegisterWorkflow("metered-slow", async (WorkflowContext ctx, int x) => await ctx.RunStepAsync("metered-wait", async ct =>
            {
                await gate.Task.WaitAsync(ct);
                return x;
            }));
            return app;
        }

        await using (var first = Build(out var ok, out var failing, out var slow))
        {
            await first.LaunchAsync();
            await ok.RunAsync(1);
            await ok.RunAsync(2);
            await Assert.ThrowsAsync<WorkflowFailedException>(() => failing.RunAsync(3));

            // Three on a queue that runs one at a time: two wait, and the depth gauge sees them.
            var handles = new List<WorkflowHandle<int>>();
            for (var i = 0; i < 3; i++)
            {
                handles.Add(await slow.StartAsync(i, new StartOptions { Queue = "metered-q", WorkflowId = $"slow-{i}" }));
            }

            await Eventually.HoldsAsync(
                () =>
                {
                    metrics.Observe();
                    return Task.FromResult(metrics.Of("dbos.queue.depth", "dbos.queue.name", "metered-q").LastOrDefault() == 2);
                },
                "the queue depth gauge reports two waiting workflows");

            // A direct start left pending by the shutdown is recovered by the next launch.
            await slow.StartAsync(9, new StartOptions { WorkflowId = "slow-pending" });
            await Eventually.StatusAsync(db, "slow-pending", "PENDING");
        }

        gate.SetResult();
        await using (var second = Build(out _, out _, out _))
        {
            await second.LaunchAsync();
            foreach (var id in (string[])["slow-0", "slow-1", "slow-2", "slow-pending"])
            {
                await (await second.RetrieveWorkflowAsync<int>(id)).GetResultAsync();
            }
        }

        Assert.Equal(2, metrics.Of("dbos.workflow.started", "dbos.workflow.name", "metered-ok").Sum());
        Assert.Equal(2, metrics.Of("dbos.workflow.completed", "dbos.workflow.name", "metered-ok").Sum());
        Assert.Equal(1, metrics.Of("dbos.workflow.failed", "dbos.workflow.name", "metered-fail").Sum());
        Assert.Empty(metrics.Of("dbos.workflow.completed", "dbos.workflow.name", "metered-fail"));
        Assert.Equal(2, metrics.Of("dbos.step.duration", "dbos.step.name", "metered-step").Count);
        Assert.All(metrics.Of("dbos.step.duration", "dbos.step.name", "metered-step"), d => Assert.True(d >= 0));
        Assert.True(metrics.Of("dbos.queue.wait_time", "dbos.queue.name", "metered-q").Count >= 1);
        Assert.True(metrics.Of("dbos.workflow.recovered", "dbos.application.name", appName).Sum() >= 1);
        Assert.Equal(4, metrics.Of("dbos.workflow.completed", "dbos.workflow.name", "metered-slow").Sum());
    }

    [Theory, BothBackends]
    public async Task Log_scopes_carry_the_workflow_and_step_and_a_recovered_workflow_does_not_log_again_what_it_logged_before(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var logs = new ScopedLogCollector();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var userLogger = logs.CreateLogger("Shop.Payments");
        DbosApp Build()
        {
            var config = db.Config();
            config.LoggerFactory = logs;
            var app = DbosApp.Create(config);
            app.RegisterWorkflow("logged", async (WorkflowContext ctx, string input) =>
            {
                ctx.Logger.LogInformation("starting order {Order}", input);
                var charged = await ctx.RunStepAsync("charge", _ =>
                {
                    userLogger.LogInformation("charging card");
                    return Task.FromResult(42);
                });
                ctx.Logger.LogInformation("charged {Amount}", charged);
                return await ctx.RunStepAsync("ship", async ct =>
                {
                    await gate.Task.WaitAsync(ct);
                    return "shipped";
                });
            });
            return app;
        }

        await using (var first = Build())
        {
            await first.LaunchAsync();
            await first.GetWorkflow<string, string>("logged").StartAsync("o-1", new StartOptions { WorkflowId = "logged-1" });
            await Eventually.OperationsRecordedAsync(db, "logged-1", 1);
            await Eventually.HoldsAsync(() => Task.FromResult(logs.Count("charged 42") == 1), "the message after the first step");
        }

        gate.SetResult();
        await using (var second = Build())
        {
            await second.LaunchAsync();
            Assert.Equal("shipped", await (await second.RetrieveWorkflowAsync<string>("logged-1")).GetResultAsync());
        }

        // The recovered execution replays the first step: neither the workflow's message before it, nor the step's
        // own, nor the library's "finished" line for it appear again.
        Assert.Equal(1, logs.Count("starting order o-1"));
        Assert.Equal(1, logs.Count("charging card"));
        Assert.Single(logs.Entries, e => e.Id.Id == 12 && e.Message.StartsWith("Step charge ", StringComparison.Ordinal));
        Assert.Single(logs.Entries, e => e.Id.Id == 12 && e.Message.StartsWith("Step ship ", StringComparison.Ordinal));

        var charging = Assert.Single(logs.Entries, e => e.Message == "charging card");
        Assert.Equal(("Shop.Payments", "logged-1", "logged", "charge", 0), (charging.Category, charging.Scope["DbosWorkflowId"], charging.Scope["DbosWorkflowName"], charging.Scope["DbosStepName"], charging.Scope["DbosStepId"]));
        var starting = Assert.Single(logs.Entries, e => e.Message == "starting order o-1");
        Assert.Equal(("Dbos.Workflows.logged", "logged-1"), (starting.Category, starting.Scope["DbosWorkflowId"]));
        Assert.False(starting.Scope.ContainsKey("DbosStepName"));
    }
}
