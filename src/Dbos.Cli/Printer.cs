using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Dbos.Cli;

/// <summary>Prints results as readable tables, or as JSON with <c>--json</c> (stored values embedded as JSON where they are).</summary>
internal sealed class Printer(TextWriter output, bool json)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(output),
        Ansi = output == Console.Out && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
        ColorSystem = ColorSystemSupport.NoColors,
    });

    public bool IsJson => json;

    /// <summary>A message (or, with <c>--json</c>, the given object).</summary>
    public Task LineAsync(string message, object? asJson = null) =>
        json ? WriteJsonAsync(JsonSerializer.SerializeToNode(asJson ?? new { message })!) : output.WriteLineAsync(message);

    private Task WriteJsonAsync(JsonNode node) => output.WriteLineAsync(node.ToJsonString(Indented));

    private Table NewTable(params string[] columns)
    {
        if (!Console.IsOutputRedirected && output == Console.Out)
        {
            console.Profile.Width = Math.Max(Console.WindowWidth, 80);
        }
        else
        {
            console.Profile.Width = 240;
        }

        var table = new Table().Border(TableBorder.Simple);
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(column).NoWrap());
        }

        return table;
    }

    private void Render(Table table, int rows, string empty)
    {
        if (rows == 0)
        {
            console.WriteLine(empty);
            return;
        }

        console.Write(table);
    }

    /// <summary>Stored text as JSON when it is JSON, else as a string.</summary>
    private static JsonNode? Stored(string? text)
    {
        if (text is null)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return JsonValue.Create(text);
        }
    }

    private static JsonObject ToJson(WorkflowStatus w) => new()
    {
        ["workflowId"] = w.WorkflowId,
        ["status"] = w.StatusText,
        ["name"] = w.Name,
        ["queueName"] = w.QueueName,
        ["executorId"] = w.ExecutorId,
        ["applicationVersion"] = w.ApplicationVersion,
        ["applicationName"] = w.ApplicationName,
        ["createdAt"] = w.CreatedAt,
        ["updatedAt"] = w.UpdatedAt,
        ["dequeuedAt"] = w.DequeuedAt,
        ["completedAt"] = w.CompletedAt,
        ["recoveryAttempts"] = w.RecoveryAttempts,
        ["parentWorkflowId"] = w.ParentWorkflowId,
        ["forkedFrom"] = w.ForkedFrom,
        ["priority"] = w.Priority,
        ["queuePartitionKey"] = w.QueuePartitionKey,
        ["deduplicationId"] = w.DeduplicationId,
        ["serialization"] = w.Serialization,
        ["authenticatedUser"] = w.AuthenticatedUser,
        ["authenticatedRoles"] = new JsonArray([.. w.AuthenticatedRoles.Select(r => JsonValue.Create(r))]),
        ["attributes"] = w.Attributes?.DeepClone(),
        ["input"] = Stored(w.RawInput),
        ["output"] = Stored(w.RawOutput),
        ["error"] = Stored(w.RawError),
    };

    public async Task WorkflowsAsync(IReadOnlyList<WorkflowStatus> workflows)
    {
        if (json)
        {
            await WriteJsonAsync(new JsonArray([.. workflows.Select(ToJson)])).ConfigureAwait(false);
            return;
        }

        var table = NewTable("Workflow ID", "Name", "Status", "Queue", "Created", "Executor", "Version");
        foreach (var w in workflows)
        {
            table.AddRow(Cell(w.WorkflowId), Cell(w.Name), Cell(w.StatusText), Cell(w.QueueName), Cell(CliApp.Time(w.CreatedAt)), Cell(w.ExecutorId), Cell(w.ApplicationVersion));
        }

        Render(table, workflows.Count, "No workflows.");
    }

    /// <summary>Workflow counts: one row per group, with a column per grouped field (or one total).</summary>
    public async Task CountsAsync(IReadOnlyList<WorkflowCount> counts, WorkflowGrouping groupBy)
    {
        var columns = new List<(string Title, string Json, Func<WorkflowCount, string?> Value)>();
        void Column(WorkflowGrouping flag, string title, string jsonName, Func<WorkflowCount, string?> value)
        {
            if (groupBy.HasFlag(flag))
            {
                columns.Add((title, jsonName, value));
            }
        }

        Column(WorkflowGrouping.Status, "Status", "status", c => c.StatusText);
        Column(WorkflowGrouping.Name, "Name", "name", c => c.Name);
        Column(WorkflowGrouping.QueueName, "Queue", "queueName", c => c.QueueName);
        Column(WorkflowGrouping.ApplicationVersion, "Version", "applicationVersion", c => c.ApplicationVersion);
        Column(WorkflowGrouping.ExecutorId, "Executor", "executorId", c => c.ExecutorId);
        if (json)
        {
            await WriteJsonAsync(new JsonArray([.. counts.Select(c =>
            {
                var item = new JsonObject();
                foreach (var column in columns)
                {
                    item[column.Json] = column.Value(c);
                }

                item["count"] = c.Count;
                return (JsonNode)item;
            })])).ConfigureAwait(false);
            return;
        }

        var table = NewTable([.. columns.Select(c => c.Title), "Count"]);
        foreach (var count in counts)
        {
            table.AddRow([.. columns.Select(c => Cell(c.Value(count))), Cell(count.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        }

        Render(table, counts.Count, "No workflows.");
    }

    public async Task WorkflowAsync(WorkflowStatus w)
    {
        if (json)
        {
            await WriteJsonAsync(ToJson(w)).ConfigureAwait(false);
            return;
        }

        var table = NewTable("Field", "Value");
        void Row(string field, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                table.AddRow(Cell(field), Cell(value));
            }
        }

        Row("Workflow ID", w.WorkflowId);
        Row("Name", w.Name);
        Row("Status", w.StatusText);
        Row("Queue", w.QueueName);
        Row("Executor", w.ExecutorId);
        Row("Application", $"{w.ApplicationName} {w.ApplicationVersion}".Trim());
        Row("Created", CliApp.Time(w.CreatedAt));
        Row("Completed", CliApp.Time(w.CompletedAt));
        Row("Recovery attempts", w.RecoveryAttempts.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Row("Parent", w.ParentWorkflowId);
        Row("Forked from", w.ForkedFrom);
        Row("User", w.AuthenticatedUser is null ? null : $"{w.AuthenticatedUser} {(w.AuthenticatedRoles.Count > 0 ? "(" + string.Join(", ", w.AuthenticatedRoles) + ")" : string.Empty)}".Trim());
        Row("Attributes", w.Attributes?.ToJsonString());
        Row("Input", w.RawInput);
        Row("Output", w.RawOutput);
        Row("Error", w.Error is { } e ? $"{e.Name}: {e.Message}" : null);
        Render(table, 1, string.Empty);
    }

    public async Task StepsAsync(IReadOnlyList<StepInfo> steps)
    {
        if (json)
        {
            await WriteJsonAsync(new JsonArray([.. steps.Select(s => (JsonNode)new JsonObject
            {
                ["functionId"] = s.FunctionId,
                ["name"] = s.Name,
                ["output"] = Stored(s.RawOutput),
                ["error"] = Stored(s.RawError),
                ["childWorkflowId"] = s.ChildWorkflowId,
                ["startedAt"] = s.StartedAt,
                ["completedAt"] = s.CompletedAt,
            })])).ConfigureAwait(false);
            return;
        }

        var table = NewTable("ID", "Step", "Output", "Error", "Child workflow");
        foreach (var s in steps)
        {
            table.AddRow(Cell(s.FunctionId.ToString(System.Globalization.CultureInfo.InvariantCulture)), Cell(s.Name), Cell(Shorten(s.RawOutput)), Cell(s.Error is { } e ? $"{e.Name}: {e.Message}" : null), Cell(s.ChildWorkflowId));
        }

        Render(table, steps.Count, "No steps recorded.");
    }

    public async Task SchedulesAsync(IReadOnlyList<WorkflowSchedule> schedules)
    {
        if (json)
        {
            await WriteJsonAsync(new JsonArray([.. schedules.Select(s => (JsonNode)new JsonObject
            {
                ["name"] = s.Name,
                ["workflowName"] = s.WorkflowName,
                ["cron"] = s.Cron,
                ["status"] = StatusOf(s),
                ["timeZone"] = s.TimeZone,
                ["queueName"] = s.QueueName,
                ["lastFiredAt"] = s.LastFiredAt,
                ["automaticBackfill"] = s.AutomaticBackfill,
                ["applicationName"] = s.ApplicationName,
            })])).ConfigureAwait(false);
            return;
        }

        var table = NewTable("Schedule", "Workflow", "Cron", "Status", "Last fired", "Queue");
        foreach (var s in schedules)
        {
            table.AddRow(Cell(s.Name), Cell(s.WorkflowName), Cell(s.Cron), Cell(StatusOf(s)), Cell(CliApp.Time(s.LastFiredAt)), Cell(s.QueueName));
        }

        Render(table, schedules.Count, "No schedules.");
    }

    public async Task QueuesAsync(IReadOnlyList<Queue> queues)
    {
        static string Rate(RateLimit? r) => r is null ? "" : $"{r.Limit}/{r.Period.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s";
        static string Number(int? n) => n?.ToString(CultureInfo.InvariantCulture) ?? "";
        if (json)
        {
            await WriteJsonAsync(new JsonArray([.. queues.Select(q => (JsonNode)new JsonObject
            {
                ["name"] = q.Name,
                ["concurrency"] = q.Options.Concurrency,
                ["workerConcurrency"] = q.Options.WorkerConcurrency,
                ["rateLimitMax"] = q.Options.RateLimit?.Limit,
                ["rateLimitPeriodSec"] = q.Options.RateLimit?.Period.TotalSeconds,
                ["priorityEnabled"] = q.Options.PriorityEnabled,
                ["partitioned"] = q.Options.Partitioned,
                ["partitionConcurrency"] = q.Options.PartitionConcurrency,
                ["partitionWorkerConcurrency"] = q.Options.PartitionWorkerConcurrency,
                ["pollingIntervalSec"] = q.Options.PollingInterval.TotalSeconds,
            })])).ConfigureAwait(false);
            return;
        }

        var table = NewTable("Queue", "Concurrency", "Worker concurrency", "Rate limit", "Priority", "Partitioned");
        foreach (var q in queues)
        {
            table.AddRow(Cell(q.Name), Cell(Number(q.Options.Concurrency)), Cell(Number(q.Options.WorkerConcurrency)), Cell(Rate(q.Options.RateLimit)),
                Cell(q.Options.PriorityEnabled ? "yes" : ""), Cell(q.Options.Partitioned ? "yes" : ""));
        }

        Render(table, queues.Count, "No queues registered.");
    }

    public async Task VersionsAsync(IReadOnlyList<ApplicationVersionInfo> versions)
    {
        if (json)
        {
            await WriteJsonAsync(new JsonArray([.. versions.Select(v => (JsonNode)new JsonObject
            {
                ["name"] = v.Name,
                ["applicationName"] = v.ApplicationName,
                ["timestamp"] = v.Timestamp,
                ["createdAt"] = v.CreatedAt,
            })])).ConfigureAwait(false);
            return;
        }

        var table = NewTable("Version", "Application", "Latest since", "Created");
        foreach (var v in versions)
        {
            table.AddRow(Cell(v.Name), Cell(v.ApplicationName), Cell(CliApp.Time(v.Timestamp)), Cell(CliApp.Time(v.CreatedAt)));
        }

        Render(table, versions.Count, "No application versions.");
    }

    public async Task ExecutorsAsync(IReadOnlyList<ExecutorInfo> executors)
    {
        if (json)
        {
            await WriteJsonAsync(new JsonArray([.. executors.Select(e => (JsonNode)new JsonObject
            {
                ["executorId"] = e.ExecutorId,
                ["state"] = e.State.ToString().ToUpperInvariant(),
                ["applicationVersion"] = e.ApplicationVersion,
                ["pendingWorkflows"] = e.PendingWorkflows,
                ["pendingVersions"] = new JsonArray([.. e.PendingVersions.Select(v => (JsonNode?)v)]),
            })])).ConfigureAwait(false);
            return;
        }

        var table = NewTable("Executor", "State", "Version", "Pending", "Pending versions");
        foreach (var e in executors)
        {
            table.AddRow(Cell(e.ExecutorId), Cell(e.State.ToString().ToUpperInvariant()), Cell(e.ApplicationVersion), Cell(e.PendingWorkflows.ToString(System.Globalization.CultureInfo.InvariantCulture)), Cell(string.Join(", ", e.PendingVersions)));
        }

        Render(table, executors.Count, "No executors.");
    }

    private static string StatusOf(WorkflowSchedule schedule) => schedule.Status == ScheduleStatus.Paused ? "PAUSED" : "ACTIVE";

    private static string? Shorten(string? text) => text is { Length: > 60 } ? text[..57] + "..." : text;

    private static Markup Cell(string? text) => new(Markup.Escape(text ?? string.Empty));
}
