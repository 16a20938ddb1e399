using System.Text.Json;
using System.Text.Json.Serialization;
using Dbos;

namespace DocsSnippets;

/// <summary>The examples of docs/installation.md and docs/aot.md.</summary>
public static class Installation
{
    public static async Task FirstProgramAsync()
    {
        // <snippet:installation-first-program>
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "consumer" });   // sqlite:///consumer.sqlite

        var greet = dbos.RegisterStep("greet", (string name, CancellationToken ct) => Task.FromResult($"hello {name}"));
        var shout = dbos.RegisterStep("shout", (string text, CancellationToken ct) => Task.FromResult(text.ToUpperInvariant()));
        var hello = dbos.RegisterWorkflow("hello", async (WorkflowContext ctx, string name) =>
            await shout.RunAsync(await greet.RunAsync(name)));

        await dbos.LaunchAsync();
        var handle = await hello.StartAsync("ada", new StartOptions { WorkflowId = "hello-ada" });
        Console.WriteLine(await handle.GetResultAsync());   // HELLO ADA
        // </snippet:installation-first-program>
    }

    public static async Task AotVersionAsync()
    {
        // <snippet:aot-version>
        await using var dbos = DbosApp.Create(new DbosConfig
        {
            Name = "shop",
            ApplicationVersion = "2026-11-26.1",   // or set DBOS__APPVERSION where the executable runs
        });
        // </snippet:aot-version>
    }

    public static async Task AotSerializerAsync()
    {
        // <snippet:aot-serializer>
        await using var dbos = DbosApp.Create(new DbosConfig
        {
            Name = "shop",
            ApplicationVersion = "2026-11-26.1",
            Serializer = new PortableJsonSerializer(new JsonSerializerOptions(JsonSerializerDefaults.Web)
            {
                TypeInfoResolver = ShopJson.Default,
            }),
        });
        // </snippet:aot-serializer>
    }
}

/// <summary>The receipt of docs/aot.md's example.</summary>
public sealed record Receipt(string OrderId, decimal Total);

// <snippet:aot-json-context>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Order))]
[JsonSerializable(typeof(Receipt))]
internal sealed partial class ShopJson : JsonSerializerContext;
// </snippet:aot-json-context>
