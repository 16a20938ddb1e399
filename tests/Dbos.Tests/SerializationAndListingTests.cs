using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

public record LineItem(string Sku, int Quantity, decimal UnitPrice);

public record Order(
    string Id,
    DateTimeOffset PlacedAt,
    decimal Total,
    IReadOnlyList<LineItem> Items,
    Dictionary<string, string?> Tags,
    LineItem? Gift,
    long? Reference,
    Guid Token);

public sealed class Unserializable
{
    public Type Kind { get; init; } = typeof(int);
}

/// <summary>Scenarios 22 and 38: values round-trip exactly, bad values fail before anything is written, and listing.</summary>
public class SerializationAndListingTests
{
    private static Order SampleOrder() => new(
        "o-1",
        new DateTimeOffset(2031, 2, 3, 4, 5, 6, 789, TimeSpan.FromHours(2)),
        12345678901234.5678m,
        [new LineItem("ABC", 2, 0.1m), new LineItem("ÉÈ-漢字", 1, 1e-10m)],
        new Dictionary<string, string?> { ["gift"] = "yes", ["note"] = null },
        null,
        long.MaxValue,
        Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"));

    [Theory, BothBackends]
    public async Task Records_lists_dictionaries_dates_decimals_and_nulls_round_trip_exactly(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var order = SampleOrder();
        await using (var dbos = DbosApp.Create(db.Config()))
        {
            var echo = dbos.RegisterStep("echo", (Order o, CancellationToken _) => Task.FromResult(o));
            var workflow = dbos.RegisterWorkflow("orders", async (WorkflowContext ctx, Order o) => (await echo.RunAsync(o)) with { Gift = o.Items[0] });
            await dbos.LaunchAsync();

            var result = await workflow.RunAsync(order, new StartOptions { WorkflowId = "rt" });
            Assert.Equal(Expected(order), Normalize(result));
        }

        // Another application decodes exactly the same values from the stored text.
        await using var reader = DbosApp.Create(db.Config("reader"));
        await reader.LaunchAsync();
        var fromDatabase = await (await reader.RetrieveWorkflowAsync<Order>("rt")).GetResultAsync();
        Assert.Equal(Expected(order), Normalize(fromDatabase));
        var status = (await reader.GetWorkflowStatusAsync("rt"))!;
        Assert.Equal(Normalize(order), Normalize(status.GetInput<Order>()!));
        Assert.StartsWith("""{"positionalArgs":[{"id":"o-1","placedAt":"2031-02-03T04:05:06.789+02:00","total":12345678901234.5678,""", status.RawInput, StringComparison.Ordinal);
        var step = Assert.Single(await reader.ListWorkflowStepsAsync("rt"));
        Assert.Equal(Normalize(order), Normalize(step.GetOutput<Order>()!));
    }

    [Theory, BothBackends]
    public async Task Big_integers_are_stored_as_decimal_strings_and_read_from_strings_or_numbers(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var twice = dbos.RegisterWorkflow("twice", (WorkflowContext _, System.Numerics.BigInteger n) => Task.FromResult(n * 2));
        await dbos.LaunchAsync();

        var big = System.Numerics.BigInteger.Pow(10, 30) + 7;
        Assert.Equal(big * 2, await twice.RunAsync(big, new StartOptions { WorkflowId = "big" }));
        var status = (await dbos.GetWorkflowStatusAsync("big"))!;
        Assert.Equal("""{"positionalArgs":["1000000000000000000000000000007"]}""", status.RawInput);
        Assert.Equal("\"2000000000000000000000000000014\"", status.RawOutput);
        Assert.Equal(new System.Numerics.BigInteger(42), PortableJsonSerializer.Default.Deserialize("42", typeof(System.Numerics.BigInteger)));
        Assert.Throws<System.Text.Json.JsonException>(() => PortableJsonSerializer.Default.Deserialize("1.5", typeof(System.Numerics.BigInteger)));
    }

    [Fact]
    public async Task Inputs_are_read_back_with_the_configured_serializers_options()
    {
        // A native AOT application's options carry the only metadata there is (a source-generated resolver); here,
        // snake_case names that the default options would not read back.
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var config = db.Config();
        config.Serializer = new PortableJsonSerializer(new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
        });
        await using var dbos = DbosApp.Create(config);
        dbos.RegisterQueue("snake", new QueueOptions { PollingInterval = TimeSpan.FromMilliseconds(50) });
        var echo = dbos.RegisterWorkflow("echo", (WorkflowContext _, LineItem item) => Task.FromResult(item));
        await dbos.LaunchAsync();

        // A queued workflow's input is decoded from the database by the process that dequeues it.
        var item = new LineItem("ABC", 2, 0.25m);
        var handle = await echo.StartAsync(item, new StartOptions { WorkflowId = "snake-1", Queue = "snake" });
        Assert.Equal(item, await handle.GetResultAsync());
        var status = (await dbos.GetWorkflowStatusAsync("snake-1"))!;
        Assert.Equal("""{"positionalArgs":[{"sku":"ABC","quantity":2,"unit_price":0.25}]}""", status.RawInput);
        Assert.Equal(item, status.GetInput<LineItem>());
    }

    private static Order Expected(Order order) => Normalize(order with { Gift = order.Items[0] });

    // Records compare lists and dictionaries by reference; compare them by content instead.
    private static Order Normalize(Order order) => order with
    {
        Items = new ValueList<LineItem>(order.Items),
        Tags = new ValueDictionary(order.Tags),
    };

    private sealed class ValueList<T>(IEnumerable<T> items) : List<T>(items)
    {
        public override bool Equals(object? obj) => obj is IEnumerable<T> other && this.SequenceEqual(other);

        public override int GetHashCode() => Count;
    }

    private sealed class ValueDictionary(Dictionary<string, string?> items) : Dictionary<string, string?>(items)
    {
        public override bool Equals(object? obj) => obj is Dictionary<string, string?> other && Count == other.Count && this.All(kv => other.TryGetValue(kv.Key, out var v) && v == kv.Value);

        public override int GetHashCode() => Count;
    }

    [Theory, BothBackends]
    public async Task An_input_that_cannot_be_serialized_fails_at_start_and_writes_nothing(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var ran = false;
        var workflow = dbos.RegisterWorkflow("picky", (WorkflowContext ctx, Unserializable u) =>
        {
            ran = true;
            return Task.FromResult(1);
        });
        var resultless = dbos.RegisterWorkflow("bad-result", (WorkflowContext ctx, int x) => Task.FromResult(new Unserializable()));
        await dbos.LaunchAsync();

        var ex = await Assert.ThrowsAsync<DbosSerializationException>(() => workflow.StartAsync(new Unserializable(), new StartOptions { WorkflowId = "never" }));
        Assert.Contains("input of workflow 'picky'", ex.Message, StringComparison.Ordinal);
        Assert.False(ran);
        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {workflow_status}"));

        // A result that cannot be serialized fails the workflow with that error, recorded.
        var failed = await Assert.ThrowsAsync<WorkflowFailedException>(() => resultless.RunAsync(1, new StartOptions { WorkflowId = "bad-out" }));
        Assert.Equal(nameof(DbosSerializationException), failed.ErrorName);
        Assert.Contains("output of workflow 'bad-out'", failed.Message, StringComparison.Ordinal);
        Assert.Equal(WorkflowState.Error, (await dbos.GetWorkflowStatusAsync("bad-out"))!.State);
    }

    [Theory, BothBackends]
    public async Task Workflows_list_by_status_name_time_queue_and_page_in_either_order_and_steps_list_with_outputs_and_errors(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var ok = dbos.RegisterWorkflow("ok", (WorkflowContext ctx, int x) => Task.FromResult(x));
        var failing = dbos.RegisterWorkflow("failing", async (WorkflowContext ctx, int x) =>
        {
            await ctx.RunStepAsync("fine", _ => Task.FromResult(x));
            await ctx.RunStepAsync<int>("broken", _ => throw new ArgumentException("no good"));
            return x;
        });
        await dbos.LaunchAsync();

        for (var i = 0; i < 5; i++)
        {
            await ok.RunAsync(i, new StartOptions { WorkflowId = $"ok-{i}" });
            await Task.Delay(5);
        }

        var middle = DateTimeOffset.UtcNow;
        await Task.Delay(20);
        await Assert.ThrowsAsync<WorkflowFailedException>(() => failing.RunAsync(9, new StartOptions { WorkflowId = "bad-1" }));

        var all = await dbos.ListWorkflowsAsync();
        Assert.Equal(["ok-0", "ok-1", "ok-2", "ok-3", "ok-4", "bad-1"], all.Select(w => w.WorkflowId));
        Assert.Equal(3, all[3].GetOutput<int>());
        Assert.Equal(3, all[3].GetInput<int>());

        var errors = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Status = [WorkflowState.Error] });
        var bad = Assert.Single(errors);
        Assert.Equal(("bad-1", "ArgumentException", "no good"), (bad.WorkflowId, bad.Error!.Name, bad.Error.Message));

        Assert.Equal(5, (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = "ok" })).Count);
        Assert.Equal(["bad-1"], (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { StartTime = middle })).Select(w => w.WorkflowId));
        Assert.Equal(5, (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { EndTime = middle })).Count);
        Assert.Equal(
            ["ok-3", "ok-2"],
            (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = "ok", SortDescending = true, Offset = 1, Limit = 2 })).Select(w => w.WorkflowId));
        Assert.Equal(["ok-3", "ok-4", "bad-1"], (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Offset = 3 })).Select(w => w.WorkflowId));
        Assert.Equal(["ok-1", "ok-2"], (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIds = ["ok-2", "ok-1", "nope"] })).Select(w => w.WorkflowId));
        Assert.Equal(["ok-0", "ok-1"], (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIdPrefix = "ok-", Limit = 2 })).Select(w => w.WorkflowId));

        // Another application's workflows are not listed, except by ID.
        await using (var neighbour = DbosApp.Create(db.Config("neighbour")))
        {
            var theirs = neighbour.RegisterWorkflow("theirs", (WorkflowContext ctx, int x) => Task.FromResult(x));
            await neighbour.LaunchAsync();
            await theirs.RunAsync(1, new StartOptions { WorkflowId = "theirs-1" });
            Assert.Equal(["theirs-1"], (await neighbour.ListWorkflowsAsync()).Select(w => w.WorkflowId));
        }

        Assert.Equal(6, (await dbos.ListWorkflowsAsync()).Count);
        Assert.Equal("neighbour", Assert.Single(await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIds = ["theirs-1"] })).ApplicationName);

        var lean = await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { LoadInput = false, LoadOutput = false, Limit = 1 });
        Assert.Equal((null, null), (lean[0].RawInput, lean[0].RawOutput));

        // Queue filter: recovered, resumed and forked workflows run on the internal queue.
        var fork = await dbos.ForkWorkflowAsync("ok-1", 0, new ForkOptions { NewWorkflowId = "ok-1-fork" });
        await fork.GetResultAsync<int>();
        Assert.Equal(["ok-1-fork"], (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { QueueName = "_dbos_internal_queue" })).Select(w => w.WorkflowId));

        var steps = await dbos.ListWorkflowStepsAsync("bad-1");
        Assert.Equal(["fine", "broken"], steps.Select(s => s.Name));
        Assert.Equal((9, null), (steps[0].GetOutput<int>(), steps[0].Error));
        Assert.Equal(("ArgumentException", "no good"), (steps[1].Error!.Name, steps[1].Error!.Message));
        Assert.Null(steps[1].RawOutput);
        Assert.All(steps, s => Assert.True(s.StartedAt <= s.CompletedAt));
    }

    [Theory, BothBackends]
    public async Task Rows_in_a_format_this_application_cannot_read_still_list_with_their_raw_text(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var workflow = dbos.RegisterWorkflow("plain", (WorkflowContext ctx, int x) => Task.FromResult(x));
        await dbos.LaunchAsync();
        await workflow.RunAsync(1, new StartOptions { WorkflowId = "foreign" });
        await db.ExecuteAsync("UPDATE {workflow_status} SET serialization = 'py_pickle' WHERE workflow_uuid = 'foreign'");
        await db.ExecuteAsync("UPDATE {workflow_output} SET output = 'gASVBQAAAAAAAAB9lC4=' WHERE workflow_uuid = 'foreign'");

        var listed = Assert.Single(await dbos.ListWorkflowsAsync());
        Assert.Equal(("py_pickle", "gASVBQAAAAAAAAB9lC4="), (listed.Serialization, listed.RawOutput));
        var ex = Assert.Throws<DbosSerializationException>(() => listed.GetOutput<int>());
        Assert.Contains("'py_pickle'", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<DbosSerializationException>(async () => await (await dbos.RetrieveWorkflowAsync<int>("foreign")).GetResultAsync());
    }
}
