using System.Text.Json;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// Work crosses languages on one Postgres system database: the TypeScript client enqueues to a .NET queue and the .NET
/// client to a TypeScript application's queue; messages and events go both ways, between clients and between workflows.
/// </summary>
public class CrossLanguageTests
{
    private sealed record AddRequest(int A, int B, string Label);

    private sealed record AddResult(int Sum, string Label);

    private sealed record Note(string Text);

    private sealed record Person(string Name);

    private sealed record Greeting(string Text, int Letters);

    private sealed record Echo(string Text);

    private sealed record Received(Note Message);

    private sealed record MailboxStatus(Note Received);

    [Fact]
    public async Task A_typescript_client_enqueues_to_a_dotnet_queue_sends_messages_and_reads_events()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var dbos = DbosApp.Create(db.Config("dotnet-worker"));
        dbos.RegisterQueue("dotnet-q");
        dbos.RegisterWorkflow("add", (WorkflowContext _, AddRequest request) => Task.FromResult(new AddResult(request.A + request.B, request.Label.ToUpperInvariant())));
        dbos.RegisterWorkflow("dotnet-mailbox", async (WorkflowContext context, string name) =>
        {
            var first = await context.RecvAsync<Note>("inbox", TimeSpan.FromSeconds(60));
            await context.SetEventAsync("first", new Received(first!));
            var second = await context.RecvAsync<Note>("inbox", TimeSpan.FromSeconds(60));
            return $"{name} got '{first!.Text}' and '{second!.Text}'";
        });
        await dbos.LaunchAsync();

        var results = await Peer.RunAsync(db, """
            main(async () => {
              const client = await DBOSClient.create({ systemDatabaseUrl: url });
              try {
                // Portable: the arguments as plain JSON.
                const portable = await client.enqueuePortable({ workflowName: 'add', queueName: 'dotnet-q', workflowID: 'ts-add-portable' }, [{ a: 2, b: 40, label: 'portable' }]);
                report(await portable.getResult());
                // The TypeScript default serializer (SuperJSON) with plain values in it is read too.
                const native = await client.enqueue({ workflowName: 'add', queueName: 'dotnet-q', workflowID: 'ts-add-native' }, { a: 1, b: 1, label: 'native' });
                report(await native.getResult());

                const mailbox = await client.enqueuePortable({ workflowName: 'dotnet-mailbox', queueName: 'dotnet-q', workflowID: 'ts-mailbox-target' }, ['dotnet']);
                await client.send('ts-mailbox-target', { text: 'hello' }, 'inbox', 'send-1', { serializationType: 'portable' });
                report(await client.getEvent('ts-mailbox-target', 'first', 30));
                await client.send('ts-mailbox-target', { text: 'again' }, 'inbox');
                report(await mailbox.getResult());
                report((await client.getWorkflow('ts-mailbox-target')).status);

                // A .NET workflow takes one input: more positional arguments fail it with a clear error.
                try {
                  await (await client.enqueuePortable({ workflowName: 'add', queueName: 'dotnet-q' }, [{ a: 1, b: 2, label: 'x' }, 'extra'])).getResult();
                  report('no error');
                } catch (e) {
                  report(e.message);
                }
              } finally {
                await client.destroy();
              }
            });
            """);

        Assert.Equal(6, results.Count);
        Assert.Equal("""{"sum":42,"label":"PORTABLE"}""", results[0].GetRawText());
        Assert.Equal("""{"sum":2,"label":"NATIVE"}""", results[1].GetRawText());
        Assert.Equal("""{"message":{"text":"hello"}}""", results[2].GetRawText());
        Assert.Equal("dotnet got 'hello' and 'again'", results[3].GetString());
        Assert.Equal("SUCCESS", results[4].GetString());
        Assert.Contains("a .NET workflow takes one input, and 2 positional arguments were given", results[5].GetString(), StringComparison.Ordinal);

        var status = await dbos.GetWorkflowStatusAsync("ts-add-portable");
        Assert.Equal(("add", "dotnet-q", "dotnet-worker"), (status!.Name, status.QueueName, status.ApplicationName));
    }

    private const string TypeScriptApp = """
        main(async () => {
          DBOS.setConfig({ name: 'ts-app', systemDatabaseUrl: url });
          DBOS.registerWorkflow(async (person) => ({ text: `Hello, ${person.name}`, letters: person.name.length }), { name: 'ts-greet', serialization: 'portable' });
          DBOS.registerWorkflow(async (replyTo) => {
            const note = await DBOS.recv('inbox', 60);
            await DBOS.setEvent('status', { received: note });
            await DBOS.send(replyTo, { text: `${note.text} (seen by TypeScript)` }, 'reply');
            return 'replied';
          }, { name: 'ts-mailbox', serialization: 'portable' });
          await DBOS.launch();
          await DBOS.registerQueue('ts-q');
          console.log('READY');
          await new Promise(() => {});
        });
        """;

    [Fact]
    public async Task A_dotnet_client_enqueues_to_a_typescript_queue_and_workflows_exchange_messages_and_events()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var typeScript = await Peer.StartAsync(db, TypeScriptApp);
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url });

        var greeting = await client.EnqueueAsync<Person, Greeting>(new EnqueueOptions { WorkflowName = "ts-greet", QueueName = "ts-q", WorkflowId = "dotnet-to-ts-1" }, new Person("Grace"));
        Assert.Equal(new Greeting("Hello, Grace", 5), await greeting.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));

        // A .NET workflow messages a TypeScript workflow, reads its event, and receives its reply.
        await using var dbos = DbosApp.Create(db.Config("dotnet-app"));
        var ask = dbos.RegisterWorkflow("ask-typescript", async (WorkflowContext context, string text) =>
        {
            await context.SendAsync("ts-mailbox-1", new Note(text), "inbox");
            var status = await context.GetEventAsync<JsonElement>("ts-mailbox-1", "status", TimeSpan.FromSeconds(60));
            var reply = await context.RecvAsync<Echo>("reply", TimeSpan.FromSeconds(60));
            return $"{status.GetProperty("received").GetProperty("text").GetString()} / {reply!.Text}";
        });
        await dbos.LaunchAsync();

        var mailbox = await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "ts-mailbox", QueueName = "ts-q", WorkflowId = "ts-mailbox-1" }, "dotnet-asker");
        Assert.Equal("ping / ping (seen by TypeScript)", await ask.RunAsync("ping", new StartOptions { WorkflowId = "dotnet-asker" }).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("replied", await mailbox.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));

        // And from a .NET client: an event read and a message sent from outside any workflow.
        var second = await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "ts-mailbox", QueueName = "ts-q", WorkflowId = "ts-mailbox-2" }, "dotnet-asker-2");
        await client.SendAsync("ts-mailbox-2", new Note("from a client"), "inbox");
        var status = await client.GetEventAsync<MailboxStatus>("ts-mailbox-2", "status", TimeSpan.FromSeconds(60));
        Assert.Equal("from a client", status!.Received.Text);

        // The reply goes to a workflow that does not exist: the TypeScript workflow fails, and the .NET client reads that error.
        var error = await Assert.ThrowsAsync<WorkflowFailedException>(() => second.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("dotnet-asker-2", error.Message, StringComparison.Ordinal);
    }
}
