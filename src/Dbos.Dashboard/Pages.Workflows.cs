using System.Globalization;
using Dbos.SystemDatabase;
using Microsoft.AspNetCore.Http;

namespace Dbos.Dashboard;

/// <summary>The workflow list and one workflow's page.</summary>
internal sealed partial class DashboardApp
{
    private static readonly string[] AllStatuses = ["PENDING", "ENQUEUED", "DELAYED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"];

    private static readonly string[] FilterNames = ["status", "name", "queue", "version", "executor", "prefix", "from", "to"];

    private async Task<string> WorkflowsPageAsync(HttpContext context, Html html)
    {
        var statuses = context.Request.Query["status"].Where(s => !string.IsNullOrWhiteSpace(s)).Select(s => s!.Trim().ToUpperInvariant()).Distinct().ToList();
        foreach (var status in statuses)
        {
            if (!AllStatuses.Contains(status))
            {
                throw new ArgumentException($"'{status}' is not a workflow status.");
            }
        }

        var query = new WorkflowPageQuery
        {
            Filter = new StatusQuery
            {
                Statuses = statuses.Count > 0 ? statuses : null,
                Names = Param(context, "name") is { } name ? [name] : null,
                QueueNames = Param(context, "queue") is { } queue ? [queue] : null,
                ApplicationVersion = Param(context, "version"),
                ExecutorId = Param(context, "executor"),
                WorkflowIdPrefix = Param(context, "prefix"),
                CreatedFromEpochMs = ParseTime(Param(context, "from"), "start time")?.ToUnixTimeMilliseconds(),
                CreatedToEpochMs = ParseTime(Param(context, "to"), "end time")?.ToUnixTimeMilliseconds(),
            },
            After = Key(context, "after"),
            Before = Key(context, "before"),
            PageSize = options.PageSize,
            ScanLimit = options.ScanLimit,
            StatementTimeout = options.QueryTimeout,
        };
        var page = await Database.ListWorkflowPageAsync(query, context.RequestAborted).ConfigureAwait(false);
        var results = new Html();
        RenderWorkflowResults(context, results, page, query);
        if (context.Request.Query.ContainsKey("fragment"))
        {
            SecureHeaders(context.Response);
            context.Response.ContentType = "text/html; charset=utf-8";
            await context.Response.WriteAsync(results.ToString(), context.RequestAborted).ConfigureAwait(false);
            return string.Empty;
        }

        html.Raw("<div class=\"title-row\"><h1>Workflows</h1><label class=\"live\"><input type=\"checkbox\" id=\"live\"> Live</label><span id=\"refreshed\" class=\"muted\"></span></div>");
        Done(context, html);
        RenderFilters(context, html, query);
        html.Raw("<div id=\"results\"").Attr("data-refresh-ms", ((long)options.RefreshInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)).Raw(">")
            .Raw(results.ToString()).Raw("</div>");
        return "Workflows";
    }

    /// <summary>A position in the list from the parameters <c>{prefix}_at</c> and <c>{prefix}_id</c>, or null.</summary>
    private static WorkflowKey? Key(HttpContext context, string prefix) =>
        Param(context, prefix + "_at") is { } at
            ? new WorkflowKey(
                long.TryParse(at, NumberStyles.Integer, CultureInfo.InvariantCulture, out var createdAt) ? createdAt : throw new FormatException($"'{at}' is not a position in the list."),
                Param(context, prefix + "_id") ?? string.Empty)
            : null;

    private static (string, string?)[] KeyQuery(string prefix, WorkflowKey key) =>
        [(prefix + "_at", key.CreatedAt.ToString(CultureInfo.InvariantCulture)), (prefix + "_id", key.WorkflowId)];

    private void RenderFilters(HttpContext context, Html html, WorkflowPageQuery query)
    {
        html.Raw("<form class=\"filters\" method=\"get\"").Attr("action", Url(context, "/")).Raw(">");
        html.Raw("<label>Status<select name=\"status\"><option value=\"\">Any</option>");
        foreach (var status in AllStatuses)
        {
            html.Raw("<option").Attr("value", status).Raw(query.Filter.Statuses?.Contains(status) == true ? " selected>" : ">").Text(status).Raw("</option>");
        }

        html.Raw("</select></label>");
        void Field(string name, string label, string? value, string type = "text", string? placeholder = null)
        {
            html.Raw("<label>").Text(label).Raw("<input").Attr("type", type).Attr("name", name).Attr("value", value);
            if (placeholder is not null)
            {
                html.Attr("placeholder", placeholder);
            }

            html.Raw("></label>");
        }

        Field("name", "Name", Param(context, "name"));
        Field("queue", "Queue", Param(context, "queue"));
        Field("version", "Version", Param(context, "version"));
        Field("executor", "Executor", Param(context, "executor"));
        Field("prefix", "ID prefix", Param(context, "prefix"));
        Field("from", "Created from (UTC)", Param(context, "from"), "datetime-local");
        Field("to", "to", Param(context, "to"), "datetime-local");
        html.Raw("<div class=\"buttons\"><button type=\"submit\">Apply</button>").Link(Url(context, "/"), "Clear", "button secondary").Raw("</div></form>");
    }

    private void RenderWorkflowResults(HttpContext context, Html html, WorkflowPage page, WorkflowPageQuery query)
    {
        if (page.TimedOut)
        {
            html.Raw("<div class=\"notice warn\">Partial result: the query ran past ").Text(Html.Duration(options.QueryTimeout))
                .Raw(" and was stopped. A filter on name, version, executor or ID prefix has no index in the shared schema; narrow the time range.</div>");
        }

        if (page.Rows.Count == 0 && !page.TimedOut)
        {
            html.Raw("<div class=\"empty\">No workflows match.</div>");
        }
        else if (page.Rows.Count > 0)
        {
            html.Raw("<table class=\"grid workflows\"><thead><tr><th>Workflow ID</th><th>Name</th><th>Status</th><th>Queue</th><th>Executor</th><th>Version</th><th>Created (UTC)</th><th>Duration</th></tr></thead><tbody>");
            var now = time.GetUtcNow();
            foreach (var row in page.Rows)
            {
                var created = DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt);
                var end = row.CompletedAt is { } completed ? DateTimeOffset.FromUnixTimeMilliseconds(completed) : (DateTimeOffset?)null;
                html.Raw("<tr><td class=\"id\">").Link(Url(context, "/workflow", Html.Query(("id", row.WorkflowId))), row.WorkflowId).Raw("</td>");
                html.Raw("<td>").Text(row.Name).Raw("</td><td>");
                Badge(html, row.Status);
                html.Raw("</td><td>").Text(row.QueueName).Raw("</td><td class=\"id\">").Text(row.ExecutorId).Raw("</td><td class=\"id\">").Text(row.ApplicationVersion)
                    .Raw("</td><td class=\"time\">").Text(Html.Time(created)).Raw("</td><td class=\"num\">")
                    .Text(end is { } e ? Html.Duration(e - created) : IsFinished(row.Status) ? "—" : Html.Duration(now - created) + " so far").Raw("</td></tr>");
            }

            html.Raw("</tbody></table>");
        }

        if (page.ScanStopped)
        {
            html.Raw("<div class=\"notice warn\">Partial result: this page searched ").Text(query.ScanLimit.ToString("N0", CultureInfo.InvariantCulture))
                .Raw(query.Before is null
                    ? " workflows without filling itself (the filters have no index in the shared schema). Older workflows were not searched yet.</div>"
                    : " workflows without filling itself (the filters have no index in the shared schema). Newer workflows were not searched yet.</div>");
        }

        html.Raw("<div class=\"pager\">");
        var filters = FilterNames.SelectMany(n => context.Request.Query[n].Select(v => (n, v))).ToArray();
        if (page.Previous is not null || (page.Rows.Count == 0 && (query.After is not null || query.Before is not null)))
        {
            html.Link(Url(context, "/", Html.Query(filters)), "« Newest", "button secondary newest");
        }

        if (page.Previous is { } previous)
        {
            var newerStopped = page.ScanStopped && query.Before is not null;
            html.Link(Url(context, "/", Html.Query([.. filters, .. KeyQuery("before", previous)])), newerStopped ? "‹ Continue searching newer" : "‹ Newer", "button secondary newer");
        }

        if (page.Next is { } next)
        {
            var olderStopped = page.ScanStopped && query.Before is null;
            html.Link(Url(context, "/", Html.Query([.. filters, .. KeyQuery("after", next)])), olderStopped ? "Continue searching »" : "Older »", "button secondary next");
        }

        html.Raw("<span class=\"muted\">").Text($"{page.Rows.Count} shown, newest first").Raw("</span></div>");
    }

    private static bool IsFinished(string status) => status is "SUCCESS" or "ERROR" or "CANCELLED" or "MAX_RECOVERY_ATTEMPTS_EXCEEDED";

    private static void Badge(Html html, string status) =>
        html.Element("span", "badge st-" + status.ToLowerInvariant().Replace('_', '-'), status);

    /// <summary>The notice a page shows after an action sent the user back to it.</summary>
    private static void Done(HttpContext context, Html html)
    {
        var message = Param(context, "done") switch
        {
            "cancel" => "The workflow is cancelled.",
            "resume" => "The workflow is resumed.",
            "fork" => "This workflow is the fork.",
            "delete" => "The workflow is deleted.",
            "priority" => "The priority is changed.",
            "pause" => "The schedule is paused.",
            "unpause" => "The schedule is resumed.",
            "trigger" => "The schedule is triggered.",
            "backfill" => "The schedule is backfilled.",
            _ => null,
        };
        if (message is not null)
        {
            html.Raw("<div class=\"notice ok\">").Text(message).Raw("</div>");
        }
    }

    private async Task<string> WorkflowPageAsync(HttpContext context, Html html)
    {
        var id = Required(Param(context, "id"), "workflow ID");
        var rows = await Database.ListWorkflowsAsync(new StatusQuery { WorkflowIds = [id], LoadInput = !options.HideValues, LoadOutput = true }, context.RequestAborted).ConfigureAwait(false);
        if (rows.Count == 0)
        {
            throw new WorkflowNotFoundException($"No workflow has the ID '{id}'.");
        }

        var status = new WorkflowStatus(rows[0], External.Codec);
        var steps = await Operations.ListWorkflowStepsAsync(id, context.RequestAborted).ConfigureAwait(false);
        var children = await Database.ListChildrenAsync(id, 200, context.RequestAborted).ConfigureAwait(false);
        var events = await Database.ListEventsAsync(id, context.RequestAborted).ConfigureAwait(false);
        var messages = await Database.ListMessagesAsync(id, 200, context.RequestAborted).ConfigureAwait(false);
        var streams = await Database.ListStreamsAsync(id, context.RequestAborted).ConfigureAwait(false);
        var canAct = await CanActAsync(context).ConfigureAwait(false);
        var now = time.GetUtcNow();

        html.Raw("<div class=\"crumbs\">").Link(Url(context, "/"), "Workflows").Raw(" / </div>");
        html.Raw("<div class=\"title-row\"><h1 class=\"id\">").Text(id).Raw("</h1>");
        Badge(html, status.StatusText);
        html.Raw("</div>");
        Done(context, html);
        if (canAct)
        {
            html.Raw("<div class=\"actions\">");
            if (!IsFinished(status.StatusText))
            {
                html.Link(Url(context, "/confirm", Html.Query(("action", "cancel"), ("id", id))), "Cancel", "button danger");
            }

            if (status.State is not WorkflowState.Success)
            {
                html.Link(Url(context, "/confirm", Html.Query(("action", "resume"), ("id", id))), "Resume", "button");
            }

            html.Link(Url(context, "/confirm", Html.Query(("action", "fork"), ("id", id), ("step", "0"))), "Fork from the start", "button secondary");
            html.Link(Url(context, "/confirm", Html.Query(("action", "delete"), ("id", id))), "Delete", "button danger secondary");
            html.Raw("<form method=\"get\" class=\"inline\"").Attr("action", Url(context, "/confirm")).Raw(">").Hidden("action", "priority").Hidden("id", id)
                .Raw("<input type=\"number\" name=\"priority\" min=\"0\"").Attr("value", status.Priority.ToString(CultureInfo.InvariantCulture))
                .Raw(" aria-label=\"Priority\"><button type=\"submit\" class=\"secondary\">Set priority</button></form></div>");
        }

        var end = status.CompletedAt;
        html.Raw("<section class=\"card\"><dl class=\"facts\">");
        void Fact(string label, string? value, string? href = null)
        {
            html.Raw("<div><dt>").Text(label).Raw("</dt><dd>");
            if (href is not null && value is not null)
            {
                html.Link(href, value);
            }
            else
            {
                html.Text(value ?? "—");
            }

            html.Raw("</dd></div>");
        }

        Fact("Name", status.Name);
        Fact("Status", status.StatusText);
        Fact("Queue", status.QueueName, status.QueueName is null ? null : Url(context, "/", Html.Query(("queue", status.QueueName))));
        Fact("Executor", status.ExecutorId, status.ExecutorId is null ? null : Url(context, "/", Html.Query(("executor", status.ExecutorId))));
        Fact("Application version", status.ApplicationVersion);
        Fact("Application", status.ApplicationName);
        Fact("Created (UTC)", Html.Time(status.CreatedAt));
        Fact("Dequeued (UTC)", status.DequeuedAt is null ? null : Html.Time(status.DequeuedAt));
        Fact("Completed (UTC)", status.CompletedAt is null ? null : Html.Time(status.CompletedAt));
        Fact("Duration", end is { } e ? Html.Duration(e - status.CreatedAt) : IsFinished(status.StatusText) ? null : Html.Duration(now - status.CreatedAt) + " so far");
        Fact("Waited in queue", status.DequeuedAt is { } dq && status.QueueName is not null ? Html.Duration(dq - status.CreatedAt) : null);
        Fact("Recovery attempts", status.RecoveryAttempts.ToString(CultureInfo.InvariantCulture));
        Fact("Timeout", status.Timeout is { } t ? Html.Duration(t) : null);
        Fact("Deadline (UTC)", status.Deadline is null ? null : Html.Time(status.Deadline));
        Fact("Priority", status.Priority.ToString(CultureInfo.InvariantCulture));
        Fact("Deduplication ID", status.DeduplicationId);
        Fact("Partition", status.QueuePartitionKey);
        Fact("Parent", status.ParentWorkflowId, status.ParentWorkflowId is null ? null : WorkflowUrl(context, status.ParentWorkflowId));
        Fact("Forked from", status.ForkedFrom, status.ForkedFrom is null ? null : WorkflowUrl(context, status.ForkedFrom));
        Fact("Serialization", status.Serialization);
        html.Raw("</dl></section>");

        html.Raw("<div class=\"values\">");
        Value(html, "Input", status.RawInput);
        if (status.Error is { } error)
        {
            html.Raw("<section class=\"card value error\"><h2>Error</h2><p class=\"error-name\">").Text(error.Name).Raw(": ").Text(error.Message).Raw("</p>");
            if (!options.HideValues)
            {
                html.Raw("<pre>").Text(Html.Pretty(status.RawError)).Raw("</pre>");
            }

            html.Raw("</section>");
        }
        else
        {
            Value(html, "Output", status.RawOutput);
        }

        html.Raw("</div>");
        RenderSteps(context, html, status, steps, canAct, now);

        html.Raw("<section class=\"card\"><h2>Children</h2>");
        if (children.Count == 0)
        {
            html.Raw("<p class=\"muted\">This workflow started no child workflows.</p>");
        }
        else
        {
            html.Raw("<table class=\"grid\"><thead><tr><th>Workflow ID</th><th>Name</th><th>Status</th><th>Created (UTC)</th></tr></thead><tbody>");
            foreach (var child in children)
            {
                html.Raw("<tr><td class=\"id\">").Link(WorkflowUrl(context, child.WorkflowId), child.WorkflowId).Raw("</td><td>").Text(child.Name).Raw("</td><td>");
                Badge(html, child.Status);
                html.Raw("</td><td class=\"time\">").Text(Html.Time(DateTimeOffset.FromUnixTimeMilliseconds(child.CreatedAt))).Raw("</td></tr>");
            }

            html.Raw("</tbody></table>");
        }

        html.Raw("</section>");
        RecordedValues(html, "Events", "Key", events, "It set no events.", showCount: false, showAt: false);
        RecordedValues(html, "Messages", "Topic", messages, "No messages were sent to it.", showCount: false, showAt: true);
        RecordedValues(html, "Streams", "Key", streams, "It wrote no streams.", showCount: true, showAt: false);
        return status.WorkflowId;
    }

    private string WorkflowUrl(HttpContext context, string workflowId) => Url(context, "/workflow", Html.Query(("id", workflowId)));

    private void Value(Html html, string title, string? stored)
    {
        html.Raw("<section class=\"card value\"><h2>").Text(title).Raw("</h2>");
        if (options.HideValues)
        {
            html.Raw("<p class=\"muted\">Hidden by the dashboard's settings.</p>");
        }
        else
        {
            html.Raw("<pre>").Text(Html.Pretty(stored)).Raw("</pre>");
        }

        html.Raw("</section>");
    }

    private void RenderSteps(HttpContext context, Html html, WorkflowStatus status, IReadOnlyList<StepInfo> steps, bool canAct, DateTimeOffset now)
    {
        html.Raw("<section class=\"card\"><h2>Steps</h2>");
        if (steps.Count == 0)
        {
            html.Raw("<p class=\"muted\">No steps recorded.</p></section>");
            return;
        }

        // The timeline spans from the workflow's creation (or its first step) to its end (or its last step, or now).
        var start = steps.Where(s => s.StartedAt is not null).Select(s => s.StartedAt!.Value).DefaultIfEmpty(status.CreatedAt).Min();
        if (status.CreatedAt < start)
        {
            start = status.CreatedAt;
        }

        var finish = status.CompletedAt ?? steps.Select(s => s.CompletedAt ?? now).DefaultIfEmpty(now).Max();
        var span = Math.Max(1.0, (finish - start).TotalMilliseconds);
        html.Raw("<table class=\"grid steps\"><thead><tr><th>#</th><th>Step</th><th class=\"timeline-head\">Timeline</th><th>Duration</th><th>Output or error</th>");
        if (canAct)
        {
            html.Raw("<th></th>");
        }

        html.Raw("</tr></thead><tbody>");
        foreach (var step in steps)
        {
            html.Raw("<tr><td class=\"num\">").Text(step.FunctionId.ToString(CultureInfo.InvariantCulture)).Raw("</td><td>").Text(step.Name);
            if (step.ChildWorkflowId is { } child)
            {
                html.Raw("<div class=\"child\">→ ").Link(WorkflowUrl(context, child), child).Raw("</div>");
            }

            html.Raw("</td><td class=\"timeline\">");
            if (step.StartedAt is { } started)
            {
                var left = (started - start).TotalMilliseconds / span * 100;
                var width = Math.Max(0.6, ((step.CompletedAt ?? now) - started).TotalMilliseconds / span * 100);
                html.Raw("<div class=\"track\"><div").Attr("class", step.Error is null ? "bar" : "bar failed")
                    .Attr("data-left", left.ToString("0.##", CultureInfo.InvariantCulture)).Attr("data-width", Math.Min(width, 100 - left).ToString("0.##", CultureInfo.InvariantCulture))
                    .Raw("></div></div>");
            }

            html.Raw("</td><td class=\"num\">").Text(step.StartedAt is { } s ? Html.Duration((step.CompletedAt ?? now) - s) : "—").Raw("</td><td class=\"out\">");
            if (step.Error is { } error)
            {
                html.Raw("<span class=\"error-name\">").Text(error.Name).Raw(": ").Text(error.Message).Raw("</span>");
            }
            else if (options.HideValues)
            {
                html.Raw("<span class=\"muted\">hidden</span>");
            }
            else
            {
                html.Raw("<code>").Text(Html.Pretty(step.RawOutput, 300)).Raw("</code>");
            }

            html.Raw("</td>");
            if (canAct)
            {
                html.Raw("<td>").Link(Url(context, "/confirm", Html.Query(("action", "fork"), ("id", status.WorkflowId), ("step", step.FunctionId.ToString(CultureInfo.InvariantCulture)))), "Fork here", "button small secondary").Raw("</td>");
            }

            html.Raw("</tr>");
        }

        html.Raw("</tbody></table></section>");
    }

    private void RecordedValues(Html html, string title, string keyLabel, List<RecordedValue> values, string none, bool showCount, bool showAt)
    {
        html.Raw("<section class=\"card\"><h2>").Text(title).Raw("</h2>");
        if (values.Count == 0)
        {
            html.Raw("<p class=\"muted\">").Text(none).Raw("</p></section>");
            return;
        }

        html.Raw("<table class=\"grid\"><thead><tr><th>").Text(keyLabel).Raw("</th>");
        html.Raw(showAt ? "<th>Sent (UTC)</th><th>Consumed</th>" : string.Empty).Raw(showCount ? "<th>Values</th><th>Last value</th>" : "<th>Value</th>").Raw("</tr></thead><tbody>");
        foreach (var value in values)
        {
            html.Raw("<tr><td>").Text(value.Key).Raw("</td>");
            if (showAt)
            {
                html.Raw("<td class=\"time\">").Text(value.At is { } at ? Html.Time(DateTimeOffset.FromUnixTimeMilliseconds(at)) : "—").Raw("</td><td>").Text(value.Consumed ? "yes" : "no").Raw("</td>");
            }

            if (showCount)
            {
                html.Raw("<td class=\"num\">").Text(value.Count.ToString(CultureInfo.InvariantCulture)).Raw("</td>");
            }

            html.Raw("<td class=\"out\">");
            if (options.HideValues)
            {
                html.Raw("<span class=\"muted\">hidden</span>");
            }
            else
            {
                html.Raw("<code>").Text(Html.Pretty(value.Value, 500)).Raw("</code>");
            }

            html.Raw("</td></tr>");
        }

        html.Raw("</tbody></table></section>");
    }
}
