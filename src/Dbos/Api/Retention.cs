namespace Dbos;

/// <summary>
/// What <see cref="IDbosOperations.GarbageCollectAsync"/> removes: finished workflows (succeeded, failed, cancelled or
/// dead-lettered) created before <see cref="CreatedBefore"/>, or beyond the newest <see cref="KeepNewest"/>, or both
/// (the stricter of the two wins). Give at least one.
/// </summary>
public sealed record GarbageCollectOptions
{
    /// <summary>Remove finished workflows created before this time.</summary>
    public DateTimeOffset? CreatedBefore { get; init; }

    /// <summary>
    /// Keep the newest this many workflows (of every status): finished workflows created before the oldest of them are
    /// removed. Unfinished ones count in the budget but are never removed.
    /// </summary>
    public int? KeepNewest { get; init; }

    /// <summary>How many workflows each transaction removes at most. Default 1000.</summary>
    public int BatchSize { get; init; } = 1000;

    internal void Validate()
    {
        if (CreatedBefore is null && KeepNewest is null)
        {
            throw new ArgumentException("Give CreatedBefore, KeepNewest or both; nothing was deleted.", "options");
        }

        if (KeepNewest is < 0)
        {
            throw new ArgumentOutOfRangeException("options", KeepNewest, "KeepNewest must not be negative; nothing was deleted.");
        }

        if (BatchSize < 1)
        {
            throw new ArgumentOutOfRangeException("options", BatchSize, "BatchSize must be at least 1; nothing was deleted.");
        }
    }
}

/// <summary>
/// Automatic retention (<see cref="DbosConfig.Retention"/>): every <see cref="Interval"/>, one process of those sharing
/// the system database removes the application's finished workflows older than <see cref="MaxAge"/> and beyond the
/// newest <see cref="MaxWorkflows"/>, as <see cref="IDbosOperations.GarbageCollectAsync"/> does. Give at least one limit.
/// Binds from configuration (<c>Dbos:Retention:MaxAge</c>…) with <c>AddDbos</c>.
/// </summary>
public sealed record RetentionOptions
{
    /// <summary>Remove finished workflows created longer ago than this.</summary>
    public TimeSpan? MaxAge { get; set; }

    /// <summary>Keep at most about this many workflows: finished ones older than the newest this many are removed.</summary>
    public int? MaxWorkflows { get; set; }

    /// <summary>How often to collect (the first time one interval after launch). Default 1 hour.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How many workflows each transaction removes at most. Default 1000.</summary>
    public int BatchSize { get; set; } = 1000;

    internal IEnumerable<string> Problems()
    {
        if (MaxAge is null && MaxWorkflows is null)
        {
            yield return "DbosConfig.Retention needs MaxAge, MaxWorkflows or both.";
        }

        if (MaxAge is { } age && age < TimeSpan.Zero)
        {
            yield return "DbosConfig.Retention.MaxAge must not be negative.";
        }

        if (MaxWorkflows is < 0)
        {
            yield return "DbosConfig.Retention.MaxWorkflows must not be negative.";
        }

        if (Interval <= TimeSpan.Zero)
        {
            yield return "DbosConfig.Retention.Interval must be positive.";
        }

        if (BatchSize < 1)
        {
            yield return "DbosConfig.Retention.BatchSize must be at least 1.";
        }
    }
}
