namespace Dbos;

/// <summary>
/// What a <see cref="DbosApp"/> and a <see cref="DbosClient"/> both do through the system database: enqueue and find
/// workflows, manage them, exchange messages, events and streams, and operate schedules, versions and executors.
/// Code that only needs these can take either one.
/// </summary>
/// <remarks>
/// Called on a <see cref="DbosApp"/> from inside one of its workflows, <see cref="SendAsync{T}"/>,
/// <see cref="GetEventAsync{T}"/> and <see cref="ReadStreamAsync{T}"/> are recorded as the workflow's operations, as
/// the same calls on <see cref="WorkflowContext"/> are. A <see cref="DbosClient"/> lists and changes the workflows of
/// <see cref="DbosClientOptions.ApplicationName"/> when it is set, else of every application; an application those of
/// its own name.
/// </remarks>
public interface IDbosOperations : IAsyncDisposable
{
    /// <summary>The system database, with any password masked.</summary>
    string SystemDatabase { get; }

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
    Task<WorkflowHandle<TResult>> EnqueueAsync<TInput, TResult>(EnqueueOptions options, TInput input, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues a workflow of 2 parameters by name (in any language), its arguments stored in <c>portable_json</c> as
    /// its positional arguments, in order.
    /// </summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowDeduplicatedException">A workflow with the same deduplication ID is queued or running.</exception>
    Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues a workflow of 3 parameters by name (in any language), its arguments stored in <c>portable_json</c> as
    /// its positional arguments, in order.
    /// </summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowDeduplicatedException">A workflow with the same deduplication ID is queued or running.</exception>
    Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, T3, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues a workflow of 4 parameters by name (in any language), its arguments stored in <c>portable_json</c> as
    /// its positional arguments, in order.
    /// </summary>
    /// <typeparam name="T1">The type of the first argument; must be serializable.</typeparam>
    /// <typeparam name="T2">The type of the second argument; must be serializable.</typeparam>
    /// <typeparam name="T3">The type of the third argument; must be serializable.</typeparam>
    /// <typeparam name="T4">The type of the fourth argument; must be serializable.</typeparam>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="arg1">The first argument.</param>
    /// <param name="arg2">The second argument.</param>
    /// <param name="arg3">The third argument.</param>
    /// <param name="arg4">The fourth argument.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowDeduplicatedException">A workflow with the same deduplication ID is queued or running.</exception>
    Task<WorkflowHandle<TResult>> EnqueueAsync<T1, T2, T3, T4, TResult>(EnqueueOptions options, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default);

    /// <summary>Enqueues a workflow that takes no input, by name.</summary>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="options">The workflow, the queue and the enqueue options.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowDeduplicatedException">A workflow with the same deduplication ID is queued or running.</exception>
    Task<WorkflowHandle<TResult>> EnqueueAsync<TResult>(EnqueueOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues a workflow by name inside your own open transaction (the outbox pattern): the workflow exists, and
    /// runs, only if you commit; a rollback leaves nothing. Needs a Postgres system database in the same database as
    /// your connection (checked, once per connection string); refused with <see cref="InvalidOperationException"/>
    /// otherwise, before anything is written.
    /// </summary>
    /// <typeparam name="TInput">The input's type; must be serializable.</typeparam>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="connection">Your open Npgsql connection to the database that holds the system database's schema.</param>
    /// <param name="transaction">The transaction open on it; you commit or roll it back.</param>
    /// <param name="options">The workflow, the queue and the enqueue options (<see cref="DeduplicationPolicy.ReturnExisting"/> is refused: a collision aborts your transaction).</param>
    /// <param name="input">The workflow's input.</param>
    /// <param name="cancellationToken">Stops the enqueue.</param>
    /// <returns>A handle to the workflow, which resolves once you have committed.</returns>
    /// <exception cref="InvalidOperationException">The system database is SQLite, or another database than your connection's.</exception>
    /// <exception cref="WorkflowDeduplicatedException">The deduplication ID is held; your transaction is aborted.</exception>
    Task<WorkflowHandle<TResult>> EnqueueInTransactionAsync<TInput, TResult>(
        System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, EnqueueOptions options, TInput input, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends a message inside your own open transaction (the outbox pattern): it is delivered only if you commit. The
    /// same requirements as <see cref="EnqueueInTransactionAsync{TInput, TResult}"/>.
    /// </summary>
    /// <typeparam name="T">The message's type; must be serializable.</typeparam>
    /// <param name="connection">Your open Npgsql connection to the database that holds the system database's schema.</param>
    /// <param name="transaction">The transaction open on it; you commit or roll it back.</param>
    /// <param name="destinationWorkflowId">The receiving workflow's ID.</param>
    /// <param name="message">The message.</param>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="idempotencyKey">Makes retries of this send deliver once (as <see cref="SendAsync{T}"/>).</param>
    /// <param name="cancellationToken">Stops the send.</param>
    /// <returns>A task that completes when the message is written in your transaction.</returns>
    /// <exception cref="InvalidOperationException">The system database is SQLite, or another database than your connection's.</exception>
    /// <exception cref="WorkflowNotFoundException">No workflow has the destination ID; your transaction is aborted.</exception>
    Task SendInTransactionAsync<T>(
        System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default);

    /// <summary>A handle to an existing workflow, by ID.</summary>
    /// <typeparam name="TResult">The workflow's result type.</typeparam>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the lookup.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has this ID.</exception>
    Task<WorkflowHandle<TResult>> RetrieveWorkflowAsync<TResult>(string workflowId, CancellationToken cancellationToken = default);

    /// <summary>Reads one workflow's status.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The status, or null if no workflow has this ID.</returns>
    Task<WorkflowStatus?> GetWorkflowStatusAsync(string workflowId, CancellationToken cancellationToken = default);

    /// <summary>Lists workflows, oldest first unless asked otherwise (any application's when filtering by ID).</summary>
    /// <param name="options">Filters and paging; null lists every workflow.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The matching workflows.</returns>
    Task<IReadOnlyList<WorkflowStatus>> ListWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Counts the workflows that <see cref="ListWorkflowsAsync"/> would list with the same filters (paging and loading
    /// options are ignored), in one group per distinct combination of the <paramref name="groupBy"/> columns.
    /// </summary>
    /// <param name="options">Filters; null counts every workflow of the application.</param>
    /// <param name="groupBy">The columns to group by (combine flags); <see cref="WorkflowGrouping.None"/> gives one total.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>One count per group, ordered by the grouped columns (without grouping: one count, 0 when nothing matches).</returns>
    Task<IReadOnlyList<WorkflowCount>> CountWorkflowsAsync(ListWorkflowsOptions? options = null, WorkflowGrouping groupBy = WorkflowGrouping.None, CancellationToken cancellationToken = default);

    /// <summary>Lists workflows still on a queue (enqueued, delayed, or running from a queue).</summary>
    /// <param name="options">More filters (queue, partition, status…) and paging.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The queued workflows, oldest first unless asked otherwise.</returns>
    Task<IReadOnlyList<WorkflowStatus>> ListQueuedWorkflowsAsync(ListWorkflowsOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Lists the recorded operations (steps, sleeps, child workflows…) of a workflow, in order.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The operations, by function ID.</returns>
    Task<IReadOnlyList<StepInfo>> ListWorkflowStepsAsync(string workflowId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends a message to a workflow. Outside a workflow, an <paramref name="idempotencyKey"/> makes a retried send
    /// deliver once; inside one, the send is recorded, so a re-execution does not send again.
    /// </summary>
    /// <typeparam name="T">The message's type; must be serializable.</typeparam>
    /// <param name="destinationWorkflowId">The receiving workflow's ID.</param>
    /// <param name="message">The message.</param>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="idempotencyKey">Outside a workflow: makes retries of this send deliver once.</param>
    /// <param name="cancellationToken">Stops the send.</param>
    /// <returns>A task that completes when the message is stored.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has the destination ID.</exception>
    Task SendAsync<T>(string destinationWorkflowId, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends one message to many workflows in one statement (one round trip), all or nothing. Outside a workflow, an
    /// <paramref name="idempotencyKey"/> makes a retried call deliver once to each destination (each gets the message ID
    /// <c>KEY::DESTINATION</c>, as a single send with that key); inside one, the send is recorded as one operation.
    /// </summary>
    /// <typeparam name="T">The message's type; must be serializable.</typeparam>
    /// <param name="destinationWorkflowIds">The receiving workflows' IDs, each once (an empty list sends nothing).</param>
    /// <param name="message">The message.</param>
    /// <param name="topic">The topic, or null for the default topic.</param>
    /// <param name="idempotencyKey">Outside a workflow: makes retries of this call deliver once per destination.</param>
    /// <param name="cancellationToken">Stops the send.</param>
    /// <returns>A task that completes when the messages are stored.</returns>
    /// <exception cref="WorkflowNotFoundException">A destination ID is unknown; no message was sent.</exception>
    /// <exception cref="ArgumentException">A destination ID is empty or listed twice.</exception>
    Task SendManyAsync<T>(IReadOnlyList<string> destinationWorkflowIds, T message, string? topic = null, string? idempotencyKey = null, CancellationToken cancellationToken = default);

    /// <summary>Waits up to <paramref name="timeout"/> for a workflow to set an event, and returns its latest value.</summary>
    /// <typeparam name="T">The value's type. Read a nullable type to tell a timeout from a default value.</typeparam>
    /// <param name="workflowId">The workflow that sets the event.</param>
    /// <param name="key">The event's key.</param>
    /// <param name="timeout">How long to wait; default <see cref="WorkflowContext.DefaultWaitTimeout"/>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The value, or default (null) if it was not set in time.</returns>
    Task<T?> GetEventAsync<T>(string workflowId, string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Reads the latest value of every event a workflow has set so far, by key, without waiting.</summary>
    /// <typeparam name="T">The values' type (<see cref="System.Text.Json.JsonElement"/> or <see cref="object"/> for values of several types).</typeparam>
    /// <param name="workflowId">The workflow that sets the events.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The events, by key (empty if none is set, or no workflow has this ID).</returns>
    Task<IReadOnlyDictionary<string, T?>> GetAllEventsAsync<T>(string workflowId, CancellationToken cancellationToken = default);

    /// <summary>Reads a workflow's stream in order, from <paramref name="fromOffset"/> to its end, waiting for new values.</summary>
    /// <typeparam name="T">The values' type.</typeparam>
    /// <param name="workflowId">The workflow that writes the stream.</param>
    /// <param name="key">The stream's name.</param>
    /// <param name="fromOffset">The first offset to read (0: from the start).</param>
    /// <param name="cancellationToken">Stops reading.</param>
    /// <returns>The stream's values; the sequence ends when the stream is closed or its workflow has finished.</returns>
    IAsyncEnumerable<T> ReadStreamAsync<T>(string workflowId, string key, int fromOffset = 0, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels a workflow: it stops at its next step (at once if it is sleeping or waiting), in whichever process runs
    /// it, and is not recovered until resumed. Cancelling a finished workflow does nothing.
    /// </summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the cancellation is recorded.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has this ID.</exception>
    Task CancelWorkflowAsync(string workflowId, CancellationToken cancellationToken = default);

    /// <summary>Cancels several workflows (and, if asked, the workflows they started, recursively).</summary>
    /// <param name="workflowIds">The workflows' IDs.</param>
    /// <param name="cancelChildren">Also cancel their child workflows.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs that were cancelled (finished workflows are left as they are).</returns>
    /// <exception cref="WorkflowNotFoundException">One of the IDs is unknown; nothing was changed.</exception>
    Task<IReadOnlyList<string>> CancelWorkflowsAsync(IReadOnlyList<string> workflowIds, bool cancelChildren = false, CancellationToken cancellationToken = default);

    /// <summary>
    /// Resumes a cancelled (or dead-lettered, or pending) workflow: it continues from its last recorded step, with a
    /// fresh budget of recovery attempts, in a process that serves its version. Resuming a finished workflow does nothing.
    /// </summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A handle to the workflow.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has this ID.</exception>
    Task<WorkflowHandle> ResumeWorkflowAsync(string workflowId, CancellationToken cancellationToken = default);

    /// <summary>Resumes several workflows (see <see cref="ResumeWorkflowAsync"/>).</summary>
    /// <param name="workflowIds">The workflows' IDs.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs that were resumed (finished workflows are left as they are).</returns>
    /// <exception cref="WorkflowNotFoundException">One of the IDs is unknown; nothing was changed.</exception>
    Task<IReadOnlyList<string>> ResumeWorkflowsAsync(IReadOnlyList<string> workflowIds, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a new workflow that re-runs <paramref name="workflowId"/> from operation <paramref name="startStep"/>: the
    /// recorded outcomes of the operations before it are copied and reused, the rest runs again.
    /// </summary>
    /// <param name="workflowId">The original workflow's ID.</param>
    /// <param name="startStep">The function ID to re-run from (0 re-runs everything).</param>
    /// <param name="options">The new workflow's ID and application version.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A handle to the new workflow.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has this ID.</exception>
    Task<WorkflowHandle> ForkWorkflowAsync(string workflowId, int startStep, ForkOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes a workflow and everything recorded for it (and, if asked, the workflows it started).</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="deleteChildren">Also delete its child workflows, recursively.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the rows are deleted.</returns>
    /// <exception cref="WorkflowNotFoundException">No workflow has this ID.</exception>
    Task DeleteWorkflowAsync(string workflowId, bool deleteChildren = false, CancellationToken cancellationToken = default);

    /// <summary>Deletes several workflows and everything recorded for them (and, if asked, their children).</summary>
    /// <param name="workflowIds">The workflows' IDs.</param>
    /// <param name="deleteChildren">Also delete their child workflows, recursively.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>Every ID deleted, children included.</returns>
    /// <exception cref="WorkflowNotFoundException">One of the IDs is unknown; nothing was changed.</exception>
    Task<IReadOnlyList<string>> DeleteWorkflowsAsync(IReadOnlyList<string> workflowIds, bool deleteChildren = false, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes old finished workflows (succeeded, failed, cancelled, dead-lettered) and everything recorded for them
    /// (inputs, outputs, steps, messages, events, streams), in batches of <see cref="GarbageCollectOptions.BatchSize"/>,
    /// each its own short transaction. Unfinished workflows are never removed, nor a finished child of an unfinished
    /// parent (the parent may still read its result).
    /// </summary>
    /// <param name="options">The cutoff time, the number of newest workflows to keep, or both; and the batch size.</param>
    /// <param name="cancellationToken">Stops between statements; batches already committed stay removed.</param>
    /// <returns>How many workflows were removed.</returns>
    /// <exception cref="ArgumentException">Neither a cutoff nor a number to keep was given, or a number is out of range.</exception>
    Task<long> GarbageCollectAsync(GarbageCollectOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels every unfinished workflow (pending, enqueued, delayed) created before <paramref name="createdBefore"/>,
    /// in whichever process runs it, as <see cref="CancelWorkflowAsync"/> does.
    /// </summary>
    /// <param name="createdBefore">The cutoff: workflows created before it are cancelled.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs of the workflows cancelled.</returns>
    Task<IReadOnlyList<string>> GlobalTimeoutAsync(DateTimeOffset createdBefore, CancellationToken cancellationToken = default);

    /// <summary>Changes the priority of a workflow still waiting on its queue.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="priority">The new priority (lower runs first).</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the priority is recorded.</returns>
    /// <exception cref="InvalidOperationException">The workflow is no longer waiting on a queue.</exception>
    Task SetWorkflowPriorityAsync(string workflowId, int priority, CancellationToken cancellationToken = default);

    /// <summary>Changes when a delayed workflow may start.</summary>
    /// <param name="workflowId">The workflow's ID.</param>
    /// <param name="startAt">The earliest time it may start.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the new time is recorded.</returns>
    /// <exception cref="InvalidOperationException">The workflow is not delayed (any more).</exception>
    Task SetWorkflowDelayAsync(string workflowId, DateTimeOffset startAt, CancellationToken cancellationToken = default);

    /// <summary>
    /// Registers a queue at runtime in the shared queues table, owned by this application (<see cref="DbosConfig.Name"/>,
    /// <see cref="DbosClientOptions.ApplicationName"/>). Every launched process of the application that does not know
    /// the queue starts serving it within a second, with these limits (when its <see cref="DbosConfig.ListenQueues"/>
    /// allows), as processes of the other DBOS implementations do.
    /// </summary>
    /// <param name="name">The queue's name (names starting with <c>_dbos</c> are reserved).</param>
    /// <param name="options">Its flow control. Default: no limits.</param>
    /// <param name="cancellationToken">Stops the registration.</param>
    /// <returns>The queue.</returns>
    /// <exception cref="InvalidOperationException">The queue name belongs to another application.</exception>
    Task<Queue> RegisterQueueAsync(string name, QueueOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Changes a queue's flow control at runtime: written to its row in the queues table, which is the source of a
    /// queue's limits; a process applies it at once when it made the change, and every other process serving the queue
    /// within seconds.
    /// </summary>
    /// <param name="name">The queue's name.</param>
    /// <param name="options">The new flow control (replaces every limit).</param>
    /// <param name="cancellationToken">Stops the change.</param>
    /// <returns>A task that completes when the change is recorded.</returns>
    /// <exception cref="InvalidOperationException">The queues table has no such queue, or it belongs to another application.</exception>
    Task UpdateQueueAsync(string name, QueueOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes a queue at runtime: its row leaves the queues table and every process stops serving it within seconds
    /// (a <see cref="DbosApp"/> that deletes it, at once). Workflows waiting on it stay <c>ENQUEUED</c> (and new starts on
    /// it are still accepted, with the unknown-queue warning) until a queue of that name is registered again.
    /// </summary>
    /// <param name="name">The queue's name.</param>
    /// <param name="cancellationToken">Stops the deletion.</param>
    /// <returns>Whether the queues table had the queue.</returns>
    Task<bool> DeleteQueueAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Lists the queues in the queues table (of the application, and unowned ones), with the limits recorded there.</summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The queues, by name.</returns>
    Task<IReadOnlyList<Queue>> ListQueuesAsync(CancellationToken cancellationToken = default);

    /// <summary>Creates a schedule at runtime for a workflow (registered in any process of the application).</summary>
    /// <param name="workflowName">The workflow each tick starts.</param>
    /// <param name="cron">The cron expression: 5 fields, or 6 with seconds first.</param>
    /// <param name="options">Name, time zone, queue and backfill.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The schedule.</returns>
    /// <exception cref="InvalidOperationException">A schedule with that name exists.</exception>
    Task<WorkflowSchedule> CreateScheduleAsync(string workflowName, string cron, ScheduleOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Lists schedules (of the application, and unowned ones).</summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The schedules, by name.</returns>
    Task<IReadOnlyList<WorkflowSchedule>> ListSchedulesAsync(CancellationToken cancellationToken = default);

    /// <summary>Pauses a schedule: it fires no more ticks until resumed (in every process, within a second).</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the schedule is paused.</returns>
    Task PauseScheduleAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Resumes a paused schedule from its next tick (ticks missed while paused are not replayed).</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the schedule is active.</returns>
    Task ResumeScheduleAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Runs a schedule's workflow now, outside its ticks.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A handle to the run.</returns>
    Task<WorkflowHandle> TriggerScheduleAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Runs every tick of a schedule between two times that has not run yet (for example after downtime).</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="start">The start of the interval (exclusive).</param>
    /// <param name="end">The end of the interval (exclusive).</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs of the runs (existing ones included: a tick runs once).</returns>
    Task<IReadOnlyList<string>> BackfillScheduleAsync(string name, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken = default);

    /// <summary>Deletes a schedule (its past runs stay). A schedule declared in code comes back at its application's next launch.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the schedule is deleted.</returns>
    Task DeleteScheduleAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Lists application versions, latest first.</summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The versions.</returns>
    Task<IReadOnlyList<ApplicationVersionInfo>> ListApplicationVersionsAsync(CancellationToken cancellationToken = default);

    /// <summary>Marks a version as the latest: scheduled runs and workflows enqueued without a version go to it.</summary>
    /// <param name="versionName">The version.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>A task that completes when the version is marked.</returns>
    Task SetLatestApplicationVersionAsync(string versionName, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves the workflows waiting for version <paramref name="fromVersion"/> (enqueued or delayed) to
    /// <paramref name="toVersion"/>, so that processes of that version run them. Use it once no process of the old
    /// version will run again, when their recorded steps are still valid for the new code. Pending workflows are not
    /// moved: they run somewhere, or become enqueued when recovered.
    /// </summary>
    /// <param name="fromVersion">The version the workflows wait for.</param>
    /// <param name="toVersion">The version to move them to. Default: an application's own version; for a client, the latest registered version.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs of the workflows moved.</returns>
    /// <exception cref="InvalidOperationException">A client was given no <paramref name="toVersion"/> and no version is registered.</exception>
    Task<IReadOnlyList<string>> MoveWorkflowsToVersionAsync(string fromVersion, string? toVersion = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Lists the application's executors: every live process (idle ones too), and every executor that holds pending
    /// workflows, with its state (<see cref="ExecutorState"/>), how many workflows it holds and of which versions.
    /// </summary>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The executors, live ones first.</returns>
    /// <exception cref="InvalidOperationException">A client has no <see cref="DbosClientOptions.ApplicationName"/>.</exception>
    Task<IReadOnlyList<ExecutorInfo>> ListExecutorsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Recovers an executor's work by hand: puts the application's workflows that <paramref name="executorId"/> holds
    /// as pending back on their queues (the internal one for those started directly), where processes serving their
    /// version run them. For executors live processes do not take over by themselves: another DBOS implementation's
    /// (such as <c>local</c>) or a configured ID whose process will not come back. Refused while the executor is alive.
    /// </summary>
    /// <param name="executorId">The executor.</param>
    /// <param name="cancellationToken">Stops the operation.</param>
    /// <returns>The IDs of the workflows recovered.</returns>
    /// <exception cref="InvalidOperationException">The executor is alive, or a client has no <see cref="DbosClientOptions.ApplicationName"/>.</exception>
    Task<IReadOnlyList<string>> RecoverExecutorAsync(string executorId, CancellationToken cancellationToken = default);
}
