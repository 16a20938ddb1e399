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
}

/// <summary>
/// Talks to DBOS applications through their system database, from a process that runs no workflows (a web front end,
/// a script, another service): sends messages, reads events and streams, waits for results, lists workflows.
/// </summary>
public sealed class DbosClient : IAsyncDisposable
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
    /// <exception cref="DbosConfigurationException">The configuration is invalid (for example a malformed URL).</exception>
    public static DbosClient Create(DbosClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.PollingInterval <= TimeSpan.Zero)
        {
            throw new DbosConfigurationException("DbosClientOptions.PollingInterval must be positive.");
        }

        var (url, setting) = options.SystemDatabaseUrl is not null
            ? (options.SystemDatabaseUrl, "DbosClientOptions.SystemDatabaseUrl")
            : (Environment.GetEnvironmentVariable(DbosConfig.SystemDatabaseUrlVariable), DbosConfig.SystemDatabaseUrlVariable);
        var executor = SqlExecutor.Create(url, setting, options.SystemDatabaseSchema, options.SystemDatabasePoolSize, options.SystemDatabaseDataSource, SqliteSynchronous.Normal, mayCreate: false);
        var logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Dbos.Client");
        var time = options.TimeProvider ?? TimeProvider.System;
        var database = new SystemDatabase.SystemDatabase(executor, options.ApplicationName ?? string.Empty, logger, time);
        return new DbosClient(new ExternalAccess(database, new ValueCodec(options.Serializer ?? PortableJsonSerializer.Default), time, options.PollingInterval, options.ApplicationName));
    }

    /// <summary>The system database, with any password masked.</summary>
    public string SystemDatabase => external.Database.Description;

    private async Task<ExternalAccess> ReadyAsync()
    {
        await listening.Value.ConfigureAwait(false);
        return external;
    }

    /// <summary>
    /// Sends a message to a workflow. With an <paramref name="idempotencyKey"/>, sending again with the same key (a retry)
    /// delivers the message once.
    /// </summary>
    /// <typeparam name="T">The message's type; must be serializable.</typeparam>
    /// <param name="destinationWorkflowId">The receiving workflow's ID.</param>
    /// <param name="message">The message.</param>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="idempotencyKey">Makes retries of this send deliver once.</param>
    /// <param name="cancellationToken">Stops the send.</param>
    /// <returns>A task that completes when the message is stored.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has the destination ID.</exception>
    public async Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync().ConfigureAwait(false)).SendAsync(destinationWorkflowId, message, topic, idempotencyKey, cancellationToken).ConfigureAwait(false);

    /// <summary>Waits up to <paramref name="timeout"/> for a workflow to set an event, and returns its latest value.</summary>
    /// <typeparam name="T">The value's type. Read a nullable type to tell a timeout from a default value.</typeparam>
    /// <param name="workflowId">The workflow that sets the event.</param>
    /// <param name="key">The event's key.</param>
    /// <param name="timeout">How long to wait; default <see cref="WorkflowContext.DefaultWaitTimeout"/>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The value, or default (null) if it was not set in time.</returns>
    public async Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync().ConfigureAwait(false)).GetEventAsync<T>(workflowId, key, timeout ?? WorkflowContext.DefaultWaitTimeout, cancellationToken).ConfigureAwait(false);

    /// <summary>Reads a workflow's stream in order, from <paramref name="fromOffset"/> to its end, waiting for new values.</summary>
    /// <typeparam name="T">The values' type.</typeparam>
    /// <param name="workflowId">The workflow that writes the stream.</param>
    /// <param name="key">The stream's name.</param>
    /// <param name="fromOffset">The first offset to read (0: from the start).</param>
    /// <param name="cancellationToken">Stops reading.</param>
    /// <returns>The stream's values; the sequence ends when the stream is closed or its workflow has finished.</returns>
    public async IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var ready = await ReadyAsync().ConfigureAwait(false);
        await foreach (var value in ready.ReadStreamAsync<T>(workflowId, key, fromOffset, cancellationToken).ConfigureAwait(false))
        {
            yield return value;
        }
    }

    /// <summary>
    /// Enqueues a workflow by name, for an application that registers it and serves <see cref="EnqueueOptions.QueueName"/>
    /// (in any language: the input is stored in <c>portable_json</c> as its single positional argument).
    /// </summary>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="input">The workflow's input.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowDeduplicatedException">A workflow with the same deduplication ID is queued or running.</exception>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<TInput, TResult>(EnqueueOptions options, TInput input, CancellationToken cancellationToken = default)
    {
        var id = await external.EnqueueAsync(options, input, typeof(TInput), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <summary>Enqueues a workflow that takes no input, by name.</summary>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<TResult>(EnqueueOptions options, CancellationToken cancellationToken = default)
    {
        var id = await external.EnqueueAsync(options, null, typeof(object), hasInput: false, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, id);
    }

    /// <summary>A handle to an existing workflow, by ID.</summary>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the lookup.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has this ID.</exception>
    public async Task<WorkflowHandle<TResult>> RetrieveWorkflowAsync<TResult>(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        await external.GetExistingStatusAsync(workflowId, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(external, workflowId);
    }

    /// <summary>Reads one workflow's status.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The status, or null if no workflow has this ID.</returns>
    public Task<WorkflowStatus?> GetWorkflowStatusAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return external.GetStatusAsync(workflowId, cancellationToken);
    }

    /// <summary>Lists workflows (of <see cref="DbosClientOptions.ApplicationName"/> if set), oldest first unless asked otherwise.</summary>
    /// <param name="options">Filters and paging; null lists every workflow.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The matching workflows.</returns>
    public Task<IReadOnlyList<WorkflowStatus>> ListWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default) =>
        external.ListWorkflowsAsync(options ?? new ListWorkflowsOptions(), cancellationToken);

    /// <summary>Lists the recorded operations of a workflow, in order.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The operations, by function ID.</returns>
    public Task<IReadOnlyList<StepInfo>> ListWorkflowStepsAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return external.ListStepsAsync(workflowId, cancellationToken);
    }

    /// <summary>Lists workflows still on a queue (enqueued, delayed, or running from a queue).</summary>
    /// <param name="options">More filters (queue, partition, status…) and paging.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The queued workflows.</returns>
    public Task<IReadOnlyList<WorkflowStatus>> ListQueuedWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default) =>
        external.ListWorkflowsAsync((options ?? new ListWorkflowsOptions()) with { QueuedOnly = true, LoadOutput = false }, cancellationToken);

    /// <summary>Cancels workflows: they stop at their next step and are not recovered until resumed.</summary>
    /// <param name="workflowIds">The workflows' IDs.</param>
    /// <param name="cancelChildren">Also cancel their child workflows, recursively.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs that were cancelled (finished workflows are left as they are).</returns>
    /// <exception cref="WorkflowNotFoundException">One of the IDs is unknown; nothing was changed.</exception>
    public Task<IReadOnlyList<string>> CancelWorkflowsAsync(IReadOnlyList<string> workflowIds, bool cancelChildren = false, CancellationToken cancellationToken = default) =>
        external.CancelAsync(workflowIds, cancelChildren, cancellationToken);

    /// <summary>Resumes workflows from their last recorded step, with a fresh budget of recovery attempts.</summary>
    /// <param name="workflowIds">The workflows' IDs.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs that were resumed (finished workflows are left as they are).</returns>
    /// <exception cref="WorkflowNotFoundException">One of the IDs is unknown; nothing was changed.</exception>
    public Task<IReadOnlyList<string>> ResumeWorkflowsAsync(IReadOnlyList<string> workflowIds, CancellationToken cancellationToken = default) =>
        external.ResumeAsync(workflowIds, null, cancellationToken);

    /// <summary>Starts a copy of a workflow that reuses the outcomes recorded before <paramref name="startStep"/>.</summary>
    /// <param name="workflowId">The original workflow's ID.</param>
    /// <param name="startStep">The function ID to re-run from.</param>
    /// <param name="options">The new ID and application version.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A handle to the new workflow.</returns>
    public async Task<WorkflowHandle> ForkWorkflowAsync(string workflowId, int startStep, ForkOptions? options = null, CancellationToken cancellationToken = default) =>
        new(external, await external.ForkAsync(workflowId, startStep, options, cancellationToken).ConfigureAwait(false));

    /// <summary>Deletes workflows and everything recorded for them (and, if asked, their children).</summary>
    /// <param name="workflowIds">The workflows' IDs.</param>
    /// <param name="deleteChildren">Also delete their child workflows, recursively.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>Every ID deleted.</returns>
    public Task<IReadOnlyList<string>> DeleteWorkflowsAsync(IReadOnlyList<string> workflowIds, bool deleteChildren = false, CancellationToken cancellationToken = default) =>
        external.DeleteAsync(workflowIds, deleteChildren, cancellationToken);

    /// <summary>Changes the priority of a workflow still waiting on its queue.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="priority">The new priority (lower runs first).</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the priority is recorded.</returns>
    public Task SetWorkflowPriorityAsync(string workflowId, int priority, CancellationToken cancellationToken = default) =>
        external.SetPriorityAsync(workflowId, priority, cancellationToken);

    /// <summary>Changes when a delayed workflow may start.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="startAt">The earliest time it may start.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the new time is recorded.</returns>
    public Task SetWorkflowDelayAsync(string workflowId, DateTimeOffset startAt, CancellationToken cancellationToken = default) =>
        external.SetDelayAsync(workflowId, startAt, cancellationToken);

    /// <summary>Creates a schedule for a workflow of an application.</summary>
    /// <param name="workflowName">The workflow each tick starts.</param>
    /// <param name="cron">The cron expression: 5 fields, or 6 with seconds first.</param>
    /// <param name="options">Name, time zone, queue and backfill.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The schedule.</returns>
    public Task<WorkflowSchedule> CreateScheduleAsync(string workflowName, string cron, ScheduleOptions? options = null, CancellationToken cancellationToken = default) =>
        external.CreateScheduleAsync(workflowName, cron, options, cancellationToken);

    /// <summary>Lists schedules (of <see cref="DbosClientOptions.ApplicationName"/> if set).</summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The schedules, by name.</returns>
    public Task<IReadOnlyList<WorkflowSchedule>> ListSchedulesAsync(CancellationToken cancellationToken = default) => external.ListSchedulesAsync(cancellationToken);

    /// <summary>Pauses a schedule.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the schedule is paused.</returns>
    public Task PauseScheduleAsync(string name, CancellationToken cancellationToken = default) => external.SetScheduleStatusAsync(name, ScheduleStatus.Paused, cancellationToken);

    /// <summary>Resumes a paused schedule.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the schedule is active.</returns>
    public Task ResumeScheduleAsync(string name, CancellationToken cancellationToken = default) => external.SetScheduleStatusAsync(name, ScheduleStatus.Active, cancellationToken);

    /// <summary>Runs a schedule's workflow now.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A handle to the run.</returns>
    public async Task<WorkflowHandle> TriggerScheduleAsync(string name, CancellationToken cancellationToken = default) =>
        new(external, await external.TriggerScheduleAsync(name, cancellationToken).ConfigureAwait(false));

    /// <summary>Runs every tick of a schedule between two times that has not run yet.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="start">The start of the interval (exclusive).</param>
    /// <param name="end">The end of the interval (exclusive).</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs of the runs.</returns>
    public Task<IReadOnlyList<string>> BackfillScheduleAsync(string name, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken = default) =>
        external.BackfillScheduleAsync(name, start, end, cancellationToken);

    /// <summary>Deletes a schedule.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the schedule is deleted.</returns>
    public Task DeleteScheduleAsync(string name, CancellationToken cancellationToken = default) => external.DeleteScheduleAsync(name, cancellationToken);

    /// <summary>Lists application versions, latest first.</summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The versions.</returns>
    public Task<IReadOnlyList<ApplicationVersionInfo>> ListApplicationVersionsAsync(CancellationToken cancellationToken = default) =>
        external.ListApplicationVersionsAsync(cancellationToken);

    /// <summary>Marks a version as the latest.</summary>
    /// <param name="versionName">The version.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the version is marked.</returns>
    public Task SetLatestApplicationVersionAsync(string versionName, CancellationToken cancellationToken = default) =>
        external.SetLatestApplicationVersionAsync(versionName, cancellationToken);

    /// <summary>
    /// Lists the executors of <see cref="DbosClientOptions.ApplicationName"/> (which must be set): every live process,
    /// idle ones too, and every executor that holds pending workflows, with its state, how many it holds and of which versions.
    /// </summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The executors, live ones first.</returns>
    public Task<IReadOnlyList<ExecutorInfo>> ListExecutorsAsync(CancellationToken cancellationToken = default) =>
        external.ListExecutorsAsync(cancellationToken);

    /// <summary>
    /// Recovers an executor's work by hand: puts the workflows of <see cref="DbosClientOptions.ApplicationName"/> that
    /// <paramref name="executorId"/> holds as pending back on their queues, where processes serving their version run
    /// them. Refused while the executor is alive.
    /// </summary>
    /// <param name="executorId">The executor.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs of the workflows recovered.</returns>
    /// <exception cref="InvalidOperationException">The executor is alive, or no application name is set.</exception>
    public async Task<IReadOnlyList<string>> RecoverExecutorAsync(string executorId, CancellationToken cancellationToken = default) =>
        [.. (await external.RecoverExecutorAsync(executorId, cancellationToken).ConfigureAwait(false)).Select(m => m.WorkflowId)];

    /// <summary>
    /// Moves the workflows waiting for version <paramref name="fromVersion"/> (enqueued or delayed; of
    /// <see cref="DbosClientOptions.ApplicationName"/> when set, else of every application) to <paramref name="toVersion"/>,
    /// by default the latest registered version, so that processes of that version run them. Pending workflows are not
    /// moved: they run somewhere, or become enqueued when recovered.
    /// </summary>
    /// <param name="fromVersion">The version the workflows wait for.</param>
    /// <param name="toVersion">The version to move them to. Default: the latest registered version.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs of the workflows moved.</returns>
    /// <exception cref="InvalidOperationException">No <paramref name="toVersion"/> is given and no version is registered.</exception>
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
