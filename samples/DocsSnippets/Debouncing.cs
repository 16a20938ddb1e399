using Dbos;

namespace DocsSnippets;

/// <summary>The debouncing examples of docs/queues.md.</summary>
public static class Debouncing
{
    public static async Task DebounceAsync(DbosApp dbos, Workflow<Order, string> checkout, Order order)
    {
        // <snippet:queues-debounce>
        // Saves of one document within 30 s of each other start one workflow, with the last save's input, 30 s after
        // the last save, and never more than 5 minutes after the first.
        var debouncer = new Debouncer<Order, string>(checkout, new DebouncerOptions { DebounceTimeout = TimeSpan.FromMinutes(5) });
        WorkflowHandle<string> handle = await debouncer.DebounceAsync(order.CustomerId, TimeSpan.FromSeconds(30), order);
        // </snippet:queues-debounce>
        Console.WriteLine(handle.WorkflowId);
    }

    public static async Task FromClientAsync(DbosClient client, Order order)
    {
        // <snippet:queues-debounce-client>
        var debouncer = new Debouncer<Order, string>(client, "checkout", new DebouncerOptions { ApplicationName = "shop" });
        await debouncer.DebounceAsync(order.CustomerId, TimeSpan.FromSeconds(30), order);
        // </snippet:queues-debounce-client>
    }
}
