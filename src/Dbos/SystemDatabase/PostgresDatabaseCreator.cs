using System.Net.Sockets;
using Dbos.Internal;
using Npgsql;

namespace Dbos.SystemDatabase;

/// <summary>
/// Creates a missing Postgres database, through the server's <c>postgres</c> database: the one place that does it, for
/// the system database and for application databases (<see cref="DatasourceOptions.CreateDatabaseIfMissing"/>).
/// </summary>
internal static class PostgresDatabaseCreator
{
    /// <summary>Whether opening a connection failed because its database does not exist.</summary>
    public static bool IsMissingDatabase(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Creates <paramref name="url"/>'s database; one that another process creates at the same moment is fine.</summary>
    /// <exception cref="DbosDatabaseException">The server cannot be reached through its <c>postgres</c> database, or refuses to create it.</exception>
    public static Task CreateAsync(PostgresUrl url, CancellationToken cancellationToken) => CreateCoreAsync(url, async: true, cancellationToken).AsTask();

    /// <summary>Creates <paramref name="url"/>'s database, synchronously.</summary>
    /// <exception cref="DbosDatabaseException">The server cannot be reached through its <c>postgres</c> database, or refuses to create it.</exception>
    public static void Create(PostgresUrl url)
    {
        // With async false every await below completes synchronously: this does not block on asynchronous work.
        var created = CreateCoreAsync(url, async: false, CancellationToken.None);
        created.GetAwaiter().GetResult();
    }

    private static async ValueTask CreateCoreAsync(PostgresUrl url, bool async, CancellationToken cancellationToken)
    {
        var adminUrl = url.WithDatabase("postgres");
        var cannot = $"The database \"{url.Database}\" does not exist and cannot be created";
        var admin = new NpgsqlConnection(adminUrl.Builder.ConnectionString);
        try
        {
            try
            {
                if (async)
                {
                    await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    admin.Open();
                }
            }
            catch (Exception ex) when (ex is NpgsqlException or SocketException or TimeoutException or System.Security.Authentication.AuthenticationException)
            {
                var reason = ex is PostgresException pg ? pg.MessageText : ex.Message;
                if (ex.InnerException is { } inner && ex is not PostgresException)
                {
                    reason += ": " + inner.Message;
                }

                throw new DbosDatabaseException($"{cannot} at {adminUrl.Masked}: {Scrub(url, reason)}", ex);
            }

            using var command = new NpgsqlCommand($"CREATE DATABASE {PostgresSchema.Quote(url.Database)}", admin);
            try
            {
                if (async)
                {
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    command.ExecuteNonQuery();
                }
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.DuplicateDatabase or PostgresErrorCodes.UniqueViolation)
            {
                // Another process created it at the same moment.
            }
            catch (PostgresException ex)
            {
                throw new DbosDatabaseException($"{cannot} on {adminUrl.Masked}: {Scrub(url, ex.MessageText)}", ex);
            }
        }
        finally
        {
            if (async)
            {
                await admin.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                admin.Dispose();
            }
        }
    }

    /// <summary>Removes the password from text that may echo connection settings.</summary>
    private static string Scrub(PostgresUrl url, string text) =>
        url.Password is { Length: >= 3 } password ? text.Replace(password, DatabaseUrl.PasswordMask, StringComparison.Ordinal) : text;
}
