using Microsoft.Extensions.DependencyInjection;

namespace Dbos.Extensions.Hosting;

/// <summary>
/// Adds workflows, queues and other registrations to the DBOS application of a service collection. Returned by
/// <see cref="DbosServiceCollectionExtensions.AddDbos"/>; its methods are extension methods in
/// <see cref="DbosBuilderExtensions"/>.
/// </summary>
public interface IDbosBuilder
{
    /// <summary>The service collection DBOS is added to.</summary>
    IServiceCollection Services { get; }
}

/// <summary>The builder <see cref="DbosServiceCollectionExtensions.AddDbos"/> returns.</summary>
internal sealed class DbosBuilder(IServiceCollection services) : IDbosBuilder
{
    public IServiceCollection Services { get; } = services;
}
