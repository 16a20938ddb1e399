namespace Dbos;

/// <summary>The base class of errors raised by DBOS itself (as opposed to errors of user code it records).</summary>
public class DbosException : Exception
{
    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public DbosException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public DbosException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The configuration is invalid: a malformed database URL, a missing name, a setting out of range.</summary>
public sealed class DbosConfigurationException : DbosException
{
    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">What is wrong with the configuration.</param>
    public DbosConfigurationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    /// <param name="message">What is wrong with the configuration.</param>
    /// <param name="innerException">The cause.</param>
    public DbosConfigurationException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The system database cannot be used: unreachable, wrong credentials, or a schema from a newer version.</summary>
public sealed class DbosDatabaseException : DbosException
{
    /// <summary>Creates an exception with a message and its cause.</summary>
    /// <param name="message">What went wrong; never contains a password.</param>
    /// <param name="innerException">The cause.</param>
    public DbosDatabaseException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>A value (a workflow input, a step output, an error) could not be serialized or deserialized.</summary>
public sealed class DbosSerializationException : DbosException
{
    /// <summary>Creates an exception with a message and its cause.</summary>
    /// <param name="message">Which value could not be converted, and why.</param>
    /// <param name="innerException">The serializer's error.</param>
    public DbosSerializationException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>No workflow with the given ID exists, or no workflow is registered under the given name.</summary>
public sealed class WorkflowNotFoundException : DbosException
{
    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">Which workflow was not found.</param>
    public WorkflowNotFoundException(string message)
        : base(message)
    {
    }
}

/// <summary>A workflow ID is already used by a workflow with a different name.</summary>
public sealed class WorkflowConflictException : DbosException
{
    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">Which ID is in use, and by which workflow.</param>
    public WorkflowConflictException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// On re-execution, a workflow called a different operation than the one recorded at the same position:
/// the workflow's code is not deterministic, or it changed while the workflow was running.
/// </summary>
public sealed class NonDeterministicWorkflowException : DbosException
{
    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">The position, the recorded name and the name called now.</param>
    public NonDeterministicWorkflowException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// An error recorded by a workflow or a step: the original exception's type name and message, as stored
/// in the system database, so it reads the same in every process and on every re-execution.
/// </summary>
public class DbosRecordedException : DbosException
{
    /// <summary>Creates an exception from a recorded error.</summary>
    /// <param name="errorName">The recorded error name (the original exception's type name).</param>
    /// <param name="message">The recorded message.</param>
    /// <param name="code">The recorded error code, if any.</param>
    /// <param name="innerException">The original exception, when this process is the one that ran the failing code.</param>
    public DbosRecordedException(string errorName, string message, string? code = null, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorName = errorName;
        ErrorCode = code;
    }

    /// <summary>The recorded error name: for errors thrown by .NET code, the exception's type name.</summary>
    public string ErrorName { get; }

    /// <summary>The recorded error code, if the error carried one.</summary>
    public string? ErrorCode { get; }
}

/// <summary>A workflow ended in the <c>ERROR</c> status; awaiting its result raises this.</summary>
public sealed class WorkflowFailedException : DbosRecordedException
{
    /// <summary>Creates an exception from a workflow's recorded error.</summary>
    /// <param name="workflowId">The failed workflow.</param>
    /// <param name="errorName">The recorded error name.</param>
    /// <param name="message">The recorded message.</param>
    /// <param name="code">The recorded error code, if any.</param>
    /// <param name="innerException">The original exception, when available in this process.</param>
    public WorkflowFailedException(string workflowId, string errorName, string message, string? code = null, Exception? innerException = null)
        : base(errorName, message, code, innerException)
    {
        WorkflowId = workflowId;
    }

    /// <summary>The ID of the workflow that failed.</summary>
    public string WorkflowId { get; }
}

/// <summary>
/// A step failed: its error is recorded, so re-executions of the workflow raise the same exception without
/// running the step again. After retries, <see cref="AttemptErrors"/> lists every attempt's error.
/// </summary>
public sealed class StepFailedException : DbosRecordedException
{
    /// <summary>Creates an exception from a step's recorded error.</summary>
    /// <param name="stepName">The step's name.</param>
    /// <param name="errorName">The recorded error name.</param>
    /// <param name="message">The recorded message.</param>
    /// <param name="attemptErrors">The message of each failed attempt, first to last.</param>
    /// <param name="code">The recorded error code, if any.</param>
    /// <param name="innerException">The original exception, when available in this process.</param>
    public StepFailedException(string stepName, string errorName, string message, IReadOnlyList<string>? attemptErrors = null, string? code = null, Exception? innerException = null)
        : base(errorName, message, code, innerException)
    {
        StepName = stepName;
        AttemptErrors = attemptErrors ?? [];
    }

    /// <summary>The name of the step that failed.</summary>
    public string StepName { get; }

    /// <summary>When the step was retried, each attempt's error in order; otherwise empty.</summary>
    public IReadOnlyList<string> AttemptErrors { get; }
}

/// <summary>
/// An attempt of a step ran longer than its <see cref="StepOptions.Timeout"/>: its token was cancelled and the attempt
/// counted as failed. Inside a workflow the step's recorded error (a <see cref="StepFailedException"/>) carries this
/// type's name, <c>DbosStepTimeoutException</c>, as its <see cref="DbosRecordedException.ErrorName"/>.
/// </summary>
public sealed class DbosStepTimeoutException : TimeoutException
{
    /// <summary>Creates an exception for a step attempt that timed out.</summary>
    /// <param name="stepName">The step.</param>
    /// <param name="timeout">The attempt's timeout.</param>
    /// <param name="message">What happened; default: that the step timed out after <paramref name="timeout"/>.</param>
    public DbosStepTimeoutException(string stepName, TimeSpan timeout, string? message = null)
        : base(message ?? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Step '{stepName}' timed out after {timeout.TotalMilliseconds:0.###} ms."))
    {
        StepName = stepName;
        Timeout = timeout;
    }

    /// <summary>The step that timed out.</summary>
    public string StepName { get; }

    /// <summary>The timeout of each of its attempts.</summary>
    public TimeSpan Timeout { get; }
}

/// <summary>A workflow was cancelled (by a user or because its timeout passed); awaiting its result raises this.</summary>
public sealed class WorkflowCancelledException : OperationCanceledException
{
    /// <summary>Creates an exception for a cancelled workflow.</summary>
    /// <param name="workflowId">The cancelled workflow.</param>
    /// <param name="message">Why it was cancelled.</param>
    public WorkflowCancelledException(string workflowId, string message)
        : base(message)
    {
        WorkflowId = workflowId;
    }

    /// <summary>The ID of the cancelled workflow.</summary>
    public string WorkflowId { get; }
}

/// <summary>
/// A workflow was started more times than its maximum number of recovery attempts without finishing, so it
/// was moved to <c>MAX_RECOVERY_ATTEMPTS_EXCEEDED</c> and will not be recovered again until it is resumed.
/// </summary>
public sealed class MaxRecoveryAttemptsExceededException : DbosException
{
    /// <summary>Creates an exception for a workflow that exceeded its recovery attempts.</summary>
    /// <param name="workflowId">The workflow.</param>
    /// <param name="maxRecoveryAttempts">The limit that was exceeded.</param>
    public MaxRecoveryAttemptsExceededException(string workflowId, int maxRecoveryAttempts)
        : base($"Workflow '{workflowId}' exceeded its maximum of {maxRecoveryAttempts} recovery attempts and will not be recovered again until it is resumed.")
    {
        WorkflowId = workflowId;
        MaxRecoveryAttempts = maxRecoveryAttempts;
    }

    internal MaxRecoveryAttemptsExceededException(string workflowId, string message)
        : base(message)
    {
        WorkflowId = workflowId;
    }

    /// <summary>The workflow that exceeded its recovery attempts.</summary>
    public string WorkflowId { get; }

    /// <summary>The limit that was exceeded (0 when not known to this process).</summary>
    public int MaxRecoveryAttempts { get; }
}
