using Microsoft.EntityFrameworkCore;

namespace DocsSnippets;

// The types and services the examples use without showing them. They stand in for an application's own code.

public sealed record Order(string Id, string CustomerId, string Item, int Quantity, bool IsVip = false);

public sealed record Payment(string ReceiptId);

public sealed record Expense(string Employee, decimal Amount);

public sealed record Answer(bool Approved, string By);

public sealed class Inventory
{
    public Task<int> ReserveAsync(Order order, CancellationToken cancellationToken) => Task.FromResult(order.Quantity);
}

public sealed class Payments
{
    public Task<Payment> ChargeAsync(Order order, CancellationToken cancellationToken) => Task.FromResult(new Payment($"receipt-{order.Id}"));
}

public sealed class Shipping
{
    public Task<string> ShipAsync(Order order, CancellationToken cancellationToken) => Task.FromResult($"TRK-{order.Id}");
}

public sealed class Audit
{
    public Task WriteAsync(Order order, DateTimeOffset at, CancellationToken cancellationToken) => Task.CompletedTask;
}

public sealed class Notifier
{
    public Task NotifyAsync(Order order) => Task.CompletedTask;
}

public sealed class Pricing
{
    public Task<decimal> QuoteAsync(Order order, CancellationToken cancellationToken) => Task.FromResult(9.99m);
}

public sealed class CardDeclinedException(string message) : Exception(message);

public sealed class Report
{
    public Task<int> RunAsync(DateTimeOffset tick) => Task.FromResult(tick.Day);
}

public sealed class OrderRow
{
    public string Id { get; set; } = "";
    public string Item { get; set; } = "";
}

public sealed class ShopContext(DbContextOptions<ShopContext> options) : DbContext(options)
{
    public DbSet<OrderRow> Orders => Set<OrderRow>();
}

/// <summary>
/// The objects the README's short tour (Program.cs) uses without declaring them. Their names are the tour's variable
/// names, so the tour reads as it does in the README.
/// </summary>
#pragma warning disable IDE1006 // lower-case names, to stand for the tour's local variables
internal static class TourFixtures
{
    public static Inventory inventory { get; } = new();

    public static Payments payments { get; } = new();

    public static Audit audit { get; } = new();

    public static Order order { get; } = new("order-1", "ada@example.com", "widget", 3);
}
#pragma warning restore IDE1006
