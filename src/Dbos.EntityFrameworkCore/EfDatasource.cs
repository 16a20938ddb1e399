using System.Data.Common;
using Microsoft.EntityFrameworkCore;

namespace Dbos.EntityFrameworkCore;

/// <summary>
/// A <see cref="SqlDatasource"/> whose transactions get a <typeparamref name="TContext"/>: what the body changes through
/// the context is saved and committed together with the transaction's checkpoint, so inside a workflow it happens exactly
/// once, and a re-execution returns the recorded result without touching the database.
/// </summary>
/// <typeparam name="TContext">Your <see cref="DbContext"/>.</typeparam>
public sealed class EfDatasource<TContext> : IAsyncDisposable
    where TContext : DbContext
{
    private readonly Func<DbConnection, TContext> createContext;

    private EfDatasource(SqlDatasource datasource, Func<DbConnection, TContext> createContext)
    {
        Datasource = datasource;
        this.createContext = createContext;
    }

    /// <summary>The underlying datasource (its own pool; usable for raw ADO.NET transactions too).</summary>
    public SqlDatasource Datasource { get; }

    /// <summary>Creates the datasource and checks it (connects, creates the checkpoint table if missing).</summary>
    /// <param name="url">The database: <c>sqlite:///…</c> or <c>postgresql://…</c>.</param>
    /// <param name="createContext">
    /// Makes a context on the given open connection, for example
    /// <c>c =&gt; new ShopContext(new DbContextOptionsBuilder&lt;ShopContext&gt;().UseNpgsql(c).Options)</c>.
    /// </param>
    /// <param name="options">Pool, retries and checkpoint schema.</param>
    /// <param name="cancellationToken">Stops the check.</param>
    /// <returns>The datasource.</returns>
    public static async Task<EfDatasource<TContext>> CreateAsync(string url, Func<DbConnection, TContext> createContext, DatasourceOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(createContext);
        return new EfDatasource<TContext>(await SqlDatasource.CreateAsync(url, options, cancellationToken).ConfigureAwait(false), createContext);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a context enlisted in a transaction, saves its changes, and commits them together
    /// with the checkpoint (a durable step named <paramref name="name"/> inside a workflow; a plain transaction elsewhere).
    /// </summary>
    /// <typeparam name="T">The result's type; must be serializable when called inside a workflow.</typeparam>
    /// <param name="name">The transaction's name, recorded as the step's name.</param>
    /// <param name="body">The transaction's code. Calling <c>SaveChangesAsync</c> yourself is fine: the changes are committed only at the end.</param>
    /// <param name="options">Isolation level.</param>
    /// <param name="cancellationToken">Stops the transaction (rolling it back).</param>
    /// <returns>The body's result.</returns>
    public Task<T> RunTransactionAsync<T>(string name, Func<TContext, CancellationToken, Task<T>> body, TransactionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Datasource.RunTransactionAsync(
            name,
            async (transaction, ct) =>
            {
                var context = createContext(transaction.Connection);
                await using (context.ConfigureAwait(false))
                {
                    await context.Database.UseTransactionAsync(transaction.Transaction, ct).ConfigureAwait(false);
                    var result = await body(context, ct).ConfigureAwait(false);
                    await context.SaveChangesAsync(ct).ConfigureAwait(false);
                    return result;
                }
            },
            options,
            cancellationToken);
    }

    /// <summary>Runs synchronous <paramref name="body"/> code with a context in a plain transaction, for code that cannot be async (outside workflows).</summary>
    /// <typeparam name="T">The result's type.</typeparam>
    /// <param name="name">The transaction's name (for errors).</param>
    /// <param name="body">The transaction's code.</param>
    /// <param name="options">Isolation level.</param>
    /// <returns>The body's result.</returns>
    public T RunTransaction<T>(string name, Func<TContext, T> body, TransactionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Datasource.RunTransaction(
            name,
            transaction =>
            {
                using var context = createContext(transaction.Connection);
                context.Database.UseTransaction(transaction.Transaction);
                var result = body(context);
                context.SaveChanges();
                return result;
            },
            options);
    }

    /// <summary>Closes the datasource's connections.</summary>
    /// <returns>A task that completes when the pool is closed.</returns>
    public ValueTask DisposeAsync() => Datasource.DisposeAsync();
}
