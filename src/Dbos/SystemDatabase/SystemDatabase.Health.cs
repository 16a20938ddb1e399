namespace Dbos.SystemDatabase;

// Probes for health checks: cheap, read-only, bounded by the caller.
internal sealed partial class SystemDatabase
{
    /// <summary>Whether the notification listener is connected: null on SQLite, which has none (other processes are polled).</summary>
    public bool? ListenerConnected => listener is null ? null : Notifier.SeesOtherProcesses;

    /// <summary>
    /// One cheap read of a system table, on a connection of its own: fails when the database cannot be reached or has no
    /// DBOS tables, and on SQLite when the file is no longer at its path (writes are then refused).
    /// </summary>
    public async Task PingAsync(CancellationToken cancellationToken)
    {
        if (executor is SqliteExecutor { FileIsGone: true } sqlite)
        {
            throw new DbosDatabaseException($"The SQLite system database file {sqlite.FilePath} no longer exists; writes are refused.");
        }

        await executor.ReadAsync(
            (session, ct) => new ValueTask<List<int>>(session.QueryAsync($"SELECT 1 FROM {d.Table("workflow_status")} LIMIT 1", [], static r => 1, ct).AsTask()),
            cancellationToken).ConfigureAwait(false);
    }
}
