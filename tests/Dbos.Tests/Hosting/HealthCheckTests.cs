using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Dbos.Tests.Hosting;

/// <summary><c>AddDbos().AddHealthChecks()</c>: what it reports when everything works, and when each thing it probes fails.</summary>
public class HealthCheckTests
{
    private static async Task<HealthReportEntry> CheckAsync(IHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync().WaitAsync(TestHosts.Deadline);
        return report.Entries[DbosBuilderExtensions.HealthCheckName];
    }

    private static IHost Build(TestDatabase db, string? url = null, TimeSpan? timeout = null)
    {
        var builder = TestHosts.Builder();
        builder.Services.AddTestDbos(db, configure: c =>
        {
            c.SystemDatabaseUrl = url ?? c.SystemDatabaseUrl;
            c.LivenessInterval = TimeSpan.FromMilliseconds(250);
        }).AddHealthChecks(timeout: timeout ?? TimeSpan.FromSeconds(2));
        return builder.Build();
    }

    private static async Task<HealthReportEntry> EventuallyAsync(IHost host, Func<HealthReportEntry, bool> condition, string what)
    {
        HealthReportEntry entry = default;
        try
        {
            await Eventually.HoldsAsync(async () => condition(entry = await CheckAsync(host)), what, TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message} Last: {entry.Status}, {entry.Description}", ex);
        }

        return entry;
    }

    [Theory, BothBackends]
    public async Task Healthy_once_launched_with_each_probe_in_the_data_and_unhealthy_before(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var host = Build(db);

        var before = await CheckAsync(host);
        Assert.Equal(HealthStatus.Unhealthy, before.Status);
        Assert.Contains("not launched", before.Description, StringComparison.Ordinal);

        await host.StartAsync();
        var entry = await CheckAsync(host);
        Assert.True(entry.Status == HealthStatus.Healthy, entry.Description);
        Assert.Equal(true, entry.Data["databaseReachable"]);
        Assert.Equal(true, entry.Data["live"]);
        Assert.Equal(true, entry.Data["recoveryDispatched"]);
        Assert.Equal(backend == Backend.Postgres, entry.Data.ContainsKey("listenerConnected"));
        await host.StopAsync();
    }

    /// <summary>On SQLite the database is a local file: "unreachable" is its file gone from its path (writes are then refused).</summary>
    [Fact]
    public async Task On_sqlite_a_deleted_database_file_is_unhealthy()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        using var host = Build(db);
        await host.StartAsync();
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status);

        var file = db.Url["sqlite:///".Length..];
        File.Move(file, file + ".moved");
        var entry = await CheckAsync(host);
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains("no longer exists", entry.Description, StringComparison.Ordinal);
        Assert.Equal(false, entry.Data["databaseReachable"]);

        File.Move(file + ".moved", file);
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status);
        await host.StopAsync();
    }

    [Fact]
    public async Task On_postgres_a_stopped_server_is_unhealthy_within_the_checks_timeout_and_healthy_again_once_back()
    {
        await using var cluster = await PrivatePostgres.StartAsync();
        await cluster.CreateDatabaseAsync("dbos_tests");
        await using var db = TestDatabase.OnPostgres(cluster.Url("dbos_tests"));
        using var host = Build(db, timeout: TimeSpan.FromSeconds(2));
        await host.StartAsync();
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status);

        await cluster.StopAsync();
        // The check itself is bounded by its timeout: the database part gives up after 2 s, whatever the driver does.
        var entry = await CheckAsync(host);
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Equal(false, entry.Data["databaseReachable"]);
        Assert.Contains("system database", entry.Description, StringComparison.Ordinal);

        await cluster.StartAsync();
        await EventuallyAsync(host, e => e.Status == HealthStatus.Healthy, "healthy again once the server is back");
        await host.StopAsync();
    }

    [Fact]
    public async Task On_postgres_a_dropped_listener_is_degraded_and_a_lost_liveness_unhealthy()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var role = "dbos_health_" + Guid.NewGuid().ToString("N")[..10];
        var admin = TestDatabase.PostgresUrl("postgres");
        await TestDatabase.ExecuteOnAsync(admin, $"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'health'");
        try
        {
            var url = new UriBuilder(db.Url) { UserName = role, Password = "health" }.Uri.ToString();
            using var host = Build(db, url);
            await host.StartAsync();
            Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Status);

            // The listener's session is ended each time it reconnects (with a growing backoff): the rest works on.
            using var stopKilling = new CancellationTokenSource();
            var killer = Task.Run(async () =>
            {
                while (!stopKilling.IsCancellationRequested)
                {
                    await TestDatabase.QueryOnAsync(admin, $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}' AND application_name LIKE '% listener'");
                    await Task.Delay(50);
                }
            });
            var degraded = await EventuallyAsync(host, e => e.Status == HealthStatus.Degraded, "degraded without the listener");
            await stopKilling.CancelAsync();
            await killer;
            Assert.Contains("listener", degraded.Description, StringComparison.Ordinal);
            Assert.Equal(false, degraded.Data["listenerConnected"]);
            Assert.Equal(true, degraded.Data["live"]);
            Assert.Equal(true, degraded.Data["databaseReachable"]);

            // The role can no longer log in and its liveness session ends: it cannot take its liveness again.
            await TestDatabase.ExecuteOnAsync(admin, $"ALTER ROLE {role} NOLOGIN");
            Assert.Equal(
                ["True"],
                await TestDatabase.QueryOnAsync(admin, $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}' AND application_name LIKE 'dbos-live %'"));
            var unhealthy = await EventuallyAsync(host, e => e.Data["live"] is false, "unhealthy without liveness");
            Assert.Equal(HealthStatus.Unhealthy, unhealthy.Status);
            Assert.Contains("lost its liveness", unhealthy.Description, StringComparison.Ordinal);

            await TestDatabase.ExecuteOnAsync(admin, $"ALTER ROLE {role} LOGIN");
            await EventuallyAsync(host, e => e.Status == HealthStatus.Healthy, "healthy again once it can log in");
            await host.StopAsync();
        }
        finally
        {
            await TestDatabase.ExecuteOnAsync(admin, $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'");
            await TestDatabase.ExecuteOnAsync(db.Url, $"REASSIGN OWNED BY {role} TO CURRENT_USER");
            await TestDatabase.ExecuteOnAsync(admin, $"DROP ROLE IF EXISTS {role}");
        }
    }
}
