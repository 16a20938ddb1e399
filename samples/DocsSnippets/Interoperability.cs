using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dbos;

namespace DocsSnippets;

/// <summary>The examples of docs/interoperability.md.</summary>
public static class Interoperability
{
    public static async Task EnqueueToTypeScriptAsync(string url)
    {
        // <snippet:interop-enqueue-typescript>
        // A TypeScript application named "billing" registered the workflow "invoice" and the queue "invoices".
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = url });
        var handle = await client.EnqueueAsync<InvoiceRequest, InvoiceResult>(new EnqueueOptions
        {
            WorkflowName = "invoice",
            QueueName = "invoices",
            ApplicationName = "billing",
        }, new InvoiceRequest("order-42", 43.50m));
        var invoice = await handle.GetResultAsync();   // { "invoiceId": "…", "createdAt": "2026-11-25T08:55:34.000Z" }
        // </snippet:interop-enqueue-typescript>
        Console.WriteLine(invoice.InvoiceId);
    }

    public static void RecordedError(DbosApp dbos, Payments payments)
    {
        // <snippet:interop-recorded-error>
        dbos.RegisterWorkflow("pay", async (WorkflowContext ctx, Order order) =>
        {
            var payment = await ctx.RunStepAsync("charge", ct => payments.ChargeAsync(order, ct));
            if (payment.ReceiptId.Length == 0)
            {
                // Stored as {"name":"PaymentError","message":"…","code":"E42"}: a TypeScript caller sees
                // err.name === 'PaymentError' and err.code === 'E42'.
                throw new DbosRecordedException("PaymentError", "the card was declined", "E42");
            }

            return payment.ReceiptId;
        });
        // </snippet:interop-recorded-error>
    }

    public static DbosConfig NativeAot()
    {
        // <snippet:interop-source-generated-json>
        // For trimmed or native AOT applications: a source-generated context covering the workflow and step types.
        var config = new DbosConfig
        {
            Name = "shop",
            ApplicationVersion = "2026-11-25",   // required under native AOT, where there is no IL to hash
            Serializer = new PortableJsonSerializer(new JsonSerializerOptions(JsonSerializerDefaults.Web)
            {
                Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
                TypeInfoResolver = ShopJsonContext.Default,
            }),
        };
        // </snippet:interop-source-generated-json>
        return config;
    }
}

public sealed record InvoiceRequest(string OrderId, decimal Amount);

public sealed record InvoiceResult(string InvoiceId, DateTimeOffset CreatedAt);

// <snippet:interop-json-context>
[JsonSerializable(typeof(Order))]
[JsonSerializable(typeof(Payment))]
[JsonSerializable(typeof(string))]
internal sealed partial class ShopJsonContext : JsonSerializerContext;
// </snippet:interop-json-context>
