using Dbos.Internal;

namespace Dbos.Tests;

/// <summary>Scenario 4: malformed URLs fail at configuration time with a message naming the problem, never the password.</summary>
public class DatabaseUrlTests
{
    [Theory]
    [InlineData("sqlite:/x", "sqlite:///")]
    [InlineData("sqlite://x.sqlite", "sqlite:///")]
    [InlineData("mysql://user:secretpw@host/db", "unsupported scheme 'mysql'")]
    [InlineData("postgresql://user:secretpw@host:notaport/db", "port 'notaport'")]
    [InlineData("postgresql://user:secretpw@host:70000/db", "port '70000'")]
    [InlineData("postgresql://user:secretpw@host:5432", "names no database")]
    [InlineData("postgresql://user:secretpw@:5432/db", "names no host")]
    [InlineData("postgresql://user:secretpw@host/db?nosuchoption=1", "option 'nosuchoption'")]
    [InlineData("postgresql:/host/db", "'://'")]
    [InlineData("", "is empty")]
    [InlineData("   ", "is empty")]
    [InlineData("just-a-file.sqlite", "no scheme")]
    [InlineData("sqlite:///", "names no database file")]
    [InlineData("sqlite:///:memory:", "in-memory")]
    public void Malformed_urls_fail_with_a_message_naming_the_problem(string url, string expected)
    {
        var ex = Assert.Throws<DbosConfigurationException>(() => DatabaseUrl.Parse(url, "DbosConfig.SystemDatabaseUrl"));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains("DbosConfig.SystemDatabaseUrl", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secretpw", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DbosApp_Create_rejects_a_malformed_url_before_touching_any_database()
    {
        var config = new DbosConfig { Name = "bad", SystemDatabaseUrl = "postgresql://me:hunter2pw@db.example:notaport/app" };
        var ex = Assert.Throws<DbosConfigurationException>(() => DbosApp.Create(config));
        Assert.Contains("notaport", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2pw", ex.Message, StringComparison.Ordinal);
        Assert.Contains("me:***@", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DbosApp_Create_requires_a_name()
    {
        var ex = Assert.Throws<DbosConfigurationException>(() => DbosApp.Create(new DbosConfig { SystemDatabaseUrl = "sqlite:///x.sqlite" }));
        Assert.Contains("Name", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sqlite_urls_with_three_slashes_are_relative_and_with_four_absolute()
    {
        var relative = Assert.IsType<SqliteUrl>(DatabaseUrl.Parse("sqlite:///data/app.sqlite", "url"));
        Assert.Equal(Path.GetFullPath("data/app.sqlite"), relative.FilePath);

        var absolute = Assert.IsType<SqliteUrl>(DatabaseUrl.Parse("sqlite:////var/lib/app.sqlite", "url"));
        Assert.Equal("/var/lib/app.sqlite", absolute.FilePath);
    }

    [Theory]
    [InlineData("postgresql://alice:p%40ss%3Aw0rd@db.example.com:6543/orders?sslmode=disable&connect_timeout=7")]
    [InlineData("postgres://alice:p%40ss%3Aw0rd@db.example.com:6543/orders?sslmode=disable&connect_timeout=7")]
    public void Postgres_urls_decode_percent_encoded_passwords_and_map_options(string url)
    {
        var parsed = Assert.IsType<PostgresUrl>(DatabaseUrl.Parse(url, "url"));
        Assert.Equal("alice", parsed.Builder.Username);
        Assert.Equal("p@ss:w0rd", parsed.Builder.Password);
        Assert.Equal("db.example.com", parsed.Builder.Host);
        Assert.Equal(6543, parsed.Builder.Port);
        Assert.Equal("orders", parsed.Builder.Database);
        Assert.Equal(Npgsql.SslMode.Disable, parsed.Builder.SslMode);
        Assert.Equal(7, parsed.Builder.Timeout);
        Assert.Equal("postgresql://alice:***@db.example.com:6543/orders", parsed.Masked);
        Assert.DoesNotContain("p@ss", parsed.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Postgres_urls_default_the_port_and_accept_ipv6_hosts()
    {
        var parsed = Assert.IsType<PostgresUrl>(DatabaseUrl.Parse("postgresql://bob@[::1]/app", "url"));
        Assert.Equal("::1", parsed.Builder.Host);
        Assert.Equal(5432, parsed.Builder.Port);
        Assert.Equal("postgresql://bob@[::1]:5432/app", parsed.Masked);
    }

    [Fact]
    public void Masking_a_raw_url_hides_the_password_even_when_the_url_does_not_parse()
    {
        Assert.Equal("postgresql://u:***@h:x/db", DatabaseUrl.MaskRaw("postgresql://u:pa@ss@h:x/db"));
        Assert.Equal("sqlite:///a.sqlite", DatabaseUrl.MaskRaw("sqlite:///a.sqlite"));
    }
}
