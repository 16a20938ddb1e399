using Dbos;

namespace DocsSnippets;

/// <summary>The examples of docs/messages.md.</summary>
public static class Messages
{
    public static async Task ExpenseReportAsync(DbosApp dbos, string workflowId)
    {
        // <snippet:messages-workflow>
        var approval = dbos.RegisterWorkflow("expense-report", async (WorkflowContext ctx, Expense expense) =>
        {
            await ctx.SetEventAsync("status", "waiting for approval");           // anyone can read it: GetEventAsync
            await ctx.WriteStreamAsync("progress", $"submitted {expense.Amount}");  // readers follow it: ReadStreamAsync
            var answer = await ctx.RecvAsync<Answer>("approval", TimeSpan.FromDays(2));   // durable wait; null on timeout
            await ctx.SetEventAsync("status", answer?.Approved == true ? "approved" : "not approved");
            await ctx.CloseStreamAsync("progress");
            return answer?.Approved ?? false;
        });
        // </snippet:messages-workflow>
        Console.WriteLine(approval.Name);

        // <snippet:messages-outside>
        // From anywhere: the same application, another process (DbosClient), even SQL (dbos.send_message).
        await dbos.SendAsync(workflowId, new Answer(true, "grace"), topic: "approval", idempotencyKey: "approval-42");
        var status = await dbos.GetEventAsync<string>(workflowId, "status", TimeSpan.FromSeconds(10));
        await foreach (var line in dbos.ReadStreamAsync<string>(workflowId, "progress")) Console.WriteLine(line);

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = "postgresql://…" });
        await client.SendAsync(workflowId, new Answer(false, "bob"), "approval");
        // </snippet:messages-outside>
        Console.WriteLine(status);
    }

    public static void Between(DbosApp dbos)
    {
        // <snippet:messages-between-workflows>
        dbos.RegisterWorkflow("manager", async (WorkflowContext ctx, string reportId) =>
        {
            var submitted = await ctx.GetEventAsync<string>(reportId, "status");   // waits up to 60 s; recorded
            await ctx.SendAsync(reportId, new Answer(true, ctx.WorkflowId), "approval");   // sent once, even after a crash
            return submitted;
        });
        // </snippet:messages-between-workflows>
    }
}
