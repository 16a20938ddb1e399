using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// <see cref="DeduplicationPolicy.ReturnExisting"/> and the TypeScript SDK's <c>duplicationPolicy: 'return-existing'</c>
/// find each other's holders of a deduplication ID: both look up the one row of the unique index on
/// <c>(queue_name, deduplication_id)</c>.
/// </summary>
public class DeduplicationInteropTests
{
    [Fact]
    public async Task A_typescript_holder_is_returned_to_dotnet_and_a_dotnet_holder_to_typescript()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "dedup-app" });
        await client.MigrateAsync();

        // .NET holds "net-key" (on a queue nobody serves, so it stays ENQUEUED and keeps the key).
        var netHolder = await client.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "task", QueueName = "unserved", DeduplicationId = "net-key", WorkflowId = "net-holder" }, "net");

        var results = await Peer.RunAsync(db, """
            main(async () => {
              const client = await DBOSClient.create({ systemDatabaseUrl: url, applicationName: 'dedup-app' });
              try {
                const held = await client.enqueuePortable({ workflowName: 'task', queueName: 'unserved', deduplicationID: 'ts-key', workflowID: 'ts-holder' }, ['ts']);
                report(held.workflowID);
                const existing = await client.enqueuePortable(
                  { workflowName: 'task', queueName: 'unserved', deduplicationID: 'net-key', workflowID: 'ts-would-be', duplicationPolicy: 'return-existing' }, ['ts2']);
                report(existing.workflowID);
                try {
                  await client.enqueuePortable({ workflowName: 'task', queueName: 'unserved', deduplicationID: 'net-key' }, ['ts3']);
                  report('no error');
                } catch (e) {
                  report(e.constructor.name);
                }
              } finally {
                await client.destroy();
              }
            });
            """);
        Assert.Equal("ts-holder", results[0].GetString());
        Assert.Equal(netHolder.WorkflowId, results[1].GetString());
        Assert.Equal("DBOSQueueDuplicatedError", results[2].GetString());

        // TypeScript's holder is returned to .NET; the default still throws.
        var returned = await client.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "task", QueueName = "unserved", DeduplicationId = "ts-key", WorkflowId = "net-would-be", DeduplicationPolicy = DeduplicationPolicy.ReturnExisting }, "x");
        Assert.Equal("ts-holder", returned.WorkflowId);
        await Assert.ThrowsAsync<WorkflowDeduplicatedException>(() => client.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "task", QueueName = "unserved", DeduplicationId = "ts-key" }, "y"));

        // Nothing was written for the callers whose enqueue returned the holder.
        Assert.Null(await client.GetWorkflowStatusAsync("ts-would-be"));
        Assert.Null(await client.GetWorkflowStatusAsync("net-would-be"));
        var rows = await db.QueryAsync(
            "SELECT workflow_uuid, deduplication_id, status FROM {workflow_status} ORDER BY workflow_uuid",
            r => (r.GetString(0), r.GetString(1), r.GetString(2)));
        Assert.Equal([("net-holder", "net-key", "ENQUEUED"), ("ts-holder", "ts-key", "ENQUEUED")], rows);
    }
}
