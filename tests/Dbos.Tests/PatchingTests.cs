using Dbos.Tests.Infrastructure;

namespace Dbos.Tests;

/// <summary>
/// Patches (<see cref="WorkflowContext.PatchAsync"/>, <see cref="WorkflowContext.DeprecatePatchAsync"/>): code changed
/// while executions of the old code are pending. The marker rows are the TypeScript SDK's (<c>DBOS.patch-NAME</c>).
/// </summary>
public class PatchingTests
{
    private static async Task<string[]> ReadLedgerAsync(string path) => File.Exists(path) ? await File.ReadAllLinesAsync(path) : [];

    private static Task<List<string>> OperationsAsync(TestDatabase db, string workflowId) =>
        db.QueryAsync(
            $"SELECT function_id, function_name FROM {{operation_outputs}} WHERE workflow_uuid = '{workflowId}' ORDER BY function_id",
            r => $"{r.GetInt32(0)}:{r.GetString(1)}");

    private static Dictionary<string, string?> Variant(TestDatabase db, string ledger, string variant, bool block = false)
    {
        var environment = db.WorkerEnvironment(ledger);
        environment["DBOS_TEST_PATCH"] = variant;
        if (block)
        {
            environment["DBOS_TEST_BLOCK_AFTER"] = "2";
        }

        return environment;
    }

    private static async Task<string> RunAsync(Dictionary<string, string?> environment, string directory, params string[] arguments)
    {
        await using var worker = WorkerProcess.Start(environment, directory, arguments);
        var result = await worker.WaitForLineAsync("result ");
        Assert.Equal(0, await worker.WaitForExitAsync());
        return result;
    }

    private static async Task CrashAfterStep2Async(Dictionary<string, string?> environment, string directory, string workflowId)
    {
        await using var worker = WorkerProcess.Start(environment, directory, "run", "patchable", workflowId);
        await worker.WaitForLineAsync("checkpointed 2");
        worker.Kill();
    }

    [Theory, BothBackends]
    public async Task Killed_old_code_resumes_on_the_old_branch_under_patched_code_new_executions_take_the_patch_and_a_deprecated_patch_skips_its_marker(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var directory = db.Directory;

        // Old code, killed after its second step; the patched build recovers it (same version, PATCHING_ENABLED) on the old branch.
        var oldLedger = Path.Combine(directory, "old.txt");
        await CrashAfterStep2Async(Variant(db, oldLedger, "old", block: true), directory, "before-patch");
        Assert.Equal(["step1", "step2"], await ReadLedgerAsync(oldLedger));
        Assert.Equal("result \"p:old:60\"", await RunAsync(Variant(db, oldLedger, "patched"), directory, "await", "before-patch"));
        Assert.Equal(["step1", "step2", "step3"], await ReadLedgerAsync(oldLedger));
        Assert.Equal(["0:step", "1:step", "2:step"], await OperationsAsync(db, "before-patch"));
        var versions = await db.QueryAsync("SELECT DISTINCT application_version FROM {workflow_status}", r => r.GetString(0));
        Assert.Equal(["PATCHING_ENABLED"], versions);

        // A new execution of the patched code takes the patch and records its marker where the patch is called.
        var newLedger = Path.Combine(directory, "new.txt");
        Assert.Equal("result \"p:new:240\"", await RunAsync(Variant(db, newLedger, "patched"), directory, "run", "patchable", "after-patch"));
        Assert.Equal(["step1", "step20", "step3"], await ReadLedgerAsync(newLedger));
        Assert.Equal(["0:step", "1:DBOS.patch-fix", "2:step", "3:step"], await OperationsAsync(db, "after-patch"));
        var marker = await db.QueryAsync(
            "SELECT output IS NULL, error IS NULL, serialization IS NULL, child_workflow_id IS NULL, started_at_epoch_ms = completed_at_epoch_ms " +
            "FROM {operation_outputs} WHERE workflow_uuid = 'after-patch' AND function_id = 1",
            r => (r.GetBoolean(0), r.GetBoolean(1), r.GetBoolean(2), r.GetBoolean(3), r.GetBoolean(4)));
        Assert.Equal((true, true, true, true, true), Assert.Single(marker));

        // Patched code killed after the patched step; the build with the deprecated patch skips the marker and goes on.
        var deprecatedLedger = Path.Combine(directory, "deprecated.txt");
        await CrashAfterStep2Async(Variant(db, deprecatedLedger, "patched", block: true), directory, "patched-then-deprecated");
        Assert.Equal(["step1", "step20"], await ReadLedgerAsync(deprecatedLedger));
        Assert.Equal("result \"p:new:240\"", await RunAsync(Variant(db, deprecatedLedger, "deprecated"), directory, "await", "patched-then-deprecated"));
        Assert.Equal(["step1", "step20", "step3"], await ReadLedgerAsync(deprecatedLedger));
        Assert.Equal(["0:step", "1:DBOS.patch-fix", "2:step", "3:step"], await OperationsAsync(db, "patched-then-deprecated"));

        // A new execution of the deprecated code records no marker.
        var cleanLedger = Path.Combine(directory, "clean.txt");
        Assert.Equal("result \"p:new:240\"", await RunAsync(Variant(db, cleanLedger, "deprecated"), directory, "run", "patchable", "deprecated-only"));
        Assert.Equal(["0:step", "1:step", "2:step"], await OperationsAsync(db, "deprecated-only"));
    }

    [Theory, BothBackends]
    public async Task Code_without_a_patch_cannot_replay_an_execution_that_recorded_it_and_patches_need_patching_enabled(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var variant = "patched";

        DbosApp Build(bool enablePatching, out Workflow<int, int> workflow)
        {
            var config = db.Config(applicationVersion: null);
            config.EnablePatching = enablePatching;
            var dbos = DbosApp.Create(config);
            var step = dbos.RegisterStep("step", (int i, CancellationToken _) => Task.FromResult(i));
            workflow = dbos.RegisterWorkflow("patchable", async (WorkflowContext ctx, int input) =>
            {
                var first = await step.RunAsync(1);
                var patched = variant == "patched" && await ctx.PatchAsync("fix");
                return first + (patched ? await step.RunAsync(20) : await step.RunAsync(2));
            });
            return dbos;
        }

        await using (var app = Build(enablePatching: true, out var workflow))
        {
            await app.LaunchAsync();
            Assert.True(app.Config.EnablePatching);
            Assert.Equal(DbosConfig.PatchingVersion, app.ApplicationVersion);
            Assert.Equal(21, await workflow.RunAsync(0, new StartOptions { WorkflowId = "wf" }));

            // Forked from its last step, the execution replays the marker: the patch holds.
            var fork = await app.ForkWorkflowAsync("wf", 2);
            Assert.Equal(21, await fork.GetResultAsync<int>());
            var steps = await app.ListWorkflowStepsAsync(fork.WorkflowId);
            Assert.Equal(["0:step", "1:DBOS.patch-fix", "2:step"], steps.Select(s => $"{s.FunctionId}:{s.Name}"));
        }

        // Code that no longer (or not yet) has the patch finds the marker where it expected its step.
        variant = "old";
        await using (var app = Build(enablePatching: true, out _))
        {
            await app.LaunchAsync();
            var fork = await app.ForkWorkflowAsync("wf", 2);
            var error = await Assert.ThrowsAnyAsync<Exception>(() => fork.GetResultAsync<int>());
            Assert.Contains("DBOS.patch-fix", error.Message, StringComparison.Ordinal);
            Assert.Contains("patches", error.Message, StringComparison.Ordinal);
        }

        variant = "patched";
        await using (var app = Build(enablePatching: false, out var workflow))
        {
            await app.LaunchAsync();
            Assert.NotEqual(DbosConfig.PatchingVersion, app.ApplicationVersion);
            var error = await Assert.ThrowsAnyAsync<Exception>(() => workflow.RunAsync(0));
            Assert.Contains("EnablePatching", error.Message, StringComparison.Ordinal);
        }
    }
}
