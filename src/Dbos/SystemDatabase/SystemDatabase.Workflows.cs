using System.Data.Common;

namespace Dbos.SystemDatabase;

// Starting workflows, checkpointing their operations and outcomes, and reading them back.
internal sealed partial class SystemDatabase
{
    /// <summary>
    /// Inserts a workflow's status and input, or finds the existing row with that ID. A row with
    /// <see cref="NewWorkflowRow.ClaimIfIdle"/> (Postgres only) comes back PENDING when the insert claimed it.
    /// </summary>
    public async Task<StartResult> StartWorkflowAsync(NewWorkflowRow row, CancellationToken cancellationToken)
    {
        if (row.ClaimIfIdle && !d.IsPostgres)
        {
            throw new ArgumentException("An enqueue claims itself only on Postgres.", nameof(row));
        }

        List<StartRow> rows;
        try
        {
            if (startGroupCommit is { } group && IsPlainDirectStart(row))
            {
                rows = [(await group.WriteAsync(row, cancellationToken).ConfigureAwait(false) ?? await StartOneAsync(row, cancellationToken).ConfigureAwait(false))!];
            }
            else if (d.IsPostgres)
            {
                rows = await executor.ExecuteQueryAsync(row.ClaimIfIdle ? claimIfIdleStartSql : startSql, StartArgs(row), ReadStart, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                rows = await executor.WriteAsync(
                    async (session, ct) =>
                    {
                        var result = await session.QueryAsync(insertStatusSql, StatusArgs(row), ReadStart, ct).ConfigureAwait(false);
                        await session.ExecuteAsync(insertInputSql, InputArgs(row), ct).ConfigureAwait(false);
                        return result;
                    },
                    cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (executor.IsUniqueViolation(ex))
        {
            throw Deduplicated(row);
        }

        var r = rows[0];
        return new StartResult(r.Creator == row.CreatorXid, r.Status, r.Name, r.Queue, r.Serialization);
    }

    /// <summary>
    /// Starts a child workflow and records it as the parent's operation <paramref name="functionId"/>, in one transaction.
    /// Returns null when the parent no longer owns its execution (cancelled, or taken over), so nothing was recorded.
    /// </summary>
    public async Task<StartResult?> StartChildWorkflowAsync(NewWorkflowRow child, string parentOwnerXid, int functionId, long nowEpochMs, CancellationToken cancellationToken)
    {
        var recordArgs = OperationArgs(child.ParentWorkflowId!, functionId, child.Name, null, null, child.WorkflowId, nowEpochMs, nowEpochMs, null, parentOwnerXid);
        try
        {
            return await executor.WriteAsync<StartResult?>(
                async (session, ct) =>
                {
                    var recorded = await session.ExecuteAsync(recordOperationSql, recordArgs, ct).ConfigureAwait(false);
                    if (recorded == 0)
                    {
                        return null;
                    }

                    var rows = await session.QueryAsync(insertStatusSql, StatusArgs(child), ReadStart, ct).ConfigureAwait(false);
                    await session.ExecuteAsync(insertInputSql, InputArgs(child), ct).ConfigureAwait(false);
                    var r = rows[0];
                    return new StartResult(r.Creator == child.CreatorXid, r.Status, r.Name, r.Queue, r.Serialization);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (executor.IsUniqueViolation(ex))
        {
            throw Deduplicated(child);
        }
    }

    /// <summary>
    /// Whether a start can go through the group commit of starts: started here (owned, PENDING), on no queue, so without
    /// deduplication, partition, delay, schedule or debouncing, the columns <c>startManySql</c> writes as NULL.
    /// </summary>
    private static bool IsPlainDirectStart(NewWorkflowRow row) =>
        row.OwnerXid is not null && row.QueueName is null && row.DeduplicationId is null && row.PartitionKey is null &&
        row.DelayUntilEpochMs is null && row.ScheduleName is null && !row.IsDebounced && row.DebounceDeadlineEpochMs is null;

    /// <summary>One start with its own statement and commit (Postgres, <c>startSql</c>).</summary>
    private async Task<StartRow?> StartOneAsync(NewWorkflowRow row, CancellationToken cancellationToken) =>
        (await executor.ExecuteQueryAsync(startSql, StartArgs(row), ReadStart, cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Several direct starts with one statement and one commit (Postgres), each as <c>startSql</c> does it: the row it
    /// created, or the one that existed. A deduplication conflict cannot happen here (no queue); any error fails the batch,
    /// and the group commit then runs each start alone.
    /// </summary>
    private async Task<Dictionary<string, StartRow?>> StartManyAsync(IReadOnlyList<NewWorkflowRow> rows, CancellationToken cancellationToken)
    {
        var n = rows.Count;
        var columns = new object[18];
        var text = new string?[13][];
        for (var c = 0; c < text.Length; c++)
        {
            text[c] = new string?[n];
        }

        var recoveryAttempts = new long[n];
        var timeouts = new long?[n];
        var deadlines = new long?[n];
        var priorities = new int[n];
        for (var i = 0; i < n; i++)
        {
            var r = rows[i];
            (text[0][i], text[1][i], text[2][i], text[3][i], text[4][i], text[5][i], text[6][i]) =
                (r.WorkflowId, r.Status, r.Name, r.AuthenticatedUser, r.AuthenticatedRoles, r.ExecutorId, r.ApplicationVersion);
            (text[7][i], text[8][i], text[9][i], text[10][i], text[11][i], text[12][i]) =
                (r.ParentWorkflowId, r.Serialization, r.CreatorXid, r.OwnerXid, r.ApplicationName, r.Attributes);
            (recoveryAttempts[i], timeouts[i], deadlines[i], priorities[i]) = (r.RecoveryAttempts, r.TimeoutMs, r.DeadlineEpochMs, r.Priority);
        }

        var inputs = new string[n];
        for (var i = 0; i < n; i++)
        {
            inputs[i] = rows[i].Inputs;
        }

        // In the order of startManySql's $1 to $18.
        (columns[0], columns[1], columns[2], columns[3], columns[4], columns[5], columns[6]) = (text[0], text[1], text[2], text[3], text[4], text[5], text[6]);
        (columns[7], columns[8], columns[9]) = (recoveryAttempts, timeouts, deadlines);
        (columns[10], columns[11], columns[12], columns[13], columns[14]) = (text[7], text[8], text[9], text[10], text[11]);
        (columns[15], columns[16], columns[17]) = (priorities, text[12], inputs);
        var started = await executor.ExecuteQueryAsync(
            startManySql!,
            columns,
            static r => (Id: r.GetString(0), Row: new StartRow(r.GetString(1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4), NullableString(r, 5))),
            cancellationToken).ConfigureAwait(false);
        return started.ToDictionary(s => s.Id, s => (StartRow?)s.Row);
    }

    private static WorkflowDeduplicatedException Deduplicated(NewWorkflowRow row) => new(
        $"Workflow '{row.WorkflowId}' was not enqueued: a workflow with deduplication ID '{row.DeduplicationId}' is already queued or running on queue '{row.QueueName}'.");

    /// <summary>The status row's parameters, in the order of <c>insertStatusSql</c>'s $1 to $24.</summary>
    private static object?[] StatusArgs(NewWorkflowRow row) =>
    [
        row.WorkflowId, row.Status, row.Name, row.QueueName, row.ExecutorId, row.ApplicationVersion, row.RecoveryAttempts,
        row.TimeoutMs, row.DeadlineEpochMs, row.ParentWorkflowId, row.Serialization, row.CreatorXid, row.OwnerXid,
        row.ApplicationName, row.DeduplicationId, row.Priority, row.PartitionKey, row.DelayUntilEpochMs, row.ScheduleName, row.Attributes,
        row.IsDebounced, row.DebounceDeadlineEpochMs, row.AuthenticatedUser, row.AuthenticatedRoles,
    ];

    /// <summary>The input row's parameters, for <c>insertInputSql</c>.</summary>
    private static object?[] InputArgs(NewWorkflowRow row) => [row.WorkflowId, row.Inputs, row.CreatorXid];

    /// <summary>Postgres's one-statement start (<c>startSql</c>): the status row's parameters, then the input as $25.</summary>
    private static object?[] StartArgs(NewWorkflowRow row) => [.. StatusArgs(row), row.Inputs];

    private static StartRow ReadStart(DbDataReader r) =>
        new(r.GetString(0), NullableString(r, 1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4));

    private sealed record StartRow(string Status, string? Name, string? Queue, string? Creator, string? Serialization);

    /// <summary>
    /// Records an operation's outcome while <paramref name="ownerXid"/> still owns the pending workflow.
    /// Returns 1 when written, 0 when not: the operation was already recorded, or the execution lost its ownership.
    /// </summary>
    public Task<int> RecordOperationAsync(
        string workflowId,
        int functionId,
        string name,
        string? output,
        string? error,
        string? childWorkflowId,
        long startedAtEpochMs,
        long completedAtEpochMs,
        string? serialization,
        string ownerXid,
        CancellationToken cancellationToken)
    {
        var record = new OperationRecord(workflowId, functionId, name, ownerXid, startedAtEpochMs, completedAtEpochMs, output, error, serialization, childWorkflowId);
        return operationGroupCommit is { } group ? group.WriteAsync(record, cancellationToken) : RecordOneOperationAsync(record, cancellationToken);
    }

    /// <summary>Records one operation with its own statement (and, on Postgres, its own commit).</summary>
    internal Task<int> RecordOneOperationAsync(OperationRecord r, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(
            recordOperationSql,
            OperationArgs(r.WorkflowId, r.FunctionId, r.Name, r.Output, r.Error, r.ChildWorkflowId, r.StartedAtEpochMs, r.CompletedAtEpochMs, r.Serialization, r.OwnerXid),
            cancellationToken);

    /// <summary>
    /// Records several operations with one statement and one commit (Postgres), each while its owner still owns its pending
    /// workflow; returns the operations written. A record that is a duplicate or not owned is skipped, never an error.
    /// </summary>
    internal async Task<Dictionary<(string WorkflowId, int FunctionId), int>> RecordOperationsAsync(IReadOnlyList<OperationRecord> records, CancellationToken cancellationToken)
    {
        var n = records.Count;
        var ids = new string[n];
        var functionIds = new int[n];
        var names = new string[n];
        var outputs = new string?[n];
        var errors = new string?[n];
        var children = new string?[n];
        var started = new long[n];
        var completed = new long[n];
        var serializations = new string?[n];
        var owners = new string[n];
        for (var i = 0; i < n; i++)
        {
            var r = records[i];
            (ids[i], functionIds[i], names[i], outputs[i], errors[i], children[i]) = (r.WorkflowId, r.FunctionId, r.Name, r.Output, r.Error, r.ChildWorkflowId);
            (started[i], completed[i], serializations[i], owners[i]) = (r.StartedAtEpochMs, r.CompletedAtEpochMs, r.Serialization, r.OwnerXid);
        }

        var rows = await executor.ExecuteQueryAsync(
            recordOperationsSql!,
            [ids, functionIds, names, outputs, errors, children, started, completed, serializations, owners, applicationName],
            static r => (r.GetString(0), r.GetInt32(1)),
            cancellationToken).ConfigureAwait(false);
        return rows.ToDictionary(static key => key, static _ => 1);
    }

    private object?[] OperationArgs(
        string workflowId, int functionId, string name, string? output, string? error, string? childWorkflowId, long startedAt, long completedAt, string? serialization, string ownerXid) =>
        [workflowId, functionId, name, output, error, childWorkflowId, startedAt, completedAt, serialization, applicationName, ownerXid];

    /// <summary>Writes a workflow's outcome if it is still pending and owned by this execution. Returns whether it was written.</summary>
    public async Task<bool> CompleteWorkflowAsync(string workflowId, string ownerXid, string status, string? output, string? error, CancellationToken cancellationToken)
    {
        if (completionGroupCommit is { } group)
        {
            return await group.WriteAsync(new CompletionRecord(workflowId, ownerXid, status, output, error), cancellationToken).ConfigureAwait(false) == 1;
        }

        object?[] args = [workflowId, status, ownerXid, output, error];

        return await executor.WriteAsync(
            async (session, ct) =>
            {
                var updated = await session.QueryAsync(completeStatusSql, args, static r => r.GetString(0), ct).ConfigureAwait(false);
                if (updated.Count == 0)
                {
                    return false;
                }

                await session.ExecuteAsync(completeOutputSql, args, ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes one completion with its own statement and commit (Postgres): 1 when written, 0 when not owned.</summary>
    private Task<int> CompleteOneAsync(CompletionRecord r, CancellationToken cancellationToken) =>
        executor.ExecuteAsync(completeSql, [r.WorkflowId, r.Status, r.OwnerXid, r.Output, r.Error], cancellationToken);

    /// <summary>
    /// Writes several completions with one statement and one commit (Postgres), each while its owner still owns its pending
    /// workflow; returns the workflows completed. One not owned (or deleted) is skipped, never an error.
    /// </summary>
    private async Task<Dictionary<string, int>> CompleteManyAsync(IReadOnlyList<CompletionRecord> records, CancellationToken cancellationToken)
    {
        var n = records.Count;
        var ids = new string[n];
        var statuses = new string[n];
        var owners = new string[n];
        var outputs = new string?[n];
        var errors = new string?[n];
        for (var i = 0; i < n; i++)
        {
            (ids[i], statuses[i], owners[i], outputs[i], errors[i]) = (records[i].WorkflowId, records[i].Status, records[i].OwnerXid, records[i].Output, records[i].Error);
        }

        var rows = await executor.ExecuteQueryAsync(completeManySql!, [ids, statuses, owners, outputs, errors], static r => r.GetString(0), cancellationToken).ConfigureAwait(false);
        return rows.ToDictionary(static id => id, static _ => 1);
    }

    public async Task<OutcomeRow?> GetOutcomeAsync(string workflowId, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            outcomeSql,
            [workflowId],
            static r => new OutcomeRow(r.GetString(0), NullableString(r, 1), NullableString(r, 2), NullableString(r, 3), NullableString(r, 4)),
            cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    public Task<List<OperationRow>> GetOperationsAsync(string workflowId, CancellationToken cancellationToken) =>
        executor.QueryAsync(operationsSql, [workflowId], ReadOperation, cancellationToken);

    public async Task<OperationRow?> GetOperationAsync(string workflowId, int functionId, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(operationSql, [workflowId, functionId], ReadOperation, cancellationToken).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    private static OperationRow ReadOperation(DbDataReader r) => ReadOperation(r, 0);

    private static OperationRow ReadOperation(DbDataReader r, int first) => new(
        r.GetInt32(first), r.GetString(first + 1), NullableString(r, first + 2), NullableString(r, first + 3), NullableString(r, first + 4),
        NullableLong(r, first + 5), NullableLong(r, first + 6), NullableString(r, first + 7));

    /// <summary>
    /// Replaces a running workflow's attributes with <paramref name="attributes"/> (JSON object text, or null) and records
    /// the operation, in one transaction; the trace context kept under <c>dbos.otelContext</c> stays. False when the
    /// execution no longer owns the workflow.
    /// </summary>
    public Task<bool> UpdateAttributesAsync(OperationRecord operation, string? attributes, CancellationToken cancellationToken)
    {
        var sql = d.IsPostgres
            ? $"UPDATE {d.Table("workflow_status")} SET updated_at = {d.NowMs}, attributes = CASE " +
              "WHEN jsonb_typeof(attributes -> 'dbos.otelContext') = 'object' " +
              "THEN COALESCE(CAST($2 AS jsonb), '{}'::jsonb) || jsonb_build_object('dbos.otelContext', attributes -> 'dbos.otelContext') " +
              "ELSE CAST($2 AS jsonb) END WHERE workflow_uuid = $1"
            : $"UPDATE {d.Table("workflow_status")} SET updated_at = {d.NowMs}, attributes = CASE " +
              "WHEN json_valid(attributes) AND json_type(attributes, '$.\"dbos.otelContext\"') = 'object' " +
              "THEN json_set(COALESCE($2, '{}'), '$.\"dbos.otelContext\"', json(json_extract(attributes, '$.\"dbos.otelContext\"'))) " +
              "ELSE $2 END WHERE workflow_uuid = $1";
        return WriteRecordedAsync(
            operation,
            async (session, ct) => await session.ExecuteAsync(sql, [operation.WorkflowId, attributes], ct).ConfigureAwait(false),
            cancellationToken);
    }
}
