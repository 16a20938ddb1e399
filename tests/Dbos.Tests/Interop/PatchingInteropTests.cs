using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>Patch markers: the TypeScript SDK writes the same rows as .NET, and lists .NET's markers as its own.</summary>
public class PatchingInteropTests
{
    [Fact]
    public async Task Typescript_and_dotnet_write_the_same_patch_marker_and_typescript_lists_the_dotnet_one()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var config = db.Config("patch-app", applicationVersion: null);
        config.EnablePatching = true;
        await using (var dbos = DbosApp.Create(config))
        {
            var workflow = dbos.RegisterWorkflow("dotnet-patchable", async (WorkflowContext ctx, int x) =>
            {
                await ctx.RunStepAsync("one", _ => Task.FromResult(1));
                var patched = await ctx.PatchAsync("fix");
                await ctx.RunStepAsync(patched ? "new" : "old", _ => Task.FromResult(2));
                return patched;
            });
            await dbos.LaunchAsync();
            Assert.True(await workflow.RunAsync(0, new StartOptions { WorkflowId = "dotnet-patched" }));
        }

        var results = await Peer.RunAsync(db, """
            main(async () => {
              DBOS.setConfig({ name: 'patch-app', systemDatabaseUrl: url, enablePatching: true });
              const wf = DBOS.registerWorkflow(async (x) => {
                await DBOS.runStep(async () => 1, { name: 'one' });
                const patched = await DBOS.patch('fix');
                await DBOS.runStep(async () => 2, { name: patched ? 'new' : 'old' });
                return patched;
              }, { name: 'ts-patchable' });
              await DBOS.launch();
              try {
                const handle = await DBOS.startWorkflow(wf, { workflowID: 'ts-patched' })(0);
                report(await handle.getResult());
                report((await DBOS.listWorkflowSteps('dotnet-patched')).map((s) => `${s.functionID}:${s.name}`));
              } finally {
                await DBOS.shutdown();
              }
            });
            """);

        Assert.True(results[0].GetBoolean());
        Assert.Equal(["0:one", "1:DBOS.patch-fix", "2:new"], results[1].EnumerateArray().Select(e => e.GetString()));

        // The marker rows are alike, column by column (but for the times).
        var markers = await db.QueryAsync(
            "SELECT workflow_uuid, function_id, function_name, output IS NULL, error IS NULL, serialization IS NULL, child_workflow_id IS NULL, " +
            "started_at_epoch_ms = completed_at_epoch_ms FROM {operation_outputs} WHERE function_name LIKE 'DBOS.patch%' ORDER BY workflow_uuid",
            r => $"{r.GetString(0)} {r.GetInt32(1)} {r.GetString(2)} {r.GetBoolean(3)} {r.GetBoolean(4)} {r.GetBoolean(5)} {r.GetBoolean(6)} {r.GetBoolean(7)}");
        Assert.Equal(
            ["dotnet-patched 1 DBOS.patch-fix True True True True True", "ts-patched 1 DBOS.patch-fix True True True True True"],
            markers);

        // Both ran under the patching version (whose name the TypeScript SDK lets one application own: they share its name).
        var versions = await db.QueryAsync("SELECT DISTINCT application_version FROM {workflow_status}", r => r.GetString(0));
        Assert.Equal(["PATCHING_ENABLED"], versions);
    }
}
