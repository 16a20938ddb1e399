using System.Globalization;
using Dbos.Internal;
using Dbos.SystemDatabase;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Dbos.Dashboard;

/// <summary>The queues, executors and schedules pages, and the actions with their confirmation pages.</summary>
internal sealed partial class DashboardApp
{
    private async Task<string> QueuesPageAsync(HttpContext context, Html html)
    {
        var byStatus = await Database.CountQueuedByStatusAsync(context.RequestAborted).ConfigureAwait(false);
        var byExecutor = await Database.CountQueuedByExecutorAsync(context.RequestAborted).ConfigureAwait(false);
        var now = time.GetUtcNow();
        html.Raw("<div class=\"title-row\"><h1>Queues</h1></div>");
        html.Raw("<p class=\"muted\">Workflows waiting on or running from each queue. Concurrency, rate limits and partitioning are set in each application's code and are not recorded in the database.</p>");
        var queues = byStatus.Select(c => c.QueueName).Concat(byExecutor.Select(c => c.QueueName)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (queues.Count == 0)
        {
            html.Raw("<div class=\"empty\">No workflow is waiting on or running from a queue.</div>");
            await RenderQueueChartsAsync(context, html).ConfigureAwait(false);
            return "Queues";
        }

        html.Raw("<table class=\"grid\"><thead><tr><th>Queue</th><th>Enqueued</th><th>Delayed</th><th>Running</th><th>Partitions</th><th>Oldest waiting since</th><th>Running per executor (longest wait to start)</th></tr></thead><tbody>");
        foreach (var queue in queues)
        {
            long Count(string status) => byStatus.Where(c => c.QueueName == queue && c.Status == status).Sum(c => c.Count);
            var enqueued = byStatus.FirstOrDefault(c => c.QueueName == queue && c.Status == "ENQUEUED");
            var partitions = byStatus.Where(c => c.QueueName == queue).Select(c => c.Partitions).DefaultIfEmpty(0).Max();
            html.Raw("<tr><td>").Link(Url(context, "/", Html.Query(("queue", queue))), queue).Raw("</td>");
            foreach (var status in (ReadOnlySpan<string>)["ENQUEUED", "DELAYED", "PENDING"])
            {
                html.Raw("<td class=\"num\">").Link(Url(context, "/", Html.Query(("queue", queue), ("status", status))), Count(status).ToString("N0", CultureInfo.InvariantCulture)).Raw("</td>");
            }

            html.Raw("<td class=\"num\">").Text(partitions == 0 ? "—" : partitions.ToString("N0", CultureInfo.InvariantCulture)).Raw("</td><td>");
            if (enqueued is not null)
            {
                var oldest = DateTimeOffset.FromUnixTimeMilliseconds(enqueued.OldestCreatedAt);
                html.Text(Html.Time(oldest)).Raw(" <span class=\"muted\">(").Text(Html.Duration(now - oldest)).Raw(")</span>");
            }
            else
            {
                html.Text("—");
            }

            html.Raw("</td><td>");
            foreach (var running in byExecutor.Where(c => c.QueueName == queue))
            {
                html.Raw("<div>").Text(running.ExecutorId ?? "(none)").Raw(": ").Text(running.Count.ToString("N0", CultureInfo.InvariantCulture))
                    .Raw(" <span class=\"muted\">(").Text(Html.Duration(running.LongestWaitMs is { } w ? TimeSpan.FromMilliseconds(w) : null)).Raw(")</span></div>");
            }

            html.Raw("</td></tr>");
        }

        html.Raw("</tbody></table>");
        await RenderQueueChartsAsync(context, html).ConfigureAwait(false);
        return "Queues";
    }

    private async Task<string> ExecutorsPageAsync(HttpContext context, Html html)
    {
        var versions = await Operations.ListApplicationVersionsAsync(context.RequestAborted).ConfigureAwait(false);
        var applications = versions.Select(v => v.ApplicationName).OfType<string>().Append(External.ApplicationName).OfType<string>()
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var application = Param(context, "app") ?? External.ApplicationName ?? (applications.Count == 1 ? applications[0] : null);
        html.Raw("<div class=\"title-row\"><h1>Executors</h1>");
        if (applications.Count > 1 || (application is not null && !applications.Contains(application)))
        {
            html.Raw("<form method=\"get\" class=\"inline\"").Attr("action", Url(context, "/executors")).Raw("><select name=\"app\" aria-label=\"Application\">");
            foreach (var name in applications)
            {
                html.Raw("<option").Attr("value", name).Raw(name == application ? " selected>" : ">").Text(name).Raw("</option>");
            }

            html.Raw("</select><button type=\"submit\" class=\"small secondary\">Show</button></form>");
        }

        html.Raw("</div>");
        if (application is null)
        {
            html.Raw("<div class=\"empty\">No application has registered a version yet: executors are listed per application.</div>");
            return "Executors";
        }

        var executors = await External.ListExecutorsAsync(application, context.RequestAborted).ConfigureAwait(false);
        html.Raw("<p>Application <strong>").Text(application).Raw("</strong></p>");
        html.Raw("<p class=\"muted\">Alive: the process holds its liveness. Dead: a DBOS for .NET executor that no longer does; live processes take over its work. Unknown: no liveness of this library's (another implementation's executor, or a fixed ID whose process is not running); its work is recovered only on request.</p>");
        if (executors.Count == 0)
        {
            html.Raw("<div class=\"empty\">No executor is alive or holds pending workflows.</div>");
        }
        else
        {
            html.Raw("<table class=\"grid\"><thead><tr><th>Executor</th><th>State</th><th>Version</th><th>Pending workflows</th><th>Their versions</th><th>Stranded work</th></tr></thead><tbody>");
            foreach (var executor in executors)
            {
                var state = executor.State switch { ExecutorState.Alive => "alive", ExecutorState.Dead => "dead", _ => "unknown" };
                html.Raw("<tr><td class=\"id\">").Link(Url(context, "/", Html.Query(("executor", executor.ExecutorId))), executor.ExecutorId).Raw("</td><td>")
                    .Element("span", "badge ex-" + state, state).Raw("</td><td class=\"id\">").Text(executor.ApplicationVersion ?? "—").Raw("</td><td class=\"num\">")
                    .Link(Url(context, "/", Html.Query(("executor", executor.ExecutorId), ("status", "PENDING"))), executor.PendingWorkflows.ToString("N0", CultureInfo.InvariantCulture))
                    .Raw("</td><td class=\"id\">").Text(string.Join(", ", executor.PendingVersions)).Raw("</td><td>");
                html.Text(executor.PendingWorkflows == 0 ? "—"
                    : executor.State switch
                    {
                        ExecutorState.Alive => "—",
                        ExecutorState.Dead => $"{executor.PendingWorkflows:N0} pending, taken over by live processes of the same version",
                        _ => $"{executor.PendingWorkflows:N0} pending, recovered only on request (dbos executor recover)",
                    });
                html.Raw("</td></tr>");
            }

            html.Raw("</tbody></table>");
        }

        html.Raw("<h2 class=\"section\">Application versions</h2>");
        if (versions.Count == 0)
        {
            html.Raw("<div class=\"empty\">No application version is registered.</div>");
            return "Executors";
        }

        var latest = versions.MaxBy(v => v.Timestamp);
        html.Raw("<table class=\"grid\"><thead><tr><th>Version</th><th>Application</th><th>Registered (UTC)</th><th>Latest since (UTC)</th><th></th></tr></thead><tbody>");
        foreach (var version in versions.OrderByDescending(v => v.Timestamp))
        {
            html.Raw("<tr><td class=\"id\">").Link(Url(context, "/", Html.Query(("version", version.Name))), version.Name);
            if (ReferenceEquals(version, latest))
            {
                html.Raw(" ").Element("span", "badge ex-alive", "latest");
            }

            html.Raw("</td><td>").Text(version.ApplicationName ?? "—").Raw("</td><td class=\"time\">").Text(Html.Time(version.CreatedAt)).Raw("</td><td class=\"time\">")
                .Text(Html.Time(version.Timestamp)).Raw("</td><td>").Link(Url(context, "/", Html.Query(("version", version.Name), ("status", "PENDING"))), "pending workflows").Raw("</td></tr>");
        }

        html.Raw("</tbody></table>");
        return "Executors";
    }

    private async Task<string> SchedulesPageAsync(HttpContext context, Html html)
    {
        var schedules = await Operations.ListSchedulesAsync(context.RequestAborted).ConfigureAwait(false);
        var canAct = await CanActAsync(context).ConfigureAwait(false);
        var now = time.GetUtcNow();
        html.Raw("<div class=\"title-row\"><h1>Schedules</h1></div>");
        Done(context, html);
        if (schedules.Count == 0)
        {
            html.Raw("<div class=\"empty\">No schedule is recorded.</div>");
            return "Schedules";
        }

        html.Raw("<table class=\"grid schedules\"><thead><tr><th>Schedule</th><th>Workflow</th><th>Cron</th><th>Status</th><th>Next ticks (UTC)</th><th>Last fired (UTC)</th><th>Last runs</th>");
        html.Raw(canAct ? "<th>Actions</th>" : string.Empty).Raw("</tr></thead><tbody>");
        foreach (var schedule in schedules)
        {
            var runs = await Database.ListWorkflowsAsync(
                new StatusQuery { ScheduleName = schedule.Name, Limit = 3, Descending = true, LoadInput = false, LoadOutput = false },
                context.RequestAborted).ConfigureAwait(false);
            html.Raw("<tr><td>").Text(schedule.Name).Raw("</td><td>").Link(Url(context, "/", Html.Query(("name", schedule.WorkflowName))), schedule.WorkflowName)
                .Raw("</td><td><code>").Text(schedule.Cron).Raw("</code>").Raw(schedule.TimeZone is null ? string.Empty : "<div class=\"muted\">").Text(schedule.TimeZone)
                .Raw(schedule.TimeZone is null ? string.Empty : "</div>").Raw("</td><td>")
                .Element("span", schedule.Status == ScheduleStatus.Active ? "badge ex-alive" : "badge ex-unknown", schedule.Status == ScheduleStatus.Active ? "active" : "paused").Raw("</td><td class=\"time\">");
            if (schedule.Status == ScheduleStatus.Active)
            {
                try
                {
                    var cron = CronSchedule.Parse(schedule.Cron, schedule.Name);
                    var zone = CronSchedule.Zone(schedule.TimeZone, schedule.Name);
                    var from = now;
                    for (var i = 0; i < 3 && cron.GetNextOccurrence(from, zone) is { } next; i++)
                    {
                        html.Raw("<div>").Text(Html.Time(next)).Raw("</div>");
                        from = next;
                    }
                }
                catch (ArgumentException ex)
                {
                    html.Raw("<span class=\"error-name\">").Text(ex.Message).Raw("</span>");
                }
            }
            else
            {
                html.Text("—");
            }

            html.Raw("</td><td class=\"time\">").Text(Html.Time(schedule.LastFiredAt)).Raw("</td><td>");
            if (runs.Count == 0)
            {
                html.Text("—");
            }

            foreach (var run in runs)
            {
                html.Raw("<div>");
                Badge(html, run.Status);
                html.Raw(" ").Link(WorkflowUrl(context, run.WorkflowId), Html.Time(DateTimeOffset.FromUnixTimeMilliseconds(run.CreatedAt))).Raw("</div>");
            }

            html.Raw("</td>");
            if (canAct)
            {
                html.Raw("<td class=\"row-actions\">");
                var toggle = schedule.Status == ScheduleStatus.Active ? ("pause", "Pause") : ("unpause", "Resume");
                html.Link(Url(context, "/confirm", Html.Query(("action", toggle.Item1), ("schedule", schedule.Name))), toggle.Item2, "button small secondary");
                html.Link(Url(context, "/confirm", Html.Query(("action", "trigger"), ("schedule", schedule.Name))), "Trigger", "button small secondary");
                html.Raw("<form method=\"get\" class=\"inline\"").Attr("action", Url(context, "/confirm")).Raw(">").Hidden("action", "backfill").Hidden("schedule", schedule.Name)
                    .Raw("<input type=\"datetime-local\" name=\"start\" required aria-label=\"Backfill from (UTC)\"><input type=\"datetime-local\" name=\"end\" required aria-label=\"Backfill to (UTC)\">")
                    .Raw("<button type=\"submit\" class=\"small secondary\">Backfill</button></form></td>");
            }

            html.Raw("</tr>");
        }

        html.Raw("</tbody></table>");
        return "Schedules";
    }

    /// <summary>An action the dashboard can take, as a form names it.</summary>
    private sealed record ActionRequest(string Action, string? WorkflowId, string? Schedule, int Step, int Priority, DateTimeOffset? Start, DateTimeOffset? End)
    {
        public string Target => WorkflowId ?? Schedule ?? string.Empty;

        public string Describe() => Action switch
        {
            "cancel" => $"Cancel workflow {WorkflowId}? It stops at its next step in whichever process runs it, and is not recovered.",
            "resume" => $"Resume workflow {WorkflowId}? It runs again from its last recorded step, on its queue or at once.",
            "fork" => $"Fork workflow {WorkflowId} from step {Step}? A new workflow reuses its first {Step} recorded steps and runs the rest again.",
            "delete" => $"Delete workflow {WorkflowId}? Its status, input, output and steps are removed for good.",
            "priority" => $"Set the priority of workflow {WorkflowId} to {Priority}? A lower number is dequeued first.",
            "pause" => $"Pause schedule {Schedule}? It fires no more ticks until resumed.",
            "unpause" => $"Resume schedule {Schedule}?",
            "trigger" => $"Run schedule {Schedule} once now?",
            "backfill" => $"Run schedule {Schedule} for every tick from {Html.Time(Start)} to {Html.Time(End)} (UTC)?",
            _ => throw new ArgumentException($"'{Action}' is not a dashboard action."),
        };

        public static ActionRequest Parse(Func<string, string?> field)
        {
            var action = Required(field("action"), "action");
            var isSchedule = action is "pause" or "unpause" or "trigger" or "backfill";
            var request = new ActionRequest(
                action,
                isSchedule ? null : Required(field("id"), "workflow ID"),
                isSchedule ? Required(field("schedule"), "schedule") : null,
                action == "fork" ? ParseInt(field("step") ?? "0", "step") : 0,
                action == "priority" ? ParseInt(field("priority"), "priority") : 0,
                action == "backfill" ? ParseTime(Required(field("start"), "start time"), "start time") : null,
                action == "backfill" ? ParseTime(Required(field("end"), "end time"), "end time") : null);
            _ = request.Describe(); // Refuses an unknown action.
            StorableText.Check(request.Target, "The target");
            return request;
        }
    }

    private async Task<string> ConfirmPageAsync(HttpContext context, Html html)
    {
        var request = ActionRequest.Parse(name => Param(context, name));
        if (!await CanActAsync(context).ConfigureAwait(false))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            html.Raw("<div class=\"notice error\">").Text(ReadOnlyReason).Raw("</div>");
            return "Forbidden";
        }

        var tokens = context.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(context);
        var back = request.WorkflowId is { } id ? WorkflowUrl(context, id) : Url(context, "/schedules");
        html.Raw("<section class=\"card confirm\"><h1>Confirm</h1><p>").Text(request.Describe()).Raw("</p>");
        html.Raw("<form method=\"post\"").Attr("action", Url(context, "/act")).Raw(">").Hidden(tokens.FormFieldName, tokens.RequestToken).Hidden("action", request.Action)
            .Hidden("id", request.WorkflowId).Hidden("schedule", request.Schedule).Hidden("step", request.Step.ToString(CultureInfo.InvariantCulture))
            .Hidden("priority", request.Priority.ToString(CultureInfo.InvariantCulture))
            .Hidden("start", request.Start?.ToString("O", CultureInfo.InvariantCulture)).Hidden("end", request.End?.ToString("O", CultureInfo.InvariantCulture))
            .Raw("<div class=\"buttons\"><button type=\"submit\"").Attr("class", request.Action is "cancel" or "delete" ? "danger" : null).Raw(" id=\"confirm\">Confirm</button>")
            .Link(back, "Back", "button secondary").Raw("</div></form></section>");
        return "Confirm";
    }

    private string ReadOnlyReason => options.ActionsPolicy is null
        ? "This dashboard is read-only: no authorization policy grants actions."
        : "You are not allowed to take actions on this dashboard.";

    private async Task ActAsync(HttpContext context)
    {
        SecureHeaders(context.Response);
        var action = "(unknown)";
        var target = string.Empty;
        try
        {
            if (!context.Request.HasFormContentType)
            {
                throw new ArgumentException("An action is a form post.");
            }

            var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            action = form["action"].ToString();
            target = form["id"].ToString() + form["schedule"].ToString();
            if (!await CanActAsync(context).ConfigureAwait(false))
            {
                await RefuseAsync(context, action, target, ReadOnlyReason).ConfigureAwait(false);
                return;
            }

            try
            {
                await context.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(context).ConfigureAwait(false);
            }
            catch (AntiforgeryValidationException)
            {
                await RefuseAsync(context, action, target, "The request carries no valid antiforgery token: take the action from its confirmation page.").ConfigureAwait(false);
                return;
            }

            var request = ActionRequest.Parse(name => form[name].ToString() is { Length: > 0 } value ? value.Trim() : null);
            var redirect = await PerformAsync(context, request).ConfigureAwait(false);
            Log.DashboardAction(logger, request.Action, request.Target, context.User.Identity?.Name ?? "(anonymous)");
            context.Response.Redirect(redirect);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or DbosException or InvalidOperationException)
        {
            context.Response.StatusCode = ex is WorkflowNotFoundException ? StatusCodes.Status404NotFound : StatusCodes.Status400BadRequest;
            await WriteLayoutAsync(context, "Error", new Html().Raw("<div class=\"notice error\">").Text(DatabaseUrl.MaskRaw(ex.Message)).Raw("</div>")).ConfigureAwait(false);
        }
    }

    private async Task RefuseAsync(HttpContext context, string action, string target, string reason)
    {
        Log.DashboardActionRefused(logger, action, target, reason);
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        await WriteLayoutAsync(context, "Forbidden", new Html().Raw("<div class=\"notice error\">").Text(reason).Raw("</div>")).ConfigureAwait(false);
    }

    /// <summary>Takes the action through <see cref="IDbosOperations"/> (so every process sees it) and returns where to go next.</summary>
    private async Task<string> PerformAsync(HttpContext context, ActionRequest request)
    {
        var ct = context.RequestAborted;
        var ops = Operations;
        string Back(string done) => Url(context, "/workflow", Html.Query(("id", request.WorkflowId), ("done", done)));
        string Schedules(string done) => Url(context, "/schedules", Html.Query(("done", done)));
        switch (request.Action)
        {
            case "cancel":
                await ops.CancelWorkflowAsync(request.WorkflowId!, ct).ConfigureAwait(false);
                return Back("cancel");
            case "resume":
                await ops.ResumeWorkflowAsync(request.WorkflowId!, ct).ConfigureAwait(false);
                return Back("resume");
            case "fork":
                var fork = await ops.ForkWorkflowAsync(request.WorkflowId!, request.Step, null, ct).ConfigureAwait(false);
                return Url(context, "/workflow", Html.Query(("id", fork.WorkflowId), ("done", "fork")));
            case "delete":
                await ops.DeleteWorkflowAsync(request.WorkflowId!, false, ct).ConfigureAwait(false);
                return Url(context, "/", Html.Query(("done", "delete")));
            case "priority":
                await ops.SetWorkflowPriorityAsync(request.WorkflowId!, request.Priority, ct).ConfigureAwait(false);
                return Back("priority");
            case "pause":
                await ops.PauseScheduleAsync(request.Schedule!, ct).ConfigureAwait(false);
                return Schedules("pause");
            case "unpause":
                await ops.ResumeScheduleAsync(request.Schedule!, ct).ConfigureAwait(false);
                return Schedules("unpause");
            case "trigger":
                var run = await ops.TriggerScheduleAsync(request.Schedule!, ct).ConfigureAwait(false);
                return Url(context, "/workflow", Html.Query(("id", run.WorkflowId), ("done", "trigger")));
            default:
                await ops.BackfillScheduleAsync(request.Schedule!, request.Start!.Value, request.End!.Value, ct).ConfigureAwait(false);
                return Schedules("backfill");
        }
    }
}
