namespace Dbos.SystemDatabase;

/// <summary>
/// Group commit of checkpoints (Postgres; the SQLite writer combines every write already): step records
/// (<see cref="OperationRecord"/>), workflow completions (<see cref="CompletionRecord"/>) and direct starts
/// (<see cref="NewWorkflowRow"/>), each kind in its own instance. A record that finds fewer than <see cref="MaxInFlight"/>
/// writes of its kind in flight goes out at once, alone, so a lone workflow waits for nothing. Records that arrive while
/// that many are in flight wait for one of them to end and then go out together: one statement, one round trip, one
/// commit. Each caller's task completes only once its own record is committed, with the one-record statement's result
/// (for steps and completions 1, written, or 0, already recorded or not owned; for a start, its row).
/// </summary>
/// <remarks>
/// The combined statement cannot fail for one record's sake: a duplicate, lost ownership or a missing workflow row (deleted
/// meanwhile) only skips that record, as the one-record statement does. If it still fails (a value too long for an index,
/// say), every record of the batch is written alone, so each gets its own outcome or error.
/// </remarks>
/// <typeparam name="TRecord">What one caller writes.</typeparam>
/// <typeparam name="TKey">What the combined statement returns for each record it wrote; a batch holds each key once.</typeparam>
/// <typeparam name="TResult">What a write returns to its caller.</typeparam>
/// <param name="writeOne">Writes one record with its own statement and commit.</param>
/// <param name="writeMany">Writes several records with one statement and one commit; returns the result of each it wrote, by key.</param>
/// <param name="keyOf">The key of a record.</param>
/// <param name="notWritten">The result of a record whose key the combined statement did not return.</param>
/// <param name="maxInFlight">How many writes go out alone before others wait to be combined.</param>
internal sealed class GroupCommit<TRecord, TKey, TResult>(
    Func<TRecord, CancellationToken, Task<TResult>> writeOne,
    Func<IReadOnlyList<TRecord>, CancellationToken, Task<Dictionary<TKey, TResult>>> writeMany,
    Func<TRecord, TKey> keyOf,
    TResult notWritten,
    int maxInFlight)
    where TRecord : class
    where TKey : notnull
{
    private volatile int maxInFlight = maxInFlight;

    /// <summary>More records than this wait for the next batch, which keeps one statement's arrays bounded.</summary>
    internal const int MaxBatch = 500;

    private readonly Lock gate = new();
    private List<Waiting> waiting = [];
    private int inFlight;
    private long combined;

    /// <summary>How many records were written in a statement together with others (for tests and the benchmark).</summary>
    public long CombinedRecords => Interlocked.Read(ref combined);

    /// <summary>How many records go out alone before others wait to be combined (the benchmark compares settings in one run).</summary>
    public int MaxInFlight
    {
        get => maxInFlight;
        set => maxInFlight = Math.Max(1, value);
    }

    public Task<TResult> WriteAsync(TRecord record, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (inFlight >= maxInFlight)
            {
                var entry = new Waiting(record);
                waiting.Add(entry);

                // A stopped execution stops waiting, as it would stop a write of its own; the batch goes on without it.
                return cancellationToken.CanBeCanceled ? entry.Completion.Task.WaitAsync(cancellationToken) : entry.Completion.Task;
            }

            inFlight++;
        }

        return WriteAloneAsync(record, cancellationToken);
    }

    private async Task<TResult> WriteAloneAsync(TRecord record, CancellationToken cancellationToken)
    {
        try
        {
            return await writeOne(record, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Release();
        }
    }

    /// <summary>Ends one write in flight: its slot goes to the records that waited, if any.</summary>
    private void Release()
    {
        List<Waiting> batch;
        lock (gate)
        {
            if (waiting.Count == 0)
            {
                inFlight--;
                return;
            }

            batch = Take();
        }

        // Off the caller's stack: the finished write's continuation should not wait for the next round trip.
        ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.self.WriteBatchAsync(state.batch), (self: this, batch), preferLocal: true);
    }

    /// <summary>
    /// Takes the waiting records for one batch: at most <see cref="MaxBatch"/>, and each operation once (a second record of
    /// the same key (the same operation, or workflow, from another execution) waits for the next batch so each gets the outcome of its own statement).
    /// </summary>
    private List<Waiting> Take()
    {
        var all = waiting;
        if (all.Count <= 1)
        {
            waiting = [];
            return all;
        }

        var keys = new HashSet<TKey>();
        var batch = new List<Waiting>(Math.Min(all.Count, MaxBatch));
        var rest = new List<Waiting>();
        foreach (var entry in all)
        {
            if (batch.Count < MaxBatch && keys.Add(keyOf(entry.Record)))
            {
                batch.Add(entry);
            }
            else
            {
                rest.Add(entry);
            }
        }

        waiting = rest;
        return batch;
    }

    private async Task WriteBatchAsync(List<Waiting> batch)
    {
        try
        {
            if (batch.Count == 1)
            {
                await WriteEachAsync(batch).ConfigureAwait(false);
                return;
            }

            Dictionary<TKey, TResult> written;
            try
            {
                written = await writeMany(batch.ConvertAll(static w => w.Record), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Whatever refused the batch is one record's fault or the server's: alone, each record meets its own fate.
                await WriteEachAsync(batch).ConfigureAwait(false);
                return;
            }

            Interlocked.Add(ref combined, batch.Count);
            foreach (var entry in batch)
            {
                entry.Completion.TrySetResult(written.TryGetValue(keyOf(entry.Record), out var result) ? result : notWritten);
            }
        }
        finally
        {
            Release();
        }
    }

    private async Task WriteEachAsync(List<Waiting> batch)
    {
        foreach (var entry in batch)
        {
            try
            {
                entry.Completion.TrySetResult(await writeOne(entry.Record, CancellationToken.None).ConfigureAwait(false));
            }
            catch (Exception ex)
            {
                entry.Completion.TrySetException(ex);
            }
        }
    }

    private sealed class Waiting(TRecord record)
    {
        public TRecord Record { get; } = record;

        // Completed from the writer's loop: each workflow continues on the pool, not inline on the writer.
        public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
