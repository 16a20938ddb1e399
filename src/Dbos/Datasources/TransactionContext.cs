using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Dbos;

/// <summary>Options of one transaction run through a datasource.</summary>
public sealed record TransactionOptions
{
    /// <summary>The isolation level. Default: read committed on Postgres, serializable on SQLite (its only level for writers).</summary>
    public IsolationLevel? IsolationLevel { get; init; }

    /// <summary>Whether the transaction only reads (no checkpoint is needed to make it exactly-once, but it is still recorded in a workflow).</summary>
    public bool ReadOnly { get; init; }
}

/// <summary>
/// The open connection and transaction a datasource transaction runs in. Use them with raw ADO.NET commands, Dapper,
/// or any library that takes a <see cref="DbConnection"/> and <see cref="DbTransaction"/>; do not commit or roll back
/// yourself: the datasource commits when your code returns (together with its checkpoint) and rolls back when it throws.
/// </summary>
public sealed class TransactionContext
{
    internal TransactionContext(DbConnection connection, DbTransaction transaction, string? workflowId)
    {
        Connection = connection;
        Transaction = transaction;
        WorkflowId = workflowId;
    }

    /// <summary>The open connection to the application database.</summary>
    public DbConnection Connection { get; }

    /// <summary>The transaction every command must join.</summary>
    public DbTransaction Transaction { get; }

    /// <summary>The workflow this transaction is a step of, or null when it runs outside a workflow.</summary>
    public string? WorkflowId { get; }

    /// <summary>
    /// A command in this transaction, with positional parameters <c>$1</c>, <c>$2</c>… bound to <paramref name="args"/>
    /// (the same SQL works on Postgres and SQLite).
    /// </summary>
    /// <param name="sql">The SQL text.</param>
    /// <param name="args">The parameter values, in order; null binds SQL NULL.</param>
    /// <returns>The command; dispose it after use.</returns>
    public DbCommand CreateCommand(string sql, params object?[] args)
    {
        ArgumentNullException.ThrowIfNull(sql);
        ArgumentNullException.ThrowIfNull(args);
        var command = Connection.CreateCommand();
        command.Transaction = Transaction;
        command.CommandText = sql;
        for (var i = 0; i < args.Length; i++)
        {
            DbParameter parameter = Connection is SqliteConnection
                ? new SqliteParameter("$" + (i + 1).ToString(CultureInfo.InvariantCulture), args[i] ?? DBNull.Value)
                : new NpgsqlParameter { Value = args[i] ?? DBNull.Value };
            command.Parameters.Add(parameter);
        }

        return command;
    }

    /// <summary>Runs a statement in this transaction and returns the number of rows it changed.</summary>
    /// <param name="sql">The SQL text, with positional parameters <c>$1</c>, <c>$2</c>….</param>
    /// <param name="args">The parameter values, in order.</param>
    /// <returns>The number of rows changed.</returns>
    public async Task<int> ExecuteAsync(string sql, params object?[] args)
    {
        var command = CreateCommand(sql, args);
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Runs a query in this transaction and returns the first column of its first row (null if none).</summary>
    /// <param name="sql">The SQL text, with positional parameters <c>$1</c>, <c>$2</c>….</param>
    /// <param name="args">The parameter values, in order.</param>
    /// <returns>The value, or null.</returns>
    public async Task<object?> ScalarAsync(string sql, params object?[] args)
    {
        var command = CreateCommand(sql, args);
        await using (command.ConfigureAwait(false))
        {
            var value = await command.ExecuteScalarAsync().ConfigureAwait(false);
            return value is DBNull ? null : value;
        }
    }

    /// <summary>Runs a statement in this transaction, synchronously, and returns the number of rows it changed.</summary>
    /// <param name="sql">The SQL text, with positional parameters <c>$1</c>, <c>$2</c>….</param>
    /// <param name="args">The parameter values, in order.</param>
    /// <returns>The number of rows changed.</returns>
    public int Execute(string sql, params object?[] args)
    {
        using var command = CreateCommand(sql, args);
        return command.ExecuteNonQuery();
    }

    /// <summary>Runs a query in this transaction, synchronously, and returns the first column of its first row (null if none).</summary>
    /// <param name="sql">The SQL text, with positional parameters <c>$1</c>, <c>$2</c>….</param>
    /// <param name="args">The parameter values, in order.</param>
    /// <returns>The value, or null.</returns>
    public object? Scalar(string sql, params object?[] args)
    {
        using var command = CreateCommand(sql, args);
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }
}
