using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Every natural way to write a workflow or a step compiles without type arguments: with or without input, with or
/// without a token, returning a value or not, async or synchronous. The build is the test; a few forms also run, and
/// workflows and steps that return nothing record the null that the TypeScript SDK records for them in portable JSON.
/// </summary>
public class RegistrationFormsTests
{
    private static Task<int> GetAsync(CancellationToken ct) => Task.FromResult(42);

    private static Task DoAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>
    /// Registers one of each form; each line must compile as written. Synchronous steps take no token: a synchronous
    /// form taking one would make <c>RunStepAsync&lt;int&gt;("s", ct =&gt; throw …)</c> ambiguous.
    /// </summary>
    private static void RegisterEveryForm(DbosApp dbos)
    {
        // Registered steps, with input.
        Step<int, int> a1 = dbos.RegisterStep("a1", (int x, CancellationToken ct) => Task.FromResult(x));
        Step<int, int> a2 = dbos.RegisterStep("a2", (int x) => Task.FromResult(x));
        Step<int, int> a3 = dbos.RegisterStep("a3", async (int x, CancellationToken ct) =>
        {
            await Task.Delay(1, ct);
            return x;
        });
        Step<int, int> a4 = dbos.RegisterStep("a4", async (int x) =>
        {
            await Task.Yield();
            return x;
        });
        VoidStep<int> a5 = dbos.RegisterStep("a5", (int x, CancellationToken ct) => Task.Delay(x, ct));
        VoidStep<int> a6 = dbos.RegisterStep("a6", (int x) => Task.Delay(x));
        VoidStep<int> a7 = dbos.RegisterStep("a7", async (int x) => await Task.Delay(x));
        Step<int, string> a8 = dbos.RegisterStep("a8", (int x) => x.ToString(System.Globalization.CultureInfo.InvariantCulture));
        VoidStep<int> a10 = dbos.RegisterStep("a10", (int x) => Console.Write(string.Empty));

        // Registered steps, without input.
        Step<int> b1 = dbos.RegisterStep("b1", (CancellationToken ct) => GetAsync(ct));
        Step<int> b2 = dbos.RegisterStep("b2", () => GetAsync(default));
        Step<int> b3 = dbos.RegisterStep("b3", async () =>
        {
            await Task.Yield();
            return 1;
        });
        VoidStep b4 = dbos.RegisterStep("b4", (CancellationToken ct) => DoAsync(ct));
        VoidStep b5 = dbos.RegisterStep("b5", () => DoAsync(default));
        VoidStep b6 = dbos.RegisterStep("b6", async () => await Task.Yield());
        Step<int> b7 = dbos.RegisterStep("b7", () => 7);
        VoidStep b9 = dbos.RegisterStep("b9", () => Console.Write(string.Empty));
        Step<int> b11 = dbos.RegisterStep("b11", GetAsync);
        VoidStep b12 = dbos.RegisterStep("b12", DoAsync);

        // Workflows: with and without input, with and without a result.
        Workflow<int, int> w1 = dbos.RegisterWorkflow("w1", (WorkflowContext ctx, int x) => a1.RunAsync(x));
        Workflow<int, int> w2 = dbos.RegisterWorkflow("w2", async (WorkflowContext ctx, int x) => await a2.RunAsync(x));
        Workflow<int> w3 = dbos.RegisterWorkflow("w3", (WorkflowContext ctx) => b1.RunAsync());
        Workflow<int> w4 = dbos.RegisterWorkflow("w4", async (WorkflowContext ctx) =>
        {
            await b4.RunAsync();
            return await b7.RunAsync();
        });
        VoidWorkflow<int> w5 = dbos.RegisterWorkflow("w5", (WorkflowContext ctx, int x) => a5.RunAsync(x));
        VoidWorkflow<int> w6 = dbos.RegisterWorkflow("w6", async (WorkflowContext ctx, int x) =>
        {
            await a6.RunAsync(x);
            await ctx.SleepAsync(TimeSpan.FromMilliseconds(x));
        });
        VoidWorkflow w7 = dbos.RegisterWorkflow("w7", (WorkflowContext ctx) => b5.RunAsync());
        VoidWorkflow w8 = dbos.RegisterWorkflow("w8", async (WorkflowContext ctx) =>
        {
            // Inline steps: with and without a token, with and without a result, async or synchronous.
            int i1 = await ctx.RunStepAsync("i1", ct => GetAsync(ct));
            int i2 = await ctx.RunStepAsync("i2", () => GetAsync(default));
            int i3 = await ctx.RunStepAsync("i3", async () =>
            {
                await Task.Yield();
                return 3;
            });
            await ctx.RunStepAsync("i4", ct => DoAsync(ct));
            await ctx.RunStepAsync("i5", () => DoAsync(default));
            await ctx.RunStepAsync("i6", async () => await Task.Yield());
            int i7 = await ctx.RunStepAsync("i7", () => 7);
            await ctx.RunStepAsync("i9", () => Console.Write(string.Empty));
            int i11 = await ctx.RunStepAsync("i11", GetAsync);
            await ctx.RunStepAsync("i12", DoAsync);
            await ctx.RunStepAsync("i13", async ct => await Task.Delay(1, ct));
            _ = i1 + i2 + i3 + i7 + i11;
        });
        // Scheduled workflows, with and without a result.
        Workflow<DateTimeOffset, int> s1 = dbos.RegisterScheduledWorkflow("s1", "0 0 3 * * *", (WorkflowContext ctx, DateTimeOffset tick) => Task.FromResult(tick.Day));
        VoidWorkflow<DateTimeOffset> s2 = dbos.RegisterScheduledWorkflow("s2", "0 0 3 * * *", async (WorkflowContext ctx, DateTimeOffset tick) =>
            await ctx.RunStepAsync("log", () => Console.Write(string.Empty)));
        _ = (s1, s2);
        _ = (a3, a4, a7, a8, a10, b2, b3, b6, b9, b11, b12, w1, w2, w3, w4, w6, w7, w8);
    }

    [Fact]
    public async Task Every_form_registers_without_type_arguments()
    {
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "forms", SystemDatabaseUrl = "sqlite:///unused.sqlite" });
        RegisterEveryForm(dbos);
    }

    [Fact]
    public async Task A_synchronous_step_returning_a_ValueTask_is_refused_at_registration()
    {
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "forms", SystemDatabaseUrl = "sqlite:///unused.sqlite" });
        var ex = Assert.Throws<ArgumentException>(() => dbos.RegisterStep("vt", () => ValueTask.FromResult(1)));
        Assert.Contains("ValueTask", ex.Message, StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task Workflows_and_steps_without_a_result_or_a_token_run_and_record_null(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var log = new List<string>();
        var note = dbos.RegisterStep("note", (string s) =>
        {
            lock (log)
            {
                log.Add(s);
            }
        });
        var count = dbos.RegisterStep("count", () => log.Count);
        var inner = dbos.RegisterWorkflow("inner", async (WorkflowContext ctx, string s) => await note.RunAsync("inner " + s));
        var outer = dbos.RegisterWorkflow("outer", async (WorkflowContext ctx) =>
        {
            await note.RunAsync("registered");
            await ctx.RunStepAsync("inline", async () => await note.RunAsync("inline"));
            await inner.RunAsync("child");
            var n = await count.RunAsync();
            await ctx.RunStepAsync("sync", () => log.Add($"count {n}"));
        });
        await dbos.LaunchAsync();

        await outer.RunAsync(new StartOptions { WorkflowId = "void-1" });
        var handle = await outer.StartAsync(new StartOptions { WorkflowId = "void-1" }); // the same workflow: nothing runs again
        Assert.Null(await handle.GetResultAsync<object?>());
        Assert.Equal(["registered", "inline", "inner child", "count 3"], log);

        var status = (await dbos.GetWorkflowStatusAsync("void-1"))!;
        Assert.Equal((WorkflowState.Success, "null", "portable_json"), (status.State, status.RawOutput, status.Serialization));
        var steps = await dbos.ListWorkflowStepsAsync("void-1");
        Assert.Equal(
            [("note", "null"), ("inline", "null"), ("inner", null), ("DBOS.getResult", "null"), ("count", "3"), ("sync", "null")],
            steps.Select(s => (s.Name, s.RawOutput)));
        Assert.All(steps.Where(s => s.RawOutput is not null), s => Assert.Equal("portable_json", s.Serialization));
        Assert.Equal("null", (await dbos.GetWorkflowStatusAsync("void-1-2"))!.RawOutput);
    }

    [Theory, BothBackends]
    public async Task A_scheduled_workflow_without_a_result_runs_each_tick_and_records_null(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var ticks = new System.Collections.Concurrent.ConcurrentQueue<DateTimeOffset>();
        dbos.RegisterScheduledWorkflow("void-ticks", "* * * * * *", async (WorkflowContext ctx, DateTimeOffset at) =>
            await ctx.RunStepAsync("tick", () => ticks.Enqueue(at)));
        await dbos.LaunchAsync();

        await Eventually.HoldsAsync(
            async () => (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = "void-ticks", Status = [WorkflowState.Success] })).Count > 0,
            "a tick finished",
            TimeSpan.FromSeconds(15));
        var done = (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = "void-ticks", Status = [WorkflowState.Success] }))[0];
        Assert.Equal("null", done.RawOutput);
        Assert.NotEmpty(ticks);
    }
}
