using Dbos.Execution;

namespace Dbos;

/// <summary>
/// What a running workflow can do durably: run steps, sleep, read the clock and make GUIDs, each recorded so that a
/// re-execution after a crash sees the same results. Passed to every workflow body, and also available as
/// <see cref="Current"/> to code the body calls. Abstract so that workflow code can be tested with a fake.
/// </summary>
public abstract class WorkflowContext
{
    /// <summary>The context of the workflow running on this async flow, or null outside a workflow (and inside a step).</summary>
    public static WorkflowContext? Current => WorkflowExecution.Current;

    /// <summary>The ID of the running workflow.</summary>
    public abstract string WorkflowId { get; }

    /// <summary>The name the running workflow is registered under.</summary>
    public abstract string WorkflowName { get; }

    /// <summary>Signalled when the workflow is cancelled or its timeout passes; steps receive it too.</summary>
    public abstract CancellationToken CancellationToken { get; }

    /// <summary>
    /// Runs <paramref name="step"/> as a checkpointed step named <paramref name="name"/>: once it has finished, its result
    /// (or error) is recorded and a re-execution returns it without running the step again.
    /// </summary>
    /// <typeparam name="T">The step's result type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="step">The step's code; receives a token signalled when the workflow is cancelled.</param>
    /// <param name="options">Retry options. Default: no retries.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>The step's result.</returns>
    /// <exception cref="StepFailedException">The step failed (after its retries); the error is recorded.</exception>
    public abstract Task<T> RunStepAsync<T>(string name, Func<CancellationToken, Task<T>> step, StepOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="step"/>, which has no result, as a checkpointed step.</summary>
    /// <param name="name">The step's name, recorded with its completion.</param>
    /// <param name="step">The step's code; receives a token signalled when the workflow is cancelled.</param>
    /// <param name="options">Retry options. Default: no retries.</param>
    /// <param name="cancellationToken">Stops waiting for the step.</param>
    /// <returns>A task that completes when the step has run (or was found already recorded).</returns>
    public Task RunStepAsync(string name, Func<CancellationToken, Task> step, StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return RunStepAsync<object?>(
            name,
            async ct =>
            {
                await step(ct).ConfigureAwait(false);
                return null;
            },
            options,
            cancellationToken);
    }

    /// <summary>
    /// Sleeps durably: the wake-up time is recorded, so a workflow restarted during the sleep wakes at the original time.
    /// </summary>
    /// <param name="duration">How long to sleep.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes at the wake-up time.</returns>
    public abstract Task SleepAsync(TimeSpan duration, CancellationToken cancellationToken = default);

    /// <summary>The current time, recorded: a re-execution gets the same value.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The recorded time (millisecond precision).</returns>
    public abstract Task<DateTimeOffset> NowAsync(CancellationToken cancellationToken = default);

    /// <summary>A new random GUID, recorded: a re-execution gets the same value.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The recorded GUID.</returns>
    public abstract Task<Guid> NewGuidAsync(CancellationToken cancellationToken = default);
}
