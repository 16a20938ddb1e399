using System.Diagnostics.CodeAnalysis;
using Dbos.Execution;
using Dbos.Internal;
using Dbos.Serialization;
using Dbos.SystemDatabase;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Dbos;

/// <summary>
/// A DBOS application: registers workflows and steps, launches (migrating the system database and recovering pending
/// work), and manages workflows. Create one per process with <see cref="Create"/>, register, then <see cref="LaunchAsync"/>.
/// </summary>
public sealed class DbosApp : IDbosOperations
{
    private readonly WorkflowEngine engine;
    private SqlDatasource? applicationDatasource;
    private int disposed;

    private DbosApp(DbosConfig config, SqlExecutor executor, string executorId)
    {
        Config = config;
        var logger = (config.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Dbos");
        var time = config.TimeProvider ?? TimeProvider.System;
        var database = new SystemDatabase.SystemDatabase(executor, config.Name, logger);
        engine = new WorkflowEngine(config, database, new ValueCodec(config.Serializer ?? PortableJsonSerializer.Default), time, logger, executorId);
    }

    /// <summary>The engine behind this application (for tests that look at its in-memory state).</summary>
    internal WorkflowEngine Engine => engine;

    /// <summary>Probes this application's health (for <c>AddHealthChecks</c> in the hosting package): see <see cref="HealthProbe"/>.</summary>
    internal Task<HealthFinding> CheckHealthAsync(TimeSpan databaseTimeout, CancellationToken cancellationToken) =>
        HealthProbe.CheckAsync(engine, databaseTimeout, cancellationToken);

    /// <summary>The ID of the workflow running on this async flow (also inside its steps), or null outside workflows.</summary>
    public static string? CurrentWorkflowId => WorkflowExecution.CurrentWorkflowId;

    /// <summary>The configuration this application was created with: a read-only copy of the one given to <see cref="Create"/>.</summary>
    public DbosConfig Config { get; }

    /// <summary>The application's name.</summary>
    public string Name => Config.Name;

    /// <summary>This process's executor ID.</summary>
    public string ExecutorId => engine.ExecutorId;

    /// <summary>The application version (known once launched).</summary>
    public string ApplicationVersion => engine.ApplicationVersion;

    /// <inheritdoc/>
    public string SystemDatabase => engine.Database.Description;

    /// <summary>
    /// Creates an application from <paramref name="config"/>, which it copies: changing <paramref name="config"/> later
    /// changes nothing. Validates the configuration (a <see cref="DbosConfigurationException"/> names every problem) but
    /// does not touch the database until <see cref="LaunchAsync"/>.
    /// </summary>
    /// <param name="config">The configuration.</param>
    /// <returns>The application, ready for registrations.</returns>
    /// <exception cref="DbosConfigurationException">The configuration is invalid.</exception>
    public static DbosApp Create(DbosConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);

        // Settings are read once: the application keeps a copy nobody can change (the caller's object stays theirs).
        config = config.ReadOnlyCopy();
        config.Validate();

        var executorId = config.ExecutorId ?? Environment.GetEnvironmentVariable(DbosConfig.ExecutorIdVariable) ?? ExecutorLiveness.GenerateExecutorId();
        return new DbosApp(config, CreateExecutor(config), executorId);
    }

    /// <summary>The system database URL in effect: the configured one, else <c>DBOS_SYSTEM_DATABASE_URL</c>, else a SQLite file named after the application.</summary>
    internal static (string Url, string Setting) ResolveSystemDatabaseUrl(DbosConfig config)
    {
        if (config.SystemDatabaseUrl is not null)
        {
            return (config.SystemDatabaseUrl, "DbosConfig.SystemDatabaseUrl");
        }

        if (Environment.GetEnvironmentVariable(DbosConfig.SystemDatabaseUrlVariable) is { Length: > 0 } fromEnvironment)
        {
            return (fromEnvironment, DbosConfig.SystemDatabaseUrlVariable);
        }

        if (config.Name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
        {
            throw new DbosConfigurationException(
                $"No system database URL is configured, and the application name '{config.Name}' cannot name a SQLite file; set DbosConfig.SystemDatabaseUrl.");
        }

        return ($"sqlite:///{config.Name}.sqlite", "the default system database URL");
    }

    private static SqlExecutor CreateExecutor(DbosConfig config)
    {
        if (config.SystemDatabaseDataSource is { } dataSource)
        {
            return SqlExecutor.Create(null, null, config.SystemDatabaseSchema, config.SystemDatabasePoolSize, dataSource, config.SqliteSynchronous);
        }

        var (url, setting) = ResolveSystemDatabaseUrl(config);
        return SqlExecutor.Create(url, setting, config.SystemDatabaseSchema, config.SystemDatabasePoolSize, null, config.SqliteSynchronous);
    }

    /// <summary>Registers a workflow that takes an input.</summary>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public Workflow<TInput, TResult> RegisterWorkflow<TInput, TResult>(string name, Func<WorkflowContext, TInput, Task<TResult>> body, WorkflowOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return new Workflow<TInput, TResult>(engine.Register(
            name,
            typeof(TInput),
            hasInput: true,
            typeof(TResult),
            async (context, input) => await body(context, (TInput)input!).ConfigureAwait(false),
            body.Method,
            options));
    }

    /// <summary>
    /// Registers a workflow that takes 2 arguments, stored as its positional arguments (as other DBOS implementations
    /// store theirs, so their clients can enqueue it with 2 arguments).
    /// </summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public Workflow<T1, T2, TResult> RegisterWorkflow<T1, T2, TResult>(string name, Func<WorkflowContext, T1, T2, Task<TResult>> body, WorkflowOptions? options = null) =>
        new(RegisterPositional(name, body, typeof(TResult), [typeof(T1), typeof(T2)], async (c, a) => await body(c, (T1)a[0]!, (T2)a[1]!).ConfigureAwait(false), options));

    /// <summary>Registers a workflow that takes 2 arguments and returns no value (see the form that returns a value).</summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public VoidWorkflow<T1, T2> RegisterWorkflow<T1, T2>(string name, Func<WorkflowContext, T1, T2, Task> body, WorkflowOptions? options = null) =>
        new(RegisterPositional(name, body, typeof(void), [typeof(T1), typeof(T2)], async (c, a) =>
            {
                await body(c, (T1)a[0]!, (T2)a[1]!).ConfigureAwait(false);
                return null;
            }, options));

    /// <summary>
    /// Registers a workflow that takes 3 arguments, stored as its positional arguments (as other DBOS implementations
    /// store theirs, so their clients can enqueue it with 3 arguments).
    /// </summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public Workflow<T1, T2, T3, TResult> RegisterWorkflow<T1, T2, T3, TResult>(string name, Func<WorkflowContext, T1, T2, T3, Task<TResult>> body, WorkflowOptions? options = null) =>
        new(RegisterPositional(name, body, typeof(TResult), [typeof(T1), typeof(T2), typeof(T3)], async (c, a) => await body(c, (T1)a[0]!, (T2)a[1]!, (T3)a[2]!).ConfigureAwait(false), options));

    /// <summary>Registers a workflow that takes 3 arguments and returns no value (see the form that returns a value).</summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public VoidWorkflow<T1, T2, T3> RegisterWorkflow<T1, T2, T3>(string name, Func<WorkflowContext, T1, T2, T3, Task> body, WorkflowOptions? options = null) =>
        new(RegisterPositional(name, body, typeof(void), [typeof(T1), typeof(T2), typeof(T3)], async (c, a) =>
            {
                await body(c, (T1)a[0]!, (T2)a[1]!, (T3)a[2]!).ConfigureAwait(false);
                return null;
            }, options));

    /// <summary>
    /// Registers a workflow that takes 4 arguments, stored as its positional arguments (as other DBOS implementations
    /// store theirs, so their clients can enqueue it with 4 arguments).
    /// </summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
    /// <typeparam name="T4">The type of the fourth argument; must be serializable.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public Workflow<T1, T2, T3, T4, TResult> RegisterWorkflow<T1, T2, T3, T4, TResult>(string name, Func<WorkflowContext, T1, T2, T3, T4, Task<TResult>> body, WorkflowOptions? options = null) =>
        new(RegisterPositional(name, body, typeof(TResult), [typeof(T1), typeof(T2), typeof(T3), typeof(T4)], async (c, a) => await body(c, (T1)a[0]!, (T2)a[1]!, (T3)a[2]!, (T4)a[3]!).ConfigureAwait(false), options));

    /// <summary>Registers a workflow that takes 4 arguments and returns no value (see the form that returns a value).</summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
    /// <typeparam name="T4">The type of the fourth argument; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public VoidWorkflow<T1, T2, T3, T4> RegisterWorkflow<T1, T2, T3, T4>(string name, Func<WorkflowContext, T1, T2, T3, T4, Task> body, WorkflowOptions? options = null) =>
        new(RegisterPositional(name, body, typeof(void), [typeof(T1), typeof(T2), typeof(T3), typeof(T4)], async (c, a) =>
            {
                await body(c, (T1)a[0]!, (T2)a[1]!, (T3)a[2]!, (T4)a[3]!).ConfigureAwait(false);
                return null;
            }, options));

    /// <summary>Registers a workflow of several arguments: they travel as one <see cref="PositionalArguments"/>, stored as the positionalArgs of portable JSON.</summary>
    private WorkflowRegistration RegisterPositional(
        string name, Delegate body, Type outputType, Type[] argumentTypes, Func<WorkflowContext, object?[], Task<object?>> invoke, WorkflowOptions? options)
    {
        ArgumentNullException.ThrowIfNull(body);
        return engine.Register(
            name, typeof(PositionalArguments), hasInput: true, outputType, (context, input) => invoke(context, ((PositionalArguments)input!).Values), body.Method, options, argumentTypes);
    }

    /// <summary>
    /// Registers a workflow written as a class. Each execution (first run, recovery, resume) gets a new
    /// <typeparamref name="TWorkflow"/> from <see cref="WorkflowContext.Services"/>: the registered service if there is
    /// one, else an instance whose constructor gets its arguments from the services.
    /// </summary>
    /// <typeparam name="TWorkflow">The workflow class.</typeparam>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name. Default: the class name.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public Workflow<TInput, TResult> RegisterWorkflow<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TWorkflow, TInput, TResult>(
        string? name = null, WorkflowOptions? options = null)
        where TWorkflow : class, IWorkflow<TInput, TResult>
    {
        var run = typeof(TWorkflow).GetInterfaceMap(typeof(IWorkflow<TInput, TResult>)).TargetMethods[0];
        return new Workflow<TInput, TResult>(engine.Register(
            name ?? typeof(TWorkflow).Name,
            typeof(TInput),
            hasInput: true,
            typeof(TResult),
            async (context, input) =>
            {
                var workflow = ActivatorUtilities.GetServiceOrCreateInstance<TWorkflow>(context.Services);
                return await workflow.RunAsync(context, (TInput)input!).ConfigureAwait(false);
            },
            run,
            options));
    }

    /// <summary>The workflow registered under <paramref name="name"/>, to start it from code that did not register it.</summary>
    /// <typeparam name="TInput">The workflow's input type.</typeparam>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="name">The name it is registered under.</param>
    /// <returns>A reference used to start the workflow.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow is registered under that name.</exception>
    /// <exception cref="ArgumentException">The workflow takes or returns other types.</exception>
    public Workflow<TInput, TResult> GetWorkflow<TInput, TResult>(string name)
    {
        var registration = engine.Find(name);
        if (!registration.HasInput || registration.InputType != typeof(TInput) || registration.OutputType != typeof(TResult))
        {
            throw new ArgumentException(
                $"Workflow '{name}' takes {(registration.HasInput ? registration.InputType.Name : "no input")} and returns {registration.OutputType.Name}, " +
                $"not {typeof(TInput).Name} and {typeof(TResult).Name}.",
                nameof(name));
        }

        return new Workflow<TInput, TResult>(registration);
    }

    /// <summary>A reference to a registered workflow that takes an input and returns no value (registered as a <c>Task</c>-returning body).</summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <param name="name">The workflow's name.</param>
    /// <returns>A reference used to start the workflow.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow of that name is registered.</exception>
    /// <exception cref="ArgumentException">The workflow takes another input, or returns a value.</exception>
    public VoidWorkflow<TInput> GetVoidWorkflow<TInput>(string name)
    {
        var registration = engine.Find(name);
        if (!registration.HasInput || registration.InputType != typeof(TInput) || registration.OutputType != typeof(void))
        {
            throw new ArgumentException(
                $"Workflow '{name}' takes {(registration.HasInput ? registration.InputType.Name : "no input")} and returns {(registration.OutputType == typeof(void) ? "no value" : registration.OutputType.Name)}, " +
                $"not {typeof(TInput).Name} and no value.",
                nameof(name));
        }

        return new VoidWorkflow<TInput>(registration);
    }

    /// <summary>Registers a workflow without input.</summary>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public Workflow<TResult> RegisterWorkflow<TResult>(string name, Func<WorkflowContext, Task<TResult>> body, WorkflowOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return new Workflow<TResult>(engine.Register(
            name,
            typeof(object),
            hasInput: false,
            typeof(TResult),
            async (context, _) => await body(context).ConfigureAwait(false),
            body.Method,
            options));
    }

    /// <summary>Registers a workflow that takes an input and returns no value.</summary>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public VoidWorkflow<TInput> RegisterWorkflow<TInput>(string name, Func<WorkflowContext, TInput, Task> body, WorkflowOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return new VoidWorkflow<TInput>(engine.Register(
            name,
            typeof(TInput),
            hasInput: true,
            typeof(void),
            async (context, input) =>
            {
                await body(context, (TInput)input!).ConfigureAwait(false);
                return null;
            },
            body.Method,
            options));
    }

    /// <summary>Registers a workflow without input that returns no value.</summary>
    /// <param name="name">The workflow's name, recorded with each run; it must stay the same across versions of the code.</param>
    /// <param name="body">The workflow's code: deterministic, doing its side effects in steps.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference used to start the workflow.</returns>
    public VoidWorkflow RegisterWorkflow(string name, Func<WorkflowContext, Task> body, WorkflowOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return new VoidWorkflow(engine.Register(
            name,
            typeof(object),
            hasInput: false,
            typeof(void),
            async (context, _) =>
            {
                await body(context).ConfigureAwait(false);
                return null;
            },
            body.Method,
            options));
    }

    /// <summary>
    /// Registers a workflow that runs on a cron schedule: once per tick, with the tick's time as input. The schedule is
    /// recorded in the shared <c>workflow_schedules</c> table at launch (keeping its paused state and last tick across
    /// restarts); several processes never run the same tick twice. Ticks missed while no process ran are not replayed
    /// unless <see cref="ScheduleOptions.AutomaticBackfill"/> is set or a backfill is asked for.
    /// </summary>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The workflow's name (and, by default, the schedule's).</param>
    /// <param name="cron">The cron expression: 5 fields, or 6 with seconds first (<c>*/2 * * * * *</c>: every two seconds).</param>
    /// <param name="body">The workflow's code; it receives the tick's time.</param>
    /// <param name="scheduleOptions">Time zone, queue, backfill and name of the schedule.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference to the workflow (it can also be started directly).</returns>
    /// <exception cref="ArgumentException">The cron expression or time zone is invalid.</exception>
    public Workflow<DateTimeOffset, TResult> RegisterScheduledWorkflow<TResult>(
        string name, string cron, Func<WorkflowContext, DateTimeOffset, Task<TResult>> body, ScheduleOptions? scheduleOptions = null, WorkflowOptions? options = null)
    {
        var workflow = RegisterWorkflow(name, body, options);
        engine.RegisterSchedule(name, cron, scheduleOptions);
        return workflow;
    }

    /// <summary>
    /// Registers a workflow that returns no value and runs on a cron schedule, once per tick, with the tick's time as
    /// input (see <see cref="RegisterScheduledWorkflow{TResult}"/>).
    /// </summary>
    /// <param name="name">The workflow's name (and, by default, the schedule's).</param>
    /// <param name="cron">The cron expression: 5 fields, or 6 with seconds first (<c>*/2 * * * * *</c>: every two seconds).</param>
    /// <param name="body">The workflow's code; it receives the tick's time.</param>
    /// <param name="scheduleOptions">Time zone, queue, backfill and name of the schedule.</param>
    /// <param name="options">Workflow options.</param>
    /// <returns>A reference to the workflow (it can also be started directly).</returns>
    /// <exception cref="ArgumentException">The cron expression or time zone is invalid.</exception>
    public VoidWorkflow<DateTimeOffset> RegisterScheduledWorkflow(
        string name, string cron, Func<WorkflowContext, DateTimeOffset, Task> body, ScheduleOptions? scheduleOptions = null, WorkflowOptions? options = null)
    {
        var workflow = RegisterWorkflow(name, body, options);
        engine.RegisterSchedule(name, cron, scheduleOptions);
        return workflow;
    }

    /// <summary>Registers a step that takes an input and returns a result. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code; it receives a token signalled when the workflow is cancelled or the attempt's timeout passes.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">A step of this name is already registered.</exception>
    public Step<TInput, TResult> RegisterStep<TInput, TResult>(string name, Func<TInput, CancellationToken, Task<TResult>> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new Step<TInput, TResult>(name, function, options);
    }

    /// <summary>Registers a step that takes an input but no token and returns a result. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">A step of this name is already registered.</exception>
    public Step<TInput, TResult> RegisterStep<TInput, TResult>(string name, Func<TInput, Task<TResult>> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new Step<TInput, TResult>(name, (input, _) => function(input), options);
    }

    /// <summary>Registers a step that takes an input and returns no value. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code; it receives a token signalled when the workflow is cancelled or the attempt's timeout passes.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    public VoidStep<TInput> RegisterStep<TInput>(string name, Func<TInput, CancellationToken, Task> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new VoidStep<TInput>(name, function, options);
    }

    /// <summary>Registers a step that takes an input but no token and returns no value. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    public VoidStep<TInput> RegisterStep<TInput>(string name, Func<TInput, Task> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new VoidStep<TInput>(name, (input, _) => function(input), options);
    }

    /// <summary>Registers a step that takes an input but no token, runs synchronously and returns a result. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">A step of this name is already registered.</exception>
    public Step<TInput, TResult> RegisterStep<TInput, TResult>(string name, Func<TInput, TResult> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        StepDelegates.RefuseTaskLike(typeof(TResult), nameof(function));
        return new Step<TInput, TResult>(name, (input, ct) => StepDelegates.Sync<TResult>(_ => function(input), nameof(function))(ct), options);
    }

    /// <summary>Registers a step that takes an input but no token, runs synchronously and returns no value. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    public VoidStep<TInput> RegisterStep<TInput>(string name, Action<TInput> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new VoidStep<TInput>(name, (input, ct) => StepDelegates.SyncVoid(_ => function(input), nameof(function))(ct), options);
    }

    /// <summary>Registers a step that takes no input and returns a result. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code; it receives a token signalled when the workflow is cancelled or the attempt's timeout passes.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">A step of this name is already registered.</exception>
    public Step<TResult> RegisterStep<TResult>(string name, Func<CancellationToken, Task<TResult>> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new Step<TResult>(name, function, options);
    }

    /// <summary>Registers a step that takes neither input nor token and returns a result. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">A step of this name is already registered.</exception>
    public Step<TResult> RegisterStep<TResult>(string name, Func<Task<TResult>> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new Step<TResult>(name, _ => function(), options);
    }

    /// <summary>Registers a step that takes no input and returns no value. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code; it receives a token signalled when the workflow is cancelled or the attempt's timeout passes.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    public VoidStep RegisterStep(string name, Func<CancellationToken, Task> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new VoidStep(name, function, options);
    }

    /// <summary>Registers a step that takes neither input nor token and returns no value. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    public VoidStep RegisterStep(string name, Func<Task> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new VoidStep(name, _ => function(), options);
    }

    /// <summary>Registers a step that takes neither input nor token, runs synchronously and returns a result. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">A step of this name is already registered.</exception>
    public Step<TResult> RegisterStep<TResult>(string name, Func<TResult> function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        StepDelegates.RefuseTaskLike(typeof(TResult), nameof(function));
        return new Step<TResult>(name, StepDelegates.Sync<TResult>(_ => function(), nameof(function)), options);
    }

    /// <summary>Registers a step that takes neither input nor token, runs synchronously and returns no value. Inside a workflow it is checkpointed; elsewhere it simply runs.</summary>
    /// <param name="name">The step's name, recorded with its result.</param>
    /// <param name="function">The step's code.</param>
    /// <param name="options">Retries and timeout. Default: one attempt, no timeout.</param>
    /// <returns>A reference used to run the step.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A retry setting or the timeout is zero or negative.</exception>
    public VoidStep RegisterStep(string name, Action function, StepOptions? options = null)
    {
        options = ValidateStep(name, function, options);
        return new VoidStep(name, StepDelegates.SyncVoid(_ => function(), nameof(function)), options);
    }

    private StepOptions ValidateStep(string name, Delegate function, StepOptions? options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        StorableText.Check(name, "The step name", nameof(name));
        ArgumentNullException.ThrowIfNull(function);
        options ??= StepOptions.Default;
        options.Validate(name);
        engine.RegisterStepName(name);
        return options;
    }

    /// <summary>
    /// Registers a transaction that runs in the application database of <see cref="DbosConfig.ApplicationDatabaseUrl"/>
    /// (the legacy style; a <see cref="SqlDatasource"/> of your own does the same for any database).
    /// </summary>
    /// <typeparam name="TInput">The input's type.</typeparam>
    /// <typeparam name="TResult">The result's type; must be serializable.</typeparam>
    /// <param name="name">The transaction's name, recorded as its step's name.</param>
    /// <param name="body">The transaction's code; it gets the open connection and transaction.</param>
    /// <param name="options">Isolation level.</param>
    /// <returns>A reference used to run the transaction.</returns>
    /// <exception cref="DbosConfigurationException">No <see cref="DbosConfig.ApplicationDatabaseUrl"/> is configured.</exception>
    public Transaction<TInput, TResult> RegisterTransaction<TInput, TResult>(string name, Func<TransactionContext, TInput, CancellationToken, Task<TResult>> body, TransactionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(body);
        if (Config.ApplicationDatabaseUrl is null)
        {
            throw new DbosConfigurationException($"Transaction '{name}' needs an application database: set DbosConfig.ApplicationDatabaseUrl (or use a SqlDatasource).");
        }

        return new Transaction<TInput, TResult>(name, () => ApplicationDatasource, body, options);
    }

    /// <summary>The datasource of <see cref="DbosConfig.ApplicationDatabaseUrl"/>, available once launched.</summary>
    /// <exception cref="InvalidOperationException">No application database is configured, or the application is not launched.</exception>
    public SqlDatasource ApplicationDatasource => applicationDatasource
        ?? throw new InvalidOperationException(Config.ApplicationDatabaseUrl is null
            ? "No application database is configured: set DbosConfig.ApplicationDatabaseUrl."
            : "The application database opens at LaunchAsync; launch first.");

    /// <summary>
    /// Registers a queue: workflows started with <see cref="StartOptions.Queue"/> set to its name wait on it and run when
    /// its flow control allows, in whichever process listening to it claims them. Its options are recorded in the queues
    /// table at launch; changes made there later apply within seconds, until the next launch registers them again.
    /// </summary>
    /// <param name="name">The queue's name (names starting with <c>_dbos</c> are reserved).</param>
    /// <param name="options">Its flow control. Default: no limits.</param>
    /// <returns>The queue.</returns>
    public Queue RegisterQueue(string name, QueueOptions? options = null) => engine.RegisterQueue(name, options);

    /// <inheritdoc/>
    /// <remarks>
    /// Before <see cref="LaunchAsync"/> this is <see cref="RegisterQueue"/> (recorded at launch); after, the row is
    /// written at once and this process serves the queue. Refused when this process has registered the queue already.
    /// </remarks>
    public Task<Queue> RegisterQueueAsync(string name, QueueOptions? options = null, CancellationToken cancellationToken = default) =>
        engine.RegisterQueueAsync(name, options, cancellationToken);

    /// <inheritdoc/>
    public Task UpdateQueueAsync(string name, QueueOptions options, CancellationToken cancellationToken = default) =>
        engine.UpdateQueueAsync(name, options, cancellationToken);

    /// <inheritdoc/>
    public Task<bool> DeleteQueueAsync(string name, CancellationToken cancellationToken = default) =>
        engine.DeleteQueueAsync(name, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<Queue>> ListQueuesAsync(CancellationToken cancellationToken = default) =>
        engine.External.ListQueuesAsync(cancellationToken);

    /// <summary>
    /// Connects to the system database (creating a missing Postgres database), brings its schema to the current version,
    /// re-enqueues this executor's pending workflows of this application version, and starts running them.
    /// </summary>
    /// <param name="cancellationToken">Stops the launch.</param>
    /// <returns>A task that completes when the application is ready to start workflows.</returns>
    /// <exception cref="DbosDatabaseException">The database cannot be reached or has a schema from a newer version.</exception>
    public async Task LaunchAsync(CancellationToken cancellationToken = default)
    {
        if (Config.ApplicationDatabaseUrl is { } applicationDatabaseUrl && applicationDatasource is null)
        {
            applicationDatasource = await SqlDatasource.CreateAsync(applicationDatabaseUrl, new DatasourceOptions { TimeProvider = Config.TimeProvider }, cancellationToken).ConfigureAwait(false);
        }

        await engine.LaunchAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<TInput, TResult>(EnqueueOptions options, TInput input, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        var id = await engine.External.EnqueueAsync(options, input, typeof(TInput), hasInput: true, cancellationToken).ConfigureAwait(false);
        await engine.WarnIfUnknownQueueAsync(options.QueueName, id, cancellationToken).ConfigureAwait(false);
        engine.Dispatcher.Wake(options.QueueName);
        return new WorkflowHandle<TResult>(engine, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueInTransactionAsync<TInput, TResult>(
        System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, EnqueueOptions options, TInput input, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        var id = await engine.External.EnqueueInTransactionAsync(connection, transaction, options, input, typeof(TInput), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(engine, id);
    }

    /// <inheritdoc/>
    public Task SendInTransactionAsync<T>(
        System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        return engine.External.SendInTransactionAsync(connection, transaction, destinationWorkflowId, message, topic, idempotencyKey, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) =>
        EnqueueArgumentsAsync<TResult>(options, new PositionalArguments([arg1, arg2], [typeof(T1), typeof(T2)]), cancellationToken);

    /// <inheritdoc/>
    public Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, T3, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) =>
        EnqueueArgumentsAsync<TResult>(options, new PositionalArguments([arg1, arg2, arg3], [typeof(T1), typeof(T2), typeof(T3)]), cancellationToken);

    /// <inheritdoc/>
    public Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, T3, T4, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) =>
        EnqueueArgumentsAsync<TResult>(options, new PositionalArguments([arg1, arg2, arg3, arg4], [typeof(T1), typeof(T2), typeof(T3), typeof(T4)]), cancellationToken);

    private async Task<WorkflowHandle<TResult>> EnqueueArgumentsAsync<TResult>(EnqueueOptions options, PositionalArguments arguments, CancellationToken cancellationToken)
    {
        engine.EnsureLaunched();
        var id = await engine.External.EnqueueAsync(options, arguments, typeof(PositionalArguments), hasInput: true, cancellationToken).ConfigureAwait(false);
        await engine.WarnIfUnknownQueueAsync(options.QueueName, id, cancellationToken).ConfigureAwait(false);
        engine.Dispatcher.Wake(options.QueueName);
        return new WorkflowHandle<TResult>(engine, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<TResult>(EnqueueOptions options, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        var id = await engine.External.EnqueueAsync(options, null, typeof(object), hasInput: false, cancellationToken).ConfigureAwait(false);
        await engine.WarnIfUnknownQueueAsync(options.QueueName, id, cancellationToken).ConfigureAwait(false);
        engine.Dispatcher.Wake(options.QueueName);
        return new WorkflowHandle<TResult>(engine, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> RetrieveWorkflowAsync<TResult>(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        await engine.External.GetExistingStatusAsync(workflowId, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(engine, workflowId);
    }

    /// <inheritdoc/>
    public Task<WorkflowStatus?> GetWorkflowStatusAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return engine.GetStatusAsync(workflowId, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowStatus>> ListWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default) =>
        engine.External.ListWorkflowsAsync(options ?? new ListWorkflowsOptions(), cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowCount>> CountWorkflowsAsync(ListWorkflowsOptions? options = null, WorkflowGrouping groupBy = WorkflowGrouping.None, CancellationToken cancellationToken = default) =>
        engine.External.CountWorkflowsAsync(options ?? new ListWorkflowsOptions(), groupBy, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowStatus>> ListQueuedWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default) =>
        engine.External.ListWorkflowsAsync((options ?? new ListWorkflowsOptions()) with { QueuedOnly = true, LoadOutput = false }, cancellationToken);

    /// <inheritdoc/>
    public Task SetWorkflowPriorityAsync(string workflowId, int priority, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return engine.External.SetPriorityAsync(workflowId, priority, cancellationToken);
    }

    /// <inheritdoc/>
    public Task SetWorkflowDelayAsync(string workflowId, DateTimeOffset startAt, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return engine.External.SetDelayAsync(workflowId, startAt, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<StepInfo>> ListWorkflowStepsAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return engine.External.ListStepsAsync(workflowId, cancellationToken);
    }

    /// <inheritdoc/>
    public Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        return WorkflowExecution.Current is { } workflow
            ? workflow.SendAsync(destinationWorkflowId, message, topic, cancellationToken)
            : engine.External.SendAsync(destinationWorkflowId, message, topic, idempotencyKey, cancellationToken);
    }

    /// <inheritdoc/>
    public Task SendManyAsync<T>(IReadOnlyList<string> destinationWorkflowIds, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        return WorkflowExecution.Current is { } workflow
            ? workflow.SendManyAsync(destinationWorkflowIds, message, topic, cancellationToken)
            : engine.External.SendManyAsync(destinationWorkflowIds, message, topic, idempotencyKey, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyDictionary<string, T?>> GetAllEventsAsync<T>(string workflowId, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        return WorkflowExecution.Current is { } workflow
            ? await workflow.GetAllEventsAsync<T>(workflowId, cancellationToken).ConfigureAwait(false)
            : await engine.External.GetAllEventsAsync<T>(workflowId, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        return WorkflowExecution.Current is { } workflow
            ? workflow.GetEventAsync<T>(workflowId, key, timeout, cancellationToken)
            : engine.External.GetEventAsync<T>(workflowId, key, timeout ?? WorkflowContext.DefaultWaitTimeout, cancellationToken);
    }

    /// <inheritdoc/>
    public IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        return WorkflowExecution.Current is { } workflow
            ? workflow.ReadStreamAsync<T>(workflowId, key, fromOffset, cancellationToken)
            : engine.External.ReadStreamAsync<T>(workflowId, key, fromOffset, cancellationToken);
    }

    /// <inheritdoc/>
    public Task CancelWorkflowAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return engine.CancelAsync([workflowId], cancelChildren: false, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> CancelWorkflowsAsync(IReadOnlyList<string> workflowIds, bool cancelChildren = false, CancellationToken cancellationToken = default) =>
        engine.CancelAsync(workflowIds, cancelChildren, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>An application resumes only workflows it registers: another name fails with <see cref="WorkflowNotFoundException"/>, and nothing is changed.</remarks>
    public async Task<WorkflowHandle> ResumeWorkflowAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        await engine.ResumeAsync([workflowId], cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(engine, workflowId);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> ResumeWorkflowsAsync(IReadOnlyList<string> workflowIds, CancellationToken cancellationToken = default) =>
        engine.ResumeAsync(workflowIds, cancellationToken);

    /// <inheritdoc/>
    public async Task<WorkflowHandle> ForkWorkflowAsync(string workflowId, int startStep, ForkOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        var newId = await engine.ForkAsync(workflowId, startStep, options, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(engine, newId);
    }

    /// <inheritdoc/>
    public Task DeleteWorkflowAsync(string workflowId, bool deleteChildren = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return engine.DeleteAsync([workflowId], deleteChildren, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> DeleteWorkflowsAsync(IReadOnlyList<string> workflowIds, bool deleteChildren = false, CancellationToken cancellationToken = default) =>
        engine.DeleteAsync(workflowIds, deleteChildren, cancellationToken);

    /// <inheritdoc/>
    public async Task<long> GarbageCollectAsync(GarbageCollectOptions options, CancellationToken cancellationToken = default)
    {
        engine.EnsureLaunched();
        return await Execution.WorkflowRetention.CollectAsync(engine.External, options, waitForOthers: true, cancellationToken).ConfigureAwait(false) ?? 0;
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> GlobalTimeoutAsync(DateTimeOffset createdBefore, CancellationToken cancellationToken = default) =>
        engine.GlobalTimeoutAsync(createdBefore, cancellationToken);

    /// <inheritdoc/>
    public Task<WorkflowSchedule> CreateScheduleAsync(string workflowName, string cron, ScheduleOptions? options = null, CancellationToken cancellationToken = default) =>
        engine.External.CreateScheduleAsync(workflowName, cron, options, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowSchedule>> ListSchedulesAsync(CancellationToken cancellationToken = default) =>
        engine.External.ListSchedulesAsync(cancellationToken);

    /// <inheritdoc/>
    public Task PauseScheduleAsync(string name, CancellationToken cancellationToken = default) =>
        engine.External.SetScheduleStatusAsync(name, ScheduleStatus.Paused, cancellationToken);

    /// <inheritdoc/>
    public Task ResumeScheduleAsync(string name, CancellationToken cancellationToken = default) =>
        engine.External.SetScheduleStatusAsync(name, ScheduleStatus.Active, cancellationToken);

    /// <inheritdoc/>
    public async Task<WorkflowHandle> TriggerScheduleAsync(string name, CancellationToken cancellationToken = default)
    {
        var id = await engine.External.TriggerScheduleAsync(name, cancellationToken).ConfigureAwait(false);
        engine.Dispatcher.Wake(StatusNames.InternalQueue);
        return new WorkflowHandle(engine, id);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<string>> BackfillScheduleAsync(string name, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken = default)
    {
        var ids = await engine.External.BackfillScheduleAsync(name, start, end, cancellationToken).ConfigureAwait(false);
        engine.Dispatcher.Wake(StatusNames.InternalQueue);
        return ids;
    }

    /// <inheritdoc/>
    public Task DeleteScheduleAsync(string name, CancellationToken cancellationToken = default) =>
        engine.External.DeleteScheduleAsync(name, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<ApplicationVersionInfo>> ListApplicationVersionsAsync(CancellationToken cancellationToken = default) =>
        engine.External.ListApplicationVersionsAsync(cancellationToken);

    /// <inheritdoc/>
    public Task SetLatestApplicationVersionAsync(string versionName, CancellationToken cancellationToken = default) =>
        engine.External.SetLatestApplicationVersionAsync(versionName, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<ExecutorInfo>> ListExecutorsAsync(CancellationToken cancellationToken = default) =>
        engine.External.ListExecutorsAsync(cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> RecoverExecutorAsync(string executorId, CancellationToken cancellationToken = default) =>
        engine.RecoverExecutorAsync(executorId, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> MoveWorkflowsToVersionAsync(string fromVersion, string? toVersion = null, CancellationToken cancellationToken = default) =>
        engine.MoveWorkflowsToVersionAsync(fromVersion, toVersion, cancellationToken);

    /// <summary>
    /// Shuts down gracefully: stops taking work from queues and schedules, lets each running workflow finish the step
    /// it is in and stops it at the next step boundary (at once if it is sleeping or waiting for a message). Stopped
    /// workflows stay pending and are recovered at the next launch. When <paramref name="cancellationToken"/> fires
    /// first (a host's shutdown timeout), the remaining ones are stopped at once. Dispose the application afterwards.
    /// </summary>
    /// <param name="cancellationToken">Ends the wait for running steps.</param>
    /// <returns>A task that completes when no workflow is running here.</returns>
    public Task ShutdownAsync(CancellationToken cancellationToken = default) => engine.ShutdownAsync(cancellationToken);

    /// <summary>
    /// Stops taking work, stops running workflows at their next step boundary without recording anything (they stay
    /// pending and are recovered at the next launch), and closes the system database.
    /// </summary>
    /// <returns>A task that completes when everything is closed.</returns>
    /// <remarks>It may be called more than once (a host's service container disposes an application its hosted service already disposed): later calls do nothing.</remarks>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        await engine.DisposeAsync().ConfigureAwait(false);
        await engine.Database.DisposeAsync().ConfigureAwait(false);
        if (applicationDatasource is not null)
        {
            await applicationDatasource.DisposeAsync().ConfigureAwait(false);
        }
    }
}
