using Dbos.Internal;
using Dbos.SystemDatabase;
using Microsoft.Extensions.Logging;

namespace Dbos.Execution;

/// <summary>
/// Keeps this process's liveness and takes over the work of dead executors of the same application. Every
/// <see cref="DbosConfig.LivenessInterval"/> one look at the database proves the liveness is still held (re-taking it
/// if it was lost) and lists the executors with generated IDs that hold pending workflows but no liveness. One seen so
/// in two looks in a row is dead: its workflows go back to their queues, in one statement that only one taker can win.
/// While its own liveness is lost, this process claims no work and writes no checkpoint. After it gets it back, and while
/// the database server has been up for less than the grace period (every session's lock vanishes when it restarts),
/// it judges nobody: the others are re-taking theirs.
/// </summary>
internal sealed class ExecutorWatch : IAsyncDisposable
{
    /// <summary>How long a look may take at least before it counts as unanswered (when the interval is longer than the lapse bound).</summary>
    private static readonly TimeSpan MinimumLookWait = TimeSpan.FromSeconds(1);

    private readonly ExecutorLiveness liveness;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly TimeSpan interval;
    private readonly TimeSpan grace;
    private readonly bool takeOver;
    private readonly Func<string, List<(string WorkflowId, string QueueName)>, Task> tookOver;
    private readonly CancellationTokenSource stop = new();
    private TaskCompletionSource? lost;
    private long lostAt;
    private long judgeAfter;
    private long confirmedAt;
    private Task loop = Task.CompletedTask;

    public ExecutorWatch(
        ExecutorLiveness liveness,
        TimeProvider time,
        ILogger logger,
        TimeSpan interval,
        TimeSpan grace,
        bool takeOver,
        Func<string, List<(string WorkflowId, string QueueName)>, Task> tookOver)
    {
        this.liveness = liveness;
        this.time = time;
        this.logger = logger;
        this.interval = interval;
        this.grace = grace;
        this.takeOver = takeOver;
        this.tookOver = tookOver;
    }

    public ExecutorLiveness Liveness => liveness;

    /// <summary>Whether this process holds its liveness now.</summary>
    public bool IsLive => Volatile.Read(ref lost) is null;

    /// <summary>Completes when this process holds its liveness (at once when it does).</summary>
    public Task WaitLiveAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref lost) is { } signal ? signal.Task.WaitAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>Takes this process's liveness (failing when another live process holds the executor ID) and starts watching.</summary>
    public async Task StartAsync(string executorId, string applicationVersion, CancellationToken cancellationToken)
    {
        // A vanished process's session can linger for the keepalive bound: a restart under its ID waits that long for it.
        confirmedAt = time.GetTimestamp();
        await liveness.AcquireAsync(executorId, applicationVersion, PostgresExecutor.VanishedPeerBound + TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        judgeAfter = time.GetTimestamp();
        loop = Task.Run(() => LoopAsync(stop.Token), CancellationToken.None);
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (!first)
                {
                    await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
                }

                first = false;
                LivenessCheck check;
                var lookedAt = time.GetTimestamp();
                try
                {
                    check = await LookAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                {
                    MarkLost(ex.Message);
                    seen.Clear();
                    continue;
                }

                if (!check.OwnLive)
                {
                    MarkLost("its lock is held by nobody here and could not be taken again");
                    seen.Clear();
                    continue;
                }

                confirmedAt = lookedAt;
                MarkLive();
                if (!takeOver || time.GetTimestamp() < judgeAfter || check.ServerUptime < grace)
                {
                    seen.Clear();
                    continue;
                }

                foreach (var executorId in check.Unlocked)
                {
                    if (seen.Contains(executorId))
                    {
                        var moved = await liveness.TakeOverAsync(executorId, cancellationToken).ConfigureAwait(false);
                        if (moved.Count > 0)
                        {
                            Log.TookOver(logger, executorId, moved.Count);
                            await tookOver(executorId, moved).ConfigureAwait(false);
                        }
                    }
                }

                seen = [.. check.Unlocked];
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.BackgroundFailure(logger, "taking over the work of dead executors", ex);
            }
        }
    }

    /// <summary>
    /// One look; when it has not answered by the liveness's lapse bound after the last confirmed one, the liveness counts
    /// as lost at once (others may take this process's work soon after), and the look is still awaited to its end.
    /// </summary>
    private async Task<LivenessCheck> LookAsync(CancellationToken cancellationToken)
    {
        var look = liveness.CheckAsync(cancellationToken);
        if (liveness.LapseBound is not { } bound)
        {
            return await look.ConfigureAwait(false);
        }

        var left = bound - time.GetElapsedTime(confirmedAt);
        try
        {
            return await look.WaitAsync(left > MinimumLookWait ? left : MinimumLookWait, time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            MarkLost($"no answer from the database within {bound.TotalSeconds:0.#} s of the last confirmation");
            return await look.ConfigureAwait(false);
        }
    }

    private void MarkLost(string reason)
    {
        if (Volatile.Read(ref lost) is null)
        {
            lostAt = time.GetTimestamp();
            Volatile.Write(ref lost, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            Log.LivenessLost(logger, reason);
        }
    }

    private void MarkLive()
    {
        if (Interlocked.Exchange(ref lost, null) is { } signal)
        {
            judgeAfter = time.GetTimestamp() + (long)(grace.TotalSeconds * time.TimestampFrequency);
            Log.LivenessBack(logger, Math.Round(time.GetElapsedTime(lostAt).TotalSeconds, 1), grace.TotalSeconds);
            signal.TrySetResult();
        }
    }

    /// <summary>Stops watching; the liveness itself is released by <see cref="DisposeAsync"/>, once no workflow runs here.</summary>
    public async Task StopAsync()
    {
        if (!stop.IsCancellationRequested)
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }

        await loop.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await liveness.DisposeAsync().ConfigureAwait(false);
        stop.Dispose();
    }
}
