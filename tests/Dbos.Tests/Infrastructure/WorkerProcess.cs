using System.Diagnostics;
using System.Text;

namespace Dbos.Tests.Infrastructure;

/// <summary>A child process running Dbos.Tests.Worker (or another built program), whose output the test reads line by line.</summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly List<string> lines = [];
    private readonly StringBuilder errors = new();
    private readonly SemaphoreSlim changed = new(0);

    private WorkerProcess(Process process) => this.process = process;

    public static string WorkerDll => Path.Combine(AppContext.BaseDirectory, "Dbos.Tests.Worker.dll");

    public static WorkerProcess Start(IReadOnlyDictionary<string, string?> environment, string workingDirectory, params string[] arguments) =>
        StartDll(WorkerDll, environment, workingDirectory, arguments);

    public static WorkerProcess StartDll(string dll, IReadOnlyDictionary<string, string?> environment, string workingDirectory, params string[] arguments) =>
        StartDllWithInput(dll, environment, workingDirectory, null, arguments);

    /// <summary>Starts a program and writes <paramref name="input"/> to its standard input (then closes it).</summary>
    public static WorkerProcess StartDllWithInput(string dll, IReadOnlyDictionary<string, string?> environment, string workingDirectory, string? input, params string[] arguments) =>
        StartProgram("dotnet", environment, workingDirectory, input, [dll, .. arguments]);

    /// <summary>Starts any program (for example <c>node</c>), writing <paramref name="input"/> to its standard input if given.</summary>
    public static WorkerProcess StartProgram(string program, IReadOnlyDictionary<string, string?> environment, string workingDirectory, string? input, params string[] arguments)
    {
        var info = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // Workers get no inherited database settings unless a test passes them.
        info.Environment.Remove("DBOS_SYSTEM_DATABASE_URL");
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

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var worker = new WorkerProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (worker.lines)
                {
                    worker.lines.Add(e.Data);
                }

                worker.changed.Release();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (worker.errors)
                {
                    worker.errors.AppendLine(e.Data);
                }
            }
        };
        process.Exited += (_, _) => worker.changed.Release();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (input is not null)
        {
            process.StandardInput.Write(input);
        }

        process.StandardInput.Close();
        return worker;
    }

    /// <summary>The program's operating-system process ID.</summary>
    public int ProcessId => process.Id;

    /// <summary>What the program wrote to standard output.</summary>
    public string StandardOutput
    {
        get
        {
            lock (lines)
            {
                return string.Join(Environment.NewLine, lines);
            }
        }
    }

    /// <summary>What the program wrote to standard error.</summary>
    public string StandardError
    {
        get
        {
            lock (errors)
            {
                return errors.ToString();
            }
        }
    }

    public string Output
    {
        get
        {
            lock (lines)
            {
                lock (errors)
                {
                    return string.Join(Environment.NewLine, lines) + Environment.NewLine + errors;
                }
            }
        }
    }

    /// <summary>Waits for a line of output that satisfies <paramref name="match"/> and returns it.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            lock (lines)
            {
                var found = lines.FirstOrDefault(match);
                if (found is not null)
                {
                    return found;
                }
            }

            if (process.HasExited)
            {
                // Give the output reader a moment to deliver the last lines.
                process.WaitForExit();
                lock (lines)
                {
                    var found = lines.FirstOrDefault(match);
                    if (found is not null)
                    {
                        return found;
                    }
                }

                throw new InvalidOperationException($"The worker exited ({process.ExitCode}) without the expected output. Output:{Environment.NewLine}{Output}");
            }

            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"The worker did not print the expected line in time. Output:{Environment.NewLine}{Output}");
            }
        }
    }

    public Task<string> WaitForLineAsync(string prefix, TimeSpan? timeout = null) =>
        WaitForLineAsync(l => l.StartsWith(prefix, StringComparison.Ordinal), timeout);

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The worker did not exit in time. Output:{Environment.NewLine}{Output}");
        }

        return process.ExitCode;
    }

    /// <summary>Kills the process at once (no shutdown code runs), as a crash would.</summary>
    public void Kill()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        process.WaitForExit();
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        process.Dispose();
        changed.Dispose();
        return ValueTask.CompletedTask;
    }
}
