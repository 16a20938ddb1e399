using Dbos.SystemDatabase;
using Dbos.Tests.Infrastructure;
using Npgsql;

namespace Dbos.Tests.Dashboard;

/// <summary>The dashboard's reads (SystemDatabase.Dashboard.cs), below the pages.</summary>
public class DashboardQueryTests
{
    [Theory, BothBackends]
    public async Task Keyset_pages_cover_rows_created_in_the_same_millisecond_exactly_once(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync();
        }

        // 120 workflows with one creation time: only the ID orders them, and the pages must follow it.
        for (var i = 0; i < 120; i++)
        {
            await db.ExecuteAsync($"INSERT INTO {db.Table("workflow_status")} (workflow_uuid, status, name, created_at, updated_at) VALUES ('tie-{i:000}', 'SUCCESS', 'tie', 1700000000000, 1700000000000)");
        }

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        var seen = new List<string>();
        WorkflowKey? after = null;
        var pages = 0;
        do
        {
            var page = await client.External.Database.ListWorkflowPageAsync(new WorkflowPageQuery { After = after, PageSize = 50, Filter = new StatusQuery { Names = ["tie"] } }, CancellationToken.None);
            Assert.False(page.ScanStopped);
            Assert.False(page.TimedOut);
            seen.AddRange(page.Rows.Select(r => r.WorkflowId));
            after = page.Next;
            pages++;
        }
        while (after is not null);

        Assert.Equal(3, pages);
        Assert.Equal(Enumerable.Range(0, 120).Select(i => $"tie-{119 - i:000}"), seen);
    }

    [Fact]
    public async Task A_list_query_past_its_statement_timeout_is_reported_as_timed_out_not_failed()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync();
        }

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        var query = new WorkflowPageQuery { Filter = new StatusQuery { Names = ["anything"] }, StatementTimeout = TimeSpan.FromMilliseconds(300) };

        // Another session holds the table: the list query waits for it, and the timeout (which counts lock waits) stops it.
        await using var holder = new NpgsqlConnection(TestDatabase.ConnectionString(db.Url));
        await holder.OpenAsync();
        await using (var transaction = await holder.BeginTransactionAsync())
        {
            await using (var lockTable = new NpgsqlCommand($"LOCK TABLE {db.Table("workflow_status")} IN ACCESS EXCLUSIVE MODE", holder, transaction))
            {
                await lockTable.ExecuteNonQueryAsync();
            }

            var page = await client.External.Database.ListWorkflowPageAsync(query, CancellationToken.None);
            Assert.True(page.TimedOut);
            Assert.Empty(page.Rows);
            Assert.Null(page.Next);
            await transaction.RollbackAsync();
        }

        // The same query with the table free answers, on a connection the timeout left usable.
        var free = await client.External.Database.ListWorkflowPageAsync(query, CancellationToken.None);
        Assert.False(free.TimedOut);
        Assert.Empty(free.Rows);
    }

    /// <summary>One generated workflow of <see cref="Every_access_path_pages_through_the_same_rows_in_the_same_order_both_ways"/>.</summary>
    private sealed record Generated(string Id, string Status, string Name, string? Queue, string Version, string Executor, long CreatedAt);

    private static readonly string[] GeneratedStatuses = ["ERROR", "CANCELLED", "ENQUEUED", "PENDING", "DELAYED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"];

    private static Generated Generate(int i)
    {
        // Creation times in threes (ties ordered by ID), IDs shuffled against time, a status of each kind at its own rhythm.
        var status = (i % 11, i % 13, i % 17, i % 19, i % 23, i % 29) switch
        {
            (0, _, _, _, _, _) => GeneratedStatuses[0],
            (_, 0, _, _, _, _) => GeneratedStatuses[1],
            (_, _, 0, _, _, _) => GeneratedStatuses[2],
            (_, _, _, 0, _, _) => GeneratedStatuses[3],
            (_, _, _, _, 0, _) => GeneratedStatuses[4],
            (_, _, _, _, _, 0) => GeneratedStatuses[5],
            _ => "SUCCESS",
        };
        return new Generated($"wf-{i * 37 % 300:000}", status, ((string[])["a", "b", "c"])[i % 3], (i % 4) switch { 0 => "q1", 1 => "q2", _ => null },
            "v" + (i % 2), "e" + (i % 5), 1_700_000_000_000 + (i / 3) * 1000);
    }

    /// <summary>Creates the schema (a launch) and inserts the first <paramref name="count"/> generated workflows.</summary>
    private static async Task<List<Generated>> SeedAsync(TestDatabase db, int count)
    {
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync();
        }

        var all = Enumerable.Range(1, count).Select(Generate).ToList();
        await db.ExecuteAsync(
            $"INSERT INTO {db.Table("workflow_status")} (workflow_uuid, status, name, queue_name, application_version, executor_id, created_at, updated_at) VALUES " +
            string.Join(", ", all.Select(w => $"('{w.Id}', '{w.Status}', '{w.Name}', {(w.Queue is null ? "NULL" : $"'{w.Queue}'")}, '{w.Version}', '{w.Executor}', {w.CreatedAt}, {w.CreatedAt})")));
        return all;
    }

    [Theory, BothBackends]
    public async Task Every_access_path_pages_through_the_same_rows_in_the_same_order_both_ways(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var all = await SeedAsync(db, 300);
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        var database = client.External.Database;
        var from = all[100].CreatedAt;
        var to = all[200].CreatedAt;

        (StatusQuery Filter, Func<Generated, bool> Matches, WorkflowListPath Path)[] cases =
        [
            (new StatusQuery(), _ => true, WorkflowListPath.CreatedAtScan),
            (new StatusQuery { Statuses = ["SUCCESS"] }, w => w.Status == "SUCCESS", WorkflowListPath.CreatedAtScan),
            (new StatusQuery { Statuses = ["ERROR"] }, w => w.Status == "ERROR", WorkflowListPath.StatusIndex),
            (new StatusQuery { Statuses = ["ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"] }, w => w.Status is "ERROR" or "CANCELLED" or "MAX_RECOVERY_ATTEMPTS_EXCEEDED", WorkflowListPath.StatusIndex),
            (new StatusQuery { Statuses = ["ENQUEUED"] }, w => w.Status == "ENQUEUED", WorkflowListPath.StatusIndex),
            (new StatusQuery { Statuses = ["PENDING", "DELAYED"] }, w => w.Status is "PENDING" or "DELAYED", WorkflowListPath.StatusIndex),
            (new StatusQuery { Statuses = ["ENQUEUED", "SUCCESS"] }, w => w.Status is "ENQUEUED" or "SUCCESS", WorkflowListPath.CreatedAtScan),
            (new StatusQuery { QueueNames = ["q1"] }, w => w.Queue == "q1", WorkflowListPath.CreatedAtScan),
            (new StatusQuery { QueueNames = ["q1"], Statuses = ["ENQUEUED", "PENDING"] }, w => w.Queue == "q1" && w.Status is "ENQUEUED" or "PENDING", WorkflowListPath.StatusIndex),
            (new StatusQuery { Names = ["b"], Statuses = ["ERROR", "PENDING"] }, w => w.Name == "b" && w.Status is "ERROR" or "PENDING", WorkflowListPath.StatusIndex),
            (new StatusQuery { WorkflowIdPrefix = "wf-1" }, w => w.Id.StartsWith("wf-1", StringComparison.Ordinal), WorkflowListPath.CreatedAtScan),
            (new StatusQuery { ApplicationVersion = "v1", ExecutorId = "e2" }, w => w.Version == "v1" && w.Executor == "e2", WorkflowListPath.CreatedAtScan),
            (new StatusQuery { CreatedFromEpochMs = from, CreatedToEpochMs = to }, w => w.CreatedAt >= from && w.CreatedAt <= to, WorkflowListPath.CreatedAtScan),
            (new StatusQuery { CreatedFromEpochMs = from, CreatedToEpochMs = to, Statuses = ["ERROR", "ENQUEUED"] },
                w => w.CreatedAt >= from && w.CreatedAt <= to && w.Status is "ERROR" or "ENQUEUED", WorkflowListPath.StatusIndex),
        ];

        foreach (var (filter, matches, path) in cases)
        {
            var expected = all.Where(matches).OrderByDescending(w => w.CreatedAt).ThenByDescending(w => w.Id, StringComparer.Ordinal).Select(w => w.Id).ToList();
            Assert.NotEmpty(expected);
            Assert.Equal(path, SystemDatabase.SystemDatabase.ChooseListPath(filter));

            // With the default bound, and with a bound so small that the scan stops on most pages.
            foreach (var scanLimit in (int[])[100_000, 9])
            {
                var query = new WorkflowPageQuery { Filter = filter, PageSize = 7, ScanLimit = scanLimit };
                var what = $"{path} {System.Text.Json.JsonSerializer.Serialize(filter.Statuses)} queue {filter.QueueNames?[0]} prefix {filter.WorkflowIdPrefix} scan {scanLimit}";

                // Older, page after page, until no older page remains.
                var older = new List<string>();
                var pages = new List<WorkflowPage>();
                WorkflowPage page = await database.ListWorkflowPageAsync(query, CancellationToken.None);
                Assert.Null(page.Previous);
                while (true)
                {
                    Assert.Equal(path, page.Path);
                    Assert.False(page.TimedOut);
                    Assert.True(page.Rows.Count <= 7);
                    Assert.True(page.ScanStopped || page.Rows.Count == 7 || page.Next is null, what);
                    Assert.True(path == WorkflowListPath.CreatedAtScan || !page.ScanStopped, what);
                    pages.Add(page);
                    older.AddRange(page.Rows.Select(r => r.WorkflowId));
                    if (page.Next is not { } next)
                    {
                        break;
                    }

                    page = await database.ListWorkflowPageAsync(query with { After = next }, CancellationToken.None);
                }

                Assert.True(expected.SequenceEqual(older), what + ": older pages gave " + string.Join(",", older));

                // Then newer, from the oldest page with rows back to the newest: the same rows, in the same order.
                var newer = new List<string>(older.Count);
                var back = pages.Last(p => p.Rows.Count > 0);
                newer.InsertRange(0, back.Rows.Select(r => r.WorkflowId));
                while (back.Previous is { } previous)
                {
                    back = await database.ListWorkflowPageAsync(query with { Before = previous }, CancellationToken.None);
                    Assert.Equal(path, back.Path);
                    Assert.True(back.Rows.Count == 0 || back.Next is not null, what);
                    Assert.True(back.Rows.Zip(back.Rows.Skip(1)).All(p => p.First.CreatedAt > p.Second.CreatedAt ||
                        (p.First.CreatedAt == p.Second.CreatedAt && string.CompareOrdinal(p.First.WorkflowId, p.Second.WorkflowId) > 0)), what + ": a newer page is not newest first");
                    newer.InsertRange(0, back.Rows.Select(r => r.WorkflowId));
                }

                // Back at the newest, a short page is replaced by the (full) newest page: its rows come twice, in place.
                Assert.True(expected.SequenceEqual(newer.Distinct()), what + ": newer pages gave " + string.Join(",", newer));
            }
        }
    }

    [Theory, BothBackends]
    public async Task Newer_pages_retrace_the_older_pages_exactly_when_nothing_changed(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await SeedAsync(db, 100);
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        var database = client.External.Database;
        foreach (var filter in new[] { new StatusQuery(), new StatusQuery { Statuses = ["ERROR", "ENQUEUED", "PENDING"] } })
        {
            var query = new WorkflowPageQuery { Filter = filter, PageSize = 4 };
            var pages = new List<List<string>>();
            var page = await database.ListWorkflowPageAsync(query, CancellationToken.None);
            pages.Add([.. page.Rows.Select(r => r.WorkflowId)]);
            while (page.Next is { } next)
            {
                page = await database.ListWorkflowPageAsync(query with { After = next }, CancellationToken.None);
                Assert.NotNull(page.Previous);
                pages.Add([.. page.Rows.Select(r => r.WorkflowId)]);
            }

            Assert.True(pages.Count >= 3);
            for (var i = pages.Count - 2; i >= 0; i--)
            {
                page = await database.ListWorkflowPageAsync(query with { Before = page.Previous }, CancellationToken.None);
                Assert.Equal(pages[i], page.Rows.Select(r => r.WorkflowId));
                Assert.Equal(i > 0, page.Previous is not null);
            }
        }
    }

    [Theory, BothBackends]
    public async Task A_status_page_reads_through_the_partial_index_of_its_status(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync();
        }

        // 20,000 workflows, 2% failed, 1% pending, 1% enqueued: reading every row would be the wrong plan.
        const string columns = "workflow_uuid, status, queue_name, created_at, updated_at";
        const string row = "'w' || i, CASE WHEN i % 50 = 0 THEN 'ERROR' WHEN i % 100 = 1 THEN 'PENDING' WHEN i % 100 = 2 THEN 'ENQUEUED' ELSE 'SUCCESS' END, " +
            "CASE WHEN i % 100 IN (1, 2) THEN 'q' END, 1700000000000 + i, 1700000000000 + i";
        await db.ExecuteAsync(backend == Backend.Postgres
            ? $"INSERT INTO {db.Table("workflow_status")} ({columns}) SELECT {row} FROM generate_series(1, 20000) AS i"
            : $"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO workflow_status ({columns}) SELECT {row} FROM n");
        await db.ExecuteAsync(backend == Backend.Postgres ? $"ANALYZE {db.Table("workflow_status")}" : "ANALYZE");
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });
        var database = client.External.Database;
        foreach (var (status, index) in new[] { ("ERROR", "idx_workflow_status_failed"), ("PENDING", "idx_workflow_status_pending"), ("ENQUEUED", "idx_workflow_status_in_flight_v2") })
        {
            var query = new WorkflowPageQuery { Filter = new StatusQuery { Statuses = [status] } };
            var (sql, args) = database.WorkflowPageStatement(query, WorkflowListPath.StatusIndex);
            Assert.Equal([51L], args); // The page's size is the only argument: the statement is explained with it in place.
            var plan = await db.QueryAsync(
                (backend == Backend.Postgres ? "EXPLAIN " : "EXPLAIN QUERY PLAN ") + sql.Replace("$1", "51", StringComparison.Ordinal),
                r => r.GetString(backend == Backend.Postgres ? 0 : 3));
            Assert.True(plan.Any(line => line.Contains(index, StringComparison.Ordinal)), $"{status}: the plan does not use {index}:\n{string.Join("\n", plan)}");
            var page = await database.ListWorkflowPageAsync(query, CancellationToken.None);
            Assert.Equal(50, page.Rows.Count);
            Assert.All(page.Rows, r => Assert.Equal(status, r.Status));
            Assert.NotNull(page.Next);
        }
    }
}
