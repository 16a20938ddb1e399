using Dbos.Tests.Dashboard;
using Dbos.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Dbos.Tests.Interop;

/// <summary><c>dbos dashboard</c> against a system database that only the TypeScript SDK 5.3.0 wrote.</summary>
public class DashboardInteropTests
{
    private const string TypeScriptApp = """
        main(async () => {
          DBOS.setConfig({ name: 'ts-only', systemDatabaseUrl: url });
          const order = DBOS.registerWorkflow(async (item) => {
            const reserved = await DBOS.runStep(async () => `reserved ${item}`, { name: 'ts-reserve' });
            await DBOS.runStep(async () => 7, { name: 'ts-charge' });
            await DBOS.setEvent('state', 'charged');
            return reserved;
          }, { name: 'ts-order' });
          await DBOS.launch();
          const handle = await DBOS.startWorkflow(order, { workflowID: 'ts-order-1' })('book');
          report(await handle.getResult());
          await DBOS.shutdown();
        });
        """;

    [Fact]
    public async Task The_dashboard_lists_typescript_workflows_and_shows_their_steps()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var results = await Peer.RunAsync(db, TypeScriptApp);
        Assert.Equal("reserved book", Assert.Single(results).GetString());

        await using var server = await DashboardServer.StartAsync(db);
        await using var browser = await DashboardBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await DashboardBrowser.GoAsync(page, server.Url);
        await Assertions.Expect(page.Locator("table.workflows")).ToContainTextAsync("ts-order-1");
        await Assertions.Expect(page.Locator("table.workflows")).ToContainTextAsync("SUCCESS");

        await page.Locator("table.workflows").GetByRole(AriaRole.Link, new() { Name = "ts-order-1", Exact = true }).ClickAsync();
        var steps = page.Locator("table.steps");
        foreach (var text in (string[])["ts-reserve", "ts-charge", "DBOS.setEvent", "reserved book"])
        {
            await Assertions.Expect(steps).ToContainTextAsync(text);
        }

        await Assertions.Expect(page.Locator("section.value").Last).ToContainTextAsync("reserved book");
        await Assertions.Expect(page.Locator("section", new() { HasText = "Events" }).Last).ToContainTextAsync("state");

        foreach (var other in (string[])["queues", "executors", "schedules"])
        {
            await DashboardBrowser.GoAsync(page, server.Url + other);
        }

        browser.AssertNoErrors();
    }
}
