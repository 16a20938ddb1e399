// The README's short tour. The objects it uses without declaring them (inventory, payments, audit, order) come from
// TourFixtures. This program is compiled, to check the README's example; it is not meant to be run.
using DocsSnippets;
using static DocsSnippets.TourFixtures;
// <snippet:readme-tour>
using Dbos;
using Microsoft.Extensions.Logging;

// DBOS logs launch, recovery and step retries through Microsoft.Extensions.Logging, and a console app has no logger
// unless you give it one: this prints them (package Microsoft.Extensions.Logging.Console; ASP.NET Core hosts do it for you).
using var loggerFactory = LoggerFactory.Create(b => b.AddConsole());

// No URL: DBOS_SYSTEM_DATABASE_URL if set, else sqlite:///shop.sqlite in the working directory.
await using var dbos = DbosApp.Create(new DbosConfig { Name = "shop", LoggerFactory = loggerFactory });

// Steps: checkpointed when called inside a workflow, plain calls anywhere else.
var reserve = dbos.RegisterStep("reserve", (Order o, CancellationToken ct) => inventory.ReserveAsync(o, ct));
var charge = dbos.RegisterStep("charge", (Order o, CancellationToken ct) => payments.ChargeAsync(o, ct),
    new StepOptions { MaxAttempts = 5, RetryInterval = TimeSpan.FromSeconds(1), BackoffRate = 2 });   // retried with backoff

var checkout = dbos.RegisterWorkflow("checkout", async (WorkflowContext ctx, Order order) =>
{
    await reserve.RunAsync(order);                        // never runs again once it has finished
    await ctx.SleepAsync(TimeSpan.FromMinutes(10));       // durable: a restart wakes at the original time
    var paid = await charge.RunAsync(order);
    var at = await ctx.NowAsync();                        // durable clock and GUIDs: the same on re-execution
    await ctx.RunStepAsync("audit", ct => audit.WriteAsync(order, at, ct));   // an inline step
    return paid.ReceiptId;
});

await dbos.LaunchAsync();   // migrate the schema, recover this executor's pending workflows, start dispatching

var handle = await checkout.StartAsync(order, new StartOptions { WorkflowId = order.Id, Timeout = TimeSpan.FromHours(1) });
string receipt = await handle.GetResultAsync();
// </snippet:readme-tour>
