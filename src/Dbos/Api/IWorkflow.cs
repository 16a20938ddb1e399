namespace Dbos;

/// <summary>
/// A workflow written as a class, registered with <see cref="DbosApp.RegisterWorkflow{TWorkflow, TInput, TResult}(string?, WorkflowOptions?)"/>:
/// each execution gets its own instance, created from <see cref="WorkflowContext.Services"/>, so its constructor can
/// take the application's (scoped) services and its steps can use them.
/// </summary>
/// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
/// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
public interface IWorkflow<in TInput, TResult>
{
    /// <summary>The workflow's code: deterministic, doing its side effects in steps.</summary>
    /// <param name="context">The durable operations of this execution.</param>
    /// <param name="input">The workflow's input.</param>
    /// <returns>The workflow's result.</returns>
    Task<TResult> RunAsync(WorkflowContext context, TInput input);
}
