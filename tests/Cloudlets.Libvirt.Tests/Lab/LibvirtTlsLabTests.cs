using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Lab;
using Cloudlets.Lab.Guests;
using Cloudlets.TestUtils;

namespace Cloudlets.Libvirt.Tests.Lab;

/// <summary>
/// The libvirt host over TLS (issue 13), against a lab whose libvirtds listen on TLS only with
/// certificates of the lab's own CA: connect, list, events and live migration there and back with
/// the guest answering throughout (the source daemon connects to the destination's daemon with the
/// same client credentials); no TCP listener; a client certificate of another CA and a CA that does
/// not know the server each fail with a typed error before anything changes.
/// </summary>
[Category("Lab")]
[NonParallelizable]
[SupportedOSPlatform("linux")]
public sealed class LibvirtTlsLabTests : LabFixture
{
    private const string H1 = "cloudlet-1";
    private const string H2 = "cloudlet-2";

    protected override string LabPrefix => "tls";

    protected override int LabHosts => 2;

    protected override IReadOnlyList<string> LabGuestsOn => [H1];

    protected override LabTransport LabTransport => LabTransport.Tls;

    private LabGuest Guest => Lab.Guests[0];

    [Test]
    [Order(1)]
    public async Task MigrateAsync_OverTlsThereAndBack_ListsEventsAndGuestAnswersThroughout()
    {
        Assert.That(Lab.GetHost(H1).Uri.Scheme, Is.EqualTo("qemu+tls"), "the lab's URIs are TLS ones");
        _ = await TransportLabChecks.MigrateThereAndBackAsync(Lab, H1, H2, "TLS");
    }

    [Test]
    [Order(2)]
    public async Task MigrateAsync_MigrationStreamOverTls_WorksAndItsCostIsMeasuredBesidePlain()
    {
        await using var h1 = await ConnectAsync(Lab.GetHost(H1).Uri, H1);
        await using var h2 = await ConnectAsync(Lab.GetHost(H2).Uri, H2);
        var client = Lab.CreateGuestClient(Guest);
        var before = await client.WaitForAnswerAsync(TimeSpan.FromSeconds(30));
        var plain = new List<MigrationResult>();
        var tls = new List<MigrationResult>();

        // Alternating, same guest, same run: plain there and back, then TLS there and back, twice.
        for (var round = 0; round < 2; round++)
        {
            foreach (var (list, encrypt) in new[] { (plain, false), (tls, true) })
            {
                var options = new MigrationOptions { BandwidthMiBps = 64 };
                list.Add(await h1.MigrateAsync(Guest.Name, MigrationDestination.Of(h2, Lab.GetHost(H2).MigrationUri), options, new LibvirtMigrationOptions { Tls = encrypt }));
                list.Add(await h2.MigrateAsync(Guest.Name, MigrationDestination.Of(h1, Lab.GetHost(H1).MigrationUri), options, new LibvirtMigrationOptions { Tls = encrypt }));
            }
        }

        var after = await client.WaitForAnswerAsync(TimeSpan.FromSeconds(20));
        TestContext.Out.WriteLine("plain: " + Figures(plain));
        TestContext.Out.WriteLine("TLS:   " + Figures(tls));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(tls, Has.Count.EqualTo(4).And.All.Matches<MigrationResult>(r => r.Downtime is not null), "four migrations with an encrypted stream, each with its downtime");
            Assert.That(after.BootId, Is.EqualTo(before.BootId), "the same guest after eight migrations");
            Assert.That((await h1.TryGetVmAsync(Guest.Name))?.State, Is.EqualTo(VmState.Running));
        }

        static string Figures(List<MigrationResult> runs) => string.Join(", ", runs.Select(r => $"{r.TotalTime.TotalMilliseconds:0} ms total / {r.Downtime?.TotalMilliseconds:0} ms down"));
    }

    [Test]
    [Order(3)]
    public async Task MigrateAsync_TlsStreamWithoutTheDestinationsQemuCertificate_FailsAndGuestStaysOnSource()
    {
        await using var h1 = await ConnectAsync(Lab.GetHost(H1).Uri, H1);
        await using var h2 = await ConnectAsync(Lab.GetHost(H2).Uri, H2);
        // Proof that the flag reaches QEMU: take the destination QEMU's server certificate away, and
        // the encrypted migration cannot start, while the same migration in the clear could.
        var certificate = Path.Combine(Lab.GetHost(H2).Folder, "etc", "pki", "qemu", "server-cert.pem");
        File.Move(certificate, certificate + ".away");
        try
        {
            var ex = Assert.CatchAsync<HypervisorException>(() => h1.MigrateAsync(
                Guest.Name, MigrationDestination.Of(h2, Lab.GetHost(H2).MigrationUri), new MigrationOptions(), new LibvirtMigrationOptions { Tls = true }));
            TestContext.Out.WriteLine(ex?.GetType().Name + ": " + ex?.Message);
        }
        finally
        {
            File.Move(certificate + ".away", certificate);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That((await h1.TryGetVmAsync(Guest.Name))?.State, Is.EqualTo(VmState.Running), "the guest still runs on cloudlet-1");
            Assert.That(await h2.TryGetVmAsync(Guest.Name), Is.Null, "no copy was left on cloudlet-2");
        }
    }

    [Test]
    public void ConnectAsync_TcpOnATlsLab_RefusedTypedNoTcpListener()
    {
        var address = Lab.GetHost(H1).Address;
        var ex = Assert.ThrowsAsync<LibvirtException>(() => ConnectAsync(new Uri($"qemu+tcp://{address}/system"), H1));
        Assert.That(ex!.Message, Does.Contain("16509").Or.Contain("Connection refused"), "nothing listens on libvirt's TCP port");
    }

    [Test]
    public async Task ConnectAsync_ClientCertificateOfAnotherCa_TypedErrorAndNothingChanged()
    {
        var lab = Lab.GetHost(H1).ClientPkiFolder!;
        using var folder = new TempFolder();
        // A client certificate the lab's CA never signed, and a CA file that trusts both CAs: the client
        // accepts its own certificate and the server's, so it is the SERVER that must refuse it.
        WriteForeignClient(folder.Path, writeCa: true);
        File.AppendAllText(Path.Combine(folder.Path, "cacert.pem"), File.ReadAllText(Path.Combine(lab, "cacert.pem")));
        var ex = Assert.ThrowsAsync<LibvirtException>(() => ConnectAsync(TlsUri(folder.Path), H1));
        TestContext.Out.WriteLine(ex!.Message);
        Assert.That(ex.Message, Does.Not.Contain("Our own certificate"), "the server refused the certificate, not the client itself");
        await AssertNothingChangedAsync();
    }

    [Test]
    public async Task ConnectAsync_ServerUnknownToTheClientsCa_TypedErrorAndNothingChanged()
    {
        using var folder = new TempFolder();
        // A client that trusts only another CA: the server's certificate does not verify.
        WriteForeignClient(folder.Path, writeCa: true);
        var ex = Assert.ThrowsAsync<LibvirtException>(() => ConnectAsync(TlsUri(folder.Path), H1));
        TestContext.Out.WriteLine(ex!.Message);
        Assert.That(ex.Message, Does.Contain("certificate").IgnoreCase, "the error says the certificate did not verify");
        await AssertNothingChangedAsync();
    }

    private Uri TlsUri(string pki) => new($"qemu+tls://{Lab.GetHost(H1).Address}/system?pkipath={pki}");

    private async Task AssertNothingChangedAsync()
    {
        await using var h1 = await ConnectAsync(Lab.GetHost(H1).Uri, H1);
        Assert.That((await h1.TryGetVmAsync(Guest.Name))?.State, Is.EqualTo(VmState.Running), "the guest still runs on cloudlet-1");
    }

    private Task<LibvirtHypervisorHost> ConnectAsync(Uri uri, string name) => TransportLabChecks.ConnectAsync(Lab, uri, name);

    /// <summary>A client certificate (and, when asked, the CA file) from a CA that is not the lab's.</summary>
    private static void WriteForeignClient(string folder, bool writeCa)
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=not the lab's CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=intruder", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var certificate = request.Create(ca, now.AddDays(-1), now.AddDays(1), [1, 2, 3, 4]);
        if (writeCa)
        {
            File.WriteAllText(Path.Combine(folder, "cacert.pem"), ca.ExportCertificatePem() + "\n");
        }

        File.WriteAllText(Path.Combine(folder, "clientcert.pem"), certificate.ExportCertificatePem() + "\n");
        File.WriteAllText(Path.Combine(folder, "clientkey.pem"), key.ExportRSAPrivateKeyPem() + "\n");
        File.SetUnixFileMode(Path.Combine(folder, "clientkey.pem"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("cloudlets-tls-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
