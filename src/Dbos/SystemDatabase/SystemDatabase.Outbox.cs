using System.Collections.Concurrent;
using System.Data.Common;

namespace Dbos.SystemDatabase;

// The outbox: enqueues and sends written in the caller's own transaction, on the caller's own connection, so they
// commit or roll back with the caller's work. Only when the system database is that very database.
internal sealed partial class SystemDatabase
{
    // What identifies one database of one running server, readable by any role (pg_control_system(), which gives the
    // cluster's system identifier, needs pg_monitor or a superuser, and a refused call would abort the caller's
    // transaction): the database's name and OID, and the server's start time in microseconds (independent of TimeZone).
    private const string DatabaseIdentitySql =
        "SELECT current_database() || '/' || (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())::text || '/' || " +
        "(extract(epoch FROM pg_catalog.pg_postmaster_start_time()) * 1000000)::bigint::text";

    private readonly ConcurrentDictionary<string, string> callerIdentities = new(StringComparer.Ordinal);
    private string? systemIdentity;

    /// <summary>
    /// A session on the caller's connection and transaction, once checked to reach this system database (cached per
    /// connection string). Throws <see cref="InvalidOperationException"/> on SQLite or another database, having written nothing.
    /// </summary>
    public async Task<ISqlSession> CallerSessionAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var session = executor.CallerSession(connection, transaction) ?? throw new InvalidOperationException(
            "Enqueueing or sending in your own transaction needs a Postgres system database in the same database as your connection; this system database is SQLite. Nothing was written.");
        var key = connection.ConnectionString;
        if (!callerIdentities.TryGetValue(key, out var caller))
        {
            caller = (await session.QueryAsync(DatabaseIdentitySql, [], static r => r.GetString(0), cancellationToken).ConfigureAwait(false))[0];
            callerIdentities[key] = caller;
        }

        systemIdentity ??= (await executor.QueryAsync(DatabaseIdentitySql, [], static r => r.GetString(0), cancellationToken).ConfigureAwait(false))[0];
        if (caller != systemIdentity)
        {
            // The server may have restarted since either was read: read both again before refusing.
            caller = (await session.QueryAsync(DatabaseIdentitySql, [], static r => r.GetString(0), cancellationToken).ConfigureAwait(false))[0];
            callerIdentities[key] = caller;
            systemIdentity = (await executor.QueryAsync(DatabaseIdentitySql, [], static r => r.GetString(0), cancellationToken).ConfigureAwait(false))[0];
            if (caller != systemIdentity)
            {
                throw new InvalidOperationException(
                    $"Your connection is to database '{DatabaseName(caller)}', and the system database is {executor.Description}: enqueueing or sending in your own " +
                    "transaction needs the system database's schema in the same Postgres database (same server, same database) as your connection. Nothing was written.");
            }
        }

        return session;
    }

    private static string DatabaseName(string identity) => identity[..identity.LastIndexOf('/', identity.LastIndexOf('/') - 1)];

    /// <summary>Inserts a new workflow's rows in the caller's transaction (see <see cref="StartWorkflowAsync"/>).</summary>
    public async Task<StartResult> StartWorkflowInCallerAsync(ISqlSession caller, NewWorkflowRow row, CancellationToken cancellationToken)
    {
        List<StartRow> rows;
        try
        {
            rows = await caller.QueryAsync(startSql, StartArgs(row), ReadStart, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (executor.IsUniqueViolation(ex))
        {
            throw Deduplicated(row);
        }

        var r = rows[0];
        return new StartResult(r.Creator == row.CreatorXid, r.Status, r.Name, r.Queue, r.Serialization);
    }

    /// <summary>Stores a message in the caller's transaction; a repeated <paramref name="messageId"/> is delivered once.</summary>
    public async Task SendInCallerAsync(ISqlSession caller, string destinationId, string topic, string message, string serialization, string messageId, CancellationToken cancellationToken)
    {
        try
        {
            await caller.ExecuteAsync(InsertMessageSql, [destinationId, topic, message, serialization, messageId], cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (executor.IsForeignKeyViolation(ex))
        {
            throw new WorkflowNotFoundException($"Cannot send to workflow '{destinationId}': no workflow has that ID. Your transaction is aborted; roll it back.");
        }
    }
}
