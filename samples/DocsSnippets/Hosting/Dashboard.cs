using Dbos;
using Dbos.Dashboard;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace DocsSnippets.Hosting;

/// <summary>The examples of docs/dashboard.md.</summary>
public static class Dashboard
{
    public static async Task MapAsync(string[] args)
    {
        // <snippet:dashboard-map>
        var builder = WebApplication.CreateBuilder(args);
        builder.Services.AddDbos();
        builder.Services.AddDbosDashboard();                    // antiforgery and authorization, which the dashboard uses
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy("dbos-operators", policy => policy.RequireRole("operator"));

        var app = builder.Build();
        app.MapDbosDashboard("/dbos", options =>
        {
            options.ActionsPolicy = "dbos-operators";           // who may cancel, resume, fork, delete, change priorities
            options.HideValues = true;                          // hide inputs, outputs, events, messages and streams
        }).RequireAuthorization();                              // and who may see the pages at all
        await app.RunAsync();
        // </snippet:dashboard-map>
    }

    public static void FromClient(WebApplication app)
    {
        // <snippet:dashboard-client>
        var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = "postgresql://dbos@db-host/orders" });
        app.MapDbosDashboard("/orders-dbos", options => options.Operations = client);
        // </snippet:dashboard-client>
    }
}
