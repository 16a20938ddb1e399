using Dbos.Tests.Infrastructure;
using Npgsql;

namespace Dbos.Tests;

/// <summary>Scenarios 24–28, 54 and 55: messages, events and streams, in-process and across applications.</summary>
public class CommunicationTests
{
    private static DbosClient Client(TestDatabase db, TimeSpan? pollingInterval = null) => DbosClient.Create(new DbosClientOptions
    {
        SystemDatabaseUrl = db.Url,
        SystemDatabaseSchema = db.Schema,
        PollingInterval = pollingInterval ?? TimeSpan.FromMilliseconds(50),
    });

    [Theory, BothBackends]
    public async Task Messages_are_delivered_once_in_order_per_topic_and_a_timeout_returns_null(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var inbox = dbos.RegisterWorkflow("inbox", async (WorkflowContext ctx, int count) =>
        {
            var received = new List<string?>();
            for (var i = 0; i < count; i++)
            {
                received.Add(await ctx.RecvAsync<string>("orders", TimeSpan.FromSeconds(10)));
            }

            received.Add(await ctx.RecvAsync<string>("orders", TimeSpan.FromMilliseconds(100)));
            return string.Join(",", received.Select(r => r ?? "<none>"));
        });
        await dbos.LaunchAsync();

        // A message sent before the receiver asks for it waits for it.
        var handle = await inbox.StartAsync(3, new StartOptions { WorkflowId = "inbox-1" });
        await dbos.SendAsync("inbox-1", "first", "orders");
        await dbos.SendAsync("inbox-1", "second", "orders");
        await dbos.SendAsync("inbox-1", "elsewhere", "other-topic");
        await Task.Delay(100);
        await dbos.SendAsync("inbox-1", "third", "orders");

        Assert.Equal("first,second,third,<none>", await handle.GetResultAsync());
        var steps = await dbos.ListWorkflowStepsAsync("inbox-1");
        Assert.Equal(
            ["DBOS.recv", "DBOS.sleep", "DBOS.recv", "DBOS.sleep", "DBOS.recv", "DBOS.sleep", "DBOS.recv", "DBOS.sleep"],
            steps.Select(s => s.Name));
        Assert.Equal("\"second\"", steps[2].RawOutput);
        Assert.Null(steps[6].RawOutput);
        var rows = await db.QueryAsync(
            "SELECT message, consumed, consumed_by_function_id, topic, serialization FROM {notifications} WHERE destination_uuid = 'inbox-1' ORDER BY created_at_epoch_ms, message",
            r => $"{r.GetString(0)}|{r.GetBoolean(1)}|{(r.IsDBNull(2) ? "-" : r.GetInt32(2).ToString(System.Globalization.CultureInfo.InvariantCulture))}|{r.GetString(3)}|{r.GetString(4)}");
        Assert.Contains("\"elsewhere\"|False|-|other-topic|portable_json", rows);
        Assert.Contains("\"second\"|True|2|orders|portable_json", rows);
    }

    [Theory, BothBackends]
    public async Task Topics_are_separate_queues_and_the_default_topic_is_one_of_them(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var receiver = dbos.RegisterWorkflow("receiver", async (WorkflowContext ctx, int unused) =>
        {
            await gate.Task;
            var b = await ctx.RecvAsync<string>("T", TimeSpan.FromSeconds(5));
            var a = await ctx.RecvAsync<string>(timeout: TimeSpan.FromSeconds(5));
            var c = await ctx.RecvAsync<string>(timeout: TimeSpan.FromSeconds(5));
            return $"{b}{a}{c}";
        });
        var sender = dbos.RegisterWorkflow("sender", async (WorkflowContext ctx, string destination) =>
        {
            await ctx.SendAsync(destination, "a");
            await ctx.SendAsync(destination, "b", "T");
            await ctx.SendAsync(destination, "c");
            return 3;
        });
        await dbos.LaunchAsync();

        var handle = await receiver.StartAsync(0, new StartOptions { WorkflowId = "receiver-1" });
        Assert.Equal(3, await sender.RunAsync("receiver-1", new StartOptions { WorkflowId = "sender-1" }));
        gate.SetResult();

        Assert.Equal("bac", await handle.GetResultAsync());
        var sends = await dbos.ListWorkflowStepsAsync("sender-1");
        Assert.Equal(["DBOS.send", "DBOS.send", "DBOS.send"], sends.Select(s => s.Name));
        Assert.Equal(3, await db.CountAsync("SELECT count(*) FROM {notifications} WHERE topic = '__null__topic__' OR topic = 'T'"));
    }

    [Theory, BothBackends]
    public async Task A_send_with_an_idempotency_key_is_delivered_once_however_often_it_is_retried(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var collector = dbos.RegisterWorkflow("collector", async (WorkflowContext ctx, int count) =>
        {
            var all = new List<int?>();
            for (var i = 0; i < count; i++)
            {
                all.Add(await ctx.RecvAsync<int?>(timeout: TimeSpan.FromMilliseconds(300)));
            }

            return all;
        });
        await dbos.LaunchAsync();
        var handle = await collector.StartAsync(3, new StartOptions { WorkflowId = "collector-1" });

        await using var client = Client(db);
        for (var retry = 0; retry < 3; retry++)
        {
            await client.SendAsync("collector-1", 42, idempotencyKey: "payment-7");
        }

        await client.SendAsync("collector-1", 43, idempotencyKey: "payment-8");
        Assert.Equal([42, 43, null], await handle.GetResultAsync());
        Assert.Equal(2, await db.CountAsync("SELECT count(*) FROM {notifications} WHERE destination_uuid = 'collector-1'"));
    }

    [Theory, BothBackends]
    public async Task Sending_to_a_workflow_that_does_not_exist_fails_clearly_inside_and_outside_workflows(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = 0;
        var sender = dbos.RegisterWorkflow("lost-sender", async (WorkflowContext ctx, string destination) =>
        {
            Interlocked.Increment(ref runs);
            try
            {
                await ctx.SendAsync(destination, "hello");
                return "sent";
            }
            catch (WorkflowNotFoundException e)
            {
                return e.Message;
            }
        });
        await dbos.LaunchAsync();

        var outside = await Assert.ThrowsAsync<WorkflowNotFoundException>(() => dbos.SendAsync("nobody", "hi"));
        Assert.Contains("'nobody'", outside.Message, StringComparison.Ordinal);
        await using var client = Client(db);
        await Assert.ThrowsAsync<WorkflowNotFoundException>(() => client.SendAsync("nobody", "hi"));

        var inside = await sender.RunAsync("nobody-either", new StartOptions { WorkflowId = "lost-1" });
        Assert.Contains("'nobody-either'", inside, StringComparison.Ordinal);
        var step = Assert.Single(await dbos.ListWorkflowStepsAsync("lost-1"));
        Assert.Equal(("DBOS.send", "WorkflowNotFoundException"), (step.Name, step.Error?.Name));

        // Replaying the workflow (a fork from the start of its send) gives the same recorded error without sending.
        var fork = await dbos.ForkWorkflowAsync("lost-1", 1);
        Assert.Equal(inside, await fork.GetResultAsync<string>());
        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {notifications}"));
    }

    [Theory, BothBackends]
    public async Task Events_return_the_latest_value_wait_until_set_and_return_null_after_the_timeout(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var proceed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var publisher = dbos.RegisterWorkflow("publisher", async (WorkflowContext ctx, int unused) =>
        {
            await ctx.SetEventAsync("status", "started");
            await proceed.Task;
            await ctx.SetEventAsync("status", "paid");
            await ctx.SetEventAsync("total", 12.5m);
            return 0;
        });
        var watcher = dbos.RegisterWorkflow("watcher", async (WorkflowContext ctx, string target) =>
            $"{await ctx.GetEventAsync<string>(target, "status")}/{await ctx.GetEventAsync<decimal?>(target, "total")}/{await ctx.GetEventAsync<string>(target, "missing", TimeSpan.FromMilliseconds(50)) ?? "<none>"}");
        await dbos.LaunchAsync();

        await using var client = Client(db);
        var waitingForTotal = client.GetEventAsync<decimal?>("pub-1", "total", TimeSpan.FromSeconds(20));
        var handle = await publisher.StartAsync(0, new StartOptions { WorkflowId = "pub-1" });
        await Eventually.HoldsAsync(async () => await client.GetEventAsync<string>("pub-1", "status", TimeSpan.Zero) == "started", "the first value is visible");
        Assert.False(waitingForTotal.IsCompleted);

        proceed.SetResult();
        Assert.Equal(12.5m, await waitingForTotal);
        Assert.Equal("paid", await dbos.GetEventAsync<string>("pub-1", "status"));
        Assert.Null(await client.GetEventAsync<string>("pub-1", "never-set", TimeSpan.FromMilliseconds(100)));
        await handle.GetResultAsync();

        Assert.Equal("paid/12.5/<none>", await watcher.RunAsync("pub-1", new StartOptions { WorkflowId = "watch-1" }));
        var watcherSteps = await dbos.ListWorkflowStepsAsync("watch-1");
        Assert.Equal(["DBOS.getEvent", "DBOS.sleep", "DBOS.getEvent", "DBOS.sleep", "DBOS.getEvent", "DBOS.sleep"], watcherSteps.Select(s => s.Name));

        var history = await db.QueryAsync(
            $"SELECT function_id, key, value FROM {db.Table("workflow_events_history")} WHERE workflow_uuid = 'pub-1' ORDER BY function_id",
            r => $"{r.GetInt32(0)}:{r.GetString(1)}={r.GetString(2)}");
        Assert.Equal(["0:status=\"started\"", "1:status=\"paid\"", "2:total=12.5"], history);
    }

    [Theory, BothBackends]
    public async Task A_stream_is_read_in_order_from_any_offset_by_a_reader_in_another_application_and_ends_when_closed(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var more = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writer = dbos.RegisterWorkflow("writer", async (WorkflowContext ctx, int count) =>
        {
            for (var i = 0; i < count; i++)
            {
                await ctx.WriteStreamAsync("numbers", i * i);
            }

            await more.Task;
            await ctx.WriteStreamAsync("numbers", -1);
            await ctx.CloseStreamAsync("numbers");
            await ctx.WriteStreamAsync("unclosed", "x");
            return count;
        });
        await dbos.LaunchAsync();

        await using var client = Client(db);
        var handle = await writer.StartAsync(4, new StartOptions { WorkflowId = "writer-1" });
        var reading = ReadAllAsync(client.ReadStreamAsync<int>("writer-1", "numbers"));
        await Eventually.HoldsAsync(async () => await db.CountAsync($"SELECT count(*) FROM {db.Table("streams")} WHERE workflow_uuid = 'writer-1'") == 4, "four values are written");
        Assert.False(reading.IsCompleted);

        more.SetResult();
        Assert.Equal([0, 1, 4, 9, -1], await reading.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal([4, 9, -1], await ReadAllAsync(dbos.ReadStreamAsync<int>("writer-1", "numbers", fromOffset: 2)));
        await handle.GetResultAsync();

        // A stream its writer never closed ends when the writer's workflow has ended.
        Assert.Equal(["x"], await ReadAllAsync(client.ReadStreamAsync<string>("writer-1", "unclosed")));
        Assert.Empty(await ReadAllAsync(client.ReadStreamAsync<string>("writer-1", "never-written")));
    }

    [Theory, BothBackends]
    public async Task A_workflow_reading_a_stream_records_each_value(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var writer = dbos.RegisterWorkflow("letters", async (WorkflowContext ctx, string text) =>
        {
            foreach (var letter in text)
            {
                await ctx.WriteStreamAsync("letters", letter.ToString());
            }

            await ctx.CloseStreamAsync("letters");
            return text.Length;
        });
        var reader = dbos.RegisterWorkflow("spell", async (WorkflowContext ctx, string source) =>
        {
            var letters = new List<string>();
            await foreach (var letter in ctx.ReadStreamAsync<string>(source, "letters"))
            {
                letters.Add(letter);
            }

            return string.Join("-", letters);
        });
        await dbos.LaunchAsync();

        await writer.RunAsync("abc", new StartOptions { WorkflowId = "letters-1" });
        Assert.Equal("a-b-c", await reader.RunAsync("letters-1", new StartOptions { WorkflowId = "spell-1" }));
        var steps = await dbos.ListWorkflowStepsAsync("spell-1");
        Assert.Equal(["DBOS.readStream:\"a\"", "DBOS.readStream:\"b\"", "DBOS.readStream:\"c\"", "DBOS.readStream:\"__DBOS_STREAM_CLOSED__\""], steps.Select(s => $"{s.Name}:{s.RawOutput}"));
        var writes = await dbos.ListWorkflowStepsAsync("letters-1");
        Assert.Equal(["DBOS.writeStream", "DBOS.writeStream", "DBOS.writeStream", "DBOS.closeStream"], writes.Select(s => s.Name));
    }

    [Theory, BothBackends]
    public async Task A_received_message_is_not_received_again_after_a_restart(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var received = new List<string?>();

        DbosApp Build(bool blockAfterFirst, out Workflow<int, string> workflow)
        {
            var dbos = DbosApp.Create(db.Config());
            workflow = dbos.RegisterWorkflow("two-messages", async (WorkflowContext ctx, int unused) =>
            {
                var first = await ctx.RecvAsync<string>(timeout: TimeSpan.FromSeconds(30));
                lock (received)
                {
                    received.Add(first);
                }

                if (blockAfterFirst)
                {
                    await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
                }

                var second = await ctx.RecvAsync<string>(timeout: TimeSpan.FromSeconds(30));
                return $"{first}+{second}";
            });
            return dbos;
        }

        await using (var first = Build(blockAfterFirst: true, out var workflow))
        {
            await first.LaunchAsync();
            await workflow.StartAsync(0, new StartOptions { WorkflowId = "two-1" });
            await first.SendAsync("two-1", "one");
            await Eventually.HoldsAsync(() => Task.FromResult(received.Count == 1), "the first message is received");
        }

        await using var second = Build(blockAfterFirst: false, out _);
        await second.LaunchAsync();
        await second.SendAsync("two-1", "two");
        Assert.Equal("one+two", await (await second.RetrieveWorkflowAsync<string>("two-1")).GetResultAsync());
        Assert.Equal(["one", "one"], received);
        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {notifications} WHERE consumed = FALSE"));
    }

    [Theory, BothBackends]
    public async Task A_thousand_concurrent_waiters_all_receive_their_message_without_exhausting_connections(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var config = db.Config();
        config.SystemDatabasePoolSize = 8;
        await using var dbos = DbosApp.Create(config);
        var waiter = dbos.RegisterWorkflow("waiter", async (WorkflowContext ctx, int i) => await ctx.RecvAsync<int>("go", TimeSpan.FromMinutes(2)) + i);
        await dbos.LaunchAsync();

        const int count = 1000;
        var handles = new List<WorkflowHandle<int>>();
        for (var i = 0; i < count; i++)
        {
            handles.Add(await waiter.StartAsync(i, new StartOptions { WorkflowId = $"w-{i}" }));
        }

        await using var client = Client(db);
        for (var i = 0; i < count; i++)
        {
            await client.SendAsync($"w-{i}", 1_000_000, "go");
        }

        var results = await Task.WhenAll(handles.Select(h => h.GetResultAsync())).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(Enumerable.Range(1_000_000, count), results);
    }

    [Fact]
    public async Task On_postgres_a_waiter_is_woken_by_a_notification_from_another_process_not_by_polling()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        var config = db.Config();
        config.PollingInterval = TimeSpan.FromHours(1); // Polling alone would never wake anything during this test.
        await using var dbos = DbosApp.Create(config);
        var waiter = dbos.RegisterWorkflow("patient", async (WorkflowContext ctx, int unused) =>
            $"{await ctx.RecvAsync<string>(timeout: TimeSpan.FromHours(1))}/{await ctx.GetEventAsync<string>("announcer", "news", TimeSpan.FromHours(1))}");
        var announcer = dbos.RegisterWorkflow("announcer", async (WorkflowContext ctx, string news) =>
        {
            await ctx.SetEventAsync("news", news);
            return 0;
        });
        await dbos.LaunchAsync();
        var handle = await waiter.StartAsync(0, new StartOptions { WorkflowId = "patient-1" });
        await Eventually.OperationsRecordedAsync(db, "patient-1", 1);

        // The message comes from another client (no in-process signal), straight through SQL.
        await db.ExecuteAsync($"SELECT \"{db.Schema}\".send_message('patient-1', '\"hello\"'::json)");

        // The event is set by a workflow of another application on the same database.
        var otherConfig = db.Config("other");
        otherConfig.PollingInterval = TimeSpan.FromHours(1);
        await using (var other = DbosApp.Create(otherConfig))
        {
            var remoteAnnouncer = other.RegisterWorkflow("announcer", async (WorkflowContext ctx, string news) =>
            {
                await ctx.SetEventAsync("news", news);
                return 0;
            });
            await other.LaunchAsync();
            await Task.Delay(200);
            await remoteAnnouncer.RunAsync("extra", new StartOptions { WorkflowId = "announcer" });
        }

        Assert.Equal("hello/extra", await handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(20)));
        _ = announcer;
    }

    [Fact]
    public async Task A_message_sent_with_the_sql_function_send_message_is_received_by_a_dotnet_workflow()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres);
        await using var dbos = DbosApp.Create(db.Config());
        var receiver = dbos.RegisterWorkflow("sql-receiver", async (WorkflowContext ctx, int unused) =>
        {
            var order = await ctx.RecvAsync<Order>("orders", TimeSpan.FromSeconds(30));
            var plain = await ctx.RecvAsync<string>(timeout: TimeSpan.FromSeconds(30));
            return $"{order!.Id}:{order.Total}:{order.Items.Count}/{plain}";
        });
        await dbos.LaunchAsync();
        var handle = await receiver.StartAsync(0, new StartOptions { WorkflowId = "sql-1" });

        await using var connection = new NpgsqlConnection(TestDatabase.ConnectionString(db.Url));
        await connection.OpenAsync();
        await using (var send = new NpgsqlCommand($"SELECT \"{db.Schema}\".send_message($1, $2::json, $3)", connection))
        {
            send.Parameters.Add(new NpgsqlParameter { Value = "sql-1" });
            send.Parameters.Add(new NpgsqlParameter { Value = """{"id":"o-9","placedAt":"2030-01-01T00:00:00.000Z","total":99.95,"items":[{"sku":"a","quantity":1,"unitPrice":99.95}],"tags":{},"token":"0f8fad5b-d9cb-469f-a165-70867728950e"}""" });
            send.Parameters.Add(new NpgsqlParameter { Value = "orders" });
            await send.ExecuteNonQueryAsync();
        }

        await using (var plain = new NpgsqlCommand($"SELECT \"{db.Schema}\".send_message('sql-1', '\"no topic\"'::json)", connection))
        {
            await plain.ExecuteNonQueryAsync();
        }

        Assert.Equal("o-9:99.95:1/no topic", await handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(20)));
    }

    private static async Task<List<T>> ReadAllAsync<T>(IAsyncEnumerable<T> values)
    {
        var all = new List<T>();
        await foreach (var value in values)
        {
            all.Add(value);
        }

        return all;
    }
}
