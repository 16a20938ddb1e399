using System.Data.Common;
using System.Globalization;
using System.Net.Sockets;
using Dbos.Internal;
using Npgsql;

namespace Dbos.SystemDatabase;

/// <summary>
/// The Postgres system database, through one <see cref="NpgsqlDataSource"/>. Single statements run in autocommit
/// (one round trip, prepared automatically after their second use); multi-statement work runs in a transaction.
/// </summary>
internal sealed class PostgresExecutor : SqlExecutor
{
    // Any fixed key serializes migrations among processes of this library on one database.
    private const long MigrationLockKey = 0x44424f535f4d4947; // "DBOS_MIG"

    private const int MaxCancelledAttempts = 8;
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan GiveUp = Timeout.InfiniteTimeSpan;

    private readonly PostgresUrl url;
    private readonly bool ownsDataSource;
    private readonly CancellationTokenSource stopping = new();
    private readonly PostgresCommandPool commands = new();
    private NpgsqlDataSource dataSource;
    private volatile bool connectedOnce;
    private long outageStartedAt;

    public PostgresExecutor(PostgresUrl url, string schema, int poolSize, NpgsqlDataSource? dataSource)
        : base(new PostgresDialect(schema))
    {
        this.url = url;
        ownsDataSource = dataSource is null;
        this.dataSource = dataSource ?? Build(url, poolSize);
    }

    public override string Description => url.Masked;

    public new PostgresDialect Dialect => (PostgresDialect)base.Dialect;

    public NpgsqlDataSource DataSource => dataSource;

    internal static NpgsqlDataSource Build(PostgresUrl url, int poolSize)
    {
        var builder = new NpgsqlConnectionStringBuilder(url.Builder.ConnectionString)
        {
            MaxPoolSize = poolSize,
            NoResetOnClose = true,
            MaxAutoPrepare = Math.Max(url.Builder.MaxAutoPrepare, 128),
            AutoPrepareMinUsages = 2,
        };
        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = "dbos-dotnet";
        }

        return new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
    }

    public override async Task<T> WriteAsync<T>(Func<ISqlSession, CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken, System.Data.IsolationLevel isolation = System.Data.IsolationLevel.ReadCommitted)
    {
        var retry = default(RetryCount);
        while (true)
        {
            try
            {
                var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var connectionScope = connection.ConfigureAwait(false);
                var transaction = await connection.BeginTransactionAsync(isolation, cancellationToken).ConfigureAwait(false);
                await using var transactionScope = transaction.ConfigureAwait(false);
                var result = await work(new PostgresSession(commands, connection, transaction), cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                Succeeded();
                return result;
            }
            catch (Exception ex) when (RetryDelay(ex, ref retry, cancellationToken) is { } delay)
            {
                await PauseAsync(ex, delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public override async Task<T> ReadAsync<T>(Func<ISqlSession, CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken)
    {
        var retry = default(RetryCount);
        while (true)
        {
            try
            {
                var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var connectionScope = connection.ConfigureAwait(false);
                var result = await work(new PostgresSession(commands, connection, null), cancellationToken).ConfigureAwait(false);
                Succeeded();
                return result;
            }
            catch (Exception ex) when (RetryDelay(ex, ref retry, cancellationToken) is { } delay)
            {
                await PauseAsync(ex, delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Runs a single write statement in autocommit: one round trip, no BEGIN/COMMIT.</summary>
    public override async Task<int> ExecuteAsync(string sql, object?[] args, CancellationToken cancellationToken)
    {
        var retry = default(RetryCount);
        while (true)
        {
            try
            {
                var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var connectionScope = connection.ConfigureAwait(false);
                // The command is run here rather than through PostgresSession: one async frame fewer on every checkpoint.
                var command = commands.Rent(sql, args, connection, null);
                int result;
                try
                {
                    result = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException ex) when (PostgresSession.TooLong(ex) is { } tooLong)
                {
                    throw tooLong;
                }

                commands.Return(sql, command);
                Succeeded();
                return result;
            }
            catch (Exception ex) when (RetryDelay(ex, ref retry, cancellationToken) is { } delay)
            {
                await PauseAsync(ex, delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Runs a single write statement with RETURNING in autocommit.</summary>
    public override async Task<List<T>> ExecuteQueryAsync<T>(string sql, object?[] args, Func<DbDataReader, T> map, CancellationToken cancellationToken)
    {
        var retry = default(RetryCount);
        while (true)
        {
            try
            {
                var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var connectionScope = connection.ConfigureAwait(false);
                var result = await new PostgresSession(commands, connection, null).QueryAsync(sql, args, map, cancellationToken).ConfigureAwait(false);
                Succeeded();
                return result;
            }
            catch (Exception ex) when (RetryDelay(ex, ref retry, cancellationToken) is { } delay)
            {
                await PauseAsync(ex, delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>What went wrong with a statement, for deciding whether to run it again.</summary>
    private enum FailureKind
    {
        /// <summary>Not a fault of the connection or the server's availability: the caller handles it.</summary>
        Final,

        /// <summary>The server or the connection went away (restart, terminated backend, network), or no connection could be had.</summary>
        Unavailable,

        /// <summary>The server cancelled the statement (a statement timeout) or the command timed out.</summary>
        Cancelled,
    }

    /// <summary>How often one operation failed, by kind.</summary>
    private struct RetryCount
    {
        public int Unavailable;
        public int Cancelled;
    }

    /// <summary>
    /// Classifies a failure. Connection failures arrive wrapped by <see cref="OpenAsync"/>, so a server that refuses new
    /// connections for a while (starting up, too many clients, connections disallowed) is told apart from a statement's error.
    /// </summary>
    private static FailureKind Classify(Exception ex)
    {
        var connecting = ex is DbosDatabaseException { InnerException: not null };
        var cause = connecting ? ex.InnerException! : ex;
        return cause switch
        {
            PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } when !connecting => FailureKind.Cancelled,
            PostgresException pg when IsUnavailable(pg.SqlState, connecting) => FailureKind.Unavailable,
            PostgresException => FailureKind.Final,
            NpgsqlException { IsTransient: true, InnerException: TimeoutException } when !connecting => FailureKind.Cancelled,
            NpgsqlException { IsTransient: true } => FailureKind.Unavailable,
            SocketException or TimeoutException when connecting => FailureKind.Unavailable,
            _ => FailureKind.Final,
        };
    }

    private static bool IsUnavailable(string sqlState, bool connecting) =>
        sqlState.StartsWith("08", StringComparison.Ordinal) // connection exceptions
        || sqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.TooManyConnections
        || (connecting && sqlState == PostgresErrorCodes.ObjectNotInPrerequisiteState) // the database does not accept connections for now

        // Logins refused (a role disabled, a password rotated) once this executor has connected: the server is
        // unavailable to it for now, so work waits, as for a lost server, instead of failing with the error.
        || (connecting && sqlState.StartsWith("28", StringComparison.Ordinal));

    public override bool IsUniqueViolation(Exception ex) => ex is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    public override bool IsForeignKeyViolation(Exception ex) => ex is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation };

    public override bool IsStatementTimeout(Exception ex) => ex is PostgresException { SqlState: PostgresErrorCodes.QueryCanceled };

    public override bool IsContention(Exception ex) =>
        ex is PostgresException { SqlState: PostgresErrorCodes.LockNotAvailable or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected };

    /// <summary>
    /// The wait before running a failed operation again, or null to let the failure through. A lost server is waited for
    /// without limit (the work is kept, not failed), once this executor has reached it at least once: a database that was
    /// never reachable is a configuration error, reported at once. A statement the server cancelled is run again a few times.
    /// Every system database operation can run again safely: writes are conditional on what is already recorded.
    /// </summary>
    private TimeSpan? RetryDelay(Exception ex, ref RetryCount retry, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested || stopping.IsCancellationRequested)
        {
            return null;
        }

        switch (Classify(ex))
        {
            case FailureKind.Unavailable when connectedOnce:
                retry.Unavailable++;
                var delay = Backoff(retry.Unavailable);
                if (ownsDataSource)
                {
                    dataSource.Clear(); // Idle pooled connections to a restarted server are dead too.
                }

                var now = Time.GetTimestamp();
                if (Interlocked.CompareExchange(ref outageStartedAt, now, 0) == 0)
                {
                    Log.SystemDatabaseLost(Logger, url.Masked, Reason(ex), ex);
                }
                else
                {
                    Log.SystemDatabaseStillLost(Logger, url.Masked, retry.Unavailable, delay.TotalSeconds, Reason(ex));
                }

                return delay;
            case FailureKind.Cancelled:
                if (++retry.Cancelled >= MaxCancelledAttempts)
                {
                    return GiveUp; // Thrown by PauseAsync: an exception thrown in a filter would be swallowed.
                }

                var wait = Backoff(retry.Cancelled);
                Log.StatementRetry(Logger, Reason(ex), wait.TotalSeconds, retry.Cancelled, MaxCancelledAttempts);
                return wait;
            default:
                return null;
        }
    }

    private static TimeSpan Backoff(int attempt) =>
        TimeSpan.FromTicks((long)(Math.Min(FirstRetryDelay.Ticks << Math.Min(attempt - 1, 20), MaxRetryDelay.Ticks) * (0.5 + Random.Shared.NextDouble())));

    private string Reason(Exception ex)
    {
        var cause = ex is DbosDatabaseException { InnerException: { } inner } ? inner : ex;
        var text = cause is PostgresException pg ? $"{pg.SqlState}: {pg.MessageText}" : cause.Message;
        if (cause is not PostgresException && cause.InnerException is { } innermost)
        {
            text += ": " + innermost.Message;
        }

        return Scrub(text);
    }

    /// <summary>Waits before the next attempt; gives up when the statement's attempts are spent, or the application shuts down meanwhile.</summary>
    private async Task PauseAsync(Exception failure, TimeSpan delay, CancellationToken cancellationToken)
    {
        if (delay == GiveUp)
        {
            throw new DbosDatabaseException(
                $"A statement on the system database {url.Masked} was cancelled {MaxCancelledAttempts} times in a row (a statement timeout, or an overloaded server); giving up: {Reason(failure)}",
                failure);
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stopping.Token);
        try
        {
            await Task.Delay(delay, Time, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DbosDatabaseException($"The system database {url.Masked} is unreachable and the application is shutting down: {Reason(failure)}", failure);
        }
    }

    /// <summary>Marks the end of an outage, if there was one.</summary>
    private void Succeeded()
    {
        if (Volatile.Read(ref outageStartedAt) != 0 && Interlocked.Exchange(ref outageStartedAt, 0) is var started and not 0)
        {
            Log.SystemDatabaseBack(Logger, url.Masked, Math.Round(Time.GetElapsedTime(started).TotalSeconds, 1));
        }
    }

    /// <summary>
    /// A connection for LISTEN, kept open for the life of the process: outside the pool when this executor built the pool
    /// (so it takes no pooled slot), from the user's data source otherwise.
    /// </summary>
    public async Task<NpgsqlConnection> OpenListenerConnectionAsync(CancellationToken cancellationToken)
    {
        if (!ownsDataSource)
        {
            return await OpenAsync(cancellationToken).ConfigureAwait(false);
        }

        // Named apart from the pool's connections, so an operator can tell the listener in pg_stat_activity.
        var builder = new NpgsqlConnectionStringBuilder(url.Builder.ConnectionString) { Pooling = false, KeepAlive = 30 };
        builder.ApplicationName = (string.IsNullOrEmpty(builder.ApplicationName) ? "dbos-dotnet" : builder.ApplicationName) + " listener";
        return await OpenOutsidePoolAsync(builder, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens a connection of its own (not pooled), reporting a failure to connect as every connection does.</summary>
    private async Task<NpgsqlConnection> OpenOutsidePoolAsync(NpgsqlConnectionStringBuilder builder, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (Exception ex) when (IsConnectFailure(ex))
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw ConnectError(url, ex);
        }
    }

    /// <summary>
    /// A connection that holds this process's liveness lock for its whole life: a real server session (outside the pool
    /// when this executor built the pool; from the user's data source otherwise, never returned to it while held), named
    /// <paramref name="sessionName"/> so its executor can be found in <c>pg_stat_activity</c>. Keepalives on both ends
    /// end the session within about <see cref="VanishedPeerBound"/> of its peer vanishing (a dead host, a cut network),
    /// instead of TCP's two hours, so the lock of a vanished process lapses in time for its work to be taken over.
    /// </summary>
    public async Task<NpgsqlConnection> OpenLivenessConnectionAsync(string sessionName, CancellationToken cancellationToken)
    {
        var connection = !ownsDataSource
            ? await OpenAsync(cancellationToken).ConfigureAwait(false)
            : await OpenOutsidePoolAsync(
                new NpgsqlConnectionStringBuilder(url.Builder.ConnectionString)
                {
                    Pooling = false,
                    TcpKeepAlive = true,
                    TcpKeepAliveTime = 2,
                    TcpKeepAliveInterval = 1,
                    CommandTimeout = (int)VanishedPeerBound.TotalSeconds,
                    ApplicationName = sessionName,
                },
                cancellationToken).ConfigureAwait(false);

        try
        {
            // The server's side: probe an idle client after 2 s, every second, give up after 3 unanswered probes, and drop
            // a connection whose sent data stays unacknowledged for the bound (tcp_user_timeout exists from Postgres 12 on).
            var settings = "SELECT set_config('application_name', $1, false), set_config('tcp_keepalives_idle', '2', false), " +
                "set_config('tcp_keepalives_interval', '1', false), set_config('tcp_keepalives_count', '3', false)" +
                (connection.PostgreSqlVersion.Major >= 12 ? $", set_config('tcp_user_timeout', '{(int)VanishedPeerBound.TotalMilliseconds}', false)" : string.Empty);
            var command = new NpgsqlCommand(settings, connection) { Parameters = { new() { Value = sessionName } } };
            await using (command.ConfigureAwait(false))
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>About how long a vanished peer's liveness session lingers on the server (and how long a look at liveness may take).</summary>
    public static readonly TimeSpan VanishedPeerBound = TimeSpan.FromSeconds(5);

    internal async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            connectedOnce = true;
            return connection;
        }
        catch (Exception ex) when (IsConnectFailure(ex))
        {
            throw ConnectError(url, ex);
        }
    }

    public override async Task MigrateAsync(CancellationToken cancellationToken)
    {
        NpgsqlConnection connection;
        try
        {
            connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InvalidCatalogName && ownsDataSource)
        {
            await PostgresDatabaseCreator.CreateAsync(url, cancellationToken).ConfigureAwait(false);
            connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsConnectFailure(ex))
        {
            throw ConnectError(url, ex);
        }

        connectedOnce = true;
        bool migrated;
        await using (connection.ConfigureAwait(false))
        {
            migrated = await RunMigrationsAsync(connection, cancellationToken).ConfigureAwait(false);
        }

        // Types created by migrations must be visible to pooled connections opened before them. A schema that was
        // current already keeps its connection: the first workflow then needs no second connection (and TLS handshake).
        if (migrated && ownsDataSource)
        {
            NpgsqlConnection.ClearPool(new NpgsqlConnection(dataSource.ConnectionString));
        }
    }

    public override ISqlSession? CallerSession(DbConnection connection, DbTransaction transaction)
    {
        if (connection is not NpgsqlConnection npgsql || transaction is not NpgsqlTransaction npgsqlTransaction)
        {
            throw new ArgumentException($"The connection must be an open NpgsqlConnection with its NpgsqlTransaction (got {connection.GetType().Name} and {transaction.GetType().Name}).", nameof(connection));
        }

        return new PostgresSession(commands, npgsql, npgsqlTransaction);
    }

    public override async Task VerifySchemaAsync(CancellationToken cancellationToken)
    {
        const string Remedy = "Migrate it out of band (for example `dbos migrate`, as a role that may create tables) or launch once with RunMigrations = true. Nothing was created or changed.";
        NpgsqlConnection connection;
        try
        {
            connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InvalidCatalogName)
        {
            throw new DbosDatabaseException($"The system database {url.Masked} does not exist, and RunMigrations is false. {Remedy}", ex);
        }
        catch (Exception ex) when (IsConnectFailure(ex))
        {
            throw ConnectError(url, ex);
        }

        connectedOnce = true;
        await using (connection.ConfigureAwait(false))
        {
            var latest = PostgresSchema.LatestVersion;
            var state = await ReadStateAsync(connection, cancellationToken).ConfigureAwait(false);
            for (var waited = false; ; waited = true)
            {
                if (state.Version == latest)
                {
                    return;
                }

                CheckNotNewer(state.Version, latest);
                if (state.IsEmpty)
                {
                    throw new DbosDatabaseException($"The system database {url.Masked} has no DBOS schema \"{Dialect.Schema}\" (or none of its tables), and RunMigrations is false. {Remedy}");
                }

                if (waited)
                {
                    throw new DbosDatabaseException(
                        $"The system database {url.Masked} (schema \"{Dialect.Schema}\") has schema version {state.Version}, older than the {latest} this release needs, and it did not rise for {MigrationWaitBound.TotalSeconds} s; RunMigrations is false. {Remedy}");
                }

                // The version is below the current one: another process may be migrating. Wait while it makes progress.
                Log.WaitingForMigration(Logger, url.Masked, Dialect.Schema, state.Version, MigrationWaitBound.TotalSeconds);
                state = await WaitForOtherMigrationAsync(connection, state, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// How long a migration another process runs may show no progress before this one stops waiting for it: then a
    /// version in the shared range is finished here, and one below it is refused as a database of an older release.
    /// </summary>
    internal TimeSpan MigrationWaitBound { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Brings the schema to the latest version; false when it was current already (nothing was waited for or changed).</summary>
    private async Task<bool> RunMigrationsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var latest = PostgresSchema.LatestVersion;

        // Fast path: already current, one query and nothing to lock.
        var version = await TryReadVersionAsync(connection, cancellationToken).ConfigureAwait(false);
        if (version == latest)
        {
            return false;
        }

        CheckNotNewer(version ?? 0, latest);

        // Other DBOS implementations migrate without any lock, one version at a time (their early versions each in
        // autocommit), so a schema that is there but not at a shared version is another process's migration under way.
        var waiting = false;
        void NoteWaiting(int at)
        {
            if (!waiting)
            {
                waiting = true;
                Log.WaitingForMigration(Logger, url.Masked, Dialect.Schema, at, MigrationWaitBound.TotalSeconds);
            }
        }

        while (true)
        {
            var state = await ReadStateAsync(connection, cancellationToken).ConfigureAwait(false);
            if (state.Version == latest)
            {
                return true;
            }

            CheckNotNewer(state.Version, latest);
            if (state.IsEmpty || state.Version >= PostgresSchema.BaselineVersion)
            {
                if (await MigrateUnderLockAsync(connection, NoteWaiting, cancellationToken).ConfigureAwait(false))
                {
                    return true;
                }

                state = await ReadStateAsync(connection, cancellationToken).ConfigureAwait(false);
            }

            NoteWaiting(state.Version);
            state = await WaitForOtherMigrationAsync(connection, state, cancellationToken).ConfigureAwait(false);
            if (state.Version == latest)
            {
                return true;
            }

            CheckNotNewer(state.Version, latest);
            if (state.IsEmpty || state.Version >= PostgresSchema.BaselineVersion)
            {
                continue;
            }

            if (state.Version > 0)
            {
                throw new DbosDatabaseException(
                    $"The system database {url.Masked} (schema \"{Dialect.Schema}\") has schema version {state.Version}, from an older release of another DBOS implementation that predates the shared schema; migrate it with a current DBOS release first (for example `dbos migrate`). Nothing was changed.");
            }

            throw new DbosDatabaseException(
                $"The system database {url.Masked} (schema \"{Dialect.Schema}\") has DBOS tables but no schema version, and nothing changed for {MigrationWaitBound.TotalSeconds} s: another process's migration may have stopped part-way. Migrate it with a current DBOS release (for example `dbos migrate`). Nothing was changed.");
        }
    }

    /// <summary>
    /// Migrates under the lock this library's processes share: returns false, changing nothing more, when another
    /// process (of any implementation) is found migrating, so the caller waits for it instead.
    /// </summary>
    private async Task<bool> MigrateUnderLockAsync(NpgsqlConnection connection, Action<int> noteWaiting, CancellationToken cancellationToken)
    {
        // Poll for the lock rather than block on it: a session blocked inside pg_advisory_lock holds a snapshot, which a
        // CREATE INDEX CONCURRENTLY run by the lock's holder would wait for, deadlocking the two.
        var lockCommand = new NpgsqlCommand($"SELECT pg_try_advisory_lock({MigrationLockKey})", connection);
        await using (lockCommand.ConfigureAwait(false))
        {
            for (var first = true; !(bool)(await lockCommand.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!; first = false)
            {
                if (first)
                {
                    noteWaiting(await TryReadVersionAsync(connection, cancellationToken).ConfigureAwait(false) ?? 0);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(50), Time, cancellationToken).ConfigureAwait(false);
            }
        }

        try
        {
            var state = await ReadStateAsync(connection, cancellationToken).ConfigureAwait(false);
            if (state.Version == PostgresSchema.LatestVersion)
            {
                return true;
            }

            CheckNotNewer(state.Version, PostgresSchema.LatestVersion);
            if (state.IsEmpty)
            {
                return await InstallAsync(connection, cancellationToken).ConfigureAwait(false);
            }

            return state.Version >= PostgresSchema.BaselineVersion
                && await UpgradeAsync(connection, state.Version, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await ExecuteAsync(connection, $"SELECT pg_advisory_unlock({MigrationLockKey})", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Takes an empty schema to the latest version in one transaction, so another implementation's migration runner
    /// reads either no schema or a current one. Returns false if another process created objects meanwhile.
    /// </summary>
    private async Task<bool> InstallAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var transactionScope = transaction.ConfigureAwait(false);
            foreach (var statement in PostgresSchema.FreshInstall(Dialect.Schema))
            {
                await ExecuteAsync(connection, statement, cancellationToken).ConfigureAwait(false);
            }

            await ExecuteAsync(connection, $"INSERT INTO {Dialect.QuotedSchema}.\"dbos_migrations\" (\"version\") VALUES ({PostgresSchema.LatestVersion})", cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (PostgresException ex) when (ex.SqlState is not (PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.AdminShutdown))
        {
            // The same objects created at the same moment by another process: its migration is under way. A clash on the
            // schema itself (CREATE SCHEMA IF NOT EXISTS is not safe against a concurrent one) can come before any table
            // of the other migration is visible; the caller then finds the schema still empty and installs again.
            if (IsConcurrentCreate(ex) || !(await ReadStateAsync(connection, cancellationToken).ConfigureAwait(false)).IsEmpty)
            {
                return false;
            }

            throw;
        }
    }

    /// <summary>
    /// Whether the install failed on a catalog row another session was inserting at the same moment (the schema's own, or
    /// a table's type): a race that passes once that session commits. A duplicate table or function, by contrast, may be
    /// a leftover that would fail every attempt, so it counts as another migration only once a system table is there.
    /// </summary>
    private static bool IsConcurrentCreate(PostgresException ex) => ex.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateSchema;

    /// <summary>
    /// Applies the shared migrations after <paramref name="current"/>, each recording its version only if the version is
    /// still the one it started from. Returns false as soon as another process is seen moving the version.
    /// </summary>
    private async Task<bool> UpgradeAsync(NpgsqlConnection connection, int current, CancellationToken cancellationToken)
    {
        foreach (var (version, migration) in PostgresSchema.Migrations(Dialect.Schema))
        {
            if (version <= current)
            {
                continue;
            }

            if (await TryReadVersionAsync(connection, cancellationToken).ConfigureAwait(false) != current)
            {
                return false;
            }

            // Recorded after the DDL, the order other implementations take their locks in, so neither waits on the other's.
            var setVersion = $"UPDATE {Dialect.QuotedSchema}.\"dbos_migrations\" SET \"version\" = {version} WHERE \"version\" = {current}";
            try
            {
                if (migration.Online)
                {
                    foreach (var statement in migration.Statements)
                    {
                        await ExecuteAsync(connection, statement, cancellationToken).ConfigureAwait(false);
                    }

                    if (await ExecuteAsync(connection, setVersion, cancellationToken).ConfigureAwait(false) == 0)
                    {
                        return false;
                    }
                }
                else
                {
                    var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    await using var transactionScope = transaction.ConfigureAwait(false);
                    foreach (var statement in migration.Statements)
                    {
                        await ExecuteAsync(connection, statement, cancellationToken).ConfigureAwait(false);
                    }

                    if (await ExecuteAsync(connection, setVersion, cancellationToken).ConfigureAwait(false) == 0)
                    {
                        // Another process applied it meanwhile; the rollback keeps it applied once.
                        await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                        return false;
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (PostgresException ex) when (ex.SqlState is not (PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.AdminShutdown))
            {
                // A clash with the same DDL run by another process (a deadlock, a concurrent update of the same function).
                if (await TryReadVersionAsync(connection, cancellationToken).ConfigureAwait(false) != current)
                {
                    return false;
                }

                throw;
            }

            current = version;
        }

        return true;
    }

    /// <summary>
    /// Waits while another process migrates: until the schema is current or empty, or nothing has changed (no version
    /// move, no object created or dropped, no index being built) for <see cref="MigrationWaitBound"/>.
    /// </summary>
    private async Task<MigrationState> WaitForOtherMigrationAsync(NpgsqlConnection connection, MigrationState state, CancellationToken cancellationToken)
    {
        var lastChange = Time.GetTimestamp();
        while (true)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), Time, cancellationToken).ConfigureAwait(false);
            var now = await ReadStateAsync(connection, cancellationToken).ConfigureAwait(false);
            if (now.Version >= PostgresSchema.LatestVersion || now.IsEmpty)
            {
                return now;
            }

            if (now.Version != state.Version || now.Objects != state.Objects || now.IndexBuilds > 0)
            {
                lastChange = Time.GetTimestamp();
            }
            else if (Time.GetElapsedTime(lastChange) >= MigrationWaitBound)
            {
                return now;
            }

            state = now;
        }
    }

    private void CheckNotNewer(int current, int latest)
    {
        if (current > latest)
        {
            throw new DbosDatabaseException(
                $"The system database {url.Masked} (schema \"{Dialect.Schema}\") has schema version {current}, newer than the {latest} this version of DBOS for .NET knows; upgrade the Dbos package. Nothing was changed.");
        }
    }

    /// <summary>The recorded version, or null when there is no version table (yet).</summary>
    private async Task<int?> TryReadVersionAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var read = new NpgsqlCommand($"SELECT max(\"version\") FROM {Dialect.QuotedSchema}.\"dbos_migrations\"", connection);
        await using var readScope = read.ConfigureAwait(false);
        try
        {
            var value = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return value is null or DBNull ? 0 : Convert.ToInt32(value, CultureInfo.InvariantCulture);
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return null;
        }
    }

    /// <summary>What a migration in progress changes: the version, the objects in the schema, index builds on its tables.</summary>
    private async Task<MigrationState> ReadStateAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand(
            """
            SELECT
                to_regclass(quote_ident($1) || '.dbos_migrations') IS NOT NULL OR to_regclass(quote_ident($1) || '.workflow_status') IS NOT NULL,
                (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)
                + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1),
                (SELECT count(*) FROM pg_stat_progress_create_index b JOIN pg_class c ON c.oid = b.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)
            """,
            connection);
        await using var commandScope = command.ConfigureAwait(false);
        command.Parameters.Add(new NpgsqlParameter { Value = Dialect.Schema });
        bool started;
        long objects, builds;
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            started = reader.GetBoolean(0);
            objects = reader.GetInt64(1);
            builds = reader.GetInt64(2);
        }

        var version = started ? await TryReadVersionAsync(connection, cancellationToken).ConfigureAwait(false) ?? 0 : 0;
        return new MigrationState(started, version, objects, builds);
    }

    /// <param name="Started">
    /// Whether a system table is there: every implementation creates the version table or the status table first. Other
    /// objects may share the schema (a datasource's checkpoint table) without any migration having begun.
    /// </param>
    /// <param name="Version">The recorded version, 0 when none is.</param>
    /// <param name="Objects">Relations and functions in the schema, which an early migration changes before any version.</param>
    /// <param name="IndexBuilds">Indexes being built on the schema's tables.</param>
    private readonly record struct MigrationState(bool Started, int Version, long Objects, long IndexBuilds)
    {
        public bool IsEmpty => !Started;
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand(sql, connection);
        await using var commandScope = command.ConfigureAwait(false);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static bool IsConnectFailure(Exception ex) =>
        ex is NpgsqlException or SocketException or TimeoutException or System.Security.Authentication.AuthenticationException;

    private DbosDatabaseException ConnectError(PostgresUrl target, Exception ex)
    {
        var reason = ex is PostgresException pg ? pg.MessageText : ex.Message;
        if (ex.InnerException is { } inner && ex is not PostgresException)
        {
            reason += ": " + inner.Message;
        }

        return new DbosDatabaseException($"Cannot connect to the system database at {target.Masked}: {Scrub(reason)}", ex);
    }

    /// <summary>Removes the password from text that may echo connection settings.</summary>
    private string Scrub(string text) =>
        url.Password is { Length: >= 3 } password ? text.Replace(password, DatabaseUrl.PasswordMask, StringComparison.Ordinal) : text;

    public override async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        if (ownsDataSource)
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Runs statements on one Postgres connection with positional parameters.</summary>
internal sealed class PostgresSession(PostgresCommandPool commands, NpgsqlConnection connection, NpgsqlTransaction? transaction) : ISqlSession
{
    public async ValueTask<int> ExecuteAsync(string sql, object?[] args, CancellationToken cancellationToken)
    {
        var command = commands.Rent(sql, args, connection, transaction);
        try
        {
            var changed = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            commands.Return(sql, command);
            return changed;
        }
        catch (PostgresException ex) when (TooLong(ex) is { } tooLong)
        {
            throw tooLong;
        }
    }

    public async ValueTask<List<T>> QueryAsync<T>(string sql, object?[] args, Func<DbDataReader, T> map, CancellationToken cancellationToken)
    {
        var command = commands.Rent(sql, args, connection, transaction);
        try
        {
            var rows = new List<T>();
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    rows.Add(map(reader));
                }
            }

            commands.Return(sql, command);
            return rows;
        }
        catch (PostgresException ex) when (TooLong(ex) is { } tooLong)
        {
            throw tooLong;
        }
    }

    /// <summary>
    /// Postgres's limits on the size of an index entry (about 2,700 bytes, after compression) and of a notification
    /// payload (8,000 bytes), which very long workflow IDs, names, topics and keys exceed, as a clear error. The statement
    /// changed nothing.
    /// </summary>
    internal static ArgumentException? TooLong(PostgresException ex) =>
        ex.SqlState == PostgresErrorCodes.ProgramLimitExceeded
        || (ex.SqlState == PostgresErrorCodes.InvalidParameterValue && ex.MessageText.Contains("payload string too long", StringComparison.Ordinal))
            ? new ArgumentException(
                "A workflow ID, name, topic or key is too long for the Postgres system database, which stores them in indexes of at most " +
                $"about 2,700 bytes per entry and sends a workflow ID with a topic or key in notifications of at most 8,000 bytes ({ex.MessageText}). Nothing was written.",
                ex)
            : null;
}

/// <summary>
/// Commands kept for reuse, per SQL text: a checkpoint then allocates no command and no parameters, which were most of
/// the managed memory a step cost. A command that failed is not returned (its state is unknown); it is simply dropped.
/// </summary>
internal sealed class PostgresCommandPool
{
    private const int KeptPerStatement = 64;
    private readonly Dictionary<string, Stack<NpgsqlCommand>> free = new(StringComparer.Ordinal);
    private readonly Lock gate = new();

    public NpgsqlCommand Rent(string sql, object?[] args, NpgsqlConnection connection, NpgsqlTransaction? transaction)
    {
        SqlArguments.CheckStorable(args);
        NpgsqlCommand? command = null;
        lock (gate)
        {
            if (free.TryGetValue(sql, out var stack) && stack.Count > 0)
            {
                command = stack.Pop();
            }
        }

        if (command is null || command.Parameters.Count != args.Length)
        {
            command = new NpgsqlCommand(sql);
            for (var i = 0; i < args.Length; i++)
            {
                command.Parameters.Add(new NpgsqlParameter());
            }
        }

        command.Connection = connection;
        command.Transaction = transaction;
        for (var i = 0; i < args.Length; i++)
        {
            command.Parameters[i].Value = args[i] ?? DBNull.Value;
        }

        return command;
    }

    public void Return(string sql, NpgsqlCommand command)
    {
        // Drop references to the connection and the values, which may be large.
        command.Connection = null;
        command.Transaction = null;
        var parameters = command.Parameters;
        for (var i = 0; i < parameters.Count; i++)
        {
            parameters[i].Value = DBNull.Value;
        }

        lock (gate)
        {
            if (!free.TryGetValue(sql, out var stack))
            {
                stack = new Stack<NpgsqlCommand>();
                free[sql] = stack;
            }

            if (stack.Count < KeptPerStatement)
            {
                stack.Push(command);
            }
        }
    }
}
