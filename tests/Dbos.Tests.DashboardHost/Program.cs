// A host of the DBOS dashboard for the browser tests of granted actions, as an application would host it: users sign in
// with a cookie (GET /signin?user=NAME[&role=ROLE], a stand-in for a real login page), and the dashboard's actions are
// granted by an authorization policy that requires the "operator" role. It reads and acts through a DbosClient.
//
// Usage: Dbos.Tests.DashboardHost --urls http://127.0.0.1:0     prints "listening <address>" once it serves
// Environment: DBOS_TEST_URL, DBOS_TEST_SCHEMA (the system database).
using System.Security.Claims;
using Dbos;
using Dbos.Dashboard;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

var url = Environment.GetEnvironmentVariable("DBOS_TEST_URL") ?? throw new InvalidOperationException("DBOS_TEST_URL is not set.");
var schema = Environment.GetEnvironmentVariable("DBOS_TEST_SCHEMA");
await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = url, SystemDatabaseSchema = string.IsNullOrEmpty(schema) ? "dbos" : schema });

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
builder.Services.AddDbosDashboard();
builder.Services.AddAuthorizationBuilder().AddPolicy("dbos-operators", policy => policy.RequireAuthenticatedUser().RequireRole("operator"));

var app = builder.Build();
app.UseAuthentication();
app.UseAuthorization();
app.MapGet("/signin", async (HttpContext context, string user, string? role) =>
{
    List<Claim> claims = [new(ClaimTypes.Name, user)];
    if (role is not null)
    {
        claims.Add(new Claim(ClaimTypes.Role, role));
    }

    await context.SignInAsync(new ClaimsPrincipal(new ClaimsIdentity(claims, CookieAuthenticationDefaults.AuthenticationScheme)));
    return Results.Redirect("/dbos/");
});
app.MapDbosDashboard("/dbos", options =>
{
    options.Operations = client;
    options.ActionsPolicy = "dbos-operators";
});

await app.StartAsync();
var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
Console.WriteLine($"listening {address.TrimEnd('/')}/");
await app.WaitForShutdownAsync();
