using Dbos.Serialization;
using Dbos.SystemDatabase;

namespace Dbos;

/// <summary>The state of a workflow, as recorded in the system database.</summary>
public enum WorkflowState
{
    /// <summary>A state this library does not know (written by a newer DBOS implementation).</summary>
    Unknown,

    /// <summary>Running, or waiting to be recovered (<c>PENDING</c>).</summary>
    Pending,

    /// <summary>Waiting on a queue (<c>ENQUEUED</c>).</summary>
    Enqueued,

    /// <summary>Enqueued with a delay that has not passed (<c>DELAYED</c>).</summary>
    Delayed,

    /// <summary>Finished with a result (<c>SUCCESS</c>).</summary>
    Success,

    /// <summary>Finished with an error (<c>ERROR</c>).</summary>
    Error,

    /// <summary>Cancelled by a user or by its timeout (<c>CANCELLED</c>).</summary>
    Cancelled,

    /// <summary>Recovered too many times without finishing (<c>MAX_RECOVERY_ATTEMPTS_EXCEEDED</c>).</summary>
    MaxRecoveryAttemptsExceeded,
}

/// <summary>Converts between <see cref="WorkflowState"/> and the status strings of the shared schema.</summary>
internal static class WorkflowStates
{
    public static WorkflowState Parse(string status) => status switch
    {
        StatusNames.Pending => WorkflowState.Pending,
        StatusNames.Enqueued => WorkflowState.Enqueued,
        StatusNames.Delayed => WorkflowState.Delayed,
        StatusNames.Success => WorkflowState.Success,
        StatusNames.Error => WorkflowState.Error,
        StatusNames.Cancelled => WorkflowState.Cancelled,
        StatusNames.MaxRecoveryAttemptsExceeded => WorkflowState.MaxRecoveryAttemptsExceeded,
        _ => WorkflowState.Unknown,
    };

    public static string ToName(WorkflowState state) => state switch
    {
        WorkflowState.Pending => StatusNames.Pending,
        WorkflowState.Enqueued => StatusNames.Enqueued,
        WorkflowState.Delayed => StatusNames.Delayed,
        WorkflowState.Success => StatusNames.Success,
        WorkflowState.Error => StatusNames.Error,
        WorkflowState.Cancelled => StatusNames.Cancelled,
        WorkflowState.MaxRecoveryAttemptsExceeded => StatusNames.MaxRecoveryAttemptsExceeded,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Not a workflow state that can be filtered on."),
    };
}

/// <summary>The columns <see cref="IDbosOperations.CountWorkflowsAsync"/> groups by; combine them with <c>|</c>.</summary>
[Flags]
public enum WorkflowGrouping
{
    /// <summary>No grouping: one count of every matching workflow.</summary>
    None = 0,

    /// <summary>By status.</summary>
    Status = 1,

    /// <summary>By workflow name.</summary>
    Name = 2,

    /// <summary>By queue (workflows on none form a group of their own).</summary>
    QueueName = 4,

    /// <summary>By application version.</summary>
    ApplicationVersion = 8,

    /// <summary>By the executor that last ran them.</summary>
    ExecutorId = 16,

    /// <summary>Every column above.</summary>
    All = Status | Name | QueueName | ApplicationVersion | ExecutorId,
}

/// <summary>
/// One group of <see cref="IDbosOperations.CountWorkflowsAsync"/>: the values of the grouped columns (null for a column
/// not grouped by, or a null value in the column) and how many workflows have them.
/// </summary>
/// <param name="State">The status, when grouped by <see cref="WorkflowGrouping.Status"/>.</param>
/// <param name="StatusText">The status exactly as stored, when grouped by it.</param>
/// <param name="Name">The workflow name, when grouped by it.</param>
/// <param name="QueueName">The queue, when grouped by it (null: not on a queue).</param>
/// <param name="ApplicationVersion">The application version, when grouped by it.</param>
/// <param name="ExecutorId">The executor, when grouped by it.</param>
/// <param name="Count">How many matching workflows the group has.</param>
public sealed record WorkflowCount(
    WorkflowState? State,
    string? StatusText,
    string? Name,
    string? QueueName,
    string? ApplicationVersion,
    string? ExecutorId,
    long Count);

/// <summary>An error recorded for a workflow or a step.</summary>
/// <param name="Name">The error's name (for .NET code, the exception's type name).</param>
/// <param name="Message">The error's message.</param>
/// <param name="Code">The error's code, if it had one.</param>
public sealed record RecordedErrorInfo(string Name, string Message, string? Code);

/// <summary>
/// One workflow as recorded in the system database. Inputs and outputs are kept as stored text, so rows written by
/// other applications or in formats this one cannot read still list; <see cref="GetInput{T}()"/> and
/// <see cref="GetOutput{T}"/> decode them on request.
/// </summary>
public sealed class WorkflowStatus
{
    private readonly ValueCodec codec;

    internal WorkflowStatus(StatusRow row, ValueCodec codec)
    {
        this.codec = codec;
        WorkflowId = row.WorkflowId;
        StatusText = row.Status;
        State = WorkflowStates.Parse(row.Status);
        Name = row.Name ?? string.Empty;
        QueueName = row.QueueName;
        ExecutorId = row.ExecutorId;
        ApplicationVersion = row.ApplicationVersion;
        ApplicationName = row.ApplicationName;
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt);
        UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(row.UpdatedAt);
        DequeuedAt = row.StartedAtEpochMs is { } started ? DateTimeOffset.FromUnixTimeMilliseconds(started) : null;
        CompletedAt = row.CompletedAt is { } completed ? DateTimeOffset.FromUnixTimeMilliseconds(completed) : null;
        RecoveryAttempts = row.RecoveryAttempts;
        Timeout = row.TimeoutMs is { } timeout ? TimeSpan.FromMilliseconds(timeout) : null;
        Deadline = row.DeadlineEpochMs is { } deadline ? DateTimeOffset.FromUnixTimeMilliseconds(deadline) : null;
        ParentWorkflowId = row.ParentWorkflowId;
        ForkedFrom = row.ForkedFrom;
        WasForkedFrom = row.WasForkedFrom;
        DeduplicationId = row.DeduplicationId;
        Priority = row.Priority;
        QueuePartitionKey = row.QueuePartitionKey;
        DelayUntil = row.DelayUntilEpochMs is { } delay ? DateTimeOffset.FromUnixTimeMilliseconds(delay) : null;
        Serialization = row.Serialization;
        RawInput = row.Inputs;
        RawOutput = row.Output;
        RawError = row.Error;
        if (row.Error is not null)
        {
            var error = ValueCodec.DecodeError(row.Error);
            Error = new RecordedErrorInfo(error.Name, error.Message, error.Code);
        }

        AuthenticatedUser = string.IsNullOrEmpty(row.AuthenticatedUser) ? null : row.AuthenticatedUser;
        AuthenticatedRoles = ValueCodec.DecodeRoles(row.AuthenticatedRoles);
        Attributes = WorkflowAttributes.UserView(row.Attributes);
    }

    /// <summary>The workflow's ID.</summary>
    public string WorkflowId { get; }

    /// <summary>The workflow's state.</summary>
    public WorkflowState State { get; }

    /// <summary>The status exactly as stored (for example <c>SUCCESS</c>).</summary>
    public string StatusText { get; }

    /// <summary>The name the workflow is registered under.</summary>
    public string Name { get; }

    /// <summary>The queue it runs or ran on, if any.</summary>
    public string? QueueName { get; }

    /// <summary>The executor that last ran it.</summary>
    public string? ExecutorId { get; }

    /// <summary>The application version it runs under.</summary>
    public string? ApplicationVersion { get; }

    /// <summary>The application that owns it.</summary>
    public string? ApplicationName { get; }

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>When its status last changed.</summary>
    public DateTimeOffset UpdatedAt { get; }

    /// <summary>When it was last taken off a queue, if it was.</summary>
    public DateTimeOffset? DequeuedAt { get; }

    /// <summary>When it finished, if it has.</summary>
    public DateTimeOffset? CompletedAt { get; }

    /// <summary>How many times it has been started or recovered.</summary>
    public long RecoveryAttempts { get; }

    /// <summary>Its timeout, if it has one.</summary>
    public TimeSpan? Timeout { get; }

    /// <summary>The time after which it is cancelled, if set.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>The workflow that started it, if any.</summary>
    public string? ParentWorkflowId { get; }

    /// <summary>The workflow it was forked from, if any.</summary>
    public string? ForkedFrom { get; }

    /// <summary>Whether it has been forked.</summary>
    public bool WasForkedFrom { get; }

    /// <summary>Its queue deduplication ID, if any.</summary>
    public string? DeduplicationId { get; }

    /// <summary>Its queue priority.</summary>
    public int Priority { get; }

    /// <summary>Its queue partition, if any.</summary>
    public string? QueuePartitionKey { get; }

    /// <summary>When a delayed workflow may start.</summary>
    public DateTimeOffset? DelayUntil { get; }

    /// <summary>The user it runs for (<see cref="StartOptions.AuthenticatedUser"/>), or null when none was given.</summary>
    public string? AuthenticatedUser { get; }

    /// <summary>The roles of <see cref="AuthenticatedUser"/>; empty when none were given.</summary>
    public IReadOnlyList<string> AuthenticatedRoles { get; }

    /// <summary>
    /// Its attributes (<see cref="StartOptions.Attributes"/>, or as last set by <see cref="WorkflowContext.SetAttributesAsync"/>),
    /// without the trace context DBOS keeps beside them; null when it has none. A copy: changing it changes nothing stored.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject? Attributes { get; }

    /// <summary>The format its input and output are stored in (for example <c>portable_json</c>).</summary>
    public string? Serialization { get; }

    /// <summary>The input as stored, if loaded.</summary>
    public string? RawInput { get; }

    /// <summary>The output as stored, if it succeeded and outputs were loaded.</summary>
    public string? RawOutput { get; }

    /// <summary>The error as stored, if it failed and outputs were loaded.</summary>
    public string? RawError { get; }

    /// <summary>The recorded error, if it failed and outputs were loaded.</summary>
    public RecordedErrorInfo? Error { get; }

    /// <summary>Decodes the workflow's input (its first positional argument).</summary>
    /// <typeparam name="T">The input's type.</typeparam>
    /// <returns>The input, or default when there is none.</returns>
    /// <exception cref="DbosSerializationException">The stored input cannot be read as <typeparamref name="T"/>.</exception>
    public T? GetInput<T>() => (T?)codec.DecodeInputs(RawInput, Serialization, typeof(T), hasInput: true, $"workflow '{WorkflowId}'");

    /// <summary>Decodes one positional argument of the workflow's input (for a workflow of several arguments).</summary>
    /// <typeparam name="T">The argument's type.</typeparam>
    /// <param name="position">The argument's position, counting from 0.</param>
    /// <returns>The argument, or default when the input has none at that position.</returns>
    /// <exception cref="DbosSerializationException">The stored argument cannot be read as <typeparamref name="T"/>.</exception>
    public T? GetInput<T>(int position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        return (T?)codec.DecodeInputAt(RawInput, Serialization, typeof(T), position, $"workflow '{WorkflowId}'");
    }

    /// <summary>Decodes the workflow's output.</summary>
    /// <typeparam name="T">The output's type.</typeparam>
    /// <returns>The output, or default when there is none.</returns>
    /// <exception cref="DbosSerializationException">The stored output cannot be read as <typeparamref name="T"/>.</exception>
    public T? GetOutput<T>() => (T?)codec.Decode(RawOutput, Serialization, typeof(T), $"output of workflow '{WorkflowId}'");
}

/// <summary>One recorded operation of a workflow: a step, a sleep, a child workflow, a durable clock reading.</summary>
public sealed class StepInfo
{
    private readonly ValueCodec codec;

    internal StepInfo(OperationRow row, ValueCodec codec)
    {
        this.codec = codec;
        FunctionId = row.FunctionId;
        Name = row.Name;
        RawOutput = row.Output;
        RawError = row.Error;
        ChildWorkflowId = row.ChildWorkflowId;
        StartedAt = row.StartedAtEpochMs is { } started ? DateTimeOffset.FromUnixTimeMilliseconds(started) : null;
        CompletedAt = row.CompletedAtEpochMs is { } completed ? DateTimeOffset.FromUnixTimeMilliseconds(completed) : null;
        Serialization = row.Serialization;
        if (row.Error is not null)
        {
            var error = ValueCodec.DecodeError(row.Error);
            Error = new RecordedErrorInfo(error.Name, error.Message, error.Code);
        }
    }

    /// <summary>The operation's position in the workflow, counting from 0.</summary>
    public int FunctionId { get; }

    /// <summary>The step's name, the child workflow's name, or an operation name such as <c>DBOS.sleep</c>.</summary>
    public string Name { get; }

    /// <summary>The output as stored.</summary>
    public string? RawOutput { get; }

    /// <summary>The error as stored.</summary>
    public string? RawError { get; }

    /// <summary>The recorded error, if the operation failed.</summary>
    public RecordedErrorInfo? Error { get; }

    /// <summary>The child workflow this operation started or awaited, if any.</summary>
    public string? ChildWorkflowId { get; }

    /// <summary>When the operation started.</summary>
    public DateTimeOffset? StartedAt { get; }

    /// <summary>When it completed (for a sleep: when it wakes).</summary>
    public DateTimeOffset? CompletedAt { get; }

    /// <summary>The format the output is stored in.</summary>
    public string? Serialization { get; }

    /// <summary>Decodes the operation's output.</summary>
    /// <typeparam name="T">The output's type.</typeparam>
    /// <returns>The output, or default when there is none.</returns>
    public T? GetOutput<T>() => (T?)codec.Decode(RawOutput, Serialization, typeof(T), $"output of step {FunctionId} ('{Name}')");
}
