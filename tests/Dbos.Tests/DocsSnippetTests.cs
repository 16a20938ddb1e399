using System.Text;
using System.Text.RegularExpressions;

namespace Dbos.Tests;

/// <summary>
/// The C# examples in README.md and docs/ are compiled: each one is a region of samples/DocsSnippets, between
/// <c>// &lt;snippet:NAME&gt;</c> and <c>// &lt;/snippet:NAME&gt;</c>, quoted verbatim by the page in a csharp fence under
/// <c>&lt;!-- snippet: NAME --&gt;</c>. A short fragment that cannot stand alone is marked
/// <c>&lt;!-- not-compiled: reason --&gt;</c> instead.
/// </summary>
public sealed partial class DocsSnippetTests
{
    private static readonly string Root = FindRepositoryRoot();

    [Fact]
    public void Every_snippet_comment_in_the_docs_is_followed_by_its_region_of_DocsSnippets_verbatim()
    {
        var regions = ReadRegions();
        var problems = new List<string>();
        var quoted = 0;
        foreach (var page in Pages())
        {
            var lines = ReadLines(page);
            for (var i = 0; i < lines.Length; i++)
            {
                var marker = SnippetMarker().Match(lines[i]);
                if (!marker.Success)
                {
                    continue;
                }

                var name = marker.Groups["name"].Value;
                var where = $"{Relative(page)}:{i + 1} (snippet '{name}')";
                var fence = NextNonBlank(lines, i + 1);
                if (fence < 0 || !CsharpFence().IsMatch(lines[fence]))
                {
                    problems.Add($"{where}: the marker is not followed by a ```csharp fence.");
                    continue;
                }

                var body = FenceBody(lines, fence);
                if (body is null)
                {
                    problems.Add($"{where}: the ```csharp fence is never closed.");
                    continue;
                }

                if (!regions.TryGetValue(name, out var region))
                {
                    problems.Add($"{where}: samples/DocsSnippets has no region '{name}' (// <snippet:{name}> … // </snippet:{name}>).");
                    continue;
                }

                quoted++;
                var expected = Normalize(region.Lines);
                var actual = Normalize(body);
                if (expected != actual)
                {
                    problems.Add($"{where}: the fence differs from {region.Location}. {FirstDifference(expected, actual)}");
                }
            }
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
        Assert.True(quoted > 0, "No <!-- snippet: NAME --> marker was found in README.md or docs/*.md.");
    }

    [Fact]
    public void Every_csharp_fence_in_the_docs_is_a_compiled_snippet_or_says_why_not()
    {
        var problems = new List<string>();
        foreach (var page in Pages())
        {
            var lines = ReadLines(page);
            for (var i = 0; i < lines.Length; i++)
            {
                if (!CsharpFence().IsMatch(lines[i]))
                {
                    continue;
                }

                var previous = PreviousNonBlank(lines, i - 1);
                var marked = previous >= 0 && (SnippetMarker().IsMatch(lines[previous]) || NotCompiledMarker().IsMatch(lines[previous]));
                if (!marked)
                {
                    problems.Add($"{Relative(page)}:{i + 1}: a C# example that is not compiled. Put it in samples/DocsSnippets as a region "
                        + "and quote it under <!-- snippet: NAME -->, or, for a one-line fragment, say why under <!-- not-compiled: reason -->.");
                }

                var body = FenceBody(lines, i);
                i += body is null ? 0 : body.Count + 1;
            }
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Every_region_of_DocsSnippets_is_quoted_by_a_page()
    {
        var quoted = Pages()
            .SelectMany(ReadLines)
            .Select(line => SnippetMarker().Match(line))
            .Where(m => m.Success)
            .Select(m => m.Groups["name"].Value)
            .ToHashSet(StringComparer.Ordinal);
        var unused = ReadRegions().Where(r => !quoted.Contains(r.Key)).Select(r => $"{r.Key} ({r.Value.Location})").ToList();
        Assert.True(unused.Count == 0, "Regions no page quotes: " + string.Join(", ", unused));
    }

    /// <summary>README.md and the pages under docs/.</summary>
    private static IEnumerable<string> Pages() =>
        new[] { Path.Combine(Root, "README.md") }
            .Concat(Directory.EnumerateFiles(Path.Combine(Root, "docs"), "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal));

    private sealed record Region(string Location, IReadOnlyList<string> Lines);

    /// <summary>Every region of samples/DocsSnippets, by name; malformed or duplicated regions fail the test.</summary>
    private static Dictionary<string, Region> ReadRegions()
    {
        var folder = Path.Combine(Root, "samples", "DocsSnippets");
        var regions = new Dictionary<string, Region>(StringComparer.Ordinal);
        var sources = Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !IsBuildOutput(Path.GetRelativePath(folder, f)))
            .Order(StringComparer.Ordinal);
        foreach (var file in sources)
        {
            var lines = ReadLines(file);
            string? open = null;
            var start = 0;
            for (var i = 0; i < lines.Length; i++)
            {
                if (RegionStart().Match(lines[i]) is { Success: true } begin)
                {
                    Assert.True(open is null, $"{Relative(file)}:{i + 1}: region '{begin.Groups["name"].Value}' starts inside region '{open}'.");
                    open = begin.Groups["name"].Value;
                    start = i + 1;
                }
                else if (RegionEnd().Match(lines[i]) is { Success: true } end)
                {
                    var name = end.Groups["name"].Value;
                    Assert.True(open == name, $"{Relative(file)}:{i + 1}: region end '{name}' does not close the open region ('{open}').");
                    var location = $"{Relative(file)}:{start}";
                    Assert.True(
                        regions.TryAdd(name, new Region(location, lines[start..i])),
                        $"Region '{name}' is defined twice: {regions.GetValueOrDefault(name)?.Location} and {location}.");
                    open = null;
                }
            }

            Assert.True(open is null, $"{Relative(file)}: region '{open}' is never closed.");
        }

        return regions;
    }

    private static bool IsBuildOutput(string relativePath)
    {
        var first = relativePath.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)[0];
        return first is "bin" or "obj";
    }

    /// <summary>The lines of the fence opened at <paramref name="open"/>, or null if it is never closed.</summary>
    private static List<string>? FenceBody(string[] lines, int open)
    {
        var body = new List<string>();
        for (var i = open + 1; i < lines.Length; i++)
        {
            if (lines[i].Trim() == "```")
            {
                return body;
            }

            body.Add(lines[i]);
        }

        return null;
    }

    /// <summary>Without trailing spaces, surrounding blank lines and the indentation all lines share.</summary>
    private static string Normalize(IReadOnlyList<string> lines)
    {
        var trimmed = lines.Select(l => l.TrimEnd()).ToList();
        while (trimmed.Count > 0 && trimmed[0].Length == 0)
        {
            trimmed.RemoveAt(0);
        }

        while (trimmed.Count > 0 && trimmed[^1].Length == 0)
        {
            trimmed.RemoveAt(trimmed.Count - 1);
        }

        var indent = trimmed.Where(l => l.Length > 0).Select(l => l.Length - l.TrimStart(' ').Length).DefaultIfEmpty(0).Min();
        var builder = new StringBuilder();
        foreach (var line in trimmed)
        {
            builder.Append(line.Length == 0 ? line : line[indent..]).Append('\n');
        }

        return builder.ToString();
    }

    private static string FirstDifference(string expected, string actual)
    {
        var want = expected.Split('\n');
        var have = actual.Split('\n');
        for (var i = 0; i < Math.Max(want.Length, have.Length); i++)
        {
            var w = i < want.Length ? want[i] : "(end)";
            var h = i < have.Length ? have[i] : "(end)";
            if (!string.Equals(w, h, StringComparison.Ordinal))
            {
                return $"Line {i + 1} of the example: the region has{Environment.NewLine}    {w}{Environment.NewLine}  and the page has{Environment.NewLine}    {h}";
            }
        }

        return "";
    }

    private static int NextNonBlank(string[] lines, int from)
    {
        for (var i = from; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length > 0)
            {
                return i;
            }
        }

        return -1;
    }

    private static int PreviousNonBlank(string[] lines, int from)
    {
        for (var i = from; i >= 0; i--)
        {
            if (lines[i].Trim().Length > 0)
            {
                return i;
            }
        }

        return -1;
    }

    private static string[] ReadLines(string path) => File.ReadAllText(path).ReplaceLineEndings("\n").Split('\n');

    private static string Relative(string path) => Path.GetRelativePath(Root, path).Replace('\\', '/');

    /// <summary>The folder holding Dbos.slnx, above the test's output folder.</summary>
    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Dbos.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} holds Dbos.slnx.");
    }

    [GeneratedRegex(@"^\s*<!--\s*snippet:\s*(?<name>[A-Za-z0-9_.-]+)\s*-->\s*$")]
    private static partial Regex SnippetMarker();

    [GeneratedRegex(@"^\s*<!--\s*not-compiled:\s*\S.*-->\s*$")]
    private static partial Regex NotCompiledMarker();

    [GeneratedRegex(@"^\s*```\s*(csharp|cs|c#)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex CsharpFence();

    [GeneratedRegex(@"^\s*//\s*<snippet:(?<name>[A-Za-z0-9_.-]+)>\s*$")]
    private static partial Regex RegionStart();

    [GeneratedRegex(@"^\s*//\s*</snippet:(?<name>[A-Za-z0-9_.-]+)>\s*$")]
    private static partial Regex RegionEnd();
}
