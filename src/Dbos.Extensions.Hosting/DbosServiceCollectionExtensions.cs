using Dbos;
using Dbos.Extensions.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds DBOS to an application's services.</summary>
public static class DbosServiceCollectionExtensions
{
    /// <summary>The configuration section <see cref="AddDbos"/> binds <see cref="DbosConfig"/> from: <c>Dbos</c>.</summary>
    public const string ConfigurationSectionName = "Dbos";

    /// <summary>
    /// Adds a DBOS application to the services: a singleton <see cref="DbosApp"/>, and a hosted service that launches it
    /// when the host starts and shuts it down gracefully when the host stops.
    /// <list type="bullet">
    /// <item>The <see cref="DbosConfig"/> is bound from the configuration section <c>Dbos</c> (<c>Dbos:Name</c>,
    /// <c>Dbos:SystemDatabaseUrl</c>, <c>Dbos:PollingInterval</c> as <c>00:00:01</c>…, or environment variables such as
    /// <c>Dbos__SystemDatabaseUrl</c>), then <paramref name="configure"/> runs. Without a URL, <c>DBOS_SYSTEM_DATABASE_URL</c>
    /// applies, else a SQLite file named after the application.</item>
    /// <item>The configuration is validated when the host starts: a problem fails the start with an
    /// <see cref="OptionsValidationException"/> naming it, before anything is written.</item>
    /// <item>Unless set, <see cref="DbosConfig.LoggerFactory"/> and <see cref="DbosConfig.TimeProvider"/> come from the
    /// services (<see cref="ILoggerFactory"/>, a registered <see cref="TimeProvider"/>), and
    /// <see cref="DbosConfig.ServiceProvider"/> is the application's: each workflow execution gets its own scope.</item>
    /// </list>
    /// Calling it again adds no second application: its <paramref name="configure"/> runs after the earlier ones.
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configure">Changes the configuration after it is bound from the <c>Dbos</c> section.</param>
    /// <returns>A builder to add workflows and queues.</returns>
    public static IDbosBuilder AddDbos(this IServiceCollection services, Action<DbosConfig>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (!services.Any(d => d.ServiceType == typeof(DbosServicesMarker)))
        {
            services.AddSingleton<DbosServicesMarker>();
            services.AddOptions<DbosConfig>()
                .Configure<IServiceProvider>((config, provider) =>
                {
                    if (provider.GetService<IConfiguration>() is { } configuration)
                    {
                        configuration.GetSection(ConfigurationSectionName).Bind(config);
                    }
                })
                .ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DbosConfig>, DbosConfigValidator>());
            services.AddOptions<DbosAppSetup>();
            services.TryAddSingleton(CreateApp);
            services.AddHostedService<DbosHostedService>();
        }

        if (configure is not null)
        {
            services.Configure(configure);
        }

        return new DbosBuilder(services);
    }

    private static DbosApp CreateApp(IServiceProvider services)
    {
        // The bound options stay as configured: the host's services fill a copy.
        var configured = services.GetRequiredService<IOptions<DbosConfig>>().Value;
        var config = new DbosConfig(configured)
        {
            LoggerFactory = configured.LoggerFactory ?? services.GetService<ILoggerFactory>(),
            TimeProvider = configured.TimeProvider ?? services.GetService<TimeProvider>(),
            ServiceProvider = configured.ServiceProvider ?? services,
        };

        var app = DbosApp.Create(config);
        foreach (var setup in services.GetRequiredService<IOptions<DbosAppSetup>>().Value.Actions)
        {
            setup(app, services);
        }

        return app;
    }
}
