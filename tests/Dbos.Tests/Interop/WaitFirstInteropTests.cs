using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary><c>WaitFirstAsync</c> writes the row the TypeScript SDK's <c>DBOS.waitFirst</c> writes, and each side reads the other's.</summary>
public class WaitFirstInteropTests
{
    [Fact]
    public async Task A_dotnet_waitFirst_is_the_row_the_typescript_sdk_writes_and_its_command_line_reads_it()
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

        // The same wait in a TypeScript workflow writes the same row: name, output text, no child ID.
        await Peer.RunAsync(db, """
            DBOS.setConfig({ name: 'ts-wait-first', systemDatabaseUrl: url });
            const slow = DBOS.registerWorkflow(async (s) => { await DBOS.sleep(1500); return s; }, { name: 'ts-slow' });
            const fast = DBOS.registerWorkflow(async (s) => s, { name: 'ts-fast' });
            const parent = DBOS.registerWorkflow(async () => {
              const a = await DBOS.startWorkflow(slow)('a');
              const b = await DBOS.startWorkflow(fast)('b');
              const winner = await DBOS.waitFirst([a, b]);
              await a.getResult();
              return winner.workflowID;
            }, { name: 'ts-first' });
            main(async () => {
              await DBOS.launch();
              try {
                report(await (await DBOS.startWorkflow(parent, { workflowID: 'ts-first-wf' })()).getResult());
              } finally {
                await DBOS.shutdown();
              }
            });
            """);
        // Both rows: step 2, no child ID, the winner's ID as output, each in its side's default format (.NET: portable
        // JSON; TypeScript: its superjson envelope, with no serialization named).
        var rows = await db.QueryAsync(
            "SELECT workflow_uuid, function_id, output, serialization, child_workflow_id IS NULL FROM {operation_outputs} WHERE function_name = 'DBOS.waitFirst' ORDER BY workflow_uuid",
            r => (Workflow: r.GetString(0), FunctionId: r.GetInt32(1), Output: r.GetString(2), Serialization: r.IsDBNull(3) ? null : r.GetString(3), NoChild: r.GetBoolean(4)));
        Assert.Equal(2, rows.Count);
        Assert.Equal(("ts-first-wf", 2, true), (rows[0].Workflow, rows[0].FunctionId, rows[0].NoChild));
        using (var envelope = System.Text.Json.JsonDocument.Parse(rows[0].Output))
        {
            Assert.Equal("ts-first-wf-1", envelope.RootElement.GetProperty("json").GetString());
        }

        Assert.Equal(("wf-first", 2, "\"wf-first-1\"", "portable_json", true), rows[1]);
    }
}
