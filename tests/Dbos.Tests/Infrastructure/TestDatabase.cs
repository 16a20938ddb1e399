using System.Data.Common;
using System.Globalization;
using System.Reflection;
using Microsoft.Data.Sqlite;
using Npgsql;
using Xunit.Sdk;

namespace Dbos.Tests.Infrastructure;

public enum Backend
{
    Sqlite,
    Postgres,
}

/// <summary>Runs a theory once on SQLite and once on Postgres.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BothBackendsAttribute : DataAttribute
{
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [[Backend.Sqlite], [Backend.Postgres]];
}

/// <summary>
/// A fresh, empty system database for one test: a SQLite file in a temporary folder, or a schema of its own in the
/// shared Postgres test database. Postgres must be reachable: when it is not, the test fails (it is never skipped).
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string PostgresTestDatabase = "dbos_tests";
    private static readonly SemaphoreSlim CreateLock = new(1, 1);
    private static bool sharedDatabaseReady;

    private TestDatabase(Backend backend, string url, string schema, string directory)
    {
        Backend = backend;
        Url = url;
        Schema = schema;
        Directory = directory;
    }

    /// <summary>The Postgres server the tests use (a URL whose database part is ignored).</summary>
    public static string PostgresServerUrl =>
        Environment.GetEnvironmentVariable("DBOS_TEST_POSTGRES_URL") is { Length: > 0 } url ? url.TrimEnd('/') : "postgresql://dbos:dbos@127.0.0.1:5432";

    public static string PostgresUrl(string database)
    {
        var server = PostgresServerUrl;
        var authorityEnd = server.IndexOf('/', server.IndexOf("://", StringComparison.Ordinal) + 3);
        return (authorityEnd < 0 ? server : server[..authorityEnd]) + "/" + database;
    }

    public Backend Backend { get; }

    public string Url { get; }

    /// <summary>The schema holding the system tables (Postgres); "dbos" on SQLite where it has no meaning.</summary>
    public string Schema { get; }

    /// <summary>A temporary folder for this test (ledgers, SQLite files).</summary>
    public string Directory { get; }

    /// <param name="backend">SQLite or Postgres.</param>
    /// <param name="ownDatabase">
    /// On Postgres, a database of its own with the default <c>dbos</c> schema (what other DBOS implementations and their
    /// command line expect), dropped afterwards; otherwise a schema of its own in the shared test database.
    /// </param>
    public static async Task<TestDatabase> CreateAsync(Backend backend, bool ownDatabase = false)
    {
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var directory = Path.Combine(Path.GetTempPath(), "dbos-tests", suffix);
        System.IO.Directory.CreateDirectory(directory);
        if (backend == Backend.Sqlite)
        {
            return new TestDatabase(backend, $"sqlite:///{directory}/system.sqlite", "dbos", directory);
        }

        if (ownDatabase)
        {
            var name = "dbos_own_" + suffix;
            await using (var admin = new NpgsqlConnection(ConnectionString(PostgresUrl("postgres"))))
            {
                await admin.OpenAsync();
                await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
                await create.ExecuteNonQueryAsync();
            }

            return new TestDatabase(backend, PostgresUrl(name), "dbos", directory) { ownedDatabase = name };
        }

        await EnsureSharedDatabaseAsync();
        return new TestDatabase(backend, PostgresUrl(PostgresTestDatabase), "t_" + suffix, directory);
    }

    private string? ownedDatabase;

    /// <summary>A schema of its own in the Postgres database at <paramref name="databaseUrl"/> (for example on a <see cref="PrivatePostgres"/>).</summary>
    public static TestDatabase OnPostgres(string databaseUrl)
    {
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var directory = Path.Combine(Path.GetTempPath(), "dbos-tests", suffix);
        System.IO.Directory.CreateDirectory(directory);
        return new TestDatabase(Backend.Postgres, databaseUrl, "t_" + suffix, directory);
    }

    private static async Task EnsureSharedDatabaseAsync()
    {
        await CreateLock.WaitAsync();
        try
        {
            if (sharedDatabaseReady)
            {
                return;
            }

            await using var admin = new NpgsqlConnection(ConnectionString(PostgresUrl("postgres")));
            try
            {
                await admin.OpenAsync();
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException(
                    $"Postgres is required by the test suite and cannot be reached at {PostgresServerUrl} (set DBOS_TEST_POSTGRES_URL, or run ./test.sh which starts it): {ex.Message}", ex);
            }

            await using var exists = new NpgsqlCommand($"SELECT 1 FROM pg_database WHERE datname = '{PostgresTestDatabase}'", admin);
            if (await exists.ExecuteScalarAsync() is null)
            {
                try
                {
                    await using var create = new NpgsqlCommand($"CREATE DATABASE {PostgresTestDatabase}", admin);
                    await create.ExecuteNonQueryAsync();
                }
                catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.DuplicateDatabase or PostgresErrorCodes.UniqueViolation)
                {
                    // Another test run created it.
                }
            }

            sharedDatabaseReady = true;
        }
        finally
        {
            CreateLock.Release();
        }
    }

    /// <summary>
    /// A fresh application database on <paramref name="backend"/> (a SQLite file in this test's folder, or a new Postgres
    /// database, dropped with this object), with the sample tables <c>orders</c> and <c>stock</c>.
    /// </summary>
    public async Task<string> CreateApplicationDatabaseAsync(Backend backend)
    {
        string url;
        if (backend == Backend.Sqlite)
        {
            url = $"sqlite:///{Directory}/app-{applicationDatabases.Count}.sqlite";
        }
        else
        {
            var name = "dbos_app_" + Guid.NewGuid().ToString("N")[..10];
            await using (var admin = new NpgsqlConnection(ConnectionString(PostgresUrl("postgres"))))
            {
                await admin.OpenAsync();
                await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
                await create.ExecuteNonQueryAsync();
            }

            url = PostgresUrl(name);
        }

        applicationDatabases.Add((backend, url));
        await ExecuteOnAsync(url, "CREATE TABLE orders (id TEXT PRIMARY KEY, item TEXT NOT NULL, quantity INTEGER NOT NULL)");
        await ExecuteOnAsync(url, "CREATE TABLE stock (item TEXT PRIMARY KEY, count INTEGER NOT NULL)");
        return url;
    }

    private readonly List<(Backend Backend, string Url)> applicationDatabases = [];

    private static DbConnection OpenUrl(string url)
    {
        DbConnection connection = url.StartsWith("sqlite", StringComparison.Ordinal)
            ? new SqliteConnection($"Data Source={url["sqlite:///".Length..]};Pooling=False")
            : new NpgsqlConnection(ConnectionString(url));
        connection.Open();
        return connection;
    }

    /// <summary>Runs a statement on any database of this test (for example an application database).</summary>
    public static async Task<int> ExecuteOnAsync(string url, string sql)
    {
        await using var connection = OpenUrl(url);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs a query on any database of this test and returns the first column of each row, as text.</summary>
    public static async Task<List<string?>> QueryOnAsync(string url, string sql)
    {
        await using var connection = OpenUrl(url);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string?>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.IsDBNull(0) ? null : Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture));
        }

        return rows;
    }

    /// <summary>Drops a whole Postgres database a test created (by name, on the test server).</summary>
    public static async Task DropPostgresDatabaseAsync(string name)
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(ConnectionString(PostgresUrl("postgres")));
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>An Npgsql connection string for a postgresql:// URL (test-side, independent of the library's parser).</summary>
    public static string ConnectionString(string url)
    {
        var uri = new Uri(url);
        var userInfo = uri.UserInfo.Split(':', 2);
        return new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port > 0 ? uri.Port : 5432,
            Username = Uri.UnescapeDataString(userInfo[0]),
            Password = userInfo.Length > 1 ? Uri.UnescapeDataString(userInfo[1]) : null,
            Database = uri.AbsolutePath.Trim('/'),
            Pooling = false,
        }.ConnectionString;
    }

    /// <summary>A configuration for an application on this database, polling fast so tests do not wait.</summary>
    public DbosConfig Config(string name = "test-app", string? applicationVersion = "test-version") => new()
    {
        Name = name,
        SystemDatabaseUrl = Url,
        SystemDatabaseSchema = Schema,
        ApplicationVersion = applicationVersion,
        ExecutorId = "local",
        PollingInterval = TimeSpan.FromMilliseconds(50),
    };

    /// <summary>Environment variables that point a worker process at this database.</summary>
    public Dictionary<string, string?> WorkerEnvironment(string ledger) => new()
    {
        ["DBOS_TEST_URL"] = Url,
        ["DBOS_TEST_SCHEMA"] = Schema,
        ["DBOS_TEST_LEDGER"] = ledger,
    };

    /// <summary>The name of a system table in this database, for raw queries.</summary>
    public string Table(string name) => Backend == Backend.Postgres ? $"\"{Schema}\".{name}" : name;

    private DbConnection OpenRaw()
    {
        DbConnection connection = Backend == Backend.Postgres
            ? new NpgsqlConnection(ConnectionString(Url))
            : new SqliteConnection($"Data Source={Url["sqlite:///".Length..]};Pooling=False");
        connection.Open();
        return connection;
    }

    /// <summary>Runs a raw query; <c>{table}</c> placeholders name system tables.</summary>
    public async Task<List<T>> QueryAsync<T>(string sql, Func<DbDataReader, T> map)
    {
        await using var connection = OpenRaw();
        await using var command = connection.CreateCommand();
        command.CommandText = Expand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
        {
            rows.Add(map(reader));
        }

        return rows;
    }

    public async Task<long> CountAsync(string sql) =>
        (await QueryAsync(sql, r => Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture))).Single();

    public async Task<int> ExecuteAsync(string sql)
    {
        await using var connection = OpenRaw();
        await using var command = connection.CreateCommand();
        command.CommandText = Expand(sql);
        return await command.ExecuteNonQueryAsync();
    }

    private string Expand(string sql) =>
        System.Text.RegularExpressions.Regex.Replace(sql, @"\{([a-z_]+)\}", m => Table(m.Groups[1].Value));

    public async ValueTask DisposeAsync()
    {
        if (ownedDatabase is not null)
        {
            await DropPostgresDatabaseAsync(ownedDatabase);
        }
        else if (Backend == Backend.Postgres)
        {
            try
            {
                await ExecuteAsync($"DROP SCHEMA IF EXISTS \"{Schema}\" CASCADE");
            }
            catch (NpgsqlException)
            {
                // Best effort: a leftover schema in the test database harms nothing.
            }
        }

        foreach (var (backend, url) in applicationDatabases.Where(a => a.Backend == Backend.Postgres))
        {
            await DropPostgresDatabaseAsync(url[(url.LastIndexOf('/') + 1)..]);
        }

        SqliteConnection.ClearAllPools();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A worker process may still hold a file for a moment.
        }
    }
}
