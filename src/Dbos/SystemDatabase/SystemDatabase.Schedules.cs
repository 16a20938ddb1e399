using System.Data.Common;

namespace Dbos.SystemDatabase;

// Schedules and application versions.
internal sealed partial class SystemDatabase
{
    // ---- Schedules ----

    private const string ScheduleColumns =
        "schedule_id, schedule_name, workflow_name, workflow_class_name, schedule, status, context, last_fired_at, automatic_backfill, cron_timezone, queue_name, application_name";

    private static ScheduleRow ReadSchedule(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), NullableString(r, 3), r.GetString(4), r.GetString(5), r.GetString(6),
        NullableString(r, 7), r.GetBoolean(8), NullableString(r, 9), NullableString(r, 10), NullableString(r, 11));

    private static object?[] ScheduleArgs(ScheduleRow s) =>
        [s.ScheduleId, s.ScheduleName, s.WorkflowName, s.WorkflowClassName, s.Schedule, s.Status, s.Context, s.LastFiredAt, s.AutomaticBackfill, s.CronTimezone, s.QueueName, s.ApplicationName];

    /// <summary>
    /// Records a schedule declared in code: a new one is inserted; an existing one of this application (or unowned) gets the
    /// declared definition but keeps its status and last firing, so a restart neither resumes a paused schedule nor forgets
    /// where it was.
    /// </summary>
    public Task ApplyScheduleAsync(ScheduleRow schedule, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(
            $"INSERT INTO {d.Table("workflow_schedules")} AS s ({ScheduleColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) " +
            "ON CONFLICT (schedule_name) DO UPDATE SET workflow_name = excluded.workflow_name, workflow_class_name = excluded.workflow_class_name, " +
            "schedule = excluded.schedule, context = excluded.context, automatic_backfill = excluded.automatic_backfill, cron_timezone = excluded.cron_timezone, " +
            "queue_name = excluded.queue_name, application_name = COALESCE(s.application_name, excluded.application_name) " +
            "WHERE s.application_name IS NULL OR s.application_name = excluded.application_name",
            ScheduleArgs(schedule),
            cancellationToken);

    /// <summary>Creates a schedule; false if one with that name exists.</summary>
    public async Task<bool> CreateScheduleAsync(ScheduleRow schedule, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync(
            $"INSERT INTO {d.Table("workflow_schedules")} ({ScheduleColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            ScheduleArgs(schedule),
            cancellationToken).ConfigureAwait(false) == 1;

    /// <summary>The schedules of <paramref name="owner"/> (and unowned ones), or of every application when null.</summary>
    public Task<List<ScheduleRow>> ListSchedulesAsync(string? owner, CancellationToken cancellationToken) =>
        owner is null
            ? executor.QueryAsync($"SELECT {ScheduleColumns} FROM {d.Table("workflow_schedules")} ORDER BY schedule_name", [], ReadSchedule, cancellationToken)
            : executor.QueryAsync(
                $"SELECT {ScheduleColumns} FROM {d.Table("workflow_schedules")} WHERE application_name = $1 OR application_name IS NULL ORDER BY schedule_name",
                [owner],
                ReadSchedule,
                cancellationToken);

    public async Task<ScheduleRow?> GetScheduleAsync(string name, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync($"SELECT {ScheduleColumns} FROM {d.Table("workflow_schedules")} WHERE schedule_name = $1", [name], ReadSchedule, cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    public async Task<bool> SetScheduleStatusAsync(string name, string status, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync($"UPDATE {d.Table("workflow_schedules")} SET status = $2 WHERE schedule_name = $1", [name, status], cancellationToken).ConfigureAwait(false) == 1;

    public async Task<bool> DeleteScheduleAsync(string name, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync($"DELETE FROM {d.Table("workflow_schedules")} WHERE schedule_name = $1", [name], cancellationToken).ConfigureAwait(false) == 1;

    public Task UpdateLastFiredAtAsync(string name, string lastFiredAt, CancellationToken cancellationToken) =>
        executor.ExecuteAsync($"UPDATE {d.Table("workflow_schedules")} SET last_fired_at = $2 WHERE schedule_name = $1", [name, lastFiredAt], cancellationToken);

    // ---- Application versions ----

    /// <summary>Records this application version (claiming an unowned row of the same name), as other DBOS implementations do at launch.</summary>
    public Task RegisterApplicationVersionAsync(string version, CancellationToken cancellationToken)
    {
        var table = d.Table("application_versions");
        return executor.WriteAsync(
            async (session, ct) =>
            {
                var claimed = await session.ExecuteAsync(
                    $"UPDATE {table} SET application_name = $2 WHERE version_name = $1 AND application_name IS NULL", [version, applicationName], ct).ConfigureAwait(false);
                if (claimed == 0)
                {
                    await session.ExecuteAsync(
                        $"INSERT INTO {table} (version_id, version_name, application_name) VALUES ($3, $1, $2) ON CONFLICT DO NOTHING",
                        [version, applicationName, Guid.NewGuid().ToString()],
                        ct).ConfigureAwait(false);
                }

                return 0;
            },
            cancellationToken);
    }

    public Task<List<VersionRow>> ListApplicationVersionsAsync(string? owner, CancellationToken cancellationToken)
    {
        var sql = $"SELECT version_id, version_name, version_timestamp, created_at, application_name FROM {d.Table("application_versions")}";
        static VersionRow Read(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), NullableString(r, 4));
        return owner is null
            ? executor.QueryAsync(sql + " ORDER BY version_timestamp DESC", [], Read, cancellationToken)
            : executor.QueryAsync(sql + " WHERE application_name = $1 OR application_name IS NULL ORDER BY version_timestamp DESC", [owner], Read, cancellationToken);
    }

    /// <summary>Makes a version the latest (the one scheduled and unversioned work goes to). Returns whether it exists.</summary>
    public async Task<bool> SetLatestApplicationVersionAsync(string versionName, string? owner, long nowEpochMs, CancellationToken cancellationToken) =>
        await executor.ExecuteAsync(
            $"UPDATE {d.Table("application_versions")} SET version_timestamp = $2 WHERE version_name = $1 AND (application_name = $3 OR application_name IS NULL OR $3 IS NULL)",
            [versionName, nowEpochMs, owner],
            cancellationToken).ConfigureAwait(false) >= 1;

    /// <summary>
    /// Counts this application's unfinished work (enqueued, delayed or pending) recorded for another application version
    /// than <paramref name="currentVersion"/>, by version: work this process will not take.
    /// </summary>
    public Task<List<(string Version, long Count)>> CountWorkOfOtherVersionsAsync(string currentVersion, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT application_version, COUNT(*) FROM {d.Table("workflow_status")} " +
            "WHERE status IN ('ENQUEUED', 'DELAYED', 'PENDING') AND application_version IS NOT NULL AND application_version <> $1 " +
            "AND (application_name = $2 OR application_name IS NULL) GROUP BY application_version ORDER BY application_version",
            [currentVersion, applicationName],
            static r => (r.GetString(0), r.GetInt64(1)),
            cancellationToken);

    /// <summary>
    /// Moves the enqueued and delayed workflows of version <paramref name="fromVersion"/> (of <paramref name="owner"/>,
    /// or of every application when null) to <paramref name="toVersion"/>, in one statement. Pending ones are left alone:
    /// they run somewhere, or become enqueued when their executor's work is taken over. Returns the IDs and queues moved.
    /// </summary>
    public Task<List<(string WorkflowId, string? QueueName)>> MoveWorkflowsToVersionAsync(string fromVersion, string toVersion, string? owner, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            $"UPDATE {d.Table("workflow_status")} SET application_version = $2, updated_at = {d.NowMs} " +
            "WHERE application_version = $1 AND status IN ('ENQUEUED', 'DELAYED') AND (application_name = $3 OR application_name IS NULL OR $3 IS NULL) " +
            "RETURNING workflow_uuid, queue_name",
            [fromVersion, toVersion, owner],
            static r => (r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            cancellationToken);
}
