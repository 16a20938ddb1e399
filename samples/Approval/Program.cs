// A workflow that waits for a message: an expense report waits (durably) for a manager's approval.
//
//   dotnet run --project samples/Approval            approve after one second
//   dotnet run --project samples/Approval -- reject  reject it instead
//   dotnet run --project samples/Approval -- ignore  send nothing: the workflow gives up after its timeout
//
// The workflow publishes its status as an event and its progress as a stream; this program reads both from outside.
using Dbos;

var decision = args.FirstOrDefault() ?? "approve";
await using var dbos = DbosApp.Create(new DbosConfig { Name = "approval" });

var expenseReport = dbos.RegisterWorkflow("expense-report", async (WorkflowContext ctx, Expense expense) =>
{
    await ctx.WriteStreamAsync("progress", $"submitted {expense.Amount:0.00} for '{expense.Purpose}'");
    await ctx.SetEventAsync("status", "waiting for approval");

    // Durable wait: a restart keeps waiting for what is left of the 5 seconds, and a message received is never lost.
    var answer = await ctx.RecvAsync<Answer>("approval", TimeSpan.FromSeconds(5));
    var outcome = answer switch
    {
        null => "expired: nobody answered in time",
        { Approved: true } => $"approved by {answer.By}",
        _ => $"rejected by {answer.By}: {answer.Comment}",
    };

    await ctx.WriteStreamAsync("progress", outcome);
    await ctx.SetEventAsync("status", outcome);
    await ctx.CloseStreamAsync("progress");
    return outcome;
});

await dbos.LaunchAsync();

var id = $"expense-{DateTime.UtcNow:HHmmssfff}";
var handle = await expenseReport.StartAsync(new Expense("team lunch", 84.20m), new StartOptions { WorkflowId = id });
Console.WriteLine($"Started {id}. Its status: {await dbos.GetEventAsync<string>(id, "status", TimeSpan.FromSeconds(10))}");

if (decision != "ignore")
{
    await Task.Delay(TimeSpan.FromSeconds(1));
    var answer = decision == "reject" ? new Answer(false, "grace@example.com", "over budget") : new Answer(true, "grace@example.com", null);
    Console.WriteLine($"Sending the manager's answer ({decision})...");
    await dbos.SendAsync(id, answer, "approval");
}

Console.WriteLine("Progress, as the workflow streams it:");
await foreach (var line in dbos.ReadStreamAsync<string>(id, "progress"))
{
    Console.WriteLine($"  {line}");
}

Console.WriteLine($"Result: {await handle.GetResultAsync()}");
return 0;

/// <summary>An expense to approve.</summary>
internal sealed record Expense(string Purpose, decimal Amount);

/// <summary>A manager's answer.</summary>
internal sealed record Answer(bool Approved, string By, string? Comment);
