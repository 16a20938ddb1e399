using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dbos.Extensions.Hosting;

/// <summary>
/// Launches the <see cref="DbosApp"/> when the host starts and shuts it down when the host stops.
/// <list type="bullet">
/// <item>It launches in <see cref="StartingAsync"/>, before any hosted service starts (ASP.NET Core's server among
/// them): the system database is migrated and the application version registered before a request can start a
/// workflow. Pending workflows are put back on their queue there and run in the background; startup does not wait for them.</item>
/// <item>It shuts down in <see cref="StoppedAsync"/>, after every hosted service has stopped (the server has finished its
/// requests), so DBOS stays usable to the others while they stop. Running steps finish and are recorded; workflows stop
/// at their next step and stay pending for the next launch. The host's shutdown timeout bounds the wait: when it
/// expires, the remaining workflows are stopped at once.</item>
/// </list>
/// </summary>
internal sealed partial class DbosHostedService(DbosApp app, ILogger<DbosHostedService> logger) : IHostedLifecycleService
{
    private int launched;

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        await app.LaunchAsync(cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref launched, 1);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref launched, 0) == 0)
        {
            return;
        }

        try
        {
            await app.ShutdownAsync(cancellationToken).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                ShutdownTimedOut(logger, app.Name);
            }
        }
        finally
        {
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning,
        Message = "DBOS application '{Application}': the host's shutdown timeout expired before every running step finished. The remaining workflows were stopped and stay pending; the next launch recovers them.")]
    private static partial void ShutdownTimedOut(ILogger logger, string application);
}
