// DBOS for .NET in ASP.NET Core: a web shop whose checkout is a durable workflow.
//
//   dotnet run --project samples/WebShop                               listens on http://localhost:5000 (or --urls, ASPNETCORE_URLS)
//   curl -i localhost:5000/orders -H 'Content-Type: application/json' -d '{"customer":"ada@example.com","item":"widget","quantity":3}'
//   curl localhost:5000/orders/<id>                                    the order's status, its checkpointed steps and its receipt
//   dotnet run --project samples/WebShop -- --crash-after-step 2        the process kills itself once an order's step 2 is checkpointed;
//                                                                       run it again without the flag and the order finishes from step 3
//   open http://localhost:5000/dbos/                                  the DBOS dashboard: orders as workflows, with their steps
//   dotnet run --project samples/WebShop -- --telemetry console         also prints traces (each request's span, with its DBOS
//                                                                       workflow and step spans in the same trace) and metrics
//
// The system database is DBOS_SYSTEM_DATABASE_URL (or Dbos__SystemDatabaseUrl) if it is set, for example
// postgresql://user:password@localhost:5432/webshop; else sqlite:///webshop.sqlite (after Dbos:Name in appsettings.json),
// relative to the process's working directory. dotnet run starts a web project in its project directory, so that is
// samples/WebShop/webshop.sqlite from wherever you run it; running the built program directly puts it in your current directory.
using System.Text.Json;
using Dbos;
using Dbos.Dashboard;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using WebShop;

// appsettings.json sits next to the program, so the shop finds it from any working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);

builder.Services.AddSingleton<Catalog>();
builder.Services.AddSingleton<Warehouse>();
builder.Services.AddSingleton<Mailer>();
builder.Services.AddScoped<PaymentGateway>();   // scoped: each workflow execution gets its own payment session
builder.Services.AddSingleton<CrashSwitch>();

// DBOS: settings from the "Dbos" section of appsettings.json; the checkout workflow runs on a queue.
// Its health check reports whether DBOS can do its work (database reachable, liveness held…), at /healthz below.
builder.Services.AddDbos()
    .AddQueue(CheckoutWorkflow.Queue, new QueueOptions { WorkerConcurrency = 4 })
    .AddWorkflow<CheckoutWorkflow, Order, Receipt>(CheckoutWorkflow.Name)
    .AddHealthChecks();

// The DBOS dashboard under /dbos. Actions (cancel, resume, fork, delete, priority) are granted to users in the "operator"
// role; this sample signs nobody in, so its dashboard only reads. A real application protects the pages too
// (RequireAuthorization on what MapDbosDashboard returns): they show the orders' inputs and outputs.
builder.Services.AddDbosDashboard();
builder.Services.AddAuthorizationBuilder().AddPolicy("dbos-operators", policy => policy.RequireRole("operator"));

// With --telemetry console (or TELEMETRY=console), traces and metrics are printed by OpenTelemetry's console exporter.
// ASP.NET Core's instrumentation records each request's span, and DBOS's spans join its trace: the request's span is the
// parent of "enqueue checkout", whose trace the workflow's span continues when the queue runs it, with a span per step.
// Without it the request's activity still exists but is never sampled, and so neither are DBOS's spans under it.
if (string.Equals(builder.Configuration["telemetry"], "console", StringComparison.OrdinalIgnoreCase))
{
    builder.Services.AddOpenTelemetry()
        .ConfigureResource(resource => resource.AddService("webshop"))
        .WithTracing(tracing => tracing
            .AddAspNetCoreInstrumentation()
            .AddSource(DbosInstrumentation.ActivitySourceName)
            .AddConsoleExporter())
        .WithMetrics(metrics => metrics
            .AddAspNetCoreInstrumentation()
            .AddMeter(DbosInstrumentation.MeterName)
            .AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 10_000));
}

var app = builder.Build();

// Healthy, Degraded or Unhealthy (HTTP 503), for a load balancer or an orchestrator's probes.
app.MapHealthChecks("/healthz");

// Starts a checkout. The order's ID is the workflow's ID: posting the same ID again returns the same order.
app.MapPost("/orders", async (
    OrderRequest request,
    [FromKeyedServices(CheckoutWorkflow.Name)] Workflow<Order, Receipt> checkout,
    Catalog catalog,
    CancellationToken cancellationToken) =>
{
    if (catalog.PriceOf(request.Item) is not { } unitPrice)
    {
        return Results.BadRequest(new { error = $"Unknown item '{request.Item}'. The shop sells: {string.Join(", ", catalog.Items)}." });
    }

    if (request.Quantity is < 1 or > 100 || string.IsNullOrWhiteSpace(request.Customer))
    {
        return Results.BadRequest(new { error = "An order needs a customer and a quantity from 1 to 100." });
    }

    var id = string.IsNullOrWhiteSpace(request.Id) ? $"order-{Guid.NewGuid():N}"[..18] : request.Id;
    var order = new Order(id, request.Customer, request.Item, request.Quantity, unitPrice);
    var handle = await checkout.StartAsync(order, new StartOptions { WorkflowId = id, Queue = CheckoutWorkflow.Queue }, cancellationToken);
    return Results.Accepted($"/orders/{handle.WorkflowId}", new { id = handle.WorkflowId });
});

// An order: the workflow's status, each checkpointed step with its recorded output, and the receipt once it is done.
app.MapGet("/orders/{id}", async (string id, DbosApp dbos, CancellationToken cancellationToken) =>
{
    var status = await dbos.GetWorkflowStatusAsync(id, cancellationToken);
    if (status is null || status.Name != CheckoutWorkflow.Name)
    {
        return Results.NotFound(new { error = $"No order '{id}'." });
    }

    var steps = await dbos.ListWorkflowStepsAsync(id, cancellationToken);
    return Results.Ok(new OrderView(
        id,
        status.StatusText,
        status.GetInput<Order>(),
        [.. steps.Select(s => new StepView(s.FunctionId, s.Name, s.RawOutput is null ? null : JsonDocument.Parse(s.RawOutput).RootElement.Clone(), s.Error?.Message))],
        status.State == WorkflowState.Success ? status.GetOutput<Receipt>() : null,
        status.Error?.Message));
});

// The latest orders, newest first.
app.MapGet("/orders", async (DbosApp dbos, CancellationToken cancellationToken) =>
{
    var orders = await dbos.ListWorkflowsAsync(
        new ListWorkflowsOptions { Name = CheckoutWorkflow.Name, Limit = 20, SortDescending = true, LoadOutput = false },
        cancellationToken);
    return orders.Select(o => new { id = o.WorkflowId, status = o.StatusText, createdAt = o.CreatedAt });
});

app.MapDbosDashboard("/dbos", options => options.ActionsPolicy = "dbos-operators");

app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"WebShop is ready. System database: {app.Services.GetRequiredService<DbosApp>().SystemDatabase}"));

await app.RunAsync();

/// <summary>The body of POST /orders. <c>Id</c> is optional: give one to make retries of the request idempotent.</summary>
internal sealed record OrderRequest(string Customer, string Item, int Quantity, string? Id = null);

internal sealed record StepView(int Step, string Name, JsonElement? Output, string? Error);

internal sealed record OrderView(string Id, string Status, Order? Order, IReadOnlyList<StepView> Steps, Receipt? Receipt, string? Error);
