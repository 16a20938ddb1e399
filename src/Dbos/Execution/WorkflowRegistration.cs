using System.Reflection;

namespace Dbos.Execution;

/// <summary>A workflow registered under a name: its types and a boxed entry point.</summary>
internal sealed class WorkflowRegistration
{
    public WorkflowRegistration(
        WorkflowEngine engine,
        string name,
        Type inputType,
        bool hasInput,
        Type outputType,
        Func<WorkflowContext, object?, Task<object?>> invoke,
        MethodInfo method,
        WorkflowOptions options,
        Type[]? argumentTypes = null)
    {
        ArgumentTypes = argumentTypes;
        Engine = engine;
        Name = name;
        InputType = inputType;
        HasInput = hasInput;
        OutputType = outputType;
        Invoke = invoke;
        Method = method;
        Options = options;
    }

    public WorkflowEngine Engine { get; }

    public string Name { get; }

    public Type InputType { get; }

    /// <summary>Whether the workflow takes an input (stored as its first positional argument).</summary>
    public bool HasInput { get; }

    public Type OutputType { get; }

    /// <summary>
    /// For a workflow of several parameters, their types: its input is then a <see cref="Serialization.PositionalArguments"/>,
    /// stored as that many positional arguments.
    /// </summary>
    public Type[]? ArgumentTypes { get; }

    public Func<WorkflowContext, object?, Task<object?>> Invoke { get; }

    /// <summary>The method behind the body, used to derive the application version from the code that defines it.</summary>
    public MethodInfo Method { get; }

    public WorkflowOptions Options { get; }
}

/// <summary>How a workflow run in this process ended.</summary>
internal abstract record WorkflowOutcome
{
    /// <summary>Finished with a value (as returned, and as stored).</summary>
    public sealed record Succeeded(object? Value, string? Encoded, string? Serialization) : WorkflowOutcome;

    /// <summary>Finished with an error, recorded.</summary>
    public sealed record Failed(Exception Error) : WorkflowOutcome;

    /// <summary>This run did not record the outcome (cancelled, or taken over by another execution): read it from the database.</summary>
    public sealed record InDatabase : WorkflowOutcome;
}

/// <summary>A workflow running in this process.</summary>
internal sealed class RunningWorkflow(WorkflowExecution execution)
{
    private readonly TaskCompletionSource<WorkflowOutcome> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public WorkflowExecution Execution { get; } = execution;

    public Task<WorkflowOutcome> Completion => completion.Task;

    public void Complete(WorkflowOutcome outcome) => completion.TrySetResult(outcome);
}
