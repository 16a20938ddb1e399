using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// A .NET application and a TypeScript application with different names share one system database, each with its
/// default executor ID and a workflow of the same name: each recovers and dequeues only its own workflows.
/// </summary>
public class OwnershipInteropTests
{
    private const string TypeScriptApp = """
        main(async () => {
          DBOS.setConfig({ name: 'ts-own', systemDatabaseUrl: url });
          const sameName = DBOS.registerWorkflow(async (x) => `typescript ran ${x}`, { name: 'same-name' });
          const blocked = DBOS.registerWorkflow(async (x) => {
            if (process.env.BLOCK) { console.log('BLOCKED'); await new Promise(() => {}); }
            return `typescript recovered ${x}`;
          }, { name: 'blocked' });
          await DBOS.launch();
          await DBOS.registerQueue('ts-own-q');
          if (process.env.BLOCK) {
            await DBOS.startWorkflow(sameName, { workflowID: 'ts-done' })('ts-done');
            await (await DBOS.retrieveWorkflow('ts-done')).getResult();
            await DBOS.startWorkflow(blocked, { workflowID: 'ts-pending' })('ts-pending');
          }
          console.log('READY');
          await new Promise(() => {});
        });
        """;

    [Fact]
    public async Task Applications_with_different_names_never_recover_or_dequeue_each_others_workflows()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        DbosApp Build(out Workflow<string, string> sameName, out Workflow<string, string> blocked)
        {
            var config = db.Config("dotnet-own");
            config.ExecutorId = null;
            var app = DbosApp.Create(config);
            app.RegisterQueue("dotnet-own-q");
            sameName = app.RegisterWorkflow("same-name", (WorkflowContext _, string x) => Task.FromResult($"dotnet ran {x}"));
            blocked = app.RegisterWorkflow("blocked", async (WorkflowContext _, string x) =>
            {
                await release.Task;
                return $"dotnet recovered {x}";
            });
            return app;
        }

        // Each application leaves a finished workflow and a pending one behind (TypeScript's process is killed).
        await using (var first = Build(out var sameName, out var blocked))
        {
            await first.LaunchAsync();
            Assert.Equal("dotnet ran dn-done", await sameName.RunAsync("dn-done", new StartOptions { WorkflowId = "dn-done" }));
            await blocked.StartAsync("dn-pending", new StartOptions { WorkflowId = "dn-pending" });
        }

        await using (var typeScript = await Peer.StartAsync(db, TypeScriptApp, ("BLOCK", "1")))
        {
            await typeScript.WaitForLineAsync("BLOCKED");
            typeScript.Kill();
        }

        // TypeScript's default executor ID is local; ours is generated per process, in a form only this library writes.
        var rows = await db.QueryAsync("SELECT workflow_uuid, status, executor_id FROM {workflow_status} ORDER BY workflow_uuid", r => (r.GetString(0), r.GetString(1), r.GetString(2)));
        Assert.Equal([("dn-done", "SUCCESS"), ("dn-pending", "PENDING"), ("ts-done", "SUCCESS"), ("ts-pending", "PENDING")], rows.Select(r => (r.Item1, r.Item2)));
        Assert.All(rows.Take(2), r => Assert.StartsWith("dbos-dotnet-", r.Item3, StringComparison.Ordinal));
        Assert.All(rows.Skip(2), r => Assert.Equal("local", r.Item3));

        // Both restart on the same database: TypeScript recovers its executor's pending workflow, the new .NET process takes
        // over its dead predecessor's, and neither touches the other's (a TypeScript executor holds no liveness of ours).
        release.SetResult();
        await using var second = Build(out _, out _);
        await second.LaunchAsync();
        await using var typeScriptAgain = await Peer.StartAsync(db, TypeScriptApp);
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url });
        Assert.Equal("dotnet recovered dn-pending", await (await client.RetrieveWorkflowAsync<string>("dn-pending")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("typescript recovered ts-pending", await (await client.RetrieveWorkflowAsync<string>("ts-pending")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));

        // Forks go on the internal queue both applications serve; each takes only the forks of its own workflows.
        var forks = new List<(string Id, string Expected)>();
        for (var i = 0; i < 3; i++)
        {
            foreach (var (source, expected) in new[] { ("dn-done", "dotnet ran dn-done"), ("ts-done", "typescript ran ts-done") })
            {
                var id = $"{source}-fork-{i}";
                var (exit, output) = await TypeScriptPeer.CliAsync("workflow", "fork", source, "--step", "0", "--forked-workflow-id", id, "--sys-db-url", db.Url);
                Assert.True(exit == 0, output);
                forks.Add((id, expected));
            }
        }

        foreach (var (id, expected) in forks)
        {
            Assert.Equal(expected, await (await client.RetrieveWorkflowAsync<string>(id)).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        }

        var owners = await db.QueryAsync(
            "SELECT workflow_uuid, application_name FROM {workflow_status} ORDER BY workflow_uuid", r => (r.GetString(0), r.GetString(1)));
        Assert.All(owners, o => Assert.Equal(o.Item1.StartsWith("dn-", StringComparison.Ordinal) ? "dotnet-own" : "ts-own", o.Item2));
        Assert.DoesNotContain("not registered", typeScriptAgain.Output, StringComparison.OrdinalIgnoreCase);

        // A queue name belongs to the application that registered it, in either language.
        await using var intruder = DbosApp.Create(db.Config("dotnet-intruder"));
        intruder.RegisterQueue("ts-own-q");
        var refused = await Assert.ThrowsAsync<DbosConfigurationException>(() => intruder.LaunchAsync());
        Assert.Contains("belongs to application 'ts-own'", refused.Message, StringComparison.Ordinal);
        var typeScriptRefusal = Assert.Single(await Peer.RunAsync(db, """
            main(async () => {
              DBOS.setConfig({ name: 'ts-intruder', systemDatabaseUrl: url });
              await DBOS.launch();
              try { await DBOS.registerQueue('dotnet-own-q'); report('registered'); } catch (e) { report(e.message); }
              await DBOS.shutdown();
            });
            """));
        Assert.Contains("dotnet-own", typeScriptRefusal.GetString(), StringComparison.Ordinal);
    }
}
