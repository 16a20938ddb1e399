using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Dbos.SystemDatabase;

// Retention: deleting old finished workflows in bounded batches, and the global timeout.
internal sealed partial class SystemDatabase
{
    /// <summary>
    /// The <c>created_at</c> of the <paramref name="keep"/>-th newest workflow (of <paramref name="application"/> and
    /// unclaimed ones, or of all when null): workflows created before it are beyond the budget. Null when there are fewer.
    /// </summary>
    public async Task<long?> GetNewestKeptCreatedAtAsync(int keep, string? application, CancellationToken cancellationToken)
    {
        var scope = application is null ? string.Empty : "WHERE (application_name = $2 OR application_name IS NULL) ";
        var found = await executor.QueryAsync(
            $"SELECT created_at FROM {d.Table("workflow_status")} {scope}ORDER BY created_at DESC LIMIT 1 OFFSET $1",
            application is null ? [(long)keep - 1] : [(long)keep - 1, application],
            static r => r.GetInt64(0),
            cancellationToken).ConfigureAwait(false);
        return found.Count == 0 ? null : found[0];
    }

    /// <summary>
    /// Deletes, in one short transaction, up to <paramref name="batchSize"/> of the oldest finished workflows created
    /// before <paramref name="cutoffEpochMs"/> with everything recorded for them. A workflow whose parent is unfinished is
    /// kept (the parent may still read its outcome), and a row that a concurrent resume made unfinished is not deleted.
    /// On Postgres, batches of different processes never overlap: <paramref name="waitForOthers"/> false returns null at
    /// once when another process is collecting. Returns the IDs deleted.
    /// </summary>
    public Task<List<string>?> DeleteFinishedBatchAsync(long cutoffEpochMs, int batchSize, string? application, bool waitForOthers, CancellationToken cancellationToken)
    {
        var ws = d.Table("workflow_status");
        var scope = application is null ? string.Empty : "(application_name = $3 OR application_name IS NULL) AND ";
        var condition =
            "status NOT IN ('PENDING', 'ENQUEUED', 'DELAYED') AND (parent_workflow_id IS NULL OR NOT EXISTS " +
            $"(SELECT 1 FROM {ws} p WHERE p.workflow_uuid = {ws}.parent_workflow_id AND p.status IN ('PENDING', 'ENQUEUED', 'DELAYED')))";
        return executor.WriteAsync<List<string>?>(
            async (session, ct) =>
            {
                if (d is PostgresDialect postgres)
                {
                    if (waitForOthers)
                    {
                        await session.ExecuteAsync("SELECT pg_advisory_xact_lock($1)", [CollectorKey(postgres.Schema)], ct).ConfigureAwait(false);
                    }
                    else if (!(await session.QueryAsync("SELECT pg_try_advisory_xact_lock($1)", [CollectorKey(postgres.Schema)], static r => r.GetBoolean(0), ct).ConfigureAwait(false))[0])
                    {
                        return null;
                    }
                }

                // The status is checked again on the row deleted: a resume between the choice and the delete wins.
                var deleted = await session.QueryAsync(
                    $"DELETE FROM {ws} WHERE workflow_uuid IN (SELECT workflow_uuid FROM {ws} WHERE created_at < $1 AND " +
                    $"{scope}{condition} ORDER BY created_at LIMIT $2) " +
                    $"AND {condition} RETURNING workflow_uuid",
                    application is null ? [cutoffEpochMs, (long)batchSize] : [cutoffEpochMs, (long)batchSize, application],
                    static r => r.GetString(0),
                    ct).ConfigureAwait(false);
                if (deleted.Count > 0)
                {
                    // These tables have no foreign key to workflow_status; the others (notifications, events, streams) cascade.
                    string[] ids = [.. deleted];
                    foreach (var table in (string[])["workflow_input", "workflow_output", "operation_outputs"])
                    {
                        await session.ExecuteAsync($"DELETE FROM {d.Table(table)} WHERE {d.InList("workflow_uuid", 1)}", [ids], ct).ConfigureAwait(false);
                    }
                }

                return deleted;
            },
            cancellationToken);
    }

    /// <summary>
    /// Deletes up to <paramref name="batchSize"/> workflows' worth of rows of the payload tables (inputs, outputs,
    /// operations) written before <paramref name="cutoffEpochMs"/> (their <c>retention_timestamp</c>) whose workflow no
    /// longer exists, as left by an implementation that deletes only <c>workflow_status</c> rows. Returns the rows deleted.
    /// </summary>
    public Task<int> DeleteOrphanedPayloadBatchAsync(long cutoffEpochMs, int batchSize, CancellationToken cancellationToken) =>
        executor.WriteAsync(
            async (session, ct) =>
            {
                var total = 0;
                foreach (var table in (string[])["workflow_input", "workflow_output", "operation_outputs"])
                {
                    total += await session.ExecuteAsync(
                        $"DELETE FROM {d.Table(table)} WHERE workflow_uuid IN (SELECT o.workflow_uuid FROM {d.Table(table)} o WHERE o.retention_timestamp < $1 AND NOT EXISTS " +
                        $"(SELECT 1 FROM {d.Table("workflow_status")} s WHERE s.workflow_uuid = o.workflow_uuid) LIMIT $2) " +
                        $"AND NOT EXISTS (SELECT 1 FROM {d.Table("workflow_status")} s WHERE s.workflow_uuid = {d.Table(table)}.workflow_uuid)",
                        [cutoffEpochMs, (long)batchSize],
                        ct).ConfigureAwait(false);
                }

                return total;
            },
            cancellationToken);

    /// <summary>Cancels every unfinished workflow created before <paramref name="cutoffEpochMs"/> (of the application and unclaimed ones, or all). Returns their IDs.</summary>
    public Task<List<string>> CancelCreatedBeforeAsync(long cutoffEpochMs, string? application, CancellationToken cancellationToken)
    {
        var scope = application is null ? string.Empty : "AND (application_name = $2 OR application_name IS NULL) ";
        return executor.ExecuteQueryAsync(
            $"UPDATE {d.Table("workflow_status")} SET status = 'CANCELLED', owner_xid = NULL, queue_name = NULL, deduplication_id = NULL, " +
            $"started_at_epoch_ms = NULL, updated_at = {d.NowMs}, completed_at = {d.NowMs} " +
            $"WHERE status IN ('PENDING', 'ENQUEUED', 'DELAYED') AND created_at < $1 {scope}RETURNING workflow_uuid",
            application is null ? [cutoffEpochMs] : [cutoffEpochMs, application],
            static r => r.GetString(0),
            cancellationToken);
    }

    /// <summary>The advisory lock that keeps garbage collections of one schema from running batches at the same time.</summary>
    private static long CollectorKey(string schema) =>
        BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes("dbos-garbage-collect:" + schema)));
}
