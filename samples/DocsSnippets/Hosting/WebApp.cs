using Dbos;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace DocsSnippets.Hosting;

/// <summary>The examples of docs/hosting-and-telemetry.md.</summary>
public static class WebApp
{
    public static void Run(string[] args)
    {
        // <snippet:hosting-program>
        var builder = WebApplication.CreateBuilder(args);
        builder.Services.AddScoped<PaymentGateway>();
        builder.Services.AddSingleton<Warehouse>();
        builder.Services.AddDbos()                                 // DbosConfig from the "Dbos" section, then launched with the host
            .AddQueue("checkout", new QueueOptions { WorkerConcurrency = 4 })
            .AddWorkflow<CheckoutWorkflow, Order, Receipt>("checkout");

        var app = builder.Build();
        app.MapPost("/orders", async (Order order, [FromKeyedServices("checkout")] Workflow<Order, Receipt> checkout) =>
        {
            var handle = await checkout.StartAsync(order, new StartOptions { WorkflowId = order.Id, Queue = "checkout" });
            return Results.Accepted($"/orders/{handle.WorkflowId}");
        });
        app.MapGet("/orders/{id}", async (string id, DbosApp dbos) =>
            await dbos.GetWorkflowStatusAsync(id) is { } status ? Results.Ok(status.StatusText) : Results.NotFound());
        app.Run();
        // </snippet:hosting-program>
    }

    public static void Health(string[] args)
    {
        // <snippet:hosting-health>
        var builder = WebApplication.CreateBuilder(args);
        builder.Services.AddDbos()
            .AddWorkflow<CheckoutWorkflow, Order, Receipt>("checkout")
            .AddHealthChecks(timeout: TimeSpan.FromSeconds(3));    // the check "dbos", among the host's health checks

        var app = builder.Build();
        app.MapHealthChecks("/healthz");                           // 200 "Healthy" or "Degraded", 503 "Unhealthy"
        app.Run();
        // </snippet:hosting-health>
    }

    public static void More(IHostApplicationBuilder builder)
    {
        // <snippet:hosting-more>
        builder.Services.AddSingleton<Mailer>();
        builder.Services.AddDbos(config => config.ApplicationVersion = "2026-11-25")   // runs after the binding
            // A workflow written as a delegate resolves its services from the execution's scope.
            .AddWorkflow("notify", async (WorkflowContext ctx, string customer) =>
            {
                var mailer = ctx.Services.GetRequiredService<Mailer>();
                return await ctx.RunStepAsync("mail", ct => mailer.SendAsync(customer, "Your order has shipped.", ct));
            })
            // Anything else DbosApp offers, before it launches.
            .ConfigureApp((dbos, services) =>
                dbos.RegisterScheduledWorkflow("nightly-check", "0 0 3 * * *", async (WorkflowContext ctx, DateTimeOffset tick) =>
                    await ctx.RunStepAsync("count", ct => Task.FromResult(tick.Day))));
        // </snippet:hosting-more>
    }

    public static void Telemetry(IHostApplicationBuilder builder)
    {
        // <snippet:telemetry-opentelemetry>
        builder.Services.AddOpenTelemetry()
            .WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation()
                .AddSource(DbosInstrumentation.ActivitySourceName)
                .AddConsoleExporter())
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddMeter(DbosInstrumentation.MeterName)
                .AddConsoleExporter());
        // </snippet:telemetry-opentelemetry>
    }
}
