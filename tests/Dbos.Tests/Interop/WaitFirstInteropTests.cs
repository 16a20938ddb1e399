using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary><c>WaitFirstAsync</c> writes the row the TypeScript SDK's <c>DBOS.waitFirst</c> writes, and its tools read it.</summary>
public class WaitFirstInteropTests
{
    [Fact]
    public async Task The_typescript_command_line_reads_a_dotnet_waitFirst_as_the_winners_workflow_id()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var dbos = DbosApp.Create(db.Config("dotnet-wait-first"));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = dbos.RegisterWorkflow("slow", async (WorkflowContext ctx, string s) =>
            await ctx.RunStepAsync("wait", async ct => { await release.Task.WaitAsync(ct); return s; }));
        var fast = dbos.RegisterWorkflow("fast", (WorkflowContext ctx, string s) => Task.FromResult(s));
        var parent = dbos.RegisterWorkflow("first", async (WorkflowContext ctx, string input) =>
        {
            var a = await slow.StartAsync("a");
            var b = await fast.StartAsync("b");
            var winner = await ctx.WaitFirstAsync([a, b]);
            release.TrySetResult();
            await a.GetResultAsync();
            return winner.WorkflowId;
        });
        await dbos.LaunchAsync();

        Assert.Equal("wf-first-1", await parent.RunAsync("x", new StartOptions { WorkflowId = "wf-first" }));

        var steps = (await Peer.CliJsonAsync(db, "workflow", "steps", "wf-first")).EnumerateArray().ToList();
        Assert.Equal(["slow", "fast", "DBOS.waitFirst", "DBOS.getResult"], steps.Select(s => s.GetProperty("name").GetString()));
        Assert.Equal(2, steps[2].GetProperty("functionID").GetInt32());
        Assert.Equal("'wf-first-1'", steps[2].GetProperty("output").GetString());
    }
}
