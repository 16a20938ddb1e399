using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Debouncing (<see cref="Debouncer{TInput, TResult}"/>), on the TypeScript SDK's rows: one <c>DELAYED</c> workflow per
/// key with <c>is_debounced</c>, its start pushed back by each call and capped by <c>debounce_deadline_epoch_ms</c>.
/// </summary>
public class DebouncerTests
{
    [Theory, BothBackends]
    public async Task Calls_within_the_period_from_the_app_and_a_client_start_one_workflow_with_the_last_input(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = new List<string>();
        var collect = dbos.RegisterWorkflow("collect", (WorkflowContext ctx, string input) =>
        {
            lock (runs)
            {
                runs.Add(input);
            }

            return Task.FromResult($"ran {input}");
        });
        await dbos.LaunchAsync();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });

        var debouncer = new Debouncer<string, string>(collect);
        var fromClient = new Debouncer<string, string>(client, "collect");
        var period = TimeSpan.FromSeconds(2);
        var handles = new List<WorkflowHandle<string>>
        {
            await debouncer.DebounceAsync("user-1", period, "a"),
            await debouncer.DebounceAsync("user-1", period, "b"),
            await fromClient.DebounceAsync("user-1", period, "c"),
        };
        var other = await debouncer.DebounceAsync("user-2", period, "other");

        Assert.Single(handles.Select(h => h.WorkflowId).Distinct());
        Assert.NotEqual(handles[0].WorkflowId, other.WorkflowId);
        var waiting = await db.QueryAsync(
            $"SELECT status, deduplication_id, is_debounced, delay_until_epoch_ms > created_at FROM {{workflow_status}} WHERE workflow_uuid = '{handles[0].WorkflowId}'",
            r => (r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetBoolean(3)));
        Assert.Equal(("DELAYED", ".collect-user-1", true, true), Assert.Single(waiting));

        Assert.Equal("ran c", await handles[0].GetResultAsync());
        Assert.Equal("ran other", await other.GetResultAsync());
        Assert.Equal(["c", "other"], runs.Order());
        Assert.Equal(2, await db.CountAsync("SELECT COUNT(*) FROM {workflow_status} WHERE name = 'collect'"));
        var finished = await db.QueryAsync(
            $"SELECT status, deduplication_id IS NULL FROM {{workflow_status}} WHERE workflow_uuid = '{handles[0].WorkflowId}'",
            r => (r.GetString(0), r.GetBoolean(1)));
        Assert.Equal(("SUCCESS", true), Assert.Single(finished));

        // Once the workflow has left DELAYED, the key is free: the next call starts another workflow.
        var later = await debouncer.DebounceAsync("user-1", TimeSpan.FromMilliseconds(100), "d");
        Assert.NotEqual(handles[0].WorkflowId, later.WorkflowId);
        Assert.Equal("ran d", await later.GetResultAsync());
    }

    [Theory, BothBackends]
    public async Task The_debounce_timeout_bounds_the_wait_of_a_workflow_whose_calls_never_stop(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var collect = dbos.RegisterWorkflow("collect", (WorkflowContext ctx, int input) => Task.FromResult(input));
        await dbos.LaunchAsync();

        var debouncer = new Debouncer<int, int>(collect, new DebouncerOptions { DebounceTimeout = TimeSpan.FromSeconds(4) });
        var started = DateTimeOffset.UtcNow;
        var calls = new List<(int Input, string WorkflowId)>();
        calls.Add((0, (await debouncer.DebounceAsync("key", TimeSpan.FromSeconds(3), 0)).WorkflowId));
        var firstCallReturned = DateTimeOffset.UtcNow;

        // Calls every 300 ms, each asking for a 3 s delay (so even a machine slow enough to stretch a gap to seconds keeps pushing back): without the bound the first workflow would never run. Keep
        // calling until a call lands on a new workflow (the first one was claimed), however slow a loaded machine is.
        for (var i = 1; calls[^1].WorkflowId == calls[0].WorkflowId; i++)
        {
            Assert.True(i < 200, "the debounce timeout never let the first workflow start");
            await Task.Delay(300);
            calls.Add((i, (await debouncer.DebounceAsync("key", TimeSpan.FromSeconds(3), i)).WorkflowId));
        }

        var first = calls[0].WorkflowId;
        var row = await db.QueryAsync(
            $"SELECT status, delay_until_epoch_ms, debounce_deadline_epoch_ms FROM {{workflow_status}} WHERE workflow_uuid = '{first}'",
            r => (r.GetString(0), r.GetInt64(1), r.GetInt64(2)));
        var (status, delayUntil, deadline) = Assert.Single(row);

        // The push-backs stopped at the deadline, which the first call set 4 s after it was made.
        Assert.Equal(delayUntil, deadline);
        Assert.InRange(deadline, started.ToUnixTimeMilliseconds() + 4000, firstCallReturned.ToUnixTimeMilliseconds() + 4000);
        Assert.Contains(status, new[] { "ENQUEUED", "PENDING", "SUCCESS" });

        // The first workflow ran with the last input it was given; later calls went to a new workflow.
        var lastForFirst = calls.Last(c => c.WorkflowId == first).Input;
        Assert.Equal(lastForFirst, await (await dbos.RetrieveWorkflowAsync<int>(first)).GetResultAsync());
        Assert.Equal(calls[^1].Input, await (await dbos.RetrieveWorkflowAsync<int>(calls[^1].WorkflowId)).GetResultAsync());
    }

    [Theory, BothBackends]
    public async Task A_key_held_by_a_workflow_the_debouncer_did_not_start_is_refused_and_bad_arguments_change_nothing(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("q");
        var collect = dbos.RegisterWorkflow("collect", (WorkflowContext ctx, string input) => Task.FromResult(input));
        var debouncer = new Debouncer<string, string>(collect, new DebouncerOptions { Queue = "q" });

        // In a workflow's body (rather than a step) a debounce would run again on every re-execution: refused.
        var inBody = dbos.RegisterWorkflow("debounce-in-body", async (WorkflowContext ctx, string input) =>
            (await debouncer.DebounceAsync("k", TimeSpan.FromSeconds(1), input)).WorkflowId);
        await dbos.LaunchAsync();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => inBody.RunAsync("x"));
        Assert.Contains("call it from a step", error.Message, StringComparison.Ordinal);

        // A plain delayed workflow holding the deduplication ID a debounce of key "held" would use.
        var plain = await collect.StartAsync("plain", new StartOptions { Queue = "q", DeduplicationId = ".collect-held", Delay = TimeSpan.FromMinutes(5) });
        var refused = await Assert.ThrowsAsync<WorkflowDeduplicatedException>(() => debouncer.DebounceAsync("held", TimeSpan.FromSeconds(1), "x"));
        Assert.Contains(plain.WorkflowId, refused.Message, StringComparison.Ordinal);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => debouncer.DebounceAsync("k", TimeSpan.Zero, "x"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Debouncer<string, string>(collect, new DebouncerOptions { DebounceTimeout = TimeSpan.FromSeconds(-1) }));
        Assert.Equal(1, await db.CountAsync("SELECT COUNT(*) FROM {workflow_status} WHERE name = 'collect'"));
    }

    [Theory, BothBackends]
    public async Task A_process_killed_in_the_middle_of_a_debounce_period_still_starts_one_workflow_with_the_last_input(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var ledger = Path.Combine(db.Directory, "ledger.txt");
        string workflowId;
        await using (var first = WorkerProcess.Start(db.WorkerEnvironment(ledger), db.Directory, "debounce", "burst", "3"))
        {
            var line = await first.WaitForLineAsync("debounced ");
            workflowId = line["debounced ".Length..];
            first.Kill();
        }

        var delayed = await db.QueryAsync($"SELECT status FROM {{workflow_status}} WHERE workflow_uuid = '{workflowId}'", r => r.GetString(0));
        Assert.Equal("DELAYED", Assert.Single(delayed));

        await using (var second = WorkerProcess.Start(db.WorkerEnvironment(ledger), db.Directory, "await", workflowId))
        {
            Assert.Equal("result \"collected burst-3\"", await second.WaitForLineAsync("result "));
            Assert.Equal(0, await second.WaitForExitAsync());
        }

        Assert.Equal(["collected burst-3"], File.ReadAllLines(ledger));
        Assert.Equal(1, await db.CountAsync("SELECT COUNT(*) FROM {workflow_status} WHERE name = 'collect'"));
    }
}
