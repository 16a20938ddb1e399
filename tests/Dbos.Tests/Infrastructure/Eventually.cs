namespace Dbos.Tests.Infrastructure;

public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> until it holds, failing with <paramref name="what"/> after the timeout.</summary>
    public static async Task HoldsAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting until {what}.");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Waits until the workflow has recorded at least <paramref name="count"/> operations.</summary>
    public static Task OperationsRecordedAsync(TestDatabase db, string workflowId, int count) =>
        HoldsAsync(
            async () => await db.CountAsync($"SELECT count(*) FROM {{operation_outputs}} WHERE workflow_uuid = '{workflowId}'") >= count,
            $"workflow {workflowId} has recorded {count} operation(s)");

    /// <summary>Waits until the workflow's status is <paramref name="status"/>.</summary>
    public static Task StatusAsync(TestDatabase db, string workflowId, string status, TimeSpan? timeout = null) =>
        HoldsAsync(
            async () => (await db.QueryAsync($"SELECT status FROM {{workflow_status}} WHERE workflow_uuid = '{workflowId}'", r => r.GetString(0))).SingleOrDefault() == status,
            $"workflow {workflowId} is {status}",
            timeout);
}
