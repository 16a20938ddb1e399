using System.Globalization;
using System.Text;

namespace Dbos.Internal;

/// <summary>
/// Text the system database can store exactly, on both backends: no NUL character (Postgres refuses it in text) and no
/// unpaired surrogate (invalid UTF-16, which Postgres cannot encode and SQLite silently replaces with U+FFFD, so an ID
/// would come back different). Every string DBOS binds to a statement is checked, so both backends refuse the same text,
/// before the statement runs.
/// </summary>
internal static class StorableText
{
    /// <summary>What is wrong with <paramref name="text"/> for the system database, or null when it can be stored.</summary>
    public static string? Problem(string text)
    {
        var nul = text.AsSpan().IndexOf('\0');
        return nul >= 0
            ? $"contains a NUL character (U+0000) at position {nul.ToString(CultureInfo.InvariantCulture)}, which the system database cannot store"
            : InvalidUnicode(text);
    }

    /// <summary>Where <paramref name="text"/> is not valid UTF-16 (an unpaired surrogate), or null when it is valid.</summary>
    public static string? InvalidUnicode(string text)
    {
        var span = text.AsSpan();
        for (var i = span.IndexOfAnyInRange('\uD800', '\uDFFF'); i >= 0;)
        {
            if (!char.IsHighSurrogate(span[i]) || i + 1 >= span.Length || !char.IsLowSurrogate(span[i + 1]))
            {
                return $"contains an unpaired surrogate (U+{((int)span[i]).ToString("X4", CultureInfo.InvariantCulture)}) at position {i.ToString(CultureInfo.InvariantCulture)}: it is not valid Unicode text";
            }

            var next = span[(i + 2)..].IndexOfAnyInRange('\uD800', '\uDFFF');
            i = next < 0 ? -1 : i + 2 + next;
        }

        return null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="text"/> can be stored.</summary>
    /// <param name="text">The text.</param>
    /// <param name="what">What the text is, for the message ("The workflow name").</param>
    /// <param name="parameterName">The parameter it came from, if known.</param>
    public static void Check(string? text, string what, string? parameterName = null)
    {
        if (text is not null && Problem(text) is { } problem)
        {
            throw new ArgumentException($"{what} '{Preview(text)}' {problem}.", parameterName);
        }
    }

    /// <summary>The start of <paramref name="text"/>, with control characters and surrogates escaped, for messages.</summary>
    public static string Preview(string text)
    {
        const int MaxChars = 80;
        var preview = new StringBuilder();
        var shown = text.Length > MaxChars ? text.AsSpan(0, MaxChars) : text.AsSpan();
        for (var i = 0; i < shown.Length; i++)
        {
            var c = shown[i];
            if (char.IsHighSurrogate(c) && i + 1 < shown.Length && char.IsLowSurrogate(shown[i + 1]))
            {
                preview.Append(c).Append(shown[++i]);
            }
            else if (char.IsControl(c) || char.IsSurrogate(c))
            {
                preview.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            }
            else
            {
                preview.Append(c);
            }
        }

        return text.Length > MaxChars ? preview.Append("…").ToString() : preview.ToString();
    }
}
