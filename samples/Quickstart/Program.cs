// DBOS for .NET quickstart: a four-step order workflow that survives a crash.
//
//   dotnet run --project samples/Quickstart                        run an order from start to finish
//   dotnet run --project samples/Quickstart -- --crash-after-step 2  kill the process right after step 2 is checkpointed
//   dotnet run --project samples/Quickstart                        run again: the order resumes at step 3
//
// The system database is quickstart.sqlite in the working directory, or DBOS_SYSTEM_DATABASE_URL if it is set
// (for example postgresql://user:password@localhost:5432/quickstart).
using System.Diagnostics;
using System.Globalization;
using Dbos;

var crashAfterStep = ParseCrashAfterStep(args);
var ranHere = new HashSet<string>();

await using var dbos = DbosApp.Create(new DbosConfig { Name = "quickstart" });

var reserve = dbos.RegisterStep("reserve-inventory", async (Order order, CancellationToken ct) =>
{
    await Task.Delay(300, ct); // stands in for a call to an inventory service
    return Ran("reserve-inventory", $"reserved {order.Quantity} x {order.Item}");
});
var charge = dbos.RegisterStep("charge-payment", async (Order order, CancellationToken ct) =>
{
    await Task.Delay(300, ct);
    return Ran("charge-payment", $"charged ${(order.Quantity * order.UnitPrice).ToString("0.00", CultureInfo.InvariantCulture)}");
});
var ship = dbos.RegisterStep("ship", async (Order order, CancellationToken ct) =>
{
    await Task.Delay(300, ct);
    return Ran("ship", $"shipped with tracking number TRK-{Math.Abs(order.Id.GetHashCode(StringComparison.Ordinal)) % 100000:D5}");
});
var email = dbos.RegisterStep("send-confirmation", async (Order order, CancellationToken ct) =>
{
    await Task.Delay(300, ct);
    return Ran("send-confirmation", $"emailed a confirmation to {order.Customer}");
});

var steps = new[] { reserve, charge, ship, email };
var processOrder = dbos.RegisterWorkflow("process-order", async (WorkflowContext ctx, Order order) =>
{
    var results = new List<string>();
    for (var i = 0; i < steps.Length; i++)
    {
        results.Add(await steps[i].RunAsync(order));
        if (crashAfterStep == i + 1)
        {
            Console.WriteLine($"  Step {i + 1} is checkpointed. Crashing now, on purpose: the process is killed, nothing is cleaned up.");
            Console.WriteLine("  Run the same command without --crash-after-step to resume the order.");
            Process.GetCurrentProcess().Kill();
        }
    }

    return string.Join("; ", results);
});

string Ran(string step, string outcome)
{
    lock (ranHere)
    {
        ranHere.Add(step);
    }

    Console.WriteLine($"  [{step}] {outcome}");
    return outcome;
}

await dbos.LaunchAsync();
Console.WriteLine($"DBOS quickstart. System database: {dbos.SystemDatabase}");

// Launching re-enqueued any order an earlier run left unfinished; DBOS now runs it from its last checkpoint.
var unfinished = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions
{
    Name = processOrder.Name,
    Status = [WorkflowState.Pending, WorkflowState.Enqueued],
});

WorkflowHandle<string> handle;
if (unfinished.Count > 0)
{
    var previous = unfinished[0];
    Console.WriteLine($"Found order {previous.WorkflowId}, left unfinished by an earlier run. DBOS resumes it after its last checkpointed step:");
    handle = await dbos.RetrieveWorkflowAsync<string>(previous.WorkflowId);
}
else
{
    var order = new Order($"order-{DateTime.UtcNow:HHmmss}-{Random.Shared.Next(1000):D3}", "ada@example.com", "widget", 3, 14.5m);
    Console.WriteLine($"Processing {order.Id} ({order.Quantity} x {order.Item} for {order.Customer}):");
    handle = await processOrder.StartAsync(order, new StartOptions { WorkflowId = order.Id });
}

var receipt = await handle.GetResultAsync();
Console.WriteLine($"Order {handle.WorkflowId} is done: {receipt}.");
Console.WriteLine();
Console.WriteLine("Its checkpoints in the system database:");
foreach (var step in await dbos.ListWorkflowStepsAsync(handle.WorkflowId))
{
    var where = ranHere.Contains(step.Name) ? "ran in this process" : "recorded by an earlier run, not repeated";
    Console.WriteLine($"  {step.FunctionId}. {step.Name,-18} {where}");
}

return 0;

static int? ParseCrashAfterStep(string[] args)
{
    var index = Array.IndexOf(args, "--crash-after-step");
    if (index < 0)
    {
        return null;
    }

    if (index + 1 < args.Length && int.TryParse(args[index + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var step) && step is >= 1 and <= 4)
    {
        return step;
    }

    Console.Error.WriteLine("--crash-after-step takes a step number from 1 to 4.");
    Environment.Exit(2);
    return null;
}

/// <summary>An order to process.</summary>
internal sealed record Order(string Id, string Customer, string Item, int Quantity, decimal UnitPrice);
