namespace DocsSnippets.Hosting;

// The types the ASP.NET Core examples use without showing them.

public sealed record Order(string Id, string Customer, string Item, int Quantity);

public sealed record Receipt(string OrderId, string PaymentId, string TrackingNumber);

public sealed record PaymentResult(string Id);

public sealed class PaymentGateway
{
    public Task<PaymentResult> ChargeAsync(Order order, CancellationToken cancellationToken) => Task.FromResult(new PaymentResult($"pay-{order.Id}"));
}

public sealed class Warehouse
{
    public Task<string> ShipAsync(Order order, CancellationToken cancellationToken) => Task.FromResult($"TRK-{order.Id}");
}

public sealed class Mailer
{
    public Task<bool> SendAsync(string to, string text, CancellationToken cancellationToken) => Task.FromResult(true);
}
