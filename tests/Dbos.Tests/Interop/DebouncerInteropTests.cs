using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>The TypeScript SDK's <c>DebouncerClient</c> and .NET's <see cref="Debouncer{TInput, TResult}"/> share a key.</summary>
public class DebouncerInteropTests
{
    [Fact]
    public async Task A_typescript_debouncer_and_a_dotnet_one_push_back_the_same_workflow_whichever_enqueued_it()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var dbos = DbosApp.Create(db.Config("debounce-app"));
        var runs = 0;
        var collect = dbos.RegisterWorkflow("collect", (WorkflowContext ctx, string input) =>
        {
            Interlocked.Increment(ref runs);
            return Task.FromResult($"ran {input}");
        });
        await dbos.LaunchAsync();
        var debouncer = new Debouncer<string, string>(collect);

        // .NET enqueues, TypeScript pushes back: the workflow runs once, with TypeScript's input.
        var first = await debouncer.DebounceAsync("dotnet-first", TimeSpan.FromSeconds(4), "a");
        var results = await Peer.RunAsync(db, """
            const { DebouncerClient } = require('@dbos-inc/dbos-sdk');
            main(async () => {
              const client = await DBOSClient.create({ systemDatabaseUrl: url, applicationName: 'debounce-app' });
              try {
                const debouncer = new DebouncerClient(client, { workflowName: 'collect', serializationType: 'portable' });
                report((await debouncer.debounce('dotnet-first', 4000, 'b')).workflowID);
                report((await debouncer.debounce('ts-first', 4000, 'c')).workflowID);
              } finally {
                await client.destroy();
              }
            });
            """);
        Assert.Equal(first.WorkflowId, results[0].GetString());

        // TypeScript enqueues, .NET pushes back.
        var second = await debouncer.DebounceAsync("ts-first", TimeSpan.FromSeconds(1), "d");
        Assert.Equal(results[1].GetString(), second.WorkflowId);

        Assert.Equal("ran b", await first.GetResultAsync());
        Assert.Equal("ran d", await second.GetResultAsync());
        Assert.Equal(2, runs);
        var rows = await db.QueryAsync(
            "SELECT is_debounced, deduplication_id IS NULL, status FROM {workflow_status} WHERE name = 'collect'",
            r => (r.GetBoolean(0), r.GetBoolean(1), r.GetString(2)));
        Assert.Equal([(true, true, "SUCCESS"), (true, true, "SUCCESS")], rows);
    }
}
