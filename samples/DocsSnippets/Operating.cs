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

    public static async Task RetentionAsync(IDbosOperations dbos)
    {
        // <snippet:operating-retention>
        // Remove finished workflows older than 30 days, and beyond the newest million, 1000 per transaction.
        var removed = await dbos.GarbageCollectAsync(new GarbageCollectOptions
        {
            CreatedBefore = DateTimeOffset.UtcNow.AddDays(-30),
            KeepNewest = 1_000_000,
        });

        // Cancel every workflow still unfinished after a day, wherever it runs.
        var cancelled = await dbos.GlobalTimeoutAsync(DateTimeOffset.UtcNow.AddDays(-1));
        // </snippet:operating-retention>
        Console.WriteLine($"{removed} {cancelled.Count}");
    }

    public static DbosConfig AutomaticRetention()
    {
        // <snippet:operating-retention-config>
        var config = new DbosConfig
        {
            Name = "shop",
            // Every hour, one of the application's processes removes finished workflows older than a week.
            Retention = new RetentionOptions { MaxAge = TimeSpan.FromDays(7), Interval = TimeSpan.FromHours(1) },
        };
        // </snippet:operating-retention-config>
        return config;
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
