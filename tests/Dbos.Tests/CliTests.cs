using System.Text.Json;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>Every <c>dbos</c> command, run as a real process against a real database on both backends.</summary>
public class CliTests
{
    private sealed record Result(int ExitCode, string Output, string Errors)
    {
        public JsonElement Json => JsonDocument.Parse(Output).RootElement;
    }

    private static async Task<Result> DbosWithInputAsync(TestDatabase db, string? input, params string[] arguments)
    {
        string[] all = [.. arguments, "--sys-db-url", db.Url, "--schema", db.Schema];
        await using var cli = WorkerProcess.StartDllWithInput(Path.Combine(AppContext.BaseDirectory, "Dbos.Cli.dll"), new Dictionary<string, string?>(), db.Directory, input, all);
        var exit = await cli.WaitForExitAsync();
        return new Result(exit, cli.StandardOutput, cli.StandardError);
    }

    private static Task<Result> DbosAsync(TestDatabase db, params string[] arguments) => DbosWithInputAsync(db, null, arguments);

    /// <summary>An application with a few workflows in every state the commands act on.</summary>
    private static async Task<(DbosApp App, TaskCompletionSource Gate)> SeedAsync(TestDatabase db)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var config = db.Config();
        var dbos = DbosApp.Create(config);
        dbos.RegisterQueue("unserved-elsewhere", new QueueOptions());
        var ok = dbos.RegisterWorkflow("greet", async (WorkflowContext ctx, string who) =>
        {
            var a = await ctx.RunStepAsync("first", _ => Task.FromResult(1));
            var b = await ctx.RunStepAsync("second", _ => Task.FromResult(2));
            return $"hello {who} {a + b}";
        });
        var failing = dbos.RegisterWorkflow<int, int>("fail", (ctx, x) => throw new InvalidOperationException("broken on purpose"));
        var waiting = dbos.RegisterWorkflow("wait", async (WorkflowContext ctx, int x) =>
        {
            await ctx.RunStepAsync("before", _ => Task.FromResult(x));
            await gate.Task;
            return x;
        });
        await dbos.LaunchAsync();
        // A few milliseconds apart, so that listings (ordered by creation time) have a well-defined order.
        await ok.RunAsync("ada", new StartOptions { WorkflowId = "wf-ok" });
        await Task.Delay(5);
        await Assert.ThrowsAsync<WorkflowFailedException>(() => failing.RunAsync(1, new StartOptions { WorkflowId = "wf-error" }));
        await Task.Delay(5);
        await waiting.StartAsync(5, new StartOptions { WorkflowId = "wf-waiting" });
        await Eventually.OperationsRecordedAsync(db, "wf-waiting", 1);
        await Task.Delay(5);
        await ok.StartAsync("queued", new StartOptions { WorkflowId = "wf-queued", Queue = "nobody-serves-this" });
        return (dbos, gate);
    }

    [Theory, BothBackends]
    public async Task Migrate_reset_and_errors(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);

        // Help names the command "dbos", not the assembly (Dbos.Cli).
        var help = await DbosAsync(db, "--help");
        Assert.Equal(0, help.ExitCode);
        var usage = help.Output.Split('\n').Select(l => l.Trim()).SkipWhile(l => l != "Usage:").Skip(1).First();
        Assert.Equal("dbos [command] [options]", usage);
        var subcommandHelp = await DbosAsync(db, "workflow", "list", "--help");
        Assert.Contains("dbos workflow list [options]", subcommandHelp.Output, StringComparison.Ordinal);

        var before = await DbosAsync(db, "workflow", "list");
        Assert.Equal(1, before.ExitCode);
        Assert.Contains("dbos migrate", before.Errors, StringComparison.Ordinal);

        var migrate = await DbosAsync(db, "migrate");
        Assert.Equal(0, migrate.ExitCode);
        Assert.Contains("is migrated", migrate.Output, StringComparison.Ordinal);
        Assert.Equal("No workflows.", (await DbosAsync(db, "workflow", "list")).Output.Trim());

        var unknown = await DbosAsync(db, "workflow", "get", "no-such-id");
        Assert.Equal((1, "dbos: No workflow with ID 'no-such-id' exists."), (unknown.ExitCode, unknown.Errors.Trim()));
        var badStatus = await DbosAsync(db, "workflow", "list", "--status", "SLEEPY");
        Assert.Equal(1, badStatus.ExitCode);
        Assert.Contains("Unknown status 'SLEEPY'", badStatus.Errors, StringComparison.Ordinal);

        await using (var app = DbosApp.Create(db.Config()))
        {
            var w = app.RegisterWorkflow("keep", (WorkflowContext ctx, int x) => Task.FromResult(x));
            await app.LaunchAsync();
            await w.RunAsync(1, new StartOptions { WorkflowId = "kept" });
        }

        var declined = await DbosWithInputAsync(db, "no\n", "reset");
        Assert.Equal(1, declined.ExitCode);
        Assert.Contains("Type 'yes' to continue", declined.Output, StringComparison.Ordinal);
        Assert.Contains("nothing was deleted", declined.Errors, StringComparison.Ordinal);
        Assert.Equal(1, await db.CountAsync("SELECT count(*) FROM {workflow_status}"));

        var confirmed = await DbosWithInputAsync(db, "yes\n", "reset");
        Assert.Equal(0, confirmed.ExitCode);
        Assert.Contains("is reset", confirmed.Output, StringComparison.Ordinal);
        Assert.Equal(1, (await DbosAsync(db, "workflow", "list")).ExitCode);

        Assert.Equal(0, (await DbosAsync(db, "migrate")).ExitCode);
        Assert.Equal(0, (await DbosAsync(db, "reset", "--yes")).ExitCode);

        await using var noUrl = WorkerProcess.StartDll(Path.Combine(AppContext.BaseDirectory, "Dbos.Cli.dll"), new Dictionary<string, string?>(), db.Directory, "workflow", "list");
        Assert.Equal(1, await noUrl.WaitForExitAsync());
        Assert.Contains("--sys-db-url", noUrl.StandardError, StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task Workflow_list_takes_several_values_per_filter_attributes_forks_parents_and_counts_by_group(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var (dbos, gate) = await SeedAsync(db);
        await using var _ = dbos;
        var taggedConfig = db.Config();
        taggedConfig.ExecutorId = "tagged";
        await using (var tagged = DbosApp.Create(taggedConfig))
        {
            var leaf = tagged.RegisterWorkflow("cli-leaf", (WorkflowContext ctx, int x) => Task.FromResult(x));
            var parent = tagged.RegisterWorkflow("cli-parent", async (WorkflowContext ctx) => await leaf.RunAsync(1, new StartOptions { WorkflowId = "wf-child" }));
            await tagged.LaunchAsync();
            await parent.RunAsync(new StartOptions { WorkflowId = "wf-parent", AuthenticatedUser = "ann", Attributes = new() { ["team"] = "blue", ["n"] = 3 } });
        }

        await dbos.ForkWorkflowAsync("wf-ok", 0, new ForkOptions { NewWorkflowId = "wf-fork", ApplicationVersion = "v-elsewhere" });

        async Task<string[]> IdsAsync(params string[] filters)
        {
            var listed = await DbosAsync(db, ["workflow", "list", "--json", "--limit", "100", .. filters]);
            Assert.True(listed.ExitCode == 0, $"dbos workflow list {string.Join(' ', filters)} failed: {listed.Errors}");
            return listed.Json.EnumerateArray().Select(w => w.GetProperty("workflowId").GetString()!).Order(StringComparer.Ordinal).ToArray();
        }

        Assert.Equal(["wf-error", "wf-ok"], await IdsAsync("--status", "SUCCESS,ERROR", "--name", "greet", "--name", "fail"));
        Assert.Equal(["wf-error", "wf-ok"], await IdsAsync("-S", "SUCCESS", "-S", "ERROR", "-n", "greet,fail"));
        Assert.Equal(["wf-child", "wf-parent"], await IdsAsync("--user", "ann,nobody"));
        Assert.Equal(["wf-child"], await IdsAsync("--has-parent", "true"));
        Assert.Equal(["wf-fork"], await IdsAsync("--forked-from", "wf-ok"));
        Assert.Equal(["wf-fork"], await IdsAsync("--application-version", "v-elsewhere,v-none"));
        Assert.Equal(["wf-parent"], await IdsAsync("--attribute", "team=blue", "--attribute", "n=3"));
        Assert.Empty(await IdsAsync("--attribute", "n=\"3\""));
        Assert.Equal(["wf-queued"], await IdsAsync("--queue", "nobody-serves-this,other"));
        Assert.Empty(await IdsAsync("--executor", "no-such-executor"));

        var parentJson = (await DbosAsync(db, "workflow", "get", "wf-parent", "--json")).Json;
        Assert.Equal("ann", parentJson.GetProperty("authenticatedUser").GetString());
        Assert.Equal("blue", parentJson.GetProperty("attributes").GetProperty("team").GetString());

        var total = (await DbosAsync(db, "workflow", "list", "--count", "--json")).Json;
        Assert.Equal(7, Assert.Single(total.EnumerateArray()).GetProperty("count").GetInt64());
        var byStatus = (await DbosAsync(db, "workflow", "list", "--count", "--group-by", "status", "--json")).Json;
        Assert.Equal(
            [("ENQUEUED", 2L), ("ERROR", 1L), ("PENDING", 1L), ("SUCCESS", 3L)],
            byStatus.EnumerateArray().Select(c => (c.GetProperty("status").GetString()!, c.GetProperty("count").GetInt64())));
        var byNameAndStatus = (await DbosAsync(db, "workflow", "list", "--count", "--group-by", "name,status", "-n", "greet", "--json")).Json;
        Assert.Equal(
            [("greet", "ENQUEUED", 2L), ("greet", "SUCCESS", 1L)],
            byNameAndStatus.EnumerateArray().Select(c => (c.GetProperty("name").GetString()!, c.GetProperty("status").GetString()!, c.GetProperty("count").GetInt64())));
        var countTable = await DbosAsync(db, "workflow", "list", "--count", "--group-by", "queue");
        Assert.Equal(0, countTable.ExitCode);
        Assert.Contains("nobody-serves-this", countTable.Output, StringComparison.Ordinal);
        Assert.Contains("Count", countTable.Output, StringComparison.Ordinal);

        var badGroup = await DbosAsync(db, "workflow", "list", "--count", "--group-by", "colour");
        Assert.Equal((1, "dbos: --group-by 'colour' is not one of status, name, queue, version, executor."), (badGroup.ExitCode, badGroup.Errors.Trim()));
        Assert.Equal(1, (await DbosAsync(db, "workflow", "list", "--group-by", "name")).ExitCode);
        Assert.Equal(1, (await DbosAsync(db, "workflow", "list", "--attribute", "novalue")).ExitCode);
        gate.SetResult();
    }

    [Theory, BothBackends]
    public async Task Workflow_commands_list_get_steps_cancel_resume_fork_and_delete(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var (dbos, gate) = await SeedAsync(db);
        await using var _ = dbos;

        var table = await DbosAsync(db, "workflow", "list");
        Assert.Equal(0, table.ExitCode);
        foreach (var id in (string[])["wf-ok", "wf-error", "wf-waiting", "wf-queued"])
        {
            Assert.Contains(id, table.Output, StringComparison.Ordinal);
        }

        Assert.Contains("Workflow ID", table.Output, StringComparison.Ordinal);
        var json = (await DbosAsync(db, "workflow", "list", "--json")).Json;
        Assert.Equal(["wf-ok", "wf-error", "wf-waiting", "wf-queued"], json.EnumerateArray().Select(w => w.GetProperty("workflowId").GetString()));
        Assert.Equal("hello ada 3", json[0].GetProperty("output").GetString());
        Assert.Equal("broken on purpose", json[1].GetProperty("error").GetProperty("message").GetString());

        var errors = (await DbosAsync(db, "workflow", "list", "--status", "ERROR", "--json")).Json;
        Assert.Equal("wf-error", Assert.Single(errors.EnumerateArray()).GetProperty("workflowId").GetString());
        var newest = (await DbosAsync(db, "workflow", "list", "--sort-desc", "--limit", "1", "--json")).Json;
        Assert.Equal("wf-queued", Assert.Single(newest.EnumerateArray()).GetProperty("workflowId").GetString());
        var byName = (await DbosAsync(db, "workflow", "list", "-n", "greet", "--json")).Json;
        Assert.Equal(2, byName.GetArrayLength());

        var get = await DbosAsync(db, "workflow", "get", "wf-ok");
        Assert.Contains("SUCCESS", get.Output, StringComparison.Ordinal);
        Assert.Contains("hello ada 3", get.Output, StringComparison.Ordinal);
        Assert.Equal("greet", (await DbosAsync(db, "workflow", "get", "wf-ok", "--json")).Json.GetProperty("name").GetString());

        var steps = await DbosAsync(db, "workflow", "steps", "wf-ok");
        Assert.Contains("first", steps.Output, StringComparison.Ordinal);
        Assert.Contains("second", steps.Output, StringComparison.Ordinal);
        var stepsJson = (await DbosAsync(db, "workflow", "steps", "wf-ok", "--json")).Json;
        Assert.Equal([1, 2], stepsJson.EnumerateArray().Select(s => s.GetProperty("output").GetInt32()));

        var cancel = await DbosAsync(db, "workflow", "cancel", "wf-waiting");
        Assert.Equal((0, "Cancelled wf-waiting."), (cancel.ExitCode, cancel.Output.Trim()));
        await Eventually.StatusAsync(db, "wf-waiting", "CANCELLED");
        Assert.Contains("already finished", (await DbosAsync(db, "workflow", "cancel", "wf-ok")).Output, StringComparison.Ordinal);

        gate.SetResult();
        var resume = await DbosAsync(db, "workflow", "resume", "wf-waiting");
        Assert.Equal(0, resume.ExitCode);
        Assert.Equal(5, await (await dbos.RetrieveWorkflowAsync<int>("wf-waiting")).GetResultAsync());

        var fork = await DbosAsync(db, "workflow", "fork", "wf-ok", "--step", "1", "--forked-workflow-id", "wf-fork", "--json");
        Assert.Equal((0, "wf-fork"), (fork.ExitCode, fork.Json.GetProperty("workflowId").GetString()));
        Assert.Equal("hello ada 3", await (await dbos.RetrieveWorkflowAsync<string>("wf-fork")).GetResultAsync());
        Assert.Equal("wf-ok", (await dbos.GetWorkflowStatusAsync("wf-fork"))!.ForkedFrom);

        var delete = await DbosAsync(db, "workflow", "delete", "wf-error");
        Assert.Equal((0, "Deleted wf-error."), (delete.ExitCode, delete.Output.Trim()));
        Assert.Null(await dbos.GetWorkflowStatusAsync("wf-error"));
        Assert.Equal(1, (await DbosAsync(db, "workflow", "delete", "wf-error")).ExitCode);

        var queued = await DbosAsync(db, "queue", "list");
        Assert.Contains("wf-queued", queued.Output, StringComparison.Ordinal);
        Assert.Contains("nobody-serves-this", queued.Output, StringComparison.Ordinal);
        var queuedJson = (await DbosAsync(db, "queue", "list", "--queue", "nobody-serves-this", "--json")).Json;
        Assert.Equal("ENQUEUED", Assert.Single(queuedJson.EnumerateArray()).GetProperty("status").GetString());

        var deleteQueue = await DbosAsync(db, "queue", "delete", "unserved-elsewhere");
        Assert.Equal((0, "Deleted queue unserved-elsewhere."), (deleteQueue.ExitCode, deleteQueue.Output.Trim()));
        Assert.Equal(0L, await db.CountAsync("SELECT count(*) FROM {queues} WHERE name = 'unserved-elsewhere'"));
        var again = await DbosAsync(db, "queue", "delete", "unserved-elsewhere");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("No queue named 'unserved-elsewhere'", again.Errors, StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task Queue_register_update_definitions_and_delete_round_trip(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        Assert.Equal(0, (await DbosAsync(db, "migrate")).ExitCode);
        var register = await DbosAsync(db, "queue", "register", "cli-queue", "--concurrency", "4", "--worker-concurrency", "2", "--limit", "10", "--period", "1.5", "--priority-enabled");
        Assert.True(register.ExitCode == 0, register.Errors);
        Assert.Contains("cli-queue", register.Output, StringComparison.Ordinal);
        Assert.Equal(4L, await db.CountAsync("SELECT concurrency FROM {queues} WHERE name = 'cli-queue'"));
        Assert.Equal(10L, await db.CountAsync("SELECT rate_limit_max FROM {queues} WHERE name = 'cli-queue'"));

        // Only the options given change.
        var update = await DbosAsync(db, "queue", "update", "cli-queue", "--worker-concurrency", "1", "--partitioned");
        Assert.True(update.ExitCode == 0, update.Errors);
        var listed = Assert.Single((await DbosAsync(db, "queue", "definitions", "--json")).Json.EnumerateArray());
        Assert.Equal("cli-queue", listed.GetProperty("name").GetString());
        Assert.Equal(4, listed.GetProperty("concurrency").GetInt32());
        Assert.Equal(1, listed.GetProperty("workerConcurrency").GetInt32());
        Assert.Equal(10, listed.GetProperty("rateLimitMax").GetInt32());
        Assert.Equal(1.5, listed.GetProperty("rateLimitPeriodSec").GetDouble());
        Assert.True(listed.GetProperty("priorityEnabled").GetBoolean());
        Assert.True(listed.GetProperty("partitioned").GetBoolean());
        Assert.Contains("cli-queue", (await DbosAsync(db, "queue", "definitions")).Output, StringComparison.Ordinal);

        Assert.Equal(1, (await DbosAsync(db, "queue", "update", "no-such-queue", "--concurrency", "1")).ExitCode);
        Assert.Equal(1, (await DbosAsync(db, "queue", "register", "bad", "--limit", "3")).ExitCode);
        Assert.Equal(0L, await db.CountAsync("SELECT count(*) FROM {queues} WHERE name = 'bad'"));

        Assert.Equal(0, (await DbosAsync(db, "queue", "delete", "cli-queue")).ExitCode);
        Assert.Empty((await DbosAsync(db, "queue", "definitions", "--json")).Json.EnumerateArray());
    }

    [Theory, BothBackends]
    public async Task Workflow_gc_and_global_timeout_commands(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var (dbos, gate) = await SeedAsync(db);
        await using var _ = dbos;
        var cutoff = (await dbos.GetWorkflowStatusAsync("wf-queued"))!.CreatedAt.AddMilliseconds(1).ToString("O", System.Globalization.CultureInfo.InvariantCulture);

        var missing = await DbosAsync(db, "workflow", "gc");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("--cutoff, --rows-threshold", missing.Errors, StringComparison.Ordinal);

        // A budget of three keeps wf-error, wf-waiting, wf-queued: only wf-ok goes.
        var kept = await DbosAsync(db, "workflow", "gc", "--rows-threshold", "3", "--json");
        Assert.Equal((0, 1), (kept.ExitCode, kept.Json.GetProperty("removed").GetInt32()));
        Assert.Null(await dbos.GetWorkflowStatusAsync("wf-ok"));
        Assert.Equal(0, await db.CountAsync("SELECT COUNT(*) FROM {operation_outputs} WHERE workflow_uuid = 'wf-ok'"));

        // Everything is older than the cutoff: the failed one goes; the running and the queued ones stay.
        var old = await DbosAsync(db, "workflow", "gc", "--cutoff", cutoff, "--batch-size", "1", "--application-name", "test-app");
        Assert.Equal((0, "Removed 1 finished workflow(s)."), (old.ExitCode, old.Output.Trim()));
        Assert.Null(await dbos.GetWorkflowStatusAsync("wf-error"));
        Assert.Equal(WorkflowState.Pending, (await dbos.GetWorkflowStatusAsync("wf-waiting"))!.State);
        Assert.Equal(WorkflowState.Enqueued, (await dbos.GetWorkflowStatusAsync("wf-queued"))!.State);

        // The global timeout cancels both, the running one in the application's process.
        var timeout = await DbosAsync(db, "workflow", "global-timeout", "--cutoff", cutoff, "--json");
        Assert.Equal(0, timeout.ExitCode);
        Assert.Equal(["wf-queued", "wf-waiting"], timeout.Json.GetProperty("cancelled").EnumerateArray().Select(e => e.GetString()).Order(StringComparer.Ordinal));
        await Assert.ThrowsAsync<WorkflowCancelledException>(async () => await (await dbos.RetrieveWorkflowAsync<int>("wf-waiting")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(WorkflowState.Cancelled, (await dbos.GetWorkflowStatusAsync("wf-queued"))!.State);
        Assert.Contains("No unfinished workflow", (await DbosAsync(db, "workflow", "global-timeout", "--cutoff", cutoff)).Output, StringComparison.Ordinal);
        Assert.Equal(1, (await DbosAsync(db, "workflow", "global-timeout")).ExitCode);

        // Once cancelled they are finished, and collected.
        Assert.Equal(2, (await DbosAsync(db, "workflow", "garbage-collect", "--cutoff", cutoff, "--json")).Json.GetProperty("removed").GetInt32());
        Assert.Empty(await dbos.ListWorkflowsAsync());
        gate.SetResult();
    }

    [Theory, BothBackends]
    public async Task Schedule_and_version_commands(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = 0;
        dbos.RegisterScheduledWorkflow("nightly", "0 0 3 * * *", (WorkflowContext ctx, DateTimeOffset at) => Task.FromResult(Interlocked.Increment(ref runs)));
        await dbos.LaunchAsync();

        var list = await DbosAsync(db, "schedule", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("nightly", list.Output, StringComparison.Ordinal);
        Assert.Contains("0 0 3 * * *", list.Output, StringComparison.Ordinal);

        Assert.Equal("Paused schedule nightly.", (await DbosAsync(db, "schedule", "pause", "nightly")).Output.Trim());
        Assert.Equal("PAUSED", (await DbosAsync(db, "schedule", "list", "--json")).Json[0].GetProperty("status").GetString());
        Assert.Equal("Resumed schedule nightly.", (await DbosAsync(db, "schedule", "resume", "nightly")).Output.Trim());

        var trigger = await DbosAsync(db, "schedule", "trigger", "nightly", "--json");
        Assert.Equal(0, trigger.ExitCode);
        var triggered = trigger.Json.GetProperty("workflowId").GetString()!;
        Assert.StartsWith("sched-nightly-trigger-", triggered, StringComparison.Ordinal);
        await (await dbos.RetrieveWorkflowAsync<int>(triggered)).GetResultAsync();

        var backfill = await DbosAsync(db, "schedule", "backfill", "nightly", "--start", "2030-01-01T00:00:00Z", "--end", "2030-01-03T12:00:00Z", "--json");
        Assert.Equal(
            ["sched-nightly-2030-01-01T03:00:00.000Z", "sched-nightly-2030-01-02T03:00:00.000Z", "sched-nightly-2030-01-03T03:00:00.000Z"],
            backfill.Json.GetProperty("workflowIds").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(1, (await DbosAsync(db, "schedule", "pause", "no-such-schedule")).ExitCode);

        var versions = await DbosAsync(db, "version", "list");
        Assert.Contains("test-version", versions.Output, StringComparison.Ordinal);
        Assert.Equal(1, (await DbosAsync(db, "version", "set-latest", "never-registered")).ExitCode);
        Assert.Equal(0, (await DbosAsync(db, "version", "set-latest", "test-version")).ExitCode);
    }

    [Fact]
    public async Task Workflow_list_shows_the_same_workflows_as_the_typescript_sdks_command_line()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        var (dbos, gate) = await SeedAsync(db);
        await using var _ = dbos;

        var ours = (await DbosAsync(db, "workflow", "list", "--limit", "100", "--json")).Json.EnumerateArray()
            .Select(w => (w.GetProperty("workflowId").GetString(), w.GetProperty("status").GetString(), w.GetProperty("name").GetString()))
            .ToList();
        var (exit, output) = await TypeScriptPeer.CliAsync("workflow", "list", "--sys-db-url", db.Url, "--limit", "100");
        Assert.True(exit == 0, output);
        var theirs = JsonDocument.Parse(output[output.IndexOf('[', StringComparison.Ordinal)..]).RootElement.EnumerateArray()
            .Select(w => (w.GetProperty("workflowID").GetString(), w.GetProperty("status").GetString(), w.GetProperty("workflowName").GetString()))
            .ToList();

        Assert.Equal(4, ours.Count);
        Assert.Equal(ours.OrderBy(w => w.Item1), theirs.OrderBy(w => w.Item1));
        gate.SetResult();
    }

    [Theory, BothBackends]
    public async Task Executor_list_and_recover(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var (app, gate) = await SeedAsync(db);
        await using (app)
        {
            var listed = await DbosAsync(db, "executor", "list", "-a", "test-app", "--json");
            Assert.Equal(0, listed.ExitCode);
            var local = Assert.Single(listed.Json.EnumerateArray());
            Assert.Equal(("local", "ALIVE", "test-version", 1), (local.GetProperty("executorId").GetString(), local.GetProperty("state").GetString(),
                local.GetProperty("applicationVersion").GetString(), local.GetProperty("pendingWorkflows").GetInt32()));
            var table = await DbosAsync(db, "executor", "list", "-a", "test-app");
            Assert.Contains("ALIVE", table.Output, StringComparison.Ordinal);

            var refused = await DbosAsync(db, "executor", "recover", "local", "-a", "test-app");
            Assert.Equal((1, string.Empty), (refused.ExitCode, refused.Output));
            Assert.Contains("dbos: Executor 'local' is alive", refused.Errors, StringComparison.Ordinal);
            Assert.Equal(1, (await DbosAsync(db, "executor", "list")).ExitCode); // the application is required
        }

        // Stopped (its process gone), the executor is unknown to liveness: its waiting workflow is recovered by hand.
        var stopped = Assert.Single((await DbosAsync(db, "executor", "list", "-a", "test-app", "--json")).Json.EnumerateArray());
        Assert.Equal("UNKNOWN", stopped.GetProperty("state").GetString());
        var recovered = await DbosAsync(db, "executor", "recover", "local", "-a", "test-app");
        Assert.Equal(0, recovered.ExitCode);
        Assert.Contains("Recovered 1 workflow(s) of executor local.", recovered.Output, StringComparison.Ordinal);
        Assert.Equal("ENQUEUED", Assert.Single(await db.QueryAsync("SELECT status FROM {workflow_status} WHERE workflow_uuid = 'wf-waiting'", r => r.GetString(0))));
        gate.SetResult();
    }
}
