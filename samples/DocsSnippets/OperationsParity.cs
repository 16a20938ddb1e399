using System.Text.Json;
using Dbos;
using Dbos.EntityFrameworkCore;
using Npgsql;

namespace DocsSnippets;

/// <summary>The examples of docs/queues.md, docs/messages.md and docs/operating.md for deduplication, sends to many, all events, the outbox and RunMigrations.</summary>
public static class OperationsParity
{
    public static async Task ReturnExistingAsync(DbosApp dbos, Workflow<Order, string> checkout, Order order)
    {
        // <snippet:queues-return-existing>
        var payments = dbos.RegisterQueue("payments");
        await dbos.LaunchAsync();

        // A second click while the first checkout is queued or running gets the first one's handle.
        var handle = await checkout.StartAsync(order, new StartOptions
        {
            Queue = payments,                                     // a Queue, or its name
            DeduplicationId = order.CustomerId,
            DeduplicationPolicy = DeduplicationPolicy.ReturnExisting,
        });
        string receipt = await handle.GetResultAsync();          // the first checkout's result
        // </snippet:queues-return-existing>
        Console.WriteLine(receipt);
    }

    public static async Task OutboxAsync(DbosClient client, NpgsqlDataSource database, Order order)
    {
        // <snippet:queues-outbox>
        await using var connection = await database.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO orders (id, item) VALUES ($1, $2)", connection, transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = order.Id });
            insert.Parameters.Add(new NpgsqlParameter { Value = order.Item });
            await insert.ExecuteNonQueryAsync();
        }

        // Written in the same transaction: the workflow exists only if the order does.
        var handle = await client.EnqueueInTransactionAsync<Order, string>(
            connection, transaction, new EnqueueOptions { WorkflowName = "checkout", QueueName = "payments", WorkflowId = order.Id }, order);
        await transaction.CommitAsync();
        // </snippet:queues-outbox>
        Console.WriteLine(handle.WorkflowId);
    }

    public static async Task OutboxEfAsync(DbosApp dbos, ShopContext context, Order order)
    {
        // <snippet:queues-outbox-ef>
        await using var transaction = await context.Database.BeginTransactionAsync();
        context.Orders.Add(new OrderRow { Id = order.Id, Item = order.Item });
        await context.SaveChangesAsync();
        await dbos.SendInTransactionAsync(context, "warehouse", order.Id, topic: "orders");
        await transaction.CommitAsync();
        // </snippet:queues-outbox-ef>
    }

    public static async Task SendManyAsync(IDbosOperations dbos, IReadOnlyList<string> subscribers, string batchId)
    {
        // <snippet:messages-send-many>
        // One statement; retried with the same key, each subscriber still gets the message once.
        await dbos.SendManyAsync(subscribers, "price-changed", topic: "news", idempotencyKey: batchId);
        // </snippet:messages-send-many>
    }

    public static async Task AllEventsAsync(IDbosOperations dbos, string reportId)
    {
        // <snippet:messages-all-events>
        IReadOnlyDictionary<string, JsonElement> events = await dbos.GetAllEventsAsync<JsonElement>(reportId);
        foreach (var (key, value) in events)
        {
            Console.WriteLine($"{key} = {value}");
        }
        // </snippet:messages-all-events>
    }

    public static DbosConfig NoMigrations(string url)
    {
        // <snippet:operating-run-migrations>
        var config = new DbosConfig
        {
            Name = "shop",
            SystemDatabaseUrl = url,                              // a role that may read and write the dbos tables, not create them
            RunMigrations = false,                                // the schema is migrated out of band: `dbos migrate`
        };
        // </snippet:operating-run-migrations>
        return config;
    }
}
