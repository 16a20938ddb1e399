using System.CommandLine;
using System.Net;
using Dbos.Dashboard;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Dbos.Cli;

/// <summary><c>dbos dashboard</c>: the web dashboard of any DBOS system database, served on this machine.</summary>
internal static partial class CliApp
{
    private const string ActionsPolicy = "dbos-cli-actions";

    private static Command DashboardCommand(TextWriter output, TextWriter errors)
    {
        var url = new Option<string?>("--url") { Description = "The system database URL (same as --sys-db-url; default: DBOS_SYSTEM_DATABASE_URL)." };
        var port = new Option<int>("--port", "-p") { Description = "The port to serve on (0 picks a free one).", DefaultValueFactory = _ => 4100 };
        var bind = new Option<string>("--bind") { Description = "The address to listen on. The default, 127.0.0.1, serves this machine only.", DefaultValueFactory = _ => "127.0.0.1" };
        var allowActions = new Option<bool>("--allow-actions") { Description = "Offer cancel, resume, fork, delete, priority and schedule actions. Only with a loopback --bind." };
        var hideValues = new Option<bool>("--hide-values") { Description = "Hide workflow inputs, outputs and other recorded values." };
        var scanLimit = new Option<int>("--scan-limit") { Description = "The most workflows one filtered page of the list reads before it says the result is partial.", DefaultValueFactory = _ => 100_000 };
        var command = new Command("dashboard", "Serve the DBOS web dashboard of a system database (read-only unless --allow-actions).") { url, port, bind, allowActions, hideValues, scanLimit };
        return Handle(command, output, errors, async (p, client, printer, ct) =>
        {
            if (!IPAddress.TryParse(p.GetValue(bind), out var address))
            {
                throw new ArgumentException($"--bind '{p.GetValue(bind)}' is not an IP address (for example 127.0.0.1, or 0.0.0.0 for every interface).");
            }

            var grantActions = p.GetValue(allowActions);
            if (grantActions && !IPAddress.IsLoopback(address))
            {
                // Actions carry no authentication here: anyone who reaches the port could take them.
                throw new ArgumentException("--allow-actions is allowed only with a loopback --bind (127.0.0.1 or ::1): the command line's dashboard has no sign-in.");
            }

            // Reachable the way the command says it is: the database is read before anything is served.
            await client.ListWorkflowsAsync(new ListWorkflowsOptions { Limit = 1, LoadInput = false, LoadOutput = false }, ct).ConfigureAwait(false);
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "dbos-dashboard", ContentRootPath = AppContext.BaseDirectory });
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(address, p.GetValue(port)));
            builder.Services.AddDbosDashboard();
            if (grantActions)
            {
                builder.Services.AddAuthorizationBuilder().AddPolicy(ActionsPolicy, policy => policy.RequireAssertion(_ => true));
            }

            var app = builder.Build();
            await using (app.ConfigureAwait(false))
            {
                app.MapDbosDashboard("/", o =>
                {
                    o.Operations = client;
                    o.ActionsPolicy = grantActions ? ActionsPolicy : null;
                    o.HideValues = p.GetValue(hideValues);
                    o.ScanLimit = p.GetValue(scanLimit);
                });
                await app.StartAsync(ct).ConfigureAwait(false);
                var served = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                    ?? $"http://{address}:{p.GetValue(port)}";
                await printer.LineAsync($"DBOS dashboard of {client.SystemDatabase} at {served.TrimEnd('/')}/").ConfigureAwait(false);
                await printer.LineAsync(IPAddress.IsLoopback(address)
                    ? "Listening on loopback only: other machines cannot reach it (--bind changes that)."
                    : $"Listening on {address}: every machine that reaches this port sees the workflows.").ConfigureAwait(false);
                await printer.LineAsync(grantActions
                    ? "Actions are enabled for anyone on this machine (--allow-actions). Press Ctrl+C to stop."
                    : "Read-only (pass --allow-actions to cancel, resume, fork, delete and change priorities). Press Ctrl+C to stop.").ConfigureAwait(false);
                await output.FlushAsync(ct).ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, TimeProvider.System, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl+C or SIGTERM: stop serving.
                }

                await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }, url: url);
    }
}
