using Dbos;

namespace DocsSnippets;

/// <summary>The examples of docs/schedules.md.</summary>
public static class Schedules
{
    public static async Task ScheduleAsync(DbosApp dbos, Report report, DateTimeOffset lastWeek)
    {
        // <snippet:schedules-register>
        // Declared in code: recorded in the shared workflow_schedules table at launch, fired once per tick.
        dbos.RegisterScheduledWorkflow("nightly-report", "0 0 2 * * *", async (WorkflowContext ctx, DateTimeOffset tick) =>
            await report.RunAsync(tick), new ScheduleOptions { TimeZone = "Europe/Paris", AutomaticBackfill = false });
        // </snippet:schedules-register>

        // <snippet:schedules-runtime>
        // At runtime, from the app or a DbosClient (or the CLI):
        await dbos.CreateScheduleAsync("cleanup", "*/30 * * * * *", new ScheduleOptions { Name = "cleanup-every-30s" });
        await dbos.PauseScheduleAsync("nightly-report");
        await dbos.ResumeScheduleAsync("nightly-report");
        var now = await dbos.TriggerScheduleAsync("nightly-report");                      // run once, now
        await dbos.BackfillScheduleAsync("nightly-report", lastWeek, DateTimeOffset.UtcNow);  // run missed ticks
        // </snippet:schedules-runtime>
        Console.WriteLine(now.WorkflowId);
    }
}
