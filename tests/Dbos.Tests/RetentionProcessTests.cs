using System.Globalization;
using Dbos.Tests.Infrastructure;
using Npgsql;
using Xunit.Abstractions;
using static Dbos.Tests.Infrastructure.Replica;

namespace Dbos.Tests;

/// <summary>
/// Automatic retention (<see cref="DbosConfig.Retention"/>) across real processes: three replicas collect old finished
/// workflows while each keeps starting new ones and long workflows run; one replica dies by SIGKILL in the middle of a
/// collection (on Postgres, while it holds the collection turn).
/// </summary>
public class RetentionProcessTests(ITestOutputHelper output)
{
    private const int MaxAgeMs = 2_000;

    /// <summary>The replica's environment: retention on, and a short workflow started every 150 ms.</summary>
    private static Dictionary<string, string?> Collecting(TestDatabase db, string name) => new()
    {
        ["DBOS_TEST_RETENTION_AGE_MS"] = MaxAgeMs.ToString(CultureInfo.InvariantCulture),
        ["DBOS_TEST_RETENTION_INTERVAL_MS"] = "250",
        ["DBOS_TEST_RETENTION_BATCH"] = "4",
        ["DBOS_TEST_KEEP_STARTING_MS"] = "150",

        // Each replica's own Postgres application_name, so the test can tell whose session holds the collection turn.
        ["DBOS_TEST_URL"] = db.Backend == Backend.Postgres ? db.Url + (db.Url.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "application_name=replica-" + name : db.Url,
    };

    /// <summary>The short workflows a replica started: (ID, a time at or before its creation).</summary>
    private static List<(string Id, long StartedBefore)> Starts(Replica replica) =>
        !File.Exists(replica.Ledger + ".starts") ? [] :
        [.. File.ReadAllLines(replica.Ledger + ".starts").Select(l => l.Split(' ')).Where(p => p.Length == 2)
            .Select(p => (p[0], long.Parse(p[1], CultureInfo.InvariantCulture)))];

    private static int Collections(Replica replica) =>
        replica.Process.StandardOutput.Split('\n').Count(l => l.StartsWith("event 160 ", StringComparison.Ordinal));

    [Theory, BothBackends]
    public async Task Three_processes_collect_old_workflows_while_work_runs_and_a_collector_killed_mid_turn_strands_nothing(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync(); // Migrates the system database.
        }

        await AuditDeletesAsync(db);
        var replicas = new List<Replica>();
        try
        {
            // Replica a also runs three long workflows (10 steps of 1 s): unfinished, and soon older than MaxAge.
            replicas.Add(await StartReplicaAsync(db, "a", start: 3, prefix: "long", steps: 10, stepMs: 1_000, extra: Collecting(db, "a")));
            replicas.Add(await StartReplicaAsync(db, "b", extra: Collecting(db, "b")));
            replicas.Add(await StartReplicaAsync(db, "c", extra: Collecting(db, "c")));
            await Eventually.HoldsAsync(async () => replicas.Sum(Collections) >= 3, "the replicas collect old workflows", TimeSpan.FromSeconds(60));

            Replica doomed;
            if (backend == Backend.Postgres)
            {
                doomed = await KillTheTurnHolderAsync(db, replicas);
            }
            else
            {
                // SQLite serializes writers with its write lock: kill one replica while all three keep collecting.
                doomed = replicas[1];
                doomed.Process.Kill();
            }

            var killedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var survivors = replicas.Where(r => r != doomed).ToList();
            var collectionsAtKill = survivors.Sum(Collections);
            output.WriteLine($"{backend}: killed replica {doomed.Pid}; collections so far {replicas.Sum(Collections)}");

            // The survivors keep collecting: every short workflow started before the kill goes (those the dead replica left
            // unfinished are taken over, finish, age, and go too), with everything recorded for it.
            var startedBeforeKill = replicas.SelectMany(Starts).Where(s => s.StartedBefore < killedAt).Select(s => s.Id).ToList();
            Assert.NotEmpty(startedBeforeKill);
            var idList = string.Join(", ", startedBeforeKill.Select(id => $"'{id}'"));
            await Eventually.HoldsAsync(
                async () => await db.CountAsync($"SELECT COUNT(*) FROM {{workflow_status}} WHERE workflow_uuid IN ({idList})") == 0,
                "every short workflow started before the kill is collected",
                TimeSpan.FromSeconds(90));
            await Eventually.HoldsAsync(async () => survivors.Sum(Collections) > collectionsAtKill, "the survivors collect after the kill", TimeSpan.FromSeconds(30));
            foreach (var table in (string[])["workflow_input", "workflow_output", "operation_outputs", "workflow_events", "workflow_events_history", "streams"])
            {
                Assert.Equal(0, await db.CountAsync($"SELECT COUNT(*) FROM {{{table}}} WHERE workflow_uuid IN ({idList})"));
            }

            // The long workflows, unfinished and older than MaxAge for most of the test, ran to their end: every step of
            // each ran (in whichever replica), and each finished (it may since have been collected, being old).
            await Eventually.HoldsAsync(
                async () => await db.CountAsync("SELECT COUNT(*) FROM {workflow_status} WHERE workflow_uuid LIKE 'long-%' AND status = 'SUCCESS'")
                    + await db.CountAsync("SELECT COUNT(*) FROM {deleted_audit} WHERE workflow_uuid LIKE 'long-%'") == 3,
                "the three long workflows finish",
                TimeSpan.FromSeconds(90));
            var steps = Runs([.. replicas]).Where(r => r.Workflow.StartsWith("long-", StringComparison.Ordinal)).Select(r => (r.Workflow, r.Step)).Distinct().Count();
            Assert.Equal(30, steps);

            // Every row removed (the test's trigger noted each, in the deleting transaction) was finished, and created more
            // than MaxAge before it was removed: no unfinished or recent workflow was touched.
            var removed = await db.QueryAsync(
                "SELECT workflow_uuid, status, created_at, deleted_at FROM {deleted_audit}",
                r => (Id: r.GetString(0), Status: r.GetString(1), CreatedAt: r.GetInt64(2), DeletedAt: r.GetInt64(3)));
            Assert.NotEmpty(removed);
            Assert.All(removed, d => Assert.True(d.Status is "SUCCESS" or "ERROR" or "CANCELLED" or "MAX_RECOVERY_ATTEMPTS_EXCEEDED", $"{d.Id} was removed while {d.Status}"));
            Assert.All(removed, d => Assert.True(d.CreatedAt < d.DeletedAt - MaxAgeMs, $"{d.Id} was removed {d.DeletedAt - d.CreatedAt} ms after its creation"));
            Assert.Equal(removed.Count, removed.Select(d => d.Id).Distinct().Count());
            output.WriteLine($"{backend}: {removed.Count} workflows removed");

            // Nothing half-removed: no row of any table outlives its workflow (each batch removes a workflow with its rows in
            // one transaction, and the killed replica's batch was rolled back whole).
            foreach (var table in (string[])["workflow_input", "workflow_output", "operation_outputs", "workflow_events", "workflow_events_history", "streams"])
            {
                Assert.Equal(0, await db.CountAsync($"SELECT COUNT(*) FROM {{{table}}} t WHERE NOT EXISTS (SELECT 1 FROM {{workflow_status}} s WHERE s.workflow_uuid = t.workflow_uuid)"));
            }

            // Work keeps flowing: the survivors' newest workflows finish.
            var newest = survivors.SelectMany(Starts).MaxBy(s => s.StartedBefore);
            await Eventually.StatusAsync(db, newest.Id, "SUCCESS");
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Notes every deleted workflow_status row (its status and creation time, and when it was deleted) in a table of the
    /// test's own, from a trigger: in the deleting transaction, so a batch rolled back leaves no note.
    /// </summary>
    private static async Task AuditDeletesAsync(TestDatabase db)
    {
        if (db.Backend == Backend.Postgres)
        {
            var audit = db.Table("deleted_audit");
            var function = db.Table("note_deleted_workflow");
            await db.ExecuteAsync($"CREATE TABLE {audit} (workflow_uuid TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL, deleted_at BIGINT NOT NULL)");
            await db.ExecuteAsync(
                $"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
                $"INSERT INTO {audit} VALUES (OLD.workflow_uuid, OLD.status, OLD.created_at, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint); RETURN OLD; END $$");
            await db.ExecuteAsync($"CREATE TRIGGER note_deleted_workflow BEFORE DELETE ON {db.Table("workflow_status")} FOR EACH ROW EXECUTE FUNCTION {function}()");
        }
        else
        {
            await db.ExecuteAsync("CREATE TABLE deleted_audit (workflow_uuid TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER NOT NULL)");
            await db.ExecuteAsync(
                "CREATE TRIGGER note_deleted_workflow BEFORE DELETE ON workflow_status FOR EACH ROW BEGIN " +
                "INSERT INTO deleted_audit VALUES (OLD.workflow_uuid, OLD.status, OLD.created_at, CAST(unixepoch('subsec') * 1000 AS INTEGER)); END");
        }
    }

    /// <summary>
    /// Holds a row lock on the oldest finished workflow, so the replica whose turn comes blocks in its delete while holding
    /// the collection turn (the advisory lock); finds that replica by its session's application_name, SIGKILLs it, then
    /// lets go of the row. The dead replica's transaction is rolled back by the server, which frees the turn.
    /// </summary>
    private async Task<Replica> KillTheTurnHolderAsync(TestDatabase db, List<Replica> replicas)
    {
        await using var holder = new NpgsqlConnection(TestDatabase.ConnectionString(db.Url));
        await holder.OpenAsync();
        await using var transaction = await holder.BeginTransactionAsync();
        string? locked = null;
        await using (var lockRow = new NpgsqlCommand(
            $"SELECT workflow_uuid FROM {db.Table("workflow_status")} WHERE status = 'SUCCESS' AND workflow_uuid LIKE 'rec-%' ORDER BY created_at LIMIT 1 FOR UPDATE",
            holder,
            transaction))
        {
            locked = (string?)await lockRow.ExecuteScalarAsync();
        }

        Assert.NotNull(locked);
        string? turnHolder = null;
        await Eventually.HoldsAsync(
            async () =>
            {
                turnHolder = (await db.QueryAsync(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid " +
                    "WHERE l.locktype = 'advisory' AND l.granted AND a.wait_event_type = 'Lock' AND a.query LIKE 'DELETE FROM%' AND a.application_name LIKE 'replica-%'",
                    r => r.GetString(0))).FirstOrDefault();
                return turnHolder is not null;
            },
            "a replica holds the collection turn, blocked on the locked row",
            TimeSpan.FromSeconds(30));

        var doomed = replicas[turnHolder!["replica-".Length] - 'a'];
        doomed.Process.Kill();
        await doomed.Process.WaitForExitAsync(TimeSpan.FromSeconds(10));
        output.WriteLine($"killed {turnHolder} while it held the collection turn, blocked on {locked}");
        await transaction.RollbackAsync();

        // The locked workflow is collected by a survivor (the dead replica's delete never committed).
        await Eventually.HoldsAsync(
            async () => await db.CountAsync($"SELECT COUNT(*) FROM {{workflow_status}} WHERE workflow_uuid = '{locked}'") == 0,
            "a survivor collects the workflow the killed replica was deleting",
            TimeSpan.FromSeconds(30));
        return doomed;
    }
}
