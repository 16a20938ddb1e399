using System.Globalization;
using Dbos.SystemDatabase;
using Microsoft.AspNetCore.Http;

namespace Dbos.Dashboard;

/// <summary>The activity page (charts over time) and the per-queue charts of the queues page.</summary>
internal sealed partial class DashboardApp
{
    /// <summary>A window the activity page offers: its name in the address, its label, and how it is cut into buckets.</summary>
    private sealed record ChartWindow(string Key, string Label, TimeSpan Bucket, int Buckets, string Per);

    private static readonly ChartWindow[] ChartWindows =
    [
        new("1h", "Last hour", TimeSpan.FromMinutes(1), 60, "per minute"),
        new("6h", "Last 6 hours", TimeSpan.FromMinutes(5), 72, "per 5 minutes"),
        new("24h", "Last 24 hours", TimeSpan.FromMinutes(15), 96, "per 15 minutes"),
    ];

    /// <summary>The most queues the queues page draws charts for (each is one more bounded read's worth of rows to show).</summary>
    private const int MaxChartedQueues = 12;

    private async Task<string> ActivityPageAsync(HttpContext context, Html html)
    {
        var key = Param(context, "window") ?? ChartWindows[0].Key;
        var chosen = ChartWindows.FirstOrDefault(w => w.Key == key) ?? throw new ArgumentException($"'{key}' is not a chart window (1h, 6h or 24h).");
        var window = ActivityWindow.Ending(time.GetUtcNow(), chosen.Bucket, chosen.Buckets);
        var ct = context.RequestAborted;
        var workflows = await Database.GetWorkflowActivityAsync(window, options.QueryTimeout, ct).ConfigureAwait(false);
        var queues = await Database.GetQueueActivityAsync(window, null, options.QueryTimeout, ct).ConfigureAwait(false);

        html.Raw("<div class=\"title-row\"><h1>Activity</h1><nav class=\"windows\">");
        foreach (var w in ChartWindows)
        {
            html.Link(Url(context, "/activity", Html.Query(("window", w.Key))), w.Label, w == chosen ? "button small" : "button small secondary");
        }

        html.Raw("</nav></div>");
        html.Raw("<p class=\"muted\">From ").Text(Html.Time(window.StartOf(0))).Raw(" to ").Text(Html.Time(window.StartOf(window.Buckets)))
            .Raw(" UTC, ").Text(chosen.Per).Raw(", read from the system database's workflow rows: started is when a workflow was created, finished is its completion time, ")
            .Raw("and queue depth is rebuilt from when each queued workflow was enqueued and started. Workflows already removed (garbage collection) are not counted.</p>");
        PartialNotice(html, workflows is null || queues is null);

        html.Raw("<div class=\"charts\">");
        if (workflows is not null)
        {
            SvgChart.Render(html, "Workflows started " + chosen.Per, window, [new("Started", "started", Doubles(workflows.Started))], Count, "Total " + Count(workflows.Started.Sum()));
            SvgChart.Render(
                html,
                "Workflows finished " + chosen.Per,
                window,
                [new("Succeeded", "succeeded", Doubles(workflows.Succeeded)), new("Failed", "failed", Doubles(workflows.Failed)), new("Cancelled", "cancelled", Doubles(workflows.Cancelled))],
                Count,
                $"Succeeded {Count(workflows.Succeeded.Sum())} · failed {Count(workflows.Failed.Sum())} · cancelled {Count(workflows.Cancelled.Sum())}");
        }

        if (queues is not null)
        {
            var all = Combine(window, queues);
            QueueCharts(html, window, chosen, all, "all queues");
        }

        html.Raw("</div>");
        return "Activity";
    }

    /// <summary>The queues page's charts: depth and wait over the last hour, one pair per queue.</summary>
    private async Task RenderQueueChartsAsync(HttpContext context, Html html)
    {
        var chosen = ChartWindows[0];
        var window = ActivityWindow.Ending(time.GetUtcNow(), chosen.Bucket, chosen.Buckets);
        var queues = await Database.GetQueueActivityAsync(window, null, options.QueryTimeout, context.RequestAborted).ConfigureAwait(false);
        html.Raw("<h2 class=\"section\">Last hour</h2>");
        PartialNotice(html, queues is null);
        if (queues is null)
        {
            return;
        }

        if (queues.Count == 0)
        {
            html.Raw("<div class=\"empty\">No queued workflow was waiting or started in the last hour.</div>");
            return;
        }

        html.Raw("<div class=\"charts\">");
        foreach (var queue in queues.Take(MaxChartedQueues))
        {
            QueueCharts(html, window, chosen, queue, "queue " + queue.QueueName);
        }

        html.Raw("</div>");
        if (queues.Count > MaxChartedQueues)
        {
            html.Raw("<p class=\"muted\">").Text($"Charts of the first {MaxChartedQueues} of {queues.Count} queues, by name; the activity page shows all queues together.").Raw("</p>");
        }
    }

    private static void QueueCharts(Html html, ActivityWindow window, ChartWindow chosen, QueueActivity queue, string what)
    {
        var started = queue.Started.Sum();
        var average = Enumerable.Range(0, window.Buckets).Select(i => queue.Started[i] == 0 ? 0 : (double)queue.TotalWaitMs[i] / queue.Started[i]).ToList();
        SvgChart.Render(
            html,
            $"Queue depth, {what} (end of each bucket)",
            window,
            [new("Waiting", "waiting", Doubles(queue.Depth))],
            Count,
            $"Now {Count(queue.Depth[^1])} · most {Count(queue.Depth.DefaultIfEmpty(0).Max())}");
        SvgChart.Render(
            html,
            $"Queue wait, {what} ({chosen.Per})",
            window,
            [new("Average wait", "wait", average), new("Longest wait", "longest", Doubles(queue.MaxWaitMs), Line: true)],
            Wait,
            $"{Count(started)} started · average {Wait(started == 0 ? 0 : (double)queue.TotalWaitMs.Sum() / started)} · longest {Wait(queue.MaxWaitMs.DefaultIfEmpty(0).Max())}");
    }

    /// <summary>Every queue as one: depths and starts add up, the longest wait is the longest of any.</summary>
    private static QueueActivity Combine(ActivityWindow window, List<QueueActivity> queues)
    {
        var n = window.Buckets;
        var all = new QueueActivity("(all)", new long[n], new long[n], new long[n], new long[n]);
        foreach (var q in queues)
        {
            for (var i = 0; i < n; i++)
            {
                all.Depth[i] += q.Depth[i];
                all.Started[i] += q.Started[i];
                all.TotalWaitMs[i] += q.TotalWaitMs[i];
                all.MaxWaitMs[i] = Math.Max(all.MaxWaitMs[i], q.MaxWaitMs[i]);
            }
        }

        return all;
    }

    private void PartialNotice(Html html, bool timedOut)
    {
        if (timedOut)
        {
            html.Raw("<div class=\"notice warn\">").Text(
                $"Partial result: a chart's read of the system database ran past its time limit ({options.QueryTimeout.TotalSeconds:0.#} s) and was stopped, so it is not shown. Choose a shorter window, or try again when the database is less busy.")
                .Raw("</div>");
        }
    }

    private static double[] Doubles(long[] values) => [.. values.Select(v => (double)v)];

    private static string Count(double value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Wait(double milliseconds) => Html.Duration(TimeSpan.FromMilliseconds(milliseconds));
}
