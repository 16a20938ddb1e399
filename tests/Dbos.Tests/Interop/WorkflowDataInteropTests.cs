using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// Workflow data shared with the TypeScript SDK 5.3.0 on one Postgres schema: workflows of several positional arguments
/// enqueued across languages, the authenticated user and roles, and attributes (without the trace context at their top level).
/// </summary>
public class WorkflowDataInteropTests
{
    private const string TypeScriptApp = """
        main(async () => {
          DBOS.setConfig({ name: 'ts-data', systemDatabaseUrl: url });
          DBOS.registerWorkflow(async (a, b, c) => `${a}|${b}|${c}|${typeof a}|${typeof b}|${typeof c}`, { name: 'ts-three', serialization: 'portable' });
          await DBOS.launch();
          await DBOS.registerQueue('ts-three-q');
          console.log('READY');
          await new Promise(() => {});
        });
        """;

    [Fact]
    public async Task A_three_argument_workflow_is_enqueued_across_languages_in_both_directions()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var dbos = DbosApp.Create(db.Config("dotnet-data"));
        dbos.RegisterQueue("dotnet-three-q");
        dbos.RegisterWorkflow("dotnet-three", (WorkflowContext ctx, int count, string label, bool loud) =>
            Task.FromResult($"{count}|{label}|{loud}"));
        await dbos.LaunchAsync();

        await using (var typeScript = await Peer.StartAsync(db, TypeScriptApp))
        {
            await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url });
            var handle = await client.EnqueueAsync<int, string, bool, string>(
                new EnqueueOptions { WorkflowName = "ts-three", QueueName = "ts-three-q", WorkflowId = "dotnet-to-ts" }, 7, "seven", true);
            Assert.Equal("7|seven|true|number|string|boolean", await handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        }

        var results = await Peer.RunAsync(db, """
            main(async () => {
              const client = await DBOSClient.create({ systemDatabaseUrl: url });
              try {
                const portable = await client.enqueuePortable({ workflowName: 'dotnet-three', queueName: 'dotnet-three-q', workflowID: 'ts-portable' }, [3, 'x', true]);
                report(await portable.getResult());
                const plain = await client.enqueue({ workflowName: 'dotnet-three', queueName: 'dotnet-three-q', workflowID: 'ts-default' }, 4, 'y', false);
                report(await plain.getResult());
              } finally {
                await client.destroy();
              }
            });
            """);

        Assert.Equal(["3|x|True", "4|y|False"], results.Select(r => r.GetString()));
        var inputs = await db.QueryAsync("SELECT inputs FROM {workflow_input} WHERE workflow_uuid IN ('dotnet-to-ts', 'ts-portable') ORDER BY workflow_uuid", r => r.GetString(0));
        Assert.Equal(["""{"positionalArgs":[7,"seven",true]}""", """{"positionalArgs":[3,"x",true]}"""], inputs);
    }

    [Fact]
    public async Task The_user_roles_and_attributes_written_by_each_side_are_read_by_the_other_without_trace_keys_at_the_top_level()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        using var source = new ActivitySource("wf-data-interop");
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == source.Name || s.Name == DbosInstrumentation.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        await using (var dbos = DbosApp.Create(db.Config("dotnet-data")))
        {
            var child = dbos.RegisterWorkflow("dotnet-auth-child", (WorkflowContext ctx) => Task.FromResult(ctx.AuthenticatedUser));
            var parent = dbos.RegisterWorkflow("dotnet-auth", async (WorkflowContext ctx) =>
                await child.RunAsync(new StartOptions { WorkflowId = "from-dotnet-child" }));
            await dbos.LaunchAsync();
            using var root = source.StartActivity("root");
            Assert.NotNull(root);
            await parent.RunAsync(new StartOptions
            {
                WorkflowId = "from-dotnet",
                AuthenticatedUser = "alice",
                AuthenticatedRoles = ["admin", "ops"],
                Attributes = new JsonObject { ["team"] = "blue", ["n"] = 3 },
            });
        }

        var results = await Peer.RunAsync(db, """
            main(async () => {
              DBOS.setConfig({ name: 'ts-data', systemDatabaseUrl: url });
              const wf = DBOS.registerWorkflow(async () => `${DBOS.authenticatedUser}:${DBOS.authenticatedRoles.join(',')}`, { name: 'ts-auth' });
              await DBOS.launch();
              try {
                const handle = await DBOS.startWorkflow(wf, { workflowID: 'from-ts', authenticatedUser: 'tina', authenticatedRoles: ['r1', 'r2'], workflowAttributes: { team: 'red', n: 4 } })();
                report(await handle.getResult());
                const client = await DBOSClient.create({ systemDatabaseUrl: url });
                try {
                  for (const w of await client.listWorkflows({ workflowIDs: ['from-dotnet', 'from-dotnet-child'], sortDesc: false })) {
                    report({ id: w.workflowID, user: w.authenticatedUser, roles: w.authenticatedRoles, attributes: w.attributes ?? null });
                  }
                  report((await client.listWorkflows({ attributes: { team: 'blue' } })).map((w) => w.workflowID));
                } finally {
                  await client.destroy();
                }
              } finally {
                await DBOS.shutdown();
              }
            });
            """);

        Assert.Equal("tina:r1,r2", results[0].GetString());
        var parentSeen = results[1];
        Assert.Equal("from-dotnet", parentSeen.GetProperty("id").GetString());
        Assert.Equal("alice", parentSeen.GetProperty("user").GetString());
        Assert.Equal(["admin", "ops"], parentSeen.GetProperty("roles").EnumerateArray().Select(r => r.GetString()!));
        var attributes = parentSeen.GetProperty("attributes");
        Assert.Equal("blue", attributes.GetProperty("team").GetString());
        Assert.Equal(3, attributes.GetProperty("n").GetInt32());
        Assert.False(attributes.TryGetProperty("traceparent", out _), attributes.ToString());
        Assert.False(attributes.TryGetProperty("tracestate", out _), attributes.ToString());
        Assert.True(attributes.GetProperty("dbos.otelContext").TryGetProperty("traceparent", out _), "the trace context is kept where DBOS for Python keeps it");

        var childSeen = results[2];
        Assert.Equal(("from-dotnet-child", "alice"), (childSeen.GetProperty("id").GetString(), childSeen.GetProperty("user").GetString()));
        Assert.Equal(["admin", "ops"], childSeen.GetProperty("roles").EnumerateArray().Select(r => r.GetString()!));
        Assert.Equal(["from-dotnet"], results[3].EnumerateArray().Select(r => r.GetString()!));

        await using var reader = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url });
        var fromTs = await reader.GetWorkflowStatusAsync("from-ts");
        Assert.Equal("tina", fromTs!.AuthenticatedUser);
        Assert.Equal(["r1", "r2"], fromTs.AuthenticatedRoles);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"team":"red","n":4}"""), fromTs.Attributes), fromTs.Attributes?.ToJsonString());
        var listed = await reader.ListWorkflowsAsync(new ListWorkflowsOptions { Attributes = new JsonObject { ["team"] = "red" }, AuthenticatedUsers = ["tina", "nobody"], ApplicationName = "ts-data" });
        Assert.Equal("from-ts", Assert.Single(listed).WorkflowId);
    }
}
