using Microsoft.Extensions.Logging;
using Npgsql;

namespace Dbos;

/// <summary>How SQLite flushes commits to disk.</summary>
public enum SqliteSynchronous
{
    /// <summary>WAL with <c>synchronous=NORMAL</c>: a commit survives a crash of the process, but the last commits may be lost if the machine loses power. Fast.</summary>
    Normal,

    /// <summary>WAL with <c>synchronous=FULL</c>: every commit is flushed to disk and survives a power loss. Slower.</summary>
    Full,
}

/// <summary>The configuration of a DBOS application.</summary>
public sealed class DbosConfig
{
    /// <summary>Creates a configuration with every setting at its default.</summary>
    public DbosConfig()
    {
    }

    /// <summary>Copies every setting of <paramref name="other"/>; the copy can be changed, even when <paramref name="other"/> is read-only.</summary>
    /// <param name="other">The configuration to copy.</param>
    public DbosConfig(DbosConfig other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Name = other.Name;
        SystemDatabaseUrl = other.SystemDatabaseUrl;
        ApplicationDatabaseUrl = other.ApplicationDatabaseUrl;
        SystemDatabaseSchema = other.SystemDatabaseSchema;
        SystemDatabasePoolSize = other.SystemDatabasePoolSize;
        SystemDatabaseDataSource = other.SystemDatabaseDataSource;
        ExecutorId = other.ExecutorId;
        TakeOverDeadExecutors = other.TakeOverDeadExecutors;
        LivenessInterval = other.LivenessInterval;
        LivenessGracePeriod = other.LivenessGracePeriod;
        ApplicationVersion = other.ApplicationVersion;
        EnablePatching = other.EnablePatching;
        SqliteSynchronous = other.SqliteSynchronous;
        MaxRecoveryAttempts = other.MaxRecoveryAttempts;
        RecoverPendingWorkflows = other.RecoverPendingWorkflows;
        RunMigrations = other.RunMigrations;
        Serializer = other.Serializer;
        TimeProvider = other.TimeProvider;
        LoggerFactory = other.LoggerFactory;
        PollingInterval = other.PollingInterval;
        ServiceProvider = other.ServiceProvider;
        ListenQueues = other.ListenQueues is { } queues ? [.. queues] : null;
        Retention = other.Retention is { } retention ? retention with { } : null;
    }

    /// <summary>
    /// Whether this configuration can no longer change: <see cref="DbosApp.Create"/> keeps a read-only copy of the
    /// configuration it is given (<see cref="DbosApp.Config"/>), so changing the original later affects nothing.
    /// </summary>
    public bool IsReadOnly { get; private set; }

    /// <summary>The environment variable that supplies the system database URL when <see cref="SystemDatabaseUrl"/> is not set.</summary>
    public const string SystemDatabaseUrlVariable = "DBOS_SYSTEM_DATABASE_URL";

    /// <summary>The environment variable that supplies the application version when <see cref="ApplicationVersion"/> is not set.</summary>
    public const string ApplicationVersionVariable = "DBOS__APPVERSION";

    /// <summary>The environment variable that supplies the executor ID when <see cref="ExecutorId"/> is not set.</summary>
    public const string ExecutorIdVariable = "DBOS__VMID";

    /// <summary>
    /// The application's name (required). It scopes this application's workflows in a shared system database,
    /// and names the default SQLite file <c>&lt;Name&gt;.sqlite</c>.
    /// </summary>
    public string Name { get; set { ThrowIfReadOnly(); field = value; } } = string.Empty;

    /// <summary>
    /// The system database: <c>sqlite:///relative/path.sqlite</c>, <c>sqlite:////absolute/path.sqlite</c>,
    /// or <c>postgresql://user:password@host:port/database?options</c> (also <c>postgres://</c>).
    /// Defaults to <c>DBOS_SYSTEM_DATABASE_URL</c>, else <c>sqlite:///&lt;Name&gt;.sqlite</c> in the working directory.
    /// </summary>
    public string? SystemDatabaseUrl { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>The application database used by registered transactions (same URL forms as <see cref="SystemDatabaseUrl"/>). Optional.</summary>
    public string? ApplicationDatabaseUrl { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>The Postgres schema holding the system tables. Default <c>dbos</c>.</summary>
    public string SystemDatabaseSchema { get; set { ThrowIfReadOnly(); field = value; } } = "dbos";

    /// <summary>The maximum number of pooled connections to a Postgres system database. Default 20.</summary>
    public int SystemDatabasePoolSize { get; set { ThrowIfReadOnly(); field = value; } } = 20;

    /// <summary>
    /// A Postgres data source to use for the system database instead of one built from the URL; its pool
    /// and settings are then yours. When set, <see cref="SystemDatabaseUrl"/> is ignored.
    /// </summary>
    public NpgsqlDataSource? SystemDatabaseDataSource { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>
    /// This process's executor ID: the owner recorded on the workflows it runs. Defaults to <c>DBOS__VMID</c>, else a
    /// new unique ID for each process (<c>dbos-dotnet-</c> and 20 hex digits), whose work live processes of the same
    /// application take over when it dies (see <see cref="TakeOverDeadExecutors"/>). A process given an ID recovers
    /// that ID's pending workflows at launch; two live processes with the same ID are refused.
    /// </summary>
    public string? ExecutorId { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>
    /// Whether this process takes over the pending workflows of dead executors of the same application (those whose IDs
    /// this library generated and whose liveness lapsed), putting them back on their queues. Default true.
    /// </summary>
    public bool TakeOverDeadExecutors { get; set { ThrowIfReadOnly(); field = value; } } = true;

    /// <summary>
    /// How often this process proves its liveness to the system database and looks for dead executors. An executor is
    /// judged dead when two looks in a row find no liveness for it, so a killed process's work is taken over within about
    /// two intervals (Postgres: plus about 5 s when its host vanished without closing its connection). Default 1 second.
    /// </summary>
    public TimeSpan LivenessInterval { get; set { ThrowIfReadOnly(); field = value; } } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long this process judges no other executor after it got its own liveness back, or while the database server
    /// has been up for less than this: every process loses its liveness when the server restarts, and needs time to take
    /// it again. Default 10 seconds.
    /// </summary>
    public TimeSpan LivenessGracePeriod { get; set { ThrowIfReadOnly(); field = value; } } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The version of the application code. Only workflows of this version are recovered by this process.
    /// Defaults to <see cref="PatchingVersion"/> when <see cref="EnablePatching"/> is set, else to <c>DBOS__APPVERSION</c>,
    /// else to a hash of the registered workflows and the assemblies that define them.
    /// </summary>
    public string? ApplicationVersion { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>The application version of an application with <see cref="EnablePatching"/> and no <see cref="ApplicationVersion"/>, as in other DBOS implementations.</summary>
    public const string PatchingVersion = "PATCHING_ENABLED";

    /// <summary>
    /// Whether workflows may call <see cref="WorkflowContext.PatchAsync"/> and <see cref="WorkflowContext.DeprecatePatchAsync"/>
    /// to change their code while executions of the old code are pending. When set, the application version defaults to
    /// <see cref="PatchingVersion"/> rather than a hash of the code, so a patched build recovers the work of the build
    /// before it. Default false.
    /// </summary>
    public bool EnablePatching { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>How SQLite flushes commits. Default <see cref="SqliteSynchronous.Normal"/>.</summary>
    public SqliteSynchronous SqliteSynchronous { get; set { ThrowIfReadOnly(); field = value; } } = SqliteSynchronous.Normal;

    /// <summary>
    /// How many times a workflow may be started (first run plus recoveries) without finishing before it is
    /// moved to <c>MAX_RECOVERY_ATTEMPTS_EXCEEDED</c>. Default 100; a workflow may set its own.
    /// </summary>
    public int MaxRecoveryAttempts { get; set { ThrowIfReadOnly(); field = value; } } = 100;

    /// <summary>Whether DbosApp.LaunchAsync recovers this executor's pending workflows. Default true.</summary>
    public bool RecoverPendingWorkflows { get; set { ThrowIfReadOnly(); field = value; } } = true;

    /// <summary>
    /// Whether <see cref="DbosApp.LaunchAsync"/> creates and migrates the system database. Default true. Set it to false
    /// for a role that may not run DDL, or when the schema is migrated out of band (<c>dbos migrate</c>): the launch then
    /// only checks the schema, and changes nothing. It waits while another process is migrating (the version rises), and
    /// fails with a <see cref="DbosDatabaseException"/> when the database, the schema or its tables are missing, or the
    /// version stays older than this release needs.
    /// </summary>
    public bool RunMigrations { get; set { ThrowIfReadOnly(); field = value; } } = true;

    /// <summary>The serializer for values this application writes. Default <see cref="PortableJsonSerializer"/>.</summary>
    public IDbosSerializer? Serializer { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>The clock for durable sleeps, timeouts and timestamps. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? TimeProvider { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>Where DBOS logs. Default: no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>
    /// The queues this process takes work from. Default: every queue it registers. (Recovered, resumed and forked
    /// workflows run on an internal queue every process serves.)
    /// </summary>
    public IReadOnlyList<string>? ListenQueues { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>How often waiters poll the database for results written by other processes. Default 1 second.</summary>
    public TimeSpan PollingInterval { get; set { ThrowIfReadOnly(); field = value; } } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The application's services (set by <c>AddDbos</c>). When set, each workflow execution gets its own scope, as
    /// <see cref="WorkflowContext.Services"/>, and workflows registered as classes are created from it.
    /// </summary>
    public IServiceProvider? ServiceProvider { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>
    /// Automatic retention: when set, the application removes its old finished workflows periodically (one process at a
    /// time among those sharing the system database). Default: none; see <see cref="IDbosOperations.GarbageCollectAsync"/>.
    /// </summary>
    public RetentionOptions? Retention { get; set { ThrowIfReadOnly(); field = value; } }

    /// <summary>A read-only copy, for an application to keep.</summary>
    internal DbosConfig ReadOnlyCopy() => new(this) { IsReadOnly = true };

    private void ThrowIfReadOnly()
    {
        if (IsReadOnly)
        {
            throw new InvalidOperationException(
                "This DbosConfig belongs to a created DbosApp and cannot change. Settings are read once, at DbosApp.Create: configure a new DbosConfig (new DbosConfig(app.Config) copies one) and create a new application.");
        }
    }

    /// <summary>Checks the configuration without connecting to anything.</summary>
    /// <exception cref="DbosConfigurationException">A setting is missing or invalid; the message names every problem.</exception>
    public void Validate()
    {
        ThrowIfAny(Problems());
    }

    /// <summary>Fails with one exception that names every problem, if there is any.</summary>
    internal static void ThrowIfAny(IEnumerable<string> problems)
    {
        var all = problems.ToList();
        if (all.Count > 0)
        {
            throw new DbosConfigurationException(string.Join(" ", all));
        }
    }

    /// <summary>The problem with a database URL setting, if it cannot be parsed.</summary>
    internal static string? UrlProblem(string? url, string setting)
    {
        try
        {
            if (url is not null)
            {
                Internal.DatabaseUrl.Parse(url, setting);
            }

            return null;
        }
        catch (DbosConfigurationException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>What is wrong with this configuration, one sentence per problem.</summary>
    internal IEnumerable<string> Problems()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            yield return "DbosConfig.Name is required: it names the application in the system database.";
        }

        if (SystemDatabasePoolSize < 1)
        {
            yield return $"DbosConfig.SystemDatabasePoolSize must be at least 1 (it is {SystemDatabasePoolSize}).";
        }

        if (MaxRecoveryAttempts < 1)
        {
            yield return $"DbosConfig.MaxRecoveryAttempts must be at least 1 (it is {MaxRecoveryAttempts}).";
        }

        if (PollingInterval <= TimeSpan.Zero)
        {
            yield return "DbosConfig.PollingInterval must be positive.";
        }

        if (LivenessInterval <= TimeSpan.Zero)
        {
            yield return "DbosConfig.LivenessInterval must be positive.";
        }

        if (LivenessGracePeriod < TimeSpan.Zero)
        {
            yield return "DbosConfig.LivenessGracePeriod must not be negative.";
        }

        if (string.IsNullOrWhiteSpace(SystemDatabaseSchema))
        {
            yield return "DbosConfig.SystemDatabaseSchema must not be empty.";
        }

        foreach (var problem in Retention?.Problems() ?? [])
        {
            yield return problem;
        }

        // Text stored in every row this application writes must be storable, or the first write would fail.
        foreach (var (text, setting) in (IEnumerable<(string?, string)>)[(Name, "DbosConfig.Name"), (SystemDatabaseSchema, "DbosConfig.SystemDatabaseSchema"),
            (ExecutorId, "DbosConfig.ExecutorId"), (ApplicationVersion, "DbosConfig.ApplicationVersion"), .. (ListenQueues ?? []).Select(q => ((string?)q, "DbosConfig.ListenQueues"))])
        {
            if (text is not null && Internal.StorableText.Problem(text) is { } problem)
            {
                yield return $"{setting} '{Internal.StorableText.Preview(text)}' {problem}.";
            }
        }

        foreach (var (url, setting) in (IEnumerable<(string?, string)>)[(SystemDatabaseUrl, "DbosConfig.SystemDatabaseUrl"), (ApplicationDatabaseUrl, "DbosConfig.ApplicationDatabaseUrl")])
        {
            if (UrlProblem(url, setting) is { } problem)
            {
                yield return problem;
            }
        }
    }
}
