using Cronos;

namespace Dbos;

/// <summary>Options of a cron schedule.</summary>
public sealed record ScheduleOptions
{
    /// <summary>The schedule's name (unique in the system database). Default: the workflow's name.</summary>
    public string? Name { get; init; }

    /// <summary>The time zone the cron expression is read in (an IANA ID such as <c>Europe/Paris</c>). Default UTC.</summary>
    public string? TimeZone { get; init; }

    /// <summary>The queue the scheduled runs are enqueued on. Default: DBOS's internal queue.</summary>
    public string? Queue { get; init; }

    /// <summary>Whether ticks missed while no process ran the schedule are run when one starts again. Default false.</summary>
    public bool AutomaticBackfill { get; init; }
}

/// <summary>Whether a schedule fires.</summary>
public enum ScheduleStatus
{
    /// <summary>The schedule fires at each tick.</summary>
    Active,

    /// <summary>The schedule is paused; it fires again when resumed.</summary>
    Paused,
}

/// <summary>A cron schedule as stored in the shared <c>workflow_schedules</c> table.</summary>
public sealed record WorkflowSchedule
{
    /// <summary>The schedule's ID.</summary>
    public required string Id { get; init; }

    /// <summary>The schedule's name.</summary>
    public required string Name { get; init; }

    /// <summary>The workflow it starts.</summary>
    public required string WorkflowName { get; init; }

    /// <summary>The cron expression (5 fields, or 6 with seconds first).</summary>
    public required string Cron { get; init; }

    /// <summary>Whether it fires.</summary>
    public ScheduleStatus Status { get; init; }

    /// <summary>The time zone of the cron expression (null: UTC).</summary>
    public string? TimeZone { get; init; }

    /// <summary>The queue its runs go to (null: the internal queue).</summary>
    public string? QueueName { get; init; }

    /// <summary>The tick it last fired, if any.</summary>
    public DateTimeOffset? LastFiredAt { get; init; }

    /// <summary>Whether missed ticks are run when a process starts again.</summary>
    public bool AutomaticBackfill { get; init; }

    /// <summary>The application that owns it.</summary>
    public string? ApplicationName { get; init; }
}

/// <summary>An application version as recorded in the shared <c>application_versions</c> table.</summary>
/// <param name="Name">The version's name.</param>
/// <param name="Timestamp">When it was registered, or last marked as the latest; the newest is the latest.</param>
/// <param name="CreatedAt">When it was first registered.</param>
/// <param name="ApplicationName">The application that owns it.</param>
public sealed record ApplicationVersionInfo(string Name, DateTimeOffset Timestamp, DateTimeOffset CreatedAt, string? ApplicationName);

/// <summary>Parses cron expressions with Cronos: 5 fields, or 6 with seconds first.</summary>
internal static class CronSchedule
{
    public static CronExpression Parse(string expression, string scheduleName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(expression);
        var fields = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        try
        {
            return CronExpression.Parse(expression, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException ex)
        {
            throw new ArgumentException($"Schedule '{scheduleName}': '{expression}' is not a valid cron expression (5 fields, or 6 with seconds first): {ex.Message}", nameof(expression), ex);
        }
    }

    public static TimeZoneInfo Zone(string? timeZone, string scheduleName)
    {
        if (timeZone is null)
        {
            return TimeZoneInfo.Utc;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new ArgumentException($"Schedule '{scheduleName}': '{timeZone}' is not a known time zone.", nameof(timeZone), ex);
        }
    }

    /// <summary>The ID of a tick's run, as other DBOS implementations name it: <c>sched-&lt;name&gt;-&lt;ISO time with milliseconds&gt;</c>.</summary>
    public static string TickWorkflowId(string scheduleName, DateTimeOffset tick) =>
        $"sched-{scheduleName}-{FormatTime(tick)}";

    /// <summary>A time as JavaScript's <c>toISOString</c> writes it (UTC, milliseconds, Z).</summary>
    public static string FormatTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
