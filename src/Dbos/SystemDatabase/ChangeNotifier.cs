using System.Collections.Concurrent;

namespace Dbos.SystemDatabase;

/// <summary>
/// What a waiter waits for: a message for a workflow and topic, an event of a workflow, a stream's next value, or (in this
/// process only, never on a channel) a workflow's execution launched here, whose outcome a waiter can then take directly.
/// </summary>
internal enum ChangeKind
{
    Message,
    Event,
    Stream,
    LaunchedHere,
}

/// <summary>
/// Wakes waiters when something they wait for may have been written. Writes made through this process's
/// <see cref="SystemDatabase"/> signal at once; on Postgres, a <see cref="PostgresListener"/> signals writes made anywhere
/// else. A signal only means "look again": waiters always re-read the database, so a spurious or lost signal costs a read
/// or a poll interval, never a wrong result. Waiters hold no connection while they wait.
/// </summary>
internal sealed class ChangeNotifier
{
    private readonly ConcurrentDictionary<string, Waiters> waiting = new(StringComparer.Ordinal);

    /// <summary>The channel names of the shared schema, and the kinds they carry.</summary>
    public static readonly IReadOnlyDictionary<string, ChangeKind> Channels = new Dictionary<string, ChangeKind>(StringComparer.Ordinal)
    {
        ["dbos_notifications_channel"] = ChangeKind.Message,
        ["dbos_workflow_events_channel"] = ChangeKind.Event,
        ["dbos_streams_channel"] = ChangeKind.Stream,
    };

    /// <summary>How many keys have waiters right now (a key leaves when signalled or when its last waiter gives up).</summary>
    public int WaitingKeys => waiting.Count;

    /// <summary>Whether changes made by other processes are signalled (a healthy Postgres listener); otherwise waiters poll.</summary>
    public bool SeesOtherProcesses { get; set; }

    /// <summary>The payload the shared schema uses on its channels: <c>workflowId::topicOrKey</c>.</summary>
    public static string Payload(string workflowId, string topicOrKey) => workflowId + "::" + topicOrKey;

    private static string Key(ChangeKind kind, string payload) => ((int)kind).ToString(System.Globalization.CultureInfo.InvariantCulture) + payload;

    /// <summary>
    /// Subscribes to the next signal for <paramref name="payload"/>. Subscribe before reading the database, then wait on
    /// <see cref="Subscription.Signalled"/> only if the read found nothing, so a write between the two is not missed.
    /// Dispose the subscription when done; keys nobody waits for are forgotten.
    /// </summary>
    public Subscription Subscribe(ChangeKind kind, string payload)
    {
        var key = Key(kind, payload);
        while (true)
        {
            var waiters = waiting.GetOrAdd(key, static _ => new Waiters());
            lock (waiters)
            {
                // A signalled or abandoned entry has left the dictionary; take the one that replaced it.
                if (!waiters.Retired)
                {
                    waiters.Count++;
                    return new Subscription(this, key, waiters);
                }
            }
        }
    }

    public void Signal(ChangeKind kind, string payload)
    {
        if (waiting.TryRemove(Key(kind, payload), out var waiters))
        {
            Retire(waiters);
        }
    }

    /// <summary>Wakes every waiter (after a lost listener connection, so they re-read what they may have missed).</summary>
    public void SignalAll()
    {
        foreach (var key in waiting.Keys)
        {
            if (waiting.TryRemove(key, out var waiters))
            {
                Retire(waiters);
            }
        }
    }

    private static void Retire(Waiters waiters)
    {
        lock (waiters)
        {
            waiters.Retired = true;
        }

        waiters.Completion.TrySetResult();
    }

    private void Unsubscribe(string key, Waiters waiters)
    {
        lock (waiters)
        {
            if (--waiters.Count > 0 || waiters.Retired)
            {
                return;
            }

            waiters.Retired = true;
        }

        waiting.TryRemove(new KeyValuePair<string, Waiters>(key, waiters));
    }

    internal sealed class Waiters
    {
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count { get; set; }

        public bool Retired { get; set; }
    }

    /// <summary>One waiter's interest in a key.</summary>
    public sealed class Subscription : IDisposable
    {
        private readonly ChangeNotifier notifier;
        private readonly string key;
        private readonly Waiters waiters;
        private bool disposed;

        internal Subscription(ChangeNotifier notifier, string key, Waiters waiters)
        {
            this.notifier = notifier;
            this.key = key;
            this.waiters = waiters;
        }

        /// <summary>Completes at the next signal for the key.</summary>
        public Task Signalled => waiters.Completion.Task;

        public void Dispose()
        {
            if (!disposed)
            {
                disposed = true;
                notifier.Unsubscribe(key, waiters);
            }
        }
    }
}
