using Dbos.Extensions.Hosting;
using Dbos.Tests.Hosting;
using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Dbos.Tests;

/// <summary>
/// The one contract of <see cref="DbosApp"/> and <see cref="DbosClient"/> (<see cref="IDbosOperations"/>), and a
/// configuration that is read once, at <see cref="DbosApp.Create"/>.
/// </summary>
public class ContractTests
{
    [Theory, BothBackends]
    public async Task An_app_and_a_client_do_the_same_operations_through_one_interface_with_the_same_results(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var gate = new TaskCompletionSource();
        dbos.RegisterQueue("contract-q");
        dbos.RegisterWorkflow("wait", async (WorkflowContext ctx, string tag) =>
        {
            await ctx.RunStepAsync("gate", async _ => { await gate.Task; return 0; });
            return tag;
        });
        dbos.RegisterWorkflow("echo", async (WorkflowContext ctx, string tag) => await ctx.RunStepAsync("upper", _ => Task.FromResult(tag.ToUpperInvariant())));
        await dbos.LaunchAsync();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, ApplicationName = "test-app" });

        foreach (var (label, operations) in new (string, IDbosOperations)[] { ("app", dbos), ("client", client) })
        {
            Assert.Equal(dbos.SystemDatabase, operations.SystemDatabase);

            // Enqueued by name from either, run by the app.
            var echo = await operations.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "echo", QueueName = "contract-q" }, label);
            Assert.Equal(label.ToUpperInvariant(), await echo.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));

            // The plural operations return the IDs they changed, on both; finished workflows are left as they are.
            var waiting = await operations.EnqueueAsync<string, string>(new EnqueueOptions { WorkflowName = "wait", QueueName = "contract-q", WorkflowId = $"wait-{label}" }, label);
            await Eventually.HoldsAsync(async () => (await operations.GetWorkflowStatusAsync(waiting.WorkflowId))!.State == WorkflowState.Pending, $"the {label}'s workflow runs");
            Assert.Equal([waiting.WorkflowId], await operations.CancelWorkflowsAsync([waiting.WorkflowId, echo.WorkflowId]));
            Assert.Equal(WorkflowState.Cancelled, (await operations.GetWorkflowStatusAsync(waiting.WorkflowId))!.State);
            Assert.Equal([waiting.WorkflowId], await operations.ResumeWorkflowsAsync([waiting.WorkflowId, echo.WorkflowId]));
            await operations.CancelWorkflowAsync(waiting.WorkflowId);
            var resumed = await operations.ResumeWorkflowAsync(waiting.WorkflowId);
            Assert.Equal(waiting.WorkflowId, resumed.WorkflowId);

            var listed = await operations.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIds = [echo.WorkflowId, waiting.WorkflowId] });
            Assert.Equal(2, listed.Count);
            Assert.Equal(["upper"], (await operations.ListWorkflowStepsAsync(echo.WorkflowId)).Select(s => s.Name));

            var fork = await operations.ForkWorkflowAsync(echo.WorkflowId, 0);
            Assert.Equal(label.ToUpperInvariant(), await fork.GetResultAsync<string>().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal([fork.WorkflowId], await operations.DeleteWorkflowsAsync([fork.WorkflowId]));
            await operations.DeleteWorkflowAsync(echo.WorkflowId);
            Assert.Null(await operations.GetWorkflowStatusAsync(echo.WorkflowId));
            await Assert.ThrowsAsync<WorkflowNotFoundException>(() => operations.DeleteWorkflowAsync(echo.WorkflowId));
        }

        gate.SetResult();
        Assert.Equal("app", await (await dbos.RetrieveWorkflowAsync<string>("wait-app")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("client", await (await client.RetrieveWorkflowAsync<string>("wait-client")).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task The_app_keeps_a_read_only_copy_of_its_configuration_and_changes_to_the_original_change_nothing()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var config = db.Config();
        config.ListenQueues = ["a"];
        await using var dbos = DbosApp.Create(config);

        Assert.NotSame(config, dbos.Config);
        Assert.True(dbos.Config.IsReadOnly);
        Assert.False(config.IsReadOnly);

        // The caller's object stays theirs; the application does not see its later changes.
        config.Name = "renamed";
        config.PollingInterval = TimeSpan.FromHours(1);
        Assert.Equal("test-app", dbos.Config.Name);
        Assert.Equal("test-app", dbos.Name);
        Assert.NotEqual(TimeSpan.FromHours(1), dbos.Config.PollingInterval);
        Assert.Equal(["a"], dbos.Config.ListenQueues!);

        var refused = Assert.Throws<InvalidOperationException>(() => dbos.Config.MaxRecoveryAttempts = 1);
        Assert.Contains("cannot change", refused.Message, StringComparison.Ordinal);

        // A copy of a read-only configuration can change, to create another application.
        var copy = new DbosConfig(dbos.Config) { Name = "other-app" };
        Assert.False(copy.IsReadOnly);
        Assert.Equal(dbos.Config.SystemDatabaseUrl, copy.SystemDatabaseUrl);
        Assert.Equal("other-app", copy.Name);
    }

    [Fact]
    public async Task Hosting_fills_a_copy_of_the_bound_options_and_leaves_them_as_configured()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Sqlite);
        var builder = TestHosts.Builder(new Dictionary<string, string?>
        {
            ["Dbos:Name"] = "hosted-app",
            ["Dbos:SystemDatabaseUrl"] = db.Url,
        });
        builder.Services.AddDbos();
        using var host = builder.Build();
        var dbos = host.Services.GetRequiredService<DbosApp>();
        var bound = host.Services.GetRequiredService<IOptions<DbosConfig>>().Value;

        Assert.Null(bound.LoggerFactory);
        Assert.Null(bound.ServiceProvider);
        Assert.False(bound.IsReadOnly);
        Assert.NotNull(dbos.Config.ServiceProvider);
        Assert.NotNull(dbos.Config.LoggerFactory);
        Assert.True(dbos.Config.IsReadOnly);
    }

    [Fact]
    public void Client_options_name_every_problem_at_once()
    {
        var problem = Assert.Throws<DbosConfigurationException>(() => DbosClient.Create(new DbosClientOptions
        {
            SystemDatabaseUrl = "mysql://nobody:secret@host/db",
            SystemDatabaseSchema = " ",
            SystemDatabasePoolSize = 0,
            PollingInterval = TimeSpan.Zero,
        }));
        Assert.Contains("DbosClientOptions.SystemDatabaseUrl", problem.Message, StringComparison.Ordinal);
        Assert.Contains("DbosClientOptions.SystemDatabaseSchema", problem.Message, StringComparison.Ordinal);
        Assert.Contains("DbosClientOptions.SystemDatabasePoolSize", problem.Message, StringComparison.Ordinal);
        Assert.Contains("DbosClientOptions.PollingInterval", problem.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", problem.Message, StringComparison.Ordinal);
    }
}
