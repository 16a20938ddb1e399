using Dbos;

namespace DocsSnippets;

/// <summary>The examples of docs/queues.md.</summary>
public static class Queues
{
    public static async Task EnqueueAsync(DbosApp dbos, Workflow<Order, string> checkout, Order order)
    {
        // <snippet:queues-enqueue>
        var payments = dbos.RegisterQueue("payments", new QueueOptions
        {
            Concurrency = 10,                                     // at most 10 running at once, across every process
            WorkerConcurrency = 2,                                // at most 2 at once in this process
            RateLimit = new RateLimit(50, TimeSpan.FromSeconds(1)),
            PriorityEnabled = true,
        });
        await dbos.LaunchAsync();

        var handle = await checkout.StartAsync(order, new StartOptions
        {
            Queue = "payments",
            WorkflowId = order.Id,
            DeduplicationId = order.CustomerId,                   // refused while this customer's checkout is queued or running
            Priority = order.IsVip ? 1 : 10,                      // lower runs first; first in, first out within a priority
            Delay = TimeSpan.FromMinutes(5),                      // DELAYED until then
            Timeout = TimeSpan.FromMinutes(2),                    // counts from when it is dequeued
        });
        // </snippet:queues-enqueue>
        Console.WriteLine($"{payments.Name} {handle.WorkflowId}");
    }

    public static async Task ClientAsync(string url, Order order)
    {
        // <snippet:queues-client>
        // From a process that runs no workflows (or from SQL: SELECT dbos.enqueue_workflow('checkout', 'payments', ARRAY['{…}'::json])):
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = url });
        var remote = await client.EnqueueAsync<Order, string>(new EnqueueOptions { WorkflowName = "checkout", QueueName = "payments" }, order);
        string receipt = await remote.GetResultAsync();
        // </snippet:queues-client>
        Console.WriteLine(receipt);
    }

    public static async Task PartitionedAsync(DbosApp dbos, Workflow<Order, string> checkout, Order order)
    {
        // <snippet:queues-partitioned>
        // One checkout at a time per customer, and at most 20 at once in all.
        dbos.RegisterQueue("by-customer", new QueueOptions { Partitioned = true, PartitionConcurrency = 1, Concurrency = 20 });
        await dbos.LaunchAsync();

        await checkout.StartAsync(order, new StartOptions { Queue = "by-customer", PartitionKey = order.CustomerId });
        // </snippet:queues-partitioned>
    }

    public static async Task ManageAsync(DbosApp dbos)
    {
        // <snippet:queues-manage>
        var waiting = await dbos.ListQueuedWorkflowsAsync(new ListWorkflowsOptions { QueueName = "payments" });
        foreach (var workflow in waiting.Where(w => w.State == WorkflowState.Enqueued))
        {
            await dbos.SetWorkflowPriorityAsync(workflow.WorkflowId, 1);
        }

        await dbos.SetWorkflowDelayAsync(waiting[^1].WorkflowId, DateTimeOffset.UtcNow.AddHours(1));
        // </snippet:queues-manage>
    }
}
