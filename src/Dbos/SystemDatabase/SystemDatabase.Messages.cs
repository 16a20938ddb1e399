namespace Dbos.SystemDatabase;

// Messages, events and streams, each written together with the operation that records it.
internal sealed partial class SystemDatabase
{
    /// <summary>A write refused because the execution no longer owns its workflow: rolls the transaction back.</summary>
    private sealed class NotOwnerException : Exception;

    /// <summary>Records <paramref name="operation"/> in <paramref name="session"/>, or throws <see cref="NotOwnerException"/> to roll back.</summary>
    private async ValueTask RecordInSessionAsync(ISqlSession session, OperationRecord operation, CancellationToken cancellationToken)
    {
        object?[] args =
        [
            operation.WorkflowId, operation.FunctionId, operation.Name, operation.Output, operation.Error, operation.ChildWorkflowId,
            operation.StartedAtEpochMs, operation.CompletedAtEpochMs, operation.Serialization, applicationName, operation.OwnerXid,
        ];
        if (await session.ExecuteAsync(recordOperationSql, args, cancellationToken).ConfigureAwait(false) == 0)
        {
            throw new NotOwnerException();
        }
    }

    /// <summary>Runs <paramref name="work"/> and records <paramref name="operation"/> in one transaction; false if the execution lost its ownership.</summary>
    private async Task<bool> WriteRecordedAsync(OperationRecord operation, Func<ISqlSession, CancellationToken, ValueTask> work, CancellationToken cancellationToken)
    {
        try
        {
            await executor.WriteAsync(
                async (session, ct) =>
                {
                    await RecordInSessionAsync(session, operation, ct).ConfigureAwait(false);
                    await work(session, ct).ConfigureAwait(false);
                    return 0;
                },
                cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (NotOwnerException)
        {
            return false;
        }
    }

    private string InsertMessageSql =>
        $"INSERT INTO {d.Table("notifications")} (destination_uuid, topic, message, serialization, message_uuid) VALUES ($1, $2, $3, $4, $5) " +
        "ON CONFLICT (message_uuid) DO NOTHING";

    /// <summary>Sends a message from outside a workflow. A repeated <paramref name="messageId"/> is delivered once.</summary>
    /// <exception cref="WorkflowNotFoundException">No workflow has the destination ID.</exception>
    public async Task SendAsync(string destinationId, string topic, string message, string serialization, string messageId, CancellationToken cancellationToken)
    {
        try
        {
            await executor.ExecuteAsync(InsertMessageSql, [destinationId, topic, message, serialization, messageId], cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (executor.IsForeignKeyViolation(ex))
        {
            throw new WorkflowNotFoundException($"Cannot send to workflow '{destinationId}': no workflow has that ID.");
        }

        Notifier.Signal(ChangeKind.Message, ChangeNotifier.Payload(destinationId, topic));
    }

    /// <summary>Sends a message from a workflow, recorded as its operation, in one transaction.</summary>
    public async Task<SendOutcome> SendFromWorkflowAsync(OperationRecord operation, string destinationId, string topic, string message, string serialization, CancellationToken cancellationToken)
    {
        try
        {
            var recorded = await WriteRecordedAsync(
                operation,
                (session, ct) => IgnoreCount(session.ExecuteAsync(InsertMessageSql, [destinationId, topic, message, serialization, Guid.NewGuid().ToString()], ct)),
                cancellationToken).ConfigureAwait(false);
            if (!recorded)
            {
                return SendOutcome.NotOwner;
            }
        }
        catch (Exception ex) when (executor.IsForeignKeyViolation(ex))
        {
            return SendOutcome.NoSuchDestination;
        }

        Notifier.Signal(ChangeKind.Message, ChangeNotifier.Payload(destinationId, topic));
        return SendOutcome.Sent;
    }

    /// <summary>
    /// Sends one message to many workflows in one statement (one transaction), outside a workflow when
    /// <paramref name="operation"/> is null, else recorded as that operation. <paramref name="messageIds"/> holds each
    /// destination's message ID: a repeated one is delivered once. All or nothing: an unknown destination sends none.
    /// </summary>
    public async Task<SendOutcome> SendManyAsync(
        OperationRecord? operation, string[] destinationIds, string[] messageIds, string topic, string message, string serialization, CancellationToken cancellationToken)
    {
        var notifications = d.Table("notifications");
        var sql = d.IsPostgres
            ? $"INSERT INTO {notifications} (destination_uuid, topic, message, serialization, message_uuid) " +
              "SELECT t.dest, $3, $4, $5, t.id FROM unnest($1::text[], $2::text[]) AS t(dest, id) ON CONFLICT (message_uuid) DO NOTHING"
            : $"INSERT INTO {notifications} (destination_uuid, topic, message, serialization, message_uuid) " +
              "SELECT dst.value, $3, $4, $5, mid.value FROM json_each($1) AS dst JOIN json_each($2) AS mid ON mid.key = dst.key WHERE TRUE " +
              "ON CONFLICT (message_uuid) DO NOTHING";
        object?[] args = [destinationIds, messageIds, topic, message, serialization];
        try
        {
            if (operation is null)
            {
                await executor.ExecuteAsync(sql, args, cancellationToken).ConfigureAwait(false);
            }
            else if (!await WriteRecordedAsync(operation, (session, ct) => IgnoreCount(session.ExecuteAsync(sql, args, ct)), cancellationToken).ConfigureAwait(false))
            {
                return SendOutcome.NotOwner;
            }
        }
        catch (Exception ex) when (executor.IsForeignKeyViolation(ex))
        {
            return SendOutcome.NoSuchDestination;
        }

        foreach (var destination in destinationIds)
        {
            Notifier.Signal(ChangeKind.Message, ChangeNotifier.Payload(destination, topic));
        }

        return SendOutcome.Sent;
    }

    /// <summary>Which of <paramref name="workflowIds"/> no workflow has.</summary>
    public async Task<List<string>> MissingWorkflowsAsync(string[] workflowIds, CancellationToken cancellationToken)
    {
        var found = await executor.QueryAsync(
            $"SELECT workflow_uuid FROM {d.Table("workflow_status")} WHERE {d.InList("workflow_uuid", 1)}",
            [workflowIds],
            static r => r.GetString(0),
            cancellationToken).ConfigureAwait(false);
        var existing = found.ToHashSet(StringComparer.Ordinal);
        return [.. workflowIds.Where(id => !existing.Contains(id))];
    }

    /// <summary>The latest value of every event a workflow has set, by key.</summary>
    public Task<List<(string Key, StoredValue Value)>> GetAllEventsAsync(string workflowId, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT key, value, serialization FROM {d.Table("workflow_events")} WHERE workflow_uuid = $1 ORDER BY key",
            [workflowId],
            static r => (r.GetString(0), new StoredValue(r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2))),
            cancellationToken);

    private static async ValueTask IgnoreCount(ValueTask<int> task) => await task.ConfigureAwait(false);

    /// <summary>Whether an unconsumed message waits for <paramref name="destinationId"/> on <paramref name="topic"/>.</summary>
    public async Task<bool> HasMessageAsync(string destinationId, string topic, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            $"SELECT 1 FROM {d.Table("notifications")} WHERE destination_uuid = $1 AND topic = $2 AND consumed = FALSE LIMIT 1",
            [destinationId, topic],
            static _ => true,
            cancellationToken).ConfigureAwait(false);
        return rows.Count > 0;
    }

    /// <summary>
    /// Consumes the oldest unconsumed message for the workflow and topic (if any) and records the receive as
    /// <paramref name="operation"/> with the message as its output, in one transaction, so a message is received exactly once.
    /// Returns null if the execution no longer owns its workflow (nothing is consumed then).
    /// </summary>
    public async Task<(StoredValue? Message, bool Recorded)> ReceiveAsync(OperationRecord operation, string topic, CancellationToken cancellationToken)
    {
        var notifications = d.Table("notifications");
        var consumeSql =
            $"UPDATE {notifications} SET consumed = TRUE, consumed_by_function_id = $3 WHERE message_uuid = (SELECT message_uuid FROM {notifications} " +
            $"WHERE destination_uuid = $1 AND topic = $2 AND consumed = FALSE ORDER BY created_at_epoch_ms, {d.InsertionOrder} LIMIT 1{d.ForUpdateSkipLocked}) " +
            "RETURNING message, serialization";
        StoredValue? message = null;
        try
        {
            await executor.WriteAsync(
                async (session, ct) =>
                {
                    var consumed = await session.QueryAsync(consumeSql, [operation.WorkflowId, topic, operation.FunctionId], static r => new StoredValue(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)), ct).ConfigureAwait(false);
                    message = consumed.Count > 0 ? consumed[0] : null;
                    await RecordInSessionAsync(session, operation with { Output = message?.Text, Serialization = message?.Serialization }, ct).ConfigureAwait(false);
                    return 0;
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (NotOwnerException)
        {
            return (null, false);
        }

        return (message, true);
    }

    /// <summary>Sets an event (the latest value wins; each value is kept in the history) and records it, in one transaction.</summary>
    public async Task<bool> SetEventAsync(OperationRecord operation, string key, string value, string serialization, CancellationToken cancellationToken)
    {
        var recorded = await WriteRecordedAsync(
            operation,
            async (session, ct) =>
            {
                await session.ExecuteAsync(
                    $"INSERT INTO {d.Table("workflow_events")} (workflow_uuid, key, value, serialization) VALUES ($1, $2, $3, $4) " +
                    "ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = excluded.value, serialization = excluded.serialization",
                    [operation.WorkflowId, key, value, serialization],
                    ct).ConfigureAwait(false);
                await session.ExecuteAsync(
                    $"INSERT INTO {d.Table("workflow_events_history")} (workflow_uuid, function_id, key, value, serialization) VALUES ($1, $2, $3, $4, $5) " +
                    "ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = excluded.value, serialization = excluded.serialization",
                    [operation.WorkflowId, operation.FunctionId, key, value, serialization],
                    ct).ConfigureAwait(false);
                await NotifyInSessionAsync(session, "dbos_workflow_events_channel", ChangeNotifier.Payload(operation.WorkflowId, key), ct).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
        if (recorded)
        {
            Notifier.Signal(ChangeKind.Event, ChangeNotifier.Payload(operation.WorkflowId, key));
        }

        return recorded;
    }

    /// <summary>On Postgres, tells other processes (delivered at commit); SQLite has no such channel and they poll.</summary>
    private async ValueTask NotifyInSessionAsync(ISqlSession session, string channel, string payload, CancellationToken cancellationToken)
    {
        if (d.IsPostgres)
        {
            await session.QueryAsync("SELECT pg_notify($1, $2)", [channel, payload], static _ => 0, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The latest value of a workflow's event, if set.</summary>
    public async Task<StoredValue?> GetEventAsync(string workflowId, string key, CancellationToken cancellationToken)
    {
        var rows = await executor.QueryAsync(
            $"SELECT value, serialization FROM {d.Table("workflow_events")} WHERE workflow_uuid = $1 AND key = $2",
            [workflowId, key],
            static r => new StoredValue(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            cancellationToken).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <summary>Appends a value to a workflow's stream (at the next offset) and records it, in one transaction.</summary>
    public async Task<bool> WriteStreamAsync(OperationRecord operation, string key, string value, string serialization, CancellationToken cancellationToken)
    {
        var streams = d.Table("streams");
        var recorded = await WriteRecordedAsync(
            operation,
            async (session, ct) =>
            {
                await session.ExecuteAsync(
                    $"INSERT INTO {streams} (workflow_uuid, key, value, \"offset\", function_id, serialization) " +
                    $"SELECT $1, $2, $3, COALESCE(MAX(\"offset\"), -1) + 1, $4, $5 FROM {streams} WHERE workflow_uuid = $1 AND key = $2",
                    [operation.WorkflowId, key, value, operation.FunctionId, serialization],
                    ct).ConfigureAwait(false);
                await NotifyInSessionAsync(session, "dbos_streams_channel", ChangeNotifier.Payload(operation.WorkflowId, key), ct).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
        if (recorded)
        {
            Notifier.Signal(ChangeKind.Stream, ChangeNotifier.Payload(operation.WorkflowId, key));
        }

        return recorded;
    }

    /// <summary>Up to <paramref name="limit"/> values of a stream, from <paramref name="fromOffset"/> on, in order.</summary>
    public Task<List<(int Offset, StoredValue Value)>> ReadStreamAsync(string workflowId, string key, int fromOffset, int limit, CancellationToken cancellationToken) =>
        executor.QueryAsync(
            $"SELECT \"offset\", value, serialization FROM {d.Table("streams")} WHERE workflow_uuid = $1 AND key = $2 AND \"offset\" >= $3 ORDER BY \"offset\" LIMIT $4",
            [workflowId, key, fromOffset, limit],
            static r => (r.GetInt32(0), new StoredValue(r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2))),
            cancellationToken);
}
