using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Dbos.Tests.Infrastructure;

/// <summary>
/// A Postgres cluster of one test's own (initdb into a fresh folder, on a free port), so a test may restart it or cut
/// clients off without disturbing the shared server other tests use in parallel. Postgres refuses to run as root, so
/// the cluster belongs to the <c>postgres</c> OS user and every server command runs through <c>runuser</c>. Needs root
/// and the Postgres binaries (DBOS_TEST_POSTGRES_BIN, or the newest /usr/lib/postgresql/*/bin): without them the test
/// fails with a message that says so.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    /// <summary>The superuser the cluster is created with; every host in pg_hba is trusted, so any password works.</summary>
    public const string User = "dbos";

    private readonly string bin;

    private PrivatePostgres(string bin, string directory, int port)
    {
        this.bin = bin;
        Directory = directory;
        Port = port;
    }

    /// <summary>The cluster's folder (its data directory is <c>data</c> inside it).</summary>
    public string Directory { get; }

    public string DataDirectory => Path.Combine(Directory, "data");

    public int Port { get; }

    /// <summary>A postgresql:// URL of <paramref name="database"/> on this cluster, reached at <paramref name="host"/>.</summary>
    public string Url(string database = "postgres", string host = "127.0.0.1") => $"postgresql://{User}:{User}@{host}:{Port}/{database}";

    /// <summary>
    /// Creates and starts a cluster listening on <paramref name="listenAddresses"/> (comma-separated, as in
    /// postgresql.conf), trusting 127.0.0.1 and every network in <paramref name="trustedNetworks"/> (CIDR).
    /// </summary>
    public static async Task<PrivatePostgres> StartAsync(string listenAddresses = "127.0.0.1", params string[] trustedNetworks)
    {
        if (Environment.UserName != "root" && !string.Equals(Environment.GetEnvironmentVariable("USER"), "root", StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"This test runs a Postgres cluster of its own and needs root (to run it as the 'postgres' OS user through runuser); it runs as '{Environment.UserName}'.");
        }

        var bin = FindBinaries();
        var directory = Path.Combine(Path.GetTempPath(), "dbos-pg-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        await RunAsync("chown", "postgres:postgres", directory);
        var cluster = new PrivatePostgres(bin, directory, FreePort());
        try
        {
            // No sync after initdb and none at run time: the cluster lives for one test.
            await cluster.AsPostgresAsync("initdb", "-D", cluster.DataDirectory, "-U", User, "--auth=trust", "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C");
            var settings = string.Join(
                '\n',
                $"port = {cluster.Port}",
                $"listen_addresses = '{listenAddresses}'",
                $"unix_socket_directories = '{directory}'",
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "max_connections = 200",
                "shared_buffers = 32MB",
                string.Empty);
            await File.AppendAllTextAsync(Path.Combine(cluster.DataDirectory, "postgresql.conf"), settings);
            var hba = string.Join('\n', ((string[])["127.0.0.1/32", .. trustedNetworks]).Select(n => $"host all all {n} trust")) + '\n';
            await File.WriteAllTextAsync(Path.Combine(cluster.DataDirectory, "pg_hba.conf"), "local all all trust\n" + hba);
            await cluster.StartAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private static string FindBinaries()
    {
        if (Environment.GetEnvironmentVariable("DBOS_TEST_POSTGRES_BIN") is { Length: > 0 } configured)
        {
            return File.Exists(Path.Combine(configured, "initdb"))
                ? configured
                : throw new InvalidOperationException($"DBOS_TEST_POSTGRES_BIN is '{configured}', which holds no initdb.");
        }

        const string root = "/usr/lib/postgresql";
        var found = System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root)
                .Select(d => (Directory: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(d => File.Exists(Path.Combine(d.Directory, "initdb")) && File.Exists(Path.Combine(d.Directory, "pg_ctl")))
                .OrderByDescending(d => d.Version)
                .Select(d => d.Directory)
                .FirstOrDefault()
            : null;
        return found ?? throw new InvalidOperationException(
            $"This test runs a Postgres cluster of its own and needs the Postgres server binaries (initdb, pg_ctl) in {root}/<version>/bin " +
            "or in DBOS_TEST_POSTGRES_BIN (Debian: apt-get install postgresql).");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public Task StartAsync() => PgCtlAsync("start", "-w", "-t", "60", "-l", Path.Combine(Directory, "server.log"));

    public Task StopAsync() => PgCtlAsync("stop", "-w", "-t", "60", "-m", "fast");

    /// <summary>Restarts the server in fast mode: every session ends at once, and with them their advisory locks.</summary>
    public Task RestartAsync() => PgCtlAsync("restart", "-w", "-t", "60", "-m", "fast", "-l", Path.Combine(Directory, "server.log"));

    private Task PgCtlAsync(params string[] arguments) => AsPostgresAsync("pg_ctl", ["-D", DataDirectory, .. arguments]);

    /// <summary>Creates a database on this cluster.</summary>
    public async Task CreateDatabaseAsync(string name)
    {
        await using var admin = new NpgsqlConnection(TestDatabase.ConnectionString(Url()));
        await admin.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", admin);
        await create.ExecuteNonQueryAsync();
    }

    /// <summary>The server's log, for failure messages.</summary>
    public string ServerLog
    {
        get
        {
            try
            {
                return File.ReadAllText(Path.Combine(Directory, "server.log"));
            }
            catch (IOException)
            {
                return string.Empty;
            }
        }
    }

    private Task AsPostgresAsync(string program, params string[] arguments) =>
        RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(bin, program), .. arguments]);

    /// <summary>Runs a command to its end; fails with its output when it exits with an error.</summary>
    public static async Task<string> RunAsync(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,

            // The cluster's folder is the working directory of nothing: runuser's user may not read the test's folder.
            WorkingDirectory = "/",
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {program}.");

        // pg_ctl start leaves the server holding no pipe of ours (its output goes to the log), so reading to the end is safe.
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        var text = await stdout + await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{program} {string.Join(' ', arguments)}' failed ({process.ExitCode}): {text}");
        }

        return text;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                await PgCtlAsync("stop", "-w", "-t", "30", "-m", "immediate");
            }
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover folder in the temp directory harms nothing.
        }
    }
}
