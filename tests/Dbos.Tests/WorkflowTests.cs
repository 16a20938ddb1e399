using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>Scenarios 10, 13, 16 and the bad-input rules of workflow starts, on both backends.</summary>
public class WorkflowTests
{
    [Theory, BothBackends]
    public async Task A_workflow_runs_its_steps_and_records_each_one(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var double_ = dbos.RegisterStep("double", (int x, CancellationToken _) => Task.FromResult(x * 2));
        var workflow = dbos.RegisterWorkflow("twice", async (WorkflowContext ctx, int x) =>
        {
            var a = await double_.RunAsync(x);
            var b = await ctx.RunStepAsync("add-one", _ => Task.FromResult(a + 1));
            return $"{ctx.WorkflowId}:{b}";
        });
        await dbos.LaunchAsync();

        var result = await workflow.RunAsync(20, new StartOptions { WorkflowId = "wf-1" });

        Assert.Equal("wf-1:41", result);
        var steps = await dbos.ListWorkflowStepsAsync("wf-1");
        Assert.Equal([0, 1], steps.Select(s => s.FunctionId));
        Assert.Equal(["double", "add-one"], steps.Select(s => s.Name));
        Assert.Equal(40, steps[0].GetOutput<int>());
        Assert.Equal("41", steps[1].RawOutput);
        Assert.All(steps, s => Assert.Equal("portable_json", s.Serialization));

        var rows = await db.QueryAsync(
            "SELECT ws.status, ws.name, ws.executor_id, ws.application_version, ws.application_name, ws.recovery_attempts, ws.serialization, " +
            "ws.class_name, ws.config_name, wi.inputs, wo.output, ws.inputs, ws.output FROM {workflow_status} ws " +
            "JOIN {workflow_input} wi ON wi.workflow_uuid = ws.workflow_uuid JOIN {workflow_output} wo ON wo.workflow_uuid = ws.workflow_uuid " +
            "WHERE ws.workflow_uuid = 'wf-1'",
            r => (Status: r.GetString(0), Name: r.GetString(1), Executor: r.GetString(2), Version: r.GetString(3), App: r.GetString(4),
                Attempts: r.GetInt64(5), Serialization: r.GetString(6), ClassIsNull: r.IsDBNull(7), ConfigIsNull: r.IsDBNull(8),
                Inputs: r.GetString(9), Output: r.GetString(10), LegacyInputsNull: r.IsDBNull(11), LegacyOutputNull: r.IsDBNull(12)));
        var row = Assert.Single(rows);
        Assert.Equal(("SUCCESS", "twice", "local", "test-version", "test-app", 1L, "portable_json"), (row.Status, row.Name, row.Executor, row.Version, row.App, row.Attempts, row.Serialization));
        Assert.True(row.ClassIsNull && row.ConfigIsNull && row.LegacyInputsNull && row.LegacyOutputNull);
        Assert.Equal("""{"positionalArgs":[20]}""", row.Inputs);
        Assert.Equal("\"wf-1:41\"", row.Output);
    }

    [Theory, BothBackends]
    public async Task Starting_twice_with_one_id_runs_the_body_once_and_returns_the_first_result(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = 0;
        var workflow = dbos.RegisterWorkflow("count", (WorkflowContext ctx, string input) =>
        {
            Interlocked.Increment(ref runs);
            return Task.FromResult(input + "-" + runs);
        });
        await dbos.LaunchAsync();

        var first = await workflow.RunAsync("a", new StartOptions { WorkflowId = "same" });
        var second = await workflow.RunAsync("b", new StartOptions { WorkflowId = "same" });

        Assert.Equal("a-1", first);
        Assert.Equal("a-1", second);
        Assert.Equal(1, runs);

        // Concurrent starts of a new ID: one body run, one result for everyone.
        var handles = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => workflow.StartAsync("c" + i, new StartOptions { WorkflowId = "race" })));
        var results = await Task.WhenAll(handles.Select(h => h.GetResultAsync()));
        Assert.Single(results.Distinct());
        Assert.Equal(2, runs);
    }

    [Theory, BothBackends]
    public async Task A_workflow_id_reused_with_another_name_is_refused_and_nothing_changes(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var first = dbos.RegisterWorkflow("first", (WorkflowContext ctx, int x) => Task.FromResult(x));
        var second = dbos.RegisterWorkflow("second", (WorkflowContext ctx, int x) => Task.FromResult(-x));
        await dbos.LaunchAsync();
        await first.RunAsync(7, new StartOptions { WorkflowId = "taken" });

        var ex = await Assert.ThrowsAsync<WorkflowConflictException>(() => second.StartAsync(8, new StartOptions { WorkflowId = "taken" }));

        Assert.Contains("'taken'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'first'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'second'", ex.Message, StringComparison.Ordinal);
        var status = await dbos.GetWorkflowStatusAsync("taken");
        Assert.Equal(("first", WorkflowState.Success, 7), (status!.Name, status.State, status.GetOutput<int>()));
    }

    [Theory, BothBackends]
    public async Task A_failing_workflow_ends_in_error_and_its_result_rethrows_the_same_type_name_and_message(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var dbos = DbosApp.Create(db.Config()))
        {
            var workflow = dbos.RegisterWorkflow<int, int>("fails", (ctx, x) => throw new InvalidOperationException($"bad input {x}"));
            await dbos.LaunchAsync();

            var handle = await workflow.StartAsync(3, new StartOptions { WorkflowId = "failing" });
            var ex = await Assert.ThrowsAsync<WorkflowFailedException>(() => handle.GetResultAsync());
            Assert.Equal(("InvalidOperationException", "bad input 3", "failing"), (ex.ErrorName, ex.Message, ex.WorkflowId));

            var status = await handle.GetStatusAsync();
            Assert.Equal(WorkflowState.Error, status!.State);
            Assert.Equal(new RecordedErrorInfo("InvalidOperationException", "bad input 3", null), status.Error);
        }

        // Another application on the same database reads the same error.
        await using var other = DbosApp.Create(db.Config("other-app"));
        await other.LaunchAsync();
        var retrieved = await other.RetrieveWorkflowAsync<int>("failing");
        var again = await Assert.ThrowsAsync<WorkflowFailedException>(() => retrieved.GetResultAsync());
        Assert.Equal(("InvalidOperationException", "bad input 3"), (again.ErrorName, again.Message));
        var stored = await db.QueryAsync("SELECT error FROM {workflow_output} WHERE workflow_uuid = 'failing'", r => r.GetString(0));
        Assert.Equal("""{"name":"InvalidOperationException","message":"bad input 3"}""", Assert.Single(stored));
    }

    [Theory, BothBackends]
    public async Task StartAsync_returns_at_once_and_any_application_can_retrieve_the_result(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var dbos = DbosApp.Create(db.Config());
        var workflow = dbos.RegisterWorkflow("gated", async (WorkflowContext ctx, string input) =>
        {
            await gate.Task;
            return input.ToUpperInvariant();
        });
        await dbos.LaunchAsync();

        var handle = await workflow.StartAsync("done", new StartOptions { WorkflowId = "gated-1" });
        Assert.Equal(WorkflowState.Pending, (await handle.GetStatusAsync())!.State);
        var waiting = handle.GetResultAsync();
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);

        await using var reader = DbosApp.Create(db.Config("reader"));
        await reader.LaunchAsync();
        var remote = await reader.RetrieveWorkflowAsync<string>("gated-1");
        var remoteWaiting = remote.GetResultAsync();

        gate.SetResult();
        Assert.Equal("DONE", await waiting);
        Assert.Equal("DONE", await remoteWaiting.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory, BothBackends]
    public async Task Retrieving_an_unknown_workflow_fails_with_a_clear_error(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        await dbos.LaunchAsync();

        var ex = await Assert.ThrowsAsync<WorkflowNotFoundException>(() => dbos.RetrieveWorkflowAsync<int>("no-such-workflow"));
        Assert.Contains("'no-such-workflow'", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<WorkflowNotFoundException>(() => dbos.ResumeWorkflowAsync("no-such-workflow"));
        await Assert.ThrowsAsync<WorkflowNotFoundException>(() => dbos.CancelWorkflowAsync("no-such-workflow"));
        await Assert.ThrowsAsync<WorkflowNotFoundException>(() => dbos.ForkWorkflowAsync("no-such-workflow", 0));
        await Assert.ThrowsAsync<WorkflowNotFoundException>(() => dbos.ListWorkflowStepsAsync("no-such-workflow"));
    }
}
