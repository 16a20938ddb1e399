using System.Diagnostics;
using System.Text.RegularExpressions;
using Npgsql;

namespace Dbos.Tests.Infrastructure;

/// <summary><c>pg_dump --schema-only -n dbos</c> of a database, as a list of statements that can be compared.</summary>
public static partial class SchemaDump
{
    /// <summary>The statements of the <c>dbos</c> schema of the database at <paramref name="url"/>, normalised.</summary>
    public static async Task<List<string>> OfAsync(string url) => Normalize(await DumpAsync(url));

    /// <summary>The versions recorded in <c>dbos.dbos_migrations</c>.</summary>
    public static async Task<long[]> MigrationVersionsAsync(string url)
    {
        await using var connection = new NpgsqlConnection(TestDatabase.ConnectionString(url));
        await connection.OpenAsync();
        await using var version = new NpgsqlCommand("SELECT array_agg(version ORDER BY version) FROM dbos.dbos_migrations", connection);
        return (long[])(await version.ExecuteScalarAsync())!;
    }

    /// <summary>Asserts two dumps are equal statement by statement, so a difference names the statement.</summary>
    public static void AssertEqual(IReadOnlyList<string> expected, IReadOnlyList<string> actual)
    {
        for (var i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            Assert.Equal(expected[i], actual[i]);
        }

        Assert.Equal(expected.Count, actual.Count);
    }

    private static async Task<string> DumpAsync(string url)
    {
        var connection = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString(url));
        var info = new ProcessStartInfo("pg_dump")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["--schema-only", "-n", "dbos", "-h", connection.Host!, "-p", connection.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", connection.Username!, connection.Database!])
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["PGPASSWORD"] = connection.Password;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"pg_dump failed: {await errors}");
        return await output;
    }

    /// <summary>The dump's statements, without comments, session settings, ownership, and with whitespace collapsed.</summary>
    public static List<string> Normalize(string dump)
    {
        var kept = dump.Split('\n')
            .Where(line => !line.StartsWith("--", StringComparison.Ordinal)
                && !line.StartsWith('\\')
                && !line.StartsWith("SET ", StringComparison.Ordinal)
                && !line.StartsWith("SELECT pg_catalog.set_config", StringComparison.Ordinal)
                && !line.Contains(" OWNER TO ", StringComparison.Ordinal))
            .Select(line => LineComment().Replace(line, string.Empty));
        var text = Whitespace().Replace(string.Join(' ', kept), " ").Trim();
        return text.Split("; ", StringSplitOptions.RemoveEmptyEntries).Select(s => s.TrimEnd(';')).ToList();
    }

    [GeneratedRegex(@"--.*$")]
    private static partial Regex LineComment();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
