using Dbos.Internal;
using Dbos.SystemDatabase;
using Microsoft.Extensions.Logging;

namespace Dbos.Execution;

/// <summary>
/// Fires this application's active cron schedules whose workflows this process runs. A supervisor re-reads the
/// schedules table every second, so schedules created, paused, resumed or deleted at runtime (from any process, or the
/// CLI) take effect; one loop per schedule sleeps until the next tick and enqueues its run. Every process that runs the
/// schedule fires every tick, and the tick's workflow ID makes all but one of them a no-op.
/// </summary>
internal sealed class ScheduleRunner : IAsyncDisposable
{
    private static readonly TimeSpan SupervisorInterval = TimeSpan.FromSeconds(1);

    private readonly SystemDatabase.SystemDatabase database;
    private readonly ExternalAccess external;
    private readonly QueueDispatcher dispatcher;
    private readonly IClaimingProcess process;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly string applicationName;
    private readonly List<ScheduleRow> declared = [];
    private readonly Dictionary<string, (ScheduleRow Definition, CancellationTokenSource Stop, Task Loop)> loops = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource stop = new();
    private Task? supervisor;

    public ScheduleRunner(SystemDatabase.SystemDatabase database, ExternalAccess external, QueueDispatcher dispatcher, IClaimingProcess process, TimeProvider time, ILogger logger, string applicationName)
    {
        this.database = database;
        this.external = external;
        this.dispatcher = dispatcher;
        this.process = process;
        this.time = time;
        this.logger = logger;
        this.applicationName = applicationName;
    }

    /// <summary>Adds a schedule declared in code; it is recorded in the schedules table at launch.</summary>
    public void Declare(ScheduleRow schedule)
    {
        if (declared.Any(d => d.ScheduleName == schedule.ScheduleName))
        {
            throw new InvalidOperationException($"A schedule named '{schedule.ScheduleName}' is already registered.");
        }

        declared.Add(schedule);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var schedule in declared)
        {
            await database.ApplyScheduleAsync(schedule, cancellationToken).ConfigureAwait(false);
        }

        supervisor = Task.Run(() => SuperviseAsync(stop.Token), CancellationToken.None);
    }

    private async Task SuperviseAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var wanted = (await database.ListSchedulesAsync(applicationName, cancellationToken).ConfigureAwait(false))
                    .Where(s => s.Status == "ACTIVE" && process.WorkflowNames.Contains(s.WorkflowName))
                    .ToDictionary(s => s.ScheduleName, StringComparer.Ordinal);

                foreach (var (name, loop) in loops.ToList())
                {
                    // Stopped when paused or deleted, restarted when its definition changed.
                    if (!wanted.TryGetValue(name, out var current) || !SameDefinition(current, loop.Definition))
                    {
                        await loop.Stop.CancelAsync().ConfigureAwait(false);
                        loops.Remove(name);
                    }
                }

                foreach (var (name, schedule) in wanted)
                {
                    if (!loops.ContainsKey(name))
                    {
                        var loopStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                        loops[name] = (schedule, loopStop, Task.Run(() => TickLoopAsync(schedule, loopStop.Token), CancellationToken.None));
                    }
                }
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                Log.BackgroundFailure(logger, "reading schedules", ex);
            }

            try
            {
                await Task.Delay(SupervisorInterval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private static bool SameDefinition(ScheduleRow a, ScheduleRow b) =>
        a.Schedule == b.Schedule && a.WorkflowName == b.WorkflowName && a.CronTimezone == b.CronTimezone && a.QueueName == b.QueueName && a.Context == b.Context;

    private async Task TickLoopAsync(ScheduleRow schedule, CancellationToken cancellationToken)
    {
        try
        {
            var cron = CronSchedule.Parse(schedule.Schedule, schedule.ScheduleName);
            var zone = CronSchedule.Zone(schedule.CronTimezone, schedule.ScheduleName);
            var now = time.GetUtcNow();
            if (schedule.AutomaticBackfill && external.ToScheduleLastFired(schedule) is { } lastFired)
            {
                await external.BackfillAsync(schedule, lastFired, now, cancellationToken).ConfigureAwait(false);
            }

            var last = now;
            while (!cancellationToken.IsCancellationRequested)
            {
                if (cron.GetNextOccurrence(last.UtcDateTime, zone) is not { } nextUtc)
                {
                    return;
                }

                var next = new DateTimeOffset(nextUtc, TimeSpan.Zero);
                var wait = next - time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
                }

                try
                {
                    if (await external.EnqueueTickAsync(schedule, next, CronSchedule.TickWorkflowId(schedule.ScheduleName, next), cancellationToken).ConfigureAwait(false))
                    {
                        dispatcher.Wake(schedule.QueueName ?? StatusNames.InternalQueue);
                    }

                    await database.UpdateLastFiredAtAsync(schedule.ScheduleName, CronSchedule.FormatTime(next), cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                {
                    Log.BackgroundFailure(logger, $"firing schedule {schedule.ScheduleName}", ex);
                }

                last = next;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Paused, deleted, changed, or shutting down.
        }
        catch (Exception ex)
        {
            Log.BackgroundFailure(logger, $"running schedule {schedule.ScheduleName}", ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        if (supervisor is not null)
        {
            await supervisor.ConfigureAwait(false);
        }

        await Task.WhenAll(loops.Values.Select(l => l.Loop)).ConfigureAwait(false);
        foreach (var loop in loops.Values)
        {
            loop.Stop.Dispose();
        }

        stop.Dispose();
    }
}
