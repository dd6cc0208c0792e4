using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cloudlets.Lab;

/// <summary>
/// The certificates of a <see cref="LabTransport.Tls"/> lab, made with .NET's own X.509 builder (no
/// certtool run, nothing to parse): a CA that lives and dies with the lab, a server certificate per
/// host with its address and name in the subject alternative name (libvirt checks the URI's host
/// against it), and one client certificate that the edge's clients and the hosts' daemons (as
/// peer-to-peer migration clients) present. RSA 2048 and PKCS#1 key files, which every GnuTLS
/// that libvirt links reads.
/// </summary>
internal static class LabPki
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    /// <summary>Where a host's libvirtd finds its files, inside the host (its etc folder is its /etc/libvirt).</summary>
    public const string ServerFolderInHost = "/etc/libvirt/pki";

    /// <summary>Where a host's QEMU finds its migration TLS files, inside the host.</summary>
    public const string QemuFolderInHost = ServerFolderInHost + "/qemu";

    /// <summary>
    /// Writes the lab's CA (in <see cref="LabPaths.PkiFolder"/>), the client credentials (in
    /// <see cref="LabPaths.ClientPkiFolder"/>, and again wherever a host's mounts hide that path from its
    /// daemons, so the same <c>pkipath</c> works from the edge and from every host), and each host's server files.
    /// </summary>
    public static void Create(LabPaths paths, string lab, IReadOnlyList<LabHost> hosts, DateTimeOffset now)
    {
        var pki = paths.PkiFolder(lab);
        CreatePrivateFolder(pki);
        var notBefore = now.AddDays(-1);
        var notAfter = now.AddDays(30);

        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest(new X500DistinguishedName($"CN=cloudlets-lab {lab} CA,O=cloudlets-lab"), caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(notBefore, notAfter);
        var caPem = ca.ExportCertificatePem() + "\n";
        WriteFile(Path.Combine(pki, "cacert.pem"), caPem, secret: false);
        WriteFile(Path.Combine(pki, "cakey.pem"), caKey.ExportRSAPrivateKeyPem() + "\n", secret: true);

        var (clientCert, clientKey) = Issue(ca, $"CN=cloudlets-lab {lab} client,O=cloudlets-lab", ClientAuth, san: null, notBefore, notAfter);
        var client = paths.ClientPkiFolder(lab);
        WriteClientFolder(client, caPem, clientCert, clientKey);

        foreach (var host in hosts)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(host.Address);
            san.AddDnsName(host.Name);
            var (cert, key) = Issue(ca, $"CN={host.Address},O=cloudlets-lab", ServerAuth, san, notBefore, notAfter);
            var server = Path.Combine(host.Folder, "etc", "pki");
            CreatePrivateFolder(server);
            WriteFile(Path.Combine(server, "cacert.pem"), caPem, secret: false);
            WriteFile(Path.Combine(server, "servercert.pem"), cert, secret: false);
            WriteFile(Path.Combine(server, "serverkey.pem"), key, secret: true);

            // QEMU's migration stream over TLS (VIR_MIGRATE_TLS): the destination's QEMU serves with the
            // host's certificate, the source's QEMU presents the lab's client certificate; QEMU's file names.
            var qemu = Path.Combine(server, "qemu");
            CreatePrivateFolder(qemu);
            WriteFile(Path.Combine(qemu, "ca-cert.pem"), caPem, secret: false);
            WriteFile(Path.Combine(qemu, "server-cert.pem"), cert, secret: false);
            WriteFile(Path.Combine(qemu, "server-key.pem"), key, secret: true);
            WriteFile(Path.Combine(qemu, "client-cert.pem"), clientCert, secret: false);
            WriteFile(Path.Combine(qemu, "client-key.pem"), clientKey, secret: true);
            if (HiddenInHost(host.Folder, client) is { } copy)
            {
                WriteClientFolder(copy, caPem, clientCert, clientKey);
            }
        }
    }

    /// <summary>
    /// Where <paramref name="path"/> (as the edge sees it) really is for a host's daemons: the host's
    /// mount namespace has its own folders over /run, /etc/libvirt, /var/lib/libvirt and /var/log/libvirt
    /// (<c>lab-host.sh</c>), so a path under one of those names a file in the host's folder; null when
    /// the host sees the same file.
    /// </summary>
    public static string? HiddenInHost(string hostFolder, string path)
    {
        foreach (var (mountPoint, sub) in new[] { ("/run/", "run"), ("/etc/libvirt/", "etc"), ("/var/lib/libvirt/", "lib"), ("/var/log/libvirt/", "log") })
        {
            if (path.StartsWith(mountPoint, StringComparison.Ordinal))
            {
                return Path.Combine(hostFolder, sub, path[mountPoint.Length..]);
            }
        }

        return null;
    }

    private static (string CertificatePem, string KeyPem) Issue(X509Certificate2 ca, string subject, Oid usage, SubjectAlternativeNameBuilder? san, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest(new X500DistinguishedName(subject), key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        // libvirt checks both: key usage with digital signature and key encipherment, and the TLS purpose.
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([usage], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (san is not null)
        {
            request.CertificateExtensions.Add(san.Build());
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // a positive serial number
        using var certificate = request.Create(ca, notBefore, notAfter, serial);
        return (certificate.ExportCertificatePem() + "\n", key.ExportRSAPrivateKeyPem() + "\n");
    }

    private static void WriteClientFolder(string folder, string caPem, string certificate, string key)
    {
        CreatePrivateFolder(folder);
        WriteFile(Path.Combine(folder, "cacert.pem"), caPem, secret: false);
        WriteFile(Path.Combine(folder, "clientcert.pem"), certificate, secret: false);
        WriteFile(Path.Combine(folder, "clientkey.pem"), key, secret: true);
    }

    internal static void CreatePrivateFolder(string folder) =>
        Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

    internal static void WriteFile(string path, string text, bool secret)
    {
        // A key is never readable by anyone but root, not even for the moment between write and chmod.
        var mode = secret ? UnixFileMode.UserRead | UnixFileMode.UserWrite : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        using var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = mode });
        using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false));
        writer.Write(text);
    }
}
