using System.CommandLine;
using System.CommandLine.Help;
using System.Data.Common;
using System.Globalization;
using Dbos.Internal;

namespace Dbos.Cli;

/// <summary>
/// The <c>dbos</c> command line: every command opens a <see cref="DbosClient"/> on the system database named by
/// <c>--sys-db-url</c> or <c>DBOS_SYSTEM_DATABASE_URL</c>, does one thing, and prints a table (or JSON with <c>--json</c>).
/// Errors are one line on standard error and a non-zero exit code.
/// </summary>
internal static partial class CliApp
{
    private static readonly Option<string?> Url = new("--sys-db-url", "-s")
    {
        Description = "The system database URL (default: DBOS_SYSTEM_DATABASE_URL).",
        Recursive = true,
    };

    private static readonly Option<string> Schema = new("--schema")
    {
        Description = "The Postgres schema of the system tables.",
        DefaultValueFactory = _ => "dbos",
        Recursive = true,
    };

    private static readonly Option<bool> Json = new("--json")
    {
        Description = "Print JSON instead of a table.",
        Recursive = true,
    };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter errors, TextReader input)
    {
        // A RootCommand is named after the executable (Dbos.Cli); a plain Command named "dbos", given the same --help and --version
        // options a RootCommand has, makes help and errors say "dbos".
        var root = new Command("dbos", "The DBOS command line for .NET: manage the workflows, queues and schedules of a DBOS system database.");
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());
        root.Options.Add(Url);
        root.Options.Add(Schema);
        root.Options.Add(Json);
        root.Subcommands.Add(MigrateCommand(output, errors));
        root.Subcommands.Add(ResetCommand(output, errors, input));
        root.Subcommands.Add(WorkflowCommand(output, errors));
        root.Subcommands.Add(QueueCommand(output, errors));
        root.Subcommands.Add(ScheduleCommand(output, errors));
        root.Subcommands.Add(VersionCommand(output, errors));
        root.Subcommands.Add(ExecutorCommand(output, errors));
        root.Subcommands.Add(DashboardCommand(output, errors));
        var parsed = root.Parse(args);
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = errors }).ConfigureAwait(false);
    }

    /// <summary>Runs a command against a client, turning every expected failure into one line and exit code 1.</summary>
    private static Command Handle(
        Command command, TextWriter output, TextWriter errors, Func<ParseResult, DbosClient, Printer, CancellationToken, Task> action, Option<string?>? applicationName = null, Option<string?>? url = null)
    {
        command.SetAction(async (parsed, cancellationToken) =>
        {
            try
            {
                var systemDatabaseUrl = (url is null ? null : parsed.GetValue(url)) ?? parsed.GetValue(Url) ?? Environment.GetEnvironmentVariable(DbosConfig.SystemDatabaseUrlVariable);
                if (string.IsNullOrWhiteSpace(systemDatabaseUrl))
                {
                    throw new DbosConfigurationException("No system database: pass --sys-db-url or set DBOS_SYSTEM_DATABASE_URL.");
                }

                var client = DbosClient.Create(new DbosClientOptions
                {
                    SystemDatabaseUrl = systemDatabaseUrl,
                    SystemDatabaseSchema = parsed.GetValue(Schema)!,
                    ApplicationName = applicationName is null ? null : parsed.GetValue(applicationName),
                });
                await using (client.ConfigureAwait(false))
                {
                    await action(parsed, client, new Printer(output, parsed.GetValue(Json)), cancellationToken).ConfigureAwait(false);
                }

                return 0;
            }
            catch (Exception ex) when (ex is DbosException or ArgumentException or InvalidOperationException or DbException or FormatException)
            {
                await errors.WriteLineAsync($"dbos: {Describe(ex)}").ConfigureAwait(false);
                return 1;
            }
        });
        return command;
    }

    private static string Describe(Exception ex) => ex switch
    {
        Npgsql.PostgresException { SqlState: "3F000" or "42P01" } => NotMigrated,
        Microsoft.Data.Sqlite.SqliteException sqlite when sqlite.Message.Contains("no such table", StringComparison.Ordinal) => NotMigrated,
        Npgsql.PostgresException pg => DatabaseUrl.MaskRaw(pg.MessageText),
        _ => DatabaseUrl.MaskRaw(ex.Message),
    };

    private const string NotMigrated = "the system database has no DBOS tables yet; run `dbos migrate` first.";

    private static Command MigrateCommand(TextWriter output, TextWriter errors) =>
        Handle(new Command("migrate", "Create the system database if needed and bring its schema to the current version."), output, errors, async (_, client, printer, ct) =>
        {
            await client.MigrateAsync(ct).ConfigureAwait(false);
            await printer.LineAsync($"The system database {client.SystemDatabase} is migrated.").ConfigureAwait(false);
        });

    private static Command ResetCommand(TextWriter output, TextWriter errors, TextReader input)
    {
        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation." };
        var command = new Command("reset", "Delete the system tables and every workflow recorded in them.") { yes };
        return Handle(command, output, errors, async (parsed, client, printer, ct) =>
        {
            if (!parsed.GetValue(yes))
            {
                await output.WriteAsync($"This deletes every workflow recorded in {client.SystemDatabase}. Type 'yes' to continue: ").ConfigureAwait(false);
                await output.FlushAsync(ct).ConfigureAwait(false);
                var answer = await input.ReadLineAsync(ct).ConfigureAwait(false);
                if (!string.Equals(answer?.Trim(), "yes", StringComparison.OrdinalIgnoreCase))
                {
                    throw new InvalidOperationException("reset cancelled: nothing was deleted.");
                }
            }

            await client.ResetAsync(ct).ConfigureAwait(false);
            await printer.LineAsync($"The system database {client.SystemDatabase} is reset.").ConfigureAwait(false);
        });
    }

    private static Command WorkflowCommand(TextWriter output, TextWriter errors)
    {
        var workflow = new Command("workflow", "Inspect and manage workflows.");
        workflow.Aliases.Add("workflows");

        // Filters that take several values accept the option repeated or values separated by commas.
        var name = new Option<string[]>("--name", "-n") { Description = "Only workflows registered under this name (or any of several)." };
        var status = new Option<string[]>("--status", "-S") { Description = "Only workflows in this status (PENDING, SUCCESS, ERROR, ENQUEUED, DELAYED, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED), or any of several." };
        var queue = new Option<string[]>("--queue", "-q") { Description = "Only workflows on this queue (or any of several)." };
        var user = new Option<string[]>("--user", "-u") { Description = "Only workflows run by this user (or any of several)." };
        var version = new Option<string[]>("--application-version", "-v") { Description = "Only workflows of this application version (or any of several)." };
        var executor = new Option<string[]>("--executor") { Description = "Only workflows last run by this executor (or any of several)." };
        var forkedFrom = new Option<string?>("--forked-from") { Description = "Only forks of this workflow." };
        var hasParent = new Option<bool?>("--has-parent") { Description = "true: only child workflows; false: only workflows started from outside a workflow." };
        var attribute = new Option<string[]>("--attribute") { Description = "Only workflows whose attributes hold KEY=VALUE (VALUE read as JSON when it is a JSON number, boolean or null, else as text); repeatable." };
        var application = new Option<string?>("--application-name", "-a") { Description = "Only workflows of this application (and unclaimed ones)." };
        var start = new Option<DateTimeOffset?>("--start-time", "-t") { Description = "Only workflows created at or after this time (ISO 8601)." };
        var end = new Option<DateTimeOffset?>("--end-time", "-e") { Description = "Only workflows created at or before this time (ISO 8601)." };
        var limit = new Option<int>("--limit", "-l") { Description = "At most this many workflows.", DefaultValueFactory = _ => 10 };
        var offset = new Option<int?>("--offset", "-o") { Description = "Skip this many workflows first." };
        var newest = new Option<bool>("--sort-desc", "-d") { Description = "Newest first." };
        var withData = new Option<bool>("--with-data") { Description = "Include inputs and outputs." };
        var count = new Option<bool>("--count") { Description = "Count the matching workflows instead of listing them (all of them: --limit and --offset do not apply)." };
        var groupBy = new Option<string[]>("--group-by") { Description = "With --count: count per status, name, queue, version or executor (repeatable, or comma-separated)." };
        var list = new Command("list", "List workflows, oldest first.")
        {
            name, status, queue, user, version, executor, forkedFrom, hasParent, attribute, application, start, end, limit, offset, newest, withData, count, groupBy,
        };
        workflow.Subcommands.Add(Handle(list, output, errors, async (p, client, printer, ct) =>
        {
            var options = new ListWorkflowsOptions
            {
                Names = Values(p.GetValue(name)),
                Status = Values(p.GetValue(status))?.Select(ParseStatus).ToArray(),
                QueueNames = Values(p.GetValue(queue)),
                AuthenticatedUsers = Values(p.GetValue(user)),
                ApplicationVersions = Values(p.GetValue(version)),
                ExecutorIds = Values(p.GetValue(executor)),
                ForkedFrom = p.GetValue(forkedFrom),
                HasParent = p.GetValue(hasParent),
                Attributes = Attributes(p.GetValue(attribute)),
                ApplicationName = p.GetValue(application),
                StartTime = p.GetValue(start),
                EndTime = p.GetValue(end),
                Limit = p.GetValue(limit),
                Offset = p.GetValue(offset),
                SortDescending = p.GetValue(newest),
                LoadInput = p.GetValue(withData) || printer.IsJson,
                LoadOutput = p.GetValue(withData) || printer.IsJson,
            };
            var grouping = Values(p.GetValue(groupBy))?.Aggregate(WorkflowGrouping.None, (all, g) => all | ParseGrouping(g)) ?? WorkflowGrouping.None;
            if (p.GetValue(count))
            {
                var counts = await client.CountWorkflowsAsync(options, grouping, ct).ConfigureAwait(false);
                await printer.CountsAsync(counts, grouping).ConfigureAwait(false);
                return;
            }

            if (grouping != WorkflowGrouping.None)
            {
                throw new ArgumentException("--group-by applies to --count.");
            }

            var found = await client.ListWorkflowsAsync(options, ct).ConfigureAwait(false);
            await printer.WorkflowsAsync(found).ConfigureAwait(false);
        }));

        var id = new Argument<string>("workflow-id") { Description = "The workflow's ID." };
        var get = new Command("get", "Show one workflow.") { id };
        workflow.Subcommands.Add(Handle(get, output, errors, async (p, client, printer, ct) =>
        {
            var found = await client.GetWorkflowStatusAsync(p.GetValue(id)!, ct).ConfigureAwait(false)
                ?? throw new WorkflowNotFoundException($"No workflow with ID '{p.GetValue(id)}' exists.");
            await printer.WorkflowAsync(found).ConfigureAwait(false);
        }));

        var steps = new Command("steps", "List the recorded steps of a workflow.") { id };
        workflow.Subcommands.Add(Handle(steps, output, errors, async (p, client, printer, ct) =>
            await printer.StepsAsync(await client.ListWorkflowStepsAsync(p.GetValue(id)!, ct).ConfigureAwait(false)).ConfigureAwait(false)));

        var children = new Option<bool>("--children") { Description = "Also act on the workflows it started, recursively." };
        var cancel = new Command("cancel", "Cancel a workflow: it stops at its next step and is not recovered until resumed.") { id, children };
        workflow.Subcommands.Add(Handle(cancel, output, errors, async (p, client, printer, ct) =>
        {
            var cancelled = await client.CancelWorkflowsAsync([p.GetValue(id)!], p.GetValue(children), ct).ConfigureAwait(false);
            await printer.LineAsync(cancelled.Count == 0 ? $"Workflow {p.GetValue(id)} had already finished; nothing to cancel." : $"Cancelled {string.Join(", ", cancelled)}.").ConfigureAwait(false);
        }));

        var resume = new Command("resume", "Resume a workflow from its last recorded step.") { id };
        workflow.Subcommands.Add(Handle(resume, output, errors, async (p, client, printer, ct) =>
        {
            var resumed = await client.ResumeWorkflowsAsync([p.GetValue(id)!], ct).ConfigureAwait(false);
            await printer.LineAsync(resumed.Count == 0 ? $"Workflow {p.GetValue(id)} had already finished; nothing to resume." : $"Resumed {p.GetValue(id)}: it is enqueued to continue from its last recorded step.").ConfigureAwait(false);
        }));

        var step = new Option<int>("--step") { Description = "Re-run from this step (function ID); the steps before it are reused.", DefaultValueFactory = _ => 0 };
        var newId = new Option<string?>("--forked-workflow-id", "--new-id") { Description = "The new workflow's ID (default: a new GUID)." };
        var forkVersion = new Option<string?>("--application-version", "-v") { Description = "Run the fork under this application version." };
        var fork = new Command("fork", "Start a copy of a workflow that reuses its steps before --step.") { id, step, newId, forkVersion };
        workflow.Subcommands.Add(Handle(fork, output, errors, async (p, client, printer, ct) =>
        {
            var handle = await client.ForkWorkflowAsync(p.GetValue(id)!, p.GetValue(step), new ForkOptions { NewWorkflowId = p.GetValue(newId), ApplicationVersion = p.GetValue(forkVersion) }, ct).ConfigureAwait(false);
            await printer.LineAsync($"Forked {p.GetValue(id)} from step {p.GetValue(step)} as {handle.WorkflowId}.", new { workflowId = handle.WorkflowId }).ConfigureAwait(false);
        }));

        var delete = new Command("delete", "Delete a workflow and everything recorded for it.") { id, children };
        workflow.Subcommands.Add(Handle(delete, output, errors, async (p, client, printer, ct) =>
        {
            var deleted = await client.DeleteWorkflowsAsync([p.GetValue(id)!], p.GetValue(children), ct).ConfigureAwait(false);
            await printer.LineAsync($"Deleted {string.Join(", ", deleted)}.").ConfigureAwait(false);
        }));

        AddRetentionCommands(workflow, output, errors);
        return workflow;
    }

    /// <summary><c>workflow gc</c> and <c>workflow global-timeout</c>, with the names DBOS uses for their settings (a cutoff, a rows threshold).</summary>
    private static void AddRetentionCommands(Command workflow, TextWriter output, TextWriter errors)
    {
        var cutoff = new Option<DateTimeOffset?>("--cutoff", "-c") { Description = "Remove finished workflows created before this time (ISO 8601)." };
        var rows = new Option<int?>("--rows-threshold", "-r") { Description = "Keep the newest this many workflows; remove the finished ones older than those." };
        var batch = new Option<int>("--batch-size", "-b") { Description = "Remove at most this many workflows per transaction.", DefaultValueFactory = _ => 1000 };
        var application = new Option<string?>("--application-name", "-a") { Description = "Only workflows of this application (and unclaimed ones). Default: every application's." };
        var gc = new Command(
            "gc",
            "Remove old finished workflows and everything recorded for them, in batches. Unfinished workflows (and finished children of unfinished parents) stay.")
        {
            cutoff, rows, batch, application,
        };
        gc.Aliases.Add("garbage-collect");
        workflow.Subcommands.Add(Handle(
            gc,
            output,
            errors,
            async (p, client, printer, ct) =>
            {
                if (p.GetValue(cutoff) is null && p.GetValue(rows) is null)
                {
                    throw new ArgumentException("give --cutoff, --rows-threshold or both; nothing was removed.");
                }

                var removed = await client.GarbageCollectAsync(
                    new GarbageCollectOptions { CreatedBefore = p.GetValue(cutoff), KeepNewest = p.GetValue(rows), BatchSize = p.GetValue(batch) }, ct).ConfigureAwait(false);
                await printer.LineAsync($"Removed {removed} finished workflow(s).", new { removed }).ConfigureAwait(false);
            },
            application));

        var timeoutCutoff = new Option<DateTimeOffset>("--cutoff", "-c") { Description = "Cancel unfinished workflows created before this time (ISO 8601).", Required = true };
        var timeoutApplication = new Option<string?>("--application-name", "-a") { Description = "Only workflows of this application (and unclaimed ones). Default: every application's." };
        var timeout = new Command("global-timeout", "Cancel every unfinished workflow (pending, enqueued, delayed) created before a time, in whichever process runs it.")
        {
            timeoutCutoff, timeoutApplication,
        };
        workflow.Subcommands.Add(Handle(
            timeout,
            output,
            errors,
            async (p, client, printer, ct) =>
            {
                var cancelled = await client.GlobalTimeoutAsync(p.GetValue(timeoutCutoff), ct).ConfigureAwait(false);
                await printer.LineAsync(
                    cancelled.Count == 0 ? "No unfinished workflow was created before the cutoff." : $"Cancelled {cancelled.Count} workflow(s): {string.Join(", ", cancelled)}.",
                    new { cancelled }).ConfigureAwait(false);
            },
            timeoutApplication));
    }

    private static Command QueueCommand(TextWriter output, TextWriter errors)
    {
        var queue = new Command("queue", "Inspect queued workflows, and register, change, list and delete queues.");
        queue.Aliases.Add("queues");
        var name = new Option<string?>("--queue", "-q") { Description = "Only this queue." };
        var status = new Option<string?>("--status", "-S") { Description = "Only workflows in this status (ENQUEUED, DELAYED, PENDING)." };
        var partition = new Option<string?>("--partition") { Description = "Only this queue partition." };
        var limit = new Option<int>("--limit", "-l") { Description = "At most this many workflows.", DefaultValueFactory = _ => 50 };
        var list = new Command("list", "List workflows waiting on or running from a queue, oldest first.") { name, status, partition, limit };
        queue.Subcommands.Add(Handle(list, output, errors, async (p, client, printer, ct) =>
        {
            var found = await client.ListQueuedWorkflowsAsync(
                new ListWorkflowsOptions
                {
                    QueueName = p.GetValue(name),
                    QueuePartitionKey = p.GetValue(partition),
                    Status = p.GetValue(status) is { } s ? [ParseStatus(s)] : null,
                    Limit = p.GetValue(limit),
                    LoadInput = printer.IsJson,
                },
                ct).ConfigureAwait(false);
            await printer.WorkflowsAsync(found).ConfigureAwait(false);
        }));

        var queueName = new Argument<string>("name") { Description = "The queue's name." };
        var delete = new Command("delete", "Delete a queue from the queues table: processes stop serving it; its waiting workflows stay ENQUEUED until it is registered again.") { queueName };
        queue.Subcommands.Add(Handle(delete, output, errors, async (p, client, printer, ct) =>
        {
            var name = p.GetValue(queueName)!;
            if (!await client.DeleteQueueAsync(name, ct).ConfigureAwait(false))
            {
                throw new InvalidOperationException($"No queue named '{name}' is registered in the queues table.");
            }

            await printer.LineAsync($"Deleted queue {name}.", new { queue = name }).ConfigureAwait(false);
        }));

        var definitions = new Command("definitions", "List the queues registered in the queues table (of the application, and unowned ones), with their limits.");
        queue.Subcommands.Add(Handle(definitions, output, errors, async (_, client, printer, ct) =>
            await printer.QueuesAsync(await client.ListQueuesAsync(ct).ConfigureAwait(false)).ConfigureAwait(false)));

        var register = new QueueLimitOptions(new Command("register", "Register a queue in the queues table: every process of the application serves it within a second.") { queueName });
        queue.Subcommands.Add(Handle(register.Command, output, errors, async (p, client, printer, ct) =>
        {
            var registered = await client.RegisterQueueAsync(p.GetValue(queueName)!, register.Apply(p, new QueueOptions()), ct).ConfigureAwait(false);
            await printer.QueuesAsync([registered]).ConfigureAwait(false);
        }));

        var update = new QueueLimitOptions(new Command("update", "Change a queue's limits in the queues table (only the options given); every process serving it applies them within seconds.") { queueName });
        queue.Subcommands.Add(Handle(update.Command, output, errors, async (p, client, printer, ct) =>
        {
            var name = p.GetValue(queueName)!;
            var current = (await client.ListQueuesAsync(ct).ConfigureAwait(false)).FirstOrDefault(q => q.Name == name)
                ?? throw new InvalidOperationException($"No queue named '{name}' is registered in the queues table.");
            var options = update.Apply(p, current.Options);
            await client.UpdateQueueAsync(name, options, ct).ConfigureAwait(false);
            await printer.QueuesAsync((await client.ListQueuesAsync(ct).ConfigureAwait(false)).Where(q => q.Name == name).ToList()).ConfigureAwait(false);
        }));
        return queue;
    }

    /// <summary>The limits <c>queue register</c> and <c>queue update</c> take, and how they change a queue's options.</summary>
    private sealed class QueueLimitOptions
    {
        private readonly Option<int?> concurrency = new("--concurrency") { Description = "How many of its workflows may run at once, across every process." };
        private readonly Option<int?> workerConcurrency = new("--worker-concurrency") { Description = "How many of its workflows may run at once in each process." };
        private readonly Option<int?> limit = new("--limit") { Description = "Rate limit: how many of its workflows may start per --period." };
        private readonly Option<double?> period = new("--period") { Description = "Rate limit period, in seconds (with --limit)." };
        private readonly Option<bool> priorityEnabled = new("--priority-enabled") { Description = "The queue honours workflow priorities." };
        private readonly Option<bool> partitioned = new("--partitioned") { Description = "The queue is partitioned (every workflow has a partition key)." };
        private readonly Option<int?> partitionConcurrency = new("--partition-concurrency") { Description = "How many workflows of one partition may run at once." };
        private readonly Option<int?> partitionWorkerConcurrency = new("--partition-worker-concurrency") { Description = "How many workflows of one partition may run at once in each process." };
        private readonly Option<double?> pollingInterval = new("--polling-interval") { Description = "The longest wait between two looks at an idle queue, in seconds." };

        public QueueLimitOptions(Command command)
        {
            Command = command;
            foreach (var option in new Option[] { concurrency, workerConcurrency, limit, period, priorityEnabled, partitioned, partitionConcurrency, partitionWorkerConcurrency, pollingInterval })
            {
                command.Options.Add(option);
            }
        }

        public Command Command { get; }

        public QueueOptions Apply(ParseResult p, QueueOptions options)
        {
            if ((p.GetValue(limit) is null) != (p.GetValue(period) is null))
            {
                throw new ArgumentException("--limit and --period go together.");
            }

            return options with
            {
                Concurrency = p.GetValue(concurrency) ?? options.Concurrency,
                WorkerConcurrency = p.GetValue(workerConcurrency) ?? options.WorkerConcurrency,
                RateLimit = p.GetValue(limit) is { } n ? new RateLimit(n, TimeSpan.FromSeconds(p.GetValue(period)!.Value)) : options.RateLimit,
                PriorityEnabled = p.GetValue(priorityEnabled) || options.PriorityEnabled,
                Partitioned = p.GetValue(partitioned) || options.Partitioned,
                PartitionConcurrency = p.GetValue(partitionConcurrency) ?? options.PartitionConcurrency,
                PartitionWorkerConcurrency = p.GetValue(partitionWorkerConcurrency) ?? options.PartitionWorkerConcurrency,
                PollingInterval = p.GetValue(pollingInterval) is { } seconds ? TimeSpan.FromSeconds(seconds) : options.PollingInterval,
            };
        }
    }

    private static Command ScheduleCommand(TextWriter output, TextWriter errors)
    {
        var schedule = new Command("schedule", "Inspect and manage cron schedules.");
        schedule.Aliases.Add("schedules");
        schedule.Subcommands.Add(Handle(new Command("list", "List schedules."), output, errors, async (_, client, printer, ct) =>
            await printer.SchedulesAsync(await client.ListSchedulesAsync(ct).ConfigureAwait(false)).ConfigureAwait(false)));

        var name = new Argument<string>("name") { Description = "The schedule's name." };
        var pause = new Command("pause", "Pause a schedule.") { name };
        schedule.Subcommands.Add(Handle(pause, output, errors, async (p, client, printer, ct) =>
        {
            await client.PauseScheduleAsync(p.GetValue(name)!, ct).ConfigureAwait(false);
            await printer.LineAsync($"Paused schedule {p.GetValue(name)}.").ConfigureAwait(false);
        }));
        var resume = new Command("resume", "Resume a paused schedule.") { name };
        schedule.Subcommands.Add(Handle(resume, output, errors, async (p, client, printer, ct) =>
        {
            await client.ResumeScheduleAsync(p.GetValue(name)!, ct).ConfigureAwait(false);
            await printer.LineAsync($"Resumed schedule {p.GetValue(name)}.").ConfigureAwait(false);
        }));
        var trigger = new Command("trigger", "Run a schedule's workflow now.") { name };
        schedule.Subcommands.Add(Handle(trigger, output, errors, async (p, client, printer, ct) =>
        {
            var handle = await client.TriggerScheduleAsync(p.GetValue(name)!, ct).ConfigureAwait(false);
            await printer.LineAsync($"Triggered schedule {p.GetValue(name)}: workflow {handle.WorkflowId}.", new { workflowId = handle.WorkflowId }).ConfigureAwait(false);
        }));
        var from = new Option<DateTimeOffset>("--start") { Description = "The start of the interval (ISO 8601).", Required = true };
        var to = new Option<DateTimeOffset>("--end") { Description = "The end of the interval (ISO 8601).", Required = true };
        var backfill = new Command("backfill", "Run every tick of a schedule in an interval that has not run yet.") { name, from, to };
        schedule.Subcommands.Add(Handle(backfill, output, errors, async (p, client, printer, ct) =>
        {
            var ids = await client.BackfillScheduleAsync(p.GetValue(name)!, p.GetValue(from), p.GetValue(to), ct).ConfigureAwait(false);
            await printer.LineAsync($"Backfilled {ids.Count} tick(s) of schedule {p.GetValue(name)}.", new { workflowIds = ids }).ConfigureAwait(false);
        }));
        return schedule;
    }

    private static Command VersionCommand(TextWriter output, TextWriter errors)
    {
        var version = new Command("version", "Inspect application versions.");
        version.Aliases.Add("versions");
        version.Subcommands.Add(Handle(new Command("list", "List application versions, latest first."), output, errors, async (_, client, printer, ct) =>
            await printer.VersionsAsync(await client.ListApplicationVersionsAsync(ct).ConfigureAwait(false)).ConfigureAwait(false)));
        var name = new Argument<string>("version") { Description = "The version's name." };
        var latest = new Command("set-latest", "Mark a version as the latest.") { name };
        version.Subcommands.Add(Handle(latest, output, errors, async (p, client, printer, ct) =>
        {
            await client.SetLatestApplicationVersionAsync(p.GetValue(name)!, ct).ConfigureAwait(false);
            await printer.LineAsync($"Version {p.GetValue(name)} is now the latest.").ConfigureAwait(false);
        }));
        var from = new Argument<string>("from") { Description = "The version whose waiting workflows to move." };
        var to = new Option<string?>("--to") { Description = "The version to move them to (default: the latest version)." };
        var application = new Option<string?>("--application-name", "-a") { Description = "Only workflows of this application (and unclaimed ones). Default: every application's." };
        var move = new Command(
            "move",
            "Move the enqueued and delayed workflows of a version to another, so that its processes run them (once no process of the old version will).")
        { from, to, application };
        version.Subcommands.Add(Handle(
            move,
            output,
            errors,
            async (p, client, printer, ct) =>
            {
                var moved = await client.MoveWorkflowsToVersionAsync(p.GetValue(from)!, p.GetValue(to), ct).ConfigureAwait(false);
                await printer.LineAsync(
                    $"Moved {moved.Count} workflow(s) from version {p.GetValue(from)} to {p.GetValue(to) ?? "the latest version"}.",
                    new { moved = moved.Count, workflowIds = moved }).ConfigureAwait(false);
            },
            application));
        return version;
    }

    private static Command ExecutorCommand(TextWriter output, TextWriter errors)
    {
        var executor = new Command("executor", "See which executors (processes) of an application are alive, and recover a stopped one's work.");
        executor.Aliases.Add("executors");
        var application = new Option<string?>("--application-name", "-a") { Description = "The application.", Required = true };
        executor.Subcommands.Add(Handle(
            new Command("list", "List the application's live executors (idle ones too) and every executor holding its pending workflows.") { application },
            output,
            errors,
            async (_, client, printer, ct) => await printer.ExecutorsAsync(await client.ListExecutorsAsync(ct).ConfigureAwait(false)).ConfigureAwait(false),
            application));
        var id = new Argument<string>("executor-id") { Description = "The executor whose pending workflows to recover." };
        executor.Subcommands.Add(Handle(
            new Command("recover", "Put a stopped executor's pending workflows back on their queues, for live processes of their version to run (refused while it is alive).") { id, application },
            output,
            errors,
            async (p, client, printer, ct) =>
            {
                var ids = await client.RecoverExecutorAsync(p.GetValue(id)!, ct).ConfigureAwait(false);
                await printer.LineAsync($"Recovered {ids.Count} workflow(s) of executor {p.GetValue(id)}.", new { workflowIds = ids }).ConfigureAwait(false);
            },
            application));
        return executor;
    }

    /// <summary>The values of a repeatable option, each split at commas; null when none were given.</summary>
    private static string[]? Values(string[]? given)
    {
        var values = given?.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
        return values is { Length: > 0 } ? values : null;
    }

    /// <summary>The <c>--attribute KEY=VALUE</c> filters as a JSON object (numbers, booleans and null as JSON, other values as text).</summary>
    private static System.Text.Json.Nodes.JsonObject? Attributes(string[]? pairs)
    {
        if (pairs is not { Length: > 0 })
        {
            return null;
        }

        var attributes = new System.Text.Json.Nodes.JsonObject();
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ArgumentException($"--attribute '{pair}' is not KEY=VALUE.");
            }

            var text = pair[(equals + 1)..];
            System.Text.Json.Nodes.JsonNode? value;
            try
            {
                value = System.Text.Json.Nodes.JsonNode.Parse(text);
                if (value is not null && value.GetValueKind() is not (System.Text.Json.JsonValueKind.Number or System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False))
                {
                    value = System.Text.Json.Nodes.JsonValue.Create(text);
                }
            }
            catch (System.Text.Json.JsonException)
            {
                value = System.Text.Json.Nodes.JsonValue.Create(text);
            }

            attributes[pair[..equals]] = value;
        }

        return attributes;
    }

    private static WorkflowGrouping ParseGrouping(string column) => column.ToLowerInvariant() switch
    {
        "status" => WorkflowGrouping.Status,
        "name" => WorkflowGrouping.Name,
        "queue" or "queue-name" => WorkflowGrouping.QueueName,
        "version" or "application-version" => WorkflowGrouping.ApplicationVersion,
        "executor" or "executor-id" => WorkflowGrouping.ExecutorId,
        _ => throw new ArgumentException($"--group-by '{column}' is not one of status, name, queue, version, executor."),
    };

    private static WorkflowState ParseStatus(string status) =>
        Enum.GetValues<WorkflowState>().FirstOrDefault(s => s != WorkflowState.Unknown && WorkflowStates.ToName(s) == status.ToUpperInvariant()) is var state && state != WorkflowState.Unknown
            ? state
            : throw new ArgumentException($"Unknown status '{status}': use PENDING, SUCCESS, ERROR, ENQUEUED, DELAYED, CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED.");

    internal static string Time(DateTimeOffset? time) => time?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? string.Empty;
}
