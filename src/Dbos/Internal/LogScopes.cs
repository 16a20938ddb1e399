using System.Collections;

namespace Dbos.Internal;

/// <summary>The log scope of a workflow execution: every message logged while it runs carries its ID and name.</summary>
internal sealed class WorkflowLogScope(string workflowId, string workflowName) : IReadOnlyList<KeyValuePair<string, object?>>
{
    public int Count => 2;

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("DbosWorkflowId", workflowId),
        1 => new("DbosWorkflowName", workflowName),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        yield return this[0];
        yield return this[1];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"workflow {workflowId} ({workflowName})";
}

/// <summary>The log scope of a running step, inside its workflow's scope.</summary>
internal sealed class StepLogScope(string stepName, int functionId) : IReadOnlyList<KeyValuePair<string, object?>>
{
    public int Count => 2;

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("DbosStepName", stepName),
        1 => new("DbosStepId", functionId),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        yield return this[0];
        yield return this[1];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"step {functionId} ({stepName})";
}
