using System.Globalization;
using Dbos.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Dbos.Tests.Dashboard;

/// <summary>
/// The dashboard in a real headless browser, served by <c>dbos dashboard</c> as its own process against a database an
/// application in this process writes: every page, filters and paging over many workflows, every action with and without
/// the right, and user data that must never run as markup.
/// </summary>
public class DashboardTests
{
    /// <summary>An application with a workflow of every kind the pages show; the gate holds the blocked one.</summary>
    internal sealed class Seeded : IAsyncDisposable
    {
        public required DbosApp App { get; init; }

        public required TaskCompletionSource Gate { get; init; }

        public async ValueTask DisposeAsync()
        {
            Gate.TrySetResult();
            await App.DisposeAsync();
        }
    }

    internal static async Task<Seeded> SeedAsync(TestDatabase db)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("payments", new QueueOptions { Concurrency = 4 });
        var ship = dbos.RegisterWorkflow("ship", async (WorkflowContext ctx, string order) =>
        {
            await ctx.RunStepAsync("label", _ => Task.FromResult($"label for {order}"));
            return $"shipped {order}";
        });
        var checkout = dbos.RegisterWorkflow("checkout", async (WorkflowContext ctx, string order) =>
        {
            await ctx.RunStepAsync("reserve", _ => Task.FromResult(new { Order = order, Items = 3 }));
            await ctx.RunStepAsync("charge", async ct =>
            {
                await Task.Delay(30, ct);
                return 42.5m;
            });
            await ctx.SetEventAsync("progress", "charged");
            await ctx.WriteStreamAsync("log", "line one");
            await ctx.WriteStreamAsync("log", "line two");
            var shipped = await ship.RunAsync(order);
            return $"{shipped}, paid";
        });
        var failing = dbos.RegisterWorkflow<int, int>("refund", async (ctx, amount) =>
        {
            await ctx.RunStepAsync("lookup", _ => Task.FromResult(amount));
            throw new InvalidOperationException("card declined");
        });
        var blocked = dbos.RegisterWorkflow("approval", async (WorkflowContext ctx, string who) =>
        {
            await ctx.RunStepAsync("ask", _ => Task.FromResult(who));
            await gate.Task;
            return who;
        });
        dbos.RegisterScheduledWorkflow("nightly-report", "0 2 * * *", (ctx, at) => Task.FromResult(at.ToString("O", CultureInfo.InvariantCulture)));
        await dbos.LaunchAsync();
        await checkout.RunAsync("order-1", new StartOptions { WorkflowId = "wf-checkout" });
        await Task.Delay(5);
        await Assert.ThrowsAsync<WorkflowFailedException>(() => failing.RunAsync(10, new StartOptions { WorkflowId = "wf-refund" }));
        await Task.Delay(5);
        await blocked.StartAsync("ada", new StartOptions { WorkflowId = "wf-blocked" });
        await Eventually.OperationsRecordedAsync(db, "wf-blocked", 1);
        await dbos.SendAsync("wf-blocked", "please approve", "approvals");
        await Task.Delay(5);
        await ship.StartAsync("order-2", new StartOptions { WorkflowId = "wf-queued", Queue = "nobody-serves-this" });
        return new Seeded { App = dbos, Gate = gate };
    }

    [Theory, BothBackends]
    public async Task Every_page_renders_its_data_without_console_errors(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var seeded = await SeedAsync(db);
        await using var server = await DashboardServer.StartAsync(db, "--allow-actions");
        Assert.Contains("loopback only", server.Output, StringComparison.Ordinal);
        await using var browser = await DashboardBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        var suffix = backend.ToString().ToLowerInvariant();

        await DashboardBrowser.GoAsync(page, server.Url);
        foreach (var id in (string[])["wf-checkout", "wf-refund", "wf-blocked", "wf-queued", "wf-checkout-5"])
        {
            await Assertions.Expect(page.Locator("table.workflows")).ToContainTextAsync(id);
        }

        Assert.DoesNotContain(":dbos@", await page.ContentAsync(), StringComparison.Ordinal); // The URL's password is never shown.
        await DashboardBrowser.ScreenshotAsync(page, "workflows-" + suffix);

        await page.Locator("table.workflows").GetByRole(AriaRole.Link, new() { Name = "wf-checkout", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("wf-checkout");
        var steps = page.Locator("table.steps");
        foreach (var text in (string[])["reserve", "charge", "DBOS.setEvent", "wf-checkout-5", "42.5"])
        {
            await Assertions.Expect(steps).ToContainTextAsync(text);
        }

        await Assertions.Expect(page.Locator("section", new() { HasText = "Events" })).ToContainTextAsync("progress");
        await Assertions.Expect(page.Locator("section", new() { HasText = "Streams" }).Last).ToContainTextAsync("line two");
        await Assertions.Expect(page.Locator("section", new() { HasText = "Children" })).ToContainTextAsync("wf-checkout-5");
        await Assertions.Expect(page.Locator("section.value").Last).ToContainTextAsync("shipped order-1, paid");
        await DashboardBrowser.ScreenshotAsync(page, "workflow-" + suffix);

        await page.Locator("section", new() { HasText = "Children" }).Locator("a", new() { HasText = "wf-checkout-5" }).ClickAsync();
        await Assertions.Expect(page.Locator("dl.facts")).ToContainTextAsync("wf-checkout"); // Its parent, linked.

        await DashboardBrowser.GoAsync(page, server.Url + "workflow?id=wf-refund");
        await Assertions.Expect(page.Locator("section.value.error")).ToContainTextAsync("card declined");

        await DashboardBrowser.GoAsync(page, server.Url + "workflow?id=wf-blocked");
        await Assertions.Expect(page.Locator("section", new() { HasText = "Messages" }).Last).ToContainTextAsync("please approve");

        await DashboardBrowser.GoAsync(page, server.Url + "queues");
        await Assertions.Expect(page.Locator("table.grid")).ToContainTextAsync("nobody-serves-this");
        await DashboardBrowser.ScreenshotAsync(page, "queues-" + suffix);

        await DashboardBrowser.GoAsync(page, server.Url + "executors");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("test-version");
        await DashboardBrowser.ScreenshotAsync(page, "executors-" + suffix);

        await DashboardBrowser.GoAsync(page, server.Url + "schedules");
        await Assertions.Expect(page.Locator("table.grid")).ToContainTextAsync("nightly-report");
        await Assertions.Expect(page.Locator("table.grid")).ToContainTextAsync("0 2 * * *");
        await DashboardBrowser.ScreenshotAsync(page, "schedules-" + suffix);

        await DashboardBrowser.GoAsync(page, server.Url + "workflow?id=wf-blocked");
        await page.Locator(".actions a", new() { HasText = "Cancel" }).ClickAsync();
        await Assertions.Expect(page.Locator("section.confirm")).ToContainTextAsync("Cancel workflow wf-blocked?");
        await DashboardBrowser.ScreenshotAsync(page, "confirm-" + suffix);

        Assert.Equal(404, (await page.APIRequest.GetAsync(server.Url + "workflow?id=does-not-exist")).Status);
        browser.AssertNoErrors();
    }

    /// <summary>Inserts <paramref name="count"/> finished workflows with one statement: every tenth failed, every thousandth named "rare".</summary>
    private static Task InsertManyAsync(TestDatabase db, int count)
    {
        const string columns = "workflow_uuid, status, name, queue_name, executor_id, application_version, created_at, updated_at, completed_at";
        var row = db.Backend == Backend.Postgres
            ? "'bulk-' || lpad(i::text, 6, '0'), CASE WHEN i % 10 = 0 THEN 'ERROR' ELSE 'SUCCESS' END, CASE WHEN i % 1000 = 0 THEN 'rare' ELSE 'bulk' END, " +
              "CASE WHEN i % 2 = 0 THEN 'even' END, 'bulk-executor', 'v1', 1700000000000 + i * 1000, 1700000000000 + i * 1000 + 5, 1700000000000 + i * 1000 + 5"
            : "'bulk-' || substr('000000' || i, -6, 6), CASE WHEN i % 10 = 0 THEN 'ERROR' ELSE 'SUCCESS' END, CASE WHEN i % 1000 = 0 THEN 'rare' ELSE 'bulk' END, " +
              "CASE WHEN i % 2 = 0 THEN 'even' END, 'bulk-executor', 'v1', 1700000000000 + i * 1000, 1700000000000 + i * 1000 + 5, 1700000000000 + i * 1000 + 5";
        var sql = db.Backend == Backend.Postgres
            ? $"INSERT INTO {db.Table("workflow_status")} ({columns}) SELECT {row} FROM generate_series(1, {count}) AS i"
            : $"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) INSERT INTO workflow_status ({columns}) SELECT {row} FROM n";
        return db.ExecuteAsync(sql);
    }

    private static async Task<List<string>> ListedIdsAsync(IPage page) =>
        [.. await page.Locator("table.workflows tbody td.id a").AllTextContentsAsync()];

    [Theory, BothBackends]
    public async Task Filters_and_keyset_paging_over_a_hundred_thousand_workflows(Backend backend)
    {
        const int count = 100_000;
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync(); // Migrates the system database.
        }

        await InsertManyAsync(db, count);
        await using var server = await DashboardServer.StartAsync(db);
        await using var browser = await DashboardBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();

        // Newest first, 50 a page; "Older" continues after the last row, with no overlap and no gap.
        await DashboardBrowser.GoAsync(page, server.Url);
        var seen = new List<string>();
        for (var p = 0; p < 4; p++)
        {
            var ids = await ListedIdsAsync(page);
            Assert.Equal(50, ids.Count);
            seen.AddRange(ids);
            await page.Locator(".pager a.next").ClickAsync();
            await page.WaitForLoadStateAsync();
        }

        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"bulk-{count - i:000000}"), seen);

        // "Newer" goes back one page (keyset in the other direction), "Newest" to the first.
        await page.Locator(".pager a.newer").ClickAsync();
        await page.WaitForLoadStateAsync();
        Assert.Equal(seen[150..200], await ListedIdsAsync(page));
        await page.Locator(".pager a.newer").ClickAsync();
        await page.WaitForLoadStateAsync();
        Assert.Equal(seen[100..150], await ListedIdsAsync(page));
        await page.Locator(".pager a.newest").ClickAsync();
        await page.WaitForLoadStateAsync();
        Assert.Equal(seen[..50], await ListedIdsAsync(page));
        Assert.Equal(0, await page.Locator(".pager a.newer").CountAsync());

        // A filter with no index: 100 "rare" workflows, in two pages, the second without an "Older" link.
        await DashboardBrowser.GoAsync(page, server.Url + "?name=rare");
        var rare = await ListedIdsAsync(page);
        Assert.Equal(50, rare.Count);
        await page.Locator(".pager a.next").ClickAsync();
        await page.WaitForLoadStateAsync();
        rare.AddRange(await ListedIdsAsync(page));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"bulk-{(100 - i) * 1000:000000}"), rare);
        Assert.Equal(0, await page.Locator(".pager a.next").CountAsync());
        Assert.Equal(0, await page.Locator(".notice.warn").CountAsync());

        // Status, ID prefix and queue together, through the form.
        await DashboardBrowser.GoAsync(page, server.Url);
        await page.SelectOptionAsync("select[name=status]", "ERROR");
        await page.FillAsync("input[name=prefix]", "bulk-0999");
        await page.FillAsync("input[name=queue]", "even");
        await page.ClickAsync("form.filters button[type=submit]");
        await page.WaitForLoadStateAsync();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"bulk-{99990 - i * 10:000000}"), await ListedIdsAsync(page));
        await Assertions.Expect(page.Locator("table.workflows")).ToContainTextAsync("ERROR");

        // A time range (UTC): the workflows created in it, newest first.
        var from = DateTimeOffset.FromUnixTimeMilliseconds(1700000000000 + 1000 * 1000L).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture);
        var to = DateTimeOffset.FromUnixTimeMilliseconds(1700000000000 + 1019 * 1000L).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture);
        await DashboardBrowser.GoAsync(page, server.Url + $"?from={from}&to={to}&executor=bulk-executor&version=v1");
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"bulk-{1019 - i:000000}"), await ListedIdsAsync(page));
        await DashboardBrowser.ScreenshotAsync(page, "workflows-filtered-" + backend.ToString().ToLowerInvariant());

        // Live refresh replaces the results in place.
        await DashboardBrowser.GoAsync(page, server.Url + "?name=rare");
        await page.CheckAsync("#live");
        await Assertions.Expect(page.Locator("#refreshed")).ToContainTextAsync("Updated", new() { Timeout = 20_000 });
        Assert.Equal(50, (await ListedIdsAsync(page)).Count);
        browser.AssertNoErrors();
    }

    [Theory, BothBackends]
    public async Task A_bounded_scan_says_the_page_is_partial_and_continues(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync();
        }

        await InsertManyAsync(db, 5_000);
        await using var server = await DashboardServer.StartAsync(db, "--scan-limit", "1500");
        await using var browser = await DashboardBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();

        // Rare workflows are 1 in 1,000: a page that may read 1,500 rows finds one or two, and says it stopped.
        await DashboardBrowser.GoAsync(page, server.Url + "?name=rare");
        await Assertions.Expect(page.Locator(".notice.warn")).ToContainTextAsync("Partial result");
        var found = await ListedIdsAsync(page);
        Assert.Equal(["bulk-005000", "bulk-004000"], found);
        for (var hop = 0; hop < 4 && await page.Locator(".pager a.next").CountAsync() > 0; hop++)
        {
            await page.Locator(".pager a.next").ClickAsync();
            await page.WaitForLoadStateAsync();
            found.AddRange(await ListedIdsAsync(page));
        }

        Assert.Equal(["bulk-005000", "bulk-004000", "bulk-003000", "bulk-002000", "bulk-001000"], found);
        browser.AssertNoErrors();
    }

    internal static async Task<string?> StatusOfAsync(TestDatabase db, string workflowId) =>
        (await db.QueryAsync($"SELECT status FROM {db.Table("workflow_status")} WHERE workflow_uuid = '{workflowId}'", r => r.GetString(0))).SingleOrDefault();

    internal static async Task<IAPIResponse> PostActionAsync(IPage page, string url, Dictionary<string, string> fields)
    {
        var form = page.APIRequest.CreateFormData();
        foreach (var (name, value) in fields)
        {
            form.Set(name, value);
        }

        return await page.APIRequest.PostAsync(url + "act", new() { Form = form, MaxRedirects = 0 });
    }

    [Theory, BothBackends]
    public async Task Actions_are_refused_without_the_right_or_the_antiforgery_token(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var seeded = await SeedAsync(db);
        await using var browser = await DashboardBrowser.LaunchAsync();

        await using (var readOnly = await DashboardServer.StartAsync(db))
        {
            Assert.Contains("Read-only", readOnly.Output, StringComparison.Ordinal);
            var page = await browser.NewPageAsync();
            await DashboardBrowser.GoAsync(page, readOnly.Url + "workflow?id=wf-blocked");
            await Assertions.Expect(page.Locator(".where .mode")).ToHaveTextAsync("read-only");
            Assert.Equal(0, await page.Locator(".actions").CountAsync());
            Assert.Equal(403, (await page.APIRequest.GetAsync(readOnly.Url + "confirm?action=cancel&id=wf-blocked")).Status);
            var refused = await PostActionAsync(page, readOnly.Url, new() { ["action"] = "cancel", ["id"] = "wf-blocked" });
            Assert.Equal(403, refused.Status);
            refused = await PostActionAsync(page, readOnly.Url, new() { ["action"] = "delete", ["id"] = "wf-queued" });
            Assert.Equal(403, refused.Status);
        }

        await using (var granted = await DashboardServer.StartAsync(db, "--allow-actions"))
        {
            var page = await browser.NewPageAsync();
            await DashboardBrowser.GoAsync(page, granted.Url + "workflow?id=wf-blocked");
            var refused = await PostActionAsync(page, granted.Url, new() { ["action"] = "cancel", ["id"] = "wf-blocked" });
            Assert.Equal(403, refused.Status);

            // A token taken from a confirmation page, without its cookie (another browser's), is refused too.
            await page.Locator(".actions a", new() { HasText = "Cancel" }).ClickAsync();
            var token = await page.Locator("form input[name=__RequestVerificationToken]").GetAttributeAsync("value");
            var other = await browser.NewPageAsync();
            refused = await PostActionAsync(other, granted.Url, new() { ["action"] = "cancel", ["id"] = "wf-blocked", ["__RequestVerificationToken"] = token! });
            Assert.Equal(403, refused.Status);
        }

        Assert.Equal("PENDING", await StatusOfAsync(db, "wf-blocked"));
        Assert.Equal("ENQUEUED", await StatusOfAsync(db, "wf-queued"));
        browser.AssertNoErrors();
    }

    [Theory, BothBackends]
    public async Task Every_action_works_with_the_right(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var seeded = await SeedAsync(db);
        await using var server = await DashboardServer.StartAsync(db, "--allow-actions");
        await using var browser = await DashboardBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await TakeEveryActionAsync(page, server.Url, db, seeded);
        browser.AssertNoErrors();
    }

    /// <summary>
    /// Takes every action through the pages of the dashboard at <paramref name="url"/> (whose user has the right), and
    /// checks each one's effect in the database.
    /// </summary>
    internal static async Task TakeEveryActionAsync(IPage page, string url, TestDatabase db, Seeded seeded)
    {
        async Task ConfirmAsync(string expected)
        {
            await Assertions.Expect(page.Locator("section.confirm")).ToContainTextAsync(expected);
            // The confirmation posts a form that the server answers with a redirect. Waiting for the "load" state after it
            // once hung for 30 s on a loaded machine although the page had arrived; waiting for the result's own notice
            // (the confirmation page has none) does not depend on when the browser reports the load.
            await page.ClickAsync("#confirm");
            await Assertions.Expect(page.Locator(".notice.ok")).ToBeVisibleAsync(new() { Timeout = 30_000 });
        }

        // Cancel, then resume: the process running the application sees both.
        await DashboardBrowser.GoAsync(page, url + "workflow?id=wf-blocked");
        await page.Locator(".actions a", new() { HasText = "Cancel" }).ClickAsync();
        await ConfirmAsync("Cancel workflow wf-blocked?");
        Assert.Equal("CANCELLED", await StatusOfAsync(db, "wf-blocked"));
        await page.Locator(".actions a", new() { HasText = "Resume" }).ClickAsync();
        await ConfirmAsync("Resume workflow wf-blocked?");
        Assert.NotEqual("CANCELLED", await StatusOfAsync(db, "wf-blocked"));
        seeded.Gate.TrySetResult();
        await Eventually.StatusAsync(db, "wf-blocked", "SUCCESS");

        // Fork from a chosen step: the new workflow's page says so, and the row records where it came from.
        await DashboardBrowser.GoAsync(page, url + "workflow?id=wf-checkout");
        await page.Locator("table.steps tr", new() { HasText = "charge" }).Locator("a", new() { HasText = "Fork here" }).ClickAsync();
        await ConfirmAsync("Fork workflow wf-checkout from step 1?");
        var forkId = await page.Locator("h1").TextContentAsync();
        Assert.NotEqual("wf-checkout", forkId);
        Assert.Equal(["wf-checkout"], await db.QueryAsync($"SELECT forked_from FROM {db.Table("workflow_status")} WHERE workflow_uuid = '{forkId}'", r => r.GetString(0)));
        await Eventually.StatusAsync(db, forkId!, "SUCCESS");

        // Priority, then delete.
        await DashboardBrowser.GoAsync(page, url + "workflow?id=wf-queued");
        await page.FillAsync(".actions input[name=priority]", "7");
        await page.Locator(".actions button", new() { HasText = "Set priority" }).ClickAsync();
        await ConfirmAsync("priority of workflow wf-queued to 7");
        Assert.Equal([7L], await db.QueryAsync($"SELECT priority FROM {db.Table("workflow_status")} WHERE workflow_uuid = 'wf-queued'", r => Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture)));
        await page.Locator(".actions a", new() { HasText = "Delete" }).ClickAsync();
        await ConfirmAsync("Delete workflow wf-queued?");
        Assert.Null(await StatusOfAsync(db, "wf-queued"));

        // Schedules: pause, resume, trigger.
        await DashboardBrowser.GoAsync(page, url + "schedules");
        await page.Locator("td.row-actions a", new() { HasText = "Pause" }).ClickAsync();
        await ConfirmAsync("Pause schedule nightly-report?");
        Assert.Equal(ScheduleStatus.Paused, (await seeded.App.ListSchedulesAsync()).Single().Status);
        await page.Locator("td.row-actions a", new() { HasText = "Resume" }).ClickAsync();
        await ConfirmAsync("Resume schedule nightly-report?");
        Assert.Equal(ScheduleStatus.Active, (await seeded.App.ListSchedulesAsync()).Single().Status);
        await page.Locator("td.row-actions a", new() { HasText = "Trigger" }).ClickAsync();
        await ConfirmAsync("Run schedule nightly-report once now?");
        var triggered = await page.Locator("h1").TextContentAsync();
        await Eventually.StatusAsync(db, triggered!, "SUCCESS");

        // Backfill: one run per tick of the range (02:00 UTC on three days), under the ticks' own IDs.
        await DashboardBrowser.GoAsync(page, url + "schedules");
        await page.FillAsync("td.row-actions input[name=start]", "2026-01-01T00:00");
        await page.FillAsync("td.row-actions input[name=end]", "2026-01-03T03:00");
        await page.Locator("td.row-actions button", new() { HasText = "Backfill" }).ClickAsync();
        await ConfirmAsync("Run schedule nightly-report for every tick from 2026-01-01 00:00:00.000 to 2026-01-03 03:00:00.000 (UTC)?");
        foreach (var day in (string[])["01", "02", "03"])
        {
            await Eventually.StatusAsync(db, $"sched-nightly-report-2026-01-{day}T02:00:00.000Z", "SUCCESS");
        }
    }

    [Theory, BothBackends]
    public async Task User_data_is_shown_as_text_and_never_runs(Backend backend)
    {
        const string hostile = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">\"'&";
        await using var db = await TestDatabase.CreateAsync(backend);
        await using (var app = DbosApp.Create(db.Config()))
        {
            var echo = app.RegisterWorkflow("<b>echo</b>", async (WorkflowContext ctx, string text) =>
            {
                await ctx.RunStepAsync("<i>step</i>", _ => Task.FromResult(text));
                await ctx.SetEventAsync("note", text);
                return text;
            });
            await app.LaunchAsync();
            await echo.RunAsync(hostile, new StartOptions { WorkflowId = "wf-<script>alert(1)</script>" });
        }

        await using var browser = await DashboardBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await using (var server = await DashboardServer.StartAsync(db))
        {
            await DashboardBrowser.GoAsync(page, server.Url);
            await Assertions.Expect(page.Locator("table.workflows")).ToContainTextAsync("<b>echo</b>");
            await page.Locator("table.workflows a").First.ClickAsync();
            await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("wf-<script>alert(1)</script>");
            // Shown as the stored JSON text, every character visible.
            await Assertions.Expect(page.Locator("section.value").First).ToContainTextAsync("<script>window.__xss = 1</script><img src=x onerror=");
            await Assertions.Expect(page.Locator("table.steps")).ToContainTextAsync("<i>step</i>");
            Assert.True(await page.EvaluateAsync<bool>("() => window.__xss === undefined"));
            Assert.Equal(0, await page.Locator("main script, main img, main b, main i").CountAsync());
        }

        await using (var hidden = await DashboardServer.StartAsync(db, "--hide-values"))
        {
            await DashboardBrowser.GoAsync(page, hidden.Url + "workflow?id=" + Uri.EscapeDataString("wf-<script>alert(1)</script>"));
            await Assertions.Expect(page.Locator("section.value").First).ToContainTextAsync("Hidden by the dashboard's settings");
            Assert.DoesNotContain("__xss = 1", await page.ContentAsync(), StringComparison.Ordinal);
        }

        browser.AssertNoErrors();
    }
}
