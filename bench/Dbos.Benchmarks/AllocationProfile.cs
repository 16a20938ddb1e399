using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Dbos.Benchmarks;

/// <summary>
/// Where the managed memory of a step goes: samples the runtime's allocation ticks (one event about every 100 KB
/// allocated, naming the type that crossed the threshold) while sequential 10-step workflows run, and prints the types
/// by estimated bytes per step. The profile behind the "allocated per step" figure.
/// </summary>
internal static class AllocationProfile
{
    public static async Task RunAsync(string backend, Target target, int workflows)
    {
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "alloc-profile", SystemDatabaseUrl = target.SystemDatabaseUrl, ApplicationVersion = "bench" });
        var step = dbos.RegisterStep("step", (int i, CancellationToken _) => Task.FromResult(i + 1));
        var tenSteps = dbos.RegisterWorkflow("ten-steps", async (WorkflowContext ctx, int i) =>
        {
            for (var s = 0; s < 10; s++)
            {
                i = await step.RunAsync(i);
            }

            return i;
        });
        await dbos.LaunchAsync();
        for (var i = 0; i < 200; i++)
        {
            await tenSteps.RunAsync(i);
        }

        using var listener = new AllocationListener();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < workflows; i++)
        {
            await tenSteps.RunAsync(i);
        }

        var total = GC.GetTotalAllocatedBytes(precise: true) - before;
        var steps = workflows * 10.0;
        Console.WriteLine($"{backend}: {total / steps:0} bytes allocated per step of a 10-step workflow (workflow overhead included), sampled types:");
        var sampled = listener.Bytes.Values.Sum();
        foreach (var (type, bytes) in listener.Bytes.OrderByDescending(p => p.Value).Take(30))
        {
            Console.WriteLine($"  {bytes * (total / (double)Math.Max(1, sampled)) / steps,8:0} B/step  {type}");
        }
    }

    private sealed class AllocationListener : EventListener
    {
        private const EventKeywords GcKeyword = (EventKeywords)0x1;

        public ConcurrentDictionary<string, long> Bytes { get; } = new();

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            // GCAllocationTick_V4: the type name and the bytes allocated since the previous tick.
            if (eventData.EventId != 10 || eventData.Payload is null || eventData.PayloadNames is null)
            {
                return;
            }

            var name = eventData.Payload[eventData.PayloadNames.IndexOf("TypeName")] as string ?? "?";
            var amount = Convert.ToInt64(eventData.Payload[eventData.PayloadNames.IndexOf("AllocationAmount64")], System.Globalization.CultureInfo.InvariantCulture);
            Bytes.AddOrUpdate(name, amount, (_, b) => b + amount);
        }
    }
}
