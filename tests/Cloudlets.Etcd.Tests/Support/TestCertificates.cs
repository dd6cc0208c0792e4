using System.Diagnostics;

namespace Cloudlets.Etcd.Tests.Support;

/// <summary>
/// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with GnuTLS's
/// certtool (Debian's gnutls-bin) in a temporary folder, for etcd's TLS listener and client-cert auth.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private const string Certtool = "/usr/bin/certtool";

    private TestCertificates(string folder) => Folder = folder;

    public string Folder { get; }

    public string CaFile => Path.Combine(Folder, "ca.pem");

    public string ServerCertificateFile => Path.Combine(Folder, "server.pem");

    public string ServerKeyFile => Path.Combine(Folder, "server-key.pem");

    public string ClientCertificateFile => Path.Combine(Folder, "client.pem");

    public string ClientKeyFile => Path.Combine(Folder, "client-key.pem");

    public static async Task<TestCertificates> CreateAsync()
    {
        Cloudlets.TestUtils.LabGate.Decide(File.Exists(Certtool) ? null : $"The TLS test needs {Certtool} (gnutls-bin).");
        var certificates = new TestCertificates(Directory.CreateTempSubdirectory("cloudlets-etcd-tls-").FullName);
        var f = certificates.Folder;
        await File.WriteAllTextAsync(Path.Combine(f, "ca.tmpl"), "cn = cloudlets-etcd-test-ca\nca\ncert_signing_key\nexpiration_days = 2\n");
        await File.WriteAllTextAsync(Path.Combine(f, "server.tmpl"), "cn = etcd\nip_address = 127.0.0.1\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n");
        await File.WriteAllTextAsync(Path.Combine(f, "client.tmpl"), "cn = root\ntls_www_client\nsigning_key\nexpiration_days = 2\n");
        foreach (var key in new[] { "ca-key.pem", "server-key.pem", "client-key.pem" })
        {
            // RSA, not ECDSA: certtool writes an EC private key whose scalar is not always exactly the curve's size,
            // which .NET rightly refuses as corrupt ASN.1 (a test that failed now and then).
            await RunAsync("--generate-privkey", "--no-text", "--key-type=rsa", "--bits=2048", "--outfile", Path.Combine(f, key));
        }

        await RunAsync("--generate-self-signed", "--no-text", "--load-privkey", Path.Combine(f, "ca-key.pem"), "--template", Path.Combine(f, "ca.tmpl"), "--outfile", certificates.CaFile);
        foreach (var name in new[] { "server", "client" })
        {
            await RunAsync("--generate-certificate", "--no-text", "--load-privkey", Path.Combine(f, name + "-key.pem"), "--load-ca-certificate", certificates.CaFile,
                "--load-ca-privkey", Path.Combine(f, "ca-key.pem"), "--template", Path.Combine(f, name + ".tmpl"), "--outfile", Path.Combine(f, name + ".pem"));
        }

        return certificates;
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);

    private static async Task RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo(Certtool, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"certtool {string.Join(' ', args)} exited with {process.ExitCode}: {await error}");
        }
    }
}
