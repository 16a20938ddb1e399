using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// A workflow and a step that return nothing write the same rows in .NET (a <c>Task</c>-returning body) as in the
/// TypeScript SDK (a function returning <c>undefined</c>) in <c>portable_json</c>: the text <c>null</c>.
/// </summary>
public class VoidOutputInteropTests
{
    private const string TypeScriptApp = """
        const portable = { name: () => 'portable_json', stringify: (v) => JSON.stringify(v ?? null), parse: (t) => (t == null ? null : JSON.parse(t)) };
        main(async () => {
          DBOS.setConfig({ name: 'ts-void', systemDatabaseUrl: url, serializer: portable });
          DBOS.registerWorkflow(async () => { await DBOS.runStep(async () => {}, { name: 'nothing' }); }, { name: 'ts-void', serialization: 'portable' });
          await DBOS.launch();
          await DBOS.registerQueue('ts-void-q');
          console.log('READY');
          await new Promise(() => {});
        });
        """;

    [Fact]
    public async Task A_void_workflow_and_step_record_the_same_output_in_dotnet_and_typescript()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using (var typeScript = await Peer.StartAsync(db, TypeScriptApp))
        {
            await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url });
            var handle = await client.EnqueueAsync<object?>(new EnqueueOptions { WorkflowName = "ts-void", QueueName = "ts-void-q", WorkflowId = "from-ts" });
            Assert.Null(await handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        }

        await using var dbos = DbosApp.Create(db.Config("dotnet-void"));
        var nothing = dbos.RegisterStep("nothing", () => Task.CompletedTask);
        var workflow = dbos.RegisterWorkflow("dotnet-void", async (WorkflowContext ctx) => await nothing.RunAsync());
        await dbos.LaunchAsync();
        await workflow.RunAsync(new StartOptions { WorkflowId = "from-dotnet" });

        async Task<(string?, string?, string?, string?)> RowsAsync(string id) =>
            Assert.Single(await db.QueryAsync(
                $$"""
                SELECT o.output, s.serialization, op.output, op.serialization
                FROM {workflow_output} o JOIN {workflow_status} s ON s.workflow_uuid = o.workflow_uuid
                JOIN {operation_outputs} op ON op.workflow_uuid = o.workflow_uuid AND op.function_name = 'nothing'
                WHERE o.workflow_uuid = '{{id}}'
                """,
                r => (r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3))));

        var typeScriptRows = await RowsAsync("from-ts");
        Assert.Equal(("null", "portable_json", "null", "portable_json"), typeScriptRows);
        Assert.Equal(typeScriptRows, await RowsAsync("from-dotnet"));
    }

    [Fact]
    public async Task In_the_typescript_default_format_a_void_workflow_records_undefined_as_typescript_does()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var dbos = DbosApp.Create(db.Config("dotnet-void"));
        dbos.RegisterQueue("dotnet-void-q");
        dbos.RegisterWorkflow("dotnet-void", (WorkflowContext ctx) => Task.CompletedTask);
        await dbos.LaunchAsync();

        var results = await Peer.RunAsync(db, """
            main(async () => {
              DBOS.setConfig({ name: 'ts-void-default', systemDatabaseUrl: url });
              const wf = DBOS.registerWorkflow(async () => {}, { name: 'ts-void-default' });
              await DBOS.launch();
              try {
                await (await DBOS.startWorkflow(wf, { workflowID: 'from-ts-default' })()).getResult();
                const client = await DBOSClient.create({ systemDatabaseUrl: url });
                try {
                  const result = await (await client.enqueue({ workflowName: 'dotnet-void', queueName: 'dotnet-void-q', workflowID: 'from-dotnet-default' })).getResult();
                  report(result === undefined ? 'undefined' : result);
                } finally {
                  await client.destroy();
                }
              } finally {
                await DBOS.shutdown();
              }
            });
            """);

        Assert.Equal("undefined", Assert.Single(results).GetString());
        async Task<(string?, string?)> OutputAsync(string id) =>
            Assert.Single(await db.QueryAsync(
                $$"""
                SELECT o.output, s.serialization FROM {workflow_output} o JOIN {workflow_status} s ON s.workflow_uuid = o.workflow_uuid
                WHERE o.workflow_uuid = '{{id}}'
                """,
                r => (r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1))));

        var typeScript = await OutputAsync("from-ts-default");
        Assert.Equal(("""{"json":null,"meta":{"values":["undefined"]},"__dbos_serializer":"superjson"}""", "js_superjson"), typeScript);
        Assert.Equal(typeScript, await OutputAsync("from-dotnet-default"));
    }
}
