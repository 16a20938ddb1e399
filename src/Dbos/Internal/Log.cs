using Microsoft.Extensions.Logging;

namespace Dbos.Internal;

/// <summary>Every message the library logs, with stable event IDs.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "DBOS launched: application {ApplicationName}, executor {ExecutorId}, version {ApplicationVersion}, system database {Database}")]
    public static partial void Launched(ILogger logger, string applicationName, string executorId, string applicationVersion, string database);

    [LoggerMessage(2, LogLevel.Information, "Recovering {Count} pending workflow(s) of executor {ExecutorId}")]
    public static partial void Recovering(ILogger logger, int count, string executorId);

    [LoggerMessage(3, LogLevel.Warning, "Workflow {WorkflowId} step {StepName} failed (attempt {Attempt} of {MaxAttempts}), retrying in {DelaySeconds} s: {Message}")]
    public static partial void StepRetry(ILogger logger, string workflowId, string stepName, int attempt, int maxAttempts, double delaySeconds, string message);

    [LoggerMessage(4, LogLevel.Warning, "Workflow {WorkflowId} ({WorkflowName}) failed: {ErrorName}: {Message}")]
    public static partial void WorkflowFailed(ILogger logger, string workflowId, string workflowName, string errorName, string message);

    [LoggerMessage(5, LogLevel.Error, "Workflow {WorkflowId} exceeded its maximum of {MaxRecoveryAttempts} recovery attempts and will not be recovered until resumed")]
    public static partial void DeadLettered(ILogger logger, string workflowId, int maxRecoveryAttempts);

    [LoggerMessage(6, LogLevel.Information, "Workflow {WorkflowId} passed its deadline and was cancelled")]
    public static partial void TimedOut(ILogger logger, string workflowId);

    [LoggerMessage(7, LogLevel.Error, "DBOS background task {Task} failed; it will retry")]
    public static partial void BackgroundFailure(ILogger logger, string task, Exception exception);

    [LoggerMessage(8, LogLevel.Information, "Workflow {WorkflowId} stopped without recording an outcome: {Reason}")]
    public static partial void Superseded(ILogger logger, string workflowId, string reason);

    [LoggerMessage(9, LogLevel.Error, "Workflow {WorkflowId} ({WorkflowName}) cannot start: {Message}")]
    public static partial void CannotStart(ILogger logger, string workflowId, string workflowName, string message);

    [LoggerMessage(10, LogLevel.Warning, "Lost the Postgres notification connection; waiters poll until it is back (retrying in {DelaySeconds} s)")]
    public static partial void ListenerLost(ILogger logger, double delaySeconds, Exception exception);

    [LoggerMessage(11, LogLevel.Information, "Workflow {WorkflowId} was {Change} by another process; stopping its execution here")]
    public static partial void ChangedElsewhere(ILogger logger, string workflowId, string change);

    [LoggerMessage(12, LogLevel.Debug, "Step {StepName} ({FunctionId}) of workflow {WorkflowId} finished in {ElapsedMs} ms")]
    public static partial void StepFinished(ILogger logger, string stepName, int functionId, string workflowId, double elapsedMs);

    [LoggerMessage(13, LogLevel.Warning, "Lost the system database {Database}; retrying with backoff until it is back: {Reason}")]
    public static partial void SystemDatabaseLost(ILogger logger, string database, string reason, Exception exception);

    [LoggerMessage(14, LogLevel.Debug, "The system database {Database} is still unreachable (attempt {Attempt}), retrying in {DelaySeconds} s: {Reason}")]
    public static partial void SystemDatabaseStillLost(ILogger logger, string database, int attempt, double delaySeconds, string reason);

    [LoggerMessage(15, LogLevel.Information, "The system database {Database} is reachable again after {Seconds} s; work resumes")]
    public static partial void SystemDatabaseBack(ILogger logger, string database, double seconds);

    [LoggerMessage(16, LogLevel.Warning, "A system database statement was cancelled by the server ({Reason}); retrying in {DelaySeconds} s (attempt {Attempt} of {MaxAttempts})")]
    public static partial void StatementRetry(ILogger logger, string reason, double delaySeconds, int attempt, int maxAttempts);

    [LoggerMessage(17, LogLevel.Information, "Re-established the Postgres notification connection; waiters re-read what they may have missed")]
    public static partial void ListenerBack(ILogger logger);

    [LoggerMessage(18, LogLevel.Error, "The SQLite system database file {Path} was deleted or replaced while the application was running; writes are refused so none is lost silently. Restore the file or restart the application")]
    public static partial void SqliteFileMoved(ILogger logger, string path);

    [LoggerMessage(40, LogLevel.Information, "Executor ID {ExecutorId} is held by another live process, or by one that vanished and whose session has not lapsed yet; waiting up to {Seconds} s for it")]
    public static partial void ExecutorIdBusy(ILogger logger, string executorId, double seconds);

    [LoggerMessage(41, LogLevel.Error, "The liveness connection to {Database} does not keep a server session (a transaction-pooling proxy?): liveness needs a direct connection or session pooling, or other processes may take this one's work")]
    public static partial void LivenessBehindPooler(ILogger logger, string database);

    [LoggerMessage(42, LogLevel.Warning, "Lost this process's liveness ({Reason}); it claims no work and writes no checkpoint until it has it back")]
    public static partial void LivenessLost(ILogger logger, string reason);

    [LoggerMessage(43, LogLevel.Information, "Liveness is back after {Seconds} s; other executors are judged again after a grace period of {GraceSeconds} s")]
    public static partial void LivenessBack(ILogger logger, double seconds, double graceSeconds);

    [LoggerMessage(44, LogLevel.Warning, "Executor {DeadExecutorId} holds no liveness: took over {Count} of its pending workflow(s), now back on their queues")]
    public static partial void TookOver(ILogger logger, string deadExecutorId, int count);

    [LoggerMessage(60, LogLevel.Warning, "{Count} unfinished workflow(s) of application {ApplicationName} wait for application version {WaitingVersion}, which this process (version {ApplicationVersion}) does not run. " +
        "If no process of that version will run again, move its enqueued workflows to the latest version with MoveWorkflowsToVersionAsync or `{Command}`; " +
        "pending ones become enqueued once their executor's work is taken over or resumed")]
    public static partial void WorkOfOtherVersionWaits(ILogger logger, long count, string applicationName, string waitingVersion, string applicationVersion, string command);

    [LoggerMessage(19, LogLevel.Information, "The system database {Database} (schema {Schema}) is being migrated by another process, now at schema version {Version}; waiting for it to finish (up to {BoundSeconds} s without progress)")]
    public static partial void WaitingForMigration(ILogger logger, string database, string schema, int version, double boundSeconds);

    [LoggerMessage(160, LogLevel.Information, "Retention removed {Count} finished workflow(s) and everything recorded for them")]
    public static partial void RetentionCollected(ILogger logger, long count);

    [LoggerMessage(161, LogLevel.Information, "Global timeout cancelled {Count} unfinished workflow(s) created before {Cutoff}")]
    public static partial void GlobalTimeoutCancelled(ILogger logger, int count, DateTimeOffset cutoff);

    [LoggerMessage(120, LogLevel.Warning, "Workflow {WorkflowId} was enqueued on queue '{QueueName}', which no application has registered on this system database " +
        "(this process registers: {RegisteredQueues}); it stays ENQUEUED until a process registers and serves that queue. Said once per queue name")]
    public static partial void UnknownQueue(ILogger logger, string workflowId, string queueName, string registeredQueues);

    [LoggerMessage(121, LogLevel.Information, "Queue '{QueueName}' was deleted from the queues table; this process no longer serves it. Its waiting workflows stay ENQUEUED until a queue of that name is registered again")]
    public static partial void QueueDeleted(ILogger logger, string queueName);

    [LoggerMessage(122, LogLevel.Information, "Queue '{QueueName}' was found in the queues table (registered by another process or a client); this process now serves it " +
        "with the row's limits (concurrency {Concurrency}, worker concurrency {WorkerConcurrency})")]
    public static partial void QueueDiscovered(ILogger logger, string queueName, string concurrency, string workerConcurrency);

    [LoggerMessage(220, LogLevel.Debug, "Workflow {WorkflowId} was claimed by this process in its own enqueue on queue '{QueueName}' (nothing was waiting there)")]
    public static partial void ClaimedOwnEnqueue(ILogger logger, string workflowId, string queueName);

    [LoggerMessage(180, LogLevel.Information, "Dashboard action {Action} on {Target} by {User}")]
    public static partial void DashboardAction(ILogger logger, string action, string target, string user);

    [LoggerMessage(181, LogLevel.Warning, "Dashboard refused action {Action} on {Target}: {Reason}")]
    public static partial void DashboardActionRefused(ILogger logger, string action, string target, string reason);
}
