using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Dbos.Dashboard;

/// <summary>Registers the services the DBOS dashboard needs.</summary>
public static class DashboardServiceCollectionExtensions
{
    /// <summary>
    /// Adds what <see cref="DashboardEndpointRouteBuilderExtensions.MapDbosDashboard(IEndpointRouteBuilder, string, Action{DbosDashboardOptions}?)"/>
    /// uses: ASP.NET Core antiforgery (every action carries a token) and authorization (the actions policy).
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <returns>The same services, for chaining.</returns>
    public static IServiceCollection AddDbosDashboard(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddAntiforgery();
        services.AddAuthorization();
        return services;
    }
}

/// <summary>Maps the DBOS dashboard into an ASP.NET Core application.</summary>
public static class DashboardEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves the DBOS dashboard under <paramref name="pattern"/> (for example <c>/dbos</c>): workflows, one workflow with
    /// its steps, queues, executors and versions, schedules. It is read-only unless
    /// <see cref="DbosDashboardOptions.ActionsPolicy"/> names the authorization policy that grants actions. Call
    /// <see cref="DashboardServiceCollectionExtensions.AddDbosDashboard"/> on the services first.
    /// </summary>
    /// <param name="endpoints">The application's endpoints.</param>
    /// <param name="pattern">The path prefix of the dashboard's pages.</param>
    /// <param name="configure">Sets the dashboard's options.</param>
    /// <returns>The group of the dashboard's endpoints: add conventions to it, such as <c>RequireAuthorization()</c> to protect every page.</returns>
    public static RouteGroupBuilder MapDbosDashboard(this IEndpointRouteBuilder endpoints, string pattern = "/dbos", Action<DbosDashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(pattern);
        var options = new DbosDashboardOptions();
        configure?.Invoke(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PageSize, 1, nameof(options.PageSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ScanLimit, 1, nameof(options.ScanLimit));
        var dashboard = DashboardApp.Create(endpoints.ServiceProvider, options, pattern);
        var group = endpoints.MapGroup(pattern);
        dashboard.Map(group);
        return group;
    }
}
