using Dbos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DocsSnippets;

// <snippet:workflows-class>
// A workflow written as a class. DBOS creates an instance for each execution, its constructor's arguments taken from
// the application's services.
public sealed class Checkout(Payments payments) : IWorkflow<Order, string>
{
    public async Task<string> RunAsync(WorkflowContext context, Order order)
    {
        var payment = await context.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct));
        return payment.ReceiptId;
    }
}
// </snippet:workflows-class>

/// <summary>The examples of docs/workflows.md.</summary>
public static class Workflows
{
    public static async Task DefineAsync(DbosApp dbos, Inventory inventory, Payments payments, Order order)
    {
        // <snippet:workflows-define>
        // A registered step: checkpointed when a workflow calls it, a plain call anywhere else.
        var reserve = dbos.RegisterStep("reserve", (Order o, CancellationToken ct) => inventory.ReserveAsync(o, ct));

        var checkout = dbos.RegisterWorkflow("checkout", async (WorkflowContext ctx, Order order) =>
        {
            await reserve.RunAsync(order);

            // An inline step, run up to 5 times, waiting 1 s, 2 s, 4 s, then 8 s between attempts.
            var payment = await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct),
                new StepOptions { MaxAttempts = 5, RetryInterval = TimeSpan.FromSeconds(1), BackoffRate = 2 });
            return payment.ReceiptId;
        });

        await dbos.LaunchAsync();

        // Runs the workflow and waits for its result. The order's ID is the workflow's ID: running it again returns
        // the first run's result instead of charging twice.
        string receipt = await checkout.RunAsync(order, new StartOptions { WorkflowId = order.Id });
        // </snippet:workflows-define>
        Console.WriteLine(receipt);
    }

    public static async Task NoResultAsync(DbosApp dbos, Notifier notifier, Audit audit, Order order)
    {
        // <snippet:workflows-no-result>
        // A step without input, token or result, and a synchronous one: no type arguments needed.
        var notify = dbos.RegisterStep("notify", (Order o) => notifier.NotifyAsync(o));        // a VoidStep<Order>
        var pick = dbos.RegisterStep("pick", () => Random.Shared.Next(1, 10));                 // a Step<int>

        // A workflow returning Task: a VoidWorkflow<Order>.
        var fulfil = dbos.RegisterWorkflow("fulfil-quietly", async (WorkflowContext ctx, Order order) =>
        {
            await notify.RunAsync(order);
            var bin = await pick.RunAsync();
            await ctx.RunStepAsync("log", () => Console.WriteLine($"{order.Id} from bin {bin}"));   // inline, synchronous
            await ctx.RunStepAsync("audit", ct => audit.WriteAsync(order, DateTimeOffset.UnixEpoch, ct));
        });

        await dbos.LaunchAsync();
        await fulfil.RunAsync(order);   // its recorded output, and each void step's, is null
        // </snippet:workflows-no-result>
    }

    public static void StepTimeout(DbosApp dbos, Pricing pricing)
    {
        // <snippet:workflows-step-timeout>
        dbos.RegisterWorkflow("quote", async (WorkflowContext ctx, Order order) =>
        {
            try
            {
                // Each attempt may take 10 s. Then its token is cancelled and the attempt fails with a
                // DbosStepTimeoutException, retried like any other error: 3 attempts in all.
                return await ctx.RunStepAsync("price", ct => pricing.QuoteAsync(order, ct),
                    new StepOptions { Timeout = TimeSpan.FromSeconds(10), MaxAttempts = 3 });
            }
            catch (StepFailedException e) when (e.ErrorName == nameof(DbosStepTimeoutException))
            {
                return 0m;   // every attempt timed out
            }
        });
        // </snippet:workflows-step-timeout>
    }

    public static void RetryRule(DbosApp dbos, Payments payments)
    {
        // <snippet:workflows-retry-rule>
        var charge = dbos.RegisterStep("charge", (Order o, CancellationToken ct) => payments.ChargeAsync(o, ct), new StepOptions
        {
            MaxAttempts = 5,
            RetryInterval = TimeSpan.FromMilliseconds(500),   // then 1 s, 2 s, 4 s…
            MaxRetryInterval = TimeSpan.FromSeconds(30),       // …never more than 30 s
            NonRetryableExceptionTypes = [typeof(CardDeclinedException)],   // recorded at once, never retried
            ShouldRetry = e => e is TimeoutException or HttpRequestException, // any other error: recorded at once too
        });
        // </snippet:workflows-retry-rule>
        Console.WriteLine(charge.Name);
    }

    public static void DurableOperations(DbosApp dbos, Audit audit)
    {
        // <snippet:workflows-durable-operations>
        dbos.RegisterWorkflow("follow-up", async (WorkflowContext ctx, Order order) =>
        {
            await ctx.SleepAsync(TimeSpan.FromDays(3));   // durable: a restart wakes at the original time
            var at = await ctx.NowAsync();                // recorded: a re-execution gets the same time…
            var token = await ctx.NewGuidAsync();         // …and the same GUID
            await ctx.RunStepAsync("audit", ct => audit.WriteAsync(order, at, ct));
            return token;
        });
        // </snippet:workflows-durable-operations>
    }

    public static async Task HandlesAsync(DbosApp dbos, Workflow<Order, string> checkout, Order order)
    {
        // <snippet:workflows-handles>
        var handle = await checkout.StartAsync(order, new StartOptions { WorkflowId = order.Id });   // returns at once
        var status = await handle.GetStatusAsync();                                                 // PENDING, SUCCESS…
        string receipt = await handle.GetResultAsync();                                             // waits

        // Any process on the same system database, later: by ID.
        var again = await dbos.RetrieveWorkflowAsync<string>(order.Id);
        Console.WriteLine($"{status?.StatusText}: {await again.GetResultAsync()}");
        // </snippet:workflows-handles>
        Console.WriteLine(receipt);
    }

    public static void Children(DbosApp dbos, Shipping shipping, Payments payments)
    {
        // <snippet:workflows-children>
        var ship = dbos.RegisterWorkflow("ship", async (WorkflowContext ctx, Order order) =>
            await ctx.RunStepAsync("label", ct => shipping.ShipAsync(order, ct)));
        var invoice = dbos.RegisterWorkflow("invoice", async (WorkflowContext ctx, Order order) =>
            await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct)));

        dbos.RegisterWorkflow("fulfil", async (WorkflowContext ctx, Order order) =>
        {
            var billing = await invoice.StartAsync(order);   // a child, ID "<fulfil's ID>-0": runs alongside
            var tracking = await ship.RunAsync(order);       // a child, ID "<fulfil's ID>-1": started and awaited
            var payment = await billing.GetResultAsync();    // the wait is recorded too
            return $"{tracking} {payment.ReceiptId}";
        });
        // </snippet:workflows-children>
    }

    public static void Concurrent(DbosApp dbos, Step<Order, int> reserve, Workflow<Order, Payment> invoice, Shipping shipping)
    {
        // <snippet:workflows-concurrent>
        dbos.RegisterWorkflow("prepare", async (WorkflowContext ctx, Order order) =>
        {
            // Each call takes its function ID at once, in call order, before anything runs:
            var reserved = reserve.RunAsync(order);                                        // 0
            var label = ctx.RunStepAsync("label", ct => shipping.ShipAsync(order, ct));    // 1
            var payment = invoice.RunAsync(order);                                         // 2 (start), 3 (result)

            await Task.WhenAll(reserved, label, payment);   // whichever finishes first, the IDs stay the same
            return $"{await reserved} {await label} {(await payment).ReceiptId}";
        });
        // </snippet:workflows-concurrent>
    }

    public static void WhenAny(DbosApp dbos, Shipping shipping, Audit audit)
    {
        // <snippet:workflows-when-any>
        dbos.RegisterWorkflow("ship-or-escalate", async (WorkflowContext ctx, Order order) =>
        {
            var label = ctx.RunStepAsync("label", ct => shipping.ShipAsync(order, ct));
            var deadline = ctx.SleepAsync(TimeSpan.FromMinutes(30));

            // The index of the first to complete, recorded: a re-execution takes the same branch, whichever would
            // finish first this time.
            if (await ctx.WhenAnyAsync([label, deadline]) == 1)
            {
                var at = await ctx.NowAsync();
                await ctx.RunStepAsync("escalate", ct => audit.WriteAsync(order, at, ct));
            }

            return await label;
        });
        // </snippet:workflows-when-any>
    }

    public static void WaitFirst(DbosApp dbos, Workflow<Order, string> viaRoad, Workflow<Order, string> viaRail)
    {
        // <snippet:workflows-wait-first>
        dbos.RegisterWorkflow("fastest-route", async (WorkflowContext ctx, Order order) =>
        {
            var road = await viaRoad.StartAsync(order);
            var rail = await viaRail.StartAsync(order);
            var first = await ctx.WaitFirstAsync([road, rail]);   // recorded as DBOS.waitFirst: the winner's ID
            return await first.GetResultAsync();
        });
        // </snippet:workflows-wait-first>
    }

    public static async Task ErrorsAsync(DbosApp dbos, Payments payments, Shipping shipping, Order order)
    {
        // <snippet:workflows-errors>
        var checkout = dbos.RegisterWorkflow("checkout", async (WorkflowContext ctx, Order order) =>
        {
            try
            {
                var payment = await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct),
                    new StepOptions { MaxAttempts = 3 });
                return payment.ReceiptId;
            }
            catch (StepFailedException e)   // the same, with the same message, on every re-execution
            {
                ctx.Logger.LogWarning("Charging failed after {Attempts} attempts: {Error}", e.AttemptErrors.Count, e.ErrorName);
                throw new InvalidOperationException($"order {order.Id} was not paid: {e.Message}");
            }
        });

        try
        {
            await checkout.RunAsync(order);
        }
        catch (WorkflowFailedException e)   // in every process that awaits it
        {
            Console.WriteLine($"{e.WorkflowId} failed with {e.ErrorName}: {e.Message}");   // InvalidOperationException: …
        }
        // </snippet:workflows-errors>
    }

    public static async Task ManageAsync(DbosApp dbos, string workflowId)
    {
        // <snippet:workflows-manage>
        await dbos.CancelWorkflowAsync(workflowId);                  // stops at its next step; never recovered
        var resumed = await dbos.ResumeWorkflowAsync(workflowId);    // continues from its last finished step
        var copy = await dbos.ForkWorkflowAsync(workflowId, 2);      // a new workflow reusing steps 0 and 1

        var failedToday = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions
        {
            Status = [WorkflowState.Error],
            Name = "checkout",
            StartTime = DateTimeOffset.UtcNow.AddDays(-1),
            Limit = 50,
            SortDescending = true,
        });
        foreach (var step in await dbos.ListWorkflowStepsAsync(workflowId))
        {
            Console.WriteLine($"{step.FunctionId} {step.Name}: {step.RawOutput ?? step.Error?.Message}");
        }

        await dbos.DeleteWorkflowAsync(workflowId, deleteChildren: true);
        // </snippet:workflows-manage>
        Console.WriteLine($"{resumed.WorkflowId} {copy.WorkflowId} {failedToday.Count}");
    }

    public static async Task RegisterClassAsync()
    {
        // <snippet:workflows-register-class>
        // Without a host, the services are DbosConfig.ServiceProvider (AddDbos sets it to the host's).
        var services = new ServiceCollection().AddSingleton<Payments>().BuildServiceProvider();
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "shop", ServiceProvider = services });
        var checkout = dbos.RegisterWorkflow<Checkout, Order, string>("checkout");
        // </snippet:workflows-register-class>
        Console.WriteLine(checkout.Name);
    }

    // <snippet:workflows-ambient-context>
    // A helper called from workflows and from plain code alike.
    public static async Task<Payment> ChargeAsync(Payments payments, Order order, CancellationToken ct)
    {
        if (WorkflowContext.Current is { } ctx)
        {
            return await ctx.RunStepAsync("charge", token => payments.ChargeAsync(order, token), cancellationToken: ct);
        }

        return await payments.ChargeAsync(order, ct);
    }
    // </snippet:workflows-ambient-context>
}
