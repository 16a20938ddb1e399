using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using Dbos.Internal;
using Dbos.Serialization;
using Dbos.SystemDatabase;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Dbos.Execution;

/// <summary>This execution no longer owns its workflow (another execution took it over, or the app is shutting down): stop without recording anything.</summary>
internal sealed class ExecutionSupersededException(string workflowId, string reason)
    : Exception($"Execution of workflow '{workflowId}' stopped: {reason}.");

/// <summary>
/// One execution of one workflow: the durable operations of <see cref="WorkflowContext"/>. Operations take function
/// IDs 0, 1, 2… in call order; on a re-execution, an operation whose ID is already recorded returns the recorded
/// outcome (after checking it has the same name) instead of running again.
/// </summary>
internal sealed class WorkflowExecution : WorkflowContext
{
    // One async-local for both states (in the workflow's body, or in one of its steps), so that entering a step
    // changes the execution context once.
    private static readonly AsyncLocal<object?> Ambient = new();

    private readonly WorkflowEngine engine;
    private readonly IReadOnlyDictionary<int, OperationRow>? recorded;
    private readonly CancellationTokenSource cancellation = new();
    private TaskCompletionSource? stopped; // made when first waited for: most executions are never waited on this way
    private int nextFunctionId = -1;
    private string? stopReason;
    private volatile bool superseded;
    private volatile bool draining;
    private int stepsRunning;
    private AsyncServiceScope? scope;
    private ILogger? logger;
    private InStep? inStep;

    public WorkflowExecution(
        WorkflowEngine engine,
        WorkflowRegistration registration,
        string workflowId,
        string ownerXid,
        DateTimeOffset? deadline,
        IReadOnlyDictionary<int, OperationRow>? recorded)
    {
        this.engine = engine;
        Registration = registration;
        WorkflowId = workflowId;
        OwnerXid = ownerXid;
        Deadline = deadline;
        this.recorded = recorded is { Count: > 0 } ? recorded : null;
        IsFirstExecution = recorded is null;
    }

    /// <summary>
    /// Whether this is the workflow's first execution (started here, not claimed from a queue): nothing can have been
    /// recorded for it yet, in the system database or in an application database.
    /// </summary>
    public bool IsFirstExecution { get; }

    /// <summary>The workflow running on this async flow (null inside steps and outside workflows).</summary>
    public static new WorkflowExecution? Current => Ambient.Value as WorkflowExecution;

    /// <summary>The ID of the workflow running on this async flow, also inside its steps.</summary>
    public static string? CurrentWorkflowId => Ambient.Value switch
    {
        WorkflowExecution execution => execution.WorkflowId,
        InStep step => step.Execution.WorkflowId,
        _ => null,
    };

    public WorkflowRegistration Registration { get; }

    public override string WorkflowId { get; }

    public override string WorkflowName => Registration.Name;

    public override CancellationToken CancellationToken => cancellation.Token;

    public override IServiceProvider Services
    {
        get
        {
            if (engine.Services is not { } services)
            {
                return EmptyServiceProvider.Instance;
            }

            scope ??= services.CreateAsyncScope();
            return scope.Value.ServiceProvider;
        }
    }

    /// <summary>Replaying while the next operation's outcome is already recorded.</summary>
    public override bool IsReplaying => recorded is not null && recorded.ContainsKey(Volatile.Read(ref nextFunctionId) + 1);

    public override ILogger Logger => logger ??= new ReplaySafeLogger(engine.LoggerFactory.CreateLogger("Dbos.Workflows." + Registration.Name), this);

    /// <summary>The token that proves this execution still owns the workflow's row.</summary>
    public string OwnerXid { get; }

    /// <summary>The queue this execution was claimed from, whose slot it frees when it ends.</summary>
    public QueueState? Queue { get; init; }

    /// <summary>The queue partition this execution was claimed from.</summary>
    public string? PartitionKey { get; init; }

    /// <summary>The trace context stored with a claimed workflow, which its span continues.</summary>
    public System.Diagnostics.ActivityContext TraceParent { get; init; }

    /// <summary>The format the workflow's status row names (set by whoever created it); its output is written in it.</summary>
    public string? StoredFormat { get; init; }

    /// <inheritdoc/>
    public override string? AuthenticatedUser => AuthenticatedUserStored is { Length: > 0 } user ? user : null;

    /// <inheritdoc/>
    public override IReadOnlyList<string> AuthenticatedRoles => AuthenticatedRolesStored;

    /// <summary>The status row's <c>authenticated_user</c> (empty for none), which children inherit.</summary>
    public string AuthenticatedUserStored { get; init; } = string.Empty;

    /// <summary>The status row's roles, decoded.</summary>
    public IReadOnlyList<string> AuthenticatedRolesStored { get; init; } = [];

    /// <summary>When the workflow is cancelled for taking too long, if it has a timeout.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>Whether this execution was told to stop (cancelled, timed out, superseded, shutting down).</summary>
    public bool IsStopped => cancellation.IsCancellationRequested;

    /// <summary>Completes when the execution is told to stop; its outcome is then whatever the database says.</summary>
    public Task Stopped
    {
        get
        {
            var signal = Volatile.Read(ref stopped);
            if (signal is null)
            {
                // Both sides publish with a full fence, then look at the other's field: one of them completes it.
                Interlocked.CompareExchange(ref stopped, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);
                signal = stopped;
                if (Volatile.Read(ref stopReason) is not null)
                {
                    signal.TrySetResult();
                }
            }

            return signal.Task;
        }
    }

    /// <summary>Why it was told to stop, if it was.</summary>
    public string? StopReason => Volatile.Read(ref stopReason);

    /// <summary>Whether it stopped because it no longer owns the workflow, rather than because the workflow was cancelled.</summary>
    public bool IsSuperseded => superseded;

    public static void Enter(WorkflowExecution execution) => Ambient.Value = execution;

    /// <summary>The ambient state inside a step: no workflow context to use, but the workflow's ID is known.</summary>
    private sealed record InStep(WorkflowExecution Execution);

    /// <summary>
    /// This execution's token joined with a caller's. A linked source (disposed by the caller) only when the caller's
    /// token can be cancelled: most calls pass none, and a waiting workflow should not carry one it does not need.
    /// </summary>
    private CancellationTokenSource? Link(CancellationToken callerToken, out CancellationToken token)
    {
        if (!callerToken.CanBeCanceled)
        {
            token = cancellation.Token;
            return null;
        }

        var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellation.Token, callerToken);
        token = linked.Token;
        return linked;
    }

    /// <summary>Stops the execution because the workflow was cancelled (its row already says so).</summary>
    public void Cancel(string reason) => Stop(reason, supersede: false);

    /// <summary>Stops the execution without recording anything: the workflow stays as it is in the database.</summary>
    public void Abandon(string reason) => Stop(reason, supersede: true);

    private void Stop(string reason, bool supersede)
    {
        superseded |= supersede; // before the reason is published, so whoever sees the reason sees this too
        Interlocked.CompareExchange(ref stopReason, reason, null);
        Volatile.Read(ref stopped)?.TrySetResult();
        try
        {
            cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The execution already finished.
        }
    }

    /// <summary>
    /// Stops the execution as soon as no step is running: at once if it is waiting (a sleep, a message), else when its
    /// running steps have finished and been recorded. Used by a graceful shutdown; the workflow stays pending.
    /// </summary>
    public void Drain()
    {
        draining = true;
        if (Volatile.Read(ref stepsRunning) == 0)
        {
            Abandon("the application is shutting down");
        }
    }

    public async ValueTask DisposeAsync()
    {
        cancellation.Dispose();
        if (scope is { } s)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }
    }

    private Exception StoppedException() => superseded
        ? new ExecutionSupersededException(WorkflowId, StopReason ?? "stopped")
        : new WorkflowCancelledException(WorkflowId, $"Workflow '{WorkflowId}' was {StopReason ?? "cancelled"}.");

    private void ThrowIfStopped()
    {
        if (draining && !cancellation.IsCancellationRequested)
        {
            Abandon("the application is shutting down");
        }

        if (cancellation.IsCancellationRequested)
        {
            throw StoppedException();
        }
    }

    private int NextFunctionId() => Interlocked.Increment(ref nextFunctionId);

    private long NowMs() => engine.Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The recorded outcome at <paramref name="functionId"/>, if any, after checking it was recorded under the same name.</summary>
    private OperationRow? Replay(int functionId, string name)
    {
        if (recorded is null || !recorded.TryGetValue(functionId, out var row))
        {
            return null;
        }

        if (!string.Equals(row.Name, name, StringComparison.Ordinal))
        {
            throw new NonDeterministicWorkflowException(
                $"Workflow '{WorkflowId}' recorded operation {functionId} as '{row.Name}', but its re-execution called '{name}' at that position. " +
                (row.Name.StartsWith(OperationNames.PatchPrefix, StringComparison.Ordinal)
                    ? "Check that your patches are backward compatible, and that code without a patch is not recovering workflows that recorded it."
                    : "The workflow's code is not deterministic, or it changed while the workflow was running."));
        }

        return row;
    }

    /// <summary>Records an operation's outcome; if this execution no longer owns the workflow, stops it.</summary>
    private async Task RecordAsync(int functionId, string name, string? output, string? error, string? childWorkflowId, long startedAt, long? completedAt, string? serialization)
    {
        if (await WriteRecordAsync(functionId, name, output, error, childWorkflowId, startedAt, completedAt, serialization).ConfigureAwait(false) != 1
            && !await LandedEarlierAsync(functionId, name, output, error).ConfigureAwait(false))
        {
            await StopForLostOwnershipAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Writes an operation's record; 1 when written, 0 when this execution no longer owns the workflow.</summary>
    private Task<int> WriteRecordAsync(int functionId, string name, string? output, string? error, string? childWorkflowId, long startedAt, long? completedAt, string? serialization) =>
        engine.Watch.IsLive
            ? engine.Database.RecordOperationAsync(
                WorkflowId, functionId, name, output, error, childWorkflowId, startedAt, completedAt ?? NowMs(), serialization, OwnerXid, CancellationToken.None)
            : WriteRecordWhenLiveAsync(functionId, name, output, error, childWorkflowId, startedAt, completedAt, serialization);

    /// <summary>Without liveness another process may own this workflow by now: the write waits for it, then the ownership check decides.</summary>
    private async Task<int> WriteRecordWhenLiveAsync(int functionId, string name, string? output, string? error, string? childWorkflowId, long startedAt, long? completedAt, string? serialization)
    {
        try
        {
            await engine.Watch.WaitLiveAsync(cancellation.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Stopped meanwhile (taken over, cancelled, shutting down): there is nothing left to record here.
            throw StoppedException();
        }

        return await WriteRecordAsync(functionId, name, output, error, childWorkflowId, startedAt, completedAt, serialization).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether a refused record is this execution's own, written by an earlier attempt of the same statement: sent again
    /// after the connection was lost, the first attempt may have committed before the reply was lost. It is, when the
    /// recorded operation is this one and the workflow is still this execution's to record (only the owner writes).
    /// </summary>
    private async Task<bool> LandedEarlierAsync(int functionId, string name, string? output, string? error)
    {
        var existing = await engine.Database.GetOperationAsync(WorkflowId, functionId, CancellationToken.None).ConfigureAwait(false);
        if (existing is null || existing.Name != name || existing.Output != output || existing.Error != error)
        {
            return false;
        }

        var ownership = await engine.Database.GetOwnershipAsync([WorkflowId], CancellationToken.None).ConfigureAwait(false);
        return ownership is [var row] && row.Status == StatusNames.Pending && row.OwnerXid == OwnerXid;
    }

    /// <summary>A write was refused: find out whether the workflow was cancelled or taken over, and stop accordingly.</summary>
    private async Task StopForLostOwnershipAsync()
    {
        var row = await engine.Database.GetOutcomeAsync(WorkflowId, CancellationToken.None).ConfigureAwait(false);
        if (row?.Status == StatusNames.Cancelled)
        {
            Cancel("cancelled");
        }
        else
        {
            Abandon("another execution recorded this workflow's progress first; it adopts that execution's outcome");
        }

        throw StoppedException();
    }

    public override async Task<T> RunStepAsync<T>(string name, Func<CancellationToken, Task<T>> step, StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        StorableText.Check(name, "The step name", nameof(name));
        ArgumentNullException.ThrowIfNull(step);
        options ??= StepOptions.Default;
        options.Validate(name);
        ThrowIfStopped();

        var functionId = NextFunctionId();
        if (Replay(functionId, name) is { } row)
        {
            return ReplayStep<T>(row, name);
        }

        var startedAt = NowMs();
        using var span = StartStepSpan(name, functionId);
        using var logScope = engine.Logger.BeginScope(new StepLogScope(name, functionId));
        var timestamp = engine.Time.GetTimestamp();
        using var linked = Link(cancellationToken, out var linkedToken);
        List<Exception>? failures = null;
        // Only a step with a timeout can leave an attempt running: the others allocate nothing for it.
        var abandoned = options.Timeout is null ? null : new StrongBox<Task?>();
        for (var attempt = 1; ; attempt++)
        {
            T result;
            try
            {
                result = options.Timeout is { } timeout
                    ? await InvokeWithTimeoutAsync(name, step, timeout, abandoned!, linkedToken).ConfigureAwait(false)
                    : await InvokeOutsideWorkflowAsync(step, linkedToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                ThrowIfStopped();
                cancellationToken.ThrowIfCancellationRequested();
                (failures ??= []).Add(ex);
                if (attempt >= options.MaxAttempts || !IsRetryable(options, ex, failures))
                {
                    break;
                }

                var delay = options.DelayAfter(attempt);
                var wait = Task.Delay(delay, engine.Time, linkedToken);
                Log.StepRetry(engine.Logger, WorkflowId, name, attempt, options.MaxAttempts, delay.TotalSeconds, ex.Message);
                try
                {
                    await wait.ConfigureAwait(false);
                    if (abandoned?.Value is { IsCompleted: false } running
                        && !await ReturnedWithinAsync(running, options.Timeout!.Value, linkedToken).ConfigureAwait(false))
                    {
                        linkedToken.ThrowIfCancellationRequested();
                        // Starting another attempt now would run the step's code twice at once: fail instead.
                        failures[^1] = new DbosStepTimeoutException(
                            name,
                            options.Timeout.Value,
                            string.Create(
                                CultureInfo.InvariantCulture,
                                $"Step '{name}' timed out after {options.Timeout.Value.TotalMilliseconds:0.###} ms, and attempt {attempt} ignored its cancellation and was still running when attempt {attempt + 1} was due; the step is not retried while it runs."));
                        break;
                    }
                }
                catch (OperationCanceledException)
                {
                    ThrowIfStopped();
                    throw;
                }

                if (abandoned is not null)
                {
                    abandoned.Value = null;
                }

                continue;
            }

            var output = engine.Codec.Encode(result, typeof(T), $"result of step '{name}' in workflow '{WorkflowId}'");
            if (await WriteRecordAsync(functionId, name, output, null, null, startedAt, null, engine.Codec.Format).ConfigureAwait(false) != 1
                && !await LandedEarlierAsync(functionId, name, output, null).ConfigureAwait(false))
            {
                await StopForLostOwnershipAsync().ConfigureAwait(false);
            }

            StepEnded(span, name, functionId, timestamp, null);
            return result;
        }

        var failure = StepFailure(name, failures!);
        await RecordAsync(functionId, name, null, ValueCodec.EncodeError(failure), null, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
        StepEnded(span, name, functionId, timestamp, failure);
        throw failure;
    }

    /// <summary>The span of a step that runs (a recorded step that a re-execution skips has none).</summary>
    private Activity? StartStepSpan(string name, int functionId)
    {
        var activity = Telemetry.Source.StartActivity($"step {name}");
        activity?.SetTag("dbos.step.name", name).SetTag("dbos.step.function_id", functionId).SetTag("dbos.workflow.id", WorkflowId);
        return activity;
    }

    /// <summary>Reports a finished (and recorded) step: its span's status, its duration, a debug log line.</summary>
    private void StepEnded(Activity? span, string name, int functionId, long timestamp, StepFailedException? failure)
    {
        var elapsed = engine.Time.GetElapsedTime(timestamp);
        if (failure is null)
        {
            Telemetry.StepDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("dbos.step.name", name));
        }
        else
        {
            Telemetry.RecordError(span, failure, failure.ErrorName);
            Telemetry.StepDuration.Record(
                elapsed.TotalSeconds, new KeyValuePair<string, object?>("dbos.step.name", name), new KeyValuePair<string, object?>("error.type", failure.ErrorName));
        }

        Log.StepFinished(engine.Logger, name, functionId, WorkflowId, elapsed.TotalMilliseconds);
    }

    private static StepFailedException StepFailure(string name, List<Exception> failures)
    {
        var last = failures[^1];
        var lastName = ErrorName(last);
        if (failures.Count == 1)
        {
            return new StepFailedException(name, lastName, last.Message, null, (last as DbosRecordedException)?.ErrorCode, last);
        }

        var attempts = failures.Select(f => $"{ErrorName(f)}: {f.Message}").ToList();
        var message = $"Step '{name}' failed after {failures.Count} attempts. Last error: {last.Message}. Errors: " +
            string.Join("; ", attempts.Select((a, i) => $"[{i + 1}] {a}"));
        return new StepFailedException(name, lastName, message, attempts, (last as DbosRecordedException)?.ErrorCode, last);
    }

    /// <summary>
    /// Runs an operation whose outcome it records, as a step named <paramref name="name"/>: a datasource transaction.
    /// <paramref name="run"/> gets the function ID and codec (to checkpoint in the application database too), whether an
    /// earlier execution may have checkpointed it already, and returns the value with its encoding. Its errors are recorded and rethrown as <see cref="StepFailedException"/>.
    /// </summary>
    internal async Task<T> RunRecordedAsync<T>(string name, Func<int, ValueCodec, bool, CancellationToken, Task<(T Value, string? Encoded)>> run, CancellationToken cancellationToken)
    {
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, name) is { } row)
        {
            return ReplayStep<T>(row, name);
        }

        var startedAt = NowMs();
        using var span = StartStepSpan(name, functionId);
        using var logScope = engine.Logger.BeginScope(new StepLogScope(name, functionId));
        var timestamp = engine.Time.GetTimestamp();
        using var linked = Link(cancellationToken, out var linkedToken);
        (T Value, string? Encoded) result;
        try
        {
            result = await InvokeOutsideWorkflowAsync(ct => run(functionId, engine.Codec, !IsFirstExecution, ct), linkedToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not DbosDatabaseException and not ObjectDisposedException)
        {
            ThrowIfStopped();
            cancellationToken.ThrowIfCancellationRequested();
            var failure = StepFailure(name, [ex]);
            await RecordAsync(functionId, name, null, ValueCodec.EncodeError(failure), null, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
            StepEnded(span, name, functionId, timestamp, failure);
            throw failure;
        }

        var output = result.Encoded ?? engine.Codec.Encode(result.Value, typeof(T), $"result of transaction '{name}' in workflow '{WorkflowId}'");
        await RecordAsync(functionId, name, output, null, null, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
        StepEnded(span, name, functionId, timestamp, null);
        return result.Value;
    }

    internal static string ErrorName(Exception ex) => ex is DbosRecordedException recorded ? recorded.ErrorName : ex.GetType().Name;

    private T ReplayStep<T>(OperationRow row, string name)
    {
        if (row.Error is not null)
        {
            var error = ValueCodec.DecodeError(row.Error);
            throw new StepFailedException(name, error.Name, error.Message, error.AttemptErrors, error.Code);
        }

        return (T)engine.Codec.Decode(row.Output, row.Serialization, typeof(T), $"recorded result of step '{name}' in workflow '{WorkflowId}'")!;
    }

    /// <summary>
    /// Whether a failed attempt may be retried per <see cref="StepOptions.NonRetryableExceptionTypes"/> and
    /// <see cref="StepOptions.ShouldRetry"/>. A predicate that throws ends the retries, and its exception becomes the
    /// step's last error.
    /// </summary>
    private static bool IsRetryable(StepOptions options, Exception exception, List<Exception> failures)
    {
        try
        {
            return options.IsRetryable(exception);
        }
        catch (Exception ex)
        {
            failures[^1] = ex;
            return false;
        }
    }

    /// <summary>
    /// Runs one attempt of a step with a timeout. The body runs on the thread pool, so that a body that blocks can be
    /// abandoned too. When the timeout passes, the attempt's token is cancelled and the attempt fails with
    /// <see cref="DbosStepTimeoutException"/> without waiting for the body: its task is left in
    /// <paramref name="abandoned"/>, so that the next attempt starts only once it has returned. When
    /// <paramref name="cancellationToken"/> fires (the workflow is stopped), the body is abandoned the same way.
    /// </summary>
    private async Task<T> InvokeWithTimeoutAsync<T>(string name, Func<CancellationToken, Task<T>> step, TimeSpan timeout, StrongBox<Task?> abandoned, CancellationToken cancellationToken)
    {
        var attemptSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var attemptToken = attemptSource.Token;
        var body = Task.Run(() => InvokeOutsideWorkflowAsync(step, attemptToken), CancellationToken.None);
        if (await ReturnedWithinAsync(body, timeout, cancellationToken).ConfigureAwait(false))
        {
            attemptSource.Dispose();
            return await body.ConfigureAwait(false);
        }

        // Timed out (or stopped): cancel the body's token and leave it running, its outcome observed and discarded.
        await attemptSource.CancelAsync().ConfigureAwait(false);
        _ = body.ContinueWith(
            static (task, source) =>
            {
                _ = task.Exception;
                ((CancellationTokenSource)source!).Dispose();
            },
            attemptSource,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        abandoned.Value = body;
        cancellationToken.ThrowIfCancellationRequested();
        throw new DbosStepTimeoutException(name, timeout);
    }

    /// <summary>
    /// Waits for a step's body to return, at most <paramref name="limit"/>: whether it did. False too when
    /// <paramref name="cancellationToken"/> fires first; the caller tells the two apart.
    /// </summary>
    private async Task<bool> ReturnedWithinAsync(Task body, TimeSpan limit, CancellationToken cancellationToken)
    {
        using var timerSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var timer = Task.Delay(limit, engine.Time, timerSource.Token);
        if (await Task.WhenAny(body, timer).ConfigureAwait(false) == body)
        {
            await timerSource.CancelAsync().ConfigureAwait(false);
            return true;
        }

        return false;
    }

    /// <summary>Runs code outside the workflow's ambient context, so steps called from it run plainly.</summary>
    private async Task<T> InvokeOutsideWorkflowAsync<T>(Func<CancellationToken, Task<T>> function, CancellationToken cancellationToken)
    {
        Ambient.Value = inStep ??= new InStep(this);
        Interlocked.Increment(ref stepsRunning);
        try
        {
            return await function(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref stepsRunning);
        }
    }

    public override async Task SleepAsync(TimeSpan duration, CancellationToken cancellationToken = default)
    {
        ThrowIfStopped();
        var functionId = NextFunctionId();
        long wakeAt;
        if (Replay(functionId, OperationNames.Sleep) is { } row)
        {
            wakeAt = long.Parse(row.Output ?? "0", NumberStyles.Integer, CultureInfo.InvariantCulture);
        }
        else
        {
            if (duration <= TimeSpan.Zero)
            {
                return;
            }

            var now = NowMs();
            wakeAt = now + (long)Math.Ceiling(duration.TotalMilliseconds);
            await RecordAsync(functionId, OperationNames.Sleep, wakeAt.ToString(CultureInfo.InvariantCulture), null, null, now, wakeAt, PortableJsonSerializer.FormatName).ConfigureAwait(false);
        }

        var remaining = wakeAt - NowMs();
        if (remaining > 0)
        {
            using var linked = Link(cancellationToken, out var linkedToken);
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(remaining), engine.Time, linkedToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                ThrowIfStopped();
                throw;
            }
        }
    }

    public override async Task<DateTimeOffset> NowAsync(CancellationToken cancellationToken = default)
    {
        var text = await RecordValueAsync(OperationNames.Now, () => NowMs().ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        return DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture));
    }

    public override async Task<Guid> NewGuidAsync(CancellationToken cancellationToken = default)
    {
        var text = await RecordValueAsync(OperationNames.RandomUuid, () => "\"" + Guid.NewGuid().ToString() + "\"").ConfigureAwait(false);
        return Guid.Parse(text.AsSpan().Trim('"'));
    }

    /// <summary>Records a value computed now (as portable JSON text), or returns the one recorded before.</summary>
    private async Task<string> RecordValueAsync(string name, Func<string> produce)
    {
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, name) is { } row)
        {
            return row.Output ?? throw new DbosSerializationException($"Operation {functionId} ('{name}') of workflow '{WorkflowId}' has no recorded value.");
        }

        var startedAt = NowMs();
        var value = produce();
        await RecordAsync(functionId, name, value, null, null, startedAt, null, PortableJsonSerializer.FormatName).ConfigureAwait(false);
        return value;
    }

    // Patches decide as the TypeScript SDK's checkPatch does, from what is recorded at the next function ID.
    public override async Task<bool> PatchAsync(string patchName, CancellationToken cancellationToken = default)
    {
        var marker = PatchMarker(patchName, nameof(PatchAsync));
        ThrowIfStopped();
        var functionId = Volatile.Read(ref nextFunctionId) + 1;
        if (recorded is not null && recorded.TryGetValue(functionId, out var row))
        {
            // The execution's marker: the patched branch, past the marker. Another operation: the execution predates
            // the patch, and that operation is the old branch's, at this same position.
            if (!string.Equals(row.Name, marker, StringComparison.Ordinal))
            {
                return false;
            }

            NextFunctionId();
            return true;
        }

        // Nothing recorded here: a new execution (or one that reached this point under patched code) takes the patch.
        NextFunctionId();
        var now = NowMs();
        await RecordAsync(functionId, marker, null, null, null, now, now, null).ConfigureAwait(false);
        return true;
    }

    public override Task<bool> DeprecatePatchAsync(string patchName, CancellationToken cancellationToken = default)
    {
        var marker = PatchMarker(patchName, nameof(DeprecatePatchAsync));
        ThrowIfStopped();

        // Records nothing; only skips the patch's marker where an execution recorded it.
        if (recorded is not null && recorded.TryGetValue(Volatile.Read(ref nextFunctionId) + 1, out var row)
            && string.Equals(row.Name, marker, StringComparison.Ordinal))
        {
            NextFunctionId();
        }

        return Task.FromResult(true);
    }

    private string PatchMarker(string patchName, string operation)
    {
        ArgumentException.ThrowIfNullOrEmpty(patchName);
        StorableText.Check(patchName, "The patch name", nameof(patchName));
        if (!engine.PatchingEnabled)
        {
            throw new InvalidOperationException($"{operation} needs patching to be enabled: set DbosConfig.EnablePatching (workflow '{WorkflowId}').");
        }

        return OperationNames.PatchPrefix + patchName;
    }

    /// <summary>Starts a child workflow, recorded as this workflow's next operation. Returns the child's ID.</summary>
    public Task<string> StartChildAsync(WorkflowRegistration child, object? input, StartOptions? options, CancellationToken cancellationToken) =>
        StartChildAtAsync(NextFunctionId(), child, input, options, cancellationToken);

    private async Task<string> StartChildAtAsync(int functionId, WorkflowRegistration child, object? input, StartOptions? options, CancellationToken cancellationToken)
    {
        ThrowIfStopped();
        if (Replay(functionId, child.Name) is { } row)
        {
            if (row.Error is not null)
            {
                var error = ValueCodec.DecodeError(row.Error);
                throw new WorkflowFailedException(row.ChildWorkflowId ?? string.Empty, error.Name, error.Message, error.Code);
            }

            return row.ChildWorkflowId ?? throw new NonDeterministicWorkflowException(
                $"Workflow '{WorkflowId}' recorded operation {functionId} as '{child.Name}' without a child workflow ID.");
        }

        var childId = options?.WorkflowId ?? $"{WorkflowId}-{functionId.ToString(CultureInfo.InvariantCulture)}";
        while (true)
        {
            (StartResult? Started, Action? Launch) start;
            try
            {
                start = await engine.StartChildAsync(this, functionId, child, childId, input, options, cancellationToken).ConfigureAwait(false);
            }
            catch (WorkflowDeduplicatedException) when (options?.DeduplicationPolicy == DeduplicationPolicy.ReturnExisting)
            {
                // As the TypeScript SDK: the holder is recorded as this operation's child, so a replay returns it again.
                var startedAt = NowMs();
                if (await engine.Database.GetDeduplicatedWorkflowAsync(options.Queue!, options.DeduplicationId!, cancellationToken).ConfigureAwait(false) is { } holder)
                {
                    await RecordAsync(functionId, child.Name, null, null, holder, startedAt, NowMs(), null).ConfigureAwait(false);
                    return holder;
                }

                continue;
            }

            if (start.Started is null)
            {
                await StopForLostOwnershipAsync().ConfigureAwait(false);
            }

            start.Launch?.Invoke();
            return childId;
        }
    }

    /// <summary>Waits for another workflow's result, recorded as this workflow's next operation.</summary>
    public Task<T> AwaitResultAsync<T>(string workflowId, CancellationToken cancellationToken) =>
        AwaitResultAtAsync<T>(NextFunctionId(), workflowId, cancellationToken);

    private async Task<T> AwaitResultAtAsync<T>(int functionId, string workflowId, CancellationToken cancellationToken)
    {
        ThrowIfStopped();
        if (Replay(functionId, OperationNames.GetResult) is { } row)
        {
            if (row.Error is not null)
            {
                throw AwaitedError(workflowId, ValueCodec.DecodeError(row.Error));
            }

            return (T)engine.Codec.Decode(row.Output, row.Serialization, typeof(T), $"recorded result of workflow '{workflowId}'")!;
        }

        var startedAt = NowMs();
        using var linked = Link(cancellationToken, out var linkedToken);
        T result;
        try
        {
            result = await engine.External.AwaitOutcomeAsync<T>(workflowId, linkedToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WorkflowFailedException or MaxRecoveryAttemptsExceededException or WorkflowCancelledException)
        {
            await RecordAsync(functionId, OperationNames.GetResult, null, ValueCodec.EncodeError(ex), workflowId, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
            throw;
        }
        catch (OperationCanceledException)
        {
            ThrowIfStopped();
            throw;
        }

        var output = engine.Codec.Encode(result, typeof(T), $"result of workflow '{workflowId}'");
        await RecordAsync(functionId, OperationNames.GetResult, output, null, workflowId, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
        return result;
    }

    private static Exception AwaitedError(string workflowId, RecordedError error) => error.Name switch
    {
        nameof(WorkflowCancelledException) => new WorkflowCancelledException(workflowId, error.Message),
        nameof(MaxRecoveryAttemptsExceededException) => new MaxRecoveryAttemptsExceededException(workflowId, error.Message),
        _ => new WorkflowFailedException(workflowId, error.Name, error.Message, error.Code),
    };

    // ---- Messages, events and streams ----

    private static readonly object Found = new();

    private OperationRecord Operation(int functionId, string name, long startedAt, string? serialization = null) =>
        new(WorkflowId, functionId, name, OwnerXid, startedAt, NowMs(), Serialization: serialization);

    /// <summary>
    /// The deadline of a wait, recorded at <paramref name="timerId"/> as other DBOS implementations record it (a
    /// <c>DBOS.sleep</c> row holding the deadline), so a re-execution waits only for what is left.
    /// </summary>
    private async Task<DateTimeOffset> DurableDeadlineAsync(int timerId, TimeSpan? timeout, long startedAt)
    {
        if (Replay(timerId, OperationNames.Sleep) is { } row)
        {
            return DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(row.Output ?? "0", NumberStyles.Integer, CultureInfo.InvariantCulture));
        }

        var wait = timeout ?? DefaultWaitTimeout;
        if (wait == Timeout.InfiniteTimeSpan)
        {
            return DateTimeOffset.MaxValue;
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(wait, TimeSpan.Zero, nameof(timeout));
        var deadline = wait >= DateTimeOffset.MaxValue - DateTimeOffset.FromUnixTimeMilliseconds(startedAt)
            ? DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()
            : startedAt + (long)Math.Ceiling(wait.TotalMilliseconds);
        if (wait > TimeSpan.Zero)
        {
            await RecordAsync(timerId, OperationNames.Sleep, deadline.ToString(CultureInfo.InvariantCulture), null, null, startedAt, startedAt, PortableJsonSerializer.FormatName).ConfigureAwait(false);
        }

        return DateTimeOffset.FromUnixTimeMilliseconds(deadline);
    }

    /// <summary>Waits in a way that a cancellation of the workflow ends with <see cref="WorkflowCancelledException"/>.</summary>
    private async Task<TValue> WaitStoppableAsync<TValue>(Func<CancellationToken, Task<TValue>> wait, CancellationToken cancellationToken)
    {
        using var linked = Link(cancellationToken, out var linkedToken);
        try
        {
            return await wait(linkedToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ThrowIfStopped();
            throw;
        }
    }

    private T? DecodeOrDefault<T>(string? text, string? serialization, string what) =>
        text is null ? default : (T?)engine.Codec.Decode(text, serialization, typeof(T), what);

    public override async Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(destinationWorkflowId);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, OperationNames.Send) is { } row)
        {
            if (row.Error is not null)
            {
                throw new WorkflowNotFoundException(ValueCodec.DecodeError(row.Error).Message);
            }

            return;
        }

        var startedAt = NowMs();
        var text = engine.Codec.Encode(message, typeof(T), $"message to workflow '{destinationWorkflowId}'");
        var outcome = await engine.Database.SendFromWorkflowAsync(
            Operation(functionId, OperationNames.Send, startedAt, engine.Codec.Format), destinationWorkflowId, ExternalAccess.Topic(topic), text, engine.Codec.Format, cancellationToken).ConfigureAwait(false);
        switch (outcome)
        {
            case SendOutcome.NotOwner:
                await StopForLostOwnershipAsync().ConfigureAwait(false);
                break;
            case SendOutcome.NoSuchDestination:
                var error = new WorkflowNotFoundException($"Cannot send to workflow '{destinationWorkflowId}': no workflow has that ID.");
                await RecordAsync(functionId, OperationNames.Send, null, ValueCodec.EncodeError(error), null, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
                throw error;
        }
    }

    public override async Task SendManyAsync<T>(IReadOnlyList<string> destinationWorkflowIds, T message, string? topic = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destinationWorkflowIds);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, OperationNames.SendMany) is { } row)
        {
            if (row.Error is not null)
            {
                throw new WorkflowNotFoundException(ValueCodec.DecodeError(row.Error).Message);
            }

            return;
        }

        var startedAt = NowMs();
        var outcome = await engine.External.SendManyAsync(
            Operation(functionId, OperationNames.SendMany, startedAt, engine.Codec.Format), destinationWorkflowIds, message, topic, idempotencyKey: null, cancellationToken).ConfigureAwait(false);
        switch (outcome)
        {
            case SendOutcome.NotOwner:
                await StopForLostOwnershipAsync().ConfigureAwait(false);
                break;
            case SendOutcome.NoSuchDestination:
                var error = await engine.External.NoSuchDestinationsAsync(destinationWorkflowIds, cancellationToken).ConfigureAwait(false);
                await RecordAsync(functionId, OperationNames.SendMany, null, ValueCodec.EncodeError(error), null, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
                throw error;
        }
    }

    public override async Task<IReadOnlyDictionary<string, T?>> GetAllEventsAsync<T>(string workflowId, CancellationToken cancellationToken = default)
        where T : default
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        var what = $"events of workflow '{workflowId}'";
        if (Replay(functionId, OperationNames.GetAllEvents) is { } row)
        {
            return row.Output is null
                ? new Dictionary<string, T?>(StringComparer.Ordinal)
                : (Dictionary<string, T?>)engine.Codec.Decode(row.Output, row.Serialization, typeof(Dictionary<string, T?>), $"recorded {what}")!;
        }

        var startedAt = NowMs();
        var events = await engine.External.GetAllEventsAsync<T>(workflowId, cancellationToken).ConfigureAwait(false);
        var output = engine.Codec.Encode(events, typeof(Dictionary<string, T?>), what);
        await RecordAsync(functionId, OperationNames.GetAllEvents, output, null, null, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
        return events;
    }

    public override async Task<T?> RecvAsync<T>(string? topic = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        where T : default
    {
        ThrowIfStopped();
        var functionId = NextFunctionId();
        var timerId = NextFunctionId();
        var topicName = ExternalAccess.Topic(topic);
        var what = $"message received by workflow '{WorkflowId}' on topic '{topicName}'";
        if (Replay(functionId, OperationNames.Recv) is { } row)
        {
            return DecodeOrDefault<T>(row.Output, row.Serialization, what);
        }

        var startedAt = NowMs();
        var deadline = await DurableDeadlineAsync(timerId, timeout, startedAt).ConfigureAwait(false);
        await WaitStoppableAsync(
            ct => engine.External.WaitForAsync(
                ChangeKind.Message,
                ChangeNotifier.Payload(WorkflowId, topicName),
                async c => await engine.Database.HasMessageAsync(WorkflowId, topicName, c).ConfigureAwait(false) ? Found : null,
                deadline,
                ct),
            cancellationToken).ConfigureAwait(false);

        var (message, recorded) = await engine.Database.ReceiveAsync(Operation(functionId, OperationNames.Recv, startedAt), topicName, CancellationToken.None).ConfigureAwait(false);
        if (!recorded)
        {
            await StopForLostOwnershipAsync().ConfigureAwait(false);
        }

        return DecodeOrDefault<T>(message?.Text, message?.Serialization, what);
    }

    public override async Task SetAttributesAsync(System.Text.Json.Nodes.JsonObject? attributes, CancellationToken cancellationToken = default)
    {
        WorkflowAttributes.Validate(attributes, nameof(attributes));
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, OperationNames.UpdateWorkflowAttributes) is not null)
        {
            return;
        }

        var startedAt = NowMs();
        var operation = Operation(functionId, OperationNames.UpdateWorkflowAttributes, startedAt, engine.Codec.Format) with
        {
            Output = engine.Codec.Encode(null, typeof(object), $"result of {OperationNames.UpdateWorkflowAttributes}"),
        };
        if (!await engine.Database.UpdateAttributesAsync(operation, WorkflowAttributes.Encode(attributes), cancellationToken).ConfigureAwait(false))
        {
            await StopForLostOwnershipAsync().ConfigureAwait(false);
        }
    }

    public override async Task SetEventAsync<T>(string key, T value, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, OperationNames.SetEvent) is not null)
        {
            return;
        }

        var startedAt = NowMs();
        var text = engine.Codec.Encode(value, typeof(T), $"event '{key}' of workflow '{WorkflowId}'");
        if (!await engine.Database.SetEventAsync(Operation(functionId, OperationNames.SetEvent, startedAt, engine.Codec.Format), key, text, engine.Codec.Format, cancellationToken).ConfigureAwait(false))
        {
            await StopForLostOwnershipAsync().ConfigureAwait(false);
        }
    }

    public override async Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        where T : default
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        ArgumentException.ThrowIfNullOrEmpty(key);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        var timerId = NextFunctionId();
        var what = $"event '{key}' of workflow '{workflowId}'";
        if (Replay(functionId, OperationNames.GetEvent) is { } row)
        {
            return DecodeOrDefault<T>(row.Output, row.Serialization, what);
        }

        var startedAt = NowMs();
        var deadline = await DurableDeadlineAsync(timerId, timeout, startedAt).ConfigureAwait(false);
        var value = await WaitStoppableAsync(ct => engine.External.WaitForEventAsync(workflowId, key, deadline, ct), cancellationToken).ConfigureAwait(false);
        await RecordAsync(functionId, OperationNames.GetEvent, value?.Text, null, null, startedAt, null, value?.Serialization).ConfigureAwait(false);
        return DecodeOrDefault<T>(value?.Text, value?.Serialization, what);
    }

    public override Task WriteStreamAsync<T>(string key, T value, CancellationToken cancellationToken = default) =>
        AppendToStreamAsync(OperationNames.WriteStream, key, () => engine.Codec.Encode(value, typeof(T), $"value of stream '{key}' of workflow '{WorkflowId}'"), engine.Codec.Format, cancellationToken);

    public override Task CloseStreamAsync(string key, CancellationToken cancellationToken = default) =>
        AppendToStreamAsync(OperationNames.CloseStream, key, static () => OperationNames.StreamClosed, PortableJsonSerializer.FormatName, cancellationToken);

    private async Task AppendToStreamAsync(string operation, string key, Func<string> encode, string serialization, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, operation) is not null)
        {
            return;
        }

        var startedAt = NowMs();
        var text = encode();
        if (!await engine.Database.WriteStreamAsync(Operation(functionId, operation, startedAt, serialization), key, text, serialization, cancellationToken).ConfigureAwait(false))
        {
            await StopForLostOwnershipAsync().ConfigureAwait(false);
        }
    }

    public override async IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentOutOfRangeException.ThrowIfNegative(fromOffset);
        var what = $"value of stream '{key}' of workflow '{workflowId}'";
        var offset = fromOffset;
        while (true)
        {
            ThrowIfStopped();
            var functionId = NextFunctionId();
            StoredValue value;
            if (Replay(functionId, OperationNames.ReadStream) is { } row)
            {
                value = new StoredValue(row.Output ?? OperationNames.StreamClosed, row.Serialization);
            }
            else
            {
                var startedAt = NowMs();
                var next = await WaitStoppableAsync(ct => engine.External.NextStreamValueAsync(workflowId, key, offset, ct), cancellationToken).ConfigureAwait(false);
                value = next?.Value ?? new StoredValue(OperationNames.StreamClosed, PortableJsonSerializer.FormatName);
                await RecordAsync(functionId, OperationNames.ReadStream, value.Text, null, null, startedAt, null, value.Serialization).ConfigureAwait(false);
            }

            if (ExternalAccess.IsStreamEnd(value))
            {
                yield break;
            }

            yield return (T)engine.Codec.Decode(value.Text, value.Serialization, typeof(T), what)!;
            offset++;
        }
    }

    // ---- Concurrency inside a workflow ----

    /// <summary>
    /// Starts a child workflow and waits for its result: two operations whose function IDs are both taken now, at the
    /// call, so children run together (<see cref="Task.WhenAll(Task[])"/>) get the same IDs in every execution, whichever
    /// start finishes first.
    /// </summary>
    public async Task<T> RunChildAsync<T>(WorkflowRegistration child, object? input, StartOptions? options, CancellationToken cancellationToken)
    {
        var startId = NextFunctionId();
        var resultId = NextFunctionId();
        var childId = await StartChildAtAsync(startId, child, input, options, cancellationToken).ConfigureAwait(false);
        return await AwaitResultAtAsync<T>(resultId, childId, cancellationToken).ConfigureAwait(false);
    }

    public override async Task<THandle> WaitFirstAsync<THandle>(IReadOnlyList<THandle> handles, CancellationToken cancellationToken = default)
    {
        var ids = CheckWaitFirstHandles(handles);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, OperationNames.WaitFirst) is { } row)
        {
            var recordedId = row.Error is null && row.Output is not null
                ? engine.Codec.Decode(row.Output, row.Serialization, typeof(string), $"recorded {OperationNames.WaitFirst} of workflow '{WorkflowId}'") as string
                : null;
            var recorded = recordedId is null ? -1 : Array.IndexOf(ids, recordedId);
            if (recorded < 0)
            {
                throw new NonDeterministicWorkflowException(
                    $"Workflow '{WorkflowId}' recorded operation {functionId} ('{OperationNames.WaitFirst}') as workflow '{recordedId ?? "(none)"}', " +
                    "which is not among the handles its re-execution waits for.");
            }

            return handles[recorded];
        }

        var startedAt = NowMs();
        var winner = await WaitStoppableAsync(ct => engine.External.FirstFinishedAsync(ids, ct), cancellationToken).ConfigureAwait(false);
        var output = engine.Codec.Encode(winner, typeof(string), $"{OperationNames.WaitFirst} of workflow '{WorkflowId}'");
        await RecordAsync(functionId, OperationNames.WaitFirst, output, null, null, startedAt, null, engine.Codec.Format).ConfigureAwait(false);
        return handles[Array.IndexOf(ids, winner)];
    }

    public override async Task<int> WhenAnyAsync(IReadOnlyList<Task> tasks, CancellationToken cancellationToken = default)
    {
        CheckWhenAnyTasks(tasks);
        ThrowIfStopped();
        var functionId = NextFunctionId();
        if (Replay(functionId, OperationNames.WhenAny) is { } row)
        {
            if (row.Output is null
                || !int.TryParse(row.Output, NumberStyles.Integer, CultureInfo.InvariantCulture, out var recorded)
                || recorded < 0 || recorded >= tasks.Count)
            {
                throw new NonDeterministicWorkflowException(
                    $"Workflow '{WorkflowId}' recorded operation {functionId} ('{OperationNames.WhenAny}') as task {row.Output ?? "(none)"}, " +
                    $"but its re-execution waits for {tasks.Count.ToString(CultureInfo.InvariantCulture)} tasks.");
            }

            // The same branch as the first execution: wait for the task that won then, whatever would win now.
            await WaitStoppableAsync(ct => Task.WhenAny(tasks[recorded]).WaitAsync(ct), cancellationToken).ConfigureAwait(false);
            return recorded;
        }

        var startedAt = NowMs();
        var first = await WaitStoppableAsync(ct => Task.WhenAny(tasks).WaitAsync(ct), cancellationToken).ConfigureAwait(false);
        var index = IndexOf(tasks, first);
        await RecordAsync(functionId, OperationNames.WhenAny, index.ToString(CultureInfo.InvariantCulture), null, null, startedAt, null, PortableJsonSerializer.FormatName).ConfigureAwait(false);
        return index;
    }
}

/// <summary>A workflow's logger that drops messages while the workflow replays recorded operations.</summary>
internal sealed class ReplaySafeLogger(ILogger inner, WorkflowContext context) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => !context.IsReplaying && inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!context.IsReplaying)
        {
            inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
