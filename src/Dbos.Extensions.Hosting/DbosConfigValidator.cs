using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Dbos.Extensions.Hosting;

/// <summary>Checks the bound <see cref="DbosConfig"/> with <see cref="DbosConfig.Validate"/>, at host start.</summary>
internal sealed class DbosConfigValidator : IValidateOptions<DbosConfig>
{
    public ValidateOptionsResult Validate(string? name, DbosConfig options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (name != Options.DefaultName)
        {
            return ValidateOptionsResult.Skip;
        }

        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (DbosConfigurationException ex)
        {
            return ValidateOptionsResult.Fail(
                $"The DBOS configuration is invalid. {ex.Message} The settings come from the configuration section " +
                $"'{DbosServiceCollectionExtensions.ConfigurationSectionName}' (for example {DbosServiceCollectionExtensions.ConfigurationSectionName}:Name in appsettings.json, " +
                $"or the environment variable {DbosServiceCollectionExtensions.ConfigurationSectionName}__Name) and from the delegate given to AddDbos.");
        }
    }
}
