using Dbos.Tests.Infrastructure;

namespace Dbos.Tests.Interop;

/// <summary>
/// A system database created by this library and one created by the TypeScript SDK in the same run are the same
/// schema, and each SDK launches on the other's database without changing it.
/// </summary>
public class SchemaInteropTests
{
    private const string LaunchAndShutDown = """
        main(async () => {
          DBOS.setConfig({ name: 'ts-schema', systemDatabaseUrl: url });
          await DBOS.launch();
          await DBOS.shutdown();
          report('launched');
        });
        """;

    [Fact]
    public async Task A_database_created_by_dotnet_equals_one_created_by_the_typescript_sdk()
    {
        await using var ours = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using var theirs = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);

        await using (var dbos = DbosApp.Create(ours.Config("dotnet-schema")))
        {
            await dbos.LaunchAsync();
        }

        Assert.Equal("launched", Assert.Single(await Peer.RunAsync(theirs, LaunchAndShutDown)).GetString());

        SchemaDump.AssertEqual(await SchemaDump.OfAsync(theirs.Url), await SchemaDump.OfAsync(ours.Url));
        Assert.Equal(await SchemaDump.MigrationVersionsAsync(theirs.Url), await SchemaDump.MigrationVersionsAsync(ours.Url));
    }

    [Fact]
    public async Task The_typescript_sdk_launches_on_a_dotnet_database_without_migrating()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await using (var dbos = DbosApp.Create(db.Config("dotnet-schema")))
        {
            await dbos.LaunchAsync();
        }

        var before = await SchemaDump.OfAsync(db.Url);
        var versions = await SchemaDump.MigrationVersionsAsync(db.Url);

        var (exit, output) = await TypeScriptPeer.RunScriptAsync(Peer.Prelude + LaunchAndShutDown, Peer.Environment(db));
        Assert.True(exit == 0, output);
        Assert.DoesNotContain("migration", output, StringComparison.OrdinalIgnoreCase);

        SchemaDump.AssertEqual(before, await SchemaDump.OfAsync(db.Url));
        Assert.Equal(versions, await SchemaDump.MigrationVersionsAsync(db.Url));
    }

    [Fact]
    public async Task Dotnet_launches_on_a_typescript_database_without_changing_its_schema()
    {
        await using var db = await TestDatabase.CreateAsync(Backend.Postgres, ownDatabase: true);
        await Peer.RunAsync(db, LaunchAndShutDown);
        var before = await SchemaDump.OfAsync(db.Url);
        var versions = await SchemaDump.MigrationVersionsAsync(db.Url);

        await using (var dbos = DbosApp.Create(db.Config("dotnet-schema")))
        {
            var hello = dbos.RegisterWorkflow("hello", (WorkflowContext _, string name) => Task.FromResult("hello " + name));
            await dbos.LaunchAsync();
            Assert.Equal("hello db", await hello.RunAsync("db"));
        }

        SchemaDump.AssertEqual(before, await SchemaDump.OfAsync(db.Url));
        Assert.Equal(versions, await SchemaDump.MigrationVersionsAsync(db.Url));
    }
}
