using System.Text.Json;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// Helpers for the interoperability tests: small JavaScript programs using the real <c>@dbos-inc/dbos-sdk</c> 5.3.0,
/// given the system database through the environment, reporting results as <c>RESULT {json}</c> lines.
/// </summary>
internal static class Peer
{
    /// <summary>The start of every program: the SDK, the database URL, and a way to report a result.</summary>
    public const string Prelude = """
        const { DBOS, DBOSClient } = require('@dbos-inc/dbos-sdk');
        const url = process.env.SYS_DB_URL;
        const report = (value) => console.log('RESULT ' + JSON.stringify(value));
        const main = (body) => body().then(() => process.exit(0), (e) => { console.error('FAILED', e); process.exit(1); });

        """;

    public static Dictionary<string, string?> Environment(TestDatabase db, params (string Key, string Value)[] more)
    {
        var environment = new Dictionary<string, string?> { ["SYS_DB_URL"] = db.Url, ["DBOS__VMID"] = null, ["DBOS__APPVERSION"] = null };
        foreach (var (key, value) in more)
        {
            environment[key] = value;
        }

        return environment;
    }

    /// <summary>Runs a program to completion and returns the values it reported; fails the test if it failed.</summary>
    public static async Task<List<JsonElement>> RunAsync(TestDatabase db, string body, params (string Key, string Value)[] environment)
    {
        var (exit, output) = await TypeScriptPeer.RunScriptAsync(Prelude + body, Environment(db, environment));
        Assert.True(exit == 0, $"The TypeScript program failed (exit {exit}):{System.Environment.NewLine}{output}");
        return Results(output);
    }

    /// <summary>Starts a long-running program (an application serving queues) and waits until it reports it is ready.</summary>
    public static async Task<WorkerProcess> StartAsync(TestDatabase db, string body, params (string Key, string Value)[] environment)
    {
        var process = await TypeScriptPeer.StartScriptAsync(Prelude + body, Environment(db, environment));
        try
        {
            await process.WaitForLineAsync("READY", TimeSpan.FromSeconds(60));
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }

        return process;
    }

    public static List<JsonElement> Results(string output) =>
        output.Split('\n')
            .Where(line => line.StartsWith("RESULT ", StringComparison.Ordinal))
            .Select(line => JsonDocument.Parse(line["RESULT ".Length..]).RootElement.Clone())
            .ToList();

    /// <summary>The JSON the TypeScript <c>dbos</c> command line printed (it may log lines before it).</summary>
    public static async Task<JsonElement> CliJsonAsync(TestDatabase db, params string[] arguments)
    {
        var (exit, output) = await TypeScriptPeer.CliAsync([.. arguments, "--sys-db-url", db.Url]);
        Assert.True(exit == 0, $"dbos {string.Join(' ', arguments)} failed (exit {exit}):{System.Environment.NewLine}{output}");
        var start = output.IndexOfAny(['[', '{']);
        Assert.True(start >= 0, $"dbos {string.Join(' ', arguments)} printed no JSON:{System.Environment.NewLine}{output}");
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(output[start..]));
        using var document = JsonDocument.ParseValue(ref reader);
        return document.RootElement.Clone();
    }
}
