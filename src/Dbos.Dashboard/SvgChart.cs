using System.Globalization;
using Dbos.SystemDatabase;

namespace Dbos.Dashboard;

/// <summary>One series of a chart.</summary>
/// <param name="Name">Its name, in the legend and the tooltips.</param>
/// <param name="CssClass">Its color, as a class of dashboard.css (swatch and bar-/line- rules).</param>
/// <param name="Values">One value per bucket.</param>
/// <param name="Line">Drawn as a line over the bars instead of a bar stacked with the others.</param>
internal sealed record ChartSeries(string Name, string CssClass, IReadOnlyList<double> Values, bool Line = false);

/// <summary>
/// Charts drawn on the server as inline SVG: stacked bars per time bucket, optionally with lines over them. No script
/// draws them and nothing is loaded; colors come from classes in dashboard.css (the page's content security policy
/// allows no inline style), and each bucket carries a &lt;title&gt; that the browser shows on hover.
/// </summary>
internal static class SvgChart
{
    private const double Width = 720;
    private const double Height = 190;
    private const double Left = 52;
    private const double Right = 10;
    private const double Top = 10;
    private const double Bottom = 24;

    /// <param name="html">Where the chart goes.</param>
    /// <param name="title">The chart's heading.</param>
    /// <param name="window">The buckets (the x axis).</param>
    /// <param name="series">What is drawn, bars first (stacked in order), then lines.</param>
    /// <param name="format">How a value is written on the axis and in tooltips.</param>
    /// <param name="summary">A line under the heading (totals), or null.</param>
    public static void Render(Html html, string title, ActivityWindow window, IReadOnlyList<ChartSeries> series, Func<double, string> format, string? summary = null)
    {
        var n = window.Buckets;
        var bars = series.Where(s => !s.Line).ToList();
        var lines = series.Where(s => s.Line).ToList();
        var top = Enumerable.Range(0, n).Select(i => Math.Max(bars.Sum(s => s.Values[i]), lines.Select(s => s.Values[i]).DefaultIfEmpty(0).Max())).DefaultIfEmpty(0).Max();
        var max = NiceCeiling(top);
        var plotWidth = Width - Left - Right;
        var plotHeight = Height - Top - Bottom;
        var step = plotWidth / n;
        double X(int i) => Left + (step * i);
        double Y(double value) => Top + plotHeight - (value / max * plotHeight);

        html.Raw("<figure class=\"chart\"><figcaption><span class=\"chart-title\">").Text(title).Raw("</span>");
        foreach (var s in series)
        {
            html.Raw("<span class=\"legend\"><span").Attr("class", "swatch " + s.CssClass).Raw("></span>").Text(s.Name).Raw("</span>");
        }

        if (summary is not null)
        {
            html.Raw("<span class=\"chart-summary muted\">").Text(summary).Raw("</span>");
        }

        html.Raw("</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"").Attr("viewBox", $"0 0 {F(Width)} {F(Height)}").Attr("aria-label", title).Raw(">");

        // Grid and y axis: 0, half and the top.
        foreach (var value in (ReadOnlySpan<double>)[0, max / 2, max])
        {
            html.Raw("<line class=\"grid-line\"").Attr("x1", F(Left)).Attr("x2", F(Width - Right)).Attr("y1", F(Y(value))).Attr("y2", F(Y(value))).Raw("/>");
            html.Raw("<text class=\"axis\" text-anchor=\"end\"").Attr("x", F(Left - 6)).Attr("y", F(Y(value) + 4)).Raw(">").Text(format(value)).Raw("</text>");
        }

        // X axis labels: about six, at bucket starts, in UTC.
        var every = Math.Max(1, (int)Math.Ceiling(n / 6.0));
        var daySpan = window.BucketMs * n > TimeSpan.FromDays(1).TotalMilliseconds;
        for (var i = 0; i < n; i += every)
        {
            var label = window.StartOf(i).UtcDateTime.ToString(daySpan ? "MM-dd HH:mm" : "HH:mm", CultureInfo.InvariantCulture);
            html.Raw("<text class=\"axis\" text-anchor=\"middle\"").Attr("x", F(X(i))).Attr("y", F(Height - 6)).Raw(">").Text(label).Raw("</text>");
        }

        // Bars, stacked; each bucket is one group with its tooltip.
        var gap = step > 4 ? 1 : 0;
        for (var i = 0; i < n; i++)
        {
            html.Raw("<g class=\"bucket\"><title>").Text(Tooltip(window, i, series, format)).Raw("</title>");
            html.Raw("<rect class=\"hover\"").Attr("x", F(X(i))).Attr("y", F(Top)).Attr("width", F(step)).Attr("height", F(plotHeight)).Raw("/>");
            var stacked = 0.0;
            foreach (var s in bars)
            {
                var value = s.Values[i];
                if (value > 0)
                {
                    html.Raw("<rect").Attr("class", "bar-" + s.CssClass).Attr("x", F(X(i) + gap)).Attr("y", F(Y(stacked + value)))
                        .Attr("width", F(Math.Max(step - (2 * gap), 0.5))).Attr("height", F(Y(stacked) - Y(stacked + value))).Raw("/>");
                }

                stacked += value;
            }

            html.Raw("</g>");
        }

        foreach (var s in lines)
        {
            var points = string.Join(' ', Enumerable.Range(0, n).Select(i => F(X(i) + (step / 2)) + "," + F(Y(s.Values[i]))));
            html.Raw("<polyline").Attr("class", "line-" + s.CssClass).Attr("points", points).Raw("/>");
        }

        html.Raw("<line class=\"axis-line\"").Attr("x1", F(Left)).Attr("x2", F(Width - Right)).Attr("y1", F(Y(0))).Attr("y2", F(Y(0))).Raw("/>");
        html.Raw("</svg></figure>");
    }

    private static string Tooltip(ActivityWindow window, int i, IReadOnlyList<ChartSeries> series, Func<double, string> format)
    {
        var from = window.StartOf(i).UtcDateTime;
        var to = window.StartOf(i + 1).UtcDateTime;
        var text = from.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + "–" + to.ToString("HH:mm", CultureInfo.InvariantCulture) + " UTC";
        return series.Aggregate(text, (t, s) => t + "\n" + s.Name + ": " + format(s.Values[i]));
    }

    /// <summary>
    /// The smallest 1, 2 or 5 × 10ⁿ at or above <paramref name="value"/>, and at least 2 (so the axis's middle line is a
    /// whole number): a readable top for the axis.
    /// </summary>
    public static double NiceCeiling(double value)
    {
        if (value <= 2)
        {
            return 2;
        }

        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var factor in (ReadOnlySpan<double>)[1, 2, 5, 10])
        {
            if (factor * magnitude >= value)
            {
                return factor * magnitude;
            }
        }

        return 10 * magnitude;
    }

    private static string F(double value) => value.ToString("0.#", CultureInfo.InvariantCulture);
}
