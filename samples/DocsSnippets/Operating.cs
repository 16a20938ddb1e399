using Dbos;
using Microsoft.Extensions.Logging;

namespace DocsSnippets;

/// <summary>The examples of docs/operating.md and of the logging part of docs/hosting-and-telemetry.md.</summary>
public static class Operating
{
    public static async Task ConfigureAsync(ILoggerFactory loggerFactory)
    {
        // <snippet:operating-config>
        await using var dbos = DbosApp.Create(new DbosConfig
        {
            Name = "shop",
            SystemDatabaseUrl = "postgresql://shop:secret@db:5432/shop?sslmode=require",   // better: DBOS_SYSTEM_DATABASE_URL
            SystemDatabasePoolSize = 40,
            PollingInterval = TimeSpan.FromMilliseconds(500),
            LoggerFactory = loggerFactory,
        });
        await dbos.LaunchAsync();   // DbosDatabaseException if the database cannot be reached
        // </snippet:operating-config>
    }

    public static async Task ClientAsync()
    {
        // <snippet:operating-client>
        // What the dbos command line does, from code: a client runs no workflows.
        await using var client = DbosClient.Create(new DbosClientOptions
        {
            SystemDatabaseUrl = Environment.GetEnvironmentVariable("DBOS_SYSTEM_DATABASE_URL"),
            ApplicationName = "shop",
        });
        // Workflows set aside after too many recovery attempts, resumed once the cause is fixed.
        var setAside = await client.ListWorkflowsAsync(new ListWorkflowsOptions
        {
            Status = [WorkflowState.MaxRecoveryAttemptsExceeded],
            StartTime = DateTimeOffset.UtcNow.AddDays(-1),
        });
        await client.ResumeWorkflowsAsync([.. setAside.Select(w => w.WorkflowId)]);
        // </snippet:operating-client>
    }

    public static void Logging(DbosApp dbos, Payments payments)
    {
        // <snippet:telemetry-logging>
        dbos.RegisterWorkflow("checkout", async (WorkflowContext ctx, Order order) =>
        {
            // Logged once: silent while a recovered workflow replays its recorded steps (ctx.IsReplaying).
            // Carries the scope DbosWorkflowId and DbosWorkflowName.
            ctx.Logger.LogInformation("Charging {Customer} for {Item}", order.CustomerId, order.Item);
            var payment = await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct));
            return payment.ReceiptId;
        });
        // </snippet:telemetry-logging>
    }
}
