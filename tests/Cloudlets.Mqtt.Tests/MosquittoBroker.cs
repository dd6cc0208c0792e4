using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Cloudlets.TestUtils;

namespace Cloudlets.Mqtt.Tests;

/// <summary>
/// A real mosquitto started by the test on 127.0.0.1: a config file written here, a password file made with
/// mosquitto_passwd, an ACL that lets each agent write only its own vantage point's topic
/// (<c>pattern write cloudlets/v1/samples/%u</c>), and a TLS listener with a CA made for the test.
/// Stopped by its pid. Owns its folder and its process.
/// </summary>
public sealed class MosquittoBroker : IAsyncDisposable
{
    public const string MosquittoPath = "/usr/sbin/mosquitto";
    public const string PasswdPath = "/usr/bin/mosquitto_passwd";

    /// <summary>Users and passwords the broker knows: the controller (reads every sample topic), agents (write their own), and a raw writer that may write anywhere under the sample prefix (to inject bad messages).</summary>
    public static readonly IReadOnlyDictionary<string, string> Users = new Dictionary<string, string>
    {
        ["controller"] = "controller-secret",
        ["cell-1"] = "cell-1-secret",
        ["cell-2"] = "cell-2-secret",
        ["cell-3"] = "cell-3-secret",
        ["raw-writer"] = "raw-secret",
    };

    private Process? _process;

    private MosquittoBroker(string folder, int port, int tlsPort)
    {
        Folder = folder;
        Port = port;
        TlsPort = tlsPort;
    }

    public string Folder { get; }

    public int Port { get; }

    public int TlsPort { get; }

    public string CaFile => Path.Combine(Folder, "ca.pem");

    public Uri Plain => new($"mqtt://127.0.0.1:{Port}");

    public Uri Tls => new($"mqtts://127.0.0.1:{TlsPort}");

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    /// <summary>Fails under CI=true, ignores elsewhere, when mosquitto is not installed.</summary>
    public static void Require() => LabGate.Decide(File.Exists(MosquittoPath) && File.Exists(PasswdPath)
        ? null
        : $"{MosquittoPath} or {PasswdPath} is missing (Debian package mosquitto; eng/install-deps.sh installs it).");

    public static async Task<MosquittoBroker> StartAsync(int? maxInflight = null)
    {
        Require();
        var folder = Directory.CreateTempSubdirectory("cloudlets-mqtt-").FullName;
        var broker = new MosquittoBroker(folder, FreePort(), FreePort());
        await broker.WriteConfigAsync(maxInflight);
        await broker.StartProcessAsync();
        return broker;
    }

    private async Task WriteConfigAsync(int? maxInflight)
    {
        var passwd = Path.Combine(Folder, "passwd");
        await File.WriteAllTextAsync(passwd, "");
        foreach (var (user, password) in Users)
        {
            await RunAsync(PasswdPath, ["-b", passwd, user, password]);
        }

        await File.WriteAllTextAsync(Path.Combine(Folder, "acl"),
            """
            # The controller reads every vantage point's samples.
            user controller
            topic read cloudlets/v1/samples/+

            # The raw writer may write anywhere under the prefix (the malformed-flood tests use it).
            user raw-writer
            topic write cloudlets/v1/samples/#

            # Every agent writes only its own vantage point's topic: its user name is its vantage point.
            pattern write cloudlets/v1/samples/%u

            """);

        WriteTestCertificates();
        var config = new StringBuilder();
        config.AppendLine("per_listener_settings false");
        config.AppendLine("allow_anonymous false");
        config.AppendLine("persistence false");
        config.AppendLine("user root");
        config.AppendLine(CultureInfo.InvariantCulture, $"password_file {passwd}");
        config.AppendLine(CultureInfo.InvariantCulture, $"acl_file {Path.Combine(Folder, "acl")}");
        config.AppendLine(CultureInfo.InvariantCulture, $"log_dest file {Path.Combine(Folder, "mosquitto.log")}");
        config.AppendLine("log_type error");
        config.AppendLine("log_type warning");
        config.AppendLine("log_type notice");
        config.AppendLine("log_type information");
        config.AppendLine("max_queued_messages 100000");
        config.AppendLine(CultureInfo.InvariantCulture, $"max_inflight_messages {maxInflight ?? 0}");
        config.AppendLine(CultureInfo.InvariantCulture, $"listener {Port} 127.0.0.1");
        config.AppendLine(CultureInfo.InvariantCulture, $"listener {TlsPort} 127.0.0.1");
        config.AppendLine(CultureInfo.InvariantCulture, $"cafile {CaFile}");
        config.AppendLine(CultureInfo.InvariantCulture, $"certfile {Path.Combine(Folder, "server.pem")}");
        config.AppendLine(CultureInfo.InvariantCulture, $"keyfile {Path.Combine(Folder, "server.key")}");
        await File.WriteAllTextAsync(Path.Combine(Folder, "mosquitto.conf"), config.ToString());
    }

    /// <summary>A CA and a server certificate for 127.0.0.1 signed by it, made with .NET's CertificateRequest.</summary>
    private void WriteTestCertificates()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Cloudlets test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        File.WriteAllText(CaFile, ca.ExportCertificatePem());

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var server = serverRequest.Create(ca, now.AddDays(-1), now.AddDays(29), RandomNumberGenerator.GetBytes(8));
        File.WriteAllText(Path.Combine(Folder, "server.pem"), server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(Folder, "server.key"), serverKey.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>Writes a second, unrelated CA (for the wrong-trust test) and returns its path.</summary>
    public string WriteUnrelatedCa()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Some other CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var path = Path.Combine(Folder, "other-ca.pem");
        File.WriteAllText(path, ca.ExportCertificatePem());
        return path;
    }

    /// <summary>Starts mosquitto (again, on the same ports) and waits until both listeners accept.</summary>
    public async Task StartProcessAsync()
    {
        var info = new ProcessStartInfo(MosquittoPath) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Path.Combine(Folder, "mosquitto.conf"));
        _process = Process.Start(info) ?? throw new InvalidOperationException("mosquitto did not start.");
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!(await AcceptsAsync(Port) && await AcceptsAsync(TlsPort)))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                var log = File.Exists(Path.Combine(Folder, "mosquitto.log")) ? await File.ReadAllTextAsync(Path.Combine(Folder, "mosquitto.log")) : "";
                throw new InvalidOperationException($"mosquitto did not listen on {Port}/{TlsPort} (exited: {_process.HasExited}). Log:\n{log}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Kills mosquitto by its pid (SIGKILL: the broker vanishes without a goodbye) and waits for it.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            await p.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    public string ReadLog() => File.Exists(Path.Combine(Folder, "mosquitto.log")) ? File.ReadAllText(Path.Combine(Folder, "mosquitto.log")) : "";

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort() => LoopbackPorts.Free();

    private static async Task RunAsync(string program, string[] arguments)
    {
        var info = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {stderr}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
