using System.ComponentModel;
using System.Diagnostics;
using Dbos.Tests.Infrastructure;
using Npgsql;
using Xunit.Abstractions;
using static Dbos.Tests.Infrastructure.Replica;

namespace Dbos.Tests;

/// <summary>
/// Postgres-only faults under real replica processes: the server restarting, a process cut off by the network without
/// its sockets closing, and a live process's liveness session killed by an operator. The first two run on a Postgres
/// cluster of their own, so they never disturb the shared server. They need root, iproute2's <c>ip</c> and the Postgres
/// server binaries, and fail (never skip) when one is missing.
/// </summary>
public class PartitionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Three_replicas_ride_out_a_Postgres_restart_with_no_step_run_twice_and_no_takeover()
    {
        await using var cluster = await PrivatePostgres.StartAsync();
        await cluster.CreateDatabaseAsync("dbos_tests");
        await using var db = TestDatabase.OnPostgres(cluster.Url("dbos_tests"));
        await using var quiet1 = await StartReplicaAsync(db, "quiet1");
        await using var quiet2 = await StartReplicaAsync(db, "quiet2");
        await using var busy = await StartReplicaAsync(db, "busy", start: 6, steps: 12);
        await Eventually.HoldsAsync(async () => (await RecordedAsync(db)).Count >= 12, "the busy replica checkpointed some steps");

        var restart = Stopwatch.StartNew();
        await cluster.RestartAsync();
        output.WriteLine($"Postgres restarted in {restart.Elapsed.TotalSeconds:F2} s");

        // The restart landed in the middle of the work.
        Assert.InRange((await RecordedAsync(db)).Count, 12, (6 * 12) - 1);
        await AllSucceededAsync(db, "wf", 6, TimeSpan.FromSeconds(60));
        output.WriteLine($"all workflows done {restart.Elapsed.TotalSeconds:F2} s after the restart began");

        Replica[] all = [quiet1, quiet2, busy];
        Report(all);
        var runs = Runs(all);
        Assert.All(runs.GroupBy(r => (r.Workflow, r.Step)), g => Assert.Single(g));
        Assert.Equal(6 * 12, runs.Count);
        Assert.Equal(6 * 12, (await RecordedAsync(db)).Count);

        // Every session's lock vanished at once: each process noticed and got its own back, and nobody took anybody over.
        foreach (var replica in all)
        {
            Assert.True(replica.Logged(44).Count == 0, $"{replica.ExecutorId} took over after a restart:\n{replica.Process.Output}");
            Assert.True(replica.Logged(42).Count > 0, $"{replica.ExecutorId} logged no liveness lost:\n{replica.Process.Output}");
            Assert.True(replica.Logged(43).Count > 0, $"{replica.ExecutorId} logged no liveness back:\n{replica.Process.Output}");
            Assert.True(!replica.Process.StandardOutput.Contains("event 4 ", StringComparison.Ordinal), $"{replica.ExecutorId} failed a workflow:\n{replica.Process.Output}");
        }
    }

    [Fact]
    public async Task A_replica_cut_off_by_a_partition_is_taken_over_well_under_the_TCP_timeout_and_writes_nothing_once_it_heals()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var ns = "dbos-part-" + tag;
        var hostVeth = "dbp" + tag;
        var nsVeth = "dbq" + tag;

        // A /30 of our own, absent from the host's addresses.
        var hostAddresses = await IpAsync("-4", "-o", "addr", "show");
        string subnet;
        do
        {
            subnet = $"10.254.{Random.Shared.Next(1, 255)}.{Random.Shared.Next(0, 64) * 4}";
        }
        while (hostAddresses.Contains(subnet[..subnet.LastIndexOf('.')] + ".", StringComparison.Ordinal));

        var prefix = subnet[..subnet.LastIndexOf('.')];
        var last = int.Parse(subnet[(subnet.LastIndexOf('.') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        var hostAddress = $"{prefix}.{last + 1}";
        var nsAddress = $"{prefix}.{last + 2}";
        Replica? victim = null;
        try
        {
            await IpAsync("netns", "add", ns);
            await IpAsync("link", "add", hostVeth, "type", "veth", "peer", "name", nsVeth);
            await IpAsync("link", "set", nsVeth, "netns", ns);
            await IpAsync("addr", "add", hostAddress + "/30", "dev", hostVeth);
            await IpAsync("link", "set", hostVeth, "up");
            await IpAsync("netns", "exec", ns, "ip", "addr", "add", nsAddress + "/30", "dev", nsVeth);
            await IpAsync("netns", "exec", ns, "ip", "link", "set", nsVeth, "up");
            await IpAsync("netns", "exec", ns, "ip", "link", "set", "lo", "up");

            await using var cluster = await PrivatePostgres.StartAsync($"127.0.0.1,{hostAddress}", $"{subnet}/30");
            await cluster.CreateDatabaseAsync("dbos_tests");
            await using var db = TestDatabase.OnPostgres(cluster.Url("dbos_tests"));
            await using var survivor = await StartReplicaAsync(db, "survivor");

            // Past the grace period a young server gets (DbosConfig.LivenessGracePeriod, 10 s), so the time measured below is the partition's alone.
            await Eventually.HoldsAsync(
                async () => await db.CountAsync("SELECT (now() - pg_postmaster_start_time() > interval '11 seconds')::int") == 1,
                "the cluster is past the grace period",
                TimeSpan.FromSeconds(30));
            victim = await StartReplicaAsync(
                db,
                "victim",
                start: 5,
                steps: 20,
                stepMs: 400,
                extra: new() { ["DBOS_TEST_URL"] = cluster.Url("dbos_tests", hostAddress) },
                wrapper: ["ip", "netns", "exec", ns]);
            try
            {
                await Eventually.HoldsAsync(async () => (await RecordedAsync(db)).Select(r => r.Workflow).Distinct().Count() == 5, "every workflow of the victim checkpointed a step");

                // The victim's sockets stay open: its packets just stop arriving, as in a partition.
                Assert.Equal(5, await db.CountAsync($"SELECT count(*) FROM {{workflow_status}} WHERE executor_id = '{victim.ExecutorId}' AND status = 'PENDING'"));
                await IpAsync("link", "set", hostVeth, "down");
                var cut = Stopwatch.StartNew();
                var cutOff = victim;
                async Task<TimeSpan> NoticedAsync()
                {
                    await cutOff.Process.WaitForLineAsync("log 42 ", TimeSpan.FromSeconds(40));
                    return cut.Elapsed;
                }

                var noticed = NoticedAsync();
                await Eventually.HoldsAsync(
                    async () => await db.CountAsync($"SELECT count(*) FROM {{workflow_status}} WHERE executor_id = '{victim.ExecutorId}' AND status = 'PENDING'") == 0,
                    "the cut-off executor's workflows are taken over",
                    TimeSpan.FromSeconds(40));
                var takeover = cut.Elapsed;
                var recordedAtTakeover = await RecordedAsync(db);
                output.WriteLine($"taken over {takeover.TotalSeconds:F2} s after the link went down");
                Assert.True(takeover < TimeSpan.FromSeconds(20), $"taken over {takeover.TotalSeconds:F1} s after the link went down");
                await survivor.Process.WaitForLineAsync("log 44 ", TimeSpan.FromSeconds(10));

                await AllSucceededAsync(db, "wf", 5, TimeSpan.FromSeconds(60));
                var recorded = await RecordedAsync(db);
                Assert.Equal(5 * 20, recorded.Count);
                var afterTakeover = recorded.Except(recordedAtTakeover).ToList();
                Assert.NotEmpty(afterTakeover);
                Assert.All(afterTakeover, r => Assert.Equal(survivor.Pid, r.Process));
                var noticedAt = await noticed;
                output.WriteLine($"the victim noticed its lost liveness {noticedAt.TotalSeconds:F2} s after the link went down");

                // It stops claiming work and writing checkpoints before anybody may take its work: it counts its liveness lost
                // before the server can end its session (the keepalive bound), so before any takeover.
                Assert.True(noticedAt < takeover, $"the victim noticed its lost liveness {noticedAt.TotalSeconds:F2} s after the link went down, after the takeover at {takeover.TotalSeconds:F2} s");

                // Healed: the victim gets its liveness back, and what it was in the middle of writes nothing.
                await IpAsync("link", "set", hostVeth, "up");
                var healed = Stopwatch.StartNew();
                await victim.Process.WaitForLineAsync("log 43 ", TimeSpan.FromSeconds(30));
                output.WriteLine($"the victim got its liveness back {healed.Elapsed.TotalSeconds:F2} s after the link came up");
                await VictimWroteNothingOnceBackAsync(db, survivor, victim, recorded, TimeSpan.FromSeconds(4));
            }
            catch
            {
                await DiagnoseAsync(db, survivor, victim);
                throw;
            }
        }
        finally
        {
            if (victim is not null)
            {
                await victim.DisposeAsync();
            }

            await IpQuietlyAsync("netns", "del", ns);
            await IpQuietlyAsync("link", "del", hostVeth);
        }
    }

    /// <param name="everySession">
    /// Whether the victim's other sessions end too: then each statement it runs needs a new login, which is refused, and its
    /// work must wait as for a lost server rather than fail with the refusal.
    /// </param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_live_replica_whose_liveness_session_is_terminated_is_taken_over_and_writes_nothing_once_it_is_back(bool everySession)
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var role = "dbos_victim_" + Guid.NewGuid().ToString("N")[..10];
        await AdminAsync($"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'victim'");
        try
        {
            await using var survivor = await StartReplicaAsync(db, "survivor");
            var victimUrl = new UriBuilder(db.Url) { UserName = role, Password = "victim" }.Uri.ToString();
            await using var victim = await StartReplicaAsync(db, "victim", start: 5, steps: 20, stepMs: 400, extra: new() { ["DBOS_TEST_URL"] = victimUrl });
            try
            {
                await Eventually.HoldsAsync(async () => (await RecordedAsync(db)).Select(r => r.Workflow).Distinct().Count() == 5, "every workflow of the victim checkpointed a step");

                // The victim can no longer log in, so it cannot take its liveness again; its other sessions live on.
                await AdminAsync($"ALTER ROLE {role} NOLOGIN");
                var terminated = await TestDatabase.QueryOnAsync(
                    TestDatabase.PostgresUrl("postgres"),
                    $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'dbos-live {victim.ExecutorId}%'");
                Assert.Equal(["True"], terminated);
                if (everySession)
                {
                    await AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'");
                }

                var killed = Stopwatch.StartNew();
                async Task<TimeSpan> NoticedAsync()
                {
                    await victim.Process.WaitForLineAsync("log 42 ", TimeSpan.FromSeconds(30));
                    return killed.Elapsed;
                }

                var noticed = NoticedAsync();
                await Eventually.HoldsAsync(
                    async () => await db.CountAsync($"SELECT count(*) FROM {{workflow_status}} WHERE executor_id = '{victim.ExecutorId}' AND status = 'PENDING'") == 0,
                    "the executor without liveness has its workflows taken over",
                    TimeSpan.FromSeconds(30));
                var recordedAtTakeover = await RecordedAsync(db);
                output.WriteLine($"taken over {killed.Elapsed.TotalSeconds:F2} s after its liveness session was terminated");
                await survivor.Process.WaitForLineAsync("log 44 ", TimeSpan.FromSeconds(10));

                await AllSucceededAsync(db, "wf", 5, TimeSpan.FromSeconds(60));
                output.WriteLine($"the victim noticed its lost liveness {(await noticed).TotalSeconds:F2} s after the termination");
                var recorded = await RecordedAsync(db);
                Assert.Equal(5 * 20, recorded.Count);
                var afterTakeover = recorded.Except(recordedAtTakeover).ToList();
                Assert.NotEmpty(afterTakeover);
                Assert.All(afterTakeover, r => Assert.NotEqual(victim.Pid, r.Process));

                // Allowed back in, the victim takes its liveness again and writes nothing for the workflows it lost.
                await AdminAsync($"ALTER ROLE {role} LOGIN");
                await victim.Process.WaitForLineAsync("log 43 ", TimeSpan.FromSeconds(30));
                await VictimWroteNothingOnceBackAsync(db, survivor, victim, recorded, TimeSpan.FromSeconds(3));
            }
            catch
            {
                await DiagnoseAsync(db, survivor, victim);
                throw;
            }
        }
        finally
        {
            await AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'");
            await TestDatabase.ExecuteOnAsync(db.Url, $"REASSIGN OWNED BY {role} TO CURRENT_USER");
            await AdminAsync($"DROP ROLE IF EXISTS {role}");
        }
    }

    /// <summary>
    /// After the victim got its liveness back and had <paramref name="settle"/> to write: nothing changed since
    /// <paramref name="recorded"/>, the survivor finished all five workflows, and none failed in the victim (losing the
    /// system database is the database's failure, not the workflows').
    /// </summary>
    private async Task VictimWroteNothingOnceBackAsync(TestDatabase db, Replica survivor, Replica victim, List<(string Workflow, int Step, string Process)> recorded, TimeSpan settle)
    {
        await Task.Delay(settle);
        Report(survivor, victim);
        Assert.Equal(recorded, await RecordedAsync(db));
        Assert.Equal(5, await db.CountAsync($"SELECT count(*) FROM {{workflow_status}} WHERE status = 'SUCCESS' AND executor_id = '{survivor.ExecutorId}'"));
        Assert.DoesNotContain("event 4 ", victim.Process.StandardOutput, StringComparison.Ordinal);
    }

    /// <summary>Writes each replica's liveness events to the test's output, for the reader of a failure.</summary>
    private void Report(params Replica[] replicas)
    {
        foreach (var replica in replicas)
        {
            output.WriteLine($"{replica.ExecutorId} (pid {replica.Pid}):");
            foreach (var line in replica.Process.StandardOutput.Split('\n').Where(l => l.StartsWith("log ", StringComparison.Ordinal)))
            {
                output.WriteLine("  " + line.TrimEnd('\r'));
            }

            if (replica.Process.StandardError is { Length: > 0 } errors)
            {
                output.WriteLine("  stderr: " + errors);
            }
        }
    }

    /// <summary>On a failure: the workflows' states and everything the replicas printed.</summary>
    private async Task DiagnoseAsync(TestDatabase db, params Replica[] replicas)
    {
        try
        {
            foreach (var row in await db.QueryAsync(
                "SELECT workflow_uuid, status, coalesce(executor_id, ''), coalesce(queue_name, ''), recovery_attempts::text FROM {workflow_status} ORDER BY workflow_uuid",
                r => $"{r.GetString(0)} {r.GetString(1)} {r.GetString(2)} queue={r.GetString(3)} attempts={r.GetString(4)}"))
            {
                output.WriteLine(row);
            }
        }
        catch (NpgsqlException ex)
        {
            output.WriteLine($"(workflow states unavailable: {ex.Message})");
        }

        foreach (var replica in replicas)
        {
            output.WriteLine($"--- {replica.ExecutorId} (pid {replica.Pid}):");
            output.WriteLine(replica.Process.Output);
        }
    }

    private static Task<int> AdminAsync(string sql) => TestDatabase.ExecuteOnAsync(TestDatabase.PostgresUrl("postgres"), sql);

    private static async Task<string> IpAsync(params string[] arguments)
    {
        try
        {
            return await PrivatePostgres.RunAsync("ip", arguments);
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException("This test builds a network namespace and needs iproute2's 'ip' on the PATH (Debian: apt-get install iproute2), run as root.", ex);
        }
    }

    private static async Task IpQuietlyAsync(params string[] arguments)
    {
        try
        {
            await PrivatePostgres.RunAsync("ip", arguments);
        }
        catch (Exception ex) when (ex is InvalidOperationException or Win32Exception)
        {
            // Already gone (deleting the namespace deletes the pair).
        }
    }
}
