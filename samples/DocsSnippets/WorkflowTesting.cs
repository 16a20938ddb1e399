using Dbos;

namespace DocsSnippets;

// <snippet:workflows-fake-context>
// Runs workflow code in a unit test, without a database: steps run at once and are listed, sleeps return at once.
public sealed class FakeWorkflowContext : WorkflowContext
{
    public List<string> Steps { get; } = [];

    public override string WorkflowId => "test-workflow";
    public override string WorkflowName => "test";
    public override CancellationToken CancellationToken => CancellationToken.None;

    public override Task<T> RunStepAsync<T>(string name, Func<CancellationToken, Task<T>> step,
        StepOptions? options = null, CancellationToken cancellationToken = default)
    {
        Steps.Add(name);
        return step(cancellationToken);
    }

    public override Task SleepAsync(TimeSpan duration, CancellationToken cancellationToken = default) => Task.CompletedTask;
    public override Task<DateTimeOffset> NowAsync(CancellationToken cancellationToken = default) => Task.FromResult(DateTimeOffset.UnixEpoch);
    public override Task<Guid> NewGuidAsync(CancellationToken cancellationToken = default) => Task.FromResult(Guid.Empty);
    public override Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null,
        CancellationToken cancellationToken = default) => Task.CompletedTask;
    public override Task<T?> RecvAsync<T>(string? topic = null, TimeSpan? timeout = null,
        CancellationToken cancellationToken = default) where T : default => Task.FromResult(default(T));
    public override Task SetEventAsync<T>(string key, T value, CancellationToken cancellationToken = default) => Task.CompletedTask;
    public override Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null,
        CancellationToken cancellationToken = default) where T : default => Task.FromResult(default(T));
    public override Task WriteStreamAsync<T>(string key, T value, CancellationToken cancellationToken = default) => Task.CompletedTask;
    public override Task CloseStreamAsync(string key, CancellationToken cancellationToken = default) => Task.CompletedTask;
    public override IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0,
        CancellationToken cancellationToken = default) => AsyncEnumerable.Empty<T>();
}
// </snippet:workflows-fake-context>

public static class WorkflowTesting
{
    public static async Task TestAsync(Payments payments, Order order)
    {
        // <snippet:workflows-test>
        var context = new FakeWorkflowContext();
        var receipt = await new Checkout(payments).RunAsync(context, order);
        // context.Steps is ["charge"]
        // </snippet:workflows-test>
        Console.WriteLine(receipt);
    }
}
