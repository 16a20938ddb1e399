using System.Collections.Concurrent;
using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Dbos.Tests.Reliability;

/// <summary>
/// Records everything logged, at every level: the formatted message, the structured state, every scope begun, and the
/// exception's full <see cref="Exception.ToString"/> (inner exceptions included).
/// </summary>
public sealed class RecordingLoggerFactory : ILoggerFactory
{
    public ConcurrentQueue<string> Entries { get; } = new();

    public string All => string.Join("\n", Entries);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private static string Describe(object? state) => state is IEnumerable<KeyValuePair<string, object?>> pairs
        ? string.Join(", ", pairs.Select(p => $"{p.Key}={p.Value}")) + " / " + state
        : state?.ToString() ?? "null";

    private sealed class Logger(RecordingLoggerFactory factory, string category) : ILogger
    {
        public IDisposable BeginScope<TState>(TState state)
            where TState : notnull
        {
            factory.Entries.Enqueue($"scope {category}: {Describe(state)}");
            return new Scope();
        }

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            factory.Entries.Enqueue($"{logLevel} {category} [{eventId}] {formatter(state, exception)} | {Describe(state)} | {exception}");
    }

    private sealed class Scope : IDisposable
    {
        public void Dispose()
        {
        }
    }
}

/// <summary>
/// Secrets: a database password never appears in a log line (at any level, scopes and exceptions included), an exception
/// (message, inner exceptions, <c>ToString()</c>), a description of the database, or the command line's output, whether
/// things work or fail: unreachable server, wrong password, a database that cannot be created, a malformed URL.
/// </summary>
public class SecretsTests
{
    /// <summary>A distinctive password with characters that must be percent-encoded in a URL, and its distinctive core.</summary>
    private static (string Password, string Core) NewPassword()
    {
        var core = "Sq" + Guid.NewGuid().ToString("N")[..16] + "zZ";
        return ($"p@ss:w/rd?{core}#%", core);
    }

    private static (string Host, int Port) Server
    {
        get
        {
            var uri = new Uri(TestDatabase.PostgresServerUrl);
            return (uri.Host, uri.Port > 0 ? uri.Port : 5432);
        }
    }

    private static string Url(string user, string password, string database, string? host = null, int? port = null, string options = "") =>
        $"postgresql://{user}:{Uri.EscapeDataString(password)}@{host ?? Server.Host}:{port ?? Server.Port}/{database}{options}";

    /// <summary>Every exception in the chain, as <c>ToString()</c> shows it and message by message.</summary>
    private static IEnumerable<string> Texts(Exception ex)
    {
        yield return ex.ToString();
        for (var e = (Exception?)ex; e is not null; e = e.InnerException)
        {
            yield return e.Message;
            if (e is PostgresException pg)
            {
                yield return $"{pg.MessageText} {pg.Detail} {pg.Hint} {pg.Where} {pg.InternalQuery}";
            }
        }
    }

    private static void AssertHidden(string core, IEnumerable<string?> texts, string where)
    {
        foreach (var text in texts)
        {
            Assert.False(text?.Contains(core, StringComparison.Ordinal) ?? false, $"{where} shows the password: {text}");
        }
    }

    /// <summary>A login role with a distinctive password, dropped (with the databases it owns) at the end.</summary>
    private sealed class Role : IAsyncDisposable
    {
        private Role(string name, string password, string core)
        {
            Name = name;
            Password = password;
            Core = core;
        }

        public string Name { get; }

        public string Password { get; }

        public string Core { get; }

        public static async Task<Role> CreateAsync(bool canCreateDatabases)
        {
            var (password, core) = NewPassword();
            var role = new Role("dbos_secret_" + Guid.NewGuid().ToString("N")[..10], password, core);
            await AdminAsync($"CREATE ROLE {role.Name} LOGIN {(canCreateDatabases ? "CREATEDB" : "NOCREATEDB")} PASSWORD '{password.Replace("'", "''", StringComparison.Ordinal)}'");
            return role;
        }

        public static async Task AdminAsync(string sql)
        {
            await using var admin = new NpgsqlConnection(TestDatabase.ConnectionString(TestDatabase.PostgresUrl("postgres")));
            await admin.OpenAsync();
            await using var command = new NpgsqlCommand(sql, admin);
            await command.ExecuteNonQueryAsync();
        }

        public async ValueTask DisposeAsync()
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(TestDatabase.ConnectionString(TestDatabase.PostgresUrl("postgres")));
            await admin.OpenAsync();
            var databases = new List<string>();
            await using (var list = new NpgsqlCommand($"SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = '{Name}'", admin))
            await using (var reader = await list.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    databases.Add(reader.GetString(0));
                }
            }

            foreach (var database in databases)
            {
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)", admin);
                await drop.ExecuteNonQueryAsync();
            }

            await using var dropRole = new NpgsqlCommand($"DROP ROLE IF EXISTS {Name}", admin);
            await dropRole.ExecuteNonQueryAsync();
        }
    }

    private static DbosConfig Config(string url, RecordingLoggerFactory logs, string name = "secrets") => new()
    {
        Name = name,
        SystemDatabaseUrl = url,
        ApplicationVersion = "v1",
        ExecutorId = "local",
        PollingInterval = TimeSpan.FromMilliseconds(50),
        LoggerFactory = logs,
    };

    /// <summary>Runs workflows that log, retry, fail and succeed, so the application logs at every level.</summary>
    private static async Task ExerciseAsync(DbosApp dbos, Workflow<int, string> work)
    {
        Assert.Equal("done 1", await work.RunAsync(1));
        var failed = await Assert.ThrowsAsync<WorkflowFailedException>(() => work.RunAsync(-1));
        Assert.Equal("ArgumentOutOfRangeException", failed.ErrorName);
        Assert.NotEmpty(await dbos.ListWorkflowsAsync());
    }

    private static Workflow<int, string> RegisterWork(DbosApp dbos)
    {
        var flaky = 0;
        var step = dbos.RegisterStep(
            "flaky",
            (int x, CancellationToken _) => Interlocked.Increment(ref flaky) % 2 == 1 ? throw new TimeoutException("transient") : Task.FromResult(x),
            new StepOptions { MaxAttempts = 3, RetryInterval = TimeSpan.FromMilliseconds(10) });
        return dbos.RegisterWorkflow("work", async (WorkflowContext ctx, int x) =>
        {
            ctx.Logger.LogInformation("working on {X}", x);
            var y = await step.RunAsync(x);
            return y < 0 ? throw new ArgumentOutOfRangeException(nameof(x), "negative") : $"done {y}";
        });
    }

    [Theory, BothBackends]
    public async Task On_the_happy_path_nothing_logged_or_described_shows_the_password_and_sqlite_shows_its_file(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var role = await Role.CreateAsync(canCreateDatabases: true);
        var database = "dbos_secret_db_" + Guid.NewGuid().ToString("N")[..8];
        var url = backend == Backend.Postgres ? Url(role.Name, role.Password, database, options: "?sslmode=disable&application_name=secrets") : db.Url;
        var logs = new RecordingLoggerFactory();
        var config = Config(url, logs);
        string description;
        await using (var dbos = DbosApp.Create(config))
        {
            var work = RegisterWork(dbos);
            await dbos.LaunchAsync();
            await ExerciseAsync(dbos, work);
            description = dbos.SystemDatabase;
        }

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = url, LoggerFactory = logs });
        Assert.NotEmpty(await client.ListWorkflowsAsync());

        Assert.Contains("Debug", logs.All, StringComparison.Ordinal);
        Assert.Contains("Warning", logs.All, StringComparison.Ordinal);
        Assert.Contains("scope", logs.All, StringComparison.Ordinal);
        Assert.Contains(description, logs.All, StringComparison.Ordinal);
        if (backend == Backend.Postgres)
        {
            Assert.Equal($"postgresql://{role.Name}:***@{Server.Host}:{Server.Port}/{database}", description);
            Assert.Equal(description, client.SystemDatabase);
            AssertHidden(role.Core, [.. logs.Entries, description, client.SystemDatabase, config.ToString(), client.ToString()], "the happy path");
        }
        else
        {
            // A SQLite URL holds no secret: the description is the URL, naming the file.
            Assert.Equal(db.Url, description);
            Assert.Contains(Path.Combine(db.Directory, "system.sqlite"), description, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Unreachable_servers_wrong_passwords_and_databases_that_cannot_be_created_fail_without_showing_the_password()
    {
        await using var role = await Role.CreateAsync(canCreateDatabases: false);
        var (wrong, wrongCore) = NewPassword();
        var existing = "dbos_secret_db_" + Guid.NewGuid().ToString("N")[..8];
        await Role.AdminAsync($"CREATE DATABASE {existing} OWNER {role.Name}");
        var cases = new (string What, string Url, string Expected)[]
        {
            ("a closed port", Url(role.Name, role.Password, existing, "127.0.0.1", 1, "?connect_timeout=3"), "Cannot connect to the system database"),
            ("an unknown host", Url(role.Name, role.Password, existing, "no-such-host.invalid", 5432, "?connect_timeout=3"), "Cannot connect to the system database"),
            ("a wrong password", Url(role.Name, wrong, existing), "password authentication failed"),
            ("a database it may not create", Url(role.Name, role.Password, "dbos_missing_" + Guid.NewGuid().ToString("N")[..8]), "cannot be created"),
        };
        foreach (var (what, url, expected) in cases)
        {
            var logs = new RecordingLoggerFactory();
            await using (var dbos = DbosApp.Create(Config(url, logs)))
            {
                RegisterWork(dbos);
                var ex = await Assert.ThrowsAsync<DbosDatabaseException>(() => dbos.LaunchAsync());
                Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
                Assert.Contains($"{role.Name}:***@", ex.Message, StringComparison.Ordinal);
                AssertHidden(role.Core, [.. Texts(ex), .. logs.Entries, dbos.SystemDatabase], what);
                AssertHidden(wrongCore, [.. Texts(ex), .. logs.Entries, dbos.SystemDatabase], what);
            }

            await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = url, LoggerFactory = logs });
            var clientError = await Assert.ThrowsAnyAsync<Exception>(() => client.ListWorkflowsAsync());
            Assert.IsType<DbosDatabaseException>(clientError, exactMatch: false);
            AssertHidden(role.Core, [.. Texts(clientError), .. logs.Entries], $"a client, {what}");
            AssertHidden(wrongCore, [.. Texts(clientError), .. logs.Entries], $"a client, {what}");

            // An application database with the same URL fails the same way.
            var datasourceError = await Assert.ThrowsAsync<DbosDatabaseException>(() => SqlDatasource.CreateAsync(url));
            AssertHidden(role.Core, Texts(datasourceError), $"a datasource, {what}");
            AssertHidden(wrongCore, Texts(datasourceError), $"a datasource, {what}");
        }
    }

    [Fact]
    public async Task A_lost_connection_is_logged_and_recovered_without_showing_the_password()
    {
        await using var role = await Role.CreateAsync(canCreateDatabases: true);
        var logs = new RecordingLoggerFactory();
        await using var dbos = DbosApp.Create(Config(Url(role.Name, role.Password, "dbos_secret_db_" + Guid.NewGuid().ToString("N")[..8]), logs));
        var work = RegisterWork(dbos);
        await dbos.LaunchAsync();
        Assert.Equal("done 1", await work.RunAsync(1));

        // The server ends the notification listener's session: it logs the loss (with its exception) and reconnects.
        await Role.AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role.Name}' AND query LIKE 'LISTEN%'");
        await Eventually.HoldsAsync(() => Task.FromResult(logs.Entries.Any(e => e.Contains("Lost the Postgres notification connection", StringComparison.Ordinal))), "the lost connection is logged");
        Assert.Equal("done 3", await work.RunAsync(3));
        Assert.Contains(logs.Entries, e => e.Contains("Npgsql", StringComparison.Ordinal));
        AssertHidden(role.Core, logs.Entries, "the logs of a lost connection");
    }

    [Fact]
    public async Task Malformed_urls_holding_a_password_fail_at_configuration_without_showing_it()
    {
        var (password, core) = NewPassword();
        string[] urls =
        [
            $"postgresql://dbos:{password}@localhost:5432/db",                        // not percent-encoded: '/', '?', '#' and '@' inside
            $"postgresql://dbos:{Uri.EscapeDataString(password)}@localhost:notaport/db",
            $"postgresql://dbos:{Uri.EscapeDataString(password)}@localhost:5432/db?nosuchoption=1",
            $"postgres:/dbos:{core}@localhost/db",
            $"dbos:{core}@localhost:5432/db",                                          // the scheme forgotten
            $"mysql://dbos:{core}@localhost/db",
            $"sqlite://dbos:{core}@localhost/db",
            $"postgresql://localhost/db?password={core}&sslmode=nonsense",
            $"postgresql://dbos:{core}\0@localhost/db",
        ];
        foreach (var url in urls)
        {
            var logs = new RecordingLoggerFactory();
            var config = Config(url, logs);
            var fromValidate = Assert.Throws<DbosConfigurationException>(config.Validate);
            var fromCreate = Assert.Throws<DbosConfigurationException>(() => DbosApp.Create(config));
            var fromClient = Assert.Throws<DbosConfigurationException>(() => DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = url }));
            var fromApplicationDatabase = Assert.Throws<DbosConfigurationException>(() => DbosApp.Create(new DbosConfig { Name = "a", SystemDatabaseUrl = "sqlite:///a.sqlite", ApplicationDatabaseUrl = url }));
            var fromDatasource = await Assert.ThrowsAsync<DbosConfigurationException>(() => SqlDatasource.CreateAsync(url));
            Assert.Contains("DbosConfig.SystemDatabaseUrl", fromCreate.Message, StringComparison.Ordinal);
            Assert.Contains("DbosConfig.ApplicationDatabaseUrl", fromApplicationDatabase.Message, StringComparison.Ordinal);
            AssertHidden(core, [.. Texts(fromValidate), .. Texts(fromCreate), .. Texts(fromClient), .. Texts(fromApplicationDatabase), .. Texts(fromDatasource), .. logs.Entries], url.Replace("\0", "\\0", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task The_command_line_never_prints_the_password()
    {
        await using var role = await Role.CreateAsync(canCreateDatabases: true);
        var (wrong, wrongCore) = NewPassword();
        var database = "dbos_secret_db_" + Guid.NewGuid().ToString("N")[..8];
        var directory = Path.Combine(Path.GetTempPath(), "dbos-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        async Task<(int Exit, string Output)> DbosAsync(params string[] arguments)
        {
            await using var cli = WorkerProcess.StartDllWithInput(Path.Combine(AppContext.BaseDirectory, "Dbos.Cli.dll"), new Dictionary<string, string?>(), directory, null, arguments);
            var exit = await cli.WaitForExitAsync();
            return (exit, cli.StandardOutput + "\n" + cli.StandardError);
        }

        var good = Url(role.Name, role.Password, database);
        var migrate = await DbosAsync("migrate", "--sys-db-url", good);
        Assert.Equal(0, migrate.Exit);
        Assert.Contains($"{role.Name}:***@", migrate.Output, StringComparison.Ordinal);
        var list = await DbosAsync("workflow", "list", "--sys-db-url", good, "--json");
        Assert.Equal(0, list.Exit);

        (string What, string[] Arguments)[] failures =
        [
            ("a wrong password", ["workflow", "list", "--sys-db-url", Url(role.Name, wrong, database)]),
            ("a closed port", ["workflow", "list", "--sys-db-url", Url(role.Name, role.Password, database, "127.0.0.1", 1, "?connect_timeout=3")]),
            ("a malformed URL", ["workflow", "list", "--sys-db-url", $"postgresql://{role.Name}:{role.Password}@{Server.Host}:{Server.Port}/{database}"]),
            ("an unknown workflow", ["workflow", "get", "no-such-id", "--sys-db-url", good]),
        ];
        foreach (var (what, arguments) in failures)
        {
            var result = await DbosAsync(arguments);
            Assert.Equal(1, result.Exit);
            AssertHidden(role.Core, [result.Output], $"the command line, {what}");
            AssertHidden(wrongCore, [result.Output], $"the command line, {what}");
        }

        AssertHidden(role.Core, [migrate.Output, list.Output], "the command line's output");
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Sqlite_errors_name_the_file_they_are_about()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var missing = Path.Combine(db.Directory, "missing dir", "no such file.sqlite");
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = "sqlite:///" + missing });
        var notThere = await Assert.ThrowsAsync<DbosDatabaseException>(() => client.ListWorkflowsAsync());
        Assert.Contains(missing, notThere.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(missing));

        // A file whose folder cannot exist (its parent is a file).
        var blocker = Path.Combine(db.Directory, "a-file");
        await File.WriteAllTextAsync(blocker, "not a folder");
        var impossible = Path.Combine(blocker, "system.sqlite");
        await using var dbos = DbosApp.Create(new DbosConfig { Name = "sqlite-errors", SystemDatabaseUrl = "sqlite:///" + impossible });
        var cannot = await Assert.ThrowsAnyAsync<Exception>(() => dbos.LaunchAsync());
        Assert.IsType<DbosDatabaseException>(cannot, exactMatch: false);
        Assert.Contains(impossible, cannot.Message, StringComparison.Ordinal);
    }
}
