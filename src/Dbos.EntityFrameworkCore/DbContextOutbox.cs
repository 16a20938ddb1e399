using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Dbos.EntityFrameworkCore;

/// <summary>
/// The outbox with Entity Framework Core: enqueue a workflow, or send a message, in a <see cref="DbContext"/>'s current
/// transaction, so it commits or rolls back with what the context saves. As
/// <see cref="IDbosOperations.EnqueueInTransactionAsync{TInput, TResult}"/>: the context must use Npgsql on the
/// database that holds the system database's schema.
/// </summary>
public static class DbContextOutbox
{
    /// <summary>Enqueues a workflow by name in the context's current transaction (begin one with <c>context.Database.BeginTransactionAsync()</c>).</summary>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="dbos">The application or client.</param>
    /// <param name="context">The context, with a transaction begun.</param>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="input">The workflow's input.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow, which resolves once the transaction commits.</returns>
    /// <exception cref="InvalidOperationException">The context has no current transaction, or its database is not the system database.</exception>
    public static Task<WorkflowHandle<TResult>> EnqueueInTransactionAsync<TInput, TResult>(
        this IDbosOperations dbos, DbContext context, EnqueueOptions options, TInput input, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dbos);
        var transaction = CurrentTransaction(context);
        return dbos.EnqueueInTransactionAsync<TInput, TResult>(context.Database.GetDbConnection(), transaction, options, input, cancellationToken);
    }

    /// <summary>Sends a message in the context's current transaction (begin one with <c>context.Database.BeginTransactionAsync()</c>).</summary>
    /// <typeparam name="T">The message's type; must be serializable.</typeparam>
    /// <param name="dbos">The application or client.</param>
    /// <param name="context">The context, with a transaction begun.</param>
    /// <param name="destinationWorkflowId">The receiving workflow's ID.</param>
    /// <param name="message">The message.</param>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="idempotencyKey">Makes retries of this send deliver once.</param>
    /// <param name="cancellationToken">Stops the send.</param>
    /// <returns>A task that completes when the message is written in the transaction.</returns>
    /// <exception cref="InvalidOperationException">The context has no current transaction, or its database is not the system database.</exception>
    public static Task SendInTransactionAsync<T>(
        this IDbosOperations dbos, DbContext context, string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dbos);
        var transaction = CurrentTransaction(context);
        return dbos.SendInTransactionAsync(context.Database.GetDbConnection(), transaction, destinationWorkflowId, message, topic, idempotencyKey, cancellationToken);
    }

    private static System.Data.Common.DbTransaction CurrentTransaction(DbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Database.CurrentTransaction?.GetDbTransaction() ?? throw new InvalidOperationException(
            "The DbContext has no current transaction: begin one (context.Database.BeginTransactionAsync()) so the enqueue or send commits with your changes. Nothing was written.");
    }
}
