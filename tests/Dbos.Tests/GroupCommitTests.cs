using Dbos.SystemDatabase;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Operation records written together (group commit on Postgres, the combined writer on SQLite): a record that cannot be
/// written fails alone, with its own outcome, and its batch-mates are written and durable.
/// </summary>
public class GroupCommitTests
{
    [Theory, BothBackends]
    public async Task Batch_mates_of_failing_records_are_written_and_each_failing_record_gets_its_own_outcome(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hold = dbos.RegisterWorkflow("hold", async (WorkflowContext ctx, int _) =>
        {
            await gate.Task;
            return ctx.WorkflowId;
        });
        await dbos.LaunchAsync();
        var handles = new List<WorkflowHandle<string>>();
        foreach (var id in new[] { "gc-a", "gc-b", "gc-lost" })
        {
            handles.Add(await hold.StartAsync(0, new StartOptions { WorkflowId = id }));
        }

        var database = dbos.Engine.Database;
        var owners = (await database.GetOwnershipAsync(["gc-a", "gc-b", "gc-lost"], CancellationToken.None)).ToDictionary(r => r.WorkflowId, r => r.OwnerXid!);
        var combinedBefore = database.CombinedOperationRecords;

        Task<int> Record(string workflowId, int functionId, string owner, string name = "step") =>
            database.RecordOperationAsync(workflowId, functionId, name, "\"out\"", null, null, 1, 2, "portable_json", owner, CancellationToken.None);

        // Issued without awaiting, so most of them wait for the first writes and go out together.
        var good = new List<(string Id, int FunctionId, Task<int> Written)>();
        for (var i = 0; i < 8; i++)
        {
            good.Add((i % 2 == 0 ? "gc-a" : "gc-b", 100 + i, Record(i % 2 == 0 ? "gc-a" : "gc-b", 100 + i, owners[i % 2 == 0 ? "gc-a" : "gc-b"])));
        }

        var duplicate = Record("gc-a", 100, owners["gc-a"]);
        var notOwned = Record("gc-lost", 100, "another-execution");
        var missing = Record("gc-no-such-workflow", 100, owners["gc-a"]);
        for (var i = 8; i < 40; i++)
        {
            good.Add((i % 2 == 0 ? "gc-a" : "gc-b", 100 + i, Record(i % 2 == 0 ? "gc-a" : "gc-b", 100 + i, owners[i % 2 == 0 ? "gc-a" : "gc-b"])));
        }

        // The duplicate races the first record of the same operation (that one may still be in flight when the duplicate's
        // batch goes out): exactly one of the two is written, whichever commits first.
        Assert.Equal(1, await good[0].Written + await duplicate);
        Assert.All(await Task.WhenAll(good.Skip(1).Select(g => g.Written)), written => Assert.Equal(1, written));
        Assert.Equal(0, await notOwned);
        Assert.Equal(0, await missing);
        if (backend == Backend.Postgres)
        {
            Assert.True(database.CombinedOperationRecords > combinedBefore, "no records were written together");
        }

        // A record the database refuses with an error (too long for operation_outputs' index on function_name, on
        // Postgres) makes its batch fail: each record is then written alone, and only that one gets the error.
        var first = Record("gc-a", 300, owners["gc-a"]);
        var second = Record("gc-b", 300, owners["gc-b"]);
        var beforeTooLong = Enumerable.Range(301, 10).Select(f => (Id: f % 2 == 0 ? "gc-a" : "gc-b", FunctionId: f)).ToList();
        var mates = beforeTooLong.Select(g => Record(g.Id, g.FunctionId, owners[g.Id])).ToList();
        var tooLong = Record("gc-b", 400, owners["gc-b"], name: RandomText(12_000));
        mates.Add(Record("gc-a", 311, owners["gc-a"]));
        Assert.Equal(new[] { 1, 1 }, await Task.WhenAll(first, second));
        Assert.All(await Task.WhenAll(mates), written => Assert.Equal(1, written));
        if (backend == Backend.Postgres)
        {
            await Assert.ThrowsAsync<ArgumentException>(() => tooLong);
        }
        else
        {
            Assert.Equal(1, await tooLong);
        }

        good.AddRange(beforeTooLong.Select(g => (g.Id, g.FunctionId, Task.FromResult(1))));
        good.AddRange([("gc-a", 300, first), ("gc-b", 300, second), ("gc-a", 311, first)]);

        // Every good record is durable (read back on other connections), and nothing was written for the refused ones.
        foreach (var id in new[] { "gc-a", "gc-b" })
        {
            var recorded = (await database.GetOperationsAsync(id, CancellationToken.None)).Select(o => o.FunctionId).Where(f => f < 400).ToHashSet();
            Assert.Equal(good.Where(g => g.Id == id).Select(g => g.FunctionId).ToHashSet(), recorded);
        }

        Assert.Empty(await database.GetOperationsAsync("gc-lost", CancellationToken.None));
        Assert.Empty(await database.GetOperationsAsync("gc-no-such-workflow", CancellationToken.None));

        gate.SetResult();
        foreach (var handle in handles)
        {
            Assert.Equal(handle.WorkflowId, await handle.GetResultAsync());
        }
    }

    [Theory, BothBackends]
    public async Task Concurrent_workflows_whose_steps_are_written_together_record_every_step_once(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var runs = 0;
        var workflow = dbos.RegisterWorkflow("ten", async (WorkflowContext ctx, int n) =>
        {
            var sum = 0;
            for (var i = 0; i < 10; i++)
            {
                sum += await ctx.RunStepAsync("s", _ =>
                {
                    Interlocked.Increment(ref runs);
                    return Task.FromResult(i);
                });
            }

            return sum + n;
        });
        await dbos.LaunchAsync();

        var results = await Task.WhenAll(Enumerable.Range(0, 64).Select(n => workflow.RunAsync(n, new StartOptions { WorkflowId = $"gc-{n}" })));

        Assert.Equal(Enumerable.Range(0, 64).Select(n => n + 45), results);
        Assert.Equal(640, runs);
        Assert.Equal(640L, await db.CountAsync("SELECT count(*) FROM {operation_outputs} WHERE workflow_uuid LIKE 'gc-%'"));
        if (backend == Backend.Postgres)
        {
            Assert.True(dbos.Engine.Database.CombinedOperationRecords > 0, "no steps were written together");
        }
    }

    [Theory, BothBackends]
    public async Task Completions_written_together_each_get_their_own_outcome_and_a_refused_one_leaves_its_row_unchanged(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hold = dbos.RegisterWorkflow("hold", async (WorkflowContext ctx, int _) =>
        {
            await gate.Task;
            return ctx.WorkflowId;
        });
        await dbos.LaunchAsync();
        var ids = Enumerable.Range(0, 40).Select(i => $"gcc-{i}").Append("gcc-lost").ToArray();
        foreach (var id in ids)
        {
            await hold.StartAsync(0, new StartOptions { WorkflowId = id });
        }

        var database = dbos.Engine.Database;
        var owners = (await database.GetOwnershipAsync(ids, CancellationToken.None)).ToDictionary(r => r.WorkflowId, r => r.OwnerXid!);
        var combinedBefore = database.CombinedCompletions;

        Task<bool> Complete(string workflowId, string owner, string status = "SUCCESS") =>
            database.CompleteWorkflowAsync(workflowId, owner, status, $"\"done {workflowId}\"", status == "ERROR" ? "\"failed\"" : null, CancellationToken.None);

        // Issued without awaiting, so most of them wait for the first writes and go out together, with the refused ones
        // in their batches: a wrong owner, a workflow that does not exist, and a second completion of the same workflow.
        var good = new List<(string Id, string Status, Task<bool> Written)>();
        for (var i = 0; i < 40; i++)
        {
            var status = i % 5 == 0 ? "ERROR" : "SUCCESS";
            good.Add((ids[i], status, Complete(ids[i], owners[ids[i]], status)));
            if (i == 10)
            {
                good.Add(("gcc-lost", "PENDING", Complete("gcc-lost", "another-execution")));
                good.Add(("gcc-no-such-workflow", "missing", Complete("gcc-no-such-workflow", owners[ids[0]])));
            }
        }

        var again = Complete(ids[3], owners[ids[3]]);
        Assert.True(await good[3].Written ^ await again, "exactly one of two completions of the same workflow is written");
        foreach (var (id, status, written) in good.Where(g => g.Id != ids[3]))
        {
            Assert.Equal(status is "SUCCESS" or "ERROR", await written);
        }

        if (backend == Backend.Postgres)
        {
            Assert.True(database.CombinedCompletions > combinedBefore, "no completions were written together");
        }

        // Each written completion is durable with its own status and output; the refused one left its row pending and owned.
        foreach (var (id, status, _) in good.Where(g => g.Id.StartsWith("gcc-", StringComparison.Ordinal) && g.Status != "missing"))
        {
            var outcome = await database.GetOutcomeAsync(id, CancellationToken.None);
            Assert.NotNull(outcome);
            Assert.Equal(status, outcome.Status);
            if (status == "PENDING")
            {
                Assert.Null(outcome.Output);
                Assert.Equal(owners[id], (await database.GetOwnershipAsync([id], CancellationToken.None)).Single().OwnerXid);
            }
            else
            {
                Assert.Equal($"\"done {id}\"", outcome.Output);
                Assert.Equal(status == "ERROR" ? "\"failed\"" : null, outcome.Error);
            }
        }

        Assert.Null(await database.GetOutcomeAsync("gcc-no-such-workflow", CancellationToken.None));
        Assert.Equal(40L, await db.CountAsync("SELECT count(*) FROM {workflow_output} WHERE workflow_uuid LIKE 'gcc-%'"));
        gate.SetResult();
    }

    [Theory, BothBackends]
    public async Task Direct_starts_written_together_each_create_their_row_or_find_the_existing_one(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        await dbos.LaunchAsync();
        var database = dbos.Engine.Database;
        var now = DateTimeOffset.UtcNow;
        NewWorkflowRow Row(string id, string owner, string input) =>
            NewWorkflowRow.Create(id, "gc-start", input, "portable_json", now, "app", "v1", "executor", owner: owner, timeout: TimeSpan.FromMinutes(5));

        // A row that exists already, created by another execution: a start of the same ID in a batch finds it, unchanged.
        Assert.True((await database.StartWorkflowAsync(Row("gcs-existing", "first-owner", "[\"first\"]"), CancellationToken.None)).Inserted);
        var combinedBefore = database.CombinedStarts;

        // Issued without awaiting, so most of them wait for the first writes and go out together.
        var starts = Enumerable.Range(0, 40)
            .Select(i => (Id: $"gcs-{i}", Start: database.StartWorkflowAsync(Row($"gcs-{i}", $"owner-{i}", $"[{i}]"), CancellationToken.None)))
            .Append((Id: "gcs-existing", Start: database.StartWorkflowAsync(Row("gcs-existing", "second-owner", "[\"second\"]"), CancellationToken.None)))
            .ToList();
        foreach (var (id, start) in starts)
        {
            var result = await start;
            Assert.Equal(id != "gcs-existing", result.Inserted);
            Assert.Equal("PENDING", result.Status);
            Assert.Equal("gc-start", result.Name);
        }

        if (backend == Backend.Postgres)
        {
            Assert.True(database.CombinedStarts > combinedBefore, "no starts were written together");
        }

        // Each new row is owned by its own start, with its own input; the existing row kept its owner and its input.
        var owners = (await database.GetOwnershipAsync([.. starts.Select(s => s.Id)], CancellationToken.None)).ToDictionary(r => r.WorkflowId, r => r.OwnerXid);
        for (var i = 0; i < 40; i++)
        {
            Assert.Equal($"owner-{i}", owners[$"gcs-{i}"]);
            Assert.Equal(1L, await db.CountAsync($"SELECT count(*) FROM {{workflow_input}} WHERE workflow_uuid = 'gcs-{i}' AND inputs = '[{i}]'"));
        }

        Assert.Equal("first-owner", owners["gcs-existing"]);
        Assert.Equal(1L, await db.CountAsync("SELECT count(*) FROM {workflow_input} WHERE workflow_uuid = 'gcs-existing' AND inputs = '[\"first\"]'"));
    }

    private static string RandomText(int length)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++)
        {
            chars[i] = (char)('a' + Random.Shared.Next(26));
        }

        return new string(chars);
    }
}
