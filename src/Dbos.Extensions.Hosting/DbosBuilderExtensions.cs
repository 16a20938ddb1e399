using System.Diagnostics.CodeAnalysis;
using Dbos;
using Dbos.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registrations on the DBOS application of a service collection, made before it launches.</summary>
public static class DbosBuilderExtensions
{
    /// <summary>The name <see cref="AddHealthChecks"/> gives its check by default: <c>dbos</c>.</summary>
    public const string HealthCheckName = "dbos";

    /// <summary>
    /// Adds a health check of the DBOS application to the host's health checks (<c>services.AddHealthChecks()</c>; map
    /// it with <c>app.MapHealthChecks("/healthz")</c> in ASP.NET Core). It reports <b>Unhealthy</b> when DBOS is not
    /// launched or is shutting down, when the system database does not answer a cheap read within
    /// <paramref name="timeout"/>, or when this process has lost its liveness (it then claims no work and writes no
    /// checkpoint); <b>Degraded</b> while launching has not yet recovered pending work, or on Postgres while the
    /// notification listener is disconnected (waits poll meanwhile). The description gives the reasons, and the data
    /// each probe (<c>databaseReachable</c>, <c>live</c>, <c>listenerConnected</c>, <c>recoveryDispatched</c>…).
    /// </summary>
    /// <param name="builder">The DBOS builder.</param>
    /// <param name="name">The check's name. Default <see cref="HealthCheckName"/>.</param>
    /// <param name="timeout">How long the database may take to answer. Default 5 seconds.</param>
    /// <param name="tags">Tags to filter checks by (for example <c>ready</c>).</param>
    /// <returns>The builder.</returns>
    public static IDbosBuilder AddHealthChecks(this IDbosBuilder builder, string name = HealthCheckName, TimeSpan? timeout = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var bound = timeout ?? TimeSpan.FromSeconds(5);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(bound, TimeSpan.Zero, nameof(timeout));
        // The framework's own timeout is a backstop, a little longer than the probe's bound, so the probe's reason is reported.
        builder.Services.AddHealthChecks().Add(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration(
            name,
            services => new DbosHealthCheck(services.GetRequiredService<DbosApp>(), bound),
            failureStatus: null,
            tags,
            bound + TimeSpan.FromSeconds(1)));
        return builder;
    }

    /// <summary>
    /// Adds a workflow written as a class. <typeparamref name="TWorkflow"/> is registered as a scoped service (unless it
    /// already is), and each execution gets its own instance from the execution's scope, so its constructor can take
    /// scoped services and its steps can use them. The workflow is also registered as a keyed
    /// <see cref="Workflow{TInput, TResult}"/> singleton under its name, to start it from an endpoint:
    /// <c>([FromKeyedServices("checkout")] Workflow&lt;Order, Receipt&gt; checkout) =&gt; …</c>.
    /// </summary>
    /// <typeparam name="TWorkflow">The workflow class.</typeparam>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="builder">The DBOS builder.</param>
    /// <param name="name">The workflow's name, recorded with each run. Default: the class name.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>The builder.</returns>
    public static IDbosBuilder AddWorkflow<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TWorkflow, TInput, TResult>(
        this IDbosBuilder builder, string? name = null, WorkflowOptions? options = null)
        where TWorkflow : class, IWorkflow<TInput, TResult>
    {
        ArgumentNullException.ThrowIfNull(builder);
        var workflowName = name ?? typeof(TWorkflow).Name;
        builder.Services.TryAddScoped<TWorkflow>();
        return builder
            .ConfigureApp(app => app.RegisterWorkflow<TWorkflow, TInput, TResult>(workflowName, options))
            .AddWorkflowReference<TInput, TResult>(workflowName);
    }

    /// <summary>
    /// Adds a workflow written as a delegate. Its code reaches the execution's scoped services through
    /// <see cref="WorkflowContext.Services"/>. The workflow is also registered as a keyed
    /// <see cref="Workflow{TInput, TResult}"/> singleton under its name.
    /// </summary>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="builder">The DBOS builder.</param>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>The builder.</returns>
    public static IDbosBuilder AddWorkflow<TInput, TResult>(
        this IDbosBuilder builder, string name, Func<WorkflowContext, TInput, Task<TResult>> body, WorkflowOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(body);
        return builder
            .ConfigureApp(app => app.RegisterWorkflow(name, body, options))
            .AddWorkflowReference<TInput, TResult>(name);
    }

    /// <summary>
    /// Adds a workflow written as a delegate that returns no value. It is also registered as a keyed
    /// <see cref="VoidWorkflow{TInput}"/> singleton under its name.
    /// </summary>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <param name="builder">The DBOS builder.</param>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>The builder.</returns>
    public static IDbosBuilder AddWorkflow<TInput>(
        this IDbosBuilder builder, string name, Func<WorkflowContext, TInput, Task> body, WorkflowOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(body);
        builder.Services.TryAddKeyedSingleton(name, (services, _) => services.GetRequiredService<DbosApp>().GetVoidWorkflow<TInput>(name));
        return builder.ConfigureApp(app => app.RegisterWorkflow(name, body, options));
    }

    /// <summary>Adds a queue (see <see cref="DbosApp.RegisterQueue"/>).</summary>
    /// <param name="builder">The DBOS builder.</param>
    /// <param name="name">The queue's name.</param>
    /// <param name="options">Its flow control. Default: no limits.</param>
    /// <returns>The builder.</returns>
    public static IDbosBuilder AddQueue(this IDbosBuilder builder, string name, QueueOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.ConfigureApp(app => app.RegisterQueue(name, options));
    }

    /// <summary>
    /// Runs <paramref name="configure"/> on the <see cref="DbosApp"/> when it is created, before it launches: for
    /// anything the builder does not cover (schedules, steps, transactions). Registrations run in the order they were added.
    /// </summary>
    /// <param name="builder">The DBOS builder.</param>
    /// <param name="configure">Registers on the application.</param>
    /// <returns>The builder.</returns>
    public static IDbosBuilder ConfigureApp(this IDbosBuilder builder, Action<DbosApp> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return builder.ConfigureApp((app, _) => configure(app));
    }

    /// <summary>
    /// Runs <paramref name="configure"/> on the <see cref="DbosApp"/> when it is created, before it launches, with the
    /// application's (root) services: for registrations that need a singleton service.
    /// </summary>
    /// <param name="builder">The DBOS builder.</param>
    /// <param name="configure">Registers on the application.</param>
    /// <returns>The builder.</returns>
    public static IDbosBuilder ConfigureApp(this IDbosBuilder builder, Action<DbosApp, IServiceProvider> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure<DbosAppSetup>(setup => setup.Actions.Add(configure));
        return builder;
    }

    private static IDbosBuilder AddWorkflowReference<TInput, TResult>(this IDbosBuilder builder, string name)
    {
        builder.Services.TryAddKeyedSingleton(name, (services, _) => services.GetRequiredService<DbosApp>().GetWorkflow<TInput, TResult>(name));
        return builder;
    }
}
