using System.Text.Json.Nodes;
using Dbos;

namespace DocsSnippets;

/// <summary>The examples of docs/workflows.md and docs/operating.md about workflow arguments, users, attributes, listing and counting.</summary>
public static class WorkflowData
{
    public static async Task ArgumentsAsync(DbosApp dbos, Payments payments, Order order)
    {
        // <snippet:workflows-arguments>
        // Two to four arguments, stored as the workflow's positional arguments: a TypeScript or Python client
        // enqueues it with the same three arguments.
        var refund = dbos.RegisterWorkflow("refund", async (WorkflowContext ctx, Order order, decimal amount, string reason) =>
        {
            var payment = await ctx.RunStepAsync("refund", ct => payments.ChargeAsync(order with { Quantity = 0 }, ct));
            return $"{payment.ReceiptId}: {amount} for {reason}";
        });
        await dbos.LaunchAsync();

        string receipt = await refund.RunAsync(order, 12.50m, "damaged", new StartOptions { WorkflowId = $"refund-{order.Id}" });
        // </snippet:workflows-arguments>
        Console.WriteLine(receipt);
    }

    public static async Task UserAndAttributesAsync(DbosApp dbos, Payments payments, Order order)
    {
        // <snippet:workflows-user-attributes>
        var approve = dbos.RegisterWorkflow("approve", async (WorkflowContext ctx, Order order) =>
        {
            if (!ctx.AuthenticatedRoles.Contains("approver"))
            {
                throw new UnauthorizedAccessException($"{ctx.AuthenticatedUser} may not approve orders.");
            }

            var payment = await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct));
            // Replaces the attributes, recorded so that a re-execution does not write them again.
            await ctx.SetAttributesAsync(new JsonObject { ["customer"] = order.CustomerId, ["stage"] = "charged" });
            return payment.ReceiptId;
        });
        await dbos.LaunchAsync();

        await approve.RunAsync(order, new StartOptions
        {
            WorkflowId = $"approve-{order.Id}",
            AuthenticatedUser = "ada@example.com",       // children started by the workflow run for the same user
            AuthenticatedRoles = ["approver"],
            Attributes = new JsonObject { ["customer"] = order.CustomerId, ["stage"] = "new" },
        });

        var charged = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions
        {
            Attributes = new JsonObject { ["stage"] = "charged" },
            AuthenticatedUser = "ada@example.com",
        });
        // </snippet:workflows-user-attributes>
        Console.WriteLine(charged.Count);
    }

    public static async Task ListAndCountAsync(IDbosOperations dbos)
    {
        // <snippet:workflows-count>
        // Several values per filter: any of them matches.
        var stuck = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions
        {
            Status = [WorkflowState.Error, WorkflowState.MaxRecoveryAttemptsExceeded],
            Names = ["checkout", "refund"],
            HasParent = false,                 // only workflows started from outside a workflow
        });

        // How many workflows of each name are in each state (one count per group).
        foreach (var group in await dbos.CountWorkflowsAsync(
            new ListWorkflowsOptions { StartTime = DateTimeOffset.UtcNow.AddHours(-1) },
            WorkflowGrouping.Name | WorkflowGrouping.Status))
        {
            Console.WriteLine($"{group.Name} {group.StatusText}: {group.Count}");
        }
        // </snippet:workflows-count>
        Console.WriteLine(stuck.Count);
    }
}
