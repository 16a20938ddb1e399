using System.Collections.Concurrent;
using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Dbos.Tests.Hosting;

/// <summary>A DBOS application in a generic host: scoped services in workflows, launch at start, graceful stop, recovery.</summary>
public class HostingLifecycleTests
{
    /// <summary>A scoped service: one per workflow execution.</summary>
    public sealed class ScopeProbe : IAsyncDisposable
    {
        public ScopeProbe(ProbeLog log)
        {
            log.Created.Enqueue(this);
        }

        public Guid Id { get; } = Guid.NewGuid();

        public bool Disposed { get; private set; }

        public string Use(string input) => Disposed ? throw new ObjectDisposedException(nameof(ScopeProbe)) : $"{input} via {Id}";

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }

    public sealed class ProbeLog
    {
        public ConcurrentQueue<ScopeProbe> Created { get; } = new();
    }

    /// <summary>A class workflow whose constructor takes the scoped service, used by its step.</summary>
    public sealed class ProbingWorkflow(ScopeProbe probe) : IWorkflow<string, string>
    {
        public async Task<string> RunAsync(WorkflowContext context, string input)
        {
            var used = await context.RunStepAsync("use-probe", _ => Task.FromResult(probe.Use(input)));
            var sameInScope = ReferenceEquals(probe, context.Services.GetRequiredService<ScopeProbe>());
            return $"{used} (same in scope: {sameInScope})";
        }
    }

    [Theory, BothBackends]
    public async Task Each_workflow_execution_gets_its_own_scope_disposed_when_it_ends(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var builder = TestHosts.Builder();
        builder.Services.AddSingleton<ProbeLog>();
        builder.Services.AddScoped<ScopeProbe>();
        builder.Services.AddTestDbos(db)
            .AddWorkflow<ProbingWorkflow, string, string>("probing")
            .AddWorkflow("probing-lambda", async (WorkflowContext ctx, string input) =>
            {
                var probe = ctx.Services.GetRequiredService<ScopeProbe>();
                return await ctx.RunStepAsync("use-probe", _ => Task.FromResult(probe.Use(input)));
            });

        using var host = builder.Build();
        await host.StartAsync().WaitAsync(TestHosts.Deadline);
        var log = host.Services.GetRequiredService<ProbeLog>();

        // The keyed reference AddWorkflow registers, as an endpoint would get it with [FromKeyedServices("probing")].
        var probing = host.Services.GetRequiredKeyedService<Workflow<string, string>>("probing");
        var first = await probing.RunAsync("one").WaitAsync(TestHosts.Deadline);
        var second = await probing.RunAsync("two").WaitAsync(TestHosts.Deadline);
        var lambda = await host.Services.GetRequiredKeyedService<Workflow<string, string>>("probing-lambda").RunAsync("three").WaitAsync(TestHosts.Deadline);

        var probes = log.Created.ToArray();
        Assert.Equal(3, probes.Length);
        Assert.Equal(3, probes.Select(p => p.Id).Distinct().Count());
        Assert.Equal($"one via {probes[0].Id} (same in scope: True)", first);
        Assert.Equal($"two via {probes[1].Id} (same in scope: True)", second);
        Assert.Equal($"three via {probes[2].Id}", lambda);
        await Eventually.HoldsAsync(() => Task.FromResult(probes.All(p => p.Disposed)), "every execution's scope is disposed");

        await host.StopAsync().WaitAsync(TestHosts.Deadline);
    }

    private static IHost GatedHost(TestDatabase db, StepGate gate, RunCounter after, TimeSpan? shutdownTimeout = null)
    {
        var builder = TestHosts.Builder(shutdownTimeout: shutdownTimeout);
        builder.Services.AddSingleton(gate);
        builder.Services.AddSingleton(after);
        builder.Services.AddTestDbos(db).AddWorkflow<GatedWorkflow, string, string>("gated");
        return builder.Build();
    }

    [Theory, BothBackends]
    public async Task Stopping_the_host_lets_the_running_step_finish_and_leaves_the_workflow_pending_for_the_next_host(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var gate = new StepGate();
        var after = new RunCounter();
        using (var host = GatedHost(db, gate, after))
        {
            await host.StartAsync().WaitAsync(TestHosts.Deadline);
            var workflow = host.Services.GetRequiredKeyedService<Workflow<string, string>>("gated");
            await workflow.StartAsync("order-1", new StartOptions { WorkflowId = "graceful-1" });
            await gate.Started.WaitAsync(TestHosts.Deadline);

            var stopping = host.StopAsync();
            await Task.Delay(200);   // gives a StopAsync that does not wait for the step the chance to return
            Assert.False(stopping.IsCompleted, "StopAsync returned while a step was still running.");

            gate.Release();
            await stopping.WaitAsync(TestHosts.Deadline);
        }

        Assert.Equal(1, gate.Runs);
        Assert.Equal(0, gate.Cancellations);
        Assert.Equal(0, after.Count);
        var steps = await db.QueryAsync("SELECT function_name, output FROM {operation_outputs} WHERE workflow_uuid = 'graceful-1'", r => (r.GetString(0), r.GetString(1)));
        Assert.Equal(("gated", "\"passed order-1\""), Assert.Single(steps));
        await Eventually.StatusAsync(db, "graceful-1", "PENDING");

        // A new host on the same database recovers the workflow and finishes it without running the recorded step again.
        var secondGate = new StepGate();
        var secondAfter = new RunCounter();
        using var restarted = GatedHost(db, secondGate, secondAfter);
        await restarted.StartAsync().WaitAsync(TestHosts.Deadline);
        var handle = await restarted.Services.GetRequiredService<DbosApp>().RetrieveWorkflowAsync<string>("graceful-1");
        Assert.Equal("passed order-1, then after #1", await handle.GetResultAsync().WaitAsync(TestHosts.Deadline));
        Assert.Equal(0, secondGate.Runs);
        Assert.Equal(1, secondAfter.Count);
        await restarted.StopAsync().WaitAsync(TestHosts.Deadline);
    }

    [Theory, BothBackends]
    public async Task When_the_shutdown_timeout_expires_first_the_host_stops_anyway_and_the_workflow_stays_pending(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var gate = new StepGate();   // never released in this host
        var after = new RunCounter();
        using (var host = GatedHost(db, gate, after, shutdownTimeout: TimeSpan.FromMilliseconds(300)))
        {
            await host.StartAsync().WaitAsync(TestHosts.Deadline);
            var workflow = host.Services.GetRequiredKeyedService<Workflow<string, string>>("gated");
            await workflow.StartAsync("order-2", new StartOptions { WorkflowId = "timeout-1" });
            await gate.Started.WaitAsync(TestHosts.Deadline);

            await host.StopAsync().WaitAsync(TestHosts.Deadline);
        }

        Assert.Equal(1, gate.Cancellations);   // the step was told to stop
        Assert.Equal(0, after.Count);
        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {operation_outputs} WHERE workflow_uuid = 'timeout-1'"));
        await Eventually.StatusAsync(db, "timeout-1", "PENDING");

        // The next host runs the interrupted step again (it never finished) and completes the workflow.
        var secondGate = new StepGate();
        secondGate.Release();
        var secondAfter = new RunCounter();
        using var restarted = GatedHost(db, secondGate, secondAfter);
        await restarted.StartAsync().WaitAsync(TestHosts.Deadline);
        var handle = await restarted.Services.GetRequiredService<DbosApp>().RetrieveWorkflowAsync<string>("timeout-1");
        Assert.Equal("passed order-2, then after #1", await handle.GetResultAsync().WaitAsync(TestHosts.Deadline));
        Assert.Equal(1, secondGate.Runs);
        await restarted.StopAsync().WaitAsync(TestHosts.Deadline);
    }

    [Theory, BothBackends]
    public async Task Recovering_a_pending_workflow_does_not_hold_up_the_host_start(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);

        // A first host leaves a workflow pending: its step never finishes, and the host stops with a tiny timeout.
        var stuck = new StepGate();
        using (var first = GatedHost(db, stuck, new RunCounter(), shutdownTimeout: TimeSpan.FromMilliseconds(50)))
        {
            await first.StartAsync().WaitAsync(TestHosts.Deadline);
            await first.Services.GetRequiredKeyedService<Workflow<string, string>>("gated").StartAsync("order-3", new StartOptions { WorkflowId = "recover-1" });
            await stuck.Started.WaitAsync(TestHosts.Deadline);
            await first.StopAsync().WaitAsync(TestHosts.Deadline);
        }

        await Eventually.StatusAsync(db, "recover-1", "PENDING");

        // The second host's recovered execution blocks in the same step until the test releases it, after the start.
        var gate = new StepGate();
        var after = new RunCounter();
        using var second = GatedHost(db, gate, after);
        await second.StartAsync().WaitAsync(TestHosts.Deadline);
        await gate.Started.WaitAsync(TestHosts.Deadline);

        var dbos = second.Services.GetRequiredService<DbosApp>();
        Assert.Equal(WorkflowState.Pending, (await dbos.GetWorkflowStatusAsync("recover-1"))!.State);
        Assert.Equal(0, after.Count);

        gate.Release();
        var handle = await dbos.RetrieveWorkflowAsync<string>("recover-1");
        Assert.Equal("passed order-3, then after #1", await handle.GetResultAsync().WaitAsync(TestHosts.Deadline));
        await second.StopAsync().WaitAsync(TestHosts.Deadline);
    }

    [Theory, BothBackends]
    public async Task ConfigureApp_registers_anything_else_before_launch_with_the_root_services(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var builder = TestHosts.Builder();
        builder.Services.AddSingleton<RunCounter>();
        builder.Services.AddTestDbos(db)
            .AddQueue("limited", new QueueOptions { WorkerConcurrency = 1 })
            .ConfigureApp((dbos, services) =>
            {
                var counter = services.GetRequiredService<RunCounter>();
                var count = dbos.RegisterStep("count", _ => Task.FromResult(counter.Increment()));
                dbos.RegisterWorkflow("counting", async (WorkflowContext ctx, string label) => $"{label}:{await count.RunAsync()}");
            });
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(TestHosts.Deadline);

        var counting = host.Services.GetRequiredService<DbosApp>().GetWorkflow<string, string>("counting");
        var handle = await counting.StartAsync("a", new StartOptions { Queue = "limited" });
        Assert.Equal("a:1", await handle.GetResultAsync().WaitAsync(TestHosts.Deadline));
        Assert.Equal("limited", (await handle.GetStatusAsync())!.QueueName);
        await host.StopAsync().WaitAsync(TestHosts.Deadline);
    }
}
