namespace Dbos.SystemDatabase;

/// <summary>The few places where Postgres and SQLite SQL differ; everything else is written once.</summary>
internal abstract class SqlDialect
{
    /// <summary>Whether this is Postgres (row locks, data-modifying CTEs, arrays, LISTEN/NOTIFY).</summary>
    public abstract bool IsPostgres { get; }

    /// <summary>The current time in epoch milliseconds, on the database's clock.</summary>
    public abstract string NowMs { get; }

    /// <summary>Row locking for claims: <c>FOR UPDATE SKIP LOCKED</c> on Postgres; SQLite writers are already serialized.</summary>
    public abstract string ForUpdateSkipLocked { get; }

    /// <summary>Row locking for claims against a budget shared between processes: <c>FOR UPDATE NOWAIT</c> on Postgres.</summary>
    public abstract string ForUpdateNoWait { get; }

    /// <summary>The qualified name of a system table.</summary>
    public abstract string Table(string name);

    /// <summary>A column that orders rows of one table by insertion, to break ties between equal timestamps.</summary>
    public abstract string InsertionOrder { get; }

    /// <summary>A condition that <paramref name="column"/> is one of the strings in parameter <c>$n</c> (bound as a string array).</summary>
    public abstract string InList(string column, int parameter);

    /// <summary>
    /// A condition that <paramref name="column"/> starts with the text in parameter <c>$n</c>, compared exactly: case matters
    /// and no character is a wildcard (LIKE would treat '%' and '_' as wildcards, and ignores ASCII case on SQLite).
    /// </summary>
    public abstract string StartsWith(string column, int parameter);

    /// <summary>
    /// The number of the time bucket an epoch-millisecond <paramref name="column"/> falls in: buckets of parameter
    /// <c>$width</c> ms from parameter <c>$from</c>, the first one 0. Integer division truncates alike in both dialects
    /// (bigint / bigint on Postgres, INTEGER / INTEGER on SQLite); callers keep <paramref name="column"/> at or after
    /// <c>$from</c>, so truncation is the floor.
    /// </summary>
    public string TimeBucket(string column, int fromParameter, int widthParameter) =>
        $"(({column} - ${fromParameter}) / ${widthParameter})";
}

internal sealed class PostgresDialect(string schema) : SqlDialect
{
    private readonly string quotedSchema = "\"" + schema.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public string Schema { get; } = schema;

    public string QuotedSchema => quotedSchema;

    public override bool IsPostgres => true;

    public override string NowMs => "(EXTRACT(EPOCH FROM now()) * 1000)::bigint";

    public override string ForUpdateSkipLocked => " FOR UPDATE SKIP LOCKED";

    public override string ForUpdateNoWait => " FOR UPDATE NOWAIT";

    public override string InsertionOrder => "ctid";

    public override string Table(string name) => quotedSchema + "." + name;

    public override string InList(string column, int parameter) => $"{column} = ANY(${parameter})";

    public override string StartsWith(string column, int parameter) => $"starts_with({column}, ${parameter})";
}

internal sealed class SqliteDialect : SqlDialect
{
    public static SqliteDialect Instance { get; } = new();

    public override bool IsPostgres => false;

    public override string NowMs => "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

    public override string ForUpdateSkipLocked => string.Empty;

    public override string ForUpdateNoWait => string.Empty;

    public override string InsertionOrder => "rowid";

    public override string Table(string name) => name;

    // Arrays are bound as a JSON array text on SQLite (see SqliteExecutor).
    public override string InList(string column, int parameter) => $"{column} IN (SELECT value FROM json_each(${parameter}))";

    // substr and length count characters, so this compares the whole prefix, byte for byte.
    public override string StartsWith(string column, int parameter) => $"substr({column}, 1, length(${parameter})) = ${parameter}";
}
