using System.Numerics;
using System.Text.Json;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// <c>portable_json</c> values (dates, decimals, big integers, nested objects, nulls, unicode) and errors round-trip
/// between .NET and the TypeScript SDK, in both directions.
/// </summary>
public class FormatInteropTests
{
    private sealed record Inner(string Name, bool Flag, Inner? Child);

    private sealed record Sample(
        DateTimeOffset When, decimal Price, long Count, BigInteger Huge, Inner Nested, string? Missing, string Text, List<int> Numbers, Dictionary<string, double> Rates);

    private const string Unicode = "héllo 世界 🚀 \"quoted\" \\ back\nslash";

    private const string TypeScriptApp = """
        class PaymentError extends Error {
          constructor(message, code) { super(message); this.name = 'PaymentError'; this.code = code; }
        }
        main(async () => {
          DBOS.setConfig({ name: 'ts-formats', systemDatabaseUrl: url });
          DBOS.registerWorkflow(async (s) => ({
            when: new Date(new Date(s.when).getTime() + 1000),
            price: s.price * 2,
            count: s.count + 1,
            huge: BigInt(s.huge) * 2n,
            nested: { ...s.nested, child: { name: 'added', flag: false, child: null } },
            missing: s.missing,
            text: s.text + ' ✓',
            numbers: [...s.numbers, 4],
            rates: s.rates,
          }), { name: 'ts-echo', serialization: 'portable' });
          DBOS.registerWorkflow(async (amount) => { throw new PaymentError(`insufficient funds for ${amount}`, 'E42'); }, { name: 'ts-fail', serialization: 'portable' });
          DBOS.registerWorkflow(async () => { throw new RangeError('native failure'); }, { name: 'ts-fail-native' });
          await DBOS.launch();
          await DBOS.registerQueue('ts-formats-q');
          console.log('READY');
          await new Promise(() => {});
        });
        """;

    [Fact]
    public async Task Values_and_errors_from_dotnet_round_trip_through_a_typescript_workflow()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var typeScript = await Peer.StartAsync(db, TypeScriptApp);
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url });

        var sample = new Sample(
            new DateTimeOffset(2026, 11, 25, 10, 30, 15, 123, TimeSpan.FromHours(1)),
            12.25m,
            9_007_199_254_740_000,
            BigInteger.Parse("123456789012345678901234567890", System.Globalization.CultureInfo.InvariantCulture),
            new Inner("outer", true, null),
            null,
            Unicode,
            [1, 2, 3],
            new() { ["eur"] = 1.08, ["jpy"] = 155.5 });
        var handle = await client.EnqueueAsync<Sample, Sample>(new EnqueueOptions { WorkflowName = "ts-echo", QueueName = "ts-formats-q" }, sample);
        var echoed = await handle.GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(sample.When.AddSeconds(1), echoed.When);
        Assert.Equal(TimeSpan.Zero, echoed.When.Offset);
        Assert.Equal(24.5m, echoed.Price);
        Assert.Equal(9_007_199_254_740_001, echoed.Count);
        Assert.Equal(sample.Huge * 2, echoed.Huge);
        Assert.Equal(new Inner("outer", true, new Inner("added", false, null)), echoed.Nested);
        Assert.Null(echoed.Missing);
        Assert.Equal(Unicode + " ✓", echoed.Text);
        Assert.Equal([1, 2, 3, 4], echoed.Numbers);
        Assert.Equal(sample.Rates, echoed.Rates);

        // The stored values are plain JSON: the big integer as a string, the date in ISO 8601.
        var stored = Assert.Single(await db.QueryAsync(
            $"SELECT o.output FROM {{workflow_output}} o WHERE o.workflow_uuid = '{handle.WorkflowId}'", r => r.GetString(0)));
        using var document = JsonDocument.Parse(stored);
        Assert.Equal("246913578024691357802469135780", document.RootElement.GetProperty("huge").GetString());
        Assert.Equal("2026-11-25T09:30:16.123Z", document.RootElement.GetProperty("when").GetString());

        var failure = await Assert.ThrowsAsync<WorkflowFailedException>(async () =>
            await (await client.EnqueueAsync<int, string>(new EnqueueOptions { WorkflowName = "ts-fail", QueueName = "ts-formats-q" }, 250)).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(("PaymentError", "insufficient funds for 250", "E42"), (failure.ErrorName, failure.Message, failure.ErrorCode));

        var native = await Assert.ThrowsAsync<WorkflowFailedException>(async () =>
            await (await client.EnqueueAsync<string>(new EnqueueOptions { WorkflowName = "ts-fail-native", QueueName = "ts-formats-q" })).GetResultAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(("RangeError", "native failure"), (native.ErrorName, native.Message));
    }

    [Fact]
    public async Task Values_and_errors_from_typescript_round_trip_through_a_dotnet_workflow()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var dbos = DbosApp.Create(db.Config("dotnet-formats"));
        dbos.RegisterQueue("dotnet-formats-q");
        dbos.RegisterWorkflow("dotnet-echo", (WorkflowContext _, Sample s) => Task.FromResult(s with
        {
            When = s.When.AddDays(1),
            Price = s.Price * 2,
            Count = s.Count + 1,
            Huge = s.Huge + 1,
            Nested = s.Nested with { Child = new Inner("from dotnet", true, null) },
            Text = s.Text + " ✓",
            Numbers = [.. s.Numbers, s.Numbers.Sum()],
        }));
        dbos.RegisterWorkflow<int, string>("dotnet-fail", (_, amount) =>
            throw new DbosRecordedException("PaymentError", $"insufficient funds for {amount}", "E42"));
        dbos.RegisterWorkflow<string, string>("dotnet-fail-plain", (_, _) => throw new ArgumentOutOfRangeException("amount", "must be positive"));
        await dbos.LaunchAsync();

        var results = await Peer.RunAsync(db, """
            main(async () => {
              const client = await DBOSClient.create({ systemDatabaseUrl: url });
              try {
                const sample = {
                  when: new Date('2026-11-25T10:30:15.123Z'),
                  price: 12.25,
                  count: 9007199254740000,
                  huge: 123456789012345678901234567890n,
                  nested: { name: 'outer', flag: true, child: null },
                  missing: null,
                  text: process.env.UNICODE,
                  numbers: [1, 2, 3],
                  rates: { eur: 1.08 },
                };
                const echoed = await (await client.enqueuePortable({ workflowName: 'dotnet-echo', queueName: 'dotnet-formats-q' }, [sample])).getResult();
                report({ ...echoed, whenParsed: new Date(echoed.when).toISOString(), hugeIsExact: BigInt(echoed.huge) === 123456789012345678901234567891n });
                for (const [name, arg] of [['dotnet-fail', 250], ['dotnet-fail-plain', 'x']]) {
                  try {
                    await (await client.enqueuePortable({ workflowName: name, queueName: 'dotnet-formats-q' }, [arg])).getResult();
                    report('no error');
                  } catch (e) {
                    report({ name: e.name, message: e.message, code: e.code ?? null });
                  }
                }
              } finally {
                await client.destroy();
              }
            });
            """,
            ("UNICODE", Unicode));

        Assert.Equal(3, results.Count);
        var echoed = results[0];
        Assert.Equal("2026-11-26T10:30:15.123Z", echoed.GetProperty("whenParsed").GetString());
        Assert.Equal(24.5, echoed.GetProperty("price").GetDouble());
        Assert.Equal(9007199254740001, echoed.GetProperty("count").GetInt64());
        Assert.Equal("123456789012345678901234567891", echoed.GetProperty("huge").GetString());
        Assert.True(echoed.GetProperty("hugeIsExact").GetBoolean());
        Assert.Equal("""{"name":"outer","flag":true,"child":{"name":"from dotnet","flag":true,"child":null}}""", echoed.GetProperty("nested").GetRawText());
        Assert.Equal(JsonValueKind.Null, echoed.GetProperty("missing").ValueKind);
        Assert.Equal(Unicode + " ✓", echoed.GetProperty("text").GetString());
        Assert.Equal("[1,2,3,6]", echoed.GetProperty("numbers").GetRawText());
        Assert.Equal("""{"eur":1.08}""", echoed.GetProperty("rates").GetRawText());

        Assert.Equal("""{"name":"PaymentError","message":"insufficient funds for 250","code":"E42"}""", results[1].GetRawText());
        Assert.Equal("ArgumentOutOfRangeException", results[2].GetProperty("name").GetString());
        Assert.StartsWith("must be positive", results[2].GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
