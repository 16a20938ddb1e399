using System.Diagnostics;
using System.Globalization;
using Dbos;

namespace WebShop;

/// <summary>An order, the checkout workflow's input.</summary>
public sealed record Order(string Id, string Customer, string Item, int Quantity, decimal UnitPrice);

/// <summary>What the checkout returns.</summary>
public sealed record Receipt(string OrderId, decimal Charged, string PaymentId, string TrackingNumber);

public sealed record Payment(string PaymentId, decimal Amount);

/// <summary>
/// The checkout, a durable workflow: each step's result is recorded when it finishes, so after a crash or a restart
/// the order resumes at its first unfinished step. DBOS creates one instance per execution, in a scope of its own, so
/// the constructor can take scoped services such as <see cref="PaymentGateway"/>.
/// </summary>
public sealed class CheckoutWorkflow(Warehouse warehouse, PaymentGateway payments, Mailer mailer, CrashSwitch crashSwitch) : IWorkflow<Order, Receipt>
{
    public const string Name = "checkout";
    public const string Queue = "checkout";

    public async Task<Receipt> RunAsync(WorkflowContext context, Order order)
    {
        await StepAsync(context, 1, "reserve-stock", ct => warehouse.ReserveAsync(order, ct));
        var payment = await StepAsync(context, 2, "charge-card", ct => payments.ChargeAsync(order, ct), new StepOptions { MaxAttempts = 3, RetryInterval = TimeSpan.FromSeconds(1) });
        var tracking = await StepAsync(context, 3, "ship", ct => warehouse.ShipAsync(order, ct));
        await StepAsync(context, 4, "send-confirmation", ct => mailer.SendConfirmationAsync(order, tracking, ct));
        return new Receipt(order.Id, payment.Amount, payment.PaymentId, tracking);
    }

    /// <summary>Runs one checkpointed step; with <c>--crash-after-step N</c>, kills the process once step N has run here and been recorded.</summary>
    private async Task<T> StepAsync<T>(WorkflowContext context, int number, string name, Func<CancellationToken, Task<T>> step, StepOptions? options = null)
    {
        var ranHere = false;
        var result = await context.RunStepAsync(name, ct =>
        {
            ranHere = true;
            return step(ct);
        }, options);
        if (ranHere)
        {
            crashSwitch.AfterStep(number, context.WorkflowId);
        }

        return result;
    }
}

/// <summary>What the shop sells.</summary>
public sealed class Catalog
{
    private static readonly Dictionary<string, decimal> Prices = new(StringComparer.OrdinalIgnoreCase)
    {
        ["widget"] = 14.50m,
        ["gadget"] = 99.00m,
        ["gizmo"] = 5.25m,
    };

    public IEnumerable<string> Items => Prices.Keys;

    public decimal? PriceOf(string item) => Prices.TryGetValue(item ?? string.Empty, out var price) ? price : null;
}

/// <summary>Stands in for a warehouse system. It prints each call, so you can see which steps ran in this process.</summary>
public sealed class Warehouse
{
    public async Task<string> ReserveAsync(Order order, CancellationToken cancellationToken)
    {
        await Task.Delay(200, cancellationToken);
        return Shop.Say("reserve-stock", order, $"reserved {order.Quantity} x {order.Item}");
    }

    public async Task<string> ShipAsync(Order order, CancellationToken cancellationToken)
    {
        await Task.Delay(200, cancellationToken);
        var tracking = $"TRK-{(uint)order.Id.GetHashCode(StringComparison.Ordinal) % 100000:D5}";
        Shop.Say("ship", order, $"shipped with tracking number {tracking}");
        return tracking;
    }
}

/// <summary>
/// Stands in for a payment provider. Scoped: each workflow execution gets its own instance, here a payment session
/// whose ID is sent with every attempt of the charge.
/// </summary>
public sealed class PaymentGateway
{
    private readonly string session = Guid.NewGuid().ToString("N")[..8];

    public async Task<Payment> ChargeAsync(Order order, CancellationToken cancellationToken)
    {
        await Task.Delay(200, cancellationToken);
        var total = order.Quantity * order.UnitPrice;
        Shop.Say("charge-card", order, $"charged ${total.ToString("0.00", CultureInfo.InvariantCulture)} (payment session {session})");
        return new Payment($"PAY-{session}", total);
    }
}

/// <summary>Stands in for an email service.</summary>
public sealed class Mailer
{
    public async Task<string> SendConfirmationAsync(Order order, string tracking, CancellationToken cancellationToken)
    {
        await Task.Delay(200, cancellationToken);
        return Shop.Say("send-confirmation", order, $"emailed {order.Customer} about {tracking}");
    }
}

/// <summary>With <c>--crash-after-step N</c>, kills the process right after step N of an order is checkpointed, as a crash would.</summary>
public sealed class CrashSwitch(IConfiguration configuration)
{
    private readonly int? crashAfterStep = int.TryParse(configuration["crash-after-step"], NumberStyles.None, CultureInfo.InvariantCulture, out var step) ? step : null;

    public void AfterStep(int step, string orderId)
    {
        if (step == crashAfterStep)
        {
            Console.WriteLine($"Step {step} of {orderId} is checkpointed. Crashing now, on purpose: the process is killed, nothing is cleaned up.");
            Process.GetCurrentProcess().Kill();
        }
    }
}

internal static class Shop
{
    /// <summary>Prints what a step did and returns it, as its recorded output.</summary>
    public static string Say(string step, Order order, string outcome)
    {
        Console.WriteLine($"[{step}] {order.Id}: {outcome}");
        return outcome;
    }
}
