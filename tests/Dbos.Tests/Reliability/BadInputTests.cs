using System.Globalization;
using System.Text;
using Dbos.Internal;
using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Reliability;

/// <summary>Generated inputs for the property tests: seeded, so every run sees the same cases.</summary>
internal static class Gen
{
    public const string Alphanumeric = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    // Text that tends to break things: separators of URLs and SQL, LIKE wildcards, quotes, escapes, whitespace,
    // emoji (surrogate pairs), right-to-left text, combining marks, zero-width and byte-order marks, other scripts.
    private static readonly string[] Nasty =
    [
        "'", "\"", "\\", "`", ";", "--", "/*", "*/", "%", "_", "[", "]", "^", "$", "?", "@", ":", "/", "#", "&", "=", "+",
        " ", "\t", "\n", "\r\n", "'; DROP TABLE x; --", "%_", "\\%", "é", "e\u0301", "漢字", "😀", "👩‍👩‍👧", "🏳️‍🌈", "שלום", "مرحبا",
        "\u202E", "\u200B", "\uFEFF", "Ω", "ß", "İ", "\u00A0", "€", "::",
    ];

    public static string Token(Random random, int length, string alphabet = Alphanumeric)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++)
        {
            chars[i] = alphabet[random.Next(alphabet.Length)];
        }

        return new string(chars);
    }

    /// <summary>A valid Unicode scalar value (never a lone surrogate, never NUL).</summary>
    public static string Scalar(Random random) => random.Next(6) switch
    {
        0 => ((char)random.Next(0x20, 0x7F)).ToString(),
        1 => ((char)random.Next(0xA0, 0x800)).ToString(),
        2 => ((char)random.Next(0x800, 0xD800)).ToString(),
        3 => ((char)random.Next(0xE000, 0xFFFE)).ToString(),
        4 => char.ConvertFromUtf32(random.Next(0x10000, 0x110000)),
        _ => ((char)random.Next(1, 0x20)).ToString(),
    };

    /// <summary>Any valid Unicode text (no NUL), mixing plain characters, nasty fragments and random scalars.</summary>
    public static string Text(Random random, int maxParts)
    {
        var text = new StringBuilder();
        var parts = random.Next(1, maxParts + 1);
        for (var i = 0; i < parts; i++)
        {
            text.Append(random.Next(3) switch
            {
                0 => Token(random, random.Next(1, 6)),
                1 => Nasty[random.Next(Nasty.Length)],
                _ => Scalar(random),
            });
        }

        return text.ToString();
    }

    public static T Pick<T>(Random random, IReadOnlyList<T> items) => items[random.Next(items.Count)];
}

/// <summary>
/// Bad input, by property tests over seeded generated cases: malformed URLs, odd identifiers and odd values either work
/// exactly or fail with a clear error, never with a crash, a leaked password or a damaged database.
/// </summary>
public class BadInputTests
{
    private const string Setting = "DbosConfig.SystemDatabaseUrl";

    // ---- URLs ----

    /// <summary>A generated URL, and the distinctive core of the password it carries (if any).</summary>
    private sealed record UrlCase(string Url, string? SecretCore);

    private static string Password(Random random, out string core)
    {
        core = "Pw" + Gen.Token(random, 10);
        var specials = "@/?:#%&=+ ;'\"\\[]~!$*()";
        var prefix = random.Next(3) == 0 ? Gen.Token(random, random.Next(1, 4), specials) : string.Empty;
        var suffix = random.Next(3) == 0 ? Gen.Token(random, random.Next(1, 4), specials) : string.Empty;
        return prefix + core + suffix;
    }

    /// <summary>A URL assembled from parts, each part well-formed, malformed, or missing.</summary>
    private static UrlCase StructuredUrl(Random random)
    {
        var password = Password(random, out var core);
        var encode = random.Next(2) == 0;
        var scheme = Gen.Pick(random, ["postgresql://", "postgres://", "POSTGRESQL://", "postgresql:/", "postgresql:", "postgresql:///", "mysql://", "sqlite://", "sqlite:///", "", "://", "http://"]);
        var user = Gen.Pick(random, ["dbos", "", "us%40er", "ü", "a:b", "@"]);
        var userInfo = random.Next(5) switch
        {
            0 => string.Empty,
            1 => user + "@",
            _ => user + ":" + (encode ? Uri.EscapeDataString(password) : password) + "@",
        };
        var host = Gen.Pick(random, ["localhost", "127.0.0.1", "[::1]", "[::1", "::1", "", "db.example.com", "hôst", "h%20st", "[fe80::1%25eth0]"]);
        var port = Gen.Pick(random, ["", ":5432", ":0", ":65535", ":65536", ":-1", ":99999999999999999999", ":port", ":", ":５４３２", ": 5432", ":5432:5432"]);
        var database = Gen.Pick(random, ["/db", "", "/", "/d%2Fb", "/d/b", "/%", "/%zz", "/%E9", "/漢字", "/db?", "/db?sslmode=disable", "/db?sslmode=nonsense",
            "/db?connect_timeout=", "/db?connect_timeout=x", "/db?port=99999999999", "/db?=x", "/db?&&", "/db?nosuch=1", "/db?application_name=a@b", "/db?keepalives_idle=-5",
            "/db?sslmode=require&connect_timeout=5", "/db?options=-c%20search_path%3Dx", "/db?password=" + core, "/db#frag"]);
        var url = scheme + userInfo + host + port + database;
        return new UrlCase(url, InPasswordPosition(url, core) || database.Contains(core, StringComparison.Ordinal) ? core : null);
    }

    /// <summary>
    /// Whether <paramref name="core"/> is written where a password goes: after a ':' in the user information, which starts
    /// after "scheme://" (at the start of a URL not written so) and ends at an '@'. In "dbos://secret@host" it is a user name.
    /// </summary>
    private static bool InPasswordPosition(string url, string core)
    {
        var position = url.IndexOf(core, StringComparison.Ordinal);
        var schemeEnd = url.IndexOf(':', StringComparison.Ordinal);
        var start = schemeEnd >= 0 && url.AsSpan(schemeEnd).StartsWith("://", StringComparison.Ordinal) ? schemeEnd + 3 : 0;
        return position > start && url.IndexOf(':', start, position - start) >= 0 && url.IndexOf('@', position) >= 0;
    }

    /// <summary>Random text with no structure at all: bytes as characters, unicode, very long strings.</summary>
    private static UrlCase NoiseUrl(Random random)
    {
        var text = random.Next(4) switch
        {
            0 => new string(Enumerable.Range(0, random.Next(0, 40)).Select(_ => (char)random.Next(0, 256)).ToArray()),
            1 => Gen.Text(random, 20),
            2 => Gen.Pick(random, ["postgresql://", "sqlite:///", "postgres://u:p@"]) + Gen.Text(random, 30),
            _ => Gen.Pick(random, ["postgresql://u:p@h/", "sqlite:///", ""]) + new string(Gen.Pick(random, ['a', '%', '/', '@', ':']), random.Next(1_000, 100_000)),
        };
        return new UrlCase(text, null);
    }

    /// <summary>
    /// A well-formed URL with a few characters inserted, deleted or replaced in its password (as when a password is pasted
    /// without percent-encoding) and in what follows it. The "user:" before the password and the '@' after it stay, so the
    /// password stays where a password goes.
    /// </summary>
    private static UrlCase MutatedUrl(Random random)
    {
        var password = Password(random, out var core);
        var encoded = random.Next(2) == 0 ? Uri.EscapeDataString(password) : password;
        var tail = Mutate(random, "localhost:5432/db?sslmode=disable&connect_timeout=5");
        return new UrlCase($"postgresql://dbos:{Mutate(random, encoded, keep: core)}@{tail}", core);
    }

    private static string Mutate(Random random, string text, string? keep = null)
    {
        var result = new StringBuilder(text);
        char[] alphabet = ['/', '@', ':', '?', '#', '%', '&', '=', '[', ']', ' ', '\\', '\n', 'é', '漢', '\uD83D', '\uDE00', '0', 'x'];
        for (var i = random.Next(1, 4); i > 0; i--)
        {
            var at = random.Next(result.Length + 1);
            var c = Gen.Pick(random, alphabet);
            var protectedStart = keep is null ? -1 : result.ToString().IndexOf(keep, StringComparison.Ordinal);
            if (keep is not null && at > protectedStart && at < protectedStart + keep.Length)
            {
                at = protectedStart;
            }

            var touches = keep is not null && at >= protectedStart && at < protectedStart + keep.Length;
            switch (random.Next(3))
            {
                case 0:
                    result.Insert(at, c);
                    break;
                case 1 when at < result.Length && !touches:
                    result.Remove(at, 1);
                    break;
                case 2 when at < result.Length && !touches:
                    result[at] = c;
                    break;
            }
        }

        return result.ToString();
    }

    [Fact]
    public void Parsing_thousands_of_malformed_urls_fails_only_with_a_configuration_error_that_names_the_setting_and_hides_the_password()
    {
        var random = new Random(20240611);
        var failures = new List<string>();
        var parsed = 0;
        var refused = 0;
        for (var i = 0; i < 6_000; i++)
        {
            var @case = (i % 3) switch
            {
                0 => StructuredUrl(random),
                1 => NoiseUrl(random),
                _ => MutatedUrl(random),
            };
            try
            {
                var url = DatabaseUrl.Parse(@case.Url, Setting);
                parsed++;

                // A SQLite URL has no user information: what follows sqlite:/// is a file path, shown as it is.
                if (@case.SecretCore is { } core && url is PostgresUrl && url.Masked.Contains(core, StringComparison.Ordinal))
                {
                    failures.Add($"masked form shows the password: {Show(@case.Url)} -> {url.Masked}");
                }
            }
            catch (DbosConfigurationException ex)
            {
                refused++;
                if (!ex.Message.Contains(Setting, StringComparison.Ordinal))
                {
                    failures.Add($"message does not name the setting: {Show(@case.Url)} -> {ex.Message}");
                }

                if (@case.SecretCore is { } core && ex.ToString().Contains(core, StringComparison.Ordinal))
                {
                    failures.Add($"message shows the password: {Show(@case.Url)} -> {ex.Message}");
                }
            }
            catch (Exception ex)
            {
                failures.Add($"{ex.GetType().Name} instead of DbosConfigurationException: {Show(@case.Url)} -> {ex.Message}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of 6000 URLs broke an invariant:\n" + string.Join("\n", failures.Distinct().Take(40)));

        // The generators reach both outcomes often.
        Assert.InRange(parsed, 300, 5_700);
        Assert.InRange(refused, 300, 5_700);
    }

    [Fact]
    public void Thousands_of_valid_urls_round_trip_their_user_password_host_port_and_database()
    {
        var random = new Random(77);
        string[] ipv6 = ["::1", "fe80::1", "2001:db8::ff00:42:8329", "::ffff:192.0.2.1"];
        for (var i = 0; i < 3_000; i++)
        {
            var user = random.Next(4) == 0 ? null : Gen.Text(random, 6);
            var password = random.Next(4) == 0 ? null : Password(random, out _) + (random.Next(2) == 0 ? Gen.Text(random, 4) : string.Empty);
            var core = password;
            var host = random.Next(4) switch
            {
                0 => string.Join('.', Enumerable.Range(0, random.Next(1, 4)).Select(_ => Gen.Token(random, random.Next(1, 10), "abcdefghijklmnopqrstuvwxyz0123456789-"))),
                1 => string.Join('.', Enumerable.Range(0, 4).Select(_ => random.Next(256).ToString(CultureInfo.InvariantCulture))),
                2 => Gen.Pick(random, ipv6),
                _ => "hôst-" + Gen.Token(random, 3),
            };
            int? port = random.Next(3) == 0 ? null : random.Next(1, 65536);
            var database = Gen.Text(random, 6).Replace("/", string.Empty, StringComparison.Ordinal);
            if (database.Length == 0)
            {
                database = "db";
            }

            var url = new StringBuilder(random.Next(2) == 0 ? "postgresql://" : "Postgres://");
            if (user is not null || password is not null)
            {
                url.Append(Uri.EscapeDataString(user ?? string.Empty));
                if (password is not null)
                {
                    url.Append(':').Append(Uri.EscapeDataString(password));
                }

                url.Append('@');
            }

            url.Append(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : Uri.EscapeDataString(host));
            if (port is not null)
            {
                url.Append(':').Append(port.Value);
            }

            url.Append('/').Append(Uri.EscapeDataString(database));
            var options = new List<string>();
            if (random.Next(3) == 0)
            {
                options.Add("sslmode=" + Gen.Pick(random, ["disable", "prefer", "require"]));
            }

            if (random.Next(3) == 0)
            {
                options.Add("connect_timeout=" + random.Next(1, 100));
            }

            if (random.Next(3) == 0)
            {
                options.Add("application_name=" + Uri.EscapeDataString(Gen.Text(random, 4)));
            }

            if (options.Count > 0)
            {
                url.Append('?').AppendJoin('&', options);
            }

            var text = url.ToString();
            PostgresUrl parsed;
            try
            {
                parsed = Assert.IsType<PostgresUrl>(DatabaseUrl.Parse(text, Setting));
            }
            catch (Exception ex)
            {
                throw new Xunit.Sdk.XunitException($"Case {i}: the valid URL {Show(text)} did not parse: {ex}");
            }

            var what = $"case {i}: {Show(text)}";
            Assert.True(string.IsNullOrEmpty(user) ? string.IsNullOrEmpty(parsed.Builder.Username) : parsed.Builder.Username == user, $"user of {what}: {parsed.Builder.Username}");
            Assert.True(parsed.Password == password, $"password of {what}");
            Assert.True(parsed.Builder.Host == host, $"host of {what}: {parsed.Builder.Host}");
            Assert.True(parsed.Builder.Port == (port ?? 5432), $"port of {what}: {parsed.Builder.Port}");
            Assert.True(parsed.Database == database, $"database of {what}: {parsed.Database}");
            if (core is not null)
            {
                Assert.DoesNotContain(core, parsed.Masked, StringComparison.Ordinal);
                Assert.DoesNotContain(Uri.EscapeDataString(core), parsed.Masked, StringComparison.Ordinal);
            }
        }
    }

    // ---- Identifiers ----

    public sealed record Probe(string Step, string Key, string Topic, string Value);

    // Identifiers that break naive SQL, LIKE patterns, JSON, NOTIFY payloads or terminals.
    private static readonly string[] Nasty =
    [
        "'; DROP TABLE workflow_status; --", "x'); DELETE FROM operation_outputs; --", "%", "_", "a_b%c", "\\", "\\'", "\"quoted\"", "😀👩‍👩‍👧",
        "שלום עולם", "مرحبا", "e\u0301\u0301", "\u202Eevil", "  spaced  ", "tab\there", "new\nline", "$1", "?", "::", "null", "NULL", "[]", "{}",
        "\u200B", "\uFEFF", "漢字のテスト", "dbos_notifications_channel", "a::b::c",
    ];

    private static readonly string[] SystemTables =
    [
        "workflow_status", "operation_outputs", "workflow_input", "workflow_output", "notifications", "workflow_events", "workflow_events_history",
        "streams", "queues", "workflow_schedules", "application_versions", "dbos_migrations",
    ];

    private static Task<string> ProbeBody(WorkflowContext ctx, Probe p) => ProbeBodyAsync(ctx, p);

    private static async Task<string> ProbeBodyAsync(WorkflowContext ctx, Probe p)
    {
        var value = await ctx.RunStepAsync(p.Step, _ => Task.FromResult(p.Value));
        await ctx.SetEventAsync(p.Key, value);
        await ctx.WriteStreamAsync(p.Key, value);
        await ctx.CloseStreamAsync(p.Key);
        var message = await ctx.RecvAsync<string>(p.Topic, TimeSpan.FromSeconds(60));
        return value + "|" + message;
    }

    /// <summary>The system tables are all there, and a new workflow runs, records a step and completes.</summary>
    private static async Task AssertIntactAsync(TestDatabase db, DbosApp dbos)
    {
        foreach (var table in SystemTables)
        {
            Assert.True(await db.CountAsync($"SELECT count(*) FROM {{{table}}}") >= 0);
        }

        var sentinel = dbos.GetWorkflow<Probe, string>("sentinel");
        var id = "sentinel-" + Guid.NewGuid().ToString("N");
        var handle = await sentinel.StartAsync(new Probe("s", "k", "t", "v"), new StartOptions { WorkflowId = id });
        await dbos.SendAsync(id, "m", "t");
        Assert.Equal("v|m", await handle.GetResultAsync());
        Assert.Equal("s", Assert.Single(await dbos.ListWorkflowStepsAsync(id), s => s.Name == "s").Name);
    }

    [Theory, BothBackends]
    public async Task Ids_names_steps_queues_topics_and_keys_with_unicode_quotes_sql_and_wildcards_work_end_to_end_and_come_back_identical(Backend backend)
    {
        var random = new Random(4242);
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var texts = Nasty.Concat(Enumerable.Range(0, 40).Select(_ => Gen.Text(random, 10))).ToArray();
        var names = texts.Where(t => !string.IsNullOrWhiteSpace(t)).Take(8).Concat(Enumerable.Range(0, 4).Select(_ => Gen.Text(random, 10)))
            .Where(t => !string.IsNullOrWhiteSpace(t)).Distinct(StringComparer.Ordinal).ToArray();
        var queueNames = texts.Skip(8).Where(t => !string.IsNullOrWhiteSpace(t)).Take(6).Distinct(StringComparer.Ordinal).ToArray();
        var workflows = names.Select(n => dbos.RegisterWorkflow<Probe, string>(n, ProbeBody)).ToArray();
        dbos.RegisterWorkflow<Probe, string>("sentinel", ProbeBody);
        foreach (var queue in queueNames)
        {
            dbos.RegisterQueue(queue);
        }

        await dbos.LaunchAsync();
        await using var client = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema, PollingInterval = TimeSpan.FromMilliseconds(50) });

        var started = new List<(string Id, string Name, string? Queue)>();
        for (var i = 0; i < texts.Length; i++)
        {
            var id = texts[i] + (i < Nasty.Length ? string.Empty : "#" + i.ToString(CultureInfo.InvariantCulture));
            var probe = new Probe(texts[(i + 1) % texts.Length], texts[(i + 2) % texts.Length], texts[(i + 3) % texts.Length], texts[(i + 4) % texts.Length]);
            var w = i % workflows.Length;
            var queue = i % 3 == 0 ? queueNames[i % queueNames.Length] : null;
            var what = $"case {i} (id '{StorableText.Preview(id)}')";

            var handle = await workflows[w].StartAsync(probe, new StartOptions { WorkflowId = id, Queue = queue });
            started.Add((id, names[w], queue));
            Assert.Equal(id, handle.WorkflowId);
            Assert.True(probe.Value == await client.GetEventAsync<string>(id, probe.Key, TimeSpan.FromSeconds(60)), $"event of {what}");
            await (i % 2 == 0 ? dbos.SendAsync(id, probe.Value + "!", probe.Topic) : client.SendAsync(id, probe.Value + "!", probe.Topic));
            Assert.True(probe.Value + "|" + probe.Value + "!" == await handle.GetResultAsync(), $"result of {what}");

            var streamed = new List<string>();
            await foreach (var value in client.ReadStreamAsync<string>(id, probe.Key))
            {
                streamed.Add(value);
            }

            Assert.True(streamed.SequenceEqual([probe.Value]), $"stream of {what}");
            var status = Assert.Single(await client.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIds = [id] }));
            Assert.True(status.WorkflowId == id && status.Name == names[w] && status.QueueName == queue, $"status of {what}: {status.WorkflowId} {status.Name} {status.QueueName}");
            Assert.Equal(probe, status.GetInput<Probe>());
            var steps = await client.ListWorkflowStepsAsync(id);
            Assert.True(steps[0].Name == probe.Step && steps[0].GetOutput<string>() == probe.Value, $"step of {what}: {steps[0].Name}");
        }

        // Listings by name, queue and exact ID find exactly the workflows that carry them.
        foreach (var (name, index) in names.Select((n, i) => (n, i)))
        {
            var listed = (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { Name = name })).Select(s => s.WorkflowId).Order(StringComparer.Ordinal);
            Assert.Equal(started.Where(s => s.Name == name).Select(s => s.Id).Order(StringComparer.Ordinal), listed);
        }

        foreach (var queue in queueNames)
        {
            var listed = (await client.ListWorkflowsAsync(new ListWorkflowsOptions { QueueName = queue })).Select(s => s.WorkflowId).Order(StringComparer.Ordinal);
            Assert.Equal(started.Where(s => s.Queue == queue).Select(s => s.Id).Order(StringComparer.Ordinal), listed);
        }

        var all = await client.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIds = started.Select(s => s.Id).ToList() });
        Assert.Equal(started.Select(s => s.Id).Order(StringComparer.Ordinal), all.Select(s => s.WorkflowId).Order(StringComparer.Ordinal));
        Assert.Equal(started.Count, await db.CountAsync("SELECT count(*) FROM {workflow_status}"));
        await AssertIntactAsync(db, dbos);
    }

    [Theory, BothBackends]
    public async Task Listing_by_id_prefix_matches_exactly_the_ids_that_start_with_it_wildcards_backslashes_and_case_included(Backend backend)
    {
        var random = new Random(99);
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var workflow = dbos.RegisterWorkflow("noop", (WorkflowContext ctx, int x) => Task.FromResult(x));
        await dbos.LaunchAsync();

        const string Alphabet = "aA%_\\x'é";
        var ids = Enumerable.Range(0, 60).Select(_ => Gen.Token(random, random.Next(1, 5), Alphabet) + Gen.Pick(random, ["", "😀", "\u0301"])).Distinct(StringComparer.Ordinal).ToList();
        foreach (var id in ids)
        {
            await workflow.RunAsync(1, new StartOptions { WorkflowId = id });
        }

        string[] fixedPrefixes = ["%", "_", "\\", "a%", "a_", "A", "a", "\\%", "%%", "'", "é", "x", "😀"];
        foreach (var prefix in fixedPrefixes.Concat(Enumerable.Range(0, 40).Select(_ => Gen.Token(random, random.Next(1, 3), Alphabet))))
        {
            var listed = (await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIdPrefix = prefix })).Select(s => s.WorkflowId).Order(StringComparer.Ordinal).ToList();
            var expected = ids.Where(id => id.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            Assert.True(expected.SequenceEqual(listed), $"prefix '{prefix}': expected [{string.Join(", ", expected)}], listed [{string.Join(", ", listed)}]");
        }
    }

    [Theory, BothBackends]
    public async Task Nul_characters_and_unpaired_surrogates_are_refused_with_a_clear_error_on_both_backends_before_anything_is_written(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        string[] bad = ["a\0b", "\0", "a\uD800b", "\uDC00", "x\uD83D"];
        static void AssertNamesTheProblem(Exception ex, string what) =>
            Assert.True(
                ex.Message.Contains("NUL character (U+0000)", StringComparison.Ordinal) || ex.Message.Contains("unpaired surrogate", StringComparison.Ordinal),
                $"{what}: {ex.GetType().Name}: {ex.Message}");

        foreach (var text in bad)
        {
            var config = db.Config(name: text);
            AssertNamesTheProblem(Assert.Throws<DbosConfigurationException>(() => DbosApp.Create(config)), "application name");
        }

        await using var dbos = DbosApp.Create(db.Config());
        var stepRuns = 0;
        var probe = dbos.RegisterWorkflow<Probe, string>("probe", ProbeBody);
        dbos.RegisterWorkflow<Probe, string>("sentinel", ProbeBody);
        // The bad text is chosen by index: as an input it would be refused at the start (see the serialization test).
        var stepProbe = dbos.RegisterWorkflow("step-probe", async (WorkflowContext ctx, int index) =>
            await ctx.RunStepAsync("s" + bad[index], _ => Task.FromResult(Interlocked.Increment(ref stepRuns))));
        var keyProbe = dbos.RegisterWorkflow("key-probe", async (WorkflowContext ctx, int index) =>
        {
            await ctx.SetEventAsync(bad[index], "value");
            return 0;
        });
        dbos.RegisterQueue("q");
        foreach (var text in bad)
        {
            AssertNamesTheProblem(Assert.Throws<ArgumentException>(() => dbos.RegisterWorkflow("w" + text, (WorkflowContext ctx, int x) => Task.FromResult(x))), "workflow name");
            AssertNamesTheProblem(Assert.Throws<ArgumentException>(() => dbos.RegisterQueue("q" + text)), "queue name");
            AssertNamesTheProblem(Assert.Throws<ArgumentException>(() => dbos.RegisterStep("s" + text, (CancellationToken _) => Task.FromResult(1))), "step name");
        }

        await dbos.LaunchAsync();
        var target = await probe.StartAsync(new Probe("s", "k", "t", "v"), new StartOptions { WorkflowId = "target" });
        var rows = await db.CountAsync("SELECT count(*) FROM {workflow_status}");
        foreach (var (text, index) in bad.Select((t, i) => (t, i)))
        {
            var input = new Probe("s", "k", "t", "v");
            AssertNamesTheProblem(await Assert.ThrowsAsync<ArgumentException>(() => probe.StartAsync(input, new StartOptions { WorkflowId = text })), "workflow ID");
            AssertNamesTheProblem(await Assert.ThrowsAsync<ArgumentException>(() => probe.StartAsync(input, new StartOptions { Queue = "q", DeduplicationId = text })), "deduplication ID");
            AssertNamesTheProblem(await Assert.ThrowsAsync<ArgumentException>(() => dbos.SendAsync("target", "m", topic: text)), "topic");
            AssertNamesTheProblem(await Assert.ThrowsAsync<ArgumentException>(() => dbos.SendAsync(text, "m")), "destination");
            AssertNamesTheProblem(await Assert.ThrowsAsync<ArgumentException>(() => dbos.GetEventAsync<string>("target", text, TimeSpan.Zero)), "event key");
            AssertNamesTheProblem(await Assert.ThrowsAsync<ArgumentException>(() => dbos.RetrieveWorkflowAsync<string>(text)), "retrieved ID");
            AssertNamesTheProblem(await Assert.ThrowsAsync<ArgumentException>(() => dbos.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIdPrefix = text })), "prefix");
            Assert.Equal(rows, await db.CountAsync("SELECT count(*) FROM {workflow_status}"));

            // Inside a workflow: the step is refused before it runs, the event before anything is recorded; the workflow fails.
            var stepFailure = await Assert.ThrowsAsync<WorkflowFailedException>(() => stepProbe.RunAsync(index));
            Assert.Equal("ArgumentException", stepFailure.ErrorName);
            AssertNamesTheProblem(stepFailure, "step name inside a workflow");
            var keyHandle = await keyProbe.StartAsync(index);
            var keyFailure = await Assert.ThrowsAsync<WorkflowFailedException>(() => keyHandle.GetResultAsync());
            AssertNamesTheProblem(keyFailure, "event key inside a workflow");
            Assert.Equal(0, await db.CountAsync($"SELECT count(*) FROM {{operation_outputs}} WHERE workflow_uuid = '{keyHandle.WorkflowId}'"));
            Assert.Equal(0, await db.CountAsync($"SELECT count(*) FROM {{workflow_events}} WHERE workflow_uuid = '{keyHandle.WorkflowId}'"));
            rows += 2;
        }

        Assert.Equal(0, stepRuns);
        await dbos.SendAsync("target", "m", "t");
        Assert.Equal("v|m", await target.GetResultAsync());
        await AssertIntactAsync(db, dbos);
    }

    /// <summary>Runs the probe workflow end to end; returns null when everything came back identical, else the error.</summary>
    private static async Task<Exception?> RunProbeAsync(DbosApp dbos, Workflow<Probe, string> workflow, string id, Probe probe)
    {
        try
        {
            var handle = await workflow.StartAsync(probe, new StartOptions { WorkflowId = id });
            var result = handle.GetResultAsync();
            var eventValue = dbos.GetEventAsync<string>(id, probe.Key, TimeSpan.FromSeconds(60));
            if (await Task.WhenAny(result, (Task)eventValue) == result)
            {
                await result; // Failed before setting the event: throws its error.
            }

            Assert.Equal(probe.Value, await eventValue);
            await dbos.SendAsync(id, "m", probe.Topic);
            Assert.Equal(probe.Value + "|m", await result);
            Assert.Equal(id, Assert.Single(await dbos.ListWorkflowsAsync(new ListWorkflowsOptions { WorkflowIds = [id] })).WorkflowId);
            Assert.Equal(probe.Step, (await dbos.ListWorkflowStepsAsync(id))[0].Name);
            return null;
        }
        catch (Exception ex) when (ex is ArgumentException or WorkflowFailedException)
        {
            try
            {
                await dbos.CancelWorkflowAsync(id);
            }
            catch (Exception cleanup) when (cleanup is WorkflowNotFoundException or ArgumentException)
            {
                // It was never created.
            }

            return ex;
        }
    }

    [Theory, BothBackends]
    public async Task Ten_thousand_character_ids_steps_topics_and_keys_work_or_fail_with_a_clear_error_and_leave_the_database_intact(Backend backend)
    {
        var random = new Random(10_000);
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var workflow = dbos.RegisterWorkflow<Probe, string>("probe", ProbeBody);
        dbos.RegisterWorkflow<Probe, string>("sentinel", ProbeBody);
        await dbos.LaunchAsync();

        var noise = new StringBuilder();
        while (noise.Length < 10_000)
        {
            noise.Append(Gen.Scalar(random));
        }

        var cut = char.IsHighSurrogate(noise[9_999]) ? 9_999 : 10_000;
        (string Label, string Text)[] texts = [("repetitive", string.Concat(Enumerable.Repeat("ab'%_😀", 1_500))[..10_000]), ("random", noise.ToString(0, cut))];
        foreach (var (label, text) in texts)
        {
            foreach (var kind in new[] { "id", "step", "key", "topic" })
            {
                var id = kind == "id" ? text : $"{label}-{kind}";
                var probe = new Probe(kind == "step" ? text : "s", kind == "key" ? text : "k", kind == "topic" ? text : "t", "v");
                var error = await RunProbeAsync(dbos, workflow, id, probe);
                if (error is null)
                {
                    continue;
                }

                // SQLite stores any length; Postgres refuses index entries and notifications past its limits, clearly.
                Assert.True(backend == Backend.Postgres, $"{label} {kind} failed on SQLite: {error}");
                Assert.Contains("too long for the Postgres system database", error.Message, StringComparison.Ordinal);
                Assert.True(error is ArgumentException || ((WorkflowFailedException)error).ErrorName == "ArgumentException", error.ToString());
            }

            if (backend == Backend.Postgres && label == "random")
            {
                // Random text does not compress: Postgres's index limit refuses it as an ID, a step name, a key and a topic.
                Assert.Null(await dbos.GetWorkflowStatusAsync(text));
                Assert.DoesNotContain(await dbos.ListWorkflowStepsAsync("random-step"), step => step.Name == text);
            }
        }

        await AssertIntactAsync(db, dbos);
    }

    // ---- Serialization ----

    public readonly record struct Point(int X, double Y, string? Label, DateTimeOffset At, Guid Id, decimal Amount);

    public sealed class Node
    {
        public string Name { get; set; } = "n";

        public Node? Next { get; set; }
    }

    private static object Nest(int depth) => depth == 0 ? "bottom" : new List<object> { Nest(depth - 1) };

    [Theory, BothBackends]
    public async Task Odd_values_round_trip_exactly_or_fail_with_a_serialization_error_before_anything_is_written(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        await using var dbos = DbosApp.Create(db.Config());
        var echoObject = dbos.RegisterWorkflow("echo-object", (WorkflowContext ctx, object? x) => Task.FromResult(x));
        var echoDate = dbos.RegisterWorkflow("echo-date", (WorkflowContext ctx, DateTime x) => Task.FromResult(x));
        var echoString = dbos.RegisterWorkflow("echo-string", (WorkflowContext ctx, string? x) => Task.FromResult(x));
        var echoDouble = dbos.RegisterWorkflow("echo-double", (WorkflowContext ctx, double x) => Task.FromResult(x));
        var echoPoint = dbos.RegisterWorkflow("echo-point", (WorkflowContext ctx, Point x) => Task.FromResult(x));
        var echoNode = dbos.RegisterWorkflow("echo-node", (WorkflowContext ctx, Node x) => Task.FromResult(x.Name));
        var stepNaN = dbos.RegisterWorkflow("step-nan", async (WorkflowContext ctx, int x) => await ctx.RunStepAsync("nan", _ => Task.FromResult(double.NaN)));
        var outputInfinity = dbos.RegisterWorkflow("output-infinity", (WorkflowContext ctx, int x) => Task.FromResult(double.PositiveInfinity));
        var eventNaN = dbos.RegisterWorkflow("event-nan", async (WorkflowContext ctx, int x) =>
        {
            await ctx.SetEventAsync("k", double.NegativeInfinity);
            return (double)x;
        });
        dbos.RegisterQueue("q");
        await dbos.LaunchAsync();
        await using var reader = DbosClient.Create(new DbosClientOptions { SystemDatabaseUrl = db.Url, SystemDatabaseSchema = db.Schema });

        // Values that cannot be JSON: refused before a row exists, directly and on a queue.
        var refused = 0;
        async Task RefusedAsync(string label, Func<string, Task> start)
        {
            var id = $"refused-{refused++}";
            var ex = await Assert.ThrowsAsync<DbosSerializationException>(() => start(id));
            Assert.Contains("cannot be serialized", ex.Message, StringComparison.Ordinal);
            Assert.Null(await dbos.GetWorkflowStatusAsync(id));
            Assert.Equal(0, await db.CountAsync($"SELECT count(*) FROM {{workflow_input}} WHERE workflow_uuid = '{id}'"));
            _ = label;
        }

        foreach (var value in new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity })
        {
            await RefusedAsync($"{value}", id => echoDouble.StartAsync(value, new StartOptions { WorkflowId = id }));
            await RefusedAsync($"{value} queued", id => echoDouble.StartAsync(value, new StartOptions { WorkflowId = id, Queue = "q" }));
            await RefusedAsync($"{value} as object", id => echoObject.StartAsync(new Point(1, value, null, default, default, 0), new StartOptions { WorkflowId = id }));
            await RefusedAsync($"{value} enqueued by a client", id => reader.EnqueueAsync<double, double>(new EnqueueOptions { WorkflowName = "echo-double", QueueName = "q", WorkflowId = id }, value));
        }

        var loop = new Node { Name = "a" };
        loop.Next = new Node { Name = "b", Next = loop };
        await RefusedAsync("cycle", id => echoNode.StartAsync(loop, new StartOptions { WorkflowId = id }));
        await RefusedAsync("too deep", id => echoObject.StartAsync(Nest(300), new StartOptions { WorkflowId = id }));
        await RefusedAsync("a delegate", id => echoObject.StartAsync(new Func<int>(() => 1), new StartOptions { WorkflowId = id }));

        // Text that is not valid UTF-16 would be stored with U+FFFD in place of the unpaired surrogate: a different value.
        await RefusedAsync("unpaired surrogate", id => echoString.StartAsync("a\uD800b", new StartOptions { WorkflowId = id }));
        await RefusedAsync("unpaired surrogate in a record", id => echoPoint.StartAsync(new Point(1, 2, "\uDC00", default, default, 0), new StartOptions { WorkflowId = id }));
        await RefusedAsync("unpaired surrogate as a key", id => echoObject.StartAsync(new Dictionary<string, int> { ["k\uD83D"] = 1 }, new StartOptions { WorkflowId = id }));
        var messages = await db.CountAsync("SELECT count(*) FROM {notifications}");
        await Assert.ThrowsAsync<DbosSerializationException>(() => dbos.SendAsync("refused-0", double.NaN));
        Assert.Equal(messages, await db.CountAsync("SELECT count(*) FROM {notifications}"));

        // Produced inside a workflow: the workflow fails with the serialization error, and the bad value is not recorded.
        foreach (var (workflow, id) in new[] { (stepNaN, "step-nan"), (outputInfinity, "output-infinity"), (eventNaN, "event-nan") })
        {
            var failed = await Assert.ThrowsAsync<WorkflowFailedException>(() => workflow.RunAsync(1, new StartOptions { WorkflowId = id }));
            Assert.Equal(nameof(DbosSerializationException), failed.ErrorName);
            Assert.Equal(WorkflowState.Error, (await dbos.GetWorkflowStatusAsync(id))!.State);
            Assert.Empty(await dbos.ListWorkflowStepsAsync(id));
        }

        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {workflow_events}"));

        // Values that are JSON come back exactly, read from the database by another process.
        async Task<T?> ThroughDatabaseAsync<T>(Workflow<T, T> workflow, T value, string id)
        {
            await workflow.RunAsync(value, new StartOptions { WorkflowId = id });
            return await (await reader.RetrieveWorkflowAsync<T>(id)).GetResultAsync();
        }

        var dates = new[]
        {
            new DateTime(2031, 2, 3, 4, 5, 6, 789, DateTimeKind.Utc).AddTicks(1234), new DateTime(2031, 2, 3, 4, 5, 6, DateTimeKind.Unspecified),
            new DateTime(2031, 2, 3, 4, 5, 6, DateTimeKind.Local), DateTime.MinValue, DateTime.MaxValue, DateTime.SpecifyKind(DateTime.MaxValue, DateTimeKind.Utc),
        };
        foreach (var (date, i) in dates.Select((d, i) => (d, i)))
        {
            var back = await ThroughDatabaseAsync(echoDate, date, $"date-{i}");
            Assert.True(back.Ticks == date.Ticks && back.Kind == date.Kind, $"{date:O} ({date.Kind}) came back as {back:O} ({back.Kind})");
        }

        var bigText = string.Concat(Enumerable.Repeat("Grüße, 世界! 😀 \"quoted\" \\ \0 \u2028", 5 * 1024 * 1024 / 30));
        foreach (var (text, i) in new[] { null, string.Empty, "\0", "a\0b", bigText, "\u202E\u0301", "'; DROP TABLE workflow_status; --" }.Select((t, i) => (t, i)))
        {
            Assert.Equal(text, await ThroughDatabaseAsync(echoString, text, $"string-{i}"));
        }

        Assert.Equal(bigText, (await reader.GetWorkflowStatusAsync("string-4"))!.GetInput<string>());
        foreach (var (point, i) in new[] { default, new Point(-1, double.Epsilon, "😀", DateTimeOffset.MaxValue, Guid.Empty, decimal.MaxValue), new Point(int.MinValue, -0.0, "", DateTimeOffset.MinValue, Guid.NewGuid(), decimal.MinValue) }.Select((p, i) => (p, i)))
        {
            Assert.Equal(point, await ThroughDatabaseAsync(echoPoint, point, $"point-{i}"));
        }

        foreach (var (value, i) in new[] { double.MaxValue, double.MinValue, double.Epsilon, 0.1 + 0.2, -0.0 }.Select((v, i) => (v, i)))
        {
            Assert.Equal(value, await ThroughDatabaseAsync(echoDouble, value, $"double-{i}"));
        }

        Assert.Equal(1, (await echoObject.RunAsync(Nest(40), new StartOptions { WorkflowId = "nested" })) is List<object> ? 1 : 0);
        Assert.Equal(System.Text.Json.JsonValueKind.Array, (await (await reader.RetrieveWorkflowAsync<System.Text.Json.JsonElement>("nested")).GetResultAsync()).ValueKind);

        // An object-typed input is stored as its runtime type's JSON, and another process reads that JSON back.
        object?[] objects =
        [
            null, 42, -1.5, true, "text", 'c', 12345678901234.5678m, System.Numerics.BigInteger.Parse("123456789012345678901234567890", CultureInfo.InvariantCulture),
            Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), new DateTimeOffset(2031, 2, 3, 4, 5, 6, TimeSpan.FromHours(-7)), new[] { 1, 2, 3 },
            new Dictionary<string, object?> { ["a"] = 1, ["b"] = null, ["😀"] = new[] { "x" } }, new Point(1, 2.5, "p", default, default, 1m), new byte[] { 0, 1, 255 },
            TimeSpan.FromMinutes(90), DayOfWeek.Friday, new List<object?> { 1, "two", null, 3.0 },
        ];
        foreach (var (value, i) in objects.Select((v, i) => (v, i)))
        {
            var id = $"object-{i}";
            await echoObject.RunAsync(value, new StartOptions { WorkflowId = id });
            var expected = value is null ? "null" : PortableJsonSerializer.Default.Serialize(value, value.GetType());
            var status = (await reader.GetWorkflowStatusAsync(id))!;
            Assert.Equal($$"""{"positionalArgs":[{{expected}}]}""", status.RawInput);
            var back = await (await reader.RetrieveWorkflowAsync<System.Text.Json.JsonElement?>(id)).GetResultAsync();
            Assert.Equal(expected, back is { } element ? element.GetRawText() : "null");
        }

        Assert.Equal(0, await db.CountAsync("SELECT count(*) FROM {workflow_status} WHERE status = 'PENDING'"));
    }

    // ---- SQL built from code, never from values ----

    /// <summary>A string literal of the C# sources: where it starts, its text outside holes, and its interpolation holes.</summary>
    internal sealed record Literal(string File, int Line, int Start, int End, string Text, IReadOnlyList<string> Holes);

    /// <summary>
    /// The string literals of a C# source file: regular, verbatim and raw, interpolated or not, with the expressions of their
    /// holes. Comments and character literals are skipped. Enough of C# for this repository's sources, not a full lexer.
    /// </summary>
    internal static List<Literal> Literals(string file, string source)
    {
        var literals = new List<Literal>();
        var i = 0;
        int LineOf(int position) => source.AsSpan(0, position).Count('\n') + 1;
        while (i < source.Length)
        {
            if (source[i] == '/' && i + 1 < source.Length && source[i + 1] == '/')
            {
                i = source.IndexOf('\n', i) is var eol && eol < 0 ? source.Length : eol;
            }
            else if (source[i] == '/' && i + 1 < source.Length && source[i + 1] == '*')
            {
                i = source.IndexOf("*/", i + 2, StringComparison.Ordinal) + 2;
            }
            else if (source[i] == '\'')
            {
                i++;
                while (source[i] != '\'')
                {
                    i += source[i] == '\\' ? 2 : 1;
                }

                i++;
            }
            else if (source[i] is '"' or '$' or '@' && StringStart(source, i) is { } start)
            {
                var (text, holes, end) = ReadString(source, i, start.Dollars, start.Verbatim, start.Quotes, start.Content);
                literals.Add(new Literal(file, LineOf(i), i, end, text, holes));
                i = end;
            }
            else
            {
                i++;
            }
        }

        return literals;
    }

    private static (int Dollars, bool Verbatim, int Quotes, int Content)? StringStart(string source, int i)
    {
        var j = i;
        var dollars = 0;
        var verbatim = false;
        while (j < source.Length && (source[j] == '$' || source[j] == '@'))
        {
            dollars += source[j] == '$' ? 1 : 0;
            verbatim |= source[j] == '@';
            j++;
        }

        if (j >= source.Length || source[j] != '"' || (j > i && i > 0 && (char.IsLetterOrDigit(source[i - 1]) || source[i - 1] == '_')))
        {
            return null;
        }

        var quotes = 0;
        while (j + quotes < source.Length && source[j + quotes] == '"')
        {
            quotes++;
        }

        // "" is an empty regular string; three or more quotes open a raw string.
        return quotes >= 3 ? (dollars, false, quotes, j + quotes) : (dollars, verbatim, 1, j + 1);
    }

    private static (string Text, List<string> Holes, int End) ReadString(string source, int i, int dollars, bool verbatim, int quotes, int j)
    {
        var text = new StringBuilder();
        var holes = new List<string>();
        var open = new string('{', Math.Max(dollars, 1));
        while (true)
        {
            if (quotes >= 3 ? source.AsSpan(j).StartsWith(new string('"', quotes), StringComparison.Ordinal) : source[j] == '"' && !(verbatim && j + 1 < source.Length && source[j + 1] == '"'))
            {
                return (text.ToString(), holes, j + quotes);
            }

            if (quotes < 3 && !verbatim && source[j] == '\\')
            {
                text.Append(source, j, 2);
                j += 2;
            }
            else if (quotes < 3 && verbatim && source[j] == '"')
            {
                text.Append('"');
                j += 2;
            }
            else if (dollars == 1 && quotes < 3 && source.AsSpan(j).StartsWith("{{", StringComparison.Ordinal))
            {
                text.Append('{');
                j += 2;
            }
            else if (dollars > 0 && source.AsSpan(j).StartsWith(open, StringComparison.Ordinal))
            {
                j += open.Length;
                var holeStart = j;
                var depth = 0;
                while (depth > 0 || source[j] != '}')
                {
                    if (source[j] is '(' or '[' or '{')
                    {
                        depth++;
                    }
                    else if (source[j] is ')' or ']' or '}')
                    {
                        depth--;
                    }
                    else if (source[j] == '"' || (source[j] == '$' && source[j + 1] == '"'))
                    {
                        var nested = StringStart(source, j)!.Value;
                        j = ReadString(source, j, nested.Dollars, nested.Verbatim, nested.Quotes, nested.Content).End - 1;
                    }
                    else if (source[j] == '\'')
                    {
                        j++;
                        while (source[j] != '\'')
                        {
                            j += source[j] == '\\' ? 2 : 1;
                        }
                    }

                    j++;
                }

                holes.Add(source[holeStart..j].Trim());
                text.Append('\u0001');
                j += open.Length;
            }
            else
            {
                text.Append(source[j]);
                j++;
            }
        }
    }

    // A literal is SQL when its text (outside holes) has an SQL keyword in capitals, as every statement here is written.
    private static readonly System.Text.RegularExpressions.Regex SqlKeyword = new(
        @"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE|ALTER|DROP|LISTEN|VALUES|WHERE|ON CONFLICT|RETURNING|ORDER BY|LIMIT|OFFSET|AND|OR)\b");

    /// <summary>
    /// What may fill a hole of an SQL literal, or be concatenated to one: names of tables, columns and schemas written in
    /// the code, the dialect's fixed fragments, fragments assembled from those, and numbers (parameter positions, versions,
    /// lock keys). Every value that comes from a user or the database goes in the statement's argument array instead.
    /// </summary>
    private static readonly System.Text.RegularExpressions.Regex AllowedHole = new(
        "^(" + string.Join("|",
            @"d\.Table\(""[a-z_]+""\)",                                                   // a system table of the dialect
            @"d\.Table\(table\)",                                                         // ...named by a loop over literals
            @"d\.(NowMs|ForUpdateSkipLocked|ForUpdateNoWait|InsertionOrder)",           // fixed fragments of the dialect
            @"d\.(InList|StartsWith)\(""[a-z_.]+"", \d+\)",                               // conditions on a column, with $n
            @"ws|notifications|streams|table|lockMode|scope|partitionFilter|sql|idleCte|claimedStatusInsert|InFlightIndexHint", // locals assembled from the above
            @"StatusColumns|StatusTailColumns|OperationColumns|ScheduleColumns|QueueColumns|insertStatusSql|completeStatusSql|selectSql",
            @"keysetAt|keysetId",                                                         // the dashboard's keyset, as $n positions
            @"d\.TimeBucket\(""[a-z_]+"", \d+, \d+\)",                                 // a chart's bucket of a column, with $n positions
            @"FinishedStatuses|queue|wait",                                               // the charts' fixed conditions and expressions
            @"migrations|nowMs|NowMs|enqueueArgs|statusInputColumn|statusInputValue|inputInsert", // DDL fragments written in the code
            @"""[^""]*""",                                                                // a literal
            @"\(?d\.IsPostgres \? ""[^""]*"" : ""[^""]*""\)?",                             // a choice between two fragments
            @"s|quotedSchema|Dialect\.QuotedSchema|postgres\.QuotedSchema|NowMsDefault",  // the quoted schema (an identifier)
            @"(SystemDatabase\.)?PostgresSchema\.Quote\([\w.]+\)|Quote\([\w.]+\)",        // identifiers quoted for Postgres
            @"table\.Replace\(""\\""""?, ""\\""\\""""?, StringComparison\.Ordinal\)",      // a table name quoted for SQLite
            @"version|MigrationLockKey|parameter|args\.Length \+ 1|column|channel",     // numbers, and a dialect's own arguments
            @"PostgresSchema\.LatestVersion|current",                                    // schema version numbers
            @"GeneratedPrefix|SessionNamePrefix(\.Length \+ 1)?|VersionMarkerPrefix|HeldLocks|CandidatesSql", // liveness constants
            @"condition|RequeueSql\(""[^""]*""\)|keyOf\(""\$\d"", .*\)|VersionMarker\(\)")   // liveness fragments (a version only of [A-Za-z0-9._:+-])
        + ")$");

    /// <summary>
    /// A static check that no statement is built from a value. The heuristic: every string literal of src/**/*.cs whose text
    /// has an SQL keyword in capitals (as every statement here is written), or that continues such a literal with '+', is
    /// SQL. Each interpolation hole of an SQL literal, and each operand joined to one with '+', must be one of the known
    /// identifier helpers and fixed fragments of <see cref="AllowedHole"/> (d.Table("..."), d.NowMs, ws, d.InList("...", n),
    /// the column lists, the quoted schema, parameter positions...). A user value spliced in, as {workflowId} or
    /// + queue.Name +, is none of them and fails the test, which the last assertions show. What it cannot see: text added
    /// with StringBuilder.Append (ListWorkflowsAsync appends only literals, column lists and $n positions) and SQL assembled
    /// in a variable under an allowed name; those are few and reviewed by hand.
    /// </summary>
    [Fact]
    public void Sql_is_built_only_from_identifiers_and_fixed_fragments_never_from_values()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Dbos.slnx")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("The repository root (Dbos.slnx) was not found.");
        }

        var problems = new List<string>();
        var sqlLiterals = 0;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            var source = File.ReadAllText(file);
            var relative = Path.GetRelativePath(root, file);
            problems.AddRange(SqlProblems(relative, source, out var count));
            sqlLiterals += count;
        }

        Assert.True(problems.Count == 0, "SQL built from something that is not a known identifier or fragment:\n" + string.Join("\n", problems));
        Assert.True(sqlLiterals > 100, $"only {sqlLiterals} SQL literals found: the scanner no longer sees the statements");

        // The check catches a value spliced into a statement, by interpolation or by concatenation.
        Assert.NotEmpty(SqlProblems("bad.cs", "var sql = $\"SELECT status FROM {d.Table(\"workflow_status\")} WHERE workflow_uuid = '{workflowId}'\";", out _));
        Assert.NotEmpty(SqlProblems("bad.cs", "var sql = \"DELETE FROM queues WHERE name = '\" + queue.Name + \"'\";", out _));
        Assert.NotEmpty(SqlProblems("bad.cs", "var sql = $$\"\"\"UPDATE x SET a = {{value}} WHERE b = 1\"\"\";", out _));
        Assert.Empty(SqlProblems("good.cs", "var sql = $\"SELECT status FROM {d.Table(\"workflow_status\")} WHERE workflow_uuid = $1\";", out _));
    }

    /// <summary>The holes and concatenated operands of the SQL literals in <paramref name="source"/> that are not allowed.</summary>
    private static List<string> SqlProblems(string file, string source, out int sqlLiterals)
    {
        var problems = new List<string>();
        sqlLiterals = 0;
        Literal? previous = null;
        var previousIsSql = false;
        foreach (var literal in Literals(file, source))
        {
            // A literal continuing an SQL literal with '+' is SQL too, keyword or not.
            var continues = previous is not null && previousIsSql && source.AsSpan(previous.End, literal.Start - previous.End).Trim().SequenceEqual("+");
            previous = literal;
            previousIsSql = continues || SqlKeyword.IsMatch(literal.Text);
            if (!previousIsSql)
            {
                continue;
            }

            sqlLiterals++;
            foreach (var hole in literal.Holes.Where(h => !AllowedHole.IsMatch(h)))
            {
                problems.Add($"{literal.File}:{literal.Line}: hole {{{hole}}}");
            }

            // An operand joined to the literal with '+': the identifier (or call) just before or after it.
            var before = System.Text.RegularExpressions.Regex.Match(source[..literal.Start], @"([\w.]+(\([^()]*\))?)\s*\+\s*$");
            var after = System.Text.RegularExpressions.Regex.Match(source[literal.End..], @"^\s*\+\s*([\w.]+(\([^()]*\))?)");
            foreach (var operand in new[] { before, after }.Where(m => m.Success).Select(m => m.Groups[1].Value))
            {
                if (!AllowedHole.IsMatch(operand) && !char.IsDigit(operand[0]))
                {
                    problems.Add($"{literal.File}:{literal.Line}: concatenated {operand}");
                }
            }
        }

        return problems;
    }

    private static string Show(string url) => url.Length > 200 ? url[..200] + $"… ({url.Length} chars)" : url.Replace("\0", "\\0", StringComparison.Ordinal);
}
