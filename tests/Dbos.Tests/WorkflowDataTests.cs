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
}
