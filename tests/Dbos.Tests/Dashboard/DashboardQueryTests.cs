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
}
