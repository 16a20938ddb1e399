using System.Data.Common;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Dbos.Internal;
using Microsoft.Data.Sqlite;

namespace Dbos.SystemDatabase;

/// <summary>
/// The SQLite system database. One connection writes; concurrent writes are combined into one transaction
/// (one commit for many checkpoints), and the caller that finds the writer idle runs its write at once on its own
/// thread, so a sequential workflow pays for one commit per checkpoint and nothing more. Waiting writers do not
/// block a thread. Reads use pooled connections of their own (WAL lets them run beside the writer).
/// </summary>
internal sealed class SqliteExecutor : SqlExecutor
{
    private const int BusyTimeoutMs = 30_000;

    private readonly SqliteUrl url;
    private readonly string connectionString;
    private readonly string openExistingString;
    private volatile bool mayCreate;
    private readonly SqliteSynchronous synchronous;
    private readonly object gate = new();
    private List<WriteRequest> pending = [];
    private bool writing;
    private bool disposed;
    private SqliteConnection? writer;
    private SqliteSession? writerSession;
    private bool fileMovedReported;

    /// <param name="url">The database file.</param>
    /// <param name="synchronous">How commits are flushed.</param>
    /// <param name="mayCreate">Whether a missing file is created at first use; otherwise only <see cref="MigrateAsync"/> creates it (a client never leaves an empty file behind).</param>
    public SqliteExecutor(SqliteUrl url, SqliteSynchronous synchronous, bool mayCreate = true)
        : base(SqliteDialect.Instance)
    {
        this.url = url;
        this.synchronous = synchronous;
        this.mayCreate = mayCreate;
        connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = url.FilePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = BusyTimeoutMs / 1000,
        }.ToString();
        openExistingString = new SqliteConnectionStringBuilder(connectionString) { Mode = SqliteOpenMode.ReadWrite }.ToString();
    }

    public override string Description => url.Masked;

    public string FilePath => url.FilePath;

    /// <summary>Whether the database file is no longer at its path (deleted, or its folder removed).</summary>
    public bool FileIsGone => !File.Exists(url.FilePath);

    public override Task MigrateAsync(CancellationToken cancellationToken)
    {
        mayCreate = true;
        var directory = Path.GetDirectoryName(url.FilePath);
        if (!string.IsNullOrEmpty(directory))
        {
            try
            {
                Directory.CreateDirectory(directory);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new DbosDatabaseException($"Cannot create the folder of the SQLite system database {url.Masked} ({url.FilePath}): {ex.Message}", ex);
            }
        }

        EnsureWriter();
        return WriteAsync((session, ct) => new ValueTask<int>(ApplyMigrations((SqliteSession)session)), cancellationToken);
    }

    public override async Task VerifySchemaAsync(CancellationToken cancellationToken)
    {
        const string Remedy = "Migrate it out of band (for example `dbos migrate`) or launch once with RunMigrations = true. Nothing was created or changed.";
        if (!File.Exists(url.FilePath))
        {
            throw new DbosDatabaseException($"The SQLite system database {url.Masked} does not exist, and RunMigrations is false. {Remedy}");
        }

        // A write transaction waits for another process's migration (one transaction on SQLite) and sees its result.
        EnsureWriter();
        var found = await WriteAsync((session, ct) => new ValueTask<int?>(ReadVersion((SqliteSession)session)), cancellationToken).ConfigureAwait(false);
        var current = found ?? 0;
        var latest = SqliteSchema.Migrations.Count;
        if (current > latest)
        {
            throw Translate(new SchemaTooNewException(current, latest));
        }

        if (current < latest)
        {
            throw new DbosDatabaseException(found is null
                ? $"The SQLite system database {url.Masked} has no DBOS tables, and RunMigrations is false. {Remedy}"
                : $"The SQLite system database {url.Masked} has schema version {current}, older than the {latest} this release needs, and RunMigrations is false. {Remedy}");
        }
    }

    /// <summary>The recorded schema version, or null when there is no version table.</summary>
    private static int? ReadVersion(SqliteSession session)
    {
        var hasTable = session.Scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'dbos_migrations'") is long n && n > 0;
        return hasTable ? Convert.ToInt32(session.Scalar("SELECT coalesce(max(version), 0) FROM dbos_migrations") ?? 0L, CultureInfo.InvariantCulture) : null;
    }

    private static int ApplyMigrations(SqliteSession session)
    {
        var current = ReadVersion(session) ?? 0;
        var latest = SqliteSchema.Migrations.Count;
        if (current > latest)
        {
            throw new SchemaTooNewException(current, latest);
        }

        for (var version = current + 1; version <= latest; version++)
        {
            foreach (var statement in SqliteSchema.Migrations[version - 1])
            {
                session.Execute(statement, []);
            }

            session.Execute("DELETE FROM dbos_migrations", []);
            session.Execute("INSERT INTO dbos_migrations (version) VALUES ($1)", [(long)version]);
        }

        return current;
    }

    // SQLite write transactions are serializable already (one writer at a time), whatever level is asked for.
    public override Task<T> WriteAsync<T>(Func<ISqlSession, CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken, System.Data.IsolationLevel isolation = System.Data.IsolationLevel.ReadCommitted)
    {
        var request = new WriteRequest<T>(work, cancellationToken);
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            pending.Add(request);
            if (writing)
            {
                return request.Task;
            }

            writing = true;
        }

        // The writer was idle: run this write (and any that arrived meanwhile) here, then hand the rest to the pool.
        DrainOnce();
        ReleaseWriter();
        return request.Task;
    }

    /// <summary>
    /// One statement: when the writer is idle it runs at once in autocommit (its own transaction, as durable as any
    /// commit, without BEGIN and COMMIT around it); when busy it joins the next combined commit.
    /// </summary>
    public override Task<int> ExecuteAsync(string sql, object?[] args, CancellationToken cancellationToken) =>
        RunAlone((sql, args), static (session, statement) => session.Execute(statement.sql, statement.args), cancellationToken)
        ?? base.ExecuteAsync(sql, args, cancellationToken);

    /// <inheritdoc cref="ExecuteAsync(string, object?[], CancellationToken)"/>
    public override Task<List<T>> ExecuteQueryAsync<T>(string sql, object?[] args, Func<DbDataReader, T> map, CancellationToken cancellationToken) =>
        RunAlone((sql, args, map), static (session, query) => SqliteSession.Completed(session.QueryAsync(query.sql, query.args, query.map, CancellationToken.None)), cancellationToken)
        ?? base.ExecuteQueryAsync(sql, args, map, cancellationToken);

    /// <summary>Runs one statement on the writer in autocommit if the writer is idle; null when it is busy.</summary>
    private Task<T>? RunAlone<TStatement, T>(TStatement statement, Func<SqliteSession, TStatement, T> run, CancellationToken cancellationToken)
    {
        if (!TryTakeIdleWriter())
        {
            return null;
        }

        Task<T> result;
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var session = EnsureWriter();
            CheckFileIsOurs();
            result = Task.FromResult(run(session, statement));
        }
        catch (Exception ex)
        {
            result = Task.FromException<T>(Translate(ex));
        }

        ReleaseWriter();
        return result;
    }

    private bool TryTakeIdleWriter()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (writing)
            {
                return false;
            }

            writing = true;
            return true;
        }
    }

    /// <summary>Marks the writer idle, or hands the writes that arrived meanwhile to the pool.</summary>
    private void ReleaseWriter()
    {
        if (!FinishDrain())
        {
            ThreadPool.UnsafeQueueUserWorkItem(static self => self.DrainLoop(), this, preferLocal: false);
        }
    }

    public override Task<T> ReadAsync<T>(Func<ISqlSession, CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var connection = OpenConnection(writerConnection: false);
            using var session = new SqliteSession(connection);
            var result = work(session, cancellationToken);
            return Task.FromResult(SqliteSession.Completed(result));
        }
        catch (Exception ex)
        {
            return Task.FromException<T>(Translate(ex));
        }
    }

    private void DrainLoop()
    {
        do
        {
            DrainOnce();
        }
        while (!FinishDrain());
    }

    /// <summary>Returns true when no writes are left (and marks the writer idle), false when more arrived.</summary>
    private bool FinishDrain()
    {
        lock (gate)
        {
            if (pending.Count == 0)
            {
                writing = false;
                return true;
            }

            return false;
        }
    }

    private void DrainOnce()
    {
        List<WriteRequest> batch;
        lock (gate)
        {
            batch = pending;
            pending = [];
        }

        batch.RemoveAll(static r => r.CancelIfRequested());
        if (batch.Count == 0)
        {
            return;
        }

        try
        {
            var session = EnsureWriter();
            session.Execute("BEGIN IMMEDIATE", []);
            CheckFileIsOurs();
            var single = batch.Count == 1;
            foreach (var request in batch)
            {
                if (!single)
                {
                    session.Execute("SAVEPOINT w", []);
                }

                try
                {
                    request.Run(session);
                    if (!single)
                    {
                        session.Execute("RELEASE w", []);
                    }
                }
                catch (Exception ex) when (!single)
                {
                    request.Failed(Translate(ex));
                    session.Execute("ROLLBACK TO w", []);
                    session.Execute("RELEASE w", []);
                }
            }

            session.Execute("COMMIT", []);
            foreach (var request in batch)
            {
                request.Publish();
            }
        }
        catch (Exception ex)
        {
            RollBackQuietly();
            var error = Translate(ex);
            foreach (var request in batch)
            {
                request.Fail(error);
            }
        }
    }

    private void RollBackQuietly()
    {
        try
        {
            if (writer is not null && !writer.AutoCommit())
            {
                writerSession!.Execute("ROLLBACK", []);
            }
        }
        catch (SqliteException)
        {
            // The connection is unusable; the next write reopens it.
            writerSession?.Dispose();
            writer?.Dispose();
            writer = null;
            writerSession = null;
        }
    }

    /// <summary>
    /// Refuses to write when the database file was deleted or replaced under the running application: the writer's
    /// connection would go on writing into a file nobody can open again, losing everything it acknowledges. One stat of
    /// the path per transaction (SQLite's own check, which compares the path's file with the one it has open).
    /// </summary>
    private void CheckFileIsOurs()
    {
        if (SqliteNative.HasMoved(writer!) != true)
        {
            return;
        }

        if (!fileMovedReported)
        {
            fileMovedReported = true;
            Log.SqliteFileMoved(Logger, url.FilePath);
        }

        throw new DbosDatabaseException(
            $"The SQLite system database file {url.FilePath} was deleted or replaced while the application was running; " +
            "writes are refused so that none is silently lost. Restore the file, or restart the application to start a new one.");
    }

    private SqliteSession EnsureWriter()
    {
        lock (gate)
        {
            if (writerSession is not null)
            {
                return writerSession;
            }

            writer = OpenConnection(writerConnection: true);
            writerSession = new SqliteSession(writer);
            return writerSession;
        }
    }

    private SqliteConnection OpenConnection(bool writerConnection)
    {
        // Only the writer creates the file (at migration): a reader finding it gone reports it rather than make an empty one.
        var connection = new SqliteConnection(writerConnection && mayCreate ? connectionString : openExistingString);
        try
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = writerConnection
                ? $"PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {(synchronous == SqliteSynchronous.Full ? "FULL" : "NORMAL")};"
                : $"PRAGMA busy_timeout = {BusyTimeoutMs};";
            command.ExecuteNonQuery();
            return connection;
        }
        catch (SqliteException ex)
        {
            connection.Dispose();
            throw new DbosDatabaseException(
                File.Exists(url.FilePath) || (writerConnection && mayCreate)
                    ? $"Cannot open the SQLite system database {url.Masked} ({url.FilePath}): {ex.Message}"
                    : mayCreate
                        ? $"The SQLite system database file {url.FilePath} does not exist: it was deleted while the application was running. Restore it, or restart the application to start a new one."
                        : $"The SQLite system database {url.Masked} does not exist ({url.FilePath}); run the application or `dbos migrate` to create it.",
                ex);
        }
    }

    // SQLITE_CONSTRAINT (19), extended as SQLITE_CONSTRAINT_UNIQUE (2067) or SQLITE_CONSTRAINT_PRIMARYKEY (1555).
    public override bool IsUniqueViolation(Exception ex) => ex is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 };

    // SQLITE_CONSTRAINT (19), extended as SQLITE_CONSTRAINT_FOREIGNKEY (787).
    public override bool IsForeignKeyViolation(Exception ex) => ex is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 787 };

    // SQLite serializes writers: there is no concurrent transaction for one to lose to.
    public override bool IsContention(Exception ex) => false;

    private Exception Translate(Exception ex) => ex switch
    {
        DbosException or OperationCanceledException => ex,
        SchemaTooNewException tooNew => new DbosDatabaseException(
            $"The system database {url.Masked} has schema version {tooNew.Found}, newer than the {tooNew.Known} this version of DBOS for .NET knows; upgrade the Dbos package. Nothing was changed.",
            ex),
        _ => ex,
    };

    public override ValueTask DisposeAsync()
    {
        lock (gate)
        {
            disposed = true;
            writerSession?.Dispose();
            writer?.Dispose();
            writerSession = null;
            writer = null;
        }

        SqliteConnection.ClearPool(new SqliteConnection(connectionString));
        SqliteConnection.ClearPool(new SqliteConnection(openExistingString));
        return ValueTask.CompletedTask;
    }

    private abstract class WriteRequest
    {
        public abstract bool CancelIfRequested();

        public abstract void Run(SqliteSession session);

        public abstract void Failed(Exception error);

        public abstract void Publish();

        public abstract void Fail(Exception error);
    }

    private sealed class WriteRequest<T>(Func<ISqlSession, CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken) : WriteRequest
    {
        private readonly TaskCompletionSource<T> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? result;
        private Exception? error;

        public Task<T> Task => completion.Task;

        public override bool CancelIfRequested() => cancellationToken.IsCancellationRequested && completion.TrySetCanceled(cancellationToken);

        public override void Run(SqliteSession session)
        {
            error = null;
            result = SqliteSession.Completed(work(session, cancellationToken));
        }

        public override void Failed(Exception error) => this.error = error;

        public override void Publish()
        {
            if (error is null)
            {
                completion.TrySetResult(result!);
            }
            else
            {
                completion.TrySetException(error);
            }
        }

        public override void Fail(Exception error) => completion.TrySetException(this.error ?? error);
    }
}

/// <summary>A schema version newer than this library knows.</summary>
internal sealed class SchemaTooNewException(int found, int known) : Exception($"Schema version {found} is newer than {known}.")
{
    public int Found { get; } = found;

    public int Known { get; } = known;
}

/// <summary>Runs statements synchronously on one SQLite connection, reusing prepared commands.</summary>
internal sealed class SqliteSession(SqliteConnection connection) : ISqlSession, IDisposable
{
    private readonly Dictionary<string, SqliteCommand> commands = new(StringComparer.Ordinal);

    public static T Completed<T>(ValueTask<T> task)
    {
        if (!task.IsCompleted)
        {
            throw new InvalidOperationException("SQLite work must complete synchronously.");
        }

        return task.GetAwaiter().GetResult();
    }

    public int Execute(string sql, object?[] args) => Prepare(sql, args).ExecuteNonQuery();

    public object? Scalar(string sql) => Prepare(sql, []).ExecuteScalar();

    public ValueTask<int> ExecuteAsync(string sql, object?[] args, CancellationToken cancellationToken) => new(Execute(sql, args));

    public ValueTask<List<T>> QueryAsync<T>(string sql, object?[] args, Func<DbDataReader, T> map, CancellationToken cancellationToken)
    {
        using var reader = Prepare(sql, args).ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(map(reader));
        }

        return new(rows);
    }

    private SqliteCommand Prepare(string sql, object?[] args)
    {
        SqlArguments.CheckStorable(args);
        if (!commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            commands[sql] = command;
        }

        var parameters = command.Parameters;
        if (parameters.Count != args.Length)
        {
            parameters.Clear();
            for (var i = 0; i < args.Length; i++)
            {
                parameters.Add(new SqliteParameter("$" + (i + 1).ToString(CultureInfo.InvariantCulture), DBNull.Value));
            }
        }

        for (var i = 0; i < args.Length; i++)
        {
            parameters[i].Value = args[i] switch
            {
                null => DBNull.Value,
                string[] list => JsonSerializer.Serialize(list, SqliteJsonContext.Default.StringArray),
                bool b => b ? 1L : 0L,
                var value => value,
            };
        }

        return command;
    }

    public void Dispose()
    {
        foreach (var command in commands.Values)
        {
            command.Dispose();
        }

        commands.Clear();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class SqliteJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>SQLite's own check that a connection's database file is still the one at its path.</summary>
internal static class SqliteNative
{
    private const int HasMovedOpcode = 20; // SQLITE_FCNTL_HAS_MOVED
    private static readonly byte[] Main = "main\0"u8.ToArray();
    private static volatile bool unavailable;

    /// <summary>Whether the file was deleted, renamed or replaced since the connection opened it; null when SQLite cannot tell (an in-memory database, another SQLite build).</summary>
    public static bool? HasMoved(SqliteConnection connection)
    {
        if (unavailable || connection.Handle is not { } handle)
        {
            return null;
        }

        try
        {
            var moved = 0;
            return FileControl(handle.DangerousGetHandle(), Main, HasMovedOpcode, ref moved) == 0 ? moved != 0 : null;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            unavailable = true;
            return null;
        }
    }

    // The native library Microsoft.Data.Sqlite loads (SQLitePCLRaw's bundle), whose wrapper does not expose file controls.
    [DllImport("e_sqlite3", EntryPoint = "sqlite3_file_control")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    private static extern int FileControl(IntPtr db, byte[] name, int op, ref int value);
}

internal static class SqliteConnectionExtensions
{
    /// <summary>Whether the connection is outside a transaction.</summary>
    public static bool AutoCommit(this SqliteConnection connection)
    {
        return SQLitePCL.raw.sqlite3_get_autocommit(connection.Handle) != 0;
    }
}
