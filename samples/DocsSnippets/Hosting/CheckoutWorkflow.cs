using Dbos;

namespace DocsSnippets.Hosting;

// <snippet:hosting-workflow-class>
// A new instance for each execution, created in a scope of its own: the constructor takes scoped services.
public sealed class CheckoutWorkflow(PaymentGateway payments, Warehouse warehouse) : IWorkflow<Order, Receipt>
{
    public async Task<Receipt> RunAsync(WorkflowContext context, Order order)
    {
        var payment = await context.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct));
        var tracking = await context.RunStepAsync("ship", ct => warehouse.ShipAsync(order, ct));
        return new Receipt(order.Id, payment.Id, tracking);
    }
}
// </snippet:hosting-workflow-class>
