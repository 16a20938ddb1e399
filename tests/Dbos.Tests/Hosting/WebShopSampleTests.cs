using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Reflection;
using System.Text.Json;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Hosting;

/// <summary>samples/WebShop, run as a real ASP.NET Core process and driven over HTTP.</summary>
public class WebShopSampleTests
{
    private static readonly string[] CheckoutSteps = ["reserve-stock", "charge-card", "ship", "send-confirmation"];

    /// <summary>The sample's build output (the test project builds it first; see WebShopDll in Dbos.Tests.csproj).</summary>
    private static string WebShopDll => Path.GetFullPath(typeof(WebShopSampleTests).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "WebShopDll").Value!);

    [Theory, BothBackends]
    public async Task Orders_placed_over_HTTP_finish_and_one_killed_mid_checkout_finishes_after_a_restart_without_repeating_steps(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var database = "dbos_webshop_" + Guid.NewGuid().ToString("N")[..10];
        var environment = new Dictionary<string, string?>
        {
            ["DBOS_SYSTEM_DATABASE_URL"] = backend == Backend.Postgres ? TestDatabase.PostgresUrl(database) : null,
            ["ASPNETCORE_URLS"] = null,
            ["ASPNETCORE_ENVIRONMENT"] = null,
        };
        try
        {
            // 1. An order from start to finish, with OpenTelemetry's console exporter switched on.
            await using (var shop = await StartShopAsync(environment, db.Directory, "--telemetry", "console"))
            {
                var created = await shop.Http.PostAsJsonAsync("/orders", new { customer = "ada@example.com", item = "widget", quantity = 3, id = "order-1" });
                Assert.Equal(HttpStatusCode.Accepted, created.StatusCode);
                Assert.Equal("/orders/order-1", created.Headers.Location?.ToString());

                var order = await WaitUntilDoneAsync(shop.Http, "order-1");
                Assert.Equal("SUCCESS", order.GetProperty("status").GetString());
                Assert.Equal(CheckoutSteps, StepNames(order));
                var receipt = order.GetProperty("receipt");
                Assert.Equal("order-1", receipt.GetProperty("orderId").GetString());
                Assert.Equal(43.5m, receipt.GetProperty("charged").GetDecimal());
                Assert.StartsWith("TRK-", receipt.GetProperty("trackingNumber").GetString(), StringComparison.Ordinal);

                // The order ID is the workflow ID: posting it again is the same order, not a second one.
                var again = await shop.Http.PostAsJsonAsync("/orders", new { customer = "ada@example.com", item = "widget", quantity = 3, id = "order-1" });
                Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);

                var refused = await shop.Http.PostAsJsonAsync("/orders", new { customer = "ada@example.com", item = "spaceship", quantity = 1 });
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
                Assert.Equal(HttpStatusCode.NotFound, (await shop.Http.GetAsync("/orders/no-such-order")).StatusCode);
                Assert.Single(Lines(shop.Process, "[charge-card] order-1:"));

                // The health endpoint: DBOS is launched, its database reachable, its liveness held.
                var health = await shop.Http.GetAsync("/healthz");
                Assert.Equal((HttpStatusCode.OK, "Healthy"), (health.StatusCode, await health.Content.ReadAsStringAsync()));
            }

            // 2. The process kills itself once step 2 of the next order is checkpointed.
            await using (var crashing = await StartShopAsync(environment, db.Directory, "--crash-after-step", "2"))
            {
                try
                {
                    await crashing.Http.PostAsJsonAsync("/orders", new { customer = "grace@example.com", item = "gadget", quantity = 2, id = "order-2" });
                }
                catch (HttpRequestException)
                {
                    // The order is recorded before the response is sent; a crash that beats the response loses only the response.
                }

                Assert.NotEqual(0, await crashing.Process.WaitForExitAsync());
                var output = crashing.Process.Output;
                Assert.Contains("[reserve-stock] order-2: reserved 2 x gadget", output, StringComparison.Ordinal);
                Assert.Contains("[charge-card] order-2: charged $198.00", output, StringComparison.Ordinal);
                Assert.Contains("Step 2 of order-2 is checkpointed. Crashing now", output, StringComparison.Ordinal);
                Assert.DoesNotContain("[ship] order-2", output, StringComparison.Ordinal);
            }

            // 3. Restarted, the shop recovers the order and finishes it from step 3.
            await using var restarted = await StartShopAsync(environment, db.Directory);
            var recovered = await WaitUntilDoneAsync(restarted.Http, "order-2");
            Assert.Equal("SUCCESS", recovered.GetProperty("status").GetString());
            Assert.Equal(CheckoutSteps, StepNames(recovered));
            Assert.Equal(198m, recovered.GetProperty("receipt").GetProperty("charged").GetDecimal());

            var lines = restarted.Process.Output;
            Assert.DoesNotContain("[reserve-stock] order-2", lines, StringComparison.Ordinal);
            Assert.DoesNotContain("[charge-card] order-2", lines, StringComparison.Ordinal);
            Assert.Contains("[ship] order-2: shipped", lines, StringComparison.Ordinal);
            Assert.Contains("[send-confirmation] order-2: emailed grace@example.com", lines, StringComparison.Ordinal);
            Assert.DoesNotContain("order-1:", lines, StringComparison.Ordinal);

            // The payment recorded before the crash is the one on the receipt.
            var charge = recovered.GetProperty("steps")[1].GetProperty("output");
            Assert.Equal(charge.GetProperty("paymentId").GetString(), recovered.GetProperty("receipt").GetProperty("paymentId").GetString());

            var listed = await restarted.Http.GetFromJsonAsync<JsonElement>("/orders");
            Assert.Equal(["order-2", "order-1"], listed.EnumerateArray().Select(o => o.GetProperty("id").GetString()!).ToArray());
            if (backend == Backend.Sqlite)
            {
                Assert.True(File.Exists(Path.Combine(db.Directory, "webshop.sqlite")));
            }
        }
        finally
        {
            if (backend == Backend.Postgres)
            {
                await TestDatabase.DropPostgresDatabaseAsync(database);
            }
        }
    }

    [Fact]
    public async Task With_console_telemetry_an_order_posted_over_HTTP_is_one_trace_from_the_request_through_the_workflow_to_its_steps()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var environment = new Dictionary<string, string?> { ["ASPNETCORE_URLS"] = null, ["ASPNETCORE_ENVIRONMENT"] = null };
        await using var shop = await StartShopAsync(environment, db.Directory, "--telemetry", "console");

        var created = await shop.Http.PostAsJsonAsync("/orders", new { customer = "ada@example.com", item = "widget", quantity = 3, id = "traced-1" });
        Assert.Equal(HttpStatusCode.Accepted, created.StatusCode);
        Assert.Equal("SUCCESS", (await WaitUntilDoneAsync(shop.Http, "traced-1")).GetProperty("status").GetString());

        // The console exporter prints each span when it ends, as a block of "Activity.<Field>: value" lines. The request's
        // span may end a moment after its response arrives, and the workflow's ends after its last step: wait for each.
        string[] names = ["POST /orders", "enqueue checkout", "workflow checkout", .. CheckoutSteps.Select(s => $"step {s}")];
        foreach (var name in names)
        {
            await shop.Process.WaitForLineAsync(l => IsSpanField(l, "DisplayName", name));
        }

        // A block's Kind follows its DisplayName: the last block may still be being printed.
        await Eventually.HoldsAsync(
            () => Task.FromResult(names.All(n => Spans(shop.Process.StandardOutput).Any(s => s.DisplayName == n && s.Kind is not null))),
            "each span is printed whole");
        var spans = Spans(shop.Process.StandardOutput);
        ConsoleSpan Only(string name) => Assert.Single(spans, s => s.DisplayName == name);
        var request = Only("POST /orders");
        var enqueue = Only("enqueue checkout");
        var workflow = Only("workflow checkout");
        var steps = CheckoutSteps.Select(s => Only($"step {s}")).ToArray();

        // ASP.NET Core's span is recorded and is the root; DBOS's spans are in its trace: request -> enqueue -> workflow
        // (continuing the trace stored with the queued workflow) -> each step.
        Assert.Equal("Server", request.Kind);
        Assert.Null(request.ParentSpanId);
        Assert.Matches("^[0-9a-f]{32}$", request.TraceId);
        Assert.All([enqueue, workflow, .. steps], s => Assert.Equal(request.TraceId, s.TraceId));
        Assert.Equal(request.SpanId, enqueue.ParentSpanId);
        Assert.Equal(enqueue.SpanId, workflow.ParentSpanId);
        Assert.Equal("Consumer", workflow.Kind);
        Assert.All(steps, s => Assert.Equal(workflow.SpanId, s.ParentSpanId));
        Assert.Equal(names.Length, new HashSet<string>(new[] { request, enqueue, workflow }.Concat(steps).Select(s => s.SpanId)).Count);
    }

    /// <summary>One span as OpenTelemetry's console exporter prints it.</summary>
    private sealed record ConsoleSpan(string TraceId, string SpanId, string? ParentSpanId, string DisplayName, string? Kind);

    private static bool IsSpanField(string line, string field, string value) =>
        line.StartsWith($"Activity.{field}:", StringComparison.Ordinal) && line[(field.Length + 10)..].Trim() == value;

    /// <summary>
    /// The spans in the console exporter's output: each block starts with <c>Activity.TraceId:</c> (its fields follow in the
    /// order TraceId, SpanId, TraceFlags, ParentSpanId if any, DisplayName, Kind, ...). Lines of other output (the sample's
    /// own, logs) that fall between a block's lines are skipped: only <c>Activity.</c> fields are read.
    /// </summary>
    private static List<ConsoleSpan> Spans(string output)
    {
        var spans = new List<ConsoleSpan>();
        Dictionary<string, string>? fields = null;
        void Flush()
        {
            // A block still being printed may lack its later fields.
            if (fields is not null && fields.TryGetValue("SpanId", out var spanId) && fields.TryGetValue("DisplayName", out var displayName))
            {
                spans.Add(new ConsoleSpan(fields["TraceId"], spanId, fields.GetValueOrDefault("ParentSpanId"), displayName, fields.GetValueOrDefault("Kind")));
            }
        }

        foreach (var line in output.Split(Environment.NewLine))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (!line.StartsWith("Activity.", StringComparison.Ordinal) || colon < 0)
            {
                continue;
            }

            var field = line["Activity.".Length..colon];
            if (field == "TraceId")
            {
                Flush();
                fields = [];
            }

            fields?.TryAdd(field, line[(colon + 1)..].Trim());
        }

        Flush();
        return spans;
    }

    [Theory, BothBackends]
    public async Task The_shop_serves_the_dashboard_and_refuses_its_actions_to_users_the_policy_does_not_grant(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var database = "dbos_webshop_" + Guid.NewGuid().ToString("N")[..10];
        var environment = new Dictionary<string, string?>
        {
            ["DBOS_SYSTEM_DATABASE_URL"] = backend == Backend.Postgres ? TestDatabase.PostgresUrl(database) : null,
            ["ASPNETCORE_URLS"] = null,
            ["ASPNETCORE_ENVIRONMENT"] = null,
        };
        try
        {
            await using var shop = await StartShopAsync(environment, db.Directory);
            var created = await shop.Http.PostAsJsonAsync("/orders", new { customer = "ada@example.com", item = "widget", quantity = 3, id = "order-dash" });
            Assert.Equal(HttpStatusCode.Accepted, created.StatusCode);
            Assert.Equal("SUCCESS", (await WaitUntilDoneAsync(shop.Http, "order-dash")).GetProperty("status").GetString());

            // The pages read the application's own DbosApp (from AddDbos), under the path the application chose.
            var list = await shop.Http.GetStringAsync("/dbos/");
            Assert.Contains("order-dash", list, StringComparison.Ordinal);
            Assert.Contains("read-only", list, StringComparison.Ordinal); // Nobody is signed in, so nobody is an operator.
            var detail = await shop.Http.GetStringAsync("/dbos/workflow?id=order-dash");
            foreach (var step in CheckoutSteps)
            {
                Assert.Contains(step, detail, StringComparison.Ordinal);
            }

            Assert.DoesNotContain("/dbos/confirm", detail, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await shop.Http.GetAsync("/dbos/assets/dashboard.css")).StatusCode);

            // A policy is named but this user does not satisfy it: no confirmation page, no action, nothing changed.
            Assert.Equal(HttpStatusCode.Forbidden, (await shop.Http.GetAsync("/dbos/confirm?action=delete&id=order-dash")).StatusCode);
            var act = await shop.Http.PostAsync("/dbos/act", new FormUrlEncodedContent(new Dictionary<string, string> { ["action"] = "delete", ["id"] = "order-dash" }));
            Assert.Equal(HttpStatusCode.Forbidden, act.StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await shop.Http.GetAsync("/orders/order-dash")).StatusCode);
        }
        finally
        {
            if (backend == Backend.Postgres)
            {
                await TestDatabase.DropPostgresDatabaseAsync(database);
            }
        }
    }

    private sealed class RunningShop(WorkerProcess process, HttpClient http) : IAsyncDisposable
    {
        public WorkerProcess Process { get; } = process;

        public HttpClient Http { get; } = http;

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await Process.DisposeAsync();
        }
    }

    /// <summary>Starts the shop on a free loopback port and waits until it serves.</summary>
    private static async Task<RunningShop> StartShopAsync(Dictionary<string, string?> environment, string workingDirectory, params string[] arguments)
    {
        var url = $"http://127.0.0.1:{FreePort()}";
        var process = WorkerProcess.StartDll(WebShopDll, environment, workingDirectory, ["--urls", url, .. arguments]);
        try
        {
            await process.WaitForLineAsync("WebShop is ready.");
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }

        return new RunningShop(process, new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) });
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<JsonElement> WaitUntilDoneAsync(HttpClient http, string orderId)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var response = await http.GetAsync($"/orders/{orderId}");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var order = await response.Content.ReadFromJsonAsync<JsonElement>();
                if (order.GetProperty("status").GetString() is "SUCCESS" or "ERROR" or "CANCELLED")
                {
                    return order;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Order {orderId} did not finish; last answer: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            await Task.Delay(100);
        }
    }

    private static string[] StepNames(JsonElement order) =>
        [.. order.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()!)];

    private static IEnumerable<string> Lines(WorkerProcess process, string prefix) =>
        process.StandardOutput.Split(Environment.NewLine).Where(l => l.StartsWith(prefix, StringComparison.Ordinal));
}
