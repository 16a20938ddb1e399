using System.Globalization;
using Dbos.SystemDatabase;
using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Playwright;
using Npgsql;

namespace Dbos.Tests.Dashboard;

/// <summary>
/// The dashboard's charts over time: the bucketed reads (SystemDatabase.Activity.cs) on rows with known times, and the
/// activity and queues pages in a real browser.
/// </summary>
public class DashboardActivityTests
{
    /// <summary>A whole minute, so that a window of minutes ending near it starts on a bucket boundary.</summary>
    private const long Minute = 60_000;

    private static readonly long Base = 1_699_999_980_000; // 28,333,333 whole minutes.

    private static async Task<(TestDatabase Db, DbosClient Client)> CreateAsync(Backend backend)
    {
        var db = await TestDatabase.CreateAsync(backend);
        await using (var app = DbosApp.Create(db.Config()))
        {
            await app.LaunchAsync(); // Migrates the system database.
        }

        return (db, DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema }));
    }

    private static Task InsertAsync(TestDatabase db, string id, string status, long createdAt, long? completedAt = null, string? queue = null, long? startedAt = null, long? delayUntil = null)
    {
        static string Value(long? v) => v is { } x ? x.ToString(CultureInfo.InvariantCulture) : "NULL";
        return db.ExecuteAsync(
            $"INSERT INTO {db.Table("workflow_status")} (workflow_uuid, status, name, queue_name, created_at, updated_at, started_at_epoch_ms, completed_at, delay_until_epoch_ms) " +
            $"VALUES ('{id}', '{status}', 'w', {(queue is null ? "NULL" : $"'{queue}'")}, {createdAt}, {completedAt ?? startedAt ?? createdAt}, {Value(startedAt)}, {Value(completedAt)}, {Value(delayUntil)})");
    }

    [Fact]
    public void A_window_ends_with_the_bucket_that_holds_now_and_starts_on_a_bucket_boundary()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(Base + (10 * Minute) + 30_000));
        var window = ActivityWindow.Ending(clock.GetUtcNow(), TimeSpan.FromMinutes(1), 10);
        Assert.Equal(Base + Minute, window.FromEpochMs);
        Assert.Equal(Base + (11 * Minute), window.ToEpochMs);

        var quarters = ActivityWindow.Ending(clock.GetUtcNow(), TimeSpan.FromMinutes(15), 96);
        Assert.Equal(0, quarters.FromEpochMs % (15 * Minute));
        Assert.True(quarters.ToEpochMs > clock.GetUtcNow().ToUnixTimeMilliseconds());
        Assert.Equal(TimeSpan.FromHours(24).TotalMilliseconds, quarters.ToEpochMs - quarters.FromEpochMs);
    }

    [Theory, BothBackends]
    public async Task Started_and_finished_workflows_are_counted_in_their_buckets(Backend backend)
    {
        var (db, client) = await CreateAsync(backend);
        await using var _ = db;
        await using var __ = client;
        var clock = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(Base + (10 * Minute) + 30_000));
        var window = ActivityWindow.Ending(clock.GetUtcNow(), TimeSpan.FromMinutes(1), 10);
        var f = window.FromEpochMs;

        await InsertAsync(db, "a1", "SUCCESS", f, completedAt: f + 30_000);
        await InsertAsync(db, "a2", "ERROR", f + Minute - 1, completedAt: f + Minute); // Started in bucket 0, failed at the first instant of bucket 1.
        await InsertAsync(db, "a3", "CANCELLED", f + Minute, completedAt: (5 * Minute) + f + 1);
        await InsertAsync(db, "a4", "SUCCESS", f - 1, completedAt: f + (10 * Minute) - 1); // Created before the window, finished in its last instant.
        await InsertAsync(db, "a5", "PENDING", f + (10 * Minute)); // Created when the window closes: outside it.
        await InsertAsync(db, "a6", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", f + (2 * Minute), completedAt: f + (2 * Minute) + 10);
        await InsertAsync(db, "a7", "PENDING", f + (3 * Minute));
        await InsertAsync(db, "a8", "SUCCESS", f - 100_000, completedAt: f - 1); // Wholly before the window.

        var activity = await client.External.Database.GetWorkflowActivityAsync(window, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.NotNull(activity);
        Assert.Equal([2L, 1, 1, 1, 0, 0, 0, 0, 0, 0], activity.Started);
        Assert.Equal([1L, 0, 0, 0, 0, 0, 0, 0, 0, 1], activity.Succeeded);
        Assert.Equal([0L, 1, 1, 0, 0, 0, 0, 0, 0, 0], activity.Failed);
        Assert.Equal([0L, 0, 0, 0, 0, 1, 0, 0, 0, 0], activity.Cancelled);
    }

    [Theory, BothBackends]
    public async Task Queue_depth_and_waits_are_rebuilt_per_bucket_from_enqueue_and_start_times(Backend backend)
    {
        var (db, client) = await CreateAsync(backend);
        await using var _ = db;
        await using var __ = client;
        var window = ActivityWindow.Ending(DateTimeOffset.FromUnixTimeMilliseconds(Base + (10 * Minute) + 30_000), TimeSpan.FromMinutes(1), 10);
        var f = window.FromEpochMs;

        // Waiting when the window opens: q1 (starts in bucket 0), q2 (still enqueued), q8 (still delayed).
        await InsertAsync(db, "q1", "SUCCESS", f - (2 * Minute), completedAt: f + 40_000, queue: "q", startedAt: f + 30_000);
        await InsertAsync(db, "q2", "ENQUEUED", f - Minute, queue: "q");
        await InsertAsync(db, "q8", "DELAYED", f - 5_000, queue: "q", delayUntil: f + (20 * Minute));
        // Arrive in bucket 1: q3 starts in bucket 3; q4 was delayed until bucket 4 and starts 500 ms after its delay ends.
        await InsertAsync(db, "q3", "PENDING", f + Minute, queue: "q", startedAt: f + (3 * Minute));
        await InsertAsync(db, "q4", "SUCCESS", f + Minute + 1, completedAt: f + (4 * Minute) + 900, queue: "q", startedAt: f + (4 * Minute) + 500, delayUntil: f + (4 * Minute));
        // Arrive in bucket 2 and stay; arrive in bucket 3 and finish in bucket 6 without ever starting.
        await InsertAsync(db, "q5", "ENQUEUED", f + (2 * Minute), queue: "q");
        await InsertAsync(db, "q6", "ERROR", f + (3 * Minute), completedAt: f + (6 * Minute), queue: "q");
        // Started before the window opened: never counted.
        await InsertAsync(db, "q7", "SUCCESS", f - 1_000, completedAt: f - 100, queue: "q", startedAt: f - 500);
        // Another queue, one arrival in the last bucket; and a workflow on no queue.
        await InsertAsync(db, "r1", "ENQUEUED", f + (9 * Minute), queue: "r");
        await InsertAsync(db, "n1", "SUCCESS", f + Minute, completedAt: f + (2 * Minute));

        var queues = await client.External.Database.GetQueueActivityAsync(window, null, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.NotNull(queues);
        Assert.Equal(["q", "r"], queues.Select(q => q.QueueName));
        var q = queues[0];
        Assert.Equal([2L, 4, 5, 5, 4, 4, 3, 3, 3, 3], q.Depth);
        Assert.Equal([1L, 0, 0, 1, 1, 0, 0, 0, 0, 0], q.Started);
        Assert.Equal([150_000L, 0, 0, 2 * Minute, 500, 0, 0, 0, 0, 0], q.TotalWaitMs);
        Assert.Equal(q.TotalWaitMs, q.MaxWaitMs); // One start per bucket.
        Assert.Equal([0L, 0, 0, 0, 0, 0, 0, 0, 0, 1], queues[1].Depth);
        Assert.Equal(new long[10], queues[1].Started);

        // One queue alone reads the same.
        var only = await client.External.Database.GetQueueActivityAsync(window, "r", TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(queues[1].Depth, Assert.Single(only!).Depth);
    }

    [Fact]
    public async Task A_chart_read_past_its_statement_timeout_is_reported_as_timed_out_not_failed()
    {
        var (db, client) = await CreateAsync(Backend.Postgres);
        await using var _ = db;
        await using var __ = client;
        var window = ActivityWindow.Ending(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1), 60);

        // Another session holds the table: the reads wait for it, and the timeout (which counts lock waits) stops them.
        await using var holder = new NpgsqlConnection(TestDatabase.ConnectionString(db.Url));
        await holder.OpenAsync();
        await using (var transaction = await holder.BeginTransactionAsync())
        {
            await using (var lockTable = new NpgsqlCommand($"LOCK TABLE {db.Table("workflow_status")} IN ACCESS EXCLUSIVE MODE", holder, transaction))
            {
                await lockTable.ExecuteNonQueryAsync();
            }

            Assert.Null(await client.External.Database.GetWorkflowActivityAsync(window, TimeSpan.FromMilliseconds(300), CancellationToken.None));
            Assert.Null(await client.External.Database.GetQueueActivityAsync(window, null, TimeSpan.FromMilliseconds(300), CancellationToken.None));
            await transaction.RollbackAsync();
        }

        Assert.NotNull(await client.External.Database.GetWorkflowActivityAsync(window, TimeSpan.FromMilliseconds(300), CancellationToken.None));
    }

    [Theory, BothBackends]
    public async Task The_activity_and_queues_pages_draw_their_charts_without_console_errors(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (var app = DbosApp.Create(db.Config()))
        {
            app.RegisterQueue("payments", new QueueOptions { Concurrency = 2 });
            var pay = app.RegisterWorkflow("pay", async (WorkflowContext ctx, int amount) =>
            {
                await ctx.RunStepAsync("charge", _ => Task.FromResult(amount));
                return amount;
            });
            var fail = app.RegisterWorkflow<int, int>("fail", (ctx, amount) => throw new InvalidOperationException("declined"));
            await app.LaunchAsync();
            var handles = new List<WorkflowHandle<int>>();
            for (var i = 0; i < 12; i++)
            {
                handles.Add(await pay.StartAsync(i, new StartOptions { Queue = "payments" }));
            }

            foreach (var handle in handles)
            {
                await handle.GetResultAsync();
            }

            for (var i = 0; i < 3; i++)
            {
                await Assert.ThrowsAsync<WorkflowFailedException>(() => fail.RunAsync(i));
            }

            // Left waiting on a queue nobody serves: the depth chart ends at 2.
            await pay.StartAsync(100, new StartOptions { Queue = "nobody-serves-this" });
            await pay.StartAsync(101, new StartOptions { Queue = "nobody-serves-this" });
        }

        // History over the last 50 minutes, written as another process would have: m minutes ago, (m % 7) + 1 imports
        // were enqueued, each waited (m % 5) × 10 s, ran 2 s and succeeded, except every ninth minute's, which failed.
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long history = 0, historyFailed = 0;
        for (var m = 1; m <= 50; m++)
        {
            for (var k = 0; k <= m % 7; k++)
            {
                var created = now - (m * Minute) + (k * 1_000);
                var started = created + (m % 5 * 10_000);
                await InsertAsync(db, $"import-{m}-{k}", m % 9 == 0 ? "ERROR" : "SUCCESS", created, completedAt: started + 2_000, queue: "imports", startedAt: started);
                history++;
                historyFailed += m % 9 == 0 ? 1 : 0;
            }
        }

        await using var server = await DashboardServer.StartAsync(db);
        await using var browser = await DashboardBrowser.LaunchAsync();
        var page = await browser.NewPageAsync();
        var suffix = backend.ToString().ToLowerInvariant();

        await DashboardBrowser.GoAsync(page, server.Url);
        await page.Locator("header nav a", new() { HasText = "Activity" }).ClickAsync();
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Activity");
        var charts = page.Locator("figure.chart");
        await Assertions.Expect(charts).ToHaveCountAsync(4);
        await Assertions.Expect(charts.Nth(0)).ToContainTextAsync($"Total {17 + history}");
        await Assertions.Expect(charts.Nth(1)).ToContainTextAsync($"Succeeded {12 + history - historyFailed} · failed {3 + historyFailed} · cancelled 0");
        await Assertions.Expect(charts.Nth(2)).ToContainTextAsync("Now 2");
        await Assertions.Expect(charts.Nth(3)).ToContainTextAsync($"{12 + history} started");
        await Assertions.Expect(charts.Nth(3)).ToContainTextAsync("longest 40.0 s");
        Assert.True(await page.Locator("figure.chart svg rect.bar-started").CountAsync() >= 1);
        Assert.Equal(60, await charts.Nth(0).Locator("g.bucket").CountAsync());
        Assert.Equal(0, await page.Locator(".notice.warn").CountAsync());
        await DashboardBrowser.ScreenshotAsync(page, "activity-" + suffix);

        foreach (var (window, buckets) in new[] { ("6h", 72), ("24h", 96) })
        {
            await DashboardBrowser.GoAsync(page, server.Url + "activity?window=" + window);
            Assert.Equal(buckets, await page.Locator("figure.chart").First.Locator("g.bucket").CountAsync());
            await Assertions.Expect(page.Locator("figure.chart").Nth(0)).ToContainTextAsync($"Total {17 + history}");
        }

        Assert.Equal(400, (await page.APIRequest.GetAsync(server.Url + "activity?window=7y")).Status);

        await DashboardBrowser.GoAsync(page, server.Url + "queues");
        await Assertions.Expect(page.Locator("figure.chart")).ToHaveCountAsync(6); // Depth and wait of each of the three queues.
        await Assertions.Expect(page.Locator("figure.chart", new() { HasText = "queue payments" }).First).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("figure.chart", new() { HasText = "Queue depth, queue nobody-serves-this" })).ToContainTextAsync("Now 2");
        await DashboardBrowser.ScreenshotAsync(page, "queues-charts-" + suffix);
        browser.AssertNoErrors();
    }
}
