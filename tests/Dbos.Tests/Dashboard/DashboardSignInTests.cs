using System.Globalization;
using System.Reflection;
using Dbos.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Dbos.Tests.Dashboard;

/// <summary>
/// The dashboard's actions granted the way an application grants them: an ASP.NET Core authorization policy (the
/// "operator" role) satisfied by a user who signed in with a cookie, in tests/Dbos.Tests.DashboardHost, run as its own
/// process and driven by a real browser.
/// </summary>
public class DashboardSignInTests
{
    /// <summary>The host's build output (the test project builds it first; see DashboardHostDll in Dbos.Tests.csproj).</summary>
    private static string HostDll => Path.GetFullPath(typeof(DashboardSignInTests).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "DashboardHostDll").Value!);

    private static async Task<(WorkerProcess Process, string Url)> StartHostAsync(TestDatabase db)
    {
        var environment = new Dictionary<string, string?> { ["DBOS_TEST_URL"] = db.Url, ["DBOS_TEST_SCHEMA"] = db.Schema };
        var process = WorkerProcess.StartDll(HostDll, environment, db.Directory, "--urls", "http://127.0.0.1:0");
        try
        {
            var line = await process.WaitForLineAsync("listening ", TimeSpan.FromSeconds(60));
            return (process, line["listening ".Length..]);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every workflow's status, priority and origin, and every schedule's status: what an action would change.</summary>
    private static async Task<string> SnapshotAsync(TestDatabase db, DbosApp app)
    {
        var rows = await db.QueryAsync(
            $"SELECT workflow_uuid, status, priority, COALESCE(forked_from, '') FROM {db.Table("workflow_status")} ORDER BY workflow_uuid",
            r => $"{r.GetString(0)} {r.GetString(1)} {Convert.ToInt64(r.GetValue(2), CultureInfo.InvariantCulture)} {r.GetString(3)}");
        var schedules = (await app.ListSchedulesAsync()).Select(s => $"{s.Name} {s.Status}");
        return string.Join("\n", rows.Concat(schedules));
    }

    [Theory, BothBackends]
    public async Task A_signed_in_operator_takes_every_action_and_a_user_without_the_role_is_refused_and_changes_nothing(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var seeded = await DashboardTests.SeedAsync(db);
        var (host, root) = await StartHostAsync(db);
        await using var _ = host;
        var dashboard = root + "dbos/";
        await using var browser = await DashboardBrowser.LaunchAsync();
        var before = await SnapshotAsync(db, seeded.App);

        // Ada signed in without the operator role: the pages read, and every action is refused with 403.
        var withoutRole = await browser.NewPageAsync();
        await DashboardBrowser.GoAsync(withoutRole, root + "signin?user=ada");
        await Assertions.Expect(withoutRole.Locator(".where .mode")).ToHaveTextAsync("read-only");
        await DashboardBrowser.GoAsync(withoutRole, dashboard + "workflow?id=wf-blocked");
        Assert.Equal(0, await withoutRole.Locator(".actions").CountAsync());
        await DashboardBrowser.GoAsync(withoutRole, dashboard + "schedules");
        Assert.Equal(0, await withoutRole.Locator("td.row-actions").CountAsync());
        Assert.Equal(403, (await withoutRole.APIRequest.GetAsync(dashboard + "confirm?action=cancel&id=wf-blocked")).Status);
        Dictionary<string, string>[] every =
        [
            new() { ["action"] = "cancel", ["id"] = "wf-blocked" },
            new() { ["action"] = "resume", ["id"] = "wf-refund" },
            new() { ["action"] = "fork", ["id"] = "wf-checkout", ["step"] = "1" },
            new() { ["action"] = "priority", ["id"] = "wf-queued", ["priority"] = "7" },
            new() { ["action"] = "delete", ["id"] = "wf-queued" },
            new() { ["action"] = "pause", ["schedule"] = "nightly-report" },
            new() { ["action"] = "unpause", ["schedule"] = "nightly-report" },
            new() { ["action"] = "trigger", ["schedule"] = "nightly-report" },
            new() { ["action"] = "backfill", ["schedule"] = "nightly-report", ["start"] = "2026-01-01T00:00", ["end"] = "2026-01-03T03:00" },
        ];
        foreach (var fields in every)
        {
            var refused = await DashboardTests.PostActionAsync(withoutRole, dashboard, fields);
            Assert.True(refused.Status == 403, $"{fields["action"]} answered {refused.Status} to a user without the role");
        }

        // Nobody signed in: refused too.
        var anonymous = await browser.NewPageAsync();
        Assert.Equal(403, (await DashboardTests.PostActionAsync(anonymous, dashboard, every[0])).Status);
        Assert.Equal(before, await SnapshotAsync(db, seeded.App));

        // Ada signed in with the role (another browser session): every action works from the pages, and its effect is in
        // the database.
        var ada = await browser.NewPageAsync();
        await DashboardBrowser.GoAsync(ada, root + "signin?user=ada&role=operator");
        await Assertions.Expect(ada.Locator(".where .mode")).ToHaveTextAsync("actions enabled");
        await DashboardTests.TakeEveryActionAsync(ada, dashboard, db, seeded);

        // The session without the role still has none after the operator's actions: the right is the session's claims'.
        Assert.Equal(403, (await DashboardTests.PostActionAsync(withoutRole, dashboard, new() { ["action"] = "pause", ["schedule"] = "nightly-report" })).Status);
        Assert.Equal(ScheduleStatus.Active, (await seeded.App.ListSchedulesAsync()).Single().Status);
        browser.AssertNoErrors();
    }
}
