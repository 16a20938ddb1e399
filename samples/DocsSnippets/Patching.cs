using Dbos;

namespace DocsSnippets;

/// <summary>The patching examples of docs/workflows.md.</summary>
public static class Patching
{
    public static DbosApp Configure(string url)
    {
        // <snippet:patching-config>
        // The application version stays PATCHING_ENABLED from build to build, so a new build recovers the old one's work.
        var dbos = DbosApp.Create(new DbosConfig { Name = "shop", SystemDatabaseUrl = url, EnablePatching = true });
        // </snippet:patching-config>
        return dbos;
    }

    public static void Patch(DbosApp dbos, Payments payments, Shipping shipping)
    {
        // <snippet:patching-patch>
        dbos.RegisterWorkflow("checkout", async (WorkflowContext ctx, Order order) =>
        {
            var payment = await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct));
            if (await ctx.PatchAsync("ship-with-tracking"))
            {
                // New executions, and executions that reach this point under this build, ship with tracking.
                return await ctx.RunStepAsync("ship-tracked", ct => shipping.ShipAsync(order, ct));
            }

            // Executions that predate the patch (they recorded "ship" here) keep the old code.
            await ctx.RunStepAsync("ship", ct => shipping.ShipAsync(order, ct));
            return payment.ReceiptId;
        });
        // </snippet:patching-patch>
    }

    public static void Deprecate(DbosApp dbos, Payments payments, Shipping shipping)
    {
        // <snippet:patching-deprecate>
        dbos.RegisterWorkflow("checkout", async (WorkflowContext ctx, Order order) =>
        {
            await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct));
            await ctx.DeprecatePatchAsync("ship-with-tracking");   // skips the marker where one was recorded
            return await ctx.RunStepAsync("ship-tracked", ct => shipping.ShipAsync(order, ct));
        });
        // </snippet:patching-deprecate>
    }
}
