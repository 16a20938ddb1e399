using Dbos.Internal;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Dbos.SystemDatabase;

/// <summary>
/// One connection per process that LISTENs on the shared schema's channels and turns each NOTIFY into a
/// <see cref="ChangeNotifier"/> signal. When the connection is lost, waiters fall back to polling (and are woken to
/// re-read what they may have missed) until it is re-established.
/// </summary>
internal sealed class PostgresListener : IAsyncDisposable
{
    private static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly Func<CancellationToken, Task<NpgsqlConnection>> connect;
    private readonly ChangeNotifier notifier;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly CancellationTokenSource stop = new();
    private readonly TaskCompletionSource firstConnection = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? loop;

    public PostgresListener(Func<CancellationToken, Task<NpgsqlConnection>> connect, ChangeNotifier notifier, ILogger logger, TimeProvider time)
    {
        this.connect = connect;
        this.notifier = notifier;
        this.logger = logger;
        this.time = time;
    }

    /// <summary>Completes once the first connection listens, or failed once (leaving waiters to poll).</summary>
    public Task FirstAttempt => firstConnection.Task;

    /// <summary>Starts listening; completes once the first connection listens (or failed once, leaving waiters to poll).</summary>
    public Task StartAsync()
    {
        loop ??= Task.Run(() => ListenLoopAsync(stop.Token));
        return firstConnection.Task;
    }

    private async Task ListenLoopAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(250);
        var lost = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            NpgsqlConnection? connection = null;
            try
            {
                connection = await connect(cancellationToken).ConfigureAwait(false);
                connection.Notification += OnNotification;
                foreach (var channel in ChangeNotifier.Channels.Keys)
                {
                    var listen = new NpgsqlCommand($"LISTEN {channel}", connection);
                    await using (listen.ConfigureAwait(false))
                    {
                        await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                notifier.SeesOtherProcesses = true;
                if (lost)
                {
                    Log.ListenerBack(logger);
                    lost = false;
                }

                firstConnection.TrySetResult();
                notifier.SignalAll(); // Anything written while we were not listening is read again.
                backoff = TimeSpan.FromMilliseconds(250);
                while (!cancellationToken.IsCancellationRequested)
                {
                    if (!await connection.WaitAsync(PingInterval, cancellationToken).ConfigureAwait(false))
                    {
                        // Quiet for a while: make sure the connection is still alive.
                        var ping = new NpgsqlCommand("SELECT 1", connection);
                        await using (ping.ConfigureAwait(false))
                        {
                            await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                lost = true;
                notifier.SeesOtherProcesses = false;
                firstConnection.TrySetResult();
                notifier.SignalAll();
                Log.ListenerLost(logger, backoff.TotalSeconds, ex);
            }
            finally
            {
                if (connection is not null)
                {
                    connection.Notification -= OnNotification;
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            }

            try
            {
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }

        notifier.SeesOtherProcesses = false;
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        if (ChangeNotifier.Channels.TryGetValue(e.Channel, out var kind))
        {
            notifier.Signal(kind, e.Payload);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }

        stop.Dispose();
    }
}
