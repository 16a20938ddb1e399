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
    private readonly WorkflowReader reader;
    private readonly Lazy<Task> listening;

    private DbosClient(WorkflowReader reader)
    {
        this.reader = reader;
        listening = new Lazy<Task>(reader.Database.StartListeningAsync);
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
        var executor = SqlExecutor.Create(url, setting, options.SystemDatabaseSchema, options.SystemDatabasePoolSize, options.SystemDatabaseDataSource, SqliteSynchronous.Normal);
        var logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Dbos.Client");
        var time = options.TimeProvider ?? TimeProvider.System;
        var database = new SystemDatabase.SystemDatabase(executor, options.ApplicationName ?? string.Empty, logger, time);
        return new DbosClient(new WorkflowReader(database, new ValueCodec(options.Serializer ?? PortableJsonSerializer.Default), time, options.PollingInterval, options.ApplicationName));
    }

    /// <summary>The system database, with any password masked.</summary>
    public string SystemDatabase => reader.Database.Description;

    private async Task<WorkflowReader> ReadyAsync()
    {
        await listening.Value.ConfigureAwait(false);
        return reader;
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
        var id = await reader.EnqueueAsync(options, input, typeof(TInput), hasInput: true, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(reader, id);
    }

    /// <summary>Enqueues a workflow that takes no input, by name.</summary>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow.</returns>
    public async Task<WorkflowHandle<TResult>> EnqueueAsync<TResult>(EnqueueOptions options, CancellationToken cancellationToken = default)
    {
        var id = await reader.EnqueueAsync(options, null, typeof(object), hasInput: false, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(reader, id);
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
        await reader.GetExistingStatusAsync(workflowId, cancellationToken).ConfigureAwait(false);
        return new WorkflowHandle<TResult>(reader, workflowId);
    }

    /// <summary>Reads one workflow's status.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The status, or null if no workflow has this ID.</returns>
    public Task<WorkflowStatus?> GetWorkflowStatusAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return reader.GetStatusAsync(workflowId, cancellationToken);
    }

    /// <summary>Lists workflows (of <see cref="DbosClientOptions.ApplicationName"/> if set), oldest first unless asked otherwise.</summary>
    /// <param name="options">Filters and paging; null lists every workflow.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The matching workflows.</returns>
    public Task<IReadOnlyList<WorkflowStatus>> ListWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default) =>
        reader.ListWorkflowsAsync(options ?? new ListWorkflowsOptions(), cancellationToken);

    /// <summary>Lists the recorded operations of a workflow, in order.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The operations, by function ID.</returns>
    public Task<IReadOnlyList<StepInfo>> ListWorkflowStepsAsync(string workflowId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(workflowId);
        return reader.ListStepsAsync(workflowId, cancellationToken);
    }

    /// <summary>Closes the client's connections.</summary>
    /// <returns>A task that completes when everything is closed.</returns>
    public ValueTask DisposeAsync() => reader.Database.DisposeAsync();
}
