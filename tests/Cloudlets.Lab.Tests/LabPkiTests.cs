using System.Net;
using System.Security.Cryptography.X509Certificates;
using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

/// <summary>The TLS lab's certificates and configuration, without a lab: what libvirt will be given.</summary>
public sealed class LabPkiTests
{
    private string _root = "";

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("cloudlets-pki-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private (LabPaths Paths, LabHost[] Hosts) Create()
    {
        var paths = new LabPaths(_root);
        var hosts = new[] { 1, 2 }
            .Select(i => new LabHost($"cloudlet-{i}", i, IPAddress.Parse($"198.18.3.{10 + i}"), $"t-h{i}", "br0", paths.HostFolder("t", i)) { Transport = LabTransport.Tls, ClientPkiFolder = paths.ClientPkiFolder("t") })
            .ToArray();
        LabPki.Create(paths, "t", hosts, DateTimeOffset.UtcNow);
        return (paths, hosts);
    }

    [Test]
    public void Create_TwoHosts_ServerAndClientCertificatesChainToTheLabCaWithTheirPurposes()
    {
        var (paths, hosts) = Create();
        using var ca = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(paths.PkiFolder("t"), "cacert.pem")));
        using var client = X509Certificate2.CreateFromPemFile(Path.Combine(paths.ClientPkiFolder("t"), "clientcert.pem"), Path.Combine(paths.ClientPkiFolder("t"), "clientkey.pem"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Chains(client, ca), Is.True, "the client certificate chains to the lab's CA");
            Assert.That(Purposes(client), Is.EqualTo(new[] { "1.3.6.1.5.5.7.3.2" }), "a TLS client certificate");
            Assert.That(client.HasPrivateKey, Is.True);
            foreach (var host in hosts)
            {
                var folder = Path.Combine(host.Folder, "etc", "pki");
                using var server = X509Certificate2.CreateFromPemFile(Path.Combine(folder, "servercert.pem"), Path.Combine(folder, "serverkey.pem"));
                Assert.That(Chains(server, ca), Is.True, host.Name + ": the server certificate chains to the lab's CA");
                Assert.That(Purposes(server), Is.EqualTo(new[] { "1.3.6.1.5.5.7.3.1" }), host.Name + ": a TLS server certificate");
                Assert.That(server.MatchesHostname(host.Address.ToString()), Is.True, host.Name + ": its address is in the subject alternative name (libvirt checks the URI's host)");
                Assert.That(server.MatchesHostname(hosts.Single(h => h != host).Address.ToString()), Is.False, host.Name + ": not the other host's address");
                Assert.That(File.GetUnixFileMode(Path.Combine(folder, "serverkey.pem")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), "keys are for root only");
            }

            Assert.That(File.GetUnixFileMode(Path.Combine(paths.PkiFolder("t"), "cakey.pem")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(File.GetUnixFileMode(Path.Combine(paths.ClientPkiFolder("t"), "clientkey.pem")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }
    }

    [TestCase("/run/cloudlets-lab/labs/t/pki/client", "/h1/run/cloudlets-lab/labs/t/pki/client")]
    [TestCase("/etc/libvirt/pki", "/h1/etc/pki")]
    [TestCase("/var/lib/libvirt/x", "/h1/lib/x")]
    [TestCase("/var/log/libvirt/x", "/h1/log/x")]
    [TestCase("/srv/labs/t/pki/client", null)]
    [TestCase("/running/x", null)]
    public void HiddenInHost_Path_IsWhereTheHostsMountsPutIt(string path, string? expected) =>
        Assert.That(LabPki.HiddenInHost("/h1", path), Is.EqualTo(expected));

    [Test]
    public void Libvirtd_Tls_ListensOnTlsOnlyWithTheServerFiles()
    {
        var conf = LabHostConfiguration.Libvirtd(LabTransport.Tls, "u1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(conf, Does.Contain("listen_tls = 1").And.Contain("listen_tcp = 0"));
            Assert.That(conf, Does.Contain("cert_file = \"/etc/libvirt/pki/servercert.pem\"").And.Contain("ca_file = \"/etc/libvirt/pki/cacert.pem\""));
            Assert.That(conf, Does.Not.Contain("tls_no_verify"), "client certificates are verified (libvirt's default)");
            Assert.That(LabHostConfiguration.Libvirtd(LabTransport.Tcp, "u1"), Does.Contain("listen_tcp = 1").And.Contain("listen_tls = 0"));
        }
    }

    [Test]
    public void Uri_TlsHost_IsQemuTlsWithTheClientPkiPath()
    {
        var host = new LabHost("cloudlet-1", 1, IPAddress.Parse("198.18.3.11"), "t-h1", "br0", "/x") { Transport = LabTransport.Tls, ClientPkiFolder = "/run/cloudlets-lab/labs/t/pki/client" };
        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.Uri.ToString(), Is.EqualTo("qemu+tls://198.18.3.11/system?pkipath=/run/cloudlets-lab/labs/t/pki/client"));
            Assert.That((host with { Transport = LabTransport.Tcp }).Uri.ToString(), Is.EqualTo("qemu+tcp://198.18.3.11/system"));
        }
    }

    private static bool Chains(X509Certificate2 certificate, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    private static string[] Purposes(X509Certificate2 certificate) =>
        [.. certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().SelectMany(e => e.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>()).Select(o => o.Value!)];
}
