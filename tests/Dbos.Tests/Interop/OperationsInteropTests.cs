using System.Text.Json;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>The TypeScript SDK's <c>dbos workflow</c> commands operate on workflows a .NET application ran.</summary>
public class OperationsInteropTests
{
    private sealed record Person(string Name, int Age);

    private sealed record Greeting(string Text, int Letters);

    [Fact]
    public async Task The_typescript_command_line_lists_shows_cancels_resumes_and_forks_dotnet_workflows()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var dbos = DbosApp.Create(db.Config("dotnet-ops"));
        var shouted = 0;
        var greet = dbos.RegisterWorkflow("greet", async (WorkflowContext context, Person person) =>
        {
            var upper = await context.RunStepAsync("shout", _ =>
            {
                Interlocked.Increment(ref shouted);
                return Task.FromResult(person.Name.ToUpperInvariant());
            });
            var letters = await context.RunStepAsync("count", _ => Task.FromResult(upper.Length));
            return new Greeting($"Hello, {upper}", letters);
        });
        var fail = dbos.RegisterWorkflow<string, string>("fail", (_, reason) => throw new InvalidOperationException(reason));
        var waitForGo = dbos.RegisterWorkflow("wait-for-go", async (WorkflowContext context, string name) =>
        {
            var go = await context.RecvAsync<string>("go", TimeSpan.FromMinutes(2));
            return $"{name}: {go}";
        });
        await dbos.LaunchAsync();

        Assert.Equal(new Greeting("Hello, ADA", 3), await greet.RunAsync(new Person("Ada", 36), new StartOptions { WorkflowId = "ops-greet" }));
        await Assert.ThrowsAsync<WorkflowFailedException>(() => fail.RunAsync("card declined", new StartOptions { WorkflowId = "ops-fail" }));
        var waiting = await waitForGo.StartAsync("rover", new StartOptions { WorkflowId = "ops-wait" });

        // list
        var listed = (await Peer.CliJsonAsync(db, "workflow", "list", "--limit", "10")).EnumerateArray()
            .ToDictionary(w => w.GetProperty("workflowID").GetString()!, w => w);
        Assert.Equal(["ops-fail", "ops-greet", "ops-wait"], listed.Keys.Order());
        Assert.Equal("SUCCESS", listed["ops-greet"].GetProperty("status").GetString());
        Assert.Equal("greet", listed["ops-greet"].GetProperty("workflowName").GetString());
        Assert.Equal("ERROR", listed["ops-fail"].GetProperty("status").GetString());
        Assert.Equal("PENDING", listed["ops-wait"].GetProperty("status").GetString());

        // get: inputs, outputs and errors are readable
        var got = await Peer.CliJsonAsync(db, "workflow", "get", "ops-greet");
        Assert.Equal("dotnet-ops", got.GetProperty("applicationName").GetString());
        Assert.Contains("name: 'Ada'", got.GetProperty("input").GetString(), StringComparison.Ordinal);
        Assert.Contains("age: 36", got.GetProperty("input").GetString(), StringComparison.Ordinal);
        Assert.Contains("text: 'Hello, ADA'", got.GetProperty("output").GetString(), StringComparison.Ordinal);
        var failed = await Peer.CliJsonAsync(db, "workflow", "get", "ops-fail");
        Assert.Contains("card declined", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("InvalidOperationException", failed.GetProperty("error").GetString(), StringComparison.Ordinal);

        // steps
        var steps = (await Peer.CliJsonAsync(db, "workflow", "steps", "ops-greet")).EnumerateArray().ToList();
        Assert.Equal(["shout", "count"], steps.Select(s => s.GetProperty("name").GetString()));
        Assert.Equal([0, 1], steps.Select(s => s.GetProperty("functionID").GetInt32()));
        Assert.Equal("'ADA'", steps[0].GetProperty("output").GetString());
        Assert.Equal("3", steps[1].GetProperty("output").GetString());

        // cancel, then resume: the .NET application runs it again and it finishes
        await TypeScriptPeer.CliAsync("workflow", "cancel", "ops-wait", "--sys-db-url", db.Url);
        Assert.Equal(WorkflowState.Cancelled, (await dbos.GetWorkflowStatusAsync("ops-wait"))!.State);
        await Assert.ThrowsAsync<WorkflowCancelledException>(() => waiting.GetResultAsync());

        var (resumeExit, resumeOutput) = await TypeScriptPeer.CliAsync("workflow", "resume", "ops-wait", "--sys-db-url", db.Url);
        Assert.True(resumeExit == 0, resumeOutput);
        await dbos.SendAsync("ops-wait", "go!", "go");
        Assert.Equal("rover: go!", await (await dbos.RetrieveWorkflowAsync<string>("ops-wait")).GetResultAsync());

        // fork from the second step: the first step's result is reused, the second runs again
        var (forkExit, forkOutput) = await TypeScriptPeer.CliAsync("workflow", "fork", "ops-greet", "--step", "1", "--forked-workflow-id", "ops-greet-fork", "--sys-db-url", db.Url);
        Assert.True(forkExit == 0, forkOutput);
        Assert.Equal(new Greeting("Hello, ADA", 3), await (await dbos.RetrieveWorkflowAsync<Greeting>("ops-greet-fork")).GetResultAsync());
        Assert.Equal(1, shouted);
        var forked = await Peer.CliJsonAsync(db, "workflow", "get", "ops-greet-fork");
        Assert.Equal("ops-greet", forked.GetProperty("forkedFrom").GetString());
        Assert.Equal("SUCCESS", forked.GetProperty("status").GetString());
    }
}
