using Dbos.EntityFrameworkCore;
using Dbos.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Dbos.Tests;

/// <summary>
/// The outbox: an enqueue or a send written in the caller's own Postgres transaction commits or rolls back with the
/// caller's rows, and is refused, before anything is written, when the system database is not the caller's database.
/// </summary>
public class OutboxTests
{
    private static async Task<(DbosApp App, Workflow<string, string> Task, Workflow<string, string> Receiver)> LaunchAsync(TestDatabase db)
    {
        var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("outbox", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var task = dbos.RegisterWorkflow("task", (WorkflowContext ctx, string order) => Task.FromResult($"shipped {order}"));
        var receiver = dbos.RegisterWorkflow("receiver", async (WorkflowContext ctx, string wait) =>
            await ctx.RecvAsync<string>("orders", TimeSpan.Parse(wait, System.Globalization.CultureInfo.InvariantCulture)) ?? "nothing");
        await dbos.LaunchAsync();
        return (dbos, task, receiver);
    }

    private static async Task<NpgsqlConnection> OpenAsync(string url, string schema)
    {
        var connection = new NpgsqlConnection(TestDatabase.ConnectionString(url));
        await connection.OpenAsync();
        await using var path = new NpgsqlCommand($"SET search_path TO \"{schema}\"", connection);
        await path.ExecuteNonQueryAsync();
        return connection;
    }

    private static async Task InsertOrderAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string id)
    {
        await using var insert = new NpgsqlCommand("INSERT INTO orders (id, item, quantity) VALUES ($1, 'book', 1)", connection, transaction);
        insert.Parameters.Add(new NpgsqlParameter { Value = id });
        await insert.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task A_commit_runs_the_workflow_and_delivers_the_message_and_a_rollback_leaves_nothing()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var (dbos, task, receiver) = await LaunchAsync(db);
        await using var app = dbos;
        await TestDatabase.ExecuteOnAsync(db.Url, $"CREATE TABLE \"{db.Schema}\".orders (id TEXT PRIMARY KEY, item TEXT NOT NULL, quantity INTEGER NOT NULL)");
        var committedReceiver = await receiver.StartAsync("00:00:30", new StartOptions { WorkflowId = "rx-commit" });
        var rolledBackReceiver = await receiver.StartAsync("00:00:01", new StartOptions { WorkflowId = "rx-rollback" });
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });

        await using var connection = await OpenAsync(db.Url, db.Schema);
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await InsertOrderAsync(connection, transaction, "o-1");
            var handle = await client.EnqueueInTransactionAsync<string, string>(connection, transaction, new EnqueueOptions { WorkflowName = "task", QueueName = "outbox", WorkflowId = "wf-commit" }, "o-1");
            await dbos.SendInTransactionAsync(connection, transaction, "rx-commit", "o-1", "orders");

            // Not visible outside the transaction before the commit.
            Assert.Null(await client.GetWorkflowStatusAsync("wf-commit"));
            await transaction.CommitAsync();
            Assert.Equal("shipped o-1", await handle.GetResultAsync());
        }

        Assert.Equal("o-1", await committedReceiver.GetResultAsync());

        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await InsertOrderAsync(connection, transaction, "o-2");
            await dbos.EnqueueInTransactionAsync<string, string>(connection, transaction, new EnqueueOptions { WorkflowName = "task", QueueName = "outbox", WorkflowId = "wf-rollback" }, "o-2");
            await client.SendInTransactionAsync(connection, transaction, "rx-rollback", "o-2", "orders");
            await transaction.RollbackAsync();
        }

        Assert.Equal("nothing", await rolledBackReceiver.GetResultAsync());
        Assert.Null(await client.GetWorkflowStatusAsync("wf-rollback"));
        Assert.Equal(0L, await db.CountAsync("SELECT count(*) FROM {notifications} WHERE destination_uuid = 'rx-rollback'"));
        Assert.Equal(1L, await db.CountAsync($"SELECT count(*) FROM \"{db.Schema}\".orders"));

        // With Entity Framework Core: the context's current transaction.
        await using (var context = ShopContext.On(connection))
        {
            await using var transaction = await context.Database.BeginTransactionAsync();
            context.Orders.Add(new OrderRow { Id = "o-3", Item = "pen", Quantity = 2 });
            await context.SaveChangesAsync();
            var handle = await client.EnqueueInTransactionAsync<string, string>(context, new EnqueueOptions { WorkflowName = "task", QueueName = "outbox", WorkflowId = "wf-ef" }, "o-3");
            await transaction.CommitAsync();
            Assert.Equal("shipped o-3", await handle.GetResultAsync());
        }

        await using (var context = ShopContext.On(connection))
        {
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => client.SendInTransactionAsync(context, "rx-commit", "x"));
            Assert.Contains("no current transaction", refused.Message, StringComparison.Ordinal);
        }
    }

    [Theory, BothBackends]
    public async Task A_system_database_that_is_not_the_callers_database_is_refused_and_the_callers_transaction_goes_on(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var (dbos, _, _) = await LaunchAsync(db);
        await using var app = dbos;

        // The caller's own Postgres database, which is not where the system database lives.
        var appUrl = await db.CreateApplicationDatabaseAsync(Backend.Postgres);
        await using var connection = await OpenAsync(appUrl, "public");
        await using var transaction = await connection.BeginTransactionAsync();
        await InsertOrderAsync(connection, transaction, "kept");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            dbos.EnqueueInTransactionAsync<string, string>(connection, transaction, new EnqueueOptions { WorkflowName = "task", QueueName = "outbox", WorkflowId = "never" }, "x"));
        Assert.Contains(backend == Backend.Sqlite ? "SQLite" : "same Postgres database", error.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was written", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidOperationException>(() => dbos.SendInTransactionAsync(connection, transaction, "anyone", "x"));

        // The refusal ran nothing that could fail in the caller's transaction: it still commits.
        await transaction.CommitAsync();
        Assert.Equal(new string?[] { "1" }, await TestDatabase.QueryOnAsync(appUrl, "SELECT count(*)::text FROM orders WHERE id = 'kept'"));
        Assert.Null(await dbos.GetWorkflowStatusAsync("never"));
    }
}
