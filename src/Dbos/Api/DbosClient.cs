using Dbos.Execution;
using Dbos.Serialization;
using Dbos.SystemDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Dbos;

/// <summary>The configuration of a <see cref="DbosClient"/>.</summary>
public sealed class DbosClientOptions
{
    /// <summary>The system database (same URL forms as <see cref="DbosConfig.SystemDatabaseUrl"/>). Default: <c>DBOS_SYSTEM_DATABASE_URL</c>.</summary>
    public string? SystemDatabaseUrl { get; set; }

    /// <summary>The Postgres schema holding the system tables. Default <c>dbos</c>.</summary>
    public string SystemDatabaseSchema { get; set; } = "dbos";

    /// <summary>The maximum number of pooled Postgres connections. Default 10.</summary>
    public int SystemDatabasePoolSize { get; set; } = 10;

    /// <summary>A Postgres data source to use instead of one built from the URL.</summary>
    public NpgsqlDataSource? SystemDatabaseDataSource { get; set; }

    /// <summary>Only list this application's workflows (and unclaimed ones). Default: list every application's.</summary>
    public string? ApplicationName { get; set; }

    /// <summary>The serializer for values the client writes and reads. Default <see cref="PortableJsonSerializer"/>.</summary>
    public IDbosSerializer? Serializer { get; set; }

    /// <summary>The clock for timeouts. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? TimeProvider { get; set; }

    /// <summary>Where the client logs. Default: no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>How often waits poll when changes are not signalled. Default 1 second.</summary>
    public TimeSpan PollingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>What is wrong with these options, one sentence per problem.</summary>
    internal IEnumerable<string> Problems()
    {
        if (PollingInterval <= TimeSpan.Zero)
        {
            yield return "DbosClientOptions.PollingInterval must be positive.";
        }

        if (SystemDatabasePoolSize < 1)
        {
            yield return $"DbosClientOptions.SystemDatabasePoolSize must be at least 1 (it is {SystemDatabasePoolSize}).";
        }

        if (string.IsNullOrWhiteSpace(SystemDatabaseSchema))
        {
            yield return "DbosClientOptions.SystemDatabaseSchema must not be empty.";
        }

        if (DbosConfig.UrlProblem(SystemDatabaseUrl, "DbosClientOptions.SystemDatabaseUrl") is { } problem)
        {
            yield return problem;
        }
    }
}

/// <summary>
/// Talks to DBOS applications through their system database, from a process that runs no workflows (a web front end,
/// a script, another service): sends messages, reads events and streams, waits for results, lists workflows.
/// </summary>
public sealed class DbosClient : IDbosOperations
{
    private readonly ExternalAccess external;
    private readonly Lazy<Task> listening;

    private DbosClient(ExternalAccess external)
    {
        this.external = external;
        listening = new Lazy<Task>(external.Database.StartListeningAsync);
    }

    /// <summary>Creates a client. The system database must already have been created by a DBOS application.</summary>
    /// <param name="options">The client's configuration.</param>
    /// <returns>The client.</returns>
    /// <exception cref="DbosConfigurationException">The configuration is invalid (for example a malformed URL); the message names every problem.</exception>
    public static DbosClient Create(DbosClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        DbosConfig.ThrowIfAny(options.Problems());

        var (url, setting) = options.SystemDatabaseUrl is not null
            ? (options.SystemDatabaseUrl, "DbosClientOptions.SystemDatabaseUrl")
            : (Environment.GetEnvironmentVariable(DbosConfig.SystemDatabaseUrlVariable), DbosConfig.SystemDatabaseUrlVariable);
        var executor = SqlExecutor.Create(url, setting, options.SystemDatabaseSchema, options.SystemDatabasePoolSize, options.SystemDatabaseDataSource, SqliteSynchronous.Normal, mayCreate: false);
        var logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Dbos.Client");
        var time = options.TimeProvider ?? TimeProvider.System;
        var database = new SystemDatabase.SystemDatabase(executor, options.ApplicationName ?? string.Empty, logger);
        return new DbosClient(new ExternalAccess(database, new ValueCodec(options.Serializer ?? PortableJsonSerializer.Default), time, options.PollingInterval, options.ApplicationName));
    }

    /// <inheritdoc/>
    public string SystemDatabase => external.Database.Description;

    /// <summary>What the client reads and writes through (for <see cref="Debouncer{TInput, TResult}"/>).</summary>
    internal ExternalAccess External => external;

    private async Task<ExternalAccess> ReadyAsync()
    {
        await listening.Value.ConfigureAwait(false);
        return external;
    }

    /// <inheritdoc/>
    public async Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync().ConfigureAwait(false)).SendAsync(destinationWorkflowId, message, topic, idempotencyKey, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public async Task SendManyAsync<T>(IReadOnlyList<string> destinationWorkflowIds, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync().ConfigureAwait(false)).SendManyAsync(destinationWorkflowIds, message, topic, idempotencyKey, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public async Task<IReadOnlyDictionary<string, T?>> GetAllEventsAsync<T>(string workflowId, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync().ConfigureAwait(false)).GetAllEventsAsync<T>(workflowId, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public async Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync().ConfigureAwait(false)).GetEventAsync<T>(workflowId, key, timeout ?? WorkflowContext.DefaultWaitTimeout, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public async IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var ready = await ReadyAsync().ConfigureAwait(false);
        await foreach (var value in ready.ReadStreamAsync<T>(workflowId, key, fromOffset, cancellationToken).ConfigureAwait(false))
        {
            yield return value;
        }
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<TInput, TResult>(EnqueueOptions options, TInput input, CancellationToken cancellationToken = default)
    {
        var id = await external.EnqueueAsync(options, input, typeof(TInput), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, CancellationToken cancellationToken = default)
    {
        var arguments = new PositionalArguments([arg1, arg2], [typeof(T1), typeof(T2)]);
        var id = await external.EnqueueAsync(options, arguments, typeof(PositionalArguments), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, T3, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default)
    {
        var arguments = new PositionalArguments([arg1, arg2, arg3], [typeof(T1), typeof(T2), typeof(T3)]);
        var id = await external.EnqueueAsync(options, arguments, typeof(PositionalArguments), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, T3, T4, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default)
    {
        var arguments = new PositionalArguments([arg1, arg2, arg3, arg4], [typeof(T1), typeof(T2), typeof(T3), typeof(T4)]);
        var id = await external.EnqueueAsync(options, arguments, typeof(PositionalArguments), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<TResult>(EnqueueOptions options, CancellationToken cancellationToken = default)
    {
        var id = await external.EnqueueAsync(options, null, typeof(object), hasInput: false, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> EnqueueInTransactionAsync<TInput, TResult>(
        System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, EnqueueOptions options, TInput input, CancellationToken cancellationToken = default)
    {
        var id = await external.EnqueueInTransactionAsync(connection, transaction, options, input, typeof(TInput), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <inheritdoc/>
    public Task SendInTransactionAsync<T>(
        System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        external.SendInTransactionAsync(connection, transaction, destinationWorkflowId, message, topic, idempotencyKey, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>From a client, registering a queue that the application owns already replaces its limits.</remarks>
    public Task<Queue> RegisterQueueAsync(string name, QueueOptions? options = null, CancellationToken cancellationToken = default) =>
        external.RegisterQueueAsync(name, options, cancellationToken);

    /// <inheritdoc/>
    public Task UpdateQueueAsync(string name, QueueOptions options, CancellationToken cancellationToken = default) =>
        external.UpdateQueueAsync(name, options, cancellationToken);

    /// <inheritdoc/>
    public Task<bool> DeleteQueueAsync(string name, CancellationToken cancellationToken = default) => external.DeleteQueueAsync(name, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<Queue>> ListQueuesAsync(CancellationToken cancellationToken = default) => external.ListQueuesAsync(cancellationToken);

    /// <inheritdoc/>
    public async Task<WorkflowHandle<TResult>> RetrieveWorkflowAsync<TResult>(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        await external.GetExistingStatusAsync(workflowId, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, workflowId);
    }

    /// <inheritdoc/>
    public Task<WorkflowStatus?> GetWorkflowStatusAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return external.GetStatusAsync(workflowId, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowStatus>> ListWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default) =>
        external.ListWorkflowsAsync(options ?? new ListWorkflowsOptions(), cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<StepInfo>> ListWorkflowStepsAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return external.ListStepsAsync(workflowId, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowCount>> CountWorkflowsAsync(ListWorkflowsOptions? options = null, WorkflowGrouping groupBy = WorkflowGrouping.None, CancellationToken cancellationToken = default) =>
        external.CountWorkflowsAsync(options ?? new ListWorkflowsOptions(), groupBy, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowStatus>> ListQueuedWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default) =>
        external.ListWorkflowsAsync((options ?? new ListWorkflowsOptions()) with { QueuedOnly = true, LoadOutput = false }, cancellationToken);

    /// <inheritdoc/>
    public async Task CancelWorkflowAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        await external.CancelAsync([workflowId], cancelChildren: false, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> CancelWorkflowsAsync(IReadOnlyList<string> workflowIds, bool cancelChildren = false, CancellationToken cancellationToken = default) =>
        external.CancelAsync(workflowIds, cancelChildren, cancellationToken);

    /// <inheritdoc/>
    public async Task<WorkflowHandle> ResumeWorkflowAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        await external.ResumeAsync([workflowId], null, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle(external, workflowId);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> ResumeWorkflowsAsync(IReadOnlyList<string> workflowIds, CancellationToken cancellationToken = default) =>
        external.ResumeAsync(workflowIds, null, cancellationToken);

    /// <inheritdoc/>
    public async Task<WorkflowHandle> ForkWorkflowAsync(string workflowId, int startStep, ForkOptions? options = null, CancellationToken cancellationToken = default) =>
        new(external, await external.ForkAsync(workflowId, startStep, options, cancellationToken).ConfigureAwait(false));

    /// <inheritdoc/>
    public async Task DeleteWorkflowAsync(string workflowId, bool deleteChildren = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        await external.DeleteAsync([workflowId], deleteChildren, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> DeleteWorkflowsAsync(IReadOnlyList<string> workflowIds, bool deleteChildren = false, CancellationToken cancellationToken = default) =>
        external.DeleteAsync(workflowIds, deleteChildren, cancellationToken);

    /// <inheritdoc/>
    public async Task<long> GarbageCollectAsync(GarbageCollectOptions options, CancellationToken cancellationToken = default) =>
        await Execution.WorkflowRetention.CollectAsync(external, options, waitForOthers: true, cancellationToken).ConfigureAwait(false) ?? 0;

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> GlobalTimeoutAsync(DateTimeOffset createdBefore, CancellationToken cancellationToken = default) =>
        Execution.WorkflowRetention.GlobalTimeoutAsync(external, createdBefore, cancellationToken);

    /// <inheritdoc/>
    public Task SetWorkflowPriorityAsync(string workflowId, int priority, CancellationToken cancellationToken = default) =>
        external.SetPriorityAsync(workflowId, priority, cancellationToken);

    /// <inheritdoc/>
    public Task SetWorkflowDelayAsync(string workflowId, DateTimeOffset startAt, CancellationToken cancellationToken = default) =>
        external.SetDelayAsync(workflowId, startAt, cancellationToken);

    /// <inheritdoc/>
    public Task<WorkflowSchedule> CreateScheduleAsync(string workflowName, string cron, ScheduleOptions? options = null, CancellationToken cancellationToken = default) =>
        external.CreateScheduleAsync(workflowName, cron, options, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<WorkflowSchedule>> ListSchedulesAsync(CancellationToken cancellationToken = default) => external.ListSchedulesAsync(cancellationToken);

    /// <inheritdoc/>
    public Task PauseScheduleAsync(string name, CancellationToken cancellationToken = default) => external.SetScheduleStatusAsync(name, ScheduleStatus.Paused, cancellationToken);

    /// <inheritdoc/>
    public Task ResumeScheduleAsync(string name, CancellationToken cancellationToken = default) => external.SetScheduleStatusAsync(name, ScheduleStatus.Active, cancellationToken);

    /// <inheritdoc/>
    public async Task<WorkflowHandle> TriggerScheduleAsync(string name, CancellationToken cancellationToken = default) =>
        new(external, await external.TriggerScheduleAsync(name, cancellationToken).ConfigureAwait(false));

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> BackfillScheduleAsync(string name, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken = default) =>
        external.BackfillScheduleAsync(name, start, end, cancellationToken);

    /// <inheritdoc/>
    public Task DeleteScheduleAsync(string name, CancellationToken cancellationToken = default) => external.DeleteScheduleAsync(name, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<ApplicationVersionInfo>> ListApplicationVersionsAsync(CancellationToken cancellationToken = default) =>
        external.ListApplicationVersionsAsync(cancellationToken);

    /// <inheritdoc/>
    public Task SetLatestApplicationVersionAsync(string versionName, CancellationToken cancellationToken = default) =>
        external.SetLatestApplicationVersionAsync(versionName, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<ExecutorInfo>> ListExecutorsAsync(CancellationToken cancellationToken = default) =>
        external.ListExecutorsAsync(cancellationToken);

    /// <inheritdoc/>
    public async Task<IReadOnlyList<string>> RecoverExecutorAsync(string executorId, CancellationToken cancellationToken = default) =>
        [.. (await external.RecoverExecutorAsync(executorId, cancellationToken).ConfigureAwait(false)).Select(m => m.WorkflowId)];

    /// <inheritdoc/>
    public async Task<IReadOnlyList<string>> MoveWorkflowsToVersionAsync(string fromVersion, string? toVersion = null, CancellationToken cancellationToken = default) =>
        [.. (await external.MoveWorkflowsToVersionAsync(fromVersion, toVersion, cancellationToken).ConfigureAwait(false)).Select(m => m.WorkflowId)];

    /// <summary>Creates the system database if needed and brings its schema to the current version (what <c>dbos migrate</c> does).</summary>
    /// <param name="cancellationToken">Stops the migration.</param>
    /// <returns>A task that completes when the schema is current.</returns>
    public Task MigrateAsync(CancellationToken cancellationToken = default) => external.Database.MigrateAsync(cancellationToken);

    /// <summary>Deletes the system tables and every workflow recorded in them (what <c>dbos reset</c> does).</summary>
    internal Task ResetAsync(CancellationToken cancellationToken) => external.Database.ResetAsync(cancellationToken);

    /// <summary>Closes the client's connections.</summary>
    /// <returns>A task that completes when everything is closed.</returns>
    public ValueTask DisposeAsync() => external.Database.DisposeAsync();
}
