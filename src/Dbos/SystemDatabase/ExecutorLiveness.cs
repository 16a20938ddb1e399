using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;

namespace Dbos.SystemDatabase;

/// <summary>What one look at the executors found.</summary>
/// <param name="OwnLive">Whether this process still holds its own liveness.</param>
/// <param name="ServerUptime">How long the database server has been up (Postgres), or null where that means nothing.</param>
/// <param name="Unlocked">Executors with generated IDs that hold pending workflows of this application but no liveness.</param>
internal sealed record LivenessCheck(bool OwnLive, TimeSpan? ServerUptime, IReadOnlyList<string> Unlocked);

/// <summary>An executor seen by <see cref="ExecutorLiveness.ListAsync"/>: a live one, or one that holds pending workflows.</summary>
internal sealed record ExecutorRow(string ExecutorId, bool Alive, string? ApplicationVersion, long PendingWorkflows, IReadOnlyList<string> PendingVersions);

/// <summary>
/// Proof, kept in the system database itself, that an executor's process is alive, so that any live process of the same
/// application can tell a dead executor from a slow one and take its work. No table holds it: on Postgres it is a
/// session advisory lock on a connection the process keeps open, which the server releases the moment that session ends;
/// on SQLite an exclusive lock on a file per executor, which the operating system releases when the process dies.
/// Executors whose IDs this library generated (<see cref="GeneratedPrefix"/>) are always ours, so a missing lock means
/// death; any other executor (another implementation's <c>local</c>, a configured ID) is taken only when an operator asks.
/// </summary>
internal abstract class ExecutorLiveness : IAsyncDisposable
{
    /// <summary>How executor IDs that this library generates begin; no other DBOS implementation writes this form.</summary>
    public const string GeneratedPrefix = "dbos-dotnet-";

    protected ExecutorLiveness(SqlExecutor executor, string applicationName, string schema)
    {
        Executor = executor;
        ApplicationName = applicationName;
        KeyPrefix = schema + "\n" + applicationName + "\n";
        var d = executor.Dialect;
        var ws = d.Table("workflow_status");
        CandidatesSql =
            $"SELECT DISTINCT executor_id FROM {ws} WHERE status = 'PENDING' AND application_name = $1 AND executor_id LIKE '{GeneratedPrefix}%' AND executor_id <> $2";
        PendingByExecutorSql =
            $"SELECT executor_id, application_version, COUNT(*) FROM {ws} WHERE status = 'PENDING' AND application_name = $1 AND executor_id IS NOT NULL " +
            "GROUP BY executor_id, application_version";
    }

    protected SqlExecutor Executor { get; }

    protected string ApplicationName { get; }

    /// <summary>What every lock key of this application hashes before the executor ID: the schema and the application.</summary>
    protected string KeyPrefix { get; }

    /// <summary>The executors other than <c>$2</c> with generated IDs that hold pending workflows of application <c>$1</c>.</summary>
    protected string CandidatesSql { get; }

    /// <summary>Pending workflows of application <c>$1</c>, counted by executor and version.</summary>
    protected string PendingByExecutorSql { get; }

    /// <summary>A new executor ID in the form only this library generates.</summary>
    public static string GenerateExecutorId() => GeneratedPrefix + Guid.NewGuid().ToString("N")[..20];

    /// <summary>Whether this library generated <paramref name="executorId"/> (so a missing liveness lock means the executor is dead).</summary>
    public static bool IsGenerated(string? executorId) => executorId is not null && executorId.StartsWith(GeneratedPrefix, StringComparison.Ordinal);

    /// <summary>
    /// How long after the start of its last look that confirmed it this process must count its liveness lost although
    /// the next look has not answered yet, because from then on the database may end its session and others judge it
    /// dead; null where the lock cannot lapse while the process lives.
    /// </summary>
    public virtual TimeSpan? LapseBound => null;

    /// <summary>The liveness mechanism of a system database.</summary>
    public static ExecutorLiveness For(SqlExecutor executor, string applicationName) => executor switch
    {
        PostgresExecutor postgres => new PostgresLiveness(postgres, applicationName),
        SqliteExecutor sqlite => new SqliteLiveness(sqlite, applicationName),
        _ => throw new NotSupportedException($"No liveness for {executor.GetType().Name}."),
    };

    /// <summary>The 64-bit key of an executor's lock: SHA-256 over the schema, the application and the executor ID.</summary>
    protected long Key(string executorId) =>
        BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(KeyPrefix + executorId)));

    /// <summary>
    /// Takes this process's liveness as <paramref name="executorId"/>. Fails with <see cref="DbosConfigurationException"/>
    /// when another live process holds that executor ID (after waiting <paramref name="patience"/> for a vanished one's to lapse).
    /// </summary>
    public abstract Task AcquireAsync(string executorId, string applicationVersion, TimeSpan patience, CancellationToken cancellationToken);

    /// <summary>
    /// One look: whether this process still holds its liveness (re-taking it if it was lost and is free again), and which
    /// executors with generated IDs hold pending workflows of this application without any liveness. Throws when the
    /// database cannot be reached: the caller counts that as lost liveness.
    /// </summary>
    public abstract Task<LivenessCheck> CheckAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Moves the pending workflows of <paramref name="executorId"/> (this application's, every version) back to their
    /// queues, the internal queue for those started directly, if and only if that executor holds no liveness: checked
    /// and done atomically, so of several processes that try at once exactly one moves them. Returns the moved workflows.
    /// </summary>
    public abstract Task<List<(string WorkflowId, string QueueName)>> TakeOverAsync(string executorId, CancellationToken cancellationToken);

    /// <summary>The live executors of this application (idle ones too) and every executor that holds its pending workflows.</summary>
    public abstract Task<List<ExecutorRow>> ListAsync(CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    /// <summary>The requeue a takeover performs, after its liveness check: <c>$1</c> executor, <c>$2</c> application, <c>$3</c> internal queue.</summary>
    protected string RequeueSql(string condition)
    {
        var d = Executor.Dialect;
        return $"UPDATE {d.Table("workflow_status")} SET status = 'ENQUEUED', owner_xid = NULL, started_at_epoch_ms = NULL, updated_at = {d.NowMs}, " +
            $"queue_name = COALESCE(queue_name, $3) {condition} status = 'PENDING' AND executor_id = $1 AND application_name = $2 " +
            "RETURNING workflow_uuid, queue_name";
    }

    protected async Task<List<ExecutorRow>> MergeAsync(IEnumerable<(string ExecutorId, string? Version)> live, Func<string, bool> alive, CancellationToken cancellationToken)
    {
        var pending = await Executor.QueryAsync(
            PendingByExecutorSql,
            [ApplicationName],
            static r => (Executor: r.GetString(0), Version: r.IsDBNull(1) ? null : r.GetString(1), Count: Convert.ToInt64(r.GetValue(2), System.Globalization.CultureInfo.InvariantCulture)),
            cancellationToken).ConfigureAwait(false);
        var rows = new Dictionary<string, ExecutorRow>(StringComparer.Ordinal);
        foreach (var (id, version) in live)
        {
            rows[id] = new ExecutorRow(id, true, version, 0, []);
        }

        foreach (var group in pending.GroupBy(p => p.Executor, StringComparer.Ordinal))
        {
            var versions = group.Where(g => g.Version is not null).Select(g => g.Version!).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            var count = group.Sum(g => g.Count);
            rows[group.Key] = rows.TryGetValue(group.Key, out var known)
                ? known with { PendingWorkflows = count, PendingVersions = versions }
                : new ExecutorRow(group.Key, alive(group.Key), null, count, versions);
        }

        return [.. rows.Values.OrderByDescending(r => r.Alive).ThenBy(r => r.ExecutorId, StringComparer.Ordinal)];
    }
}

/// <summary>
/// Liveness on Postgres: a session advisory lock, keyed by the executor, on a connection of its own that the process
/// keeps open. Keepalives on both ends bound how long a vanished peer's session (and so its lock) lingers.
/// </summary>
internal sealed class PostgresLiveness : ExecutorLiveness
{
    /// <summary>What a liveness session calls itself in <c>pg_stat_activity</c>, followed by the executor ID.</summary>
    public const string SessionNamePrefix = "dbos-live ";

    // The key of an advisory lock, from pg_locks: the high 32 bits are in classid, the low ones in objid.
    private const string HeldLocks =
        "SELECT ((l.classid::bigint << 32) | l.objid::bigint) AS k, l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1 " +
        "AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

    private readonly PostgresExecutor executor;
    private readonly string checkSql;
    private readonly string takeOverSql;
    private readonly string liveSql;
    private readonly SemaphoreSlim sessionLock = new(1, 1);
    private NpgsqlConnection? session;
    private string? executorId;
    private string? applicationVersion;
    private long ownKey;
    private bool poolerReported;

    public PostgresLiveness(PostgresExecutor executor, string applicationName)
        : base(executor, applicationName, executor.Dialect.Schema)
    {
        this.executor = executor;
        var keyOf = static (string prefix, string column) => $"('x' || left(encode(sha256(convert_to({prefix} || {column}, 'UTF8')), 'hex'), 16))::bit(64)::bigint";
        checkSql =
            $"WITH held AS ({HeldLocks}) SELECT EXISTS (SELECT 1 FROM held WHERE k = $4 AND pid = pg_backend_pid()), " +
            "(EXTRACT(EPOCH FROM now() - pg_postmaster_start_time()) * 1000)::bigint, " +
            $"ARRAY(SELECT c.executor_id FROM ({CandidatesSql}) c WHERE NOT EXISTS (SELECT 1 FROM held WHERE held.k = {keyOf("$3", "c.executor_id")}))";

        // The lock is tried for the statement's own transaction: it fails while the executor's session holds it, and while
        // another taker's statement does, so exactly one statement moves the rows.
        takeOverSql = $"WITH gate AS (SELECT pg_try_advisory_xact_lock($4) AS free) {RequeueSql("FROM gate WHERE gate.free AND")}";
        liveSql =
            $"WITH held AS ({HeldLocks}) SELECT DISTINCT substr(a.application_name, {SessionNamePrefix.Length + 1}), " +
            $"substring(a.query FROM '^/\\* {VersionMarkerPrefix}(\\S+) \\*/') FROM pg_stat_activity a JOIN held ON held.pid = a.pid " +
            $"WHERE a.application_name LIKE '{SessionNamePrefix}%' AND held.k = {keyOf("$1", $"substr(a.application_name, {SessionNamePrefix.Length + 1})")}";
    }

    /// <summary>
    /// The server ends a session whose client went silent after about <see cref="PostgresExecutor.VanishedPeerBound"/>
    /// (its keepalives); a look that hangs as long (a cut network) would otherwise give up only later, after the takeover.
    /// </summary>
    public override TimeSpan? LapseBound => PostgresExecutor.VanishedPeerBound - TimeSpan.FromSeconds(1);

    public override async Task AcquireAsync(string executorId, string applicationVersion, TimeSpan patience, CancellationToken cancellationToken)
    {
        this.executorId = executorId;
        this.applicationVersion = applicationVersion;
        ownKey = Key(executorId);
        var started = executor.Time.GetTimestamp();
        var waitReported = false;
        while (true)
        {
            if (await TryAcquireAsync(cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            if (executor.Time.GetElapsedTime(started) >= patience)
            {
                throw new DbosConfigurationException(
                    $"The executor ID '{executorId}' is in use by another live process of application '{ApplicationName}' on the system database {executor.Description}. " +
                    "Each process needs its own executor ID: leave DbosConfig.ExecutorId (and DBOS__VMID) unset to get a unique one.");
            }

            if (!waitReported)
            {
                waitReported = true;
                Internal.Log.ExecutorIdBusy(executor.Logger, executorId, patience.TotalSeconds);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), executor.Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Opens the liveness session if needed and tries to take this executor's lock on it.</summary>
    private async Task<bool> TryAcquireAsync(CancellationToken cancellationToken)
    {
        await sessionLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (session is null)
            {
                session = await executor.OpenLivenessConnectionAsync(SessionName(), cancellationToken).ConfigureAwait(false);
            }

            var command = new NpgsqlCommand(VersionMarker() + "SELECT pg_try_advisory_lock($1)", session) { Parameters = { new() { Value = ownKey } } };
            await using (command.ConfigureAwait(false))
            {
                return (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            }
        }
        catch (Exception ex) when (ex is NpgsqlException or DbosDatabaseException or InvalidOperationException)
        {
            await DropSessionAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            sessionLock.Release();
        }
    }

    // application_name keeps 63 bytes, too few for the version as well.
    private string SessionName() => SessionNamePrefix + executorId;

    /// <summary>
    /// A comment naming this process's version, before each statement of the liveness session: the session's last
    /// statement is visible in <c>pg_stat_activity</c>, so a live executor's version can be read even while it is idle.
    /// </summary>
    private string VersionMarker() =>
        applicationVersion is { } version && version.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '+' or '-')
            ? $"/* {VersionMarkerPrefix}{version} */ "
            : string.Empty;

    private const string VersionMarkerPrefix = "dbos-version=";

    public override async Task<LivenessCheck> CheckAsync(CancellationToken cancellationToken)
    {
        bool mine;
        long uptimeMs;
        string[] unlocked;
        await sessionLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            session ??= await executor.OpenLivenessConnectionAsync(SessionName(), cancellationToken).ConfigureAwait(false);
            var command = new NpgsqlCommand(VersionMarker() + checkSql, session)
            {
                Parameters = { new() { Value = ApplicationName }, new() { Value = executorId }, new() { Value = KeyPrefix }, new() { Value = ownKey } },
            };
            await using (command.ConfigureAwait(false))
            {
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    mine = reader.GetBoolean(0);
                    uptimeMs = reader.GetInt64(1);
                    unlocked = reader.GetFieldValue<string[]>(2);
                }
            }
        }
        catch (Exception ex) when (ex is NpgsqlException or DbosDatabaseException or InvalidOperationException or IOException)
        {
            await DropSessionAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            sessionLock.Release();
        }

        if (!mine)
        {
            // The session answers but does not hold the lock: it was lost (a server restart between two looks) or the
            // statements land on different server sessions (a transaction-pooling proxy, which cannot hold session locks).
            mine = await TryAcquireAsync(cancellationToken).ConfigureAwait(false);
            if (mine && !poolerReported)
            {
                poolerReported = await IsBehindPoolerAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        return new LivenessCheck(mine, TimeSpan.FromMilliseconds(uptimeMs), unlocked);
    }

    /// <summary>Whether two statements on the liveness connection run in different server sessions; logs it once if so.</summary>
    private async Task<bool> IsBehindPoolerAsync(CancellationToken cancellationToken)
    {
        await sessionLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var pids = new int[2];
            for (var i = 0; i < 2; i++)
            {
                var command = new NpgsqlCommand("SELECT pg_backend_pid()", session);
                await using (command.ConfigureAwait(false))
                {
                    pids[i] = (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                }
            }

            if (pids[0] == pids[1])
            {
                return false;
            }

            Internal.Log.LivenessBehindPooler(executor.Logger, executor.Description);
            return true;
        }
        finally
        {
            sessionLock.Release();
        }
    }

    private async Task DropSessionAsync()
    {
        if (session is { } lost)
        {
            session = null;
            await lost.DisposeAsync().ConfigureAwait(false);
        }
    }

    public override Task<List<(string WorkflowId, string QueueName)>> TakeOverAsync(string executorId, CancellationToken cancellationToken) =>
        executor.ExecuteQueryAsync(
            takeOverSql,
            [executorId, ApplicationName, StatusNames.InternalQueue, Key(executorId)],
            static r => (r.GetString(0), r.GetString(1)),
            cancellationToken);

    public override async Task<List<ExecutorRow>> ListAsync(CancellationToken cancellationToken)
    {
        var live = await executor.QueryAsync(liveSql, [KeyPrefix], static r => (r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)), cancellationToken).ConfigureAwait(false);
        var liveIds = live.Select(l => l.Item1).ToHashSet(StringComparer.Ordinal);
        return await MergeAsync(live, liveIds.Contains, cancellationToken).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        await sessionLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await DropSessionAsync().ConfigureAwait(false);
        }
        finally
        {
            sessionLock.Release();
        }
    }
}

/// <summary>
/// Liveness on SQLite (one host): an exclusive lock on a file of its own per executor, in a folder beside the database,
/// which the operating system releases when the process dies. Not the byte-range locks SQLite takes on its own files.
/// Beside each lock file a small JSON file names its executor, so live executors can be listed.
/// </summary>
internal sealed class SqliteLiveness : ExecutorLiveness
{
    private readonly string folder;
    private FileStream? own;
    private string? ownPath;
    private string ownExecutorId = string.Empty;

    public SqliteLiveness(SqliteExecutor executor, string applicationName)
        : base(executor, applicationName, "dbos") =>
        folder = executor.FilePath + ".executors";

    private string LockPath(string executorId) => Path.Combine(folder, Convert.ToHexStringLower(BitConverter.GetBytes(Key(executorId))) + ".lock");

    private static string InfoPath(string lockPath) => Path.ChangeExtension(lockPath, ".json");

    public override async Task AcquireAsync(string executorId, string applicationVersion, TimeSpan patience, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(folder);
        var path = LockPath(executorId);
        var started = Executor.Time.GetTimestamp();
        while (true)
        {
            if (TryLock(path, create: true) is { } stream)
            {
                // Taken over and removed by another process between our open and our lock: take a fresh file.
                if (!File.Exists(path))
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                    continue;
                }

                own = stream;
                ownPath = path;
                ownExecutorId = executorId;
                await File.WriteAllTextAsync(
                    InfoPath(path),
                    new JsonObject { ["executorId"] = executorId, ["application"] = ApplicationName, ["version"] = applicationVersion }.ToJsonString(),
                    cancellationToken).ConfigureAwait(false);
                return;
            }

            if (Executor.Time.GetElapsedTime(started) >= patience)
            {
                throw new DbosConfigurationException(
                    $"The executor ID '{executorId}' is in use by another live process of application '{ApplicationName}' on the system database {Executor.Description}. " +
                    "Each process needs its own executor ID: leave DbosConfig.ExecutorId (and DBOS__VMID) unset to get a unique one.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), Executor.Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>An exclusive lock on the file, or null while another process (or another open of this process) holds it.</summary>
    private static FileStream? TryLock(string path, bool create)
    {
        try
        {
            // FileShare.None takes an exclusive flock on Unix and a sharing lock on Windows; both end with the process.
            return new FileStream(path, create ? FileMode.OpenOrCreate : FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public override async Task<LivenessCheck> CheckAsync(CancellationToken cancellationToken)
    {
        var candidates = await Executor.QueryAsync(CandidatesSql, [ApplicationName, ownExecutorId], static r => r.GetString(0), cancellationToken).ConfigureAwait(false);
        var unlocked = new List<string>();
        foreach (var candidate in candidates)
        {
            var path = LockPath(candidate);
            if (!File.Exists(path))
            {
                unlocked.Add(candidate);
                continue;
            }

            using var probe = TryLock(path, create: false);
            if (probe is not null)
            {
                unlocked.Add(candidate);
            }
        }

        if (++checks % SweepEvery == 1)
        {
            SweepDeadFiles();
        }

        return new LivenessCheck(own is not null && ownPath is not null && File.Exists(ownPath), null, unlocked);
    }

    /// <summary>How many looks apart the folder is swept of dead executors' files.</summary>
    private const int SweepEvery = 60;

    private long checks;

    /// <summary>
    /// Removes the files of executors whose processes are gone (a process that died idle leaves its files, and each new
    /// process has a new executor ID). Each is removed while locked, so an executor re-taking its ID (a configured one)
    /// sees that the file it locked is gone and takes a fresh one; a dead executor's pending work is still taken over,
    /// since a missing file means no liveness.
    /// </summary>
    private void SweepDeadFiles()
    {
        try
        {
            foreach (var path in Directory.EnumerateFiles(folder, "*.lock"))
            {
                if (string.Equals(path, ownPath, StringComparison.Ordinal) || TryLock(path, create: false) is not { } held)
                {
                    continue;
                }

                using (held)
                {
                    File.Delete(InfoPath(path));
                    File.Delete(path);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Tidying only: the next sweep tries again.
        }
    }

    private static Dictionary<string, string>? ReadInfo(string lockPath)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(InfoPath(lockPath))) is JsonObject info
                ? info.Where(p => p.Value is JsonValue).ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal)
                : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    public override async Task<List<(string WorkflowId, string QueueName)>> TakeOverAsync(string executorId, CancellationToken cancellationToken)
    {
        var path = LockPath(executorId);
        FileStream? held = null;
        if (File.Exists(path))
        {
            // Held while the rows move: the owner cannot come back meanwhile, and other takers on this host skip it.
            held = TryLock(path, create: false);
            if (held is null)
            {
                return [];
            }
        }

        try
        {
            var moved = await Executor.ExecuteQueryAsync(
                RequeueSql("WHERE"),
                [executorId, ApplicationName, StatusNames.InternalQueue],
                static r => (r.GetString(0), r.GetString(1)),
                cancellationToken).ConfigureAwait(false);
            if (held is not null)
            {
                // Removed while still locked: an executor re-creating its file checks that the file it locked is still there.
                File.Delete(InfoPath(path));
                File.Delete(path);
            }

            return moved;
        }
        finally
        {
            if (held is not null)
            {
                await held.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public override async Task<List<ExecutorRow>> ListAsync(CancellationToken cancellationToken)
    {
        var live = new List<(string, string?)>();
        if (Directory.Exists(folder))
        {
            foreach (var path in Directory.EnumerateFiles(folder, "*.lock"))
            {
                if (ReadInfo(path) is not { } info || info.GetValueOrDefault("application") != ApplicationName || info.GetValueOrDefault("executorId") is not { } id)
                {
                    continue;
                }

                // Our own lock, or one that another process holds.
                var mine = ownPath is not null && string.Equals(path, ownPath, StringComparison.Ordinal);
                using var probe = mine ? null : TryLock(path, create: false);
                if (mine || probe is null)
                {
                    live.Add((id, info.GetValueOrDefault("version")));
                }
            }
        }

        var liveIds = live.Select(l => l.Item1).ToHashSet(StringComparer.Ordinal);
        return await MergeAsync(live, liveIds.Contains, cancellationToken).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        if (own is { } stream)
        {
            own = null;
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
