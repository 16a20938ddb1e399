using System.Text.RegularExpressions;
using Dbos.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Dbos.Tests.Dashboard;

/// <summary><c>dbos dashboard</c> running as its own process (the tool, as users run it) against a test database.</summary>
public sealed partial class DashboardServer : IAsyncDisposable
{
    private readonly WorkerProcess process;

    private DashboardServer(WorkerProcess process, string url)
    {
        this.process = process;
        Url = url;
    }

    /// <summary>The dashboard's address, ending with a slash.</summary>
    public string Url { get; }

    /// <summary>What the command printed.</summary>
    public string Output => process.StandardOutput;

    public static async Task<DashboardServer> StartAsync(TestDatabase db, params string[] arguments)
    {
        string[] all = ["dashboard", "--url", db.Url, "--schema", db.Schema, "--port", "0", .. arguments];
        var process = WorkerProcess.StartDll(Path.Combine(AppContext.BaseDirectory, "Dbos.Cli.dll"), new Dictionary<string, string?>(), db.Directory, all);
        try
        {
            await process.WaitForLineAsync(l => l.Contains("Ctrl+C", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            var line = await process.WaitForLineAsync(l => l.StartsWith("DBOS dashboard of ", StringComparison.Ordinal));
            return new DashboardServer(process, AddressPattern().Match(line).Value);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    public ValueTask DisposeAsync() => process.DisposeAsync();

    [GeneratedRegex(@"http://[^ ]+/$")]
    private static partial Regex AddressPattern();
}

/// <summary>
/// A headless chromium driven by Playwright: the browser installed on the machine (test.sh installs Debian's chromium),
/// never a downloaded one. A missing browser fails the test: browser tests are never skipped.
/// </summary>
public sealed class DashboardBrowser : IAsyncDisposable
{
    private readonly IPlaywright playwright;
    private readonly IBrowser browser;

    private DashboardBrowser(IPlaywright playwright, IBrowser browser)
    {
        this.playwright = playwright;
        this.browser = browser;
    }

    /// <summary>Console errors and uncaught page errors seen by every page of this browser.</summary>
    public List<string> Errors { get; } = [];

    /// <summary>Where screenshots go: TestResults/dashboard-screenshots under the test output directory.</summary>
    public static string ScreenshotFolder => Path.Combine(AppContext.BaseDirectory, "TestResults", "dashboard-screenshots");

    public static string ChromiumPath()
    {
        string[] candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .SelectMany(dir => new[] { "chromium", "chromium-browser", "google-chrome" }.Select(name => Path.Combine(dir, name)));
        return candidates.Concat(onPath).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("No chromium browser is installed: the dashboard's browser tests need one (test.sh installs Debian's chromium package).");
    }

    public static async Task<DashboardBrowser> LaunchAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = ChromiumPath(),
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            });
            return new DashboardBrowser(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>A new page (its own cookies) that records console errors, page errors and dialogs.</summary>
    public async Task<IPage> NewPageAsync()
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
        var page = await context.NewPageAsync();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (Errors)
                {
                    Errors.Add($"console error on {page.Url}: {message.Text}");
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (Errors)
            {
                Errors.Add($"page error on {page.Url}: {error}");
            }
        };
        page.Dialog += async (_, dialog) =>
        {
            lock (Errors)
            {
                Errors.Add($"unexpected dialog on {page.Url}: {dialog.Message}");
            }

            await dialog.DismissAsync();
        };
        return page;
    }

    /// <summary>Goes to <paramref name="url"/> and checks the answer's status.</summary>
    public static async Task<IResponse> GoAsync(IPage page, string url, int expectedStatus = 200)
    {
        var response = await page.GotoAsync(url) ?? throw new InvalidOperationException($"No response for {url}.");
        Assert.True(response.Status == expectedStatus, $"{url} answered {response.Status}, expected {expectedStatus}: {await page.ContentAsync()}");
        return response;
    }

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotFolder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotFolder, name + ".png"), FullPage = true });
    }

    public void AssertNoErrors()
    {
        lock (Errors)
        {
            Assert.True(Errors.Count == 0, string.Join("\n", Errors));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await browser.DisposeAsync();
        playwright.Dispose();
    }
}
