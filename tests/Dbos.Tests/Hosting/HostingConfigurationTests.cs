using System.Globalization;
using Dbos.Extensions.Hosting;
using Dbos.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Dbos.Tests.Hosting;

/// <summary>AddDbos: configuration binding, validation at host start, and what it registers.</summary>
public class HostingConfigurationTests
{
    [Theory, BothBackends]
    public async Task A_workflow_delegate_that_returns_no_value_is_added_without_type_arguments_and_started_from_its_keyed_reference(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var builder = TestHosts.Builder(new Dictionary<string, string?>
        {
            ["Dbos:Name"] = "void-app",
            ["Dbos:SystemDatabaseUrl"] = db.Url,
            ["Dbos:SystemDatabaseSchema"] = db.Schema,
        });
        var noted = new System.Collections.Concurrent.ConcurrentQueue<string>();
        builder.Services.AddDbos()
            .AddWorkflow("note", async (WorkflowContext ctx, string text) => await ctx.RunStepAsync("note", () => noted.Enqueue(text)))
            .AddWorkflow("shout", (WorkflowContext ctx, string text) => Task.FromResult(text.ToUpperInvariant()));

        using var host = builder.Build();
        await host.StartAsync().WaitAsync(TestHosts.Deadline);
        try
        {
            var note = host.Services.GetRequiredKeyedService<VoidWorkflow<string>>("note");
            await note.RunAsync("hello").WaitAsync(TestHosts.Deadline);
            Assert.Equal(["hello"], noted);

            // A delegate that returns a value still registers the workflow with a result.
            var shout = host.Services.GetRequiredKeyedService<Workflow<string, string>>("shout");
            Assert.Equal("HEY", await shout.RunAsync("hey").WaitAsync(TestHosts.Deadline));
            Assert.Throws<ArgumentException>(() => host.Services.GetRequiredService<DbosApp>().GetVoidWorkflow<string>("shout"));
        }
        finally
        {
            await host.StopAsync().WaitAsync(TestHosts.Deadline);
        }
    }

    [Theory, BothBackends]
    public async Task The_Dbos_configuration_section_configures_the_app_and_the_delegate_runs_after_it(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var builder = TestHosts.Builder(new Dictionary<string, string?>
        {
            ["Dbos:Name"] = "configured-app",
            ["Dbos:SystemDatabaseUrl"] = db.Url,
            ["Dbos:SystemDatabaseSchema"] = db.Schema,
            ["Dbos:SystemDatabasePoolSize"] = "7",
            ["Dbos:ExecutorId"] = "executor-7",
            ["Dbos:ApplicationVersion"] = "from-configuration",
            ["Dbos:MaxRecoveryAttempts"] = "3",
            ["Dbos:RecoverPendingWorkflows"] = "false",
            ["Dbos:SqliteSynchronous"] = "Full",
            ["Dbos:PollingInterval"] = "00:00:00.050",
            ["Dbos:ListenQueues:0"] = "orders",
            ["Dbos:ListenQueues:1"] = "emails",
        });
        builder.Services.AddDbos(c => c.ApplicationVersion += "+code")
            .AddQueue("orders")
            .AddQueue("emails")
            .AddWorkflow("greet", (WorkflowContext ctx, string name) => Task.FromResult($"hello {name}"));

        using var host = builder.Build();
        var dbos = host.Services.GetRequiredService<DbosApp>();
        var config = dbos.Config;
        Assert.Equal("configured-app", config.Name);
        Assert.Equal(db.Url, config.SystemDatabaseUrl);
        Assert.Equal(db.Schema, config.SystemDatabaseSchema);
        Assert.Equal(7, config.SystemDatabasePoolSize);
        Assert.Equal("executor-7", dbos.ExecutorId);
        Assert.Equal(3, config.MaxRecoveryAttempts);
        Assert.False(config.RecoverPendingWorkflows);
        Assert.Equal(SqliteSynchronous.Full, config.SqliteSynchronous);
        Assert.Equal(TimeSpan.FromMilliseconds(50), config.PollingInterval);
        Assert.Equal(["orders", "emails"], config.ListenQueues!);
        Assert.Equal("from-configuration+code", config.ApplicationVersion);

        await host.StartAsync().WaitAsync(TestHosts.Deadline);
        Assert.Equal("from-configuration+code", dbos.ApplicationVersion);
        var greet = dbos.GetWorkflow<string, string>("greet");
        var handle = await greet.StartAsync("ada", new StartOptions { Queue = "orders" });
        Assert.Equal("hello ada", await handle.GetResultAsync().WaitAsync(TestHosts.Deadline));
        var applications = await db.QueryAsync("SELECT application_name FROM {workflow_status}", r => r.GetString(0));
        Assert.Equal("configured-app", Assert.Single(applications));
        await host.StopAsync().WaitAsync(TestHosts.Deadline);
    }

    [Theory, BothBackends]
    public async Task Environment_variables_named_Dbos__Setting_configure_the_app(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);

        // A prefix of its own keeps this test's variables away from every other test running in this process.
        var prefix = $"DBOS_HOSTING_TEST_{Guid.NewGuid():N}_";
        var variables = new Dictionary<string, string>
        {
            [prefix + "Dbos__Name"] = "env-app",
            [prefix + "Dbos__SystemDatabaseUrl"] = db.Url,
            [prefix + "Dbos__SystemDatabaseSchema"] = db.Schema,
            [prefix + "Dbos__ApplicationVersion"] = "env-version",
            [prefix + "Dbos__PollingInterval"] = "00:00:00.100",
            [prefix + "Dbos__ListenQueues__0"] = "env-queue",
        };
        try
        {
            foreach (var (key, value) in variables)
            {
                Environment.SetEnvironmentVariable(key, value);
            }

            var builder = TestHosts.Builder();
            builder.Configuration.AddEnvironmentVariables(prefix);
            builder.Services.AddDbos()
                .AddQueue("env-queue")
                .AddWorkflow("double", (WorkflowContext ctx, int x) => Task.FromResult(2 * x));
            using var host = builder.Build();
            var dbos = host.Services.GetRequiredService<DbosApp>();
            Assert.Equal("env-app", dbos.Name);
            Assert.Equal(db.Url, dbos.Config.SystemDatabaseUrl);
            Assert.Equal(TimeSpan.FromMilliseconds(100), dbos.Config.PollingInterval);
            Assert.Equal(["env-queue"], dbos.Config.ListenQueues!);

            await host.StartAsync().WaitAsync(TestHosts.Deadline);
            var handle = await dbos.GetWorkflow<int, int>("double").StartAsync(21, new StartOptions { Queue = "env-queue" });
            Assert.Equal(42, await handle.GetResultAsync().WaitAsync(TestHosts.Deadline));
            Assert.Equal("env-version", (await handle.GetStatusAsync())!.ApplicationVersion);
            await host.StopAsync().WaitAsync(TestHosts.Deadline);
        }
        finally
        {
            foreach (var key in variables.Keys)
            {
                Environment.SetEnvironmentVariable(key, null);
            }
        }
    }

    [Fact]
    public void Automatic_retention_binds_from_configuration()
    {
        var builder = TestHosts.Builder(new Dictionary<string, string?>
        {
            ["Dbos:Retention:MaxAge"] = "7.00:00:00",
            ["Dbos:Retention:MaxWorkflows"] = "1000",
            ["Dbos:Retention:Interval"] = "00:10:00",
        });
        builder.Services.AddDbos();
        using var host = builder.Build();
        var config = new DbosConfig();
        foreach (var configure in host.Services.GetServices<IConfigureOptions<DbosConfig>>())
        {
            configure.Configure(config);
        }

        Assert.Equal(new RetentionOptions { MaxAge = TimeSpan.FromDays(7), MaxWorkflows = 1000, Interval = TimeSpan.FromMinutes(10) }, config.Retention);
    }

    [Fact]
    public void Every_DbosConfig_setting_of_a_simple_type_binds_from_configuration()
    {
        // Guards the compile-time binder: a setting added to DbosConfig later binds too, or this test names it.
        var values = new Dictionary<string, string?>();
        var expected = new Dictionary<string, object>();
        foreach (var property in typeof(DbosConfig).GetProperties().Where(p => p.CanWrite))
        {
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            (string Text, object Value)? sample = type switch
            {
                _ when type == typeof(string) => ("text-" + property.Name, "text-" + property.Name),
                _ when type == typeof(int) => ("17", 17),
                _ when type == typeof(bool) => ("false", false),
                _ when type == typeof(TimeSpan) => ("00:00:03", TimeSpan.FromSeconds(3)),
                _ when type.IsEnum => (Enum.GetNames(type)[^1], Enum.Parse(type, Enum.GetNames(type)[^1])),
                _ when type == typeof(IReadOnlyList<string>) => (null!, new[] { "a", "b" }),
                _ => null,
            };
            if (sample is null)
            {
                continue;
            }

            if (type == typeof(IReadOnlyList<string>))
            {
                values[$"Dbos:{property.Name}:0"] = "a";
                values[$"Dbos:{property.Name}:1"] = "b";
            }
            else
            {
                values[$"Dbos:{property.Name}"] = sample.Value.Text;
            }

            expected[property.Name] = sample.Value.Value;
        }

        var builder = TestHosts.Builder(values);
        builder.Services.AddDbos();
        using var host = builder.Build();
        // Runs AddDbos's binding on a fresh instance, without validation: the sample values are not a valid configuration.
        var config = new DbosConfig();
        foreach (var configure in host.Services.GetServices<IConfigureOptions<DbosConfig>>())
        {
            configure.Configure(config);
        }

        Assert.NotEmpty(expected);
        foreach (var (name, value) in expected)
        {
            var actual = typeof(DbosConfig).GetProperty(name)!.GetValue(config);
            Assert.True(
                value is string[] list ? actual is IEnumerable<string> items && items.SequenceEqual(list) : Equals(value, actual),
                $"DbosConfig.{name} was not bound from Dbos:{name} (got '{Convert.ToString(actual, CultureInfo.InvariantCulture)}').");
        }
    }

    public static TheoryData<Backend, string, string, string> InvalidSettings() => new()
    {
        { Backend.Sqlite, "Dbos:Name", "", "DbosConfig.Name is required" },
        { Backend.Postgres, "Dbos:Name", "", "DbosConfig.Name is required" },
        { Backend.Sqlite, "Dbos:SystemDatabaseUrl", "postgres//x", "postgres//x" },
        { Backend.Postgres, "Dbos:SystemDatabaseUrl", "postgres//x", "postgres//x" },
        { Backend.Sqlite, "Dbos:SystemDatabasePoolSize", "-1", "DbosConfig.SystemDatabasePoolSize must be at least 1 (it is -1)" },
        { Backend.Postgres, "Dbos:SystemDatabasePoolSize", "-1", "DbosConfig.SystemDatabasePoolSize must be at least 1 (it is -1)" },
    };

    [Theory, MemberData(nameof(InvalidSettings))]
    public async Task An_invalid_setting_fails_the_host_start_naming_it_and_nothing_is_written(Backend backend, string key, string value, string message)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var settings = new Dictionary<string, string?>
        {
            ["Dbos:Name"] = "invalid-app",
            ["Dbos:SystemDatabaseUrl"] = db.Url,
            ["Dbos:SystemDatabaseSchema"] = db.Schema,
        };
        settings[key] = value;
        var builder = TestHosts.Builder(settings);
        builder.Services.AddDbos().AddWorkflow("never", (WorkflowContext ctx, int x) => Task.FromResult(x));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync().WaitAsync(TestHosts.Deadline));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains("The DBOS configuration is invalid.", error.Message, StringComparison.Ordinal);
        Assert.Contains("configuration section 'Dbos'", error.Message, StringComparison.Ordinal);
        await AssertNothingWrittenAsync(db);
    }

    [Fact]
    public async Task Several_problems_are_named_together()
    {
        var builder = TestHosts.Builder(new Dictionary<string, string?>
        {
            ["Dbos:SystemDatabaseUrl"] = "mysql://db/x",
            ["Dbos:SystemDatabasePoolSize"] = "0",
            ["Dbos:PollingInterval"] = "-00:00:01",
        });
        builder.Services.AddDbos();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync().WaitAsync(TestHosts.Deadline));
        Assert.Contains("DbosConfig.Name is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("unsupported scheme 'mysql'", error.Message, StringComparison.Ordinal);
        Assert.Contains("DbosConfig.SystemDatabasePoolSize must be at least 1 (it is 0)", error.Message, StringComparison.Ordinal);
        Assert.Contains("DbosConfig.PollingInterval must be positive", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_that_does_not_convert_fails_the_host_start_naming_its_key()
    {
        var builder = TestHosts.Builder(new Dictionary<string, string?>
        {
            ["Dbos:Name"] = "app",
            ["Dbos:PollingInterval"] = "soon",
        });
        builder.Services.AddDbos();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync().WaitAsync(TestHosts.Deadline));
        Assert.Contains("Dbos:PollingInterval", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_database_fails_the_host_start_with_a_database_error()
    {
        var builder = TestHosts.Builder(new Dictionary<string, string?>
        {
            ["Dbos:Name"] = "app",
            ["Dbos:SystemDatabaseUrl"] = "postgresql://dbos:secret@127.0.0.1:1/nowhere?connect_timeout=5",
        });
        builder.Services.AddDbos();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<DbosDatabaseException>(() => host.StartAsync().WaitAsync(TestHosts.Deadline));
        Assert.Contains("127.0.0.1:1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
    }

    [Theory, BothBackends]
    public async Task Calling_AddDbos_twice_registers_one_app_and_one_hosted_service_and_applies_both_delegates(Backend backend)
    {
        await using var db = await TestDatabase.CreateAsync(backend);
        var builder = TestHosts.Builder(new Dictionary<string, string?> { ["Dbos:ListenQueues:0"] = "q" });
        builder.Services.AddTestDbos(db, "twice", c => c.ApplicationVersion = "first")
            .AddQueue("q");
        var second = builder.Services.AddDbos(c => c.MaxRecoveryAttempts = 5)
            .AddWorkflow("inc", (WorkflowContext ctx, int x) => Task.FromResult(x + 1));

        Assert.Same(builder.Services, second.Services);
        Assert.Single(builder.Services, d => d.ServiceType == typeof(DbosApp));
        Assert.Single(builder.Services, d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.Assembly == typeof(IDbosBuilder).Assembly);

        using var host = builder.Build();
        Assert.Single(host.Services.GetServices<IHostedService>());
        var dbos = host.Services.GetRequiredService<DbosApp>();
        Assert.Equal("twice", dbos.Name);
        Assert.Equal("first", dbos.Config.ApplicationVersion);
        Assert.Equal(5, dbos.Config.MaxRecoveryAttempts);
        Assert.Equal(["q"], dbos.Config.ListenQueues!);   // bound once, not once per call

        await host.StartAsync().WaitAsync(TestHosts.Deadline);   // launching twice would throw
        var handle = await dbos.GetWorkflow<int, int>("inc").StartAsync(1, new StartOptions { Queue = "q" });
        Assert.Equal(2, await handle.GetResultAsync().WaitAsync(TestHosts.Deadline));
        await host.StopAsync().WaitAsync(TestHosts.Deadline);
    }

    [Fact]
    public void The_logger_factory_and_clock_come_from_the_services_unless_the_configuration_sets_them()
    {
        var fromServices = new FakeTimeProvider();
        var builder = TestHosts.Builder();
        builder.Services.AddSingleton<TimeProvider>(fromServices);
        builder.Services.AddDbos(c =>
        {
            c.Name = "services-app";
            c.SystemDatabaseUrl = "sqlite:///unused.sqlite";
        });
        using (var host = builder.Build())
        {
            var config = host.Services.GetRequiredService<DbosApp>().Config;
            Assert.Same(fromServices, config.TimeProvider);
            Assert.Same(host.Services.GetRequiredService<ILoggerFactory>(), config.LoggerFactory);
            Assert.Same(host.Services.GetRequiredService<DbosApp>(), config.ServiceProvider!.GetRequiredService<DbosApp>());   // the root services
        }

        var own = new FakeTimeProvider();
        using var ownLogging = LoggerFactory.Create(_ => { });
        var second = TestHosts.Builder();
        second.Services.AddSingleton<TimeProvider>(fromServices);
        second.Services.AddDbos(c =>
        {
            c.Name = "own-app";
            c.SystemDatabaseUrl = "sqlite:///unused.sqlite";
            c.TimeProvider = own;
            c.LoggerFactory = ownLogging;
        });
        using var secondHost = second.Build();
        var secondConfig = secondHost.Services.GetRequiredService<DbosApp>().Config;
        Assert.Same(own, secondConfig.TimeProvider);
        Assert.Same(ownLogging, secondConfig.LoggerFactory);
    }

    private static async Task AssertNothingWrittenAsync(TestDatabase db)
    {
        if (db.Backend == Backend.Sqlite)
        {
            Assert.Empty(Directory.GetFiles(db.Directory, "*.sqlite*"));
        }
        else
        {
            var schemas = await TestDatabase.QueryOnAsync(db.Url, $"SELECT schema_name FROM information_schema.schemata WHERE schema_name = '{db.Schema}'");
            Assert.Empty(schemas);
        }
    }
}
