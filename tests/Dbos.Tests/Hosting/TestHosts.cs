using Dbos.Extensions.Hosting;
using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Dbos.Tests.Hosting;

/// <summary>Generic hosts for the hosting tests, isolated from the machine's environment variables and files.</summary>
internal static class TestHosts
{
    /// <summary>A failure deadline for waits that should end quickly; never a timing assertion.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A host builder with no default configuration sources (no appsettings.json, environment variables or command
    /// line), so only what a test adds is configured.
    /// </summary>
    public static HostApplicationBuilder Builder(IReadOnlyDictionary<string, string?>? configuration = null, TimeSpan? shutdownTimeout = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, EnvironmentName = "Test" });
        if (configuration is not null)
        {
            builder.Configuration.AddInMemoryCollection(configuration);
        }

        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = shutdownTimeout ?? Deadline);
        return builder;
    }

    /// <summary>Points the DBOS configuration at the test database, as <see cref="TestDatabase.Config"/> does.</summary>
    public static IDbosBuilder AddTestDbos(this IServiceCollection services, TestDatabase db, string name = "hosted-app", Action<DbosConfig>? configure = null) =>
        services.AddDbos(c =>
        {
            var test = db.Config(name);
            c.Name = test.Name;
            c.SystemDatabaseUrl = test.SystemDatabaseUrl;
            c.SystemDatabaseSchema = test.SystemDatabaseSchema;
            c.ApplicationVersion = test.ApplicationVersion;
            c.ExecutorId = test.ExecutorId;
            c.PollingInterval = test.PollingInterval;
            configure?.Invoke(c);
        });
}

/// <summary>
/// Lets a test hold a step until it says so: the step reports that it started, then waits for the release (or for its
/// cancellation token).
/// </summary>
public sealed class StepGate
{
    private readonly TaskCompletionSource started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int runs;
    private int cancellations;

    /// <summary>How many times the step's code ran.</summary>
    public int Runs => Volatile.Read(ref runs);

    /// <summary>How many times the step's code saw its cancellation token fire.</summary>
    public int Cancellations => Volatile.Read(ref cancellations);

    public Task Started => started.Task;

    public void Release() => released.TrySetResult();

    public async Task<string> PassAsync(string value, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref runs);
        started.TrySetResult();
        try
        {
            await released.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref cancellations);
            throw;
        }

        return $"passed {value}";
    }
}

/// <summary>Counts how often a later step runs.</summary>
public sealed class RunCounter
{
    private int count;

    public int Count => Volatile.Read(ref count);

    public int Increment() => Interlocked.Increment(ref count);
}

/// <summary>A workflow with a step held by a <see cref="StepGate"/> and a step after it.</summary>
public sealed class GatedWorkflow(StepGate gate, RunCounter after) : IWorkflow<string, string>
{
    public async Task<string> RunAsync(WorkflowContext context, string input)
    {
        var first = await context.RunStepAsync("gated", ct => gate.PassAsync(input, ct));
        var second = await context.RunStepAsync("after", _ => Task.FromResult(after.Increment()));
        return $"{first}, then after #{second}";
    }
}
