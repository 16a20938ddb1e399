using System.Diagnostics;

namespace Dbos.Tests.Infrastructure;

/// <summary>
/// The real TypeScript SDK, <c>@dbos-inc/dbos-sdk</c> 5.3.0 from npm, installed once into a folder the tests own, and
/// its <c>dbos</c> command line. If it cannot be installed the test fails: the peer is never skipped.
/// </summary>
public static class TypeScriptPeer
{
    public const string Version = "5.3.0";
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    public static string Folder => Path.Combine(Path.GetTempPath(), $"dbos-ts-peer-{Version}");

    private static string Cli => Path.Combine(Folder, "node_modules", "@dbos-inc", "dbos-sdk", "dist", "src", "cli", "cli.js");

    public static async Task EnsureInstalledAsync()
    {
        await InstallLock.WaitAsync();
        try
        {
            if (File.Exists(Cli))
            {
                return;
            }

            Directory.CreateDirectory(Folder);
            await File.WriteAllTextAsync(Path.Combine(Folder, "package.json"), """{ "name": "dbos-dotnet-ts-peer", "private": true }""");
            var (exit, output) = await RunAsync("npm", Folder, new Dictionary<string, string?>(), TimeSpan.FromMinutes(5), "install", "--no-audit", "--no-fund", $"@dbos-inc/dbos-sdk@{Version}");
            if (exit != 0 || !File.Exists(Cli))
            {
                throw new InvalidOperationException($"Could not install @dbos-inc/dbos-sdk@{Version} with npm (exit {exit}); the interoperability tests need it. Output:{Environment.NewLine}{output}");
            }
        }
        finally
        {
            InstallLock.Release();
        }
    }

    /// <summary>Runs the TypeScript SDK's <c>dbos</c> command line.</summary>
    public static async Task<(int ExitCode, string Output)> CliAsync(params string[] arguments)
    {
        await EnsureInstalledAsync();
        return await RunAsync("node", Folder, new Dictionary<string, string?>(), TimeSpan.FromMinutes(2), [Cli, .. arguments]);
    }

    /// <summary>Runs a JavaScript program (CommonJS) that can require the SDK, with the given environment.</summary>
    public static async Task<(int ExitCode, string Output)> RunScriptAsync(string script, IReadOnlyDictionary<string, string?> environment, TimeSpan? timeout = null)
    {
        await EnsureInstalledAsync();
        var path = Path.Combine(Folder, $"script-{Guid.NewGuid():N}.js");
        await File.WriteAllTextAsync(path, script);
        try
        {
            return await RunAsync("node", Folder, environment, timeout ?? TimeSpan.FromMinutes(2), path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Starts a long-running JavaScript program (a TypeScript application serving queues, for example) whose output the
    /// test reads line by line; disposing the returned process kills it.
    /// </summary>
    public static async Task<WorkerProcess> StartScriptAsync(string script, IReadOnlyDictionary<string, string?> environment)
    {
        await EnsureInstalledAsync();
        var path = Path.Combine(Folder, $"app-{Guid.NewGuid():N}.js");
        await File.WriteAllTextAsync(path, script);
        return WorkerProcess.StartProgram("node", environment, Folder, null, path);
    }

    private static async Task<(int, string)> RunAsync(string program, string directory, IReadOnlyDictionary<string, string?> environment, TimeSpan timeout, params string[] arguments)
    {
        var info = new ProcessStartInfo(program)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {program}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish in {timeout}.");
        }

        return (process.ExitCode, await output + await errors);
    }
}
