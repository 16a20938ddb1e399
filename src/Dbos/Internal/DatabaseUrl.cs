using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace Dbos.Internal;

/// <summary>
/// A parsed database URL: <c>sqlite:///relative.sqlite</c>, <c>sqlite:////absolute.sqlite</c>,
/// <c>postgresql://user:password@host:port/database?options</c> or <c>postgres://…</c>.
/// </summary>
/// <remarks>
/// Every message this type produces, and <see cref="ToString"/>, shows the URL with its password masked.
/// </remarks>
internal abstract partial class DatabaseUrl
{
    internal const string PasswordMask = "***";

    /// <summary>The URL with any password replaced by <see cref="PasswordMask"/>.</summary>
    public abstract string Masked { get; }

    public override string ToString() => Masked;

    /// <summary>Parses <paramref name="url"/>, throwing <see cref="DbosConfigurationException"/> naming what is wrong.</summary>
    /// <param name="url">The URL text.</param>
    /// <param name="setting">The name of the setting the URL came from, used in error messages.</param>
    public static DatabaseUrl Parse(string? url, string setting)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new DbosConfigurationException($"{setting} is empty. Use sqlite:///path/to/file.sqlite or postgresql://user:password@host:port/database.");
        }

        url = url.Trim();
        if (url.Contains('\0', StringComparison.Ordinal))
        {
            throw new DbosConfigurationException($"{setting} '{MaskRaw(url).Replace("\0", "\\0", StringComparison.Ordinal)}' contains a NUL character (U+0000), which no database URL can hold.");
        }

        var schemeEnd = url.IndexOf(':', StringComparison.Ordinal);
        if (schemeEnd <= 0)
        {
            throw new DbosConfigurationException($"{setting} '{MaskRaw(url)}' has no scheme. Use sqlite:///path/to/file.sqlite or postgresql://user:password@host:port/database.");
        }

        var scheme = url[..schemeEnd].ToLowerInvariant();
        return scheme switch
        {
            "sqlite" => SqliteUrl.ParseSqlite(url, setting),
            "postgresql" or "postgres" => PostgresUrl.ParsePostgres(url, schemeEnd, setting),
            _ => throw new DbosConfigurationException(
                $"{setting} '{MaskRaw(url)}' uses the unsupported scheme '{url[..schemeEnd]}'. Supported: sqlite:///…, postgresql://…, postgres://…."),
        };
    }

    /// <summary>Masks the passwords of a URL that may not even parse, for use in messages.</summary>
    /// <remarks>
    /// The user information starts after <c>scheme://</c> (at the start of a URL not written so) and ends at the
    /// <em>last</em> '@': a password written with an unescaped '/', '?' or '@' is masked whole. The price is that a URL
    /// with an '@' in its database name or options, and a ':' before it, shows less than it could. The values of the
    /// <c>password</c> and <c>sslpassword</c> options are masked too.
    /// </remarks>
    internal static string MaskRaw(string url)
    {
        url = PasswordOption().Replace(url, "${name}" + PasswordMask);
        var schemeEnd = url.IndexOf(':', StringComparison.Ordinal);
        var start = schemeEnd >= 0 && string.CompareOrdinal(url, schemeEnd, "://", 0, 3) == 0 ? schemeEnd + 3 : 0;
        var at = url.LastIndexOf('@');
        if (at < start)
        {
            return url;
        }

        var colon = url.IndexOf(':', start, at - start);
        return colon < 0 ? url : string.Concat(url.AsSpan(0, colon + 1), PasswordMask, url.AsSpan(at));
    }

    [GeneratedRegex("(?<name>[?&](ssl)?password=)[^&]*", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex PasswordOption();
}

/// <summary>A SQLite database file.</summary>
internal sealed class SqliteUrl : DatabaseUrl
{
    private SqliteUrl(string filePath, string original)
    {
        FilePath = filePath;
        Masked = original;
    }

    /// <summary>The absolute path of the database file.</summary>
    public string FilePath { get; }

    public override string Masked { get; }

    internal static SqliteUrl ParseSqlite(string url, string setting)
    {
        const string prefix = "sqlite:///";
        var shown = MaskRaw(url);
        if (!url.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            throw new DbosConfigurationException(
                $"{setting} '{shown}' is not a valid SQLite URL: it must start with 'sqlite:///' (three slashes for a relative path, four for an absolute one, e.g. sqlite:///app.sqlite or sqlite:////var/lib/app.sqlite).");
        }

        var rest = url[prefix.Length..];
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0)
        {
            throw new DbosConfigurationException($"{setting} '{shown}': SQLite URLs take no options (nothing may follow '?').");
        }

        var path = Uri.UnescapeDataString(rest);
        if (path.Length == 0 || path == "/")
        {
            throw new DbosConfigurationException($"{setting} '{shown}' names no database file (e.g. sqlite:///app.sqlite).");
        }

        if (path.Equals(":memory:", StringComparison.OrdinalIgnoreCase))
        {
            throw new DbosConfigurationException($"{setting} '{shown}': an in-memory SQLite database cannot be durable; name a file.");
        }

        if (path.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            throw new DbosConfigurationException($"{setting} '{shown}' contains characters that are not valid in a file path.");
        }

        return new SqliteUrl(Path.GetFullPath(path), url);
    }
}

/// <summary>A Postgres database.</summary>
internal sealed class PostgresUrl : DatabaseUrl
{
    // libpq URL parameters, mapped to the Npgsql keyword that does the same thing.
    private static readonly Dictionary<string, string> LibpqOptions = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sslmode"] = "SSL Mode",
        ["connect_timeout"] = "Timeout",
        ["application_name"] = "Application Name",
        ["sslcert"] = "SSL Certificate",
        ["sslkey"] = "SSL Key",
        ["sslrootcert"] = "Root Certificate",
        ["sslpassword"] = "SSL Password",
        ["target_session_attrs"] = "Target Session Attributes",
        ["options"] = "Options",
        ["keepalives_idle"] = "Keepalive",
        ["host"] = "Host",
        ["port"] = "Port",
        ["user"] = "Username",
        ["password"] = "Password",
        ["dbname"] = "Database",
    };

    private PostgresUrl(NpgsqlConnectionStringBuilder builder, string masked)
    {
        Builder = builder;
        Masked = masked;
    }

    /// <summary>The connection settings the URL describes (holds the password: never log it).</summary>
    public NpgsqlConnectionStringBuilder Builder { get; }

    public string Database => Builder.Database ?? "postgres";

    public string? Password => Builder.Password;

    public override string Masked { get; }

    /// <summary>Builds a URL from an existing data source's connection string (for a user-supplied <see cref="NpgsqlDataSource"/>).</summary>
    internal static PostgresUrl FromConnectionString(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return new PostgresUrl(builder, Describe(builder));
    }

    internal static PostgresUrl ParsePostgres(string url, int schemeEnd, string setting)
    {
        var masked = MaskRaw(url);

        // The parser ends the user information at the last '@' before the path and options; MaskRaw at the last '@' of
        // all. When they differ, the text a problem would quote may be part of a password written with an unescaped '/',
        // '?' or '@', so the message quotes nothing and says how to write such a password.
        var ambiguous = false;
        [DoesNotReturn]
        string Fail(string problem) => throw new DbosConfigurationException(ambiguous
            ? $"{setting} '{masked}' is not a valid Postgres URL. If the user name or password contains '@', '/', '?', ':' or '#', percent-encode it (%40, %2F, %3F, %3A, %23)."
            : $"{setting} '{masked}' is not a valid Postgres URL: {problem}.");

        // Npgsql refuses NUL in every setting; say so instead of letting its ArgumentException through.
        string DecodePart(string text) =>
            Decode(text) is var decoded && decoded.Contains('\0', StringComparison.Ordinal) ? Fail("it contains an encoded NUL character (%00)") : decoded;

        if (string.CompareOrdinal(url, schemeEnd, "://", 0, 3) != 0)
        {
            Fail("the scheme must be followed by '://'");
        }

        var rest = url[(schemeEnd + 3)..];
        var authorityEnd = rest.IndexOfAny(['/', '?']);
        var parserAt = (authorityEnd < 0 ? rest : rest[..authorityEnd]).LastIndexOf('@');
        ambiguous = url.LastIndexOf('@') != (parserAt < 0 ? -1 : schemeEnd + 3 + parserAt);

        string? queryText = null;
        var queryStart = rest.IndexOf('?', StringComparison.Ordinal);
        if (queryStart >= 0)
        {
            queryText = rest[(queryStart + 1)..];
            rest = rest[..queryStart];
        }

        string? database = null;
        var pathStart = rest.IndexOf('/', StringComparison.Ordinal);
        if (pathStart >= 0)
        {
            database = DecodePart(rest[(pathStart + 1)..]);
            rest = rest[..pathStart];
            if (database.Contains('/', StringComparison.Ordinal))
            {
                Fail($"the database name '{database}' contains '/'");
            }
        }

        var builder = new NpgsqlConnectionStringBuilder();
        var at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = rest[..at];
            rest = rest[(at + 1)..];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            var user = DecodePart(colon >= 0 ? userInfo[..colon] : userInfo);
            if (user.Length > 0)
            {
                builder.Username = user;
            }

            if (colon >= 0)
            {
                builder.Password = DecodePart(userInfo[(colon + 1)..]);
            }
        }

        string host = rest;
        string? portText = null;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                Fail("the IPv6 host has no closing ']'");
            }

            portText = close + 1 < host.Length ? (host[close + 1] == ':' ? host[(close + 2)..] : Fail($"unexpected text after the host '{host}'")) : null;
            host = host[1..close];
        }
        else
        {
            var colon = host.LastIndexOf(':');
            if (colon >= 0)
            {
                portText = host[(colon + 1)..];
                host = host[..colon];
            }
        }

        if (host.Length > 0)
        {
            builder.Host = DecodePart(host);
        }

        if (portText is not null)
        {
            if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                Fail($"the port '{portText}' is not a number between 1 and 65535");
            }

            builder.Port = port;
        }

        if (!string.IsNullOrEmpty(database))
        {
            builder.Database = database;
        }

        if (!string.IsNullOrEmpty(queryText))
        {
            foreach (var pair in queryText.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var key = DecodePart(eq >= 0 ? pair[..eq] : pair);
                var value = eq >= 0 ? DecodePart(pair[(eq + 1)..]) : string.Empty;
                var keyword = LibpqOptions.TryGetValue(key, out var mapped) ? mapped : key;
                try
                {
                    builder[keyword] = keyword == "Timeout" && value.Length == 0 ? null : value;
                }
                catch (Exception ex) when (ex is ArgumentException or FormatException or KeyNotFoundException or InvalidCastException)
                {
                    Fail($"the option '{key}' is unknown or its value is invalid");
                }
            }
        }

        if (string.IsNullOrEmpty(builder.Host))
        {
            Fail("it names no host");
        }

        if (string.IsNullOrEmpty(builder.Database))
        {
            Fail("it names no database (postgresql://user:password@host:port/database)");
        }

        return new PostgresUrl(builder, Describe(builder));
    }

    /// <summary>A copy of this URL pointing at another database on the same server.</summary>
    public PostgresUrl WithDatabase(string database)
    {
        var copy = new NpgsqlConnectionStringBuilder(Builder.ConnectionString) { Database = database };
        return new PostgresUrl(copy, Describe(copy));
    }

    private static string Decode(string text)
    {
        try
        {
            return Uri.UnescapeDataString(text);
        }
        catch (UriFormatException)
        {
            return text;
        }
    }

    private static string Describe(NpgsqlConnectionStringBuilder builder)
    {
        var sb = new StringBuilder("postgresql://");
        if (!string.IsNullOrEmpty(builder.Username))
        {
            sb.Append(Uri.EscapeDataString(builder.Username));
            if (!string.IsNullOrEmpty(builder.Password))
            {
                sb.Append(':').Append(PasswordMask);
            }

            sb.Append('@');
        }

        var host = builder.Host ?? "localhost";
        sb.Append(host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('/') ? $"[{host}]" : host);
        sb.Append(':').Append(builder.Port.ToString(CultureInfo.InvariantCulture));
        sb.Append('/').Append(builder.Database);
        return sb.ToString();
    }
}
