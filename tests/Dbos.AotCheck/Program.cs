// A NativeAOT build of DBOS workflows, for scripts/aot-check.sh (which publishes, runs and kills it).
//
//   Dbos.AotCheck run <workflow-id>     runs a four-step workflow, or on a later run recovers and awaits it, and prints
//                                       "result <receipt>". Its values go through a source-generated JSON context.
//   Dbos.AotCheck greet <name>          a workflow on a queue whose string input and output use the default serializer
//   add --no-version to either          the same without an application version: launch must fail
//
// The system database is DBOS_SYSTEM_DATABASE_URL (default sqlite:///aot-check.sqlite in the working directory).
// Each step appends a line to the ledger file AOTCHECK_LEDGER (default ledger.txt), so a step run twice shows.
// With AOTCHECK_BLOCK_AFTER=N the four-step workflow prints "checkpointed N" once step N is recorded, then waits to be
// killed.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dbos;
using Microsoft.Extensions.Logging;

if (args is not [("run" or "greet") and var mode, var argument, .. var rest])
{
    Console.Error.WriteLine("usage: Dbos.AotCheck run <workflow-id> | greet <name> [--no-version]");
    return 2;
}

var ledger = Environment.GetEnvironmentVariable("AOTCHECK_LEDGER") ?? "ledger.txt";
var blockAfter = int.TryParse(Environment.GetEnvironmentVariable("AOTCHECK_BLOCK_AFTER"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true));

await using var dbos = DbosApp.Create(new DbosConfig
{
    Name = "aot-check",
    // A native executable keeps no IL, so the default version (a hash of the workflows' IL) cannot be computed: an
    // AOT application names its version, and changes it whenever workflow code changes.
    ApplicationVersion = rest.Contains("--no-version") ? null : "aot-check-1",
    // A fixed executor ID: the next process with it recovers this one's pending workflows at launch.
    ExecutorId = "aot-check",
    LoggerFactory = loggerFactory,
    // No reflection under NativeAOT: the workflows' own types come from a source-generated context. Without this
    // setting, only strings, numbers, GUIDs and dates could be stored (as by "greet").
    Serializer = mode == "run" ? new PortableJsonSerializer(new JsonSerializerOptions(JsonSerializerDefaults.Web) { TypeInfoResolver = AotCheckJson.Default }) : null,
});

var step = dbos.RegisterStep("step", (Stage stage, CancellationToken ct) =>
{
    File.AppendAllText(ledger, $"step{stage.Number}{Environment.NewLine}");
    return Task.FromResult(new StageResult(stage.Number, stage.Order.Amount * stage.Number));
});

var fourSteps = dbos.RegisterWorkflow("four-steps", async (WorkflowContext ctx, Order order) =>
{
    var total = 0m;
    for (var i = 1; i <= 4; i++)
    {
        total += (await step.RunAsync(new Stage(order, i))).Amount;
        if (i == blockAfter)
        {
            Console.WriteLine($"checkpointed {i}");
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
        }
    }

    return new Receipt(order.Id, total);
});

var greet = dbos.RegisterWorkflow("greet", async (WorkflowContext ctx, string name) =>
    await ctx.RunStepAsync("greeting", ct =>
    {
        File.AppendAllText(ledger, $"greeting {name}{Environment.NewLine}");
        return Task.FromResult($"hello {name}");
    }));
dbos.RegisterQueue("greetings");

try
{
    await dbos.LaunchAsync();
}
catch (DbosConfigurationException ex)
{
    Console.WriteLine($"launch failed: {ex.Message}");
    return 3;
}

Console.WriteLine($"launched version {dbos.ApplicationVersion} on {dbos.SystemDatabase}");
if (mode == "greet")
{
    // On a queue, so the input is stored, then read back from the database by the dispatcher.
    var greeting = await greet.StartAsync(argument, new StartOptions { Queue = "greetings" });
    Console.WriteLine($"greeted {await greeting.GetResultAsync()}");
    return 0;
}

var handle = await fourSteps.StartAsync(new Order(argument, 10m), new StartOptions { WorkflowId = argument });
var receipt = await handle.GetResultAsync();
Console.WriteLine($"result {JsonSerializer.Serialize(receipt, AotCheckJson.Default.Receipt)}");
return 0;

internal sealed record Order(string Id, decimal Amount);

internal sealed record Stage(Order Order, int Number);

internal sealed record StageResult(int Number, decimal Amount);

internal sealed record Receipt(string OrderId, decimal Total);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Order))]
[JsonSerializable(typeof(Stage))]
[JsonSerializable(typeof(StageResult))]
[JsonSerializable(typeof(Receipt))]
internal sealed partial class AotCheckJson : JsonSerializerContext;
