namespace Dbos.Extensions.Hosting;

/// <summary>
/// The registrations made through <see cref="IDbosBuilder"/>, run in order on the <see cref="DbosApp"/> right after it is
/// created, before it launches. Collected as options, so every <c>AddDbos</c> call adds to the same list.
/// </summary>
internal sealed class DbosAppSetup
{
    public List<Action<DbosApp, IServiceProvider>> Actions { get; } = [];
}

/// <summary>Marks a service collection that <c>AddDbos</c> has already set up, so a second call adds nothing twice.</summary>
internal sealed class DbosServicesMarker;
