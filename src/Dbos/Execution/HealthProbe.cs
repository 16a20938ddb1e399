using Dbos.Internal;

namespace Dbos.Execution;

/// <summary>How healthy an application is, for a health check: the worst finding, the reasons, and what was probed.</summary>
internal enum HealthLevel
{
    Healthy,
    Degraded,
    Unhealthy,
}

/// <summary>The outcome of <see cref="HealthProbe.CheckAsync"/>.</summary>
internal sealed record HealthFinding(HealthLevel Level, string Description, IReadOnlyDictionary<string, object> Data, Exception? Error = null);

/// <summary>
/// Probes what an application needs to do its work: launched (and not shutting down), the system database answering a
/// cheap read within a bound, the pending work of this executor recovered and its queues dispatching, its liveness held
/// (without it, it claims nothing and writes no checkpoint), and on Postgres the notification listener connected
/// (without it, waits fall back to polling: degraded, not broken).
/// </summary>
internal static class HealthProbe
{
    public static async Task<HealthFinding> CheckAsync(WorkflowEngine engine, TimeSpan databaseTimeout, CancellationToken cancellationToken)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["executorId"] = engine.ExecutorId,
            ["applicationVersion"] = engine.ApplicationVersion,
            ["launched"] = engine.IsLaunched,
        };
        if (!engine.IsLaunched)
        {
            return new(HealthLevel.Unhealthy, "DBOS is not launched.", data);
        }

        if (engine.IsShuttingDown)
        {
            return new(HealthLevel.Unhealthy, "DBOS is shutting down.", data);
        }

        var level = HealthLevel.Healthy;
        var reasons = new List<string>();
        Exception? error = null;
        void Found(HealthLevel found, string reason)
        {
            level = (HealthLevel)Math.Max((int)level, (int)found);
            reasons.Add(reason);
        }

        try
        {
            // The driver may wait for a lost server: the bound holds whatever it does.
            await engine.Database.PingAsync(cancellationToken).WaitAsync(databaseTimeout, engine.Database.Executor.Time, cancellationToken).ConfigureAwait(false);
            data["databaseReachable"] = true;
        }
        catch (TimeoutException ex)
        {
            data["databaseReachable"] = false;
            error = ex;
            Found(HealthLevel.Unhealthy, $"The system database {engine.Database.Description} did not answer within {databaseTimeout.TotalSeconds:0.###} s.");
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            data["databaseReachable"] = false;
            error = ex;
            Found(HealthLevel.Unhealthy, $"The system database {engine.Database.Description} is unreachable: {DatabaseUrl.MaskRaw(ex.Message)}");
        }

        data["recoveryDispatched"] = engine.RecoveryDispatched;
        if (!engine.RecoveryDispatched)
        {
            Found(HealthLevel.Degraded, "Launching: this executor's pending workflows are not yet recovered and its queues not yet dispatching.");
        }

        data["live"] = engine.Watch.IsLive;
        if (!engine.Watch.IsLive)
        {
            Found(HealthLevel.Unhealthy, "This process has lost its liveness: it claims no work and writes no checkpoint until it has it back, and other processes may take over its workflows.");
        }

        if (engine.Database.ListenerConnected is not null)
        {
            // Launching does not wait for the listener's first connection; a probe right after it does, within its bound.
            try
            {
                await engine.Database.ListenerFirstAttempt.WaitAsync(databaseTimeout, engine.Database.Executor.Time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Still connecting: reported as disconnected below.
            }
        }

        if (engine.Database.ListenerConnected is { } listening)
        {
            data["listenerConnected"] = listening;
            if (!listening)
            {
                Found(HealthLevel.Degraded, "The notification listener is disconnected: waits for messages, events and results poll the database until it reconnects.");
            }
        }

        data["runningWorkflows"] = engine.RunningCount;
        return new(level, level == HealthLevel.Healthy ? "DBOS is healthy." : string.Join(" ", reasons), data, error);
    }
}
