using System.Data;
using System.Data.Common;
using Dbos.Execution;
using Dbos.Internal;
using Dbos.Serialization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Dbos;

/// <summary>Options of a <see cref="SqlDatasource"/>.</summary>
public sealed record DatasourceOptions
{
    /// <summary>The maximum number of pooled Postgres connections. Default 20.</summary>
    public int PoolSize { get; init; } = 20;

    /// <summary>The Postgres schema of the checkpoint table <c>transaction_completion</c>. Default <c>dbos</c>.</summary>
    public string CheckpointSchema { get; init; } = "dbos";

    /// <summary>How many times a transaction is tried when it hits a serialization failure, a deadlock or a busy SQLite database. Default 30.</summary>
    public int MaxAttempts { get; init; } = 30;

    /// <summary>The wait before the first retry; each retry waits about twice as long (randomized, so contenders spread out), up to 2 seconds. Default 10 ms.</summary>
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>How SQLite flushes commits (WAL in both cases). Default <see cref="SqliteSynchronous.Normal"/>.</summary>
    public SqliteSynchronous SqliteSynchronous { get; init; } = SqliteSynchronous.Normal;

    /// <summary>The clock retry waits use. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? TimeProvider { get; init; }

    /// <summary>
    /// Whether creating the datasource creates its database when it does not exist yet, as DBOS does for the system
    /// database. Default <see langword="true"/>. On Postgres the database is created through the server's <c>postgres</c>
    /// database, which needs the <c>CREATEDB</c> privilege; on SQLite the file is created. Set it to
    /// <see langword="false"/> where the database is provisioned separately (by an administrator or deployment scripts):
    /// then a missing database, for example a misspelled name, fails <see cref="SqlDatasource.CreateAsync"/> with a
    /// <see cref="DbosDatabaseException"/> instead of starting on an empty new database.
    /// </summary>
    public bool CreateDatabaseIfMissing { get; init; } = true;
}

/// <summary>
/// An application database (Postgres or SQLite, with its own connection pool) in which transactions run exactly once.
/// Inside a workflow a transaction is a durable step: its output is written to a checkpoint table in this database in
/// the same transaction as your writes, so a crash leaves both or neither, and a re-execution returns the recorded
/// output without running the transaction again. Outside a workflow it is a plain transaction. Serialization failures,
/// deadlocks and busy SQLite databases are retried with backoff.
/// </summary>
public sealed class SqlDatasource : IAsyncDisposable, IDisposable
{
    private const string CheckpointTable = "transaction_completion";
    private const string MigrationsTable = "dbos_transaction_completion_migrations";
    private const long MigrationLockKey = 0x44424f535f445331; // "DBOS_DS1"

    private readonly DatabaseUrl url;
    private readonly NpgsqlDataSource? postgres;
    private readonly string? sqliteConnectionString;
    private readonly DatasourceOptions options;
    private readonly TimeProvider time;
    private readonly string table;
    private volatile bool disposed;

    private SqlDatasource(DatabaseUrl url, DatasourceOptions options)
    {
        this.url = url;
        this.options = options;
        time = options.TimeProvider ?? TimeProvider.System;
        switch (url)
        {
            case PostgresUrl pg:
                postgres = new NpgsqlDataSourceBuilder(new NpgsqlConnectionStringBuilder(pg.Builder.ConnectionString)
                {
                    MaxPoolSize = options.PoolSize,
                    NoResetOnClose = true,
                    MaxAutoPrepare = Math.Max(pg.Builder.MaxAutoPrepare, 64),
                    AutoPrepareMinUsages = 2,
                    ApplicationName = string.IsNullOrEmpty(pg.Builder.ApplicationName) ? "dbos-dotnet-datasource" : pg.Builder.ApplicationName,
                }.ConnectionString).Build();
                table = SystemDatabase.PostgresSchema.Quote(options.CheckpointSchema) + "." + CheckpointTable;
                break;
            case SqliteUrl sqlite:
                sqliteConnectionString = new SqliteConnectionStringBuilder
                {
                    DataSource = sqlite.FilePath,
                    Mode = options.CreateDatabaseIfMissing ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite,
                    Pooling = true,
                    ForeignKeys = true,
                    DefaultTimeout = 30,
                }.ToString();
                table = CheckpointTable;
                break;
            default:
                throw new DbosConfigurationException($"{url.Masked} is not a supported datasource URL.");
        }
    }

    /// <summary>The database, with any password masked.</summary>
    public string Database => url.Masked;

    /// <summary>Whether the database is Postgres (otherwise SQLite).</summary>
    public bool IsPostgres => postgres is not null;

    /// <summary>
    /// Creates a datasource and checks it: connects, creating the database if it does not exist (unless
    /// <see cref="DatasourceOptions.CreateDatabaseIfMissing"/> is off), and creates the checkpoint table if it is missing
    /// (in the <c>dbos</c> schema on Postgres, as DBOS datasources in other languages do).
    /// </summary>
    /// <param name="url">The database: <c>sqlite:///…</c>, <c>sqlite:////…</c>, <c>postgresql://…</c> or <c>postgres://…</c>.</param>
    /// <param name="options">Pool, retries and checkpoint schema.</param>
    /// <param name="cancellationToken">Stops the check.</param>
    /// <returns>The datasource, ready for transactions.</returns>
    /// <exception cref="DbosConfigurationException">The URL is malformed.</exception>
    /// <exception cref="DbosDatabaseException">The database cannot be reached, or is missing and cannot (or may not) be created.</exception>
    public static async Task<SqlDatasource> CreateAsync(string url, DatasourceOptions? options = null, CancellationToken cancellationToken = default)
    {
        var datasource = Build(url, options);
        try
        {
            await datasource.MigrateAsync(cancellationToken).ConfigureAwait(false);
            return datasource;
        }
        catch
        {
            await datasource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Creates a datasource and checks it, synchronously (for code that cannot be async).</summary>
    /// <param name="url">The database URL.</param>
    /// <param name="options">Pool, retries and checkpoint schema.</param>
    /// <returns>The datasource, ready for transactions.</returns>
    /// <exception cref="DbosConfigurationException">The URL is malformed.</exception>
    /// <exception cref="DbosDatabaseException">The database cannot be reached, or is missing and cannot (or may not) be created.</exception>
    public static SqlDatasource Create(string url, DatasourceOptions? options = null)
    {
        var datasource = Build(url, options);
        try
        {
            datasource.Migrate();
            return datasource;
        }
        catch
        {
            datasource.Dispose();
            throw;
        }
    }

    private static SqlDatasource Build(string url, DatasourceOptions? options)
    {
        options ??= new DatasourceOptions();
        if (options.MaxAttempts < 1 || options.PoolSize < 1 || options.RetryInterval <= TimeSpan.Zero || string.IsNullOrWhiteSpace(options.CheckpointSchema))
        {
            throw new DbosConfigurationException("DatasourceOptions: MaxAttempts and PoolSize must be at least 1, RetryInterval positive, and CheckpointSchema set.");
        }

        return new SqlDatasource(DatabaseUrl.Parse(url, "The datasource URL"), options);
    }

    // ---- Schema ----

    private string[] CheckpointDdl()
    {
        var nowMs = IsPostgres ? "(EXTRACT(EPOCH FROM now())*1000)::bigint" : "(CAST(unixepoch('subsec') * 1000 AS INTEGER))";
        var migrations = IsPostgres ? SystemDatabase.PostgresSchema.Quote(options.CheckpointSchema) + "." + MigrationsTable : MigrationsTable;
        return
        [
            $"CREATE TABLE IF NOT EXISTS {migrations} (version BIGINT NOT NULL PRIMARY KEY)",
            $"CREATE TABLE IF NOT EXISTS {table} (workflow_id TEXT NOT NULL, function_num INT4 NOT NULL, output TEXT, error TEXT, " +
                $"created_at BIGINT NOT NULL DEFAULT {nowMs}, PRIMARY KEY (workflow_id, function_num))",
            $"INSERT INTO {migrations} (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM {migrations})",
        ];
    }

    private string[] MigrationStatements() =>
        IsPostgres
            ? [$"SELECT pg_advisory_xact_lock({MigrationLockKey})", $"CREATE SCHEMA IF NOT EXISTS {SystemDatabase.PostgresSchema.Quote(options.CheckpointSchema)}", .. CheckpointDdl()]
            : ["PRAGMA journal_mode = WAL", .. CheckpointDdl()];

    /// <summary>Opens the first connection, creating a missing Postgres database first if the options allow it.</summary>
    private async Task<DbConnection> OpenCreatingDatabaseAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbosDatabaseException ex) when (url is PostgresUrl pg && options.CreateDatabaseIfMissing && SystemDatabase.PostgresDatabaseCreator.IsMissingDatabase(ex))
        {
            await SystemDatabase.PostgresDatabaseCreator.CreateAsync(pg, cancellationToken).ConfigureAwait(false);
            return await OpenAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private DbConnection OpenCreatingDatabase()
    {
        try
        {
            return Open();
        }
        catch (DbosDatabaseException ex) when (url is PostgresUrl pg && options.CreateDatabaseIfMissing && SystemDatabase.PostgresDatabaseCreator.IsMissingDatabase(ex))
        {
            SystemDatabase.PostgresDatabaseCreator.Create(pg);
            return Open();
        }
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        var connection = await OpenCreatingDatabaseAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                foreach (var statement in MigrationStatements())
                {
                    if (statement.StartsWith("PRAGMA", StringComparison.Ordinal))
                    {
                        continue; // Set when each connection opens; journal mode cannot change inside a transaction.
                    }

                    var command = new TransactionContext(connection, transaction, null).CreateCommand(statement);
                    await using (command.ConfigureAwait(false))
                    {
                        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Migrate()
    {
        using var connection = OpenCreatingDatabase();
        using var transaction = connection.BeginTransaction();
        var context = new TransactionContext(connection, transaction, null);
        foreach (var statement in MigrationStatements().Where(s => !s.StartsWith("PRAGMA", StringComparison.Ordinal)))
        {
            context.Execute(statement);
        }

        transaction.Commit();
    }

    // ---- Connections ----

    private void ThrowIfDisposed()
    {
        if (disposed)
        {
            throw new ObjectDisposedException(nameof(SqlDatasource), $"The datasource for {url.Masked} has been disposed; create a new one to run transactions.");
        }
    }

    private async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        try
        {
            if (postgres is not null)
            {
                return await postgres.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            }

            return OpenSqlite();
        }
        catch (Exception ex) when (ex is NpgsqlException or SqliteException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw ConnectError(ex);
        }
    }

    private DbConnection Open()
    {
        ThrowIfDisposed();
        try
        {
            return postgres is not null ? postgres.OpenConnection() : OpenSqlite();
        }
        catch (Exception ex) when (ex is NpgsqlException or SqliteException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw ConnectError(ex);
        }
    }

    private SqliteConnection OpenSqlite()
    {
        var connection = new SqliteConnection(sqliteConnectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = $"PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 30000; PRAGMA synchronous = {(options.SqliteSynchronous == SqliteSynchronous.Full ? "FULL" : "NORMAL")};";
        pragma.ExecuteNonQuery();
        return connection;
    }

    private DbosDatabaseException ConnectError(Exception ex)
    {
        var reason = ex is PostgresException pg ? pg.MessageText : ex.Message;
        if (!options.CreateDatabaseIfMissing)
        {
            if (url is SqliteUrl sqlite && ex is SqliteException { SqliteErrorCode: 14 } && !File.Exists(sqlite.FilePath))
            {
                reason = $"the file {sqlite.FilePath} does not exist, and DatasourceOptions.CreateDatabaseIfMissing is off";
            }
            else if (SystemDatabase.PostgresDatabaseCreator.IsMissingDatabase(ex))
            {
                reason += ", and DatasourceOptions.CreateDatabaseIfMissing is off";
            }
        }

        if (url is PostgresUrl { Password: { Length: >= 3 } password })
        {
            reason = reason.Replace(password, DatabaseUrl.PasswordMask, StringComparison.Ordinal);
        }

        return new DbosDatabaseException($"Cannot connect to the datasource at {url.Masked}: {reason}", ex);
    }

    private System.Data.IsolationLevel IsolationOf(TransactionOptions? transactionOptions) =>
        IsPostgres ? transactionOptions?.IsolationLevel ?? System.Data.IsolationLevel.ReadCommitted : System.Data.IsolationLevel.Serializable;

    /// <summary>Serialization failures, deadlocks and busy databases: the transaction can simply run again.</summary>
    private static bool IsRetriable(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected }
                || ex is SqliteException { SqliteErrorCode: 5 or 6 })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Writes the checkpoint; false if a concurrent execution's checkpoint for the same step is already there.</summary>
    private async Task<bool> TryInsertCheckpointAsync(TransactionContext context, Checkpoint checkpoint, string encoded)
    {
        try
        {
            await context.ExecuteAsync($"INSERT INTO {table} (workflow_id, function_num, output) VALUES ($1, $2, $3)", checkpoint.WorkflowId, checkpoint.FunctionId, encoded).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } or SqliteException { SqliteErrorCode: 19 })
        {
            return false;
        }
    }

    // Jittered, so that transactions that conflicted once do not collide again on the same schedule.
    private TimeSpan Backoff(int attempt) =>
        TimeSpan.FromTicks((long)(Math.Min(options.RetryInterval.Ticks << Math.Min(attempt - 1, 20), TimeSpan.FromSeconds(2).Ticks) * (0.5 + Random.Shared.NextDouble())));

    // ---- Transactions ----

    /// <summary>
    /// Runs <paramref name="body"/> in a transaction. Inside a workflow it is a durable step named <paramref name="name"/>:
    /// it runs exactly once, and a re-execution of the workflow returns its recorded result.
    /// </summary>
    /// <typeparam name="T">The result's type; must be serializable when called inside a workflow.</typeparam>
    /// <param name="name">The transaction's name, recorded as the step's name.</param>
    /// <param name="body">The transaction's code; it gets the open connection and transaction. Do not commit yourself.</param>
    /// <param name="options">Isolation level.</param>
    /// <param name="cancellationToken">Stops the transaction (rolling it back).</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="StepFailedException">Inside a workflow: the body threw; the transaction was rolled back and the error recorded.</exception>
    /// <exception cref="InvalidOperationException">Called inside a step or inside another transaction.</exception>
    public Task<T> RunTransactionAsync<T>(string name, Func<TransactionContext, CancellationToken, Task<T>> body, TransactionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(body);
        ThrowIfDisposed();
        if (WorkflowExecution.Current is { } workflow)
        {
            return workflow.RunRecordedAsync(
                name,
                (functionId, codec, mayBeCheckpointed, ct) => RunCoreAsync(name, body, options, new Checkpoint(workflow.WorkflowId, functionId, codec, mayBeCheckpointed), ct),
                cancellationToken);
        }

        ThrowIfInsideStep(name);
        return RunPlainAsync(name, body, options, cancellationToken);
    }

    /// <summary>Runs <paramref name="body"/>, which returns nothing, in a transaction (a durable step inside a workflow).</summary>
    /// <param name="name">The transaction's name.</param>
    /// <param name="body">The transaction's code.</param>
    /// <param name="options">Isolation level.</param>
    /// <param name="cancellationToken">Stops the transaction.</param>
    /// <returns>A task that completes when the transaction has committed (or was found already recorded).</returns>
    public Task RunTransactionAsync(string name, Func<TransactionContext, CancellationToken, Task> body, TransactionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunTransactionAsync<object?>(
            name,
            async (context, ct) =>
            {
                await body(context, ct).ConfigureAwait(false);
                return null;
            },
            options,
            cancellationToken);
    }

    /// <summary>
    /// Runs synchronous <paramref name="body"/> code in a transaction: a durable step inside a workflow (the call itself is
    /// async there), a plain transaction elsewhere.
    /// </summary>
    /// <typeparam name="T">The result's type.</typeparam>
    /// <param name="name">The transaction's name.</param>
    /// <param name="body">The transaction's synchronous code.</param>
    /// <param name="options">Isolation level.</param>
    /// <param name="cancellationToken">Stops the transaction.</param>
    /// <returns>The body's result.</returns>
    public Task<T> RunTransactionAsync<T>(string name, Func<TransactionContext, T> body, TransactionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunTransactionAsync(name, (context, _) => Task.FromResult(body(context)), options, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="body"/> in a plain transaction, synchronously, for code that cannot be async (with the same
    /// retries). Inside a workflow use <see cref="RunTransactionAsync{T}(string, Func{TransactionContext, T}, TransactionOptions?, CancellationToken)"/>:
    /// a durable transaction records its checkpoint asynchronously.
    /// </summary>
    /// <typeparam name="T">The result's type.</typeparam>
    /// <param name="name">The transaction's name (for errors).</param>
    /// <param name="body">The transaction's code.</param>
    /// <param name="options">Isolation level.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="InvalidOperationException">Called inside a workflow, a step or another transaction.</exception>
    public T RunTransaction<T>(string name, Func<TransactionContext, T> body, TransactionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(body);
        ThrowIfDisposed();
        if (WorkflowExecution.Current is not null)
        {
            throw new InvalidOperationException(
                $"Transaction '{name}' was called synchronously inside workflow '{WorkflowExecution.CurrentWorkflowId}': inside a workflow use RunTransactionAsync, which records its checkpoint (the body may still be synchronous).");
        }

        ThrowIfInsideStep(name);
        for (var attempt = 1; ; attempt++)
        {
            using var connection = Open();
            using var transaction = connection.BeginTransaction(IsolationOf(options));
            try
            {
                var value = body(new TransactionContext(connection, transaction, null));
                transaction.Commit();
                return value;
            }
            catch (Exception ex) when (IsRetriable(ex) && attempt < this.options.MaxAttempts)
            {
                RollBackQuietly(transaction);
            }

            // The synchronous API blocks by design (it is for callers that cannot await): on the clock's timer, not on a task.
            using var elapsed = new ManualResetEventSlim();
            using (time.CreateTimer(static state => ((ManualResetEventSlim)state!).Set(), elapsed, Backoff(attempt), Timeout.InfiniteTimeSpan))
            {
                elapsed.Wait();
            }
        }
    }

    /// <summary>Runs <paramref name="body"/>, which returns nothing, in a plain transaction, synchronously.</summary>
    /// <param name="name">The transaction's name (for errors).</param>
    /// <param name="body">The transaction's code.</param>
    /// <param name="options">Isolation level.</param>
    public void RunTransaction(string name, Action<TransactionContext> body, TransactionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        RunTransaction<object?>(
            name,
            context =>
            {
                body(context);
                return null;
            },
            options);
    }

    private static void ThrowIfInsideStep(string name)
    {
        if (WorkflowExecution.CurrentWorkflowId is { } workflowId)
        {
            throw new InvalidOperationException(
                $"Transaction '{name}' was called inside a step or another transaction of workflow '{workflowId}'; call it from the workflow itself, where it is a step of its own.");
        }
    }

    private static void RollBackQuietly(DbTransaction transaction)
    {
        try
        {
            transaction.Rollback();
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException)
        {
            // The connection is broken; the transaction is gone with it.
        }
    }

    private async Task<T> RunPlainAsync<T>(string name, Func<TransactionContext, CancellationToken, Task<T>> body, TransactionOptions? options, CancellationToken cancellationToken) =>
        (await RunCoreAsync(name, body, options, null, cancellationToken).ConfigureAwait(false)).Value;

    /// <summary>
    /// Where a durable transaction's output is checkpointed. <c>MayExist</c> is false on a workflow's first execution,
    /// whose steps cannot have been checkpointed yet, which saves a read.
    /// </summary>
    private sealed record Checkpoint(string WorkflowId, int FunctionId, ValueCodec Codec, bool MayExist);

    /// <summary>
    /// Runs the transaction, retrying retriable failures. With a checkpoint: if the application database already has the
    /// checkpoint (the commit happened but the workflow's record of it was lost), the recorded output is returned and the
    /// body does not run; otherwise the body's output is checkpointed in the same transaction. If a concurrent execution
    /// checkpointed first, this one rolls back and returns that execution's output.
    /// </summary>
    private async Task<(T Value, string? Encoded)> RunCoreAsync<T>(
        string name, Func<TransactionContext, CancellationToken, Task<T>> body, TransactionOptions? transactionOptions, Checkpoint? checkpoint, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var transaction = await connection.BeginTransactionAsync(IsolationOf(transactionOptions), cancellationToken).ConfigureAwait(false);
                await using (transaction.ConfigureAwait(false))
                {
                    var context = new TransactionContext(connection, transaction, checkpoint?.WorkflowId);
                    try
                    {
                        if (checkpoint is { MayExist: true } && await ReadCheckpointAsync<T>(context, checkpoint, cancellationToken).ConfigureAwait(false) is { } recorded)
                        {
                            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                            return recorded;
                        }

                        var value = await body(context, cancellationToken).ConfigureAwait(false);
                        string? encoded = null;
                        if (checkpoint is not null)
                        {
                            encoded = checkpoint.Codec.Encode(value, typeof(T), $"result of transaction '{name}' in workflow '{checkpoint.WorkflowId}'");
                            if (!await TryInsertCheckpointAsync(context, checkpoint, encoded).ConfigureAwait(false))
                            {
                                // Another execution of this workflow committed the same step first: adopt its outcome.
                                await RollBackQuietlyAsync(transaction).ConfigureAwait(false);
                                return await ReadCommittedCheckpointAsync<T>(checkpoint, cancellationToken).ConfigureAwait(false)
                                    ?? throw new InvalidOperationException($"Transaction '{name}' of workflow '{checkpoint.WorkflowId}' conflicted with a checkpoint that is not there.");
                            }
                        }

                        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                        return (value, encoded);
                    }
                    catch (Exception ex) when (IsRetriable(ex) && attempt < options.MaxAttempts)
                    {
                        await RollBackQuietlyAsync(transaction).ConfigureAwait(false);
                    }
                }
            }

            await Task.Delay(Backoff(attempt), time, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task RollBackQuietlyAsync(DbTransaction transaction)
    {
        try
        {
            await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException)
        {
            // The connection is broken; the transaction is gone with it.
        }
    }

    private async Task<(T Value, string? Encoded)?> ReadCheckpointAsync<T>(TransactionContext context, Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        var command = context.CreateCommand($"SELECT output FROM {table} WHERE workflow_id = $1 AND function_num = $2", checkpoint.WorkflowId, checkpoint.FunctionId);
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                var output = reader.IsDBNull(0) ? null : reader.GetString(0);
                return ((T)checkpoint.Codec.Decode(output, null, typeof(T), $"recorded result of a transaction in workflow '{checkpoint.WorkflowId}'")!, output);
            }
        }
    }

    private async Task<(T Value, string? Encoded)?> ReadCommittedCheckpointAsync<T>(Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                return await ReadCheckpointAsync<T>(new TransactionContext(connection, transaction, checkpoint.WorkflowId), checkpoint, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Closes the datasource's connections; later transactions fail with <see cref="ObjectDisposedException"/>.</summary>
    /// <returns>A task that completes when the pool is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        disposed = true;
        if (postgres is not null)
        {
            await postgres.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            SqliteConnection.ClearPool(new SqliteConnection(sqliteConnectionString));
        }
    }

    /// <summary>Closes the datasource's connections, synchronously.</summary>
    public void Dispose()
    {
        disposed = true;
        postgres?.Dispose();
        if (sqliteConnectionString is not null)
        {
            SqliteConnection.ClearPool(new SqliteConnection(sqliteConnectionString));
        }
    }
}
