namespace Dbos.Dashboard;

/// <summary>Settings of the DBOS dashboard mapped by <see cref="DashboardEndpointRouteBuilderExtensions.MapDbosDashboard(Microsoft.AspNetCore.Routing.IEndpointRouteBuilder, string, System.Action{DbosDashboardOptions}?)"/>.</summary>
public sealed class DbosDashboardOptions
{
    /// <summary>
    /// The name of the ASP.NET Core authorization policy a user must satisfy to take actions (cancel, resume, fork,
    /// delete, change priority, pause, resume, trigger and backfill schedules). Null (the default) keeps the dashboard
    /// read-only: actions are not offered, and a request for one is refused with 403.
    /// </summary>
    public string? ActionsPolicy { get; set; }

    /// <summary>
    /// Hides workflow inputs and outputs, step outputs, event values, messages and stream values (which are user data);
    /// errors still show their type and message. False by default.
    /// </summary>
    public bool HideValues { get; set; }

    /// <summary>
    /// The operations the dashboard reads and acts through. Null (the default) takes the <see cref="IDbosOperations"/>
    /// or <see cref="DbosApp"/> registered in the application's services (what <c>AddDbos</c> registers).
    /// </summary>
    public IDbosOperations? Operations { get; set; }

    /// <summary>Workflows per page of the workflow list: 50 by default.</summary>
    public int PageSize { get; set; } = 50;

    /// <summary>
    /// The most workflows one page of the list reads to fill itself (newest first) when filtering on a column the shared
    /// schema has no index for (name, version, executor, ID prefix…): 100,000 by default. A page that reaches it says so
    /// and offers to continue the search.
    /// </summary>
    public int ScanLimit { get; set; } = 100_000;

    /// <summary>How long one list query may run on Postgres (<c>statement_timeout</c>, local to its transaction): 5 seconds by default.</summary>
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the workflow list refreshes itself while "Live" is on: 3 seconds by default.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(3);
}
