namespace Dbos;

/// <summary>
/// The names under which DBOS reports traces and metrics, for OpenTelemetry:
/// <c>.AddSource(DbosInstrumentation.ActivitySourceName)</c> and <c>.AddMeter(DbosInstrumentation.MeterName)</c>.
/// </summary>
public static class DbosInstrumentation
{
    /// <summary>
    /// The <see cref="System.Diagnostics.ActivitySource"/> of the spans DBOS starts: <c>workflow {name}</c> for each
    /// execution of a workflow, <c>step {name}</c> for each step that runs (not for recorded steps a re-execution
    /// skips), and <c>enqueue {name}</c> when a workflow is put on a queue. A workflow's span continues the trace of the
    /// code that started or enqueued it, also when it runs in another process or after a crash.
    /// </summary>
    public const string ActivitySourceName = "Dbos";

    /// <summary>
    /// The <see cref="System.Diagnostics.Metrics.Meter"/> of DBOS's metrics: <c>dbos.workflow.started</c>,
    /// <c>dbos.workflow.completed</c>, <c>dbos.workflow.failed</c>, <c>dbos.workflow.recovered</c>,
    /// <c>dbos.step.duration</c>, <c>dbos.queue.depth</c> and <c>dbos.queue.wait_time</c>.
    /// </summary>
    public const string MeterName = "Dbos";
}
