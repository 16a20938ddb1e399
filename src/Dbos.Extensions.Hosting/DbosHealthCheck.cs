using Dbos.Execution;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Dbos.Extensions.Hosting;

/// <summary>
/// Reports the health of the host's <see cref="DbosApp"/>: unhealthy when it is not launched, shutting down, cannot
/// reach its system database within the timeout, or has lost its liveness; degraded while it is still recovering or,
/// on Postgres, while its notification listener is disconnected. The description gives every reason; the data has
/// each probe's value.
/// </summary>
internal sealed class DbosHealthCheck(DbosApp app, TimeSpan databaseTimeout) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var finding = await app.CheckHealthAsync(databaseTimeout, cancellationToken).ConfigureAwait(false);
        var status = finding.Level switch
        {
            HealthLevel.Healthy => HealthStatus.Healthy,
            HealthLevel.Degraded => HealthStatus.Degraded,
            _ => context.Registration.FailureStatus,
        };
        return new HealthCheckResult(status, finding.Description, finding.Error, finding.Data);
    }
}
