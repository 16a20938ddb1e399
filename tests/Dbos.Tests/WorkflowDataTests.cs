using System.Diagnostics;
using System.Text.Json.Nodes;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>Workflow data shared with the other DBOS implementations: authenticated user and roles, attributes, listing filters and counts.</summary>
public class WorkflowDataTests
{
    [Theory, BothBackends]
    public async Task The_authenticated_user_and_roles_are_stored_as_the_TypeScript_SDK_stores_them_read_in_the_workflow_and_inherited_by_children(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var child = dbos.RegisterWorkflow("auth-child", (WorkflowContext ctx) =>
            Task.FromResult($"{ctx.AuthenticatedUser}:{string.Join(",", ctx.AuthenticatedRoles)}"));
        var parent = dbos.RegisterWorkflow("auth-parent", async (WorkflowContext ctx) =>
        {
            var inherited = await child.RunAsync(new StartOptions { WorkflowId = "auth-child-1" });
            var own = await child.RunAsync(new StartOptions { WorkflowId = "auth-child-2", AuthenticatedUser = "bob", AuthenticatedRoles = [] });
            return $"{ctx.AuthenticatedUser}:{string.Join(",", ctx.AuthenticatedRoles)}|{inherited}|{own}";
        });
        var anonymous = dbos.RegisterWorkflow("auth-none", (WorkflowContext ctx) =>
            Task.FromResult(ctx.AuthenticatedUser is null && ctx.AuthenticatedRoles.Count == 0));
        await dbos.LaunchAsync();

        var result = await parent.RunAsync(new StartOptions { WorkflowId = "auth-1", AuthenticatedUser = "alice", AuthenticatedRoles = ["admin", "café \"ops\""] });
        Assert.Equal("alice:admin,café \"ops\"|alice:admin,café \"ops\"|bob:", result);
        Assert.True(await anonymous.RunAsync(new StartOptions { WorkflowId = "auth-none-1" }));

        var rows = await db.QueryAsync(
            "SELECT workflow_uuid, authenticated_user, authenticated_roles FROM {workflow_status} ORDER BY workflow_uuid",
            r => (r.GetString(0), r.GetString(1), r.GetString(2)));
        Assert.Equal(
            [
                ("auth-1", "alice", """["admin","café \"ops\""]"""),
                ("auth-child-1", "alice", """["admin","café \"ops\""]"""),
                ("auth-child-2", "bob", "[]"),
                ("auth-none-1", "", "[]"),
            ],
            rows);

        var status = await dbos.GetWorkflowStatusAsync("auth-child-1");
        Assert.Equal("alice", status!.AuthenticatedUser);
        Assert.Equal(["admin", "café \"ops\""], status.AuthenticatedRoles);
        var none = await dbos.GetWorkflowStatusAsync("auth-none-1");
        Assert.Null(none!.AuthenticatedUser);
        Assert.Empty(none.AuthenticatedRoles);

        var alices = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { AuthenticatedUser = "alice" });
        Assert.Equal(["auth-1", "auth-child-1"], alices.Select(w => w.WorkflowId));
    }

    [Theory, BothBackends]
    public async Task A_queued_workflow_and_a_client_enqueue_carry_the_user_to_the_execution_that_claims_them(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("auth-queue");
        var who = dbos.RegisterWorkflow("auth-who", (WorkflowContext ctx, string tag) =>
            Task.FromResult($"{tag}:{ctx.AuthenticatedUser}:{string.Join(",", ctx.AuthenticatedRoles)}"));
        await dbos.LaunchAsync();

        var queued = await who.StartAsync("queued", new StartOptions { Queue = "auth-queue", AuthenticatedUser = "carol", AuthenticatedRoles = ["reader"] });
        Assert.Equal("queued:carol:reader", await queued.GetResultAsync());

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });
        var enqueued = await client.EnqueueAsync<string, string>(
            new EnqueueOptions { WorkflowName = "auth-who", QueueName = "auth-queue", AuthenticatedUser = "dave", AuthenticatedRoles = ["a", "b"] },
            "client");
        Assert.Equal("client:dave:a,b", await enqueued.GetResultAsync());
        Assert.Equal(["a", "b"], (await client.GetWorkflowStatusAsync(enqueued.WorkflowId))!.AuthenticatedRoles);

        await Assert.ThrowsAsync<ArgumentException>(() => who.StartAsync("bad", new StartOptions { AuthenticatedUser = "nul\0" }));
    }

    [Theory, BothBackends]
    public async Task Attributes_are_stored_at_start_replaced_from_the_workflow_once_shown_and_filtered_on(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = 0;
        var tagged = dbos.RegisterWorkflow("attr-wf", async (WorkflowContext ctx, string next) =>
        {
            Interlocked.Increment(ref runs);
            if (next != "keep")
            {
                await ctx.SetAttributesAsync(next == "clear" ? null : new JsonObject { ["customer"] = next, ["stage"] = 2 });
            }

            return ctx.WorkflowId;
        });
        await dbos.LaunchAsync();

        await tagged.RunAsync("keep", new StartOptions { WorkflowId = "attr-1", Attributes = new JsonObject { ["customer"] = "acme", ["tier"] = 3, ["vip"] = true, ["note"] = null } });
        await tagged.RunAsync("globex", new StartOptions { WorkflowId = "attr-2", Attributes = new JsonObject { ["customer"] = "acme" } });
        await tagged.RunAsync("clear", new StartOptions { WorkflowId = "attr-3", Attributes = new JsonObject { ["customer"] = "acme" } });
        await tagged.RunAsync("keep", new StartOptions { WorkflowId = "attr-4" });

        static void SameJson(string expected, JsonObject? actual) =>
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"expected {expected}, got {actual?.ToJsonString()}");
        SameJson("""{"customer":"acme","tier":3,"vip":true,"note":null}""", (await dbos.GetWorkflowStatusAsync("attr-1"))!.Attributes);
        SameJson("""{"customer":"globex","stage":2}""", (await dbos.GetWorkflowStatusAsync("attr-2"))!.Attributes);
        Assert.Null((await dbos.GetWorkflowStatusAsync("attr-3"))!.Attributes);
        Assert.Null((await dbos.GetWorkflowStatusAsync("attr-4"))!.Attributes);

        var steps = await dbos.ListWorkflowStepsAsync("attr-2");
        Assert.Equal("DBOS.updateWorkflowAttributes", Assert.Single(steps).Name);

        async Task<string[]> MatchingAsync(JsonObject filter) =>
            (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Attributes = filter })).Select(w => w.WorkflowId).ToArray();
        Assert.Equal(["attr-1"], await MatchingAsync(new JsonObject { ["customer"] = "acme" }));
        Assert.Equal(["attr-2"], await MatchingAsync(new JsonObject { ["customer"] = "globex", ["stage"] = 2.0 }));
        Assert.Equal(["attr-1"], await MatchingAsync(new JsonObject { ["tier"] = 3, ["vip"] = true, ["note"] = null }));
        Assert.Empty(await MatchingAsync(new JsonObject { ["tier"] = "3" }));
        Assert.Empty(await MatchingAsync(new JsonObject { ["vip"] = false }));
        Assert.Equal(1, Assert.Single(await dbos.CountWorkflowsAsync(new ListWorkflowsOptions { Attributes = new JsonObject { ["customer"] = "acme" } })).Count);

        await Assert.ThrowsAsync<ArgumentException>(() => dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Attributes = new JsonObject { ["nested"] = new JsonObject() } }));
        await Assert.ThrowsAsync<ArgumentException>(() => tagged.RunAsync("keep", new StartOptions { Attributes = new JsonObject { ["dbos.otelContext"] = "x" } }));

        // Re-executing the workflow replays the recorded update: the attributes are not written again.
        await db.ExecuteAsync(
            "UPDATE {workflow_status} SET status = 'PENDING', attributes = " + (backend == Backend.Postgres ? "'{\"changed\":1}'::jsonb" : "'{\"changed\":1}'") +
            " WHERE workflow_uuid = 'attr-2'");
        var runsBefore = runs;
        await dbos.ResumeWorkflowAsync("attr-2");
        Assert.Equal("attr-2", await (await dbos.RetrieveWorkflowAsync<string>("attr-2")).GetResultAsync());
        Assert.Equal(runsBefore + 1, runs);
        SameJson("""{"changed":1}""", (await dbos.GetWorkflowStatusAsync("attr-2"))!.Attributes);
    }

    [Theory, BothBackends]
    public async Task The_trace_context_is_kept_where_DBOS_for_Python_keeps_it_and_a_row_of_the_previous_release_still_continues_its_trace(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        using var source = new ActivitySource("wf-data-test");
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == source.Name || s.Name == DbosInstrumentation.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (spans) { spans.Add(a); } },
        };
        ActivitySource.AddActivityListener(listener);
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("trace-q");
        var traced = dbos.RegisterWorkflow("trace-wf", (WorkflowContext ctx, string x) => Task.FromResult(x));
        await dbos.LaunchAsync();

        ActivityTraceId traceId;
        using (var root = source.StartActivity("root")!)
        {
            traceId = root.TraceId;
            var handle = await traced.StartAsync("a", new StartOptions { WorkflowId = "trace-1", Queue = "trace-q", Attributes = new JsonObject { ["k"] = "v" } });
            await handle.GetResultAsync();
        }

        var stored = Assert.Single(await db.QueryAsync("SELECT attributes FROM {workflow_status} WHERE workflow_uuid = 'trace-1'", r => r.GetString(0)));
        var json = JsonNode.Parse(stored)!.AsObject();
        Assert.Equal("v", (string?)json["k"]);
        Assert.Null(json["traceparent"]);
        Assert.StartsWith("00-" + traceId.ToHexString() + "-", (string?)json["dbos.otelContext"]!["traceparent"]);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"k":"v"}"""), (await dbos.GetWorkflowStatusAsync("trace-1"))!.Attributes));
        lock (spans)
        {
            Assert.Contains(spans, s => s.Source.Name == DbosInstrumentation.ActivitySourceName && s.TraceId == traceId && s.Tags.Any(t => t.Value == "trace-1"));
        }

        // A row enqueued by the previous release: the trace context alone, at the top level.
        var legacyTrace = ActivityTraceId.CreateRandom();
        var legacyParent = $"00-{legacyTrace.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01";
        await using (var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" }))
        {
            Activity.Current = null;
            await client.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "trace-wf", QueueName = "trace-q", WorkflowId = "legacy-1", Delay = TimeSpan.FromHours(1) }, "b");
        }

        await db.ExecuteAsync(
            $$"""UPDATE {workflow_status} SET attributes = '{"traceparent":"{{legacyParent}}"}', status = 'ENQUEUED', delay_until_epoch_ms = NULL WHERE workflow_uuid = 'legacy-1'""");
        var legacy = await (await dbos.RetrieveWorkflowAsync<string>("legacy-1")).GetResultAsync();
        Assert.Equal("b", legacy);
        Assert.Null((await dbos.GetWorkflowStatusAsync("legacy-1"))!.Attributes);
        lock (spans)
        {
            Assert.Contains(spans, s => s.Source.Name == DbosInstrumentation.ActivitySourceName && s.TraceId == legacyTrace);
        }
    }

    [Theory, BothBackends]
    public async Task Listing_takes_several_values_per_filter_forks_and_parents_and_counts_group_by_columns(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var leaf = dbos.RegisterWorkflow("list-leaf", (WorkflowContext ctx, int x) => Task.FromResult(x));
        var other = dbos.RegisterWorkflow("list-other", (WorkflowContext ctx, int x) => x < 0 ? throw new InvalidOperationException("negative") : Task.FromResult(x));
        var parent = dbos.RegisterWorkflow("list-parent", async (WorkflowContext ctx) => await leaf.RunAsync(1, new StartOptions { WorkflowId = "child-1" }));
        await dbos.LaunchAsync();

        await leaf.RunAsync(1, new StartOptions { WorkflowId = "leaf-1" });
        await leaf.RunAsync(2, new StartOptions { WorkflowId = "leaf-2", AuthenticatedUser = "u1" });
        await other.RunAsync(3, new StartOptions { WorkflowId = "other-1", AuthenticatedUser = "u2" });
        await Assert.ThrowsAsync<WorkflowFailedException>(() => other.RunAsync(-1, new StartOptions { WorkflowId = "other-bad" }));
        await parent.RunAsync(new StartOptions { WorkflowId = "parent-1" });
        // Forked to a version nobody runs here: it stays ENQUEUED, which is all the filters need.
        await dbos.ForkWorkflowAsync("leaf-1", 0, new ForkOptions { NewWorkflowId = "fork-1", ApplicationVersion = "v2" });

        async Task<string[]> IdsAsync(ListWorkflowsOptions options) =>
            (await dbos.ListWorkflowsAsync(options)).Select(w => w.WorkflowId).Order(StringComparer.Ordinal).ToArray();

        Assert.Equal(["child-1", "fork-1", "leaf-1", "leaf-2", "other-1", "other-bad", "parent-1"], await IdsAsync(new ListWorkflowsOptions()));
        Assert.Equal(["other-1", "other-bad", "parent-1"], await IdsAsync(new ListWorkflowsOptions { Names = ["list-other", "list-parent"] }));
        Assert.Equal(["other-1", "other-bad", "parent-1"], await IdsAsync(new ListWorkflowsOptions { Name = "list-other", Names = ["list-parent"] }));
        Assert.Equal(["leaf-2", "other-1"], await IdsAsync(new ListWorkflowsOptions { AuthenticatedUsers = ["u1", "u2"] }));
        Assert.Equal(["fork-1"], await IdsAsync(new ListWorkflowsOptions { ForkedFrom = "leaf-1" }));
        Assert.Equal(["child-1"], await IdsAsync(new ListWorkflowsOptions { HasParent = true }));
        Assert.DoesNotContain("child-1", await IdsAsync(new ListWorkflowsOptions { HasParent = false }));
        Assert.Equal(["fork-1"], await IdsAsync(new ListWorkflowsOptions { ApplicationVersions = ["v2", "v3"] }));
        Assert.Equal(7, (await IdsAsync(new ListWorkflowsOptions { ApplicationVersions = ["v2"], ApplicationVersion = "test-version" })).Length);
        Assert.Equal(["leaf-1"], await IdsAsync(new ListWorkflowsOptions { ExecutorIds = ["local", "elsewhere"], WorkflowIds = ["leaf-1"] }));
        Assert.Empty(await IdsAsync(new ListWorkflowsOptions { ExecutorIds = ["elsewhere"] }));
        Assert.Equal(["other-bad"], await IdsAsync(new ListWorkflowsOptions { Status = [WorkflowState.Error, WorkflowState.Cancelled] }));

        var total = Assert.Single(await dbos.CountWorkflowsAsync());
        Assert.Equal(7, total.Count);
        Assert.Null(total.Name);
        Assert.Equal(0, Assert.Single(await dbos.CountWorkflowsAsync(new ListWorkflowsOptions { Names = ["nothing"] })).Count);

        var byName = await dbos.CountWorkflowsAsync(groupBy: WorkflowGrouping.Name);
        Assert.Equal([("list-leaf", 4L), ("list-other", 2L), ("list-parent", 1L)], byName.Select(c => (c.Name!, c.Count)));
        var byStatusAndName = await dbos.CountWorkflowsAsync(new ListWorkflowsOptions { Names = ["list-other"] }, WorkflowGrouping.Status | WorkflowGrouping.Name);
        Assert.Equal(
            [(WorkflowState.Error, "ERROR", "list-other", 1L), (WorkflowState.Success, "SUCCESS", "list-other", 1L)],
            byStatusAndName.Select(c => (c.State!.Value, c.StatusText!, c.Name!, c.Count)));
        var byVersion = await dbos.CountWorkflowsAsync(groupBy: WorkflowGrouping.ApplicationVersion | WorkflowGrouping.QueueName);
        Assert.Contains(byVersion, c => c is { ApplicationVersion: "v2", QueueName: "_dbos_internal_queue", Count: 1 });
        Assert.Contains(byVersion, c => c is { ApplicationVersion: "test-version", QueueName: null, Count: 6 });

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });
        Assert.Equal(byName, await client.CountWorkflowsAsync(groupBy: WorkflowGrouping.Name));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.CountWorkflowsAsync(groupBy: (WorkflowGrouping)64));
    }

    [Theory, BothBackends]
    public async Task A_workflow_of_several_arguments_stores_them_as_positional_arguments_and_runs_directly_queued_as_a_child_and_from_a_client(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        dbos.RegisterQueue("args-q");
        var three = dbos.RegisterWorkflow("args-3", (WorkflowContext ctx, int count, string label, bool loud) =>
            Task.FromResult(loud ? $"{label.ToUpperInvariant()}x{count}" : $"{label}x{count}"));
        var seen = new List<string>();
        var twoVoid = dbos.RegisterWorkflow("args-2-void", (WorkflowContext ctx, string a, long b) =>
        {
            lock (seen)
            {
                seen.Add($"{a}{b}");
            }

            return Task.CompletedTask;
        });
        var four = dbos.RegisterWorkflow("args-4", async (WorkflowContext ctx, int a, int b, int c, int d) =>
            await three.RunAsync(a + b + c + d, "child", false, new StartOptions { WorkflowId = ctx.WorkflowId + "-child" }));
        await dbos.LaunchAsync();

        Assert.Equal("HIx2", await three.RunAsync(2, "hi", true, new StartOptions { WorkflowId = "args-direct" }));
        var queued = await three.StartAsync(3, "q", false, new StartOptions { WorkflowId = "args-queued", Queue = "args-q" });
        Assert.Equal("qx3", await queued.GetResultAsync());
        await twoVoid.RunAsync("n", 7, new StartOptions { WorkflowId = "args-void" });
        Assert.Equal(["n7"], seen);
        Assert.Equal("childx10", await four.RunAsync(1, 2, 3, 4, new StartOptions { WorkflowId = "args-four" }));

        var inputs = await db.QueryAsync(
            "SELECT workflow_uuid, inputs FROM {workflow_input} WHERE workflow_uuid IN ('args-direct', 'args-void', 'args-four', 'args-four-child') ORDER BY workflow_uuid",
            r => (r.GetString(0), r.GetString(1)));
        Assert.Equal(
            [
                ("args-direct", """{"positionalArgs":[2,"hi",true]}"""),
                ("args-four", """{"positionalArgs":[1,2,3,4]}"""),
                ("args-four-child", """{"positionalArgs":[10,"child",false]}"""),
                ("args-void", """{"positionalArgs":["n",7]}"""),
            ],
            inputs);
        var direct = await dbos.GetWorkflowStatusAsync("args-direct");
        Assert.Equal(2, direct!.GetInput<int>());
        Assert.Equal(("hi", true, null), (direct.GetInput<string>(1), direct.GetInput<bool>(2), direct.GetInput<string>(3)));

        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });
        var fromClient = await client.EnqueueAsync<int, string, bool, string>(new EnqueueOptions { WorkflowName = "args-3", QueueName = "args-q", WorkflowId = "args-client" }, 5, "c", true);
        Assert.Equal("Cx5", await fromClient.GetResultAsync());
        var fromApp = await dbos.EnqueueAsync<string, long, object?>(new EnqueueOptions { WorkflowName = "args-2-void", QueueName = "args-q" }, "m", 8);
        await fromApp.GetResultAsync();
        Assert.Contains("m8", seen);

        // A re-execution decodes the stored arguments (here: a fork from the start).
        await dbos.ForkWorkflowAsync("args-direct", 0, new ForkOptions { NewWorkflowId = "args-fork" });
        Assert.Equal("HIx2", await (await dbos.RetrieveWorkflowAsync<string>("args-fork")).GetResultAsync());

        // The wrong number of arguments, or named ones (as DBOS for Python's kwargs), fail the workflow with a clear error.
        var wrongCount = await client.EnqueueAsync<int, string, string>(new EnqueueOptions { WorkflowName = "args-3", QueueName = "args-q", WorkflowId = "args-two" }, 1, "x");
        var countError = await Assert.ThrowsAsync<WorkflowFailedException>(() => wrongCount.GetResultAsync());
        Assert.Contains("takes 3 arguments, and 2 positional arguments were given", countError.Message, StringComparison.Ordinal);
        await client.EnqueueAsync<int, string, bool, string>(new EnqueueOptions { WorkflowName = "args-3", QueueName = "args-q", WorkflowId = "args-named", Delay = TimeSpan.FromHours(1) }, 1, "x", true);
        await db.ExecuteAsync("""UPDATE {workflow_input} SET inputs = '{"positionalArgs":[1,"x"],"namedArgs":{"loud":true,"extra":1}}' WHERE workflow_uuid = 'args-named'""");
        await db.ExecuteAsync("UPDATE {workflow_status} SET status = 'ENQUEUED', delay_until_epoch_ms = NULL WHERE workflow_uuid = 'args-named'");
        var named = await client.RetrieveWorkflowAsync<string>("args-named");
        var namedError = await Assert.ThrowsAsync<WorkflowFailedException>(() => named.GetResultAsync());
        Assert.Contains("named arguments (loud, extra)", namedError.Message, StringComparison.Ordinal);
    }
}
