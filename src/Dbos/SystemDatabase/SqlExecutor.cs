using System.Data.Common;
using Dbos.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Dbos.SystemDatabase;

/// <summary>Statements run one after the other on one connection, inside a transaction when the session writes.</summary>
internal interface ISqlSession
{
    /// <summary>Runs a statement and returns the number of rows it changed.</summary>
    ValueTask<int> ExecuteAsync(string sql, object?[] args, CancellationToken cancellationToken);

    /// <summary>Runs a statement (a query, or a write with RETURNING) and maps each row.</summary>
    ValueTask<List<T>> QueryAsync<T>(string sql, object?[] args, Func<DbDataReader, T> map, CancellationToken cancellationToken);
}

/// <summary>
/// Runs SQL against one system database. Statements are written once, in the shared dialect
/// (<see cref="SqlDialect"/>): positional parameters <c>$1…$n</c>, with the few differences supplied by the dialect.
/// </summary>
internal abstract class SqlExecutor : IAsyncDisposable
{
    protected SqlExecutor(SqlDialect dialect) => Dialect = dialect;

    /// <summary>The executor for a system database URL (named by <paramref name="setting"/> in errors), or for a user's data source.</summary>
    public static SqlExecutor Create(string? url, string? setting, string schema, int poolSize, NpgsqlDataSource? dataSource, SqliteSynchronous synchronous, bool mayCreate = true)
    {
        if (dataSource is not null)
        {
            return new PostgresExecutor(PostgresUrl.FromConnectionString(dataSource.ConnectionString), schema, poolSize, dataSource);
        }

        return DatabaseUrl.Parse(url, setting ?? "The system database URL") switch
        {
            SqliteUrl sqlite => new SqliteExecutor(sqlite, synchronous, mayCreate),
            PostgresUrl postgres => new PostgresExecutor(postgres, schema, poolSize, null),
            _ => throw new DbosConfigurationException($"{setting} is not a supported database URL."),
        };
    }

    public SqlDialect Dialect { get; }

    /// <summary>Where faults of the database (retries, outages, a lost file) are logged.</summary>
    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <summary>
    /// The clock of waits on the database and on other processes: reconnect backoff, lock polling, another process's
    /// migration, a vanished holder of the executor ID. Always real time, whatever clock the application is given: the
    /// server and the other processes live in real time, and a test's fake clock that nobody advances must not stall a launch.
    /// </summary>
    public TimeProvider Time { get; } = TimeProvider.System;

    /// <summary>A description of the database for messages, with any password masked.</summary>
    public abstract string Description { get; }

    /// <summary>
    /// Runs <paramref name="work"/> in one transaction: committed when it returns, rolled back when it throws.
    /// On SQLite the work must complete synchronously (every session call does), so it can share a commit with other writers.
    /// </summary>
    public abstract Task<T> WriteAsync<T>(Func<ISqlSession, CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken, System.Data.IsolationLevel isolation = System.Data.IsolationLevel.ReadCommitted);

    /// <summary>Runs read-only work on a connection of its own, outside any write transaction.</summary>
    public abstract Task<T> ReadAsync<T>(Func<ISqlSession, CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken);

    /// <summary>Runs one write statement as its own transaction (one round trip on Postgres).</summary>
    public virtual Task<int> ExecuteAsync(string sql, object?[] args, CancellationToken cancellationToken) =>
        WriteAsync((session, ct) => session.ExecuteAsync(sql, args, ct), cancellationToken);

    /// <summary>Runs one write statement with RETURNING as its own transaction.</summary>
    public virtual Task<List<T>> ExecuteQueryAsync<T>(string sql, object?[] args, Func<DbDataReader, T> map, CancellationToken cancellationToken) =>
        WriteAsync((session, ct) => session.QueryAsync(sql, args, map, ct), cancellationToken);

    /// <summary>Runs one query.</summary>
    public Task<List<T>> QueryAsync<T>(string sql, object?[] args, Func<DbDataReader, T> map, CancellationToken cancellationToken) =>
        ReadAsync((session, ct) => session.QueryAsync(sql, args, map, ct), cancellationToken);

    /// <summary>Creates the database if needed and brings its schema to the current version.</summary>
    public abstract Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Checks that the schema is at the current version without creating or changing anything, waiting while another
    /// process migrates it; throws <see cref="DbosDatabaseException"/> when it is missing or stays older.
    /// </summary>
    public abstract Task VerifySchemaAsync(CancellationToken cancellationToken);

    /// <summary>
    /// A session on the caller's own open connection and transaction (the outbox), for statements that commit or roll
    /// back with the caller's work. Null when this backend cannot share a caller's transaction (SQLite).
    /// </summary>
    public virtual ISqlSession? CallerSession(DbConnection connection, DbTransaction transaction) => null;

    // The checks below read driver errors, so the statements that rely on them stay free of any driver.

    /// <summary>Whether <paramref name="ex"/> is this database refusing a row that breaks a unique or primary key.</summary>
    public abstract bool IsUniqueViolation(Exception ex);

    /// <summary>Whether <paramref name="ex"/> is this database refusing a row whose foreign key has no referenced row.</summary>
    public abstract bool IsForeignKeyViolation(Exception ex);

    /// <summary>Whether <paramref name="ex"/> is a transaction that lost to a concurrent one (a row lock not available, a serialization failure, a deadlock), to be retried.</summary>
    public abstract bool IsContention(Exception ex);

    /// <summary>Whether <paramref name="ex"/> is the server stopping a statement at its <c>statement_timeout</c>.</summary>
    public virtual bool IsStatementTimeout(Exception ex) => false;

    public abstract ValueTask DisposeAsync();
}

/// <summary>Checks on the arguments of statements, shared by both backends.</summary>
internal static class SqlArguments
{
    /// <summary>
    /// Throws <see cref="ArgumentException"/> before a statement runs if a text argument cannot be stored exactly (see
    /// <see cref="StorableText"/>), so both backends refuse the same text with the same error.
    /// </summary>
    public static void CheckStorable(object?[] args)
    {
        foreach (var arg in args)
        {
            switch (arg)
            {
                case string text:
                    StorableText.Check(text, "The text");
                    break;
                case string[] list:
                    foreach (var text in list)
                    {
                        StorableText.Check(text, "The text");
                    }

                    break;
            }
        }
    }
}
