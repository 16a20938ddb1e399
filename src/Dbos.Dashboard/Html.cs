using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Dbos.Dashboard;

/// <summary>
/// Builds a page. Every piece of text goes through <see cref="Text"/> or an attribute helper, which HTML-encode it:
/// workflow IDs, names, inputs and outputs are user data, so nothing from the database is ever written raw.
/// </summary>
internal sealed class Html
{
    private static readonly HtmlEncoder Encoder = HtmlEncoder.Default;
    private readonly StringBuilder builder = new();

    /// <summary>Markup written by the dashboard itself (never data).</summary>
    public Html Raw(string markup)
    {
        builder.Append(markup);
        return this;
    }

    /// <summary>Text, HTML-encoded.</summary>
    public Html Text(string? text)
    {
        if (text is not null)
        {
            builder.Append(Encoder.Encode(text));
        }

        return this;
    }

    /// <summary>An element holding text: <c>&lt;tag class="…"&gt;text&lt;/tag&gt;</c>.</summary>
    public Html Element(string tag, string? cssClass, string? text)
    {
        builder.Append('<').Append(tag);
        if (cssClass is not null)
        {
            builder.Append(" class=\"").Append(Encoder.Encode(cssClass)).Append('"');
        }

        builder.Append('>');
        Text(text);
        builder.Append("</").Append(tag).Append('>');
        return this;
    }

    /// <summary>A link whose address and text are both encoded.</summary>
    public Html Link(string href, string? text, string? cssClass = null)
    {
        builder.Append("<a href=\"").Append(Encoder.Encode(href)).Append('"');
        if (cssClass is not null)
        {
            builder.Append(" class=\"").Append(Encoder.Encode(cssClass)).Append('"');
        }

        builder.Append('>');
        Text(text);
        builder.Append("</a>");
        return this;
    }

    /// <summary>An attribute value, encoded, with its quotes.</summary>
    public Html Attr(string name, string? value)
    {
        builder.Append(' ').Append(name).Append("=\"").Append(Encoder.Encode(value ?? string.Empty)).Append('"');
        return this;
    }

    /// <summary>A hidden form field.</summary>
    public Html Hidden(string name, string? value) => Raw("<input type=\"hidden\"").Attr("name", name).Attr("value", value).Raw(">");

    public override string ToString() => builder.ToString();

    /// <summary>A query string from its pairs, each part URL-encoded; pairs with no value are left out.</summary>
    public static string Query(params (string Name, string? Value)[] pairs)
    {
        var parts = pairs.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => Uri.EscapeDataString(p.Name) + "=" + Uri.EscapeDataString(p.Value!)).ToList();
        return parts.Count == 0 ? string.Empty : "?" + string.Join('&', parts);
    }

    /// <summary>A time as the dashboard shows it: UTC, to the millisecond.</summary>
    public static string Time(DateTimeOffset? time) =>
        time is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture) : "—";

    /// <summary>A duration in the largest unit that keeps it readable.</summary>
    public static string Duration(TimeSpan? span)
    {
        if (span is not { } d)
        {
            return "—";
        }

        if (d < TimeSpan.Zero)
        {
            d = TimeSpan.Zero;
        }

        return d.TotalMilliseconds < 1000 ? $"{d.TotalMilliseconds:0} ms"
            : d.TotalSeconds < 60 ? string.Create(CultureInfo.InvariantCulture, $"{d.TotalSeconds:0.0#} s")
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes} min {d.Seconds} s"
            : d.TotalHours < 48 ? $"{(int)d.TotalHours} h {d.Minutes} min"
            : $"{(int)d.TotalDays} d {d.Hours} h";
    }

    /// <summary>Stored text for display: JSON indented, anything else as stored; long text cut with a note.</summary>
    public static string Pretty(string? stored, int maxLength = 20_000)
    {
        if (stored is null)
        {
            return "(none)";
        }

        var text = stored;
        try
        {
            using var document = JsonDocument.Parse(stored);
            using var stream = new MemoryStream();
            using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                document.WriteTo(writer);
            }

            text = Encoding.UTF8.GetString(stream.ToArray());
        }
        catch (JsonException)
        {
            // Not JSON (a custom serializer's format): shown as stored.
        }

        return text.Length > maxLength ? string.Concat(text.AsSpan(0, maxLength), $"\n… ({text.Length - maxLength:N0} more characters)") : text;
    }
}
