// Orders and stock in an application database, workflows in a separate system database, exactly-once transactions.
//
//   dotnet run --project samples/Inventory                       place an order: reserve stock, then record the order
//   dotnet run --project samples/Inventory -- --crash-after-reserve  kill the process right after the stock is reserved
//   dotnet run --project samples/Inventory                       run again: the order completes, the stock is taken once
//
// Application data: INVENTORY_DATABASE_URL (default sqlite:///inventory-app.sqlite).
// Workflows: DBOS_SYSTEM_DATABASE_URL (default sqlite:///inventory.sqlite). Either may be Postgres, for example
// postgresql://user:password@localhost:5432/inventory_app. A database that does not exist yet is created: the system
// database by DBOS, the application database by SqlDatasource.CreateAsync (DatasourceOptions.CreateDatabaseIfMissing).
using System.Diagnostics;
using System.Globalization;
using Dbos;

var crashAfterReserve = args.Contains("--crash-after-reserve");
var appUrl = Environment.GetEnvironmentVariable("INVENTORY_DATABASE_URL") ?? "sqlite:///inventory-app.sqlite";

// Connects, creating the database if it is missing, and the checkpoint table transactions record their outputs in.
await using var shop = await SqlDatasource.CreateAsync(appUrl);
await shop.RunTransactionAsync("create-tables", async (tx, _) =>
{
    await tx.ExecuteAsync("CREATE TABLE IF NOT EXISTS stock (item TEXT PRIMARY KEY, count INTEGER NOT NULL)");
    await tx.ExecuteAsync("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, item TEXT NOT NULL, quantity INTEGER NOT NULL)");
    await tx.ExecuteAsync("INSERT INTO stock (item, count) SELECT 'widget', 100 WHERE NOT EXISTS (SELECT 1 FROM stock WHERE item = 'widget')");
});

await using var dbos = DbosApp.Create(new DbosConfig { Name = "inventory" });
var placeOrder = dbos.RegisterWorkflow("place-order", async (WorkflowContext ctx, OrderRequest request) =>
{
    // Each transaction commits its writes together with its checkpoint: it runs exactly once, crash or not.
    var left = await shop.RunTransactionAsync("reserve-stock", async (tx, _) =>
    {
        var updated = await tx.ExecuteAsync("UPDATE stock SET count = count - $1 WHERE item = $2 AND count >= $1", request.Quantity, request.Item);
        if (updated == 0)
        {
            throw new InvalidOperationException($"not enough {request.Item} in stock");
        }

        var count = Convert.ToInt64(await tx.ScalarAsync("SELECT count FROM stock WHERE item = $1", request.Item), CultureInfo.InvariantCulture);
        Console.WriteLine($"  [reserve-stock] took {request.Quantity} x {request.Item}; {count} left");
        return count;
    });

    if (crashAfterReserve)
    {
        Console.WriteLine("  The reservation is committed. Crashing now, on purpose; run again without --crash-after-reserve.");
        Process.GetCurrentProcess().Kill();
    }

    await shop.RunTransactionAsync("record-order", async (tx, _) =>
    {
        await tx.ExecuteAsync("INSERT INTO orders (id, item, quantity) VALUES ($1, $2, $3)", ctx.WorkflowId, request.Item, request.Quantity);
        Console.WriteLine($"  [record-order] order {ctx.WorkflowId} recorded");
    });
    return left;
});

await dbos.LaunchAsync();
Console.WriteLine($"Application data: {shop.Database}. Workflows: {dbos.SystemDatabase}.");

var unfinished = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = placeOrder.Name, Status = [WorkflowState.Pending, WorkflowState.Enqueued] });
WorkflowHandle<long> handle;
if (unfinished.Count > 0)
{
    Console.WriteLine($"Resuming order {unfinished[0].WorkflowId}, left unfinished by an earlier run (its reservation is not repeated):");
    handle = await dbos.RetrieveWorkflowAsync<long>(unfinished[0].WorkflowId);
}
else
{
    var id = $"order-{DateTime.UtcNow:HHmmssfff}";
    Console.WriteLine($"Placing {id}:");
    handle = await placeOrder.StartAsync(new OrderRequest("widget", 3), new StartOptions { WorkflowId = id });
}

var remaining = await handle.GetResultAsync();
var orders = await shop.RunTransactionAsync("count-orders", (tx, _) => tx.ScalarAsync("SELECT count(*) FROM orders"));
Console.WriteLine($"Done: {remaining} widgets left in stock, {orders} order(s) recorded in all.");
return 0;

/// <summary>An order to place.</summary>
internal sealed record OrderRequest(string Item, int Quantity);
