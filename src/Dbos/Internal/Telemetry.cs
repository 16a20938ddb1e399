using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Dbos.Internal;

/// <summary>The one <see cref="ActivitySource"/> and one <see cref="Meter"/> of the library, and their instruments.</summary>
internal static class Telemetry
{
    private static readonly string? Version = typeof(Telemetry).Assembly.GetName().Version?.ToString();
    private static readonly ConcurrentDictionary<object, Func<IEnumerable<Measurement<long>>>> QueueDepthSources = new();

    public static readonly ActivitySource Source = new(DbosInstrumentation.ActivitySourceName, Version);

    public static readonly Meter Meter = new(DbosInstrumentation.MeterName, Version);

    public static readonly Counter<long> WorkflowsStarted =
        Meter.CreateCounter<long>("dbos.workflow.started", "{workflow}", "Workflow executions started in this process, first runs and re-executions alike.");

    public static readonly Counter<long> WorkflowsCompleted =
        Meter.CreateCounter<long>("dbos.workflow.completed", "{workflow}", "Workflows that finished successfully in this process.");

    public static readonly Counter<long> WorkflowsFailed =
        Meter.CreateCounter<long>("dbos.workflow.failed", "{workflow}", "Workflows that finished with an error in this process.");

    public static readonly Counter<long> WorkflowsRecovered =
        Meter.CreateCounter<long>("dbos.workflow.recovered", "{workflow}", "Pending workflows this process took back after a crash or restart.");

    public static readonly Histogram<double> StepDuration =
        Meter.CreateHistogram<double>("dbos.step.duration", "s", "How long steps ran (recorded steps that a re-execution skips are not counted).");

    public static readonly Histogram<double> QueueWaitTime =
        Meter.CreateHistogram<double>("dbos.queue.wait_time", "s", "How long workflows waited on their queue, from enqueue to dequeue.");

    public static readonly ObservableGauge<long> QueueDepth =
        Meter.CreateObservableGauge("dbos.queue.depth", ObserveQueueDepths, "{workflow}", "Workflows waiting on each queue this process serves (ENQUEUED or DELAYED).");

    /// <summary>Adds a source of queue depths (a running application), until the returned value is disposed.</summary>
    public static IDisposable AddQueueDepthSource(Func<IEnumerable<Measurement<long>>> observe)
    {
        var key = new object();
        QueueDepthSources[key] = observe;
        return new Removal(() => QueueDepthSources.TryRemove(key, out _));
    }

    private static IEnumerable<Measurement<long>> ObserveQueueDepths() => QueueDepthSources.Values.SelectMany(observe => observe()).ToList();

    /// <summary>Marks a span as failed with the exception's type, as OpenTelemetry's conventions ask.</summary>
    public static void RecordError(Activity? activity, Exception error, string errorType)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.SetTag("error.type", errorType);
    }

    private sealed class Removal(Action remove) : IDisposable
    {
        public void Dispose() => remove();
    }
}
