using System.Net;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests;

public sealed class LabSaslTests
{
    private static LabHost Host(int index) =>
        new(LabNaming.HostName(index), index, IPAddress.Parse($"198.18.3.{10 + index}"), $"t1-h{index}", "br0", $"/l/h{index}") { Transport = LabTransport.TlsSasl };

    [Test]
    public void Config_Database_ScramSha256AgainstThatSasldb()
    {
        var config = LabSasl.Config("/etc/libvirt/sasl2/passwd.db");
        Assert.That(config.Split('\n').Where(l => !l.StartsWith('#') && l.Length > 0), Is.EqualTo(new[] { "mech_list: scram-sha-256", "sasldb_path: /etc/libvirt/sasl2/passwd.db" }));
    }

    [Test]
    public void AuthConf_TwoHosts_OneCredentialsSectionAndOneAuthSectionPerAddress()
    {
        var text = LabSasl.AuthConf([Host(1), Host(2)], "pw");
        Assert.That(text, Is.EqualTo("""
            [credentials-cloudlets-lab]
            authname=cloudlets
            password=pw

            [auth-libvirt-198.18.3.11]
            credentials=cloudlets-lab

            [auth-libvirt-198.18.3.12]
            credentials=cloudlets-lab

            """.Replace("\r\n", "\n", StringComparison.Ordinal)));
    }

    [Test]
    public void NewPassword_TwoCalls_DifferAndNeedNoQuoting()
    {
        var a = LabSasl.NewPassword();
        var b = LabSasl.NewPassword();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a, Is.Not.EqualTo(b));
            Assert.That(a, Has.Length.EqualTo(24).And.Match("^[A-Za-z0-9=]+$"));
        }
    }

    [Test]
    public void UsesTls_Transports_TlsAndTlsSaslOnly()
    {
        Assert.That(Enum.GetValues<LabTransport>().Where(LabSasl.UsesTls), Is.EqualTo(new[] { LabTransport.Tls, LabTransport.TlsSasl }));
    }

    [Test]
    public void Libvirtd_TlsSasl_TlsOnlyWithSaslAuthentication()
    {
        var conf = LabHostConfiguration.Libvirtd(LabTransport.TlsSasl, "00000000-0000-0000-0000-000000000001");
        Assert.That(conf, Does.Contain("listen_tls = 1").And.Contain("listen_tcp = 0").And.Contain("auth_tls = \"sasl\""));
    }

    [Test]
    public async Task CreateDatabaseAsync_UserAndRealm_ListedBySasldbListUsers()
    {
        LabGate.RequireRoot("SASL database tests", "saslpasswd2", "sasldblistusers2");
        var folder = Directory.CreateTempSubdirectory("cloudlets-sasl-").FullName;
        try
        {
            var db = Path.Combine(folder, "passwd.db");
            await LabSasl.CreateDatabaseAsync(db, "cloudlet-1", "pw-" + Guid.NewGuid().ToString("N"), CancellationToken.None);
            var listed = await Cloudlets.Probing.Commands.LocalCommandRunner.Instance.RunAsync(Cloudlets.Probing.Commands.CommandLine.Of("sasldblistusers2", "-f", db));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(listed.StandardOutput, Does.Contain("cloudlets@cloudlet-1"));
                Assert.That(File.GetUnixFileMode(db), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
