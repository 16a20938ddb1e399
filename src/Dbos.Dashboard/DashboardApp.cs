using System.Globalization;
using System.Reflection;
using Dbos.Execution;
using Dbos.Internal;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dbos.Dashboard;

/// <summary>
/// The dashboard's endpoints: pages (GET) that read, the confirmation pages of actions (GET) and the actions themselves
/// (POST, granted by <see cref="DbosDashboardOptions.ActionsPolicy"/> and checked against an antiforgery token).
/// </summary>
internal sealed partial class DashboardApp
{
    private readonly IServiceProvider services;
    private readonly DbosDashboardOptions options;
    private readonly string prefix;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly Lazy<(IDbosOperations Operations, ExternalAccess External)> access;

    private DashboardApp(IServiceProvider services, DbosDashboardOptions options, string prefix)
    {
        this.services = services;
        this.options = options;
        this.prefix = prefix.TrimEnd('/');
        logger = services.GetService<ILoggerFactory>()?.CreateLogger("Dbos.Dashboard") ?? NullLogger.Instance;
        time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        access = new(ResolveOperations);
    }

    public static DashboardApp Create(IServiceProvider services, DbosDashboardOptions options, string pattern)
    {
        if (services.GetService<IAntiforgery>() is null)
        {
            throw new InvalidOperationException("The DBOS dashboard needs antiforgery and authorization services: call services.AddDbosDashboard() before building the application.");
        }

        return new DashboardApp(services, options, pattern);
    }

    private IDbosOperations Operations => access.Value.Operations;

    private ExternalAccess External => access.Value.External;

    private SystemDatabase.SystemDatabase Database => External.Database;

    private (IDbosOperations, ExternalAccess) ResolveOperations()
    {
        var operations = options.Operations ?? services.GetService<IDbosOperations>() ?? services.GetService<DbosApp>()
            ?? throw new InvalidOperationException("The DBOS dashboard found no DBOS application: call services.AddDbos(), or set DbosDashboardOptions.Operations.");
        ExternalAccess external = operations switch
        {
            DbosClient client => client.External,
            DbosApp app => app.Engine.External,
            _ => throw new InvalidOperationException("The DBOS dashboard reads through a DbosApp or a DbosClient."),
        };
        return (operations, external);
    }

    public void Map(RouteGroupBuilder group)
    {
        group.MapGet("/", ctx => PageAsync(ctx, WorkflowsPageAsync));
        group.MapGet("/workflow", ctx => PageAsync(ctx, WorkflowPageAsync));
        group.MapGet("/activity", ctx => PageAsync(ctx, ActivityPageAsync));
        group.MapGet("/queues", ctx => PageAsync(ctx, QueuesPageAsync));
        group.MapGet("/executors", ctx => PageAsync(ctx, ExecutorsPageAsync));
        group.MapGet("/schedules", ctx => PageAsync(ctx, SchedulesPageAsync));
        group.MapGet("/confirm", ctx => PageAsync(ctx, ConfirmPageAsync));
        group.MapPost("/act", ActAsync);
        group.MapGet("/assets/dashboard.css", ctx => AssetAsync(ctx, "dashboard.css", "text/css; charset=utf-8"));
        group.MapGet("/assets/dashboard.js", ctx => AssetAsync(ctx, "dashboard.js", "text/javascript; charset=utf-8"));
        group.MapGet("/assets/icon.svg", ctx => AssetAsync(ctx, "icon.svg", "image/svg+xml"));
    }

    /// <summary>The address of a dashboard page, under the application's path base and the dashboard's prefix.</summary>
    private string Url(HttpContext context, string page, string query = "") =>
        context.Request.PathBase.Value + prefix + page + query;

    private static void SecureHeaders(HttpResponse response)
    {
        // Defense in depth behind the encoding: no inline script or style runs, nothing loads from elsewhere.
        response.Headers.ContentSecurityPolicy =
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers.CacheControl = "no-store";
    }

    private static async Task AssetAsync(HttpContext context, string name, string contentType)
    {
        var stream = typeof(DashboardApp).Assembly.GetManifestResourceStream("Dbos.Dashboard." + name)
            ?? throw new InvalidOperationException($"The dashboard's {name} is missing from its assembly.");
        await using (stream.ConfigureAwait(false))
        {
            context.Response.ContentType = contentType;
            context.Response.Headers.XContentTypeOptions = "nosniff";
            context.Response.Headers.CacheControl = "public, max-age=3600";
            await stream.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>Renders a page, turning a bad filter or a refused operation into a page that says why.</summary>
    private async Task PageAsync(HttpContext context, Func<HttpContext, Html, Task<string>> render)
    {
        SecureHeaders(context.Response);
        var body = new Html();
        string title;
        try
        {
            title = await render(context, body).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or DbosException)
        {
            context.Response.StatusCode = ex is WorkflowNotFoundException ? StatusCodes.Status404NotFound : StatusCodes.Status400BadRequest;
            body = new Html().Raw("<div class=\"notice error\">").Text(DatabaseUrl.MaskRaw(ex.Message)).Raw("</div>");
            title = "Error";
        }

        if (title.Length == 0)
        {
            return; // The page wrote its own response (a fragment).
        }

        await WriteLayoutAsync(context, title, body).ConfigureAwait(false);
    }

    private async Task WriteLayoutAsync(HttpContext context, string title, Html body)
    {
        var canAct = await CanActAsync(context).ConfigureAwait(false);
        var path = context.Request.Path.Value ?? string.Empty;
        var page = new Html();
        page.Raw("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        page.Raw("<title>").Text(title).Raw(" · DBOS</title>");
        page.Raw("<link rel=\"icon\" type=\"image/svg+xml\"").Attr("href", Url(context, "/assets/icon.svg")).Raw(">");
        page.Raw("<link rel=\"stylesheet\"").Attr("href", Url(context, "/assets/dashboard.css")).Raw(">");
        page.Raw("<script defer").Attr("src", Url(context, "/assets/dashboard.js")).Raw("></script></head><body>");
        page.Raw("<header class=\"top\"><div class=\"brand\"><span class=\"logo\">DBOS</span> dashboard</div><nav>");
        foreach (var (href, label) in (ReadOnlySpan<(string, string)>)[("/", "Workflows"), ("/activity", "Activity"), ("/queues", "Queues"), ("/executors", "Executors"), ("/schedules", "Schedules")])
        {
            var current = href == "/" ? path is "" or "/" or "/workflow" : path.StartsWith(href, StringComparison.Ordinal);
            page.Link(Url(context, href), label, current ? "current" : null);
        }

        page.Raw("</nav><div class=\"where\">").Element("span", "db", Operations.SystemDatabase)
            .Element("span", canAct ? "mode act" : "mode ro", canAct ? "actions enabled" : "read-only").Raw("</div></header>");
        page.Raw("<main>").Raw(body.ToString()).Raw("</main></body></html>");
        context.Response.ContentType = "text/html; charset=utf-8";
        await context.Response.WriteAsync(page.ToString(), context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Whether this request's user may take actions: a policy is named and the user satisfies it.</summary>
    private async Task<bool> CanActAsync(HttpContext context)
    {
        if (options.ActionsPolicy is not { } policy)
        {
            return false;
        }

        var authorization = context.RequestServices.GetRequiredService<IAuthorizationService>();
        return (await authorization.AuthorizeAsync(context.User, null, policy).ConfigureAwait(false)).Succeeded;
    }

    /// <summary>Text of a query parameter, trimmed; null when absent or blank.</summary>
    private static string? Param(HttpContext context, string name)
    {
        var value = context.Request.Query[name].ToString().Trim();
        return value.Length == 0 ? null : value;
    }

    private static string Required(string? value, string what) =>
        value ?? throw new ArgumentException($"The request names no {what}.");

    private static int ParseInt(string? value, string what) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) ? parsed : throw new FormatException($"'{value}' is not a valid {what}.");

    private static DateTimeOffset? ParseTime(string? value, string what)
    {
        if (value is null)
        {
            return null;
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed)
            ? parsed
            : throw new FormatException($"'{value}' is not a valid {what} (UTC, for example 2026-01-31T14:30).");
    }
}
