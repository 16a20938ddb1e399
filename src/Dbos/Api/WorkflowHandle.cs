using Dbos.Execution;

namespace Dbos;

/// <summary>A reference to a workflow, in this process or any other, by its ID.</summary>
public class WorkflowHandle
{
    internal WorkflowHandle(IWorkflowResults source, string workflowId)
    {
        Source = source;
        WorkflowId = workflowId;
    }

    /// <summary>The workflow's ID.</summary>
    public string WorkflowId { get; }

    internal IWorkflowResults Source { get; }

    /// <summary>The execution the start that made this handle launched in this process, if any: its outcome needs no read.</summary>
    internal RunningWorkflow? StartedHere { get; init; }

    /// <summary>Reads the workflow's current status.</summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The status, or null if the workflow no longer exists.</returns>
    public Task<WorkflowStatus?> GetStatusAsync(CancellationToken cancellationToken = default) =>
        Source.GetStatusAsync(WorkflowId, cancellationToken);

    /// <summary>
    /// Waits for the workflow to finish and returns its result as a <typeparamref name="T"/>. Inside a workflow the wait
    /// is recorded, so a re-execution gets the same result without waiting again.
    /// </summary>
    /// <typeparam name="T">The result's type.</typeparam>
    /// <param name="cancellationToken">Stops waiting (the workflow keeps running).</param>
    /// <returns>The workflow's result.</returns>
    /// <exception cref="WorkflowFailedException">The workflow ended with an error.</exception>
    /// <exception cref="WorkflowCancelledException">The workflow was cancelled or timed out.</exception>
    /// <exception cref="MaxRecoveryAttemptsExceededException">The workflow used up its recovery attempts.</exception>
    public Task<T> GetResultAsync<T>(CancellationToken cancellationToken = default) =>
        StartedHere is { } run && Source is WorkflowEngine engine
            ? engine.GetResultAsync<T>(WorkflowId, run, cancellationToken)
            : Source.GetResultAsync<T>(WorkflowId, cancellationToken);
}

/// <summary>A reference to a workflow whose result is a <typeparamref name="TResult"/>.</summary>
/// <typeparam name="TResult">The workflow's result type.</typeparam>
public sealed class WorkflowHandle<TResult> : WorkflowHandle
{
    internal WorkflowHandle(IWorkflowResults source, string workflowId)
        : base(source, workflowId)
    {
    }

    /// <summary>Waits for the workflow to finish and returns its result.</summary>
    /// <param name="cancellationToken">Stops waiting (the workflow keeps running).</param>
    /// <returns>The workflow's result.</returns>
    /// <exception cref="WorkflowFailedException">The workflow ended with an error.</exception>
    /// <exception cref="WorkflowCancelledException">The workflow was cancelled or timed out.</exception>
    /// <exception cref="MaxRecoveryAttemptsExceededException">The workflow used up its recovery attempts.</exception>
    public Task<TResult> GetResultAsync(CancellationToken cancellationToken = default) => GetResultAsync<TResult>(cancellationToken);
}
