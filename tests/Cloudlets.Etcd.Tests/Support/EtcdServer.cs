using System.Diagnostics;
using System.Globalization;
using Cloudlets.TestUtils;

namespace Cloudlets.Etcd.Tests.Support;

/// <summary>
/// A real etcd (Debian's etcd-server, <c>/usr/bin/etcd</c>) started by a test: a temporary data
/// folder, client and peer ports on 127.0.0.1 (or on an address inside a test's namespace), stopped by
/// its pid. <see cref="StopAsync"/> and <see cref="RestartAsync"/> let a test take etcd away and bring
/// it back with its data.
/// </summary>
public sealed class EtcdServer : IAsyncDisposable
{
    public const string EtcdPath = "/usr/bin/etcd";
    public const string EtcdctlPath = "/usr/bin/etcdctl";

    private readonly string _folder;
    private readonly string? _namespace;
    private readonly TestCertificates? _tls;
    private Process? _process;

    private EtcdServer(string folder, string listenAddress, int clientPort, int peerPort, string? networkNamespace, TestCertificates? tls)
    {
        _tls = tls;
        _folder = folder;
        ListenAddress = listenAddress;
        ClientPort = clientPort;
        PeerPort = peerPort;
        _namespace = networkNamespace;
    }

    public string ListenAddress { get; }

    public int ClientPort { get; }

    public int PeerPort { get; }

    /// <summary>The user and password etcdctl authenticates with (after <see cref="EnableAuthAsync"/>), or null.</summary>
    public string? Credentials { get; private set; }

    public string Endpoint => $"{(_tls is null ? "http" : "https")}://{ListenAddress}:{ClientPort.ToString(CultureInfo.InvariantCulture)}";

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public string LogFile => Path.Combine(_folder, "etcd.log");

    /// <summary>What is missing for these tests, or null. Under CI=true a missing etcd is a failure, never a skip.</summary>
    public static void Require()
    {
        var missing = new[] { EtcdPath, EtcdctlPath }.Where(p => !File.Exists(p)).ToArray();
        Cloudlets.TestUtils.LabGate.Decide(missing.Length == 0 ? null : "etcd tests need Debian's etcd-server and etcd-client (missing: " + string.Join(", ", missing) + ").");
    }

    /// <summary>Starts etcd on 127.0.0.1 with free ports.</summary>
    public static Task<EtcdServer> StartAsync(CancellationToken cancellationToken = default) =>
        StartAsync("127.0.0.1", FreePort(), FreePort(), null, null, cancellationToken);

    /// <summary>Starts etcd on 127.0.0.1 with a TLS client listener (server certificate of <paramref name="tls"/>) that requires a client certificate signed by its CA.</summary>
    public static Task<EtcdServer> StartWithTlsAsync(TestCertificates tls, CancellationToken cancellationToken = default) =>
        StartAsync("127.0.0.1", FreePort(), FreePort(), null, tls, cancellationToken);

    /// <summary>Starts etcd listening on <paramref name="listenAddress"/> inside <paramref name="networkNamespace"/> (null: this one).</summary>
    public static async Task<EtcdServer> StartAsync(string listenAddress, int clientPort, int peerPort, string? networkNamespace, TestCertificates? tls = null, CancellationToken cancellationToken = default)
    {
        Require();
        var folder = Directory.CreateTempSubdirectory("cloudlets-etcd-").FullName;
        var server = new EtcdServer(folder, listenAddress, clientPort, peerPort, networkNamespace, tls);
        try
        {
            await server.RestartAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>Starts etcd again (after <see cref="StopAsync"/>) with the same data and ports, and waits until it answers.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        if (Pid is not null)
        {
            throw new InvalidOperationException("etcd is running.");
        }

        var peer = $"http://{ListenAddress}:{PeerPort.ToString(CultureInfo.InvariantCulture)}";
        string[] etcdArgs =
        [
            "--name", "t", "--data-dir", Path.Combine(_folder, "data"),
            "--listen-client-urls", Endpoint, "--advertise-client-urls", Endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "t=" + peer, "--initial-cluster-state", "new",
            "--log-outputs", LogFile, "--logger", "zap",
            .. _tls is null ? [] : new[] { "--cert-file", _tls.ServerCertificateFile, "--key-file", _tls.ServerKeyFile, "--trusted-ca-file", _tls.CaFile, "--client-cert-auth" },
        ];
        var start = _namespace is null
            ? new ProcessStartInfo(EtcdPath, etcdArgs)
            : new ProcessStartInfo("/usr/bin/ip", ["netns", "exec", _namespace, EtcdPath, .. etcdArgs]);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var process = Process.Start(start) ?? throw new InvalidOperationException("etcd did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"etcd exited with {process.ExitCode}: {ReadLog()}");
            }

            var (code, _) = await EtcdctlAsync(["endpoint", "health", "--command-timeout=1s"], check: false, cancellationToken);
            if (code == 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("etcd did not become healthy in 30 s: " + ReadLog());
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>Kills etcd (by its pid) and waits for it to exit; its data stays.</summary>
    public async Task StopAsync()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync();
            process.Dispose();
            _process = null;
        }
    }

    /// <summary>Runs etcdctl (API v3) against this etcd; returns the exit code and standard output.</summary>
    public async Task<(int ExitCode, string Output)> EtcdctlAsync(IReadOnlyList<string> args, bool check = true, CancellationToken cancellationToken = default)
    {
        string[] all =
        [
            "--endpoints=" + Endpoint,
            .. Credentials is null ? [] : new[] { "--user", Credentials },
            .. _tls is null ? [] : new[] { "--cacert", _tls.CaFile, "--cert", _tls.ClientCertificateFile, "--key", _tls.ClientKeyFile },
            .. args,
        ];
        var start = _namespace is null
            ? new ProcessStartInfo(EtcdctlPath, all)
            : new ProcessStartInfo("/usr/bin/ip", ["netns", "exec", _namespace, EtcdctlPath, .. all]);
        start.Environment["ETCDCTL_API"] = "3";
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"etcdctl {string.Join(' ', args)} exited with {process.ExitCode}: {await error}");
        }

        return (process.ExitCode, (await output).Trim());
    }

    /// <summary>Adds the user root with <paramref name="password"/> and turns etcd's authentication on.</summary>
    public async Task EnableAuthAsync(string password)
    {
        await EtcdctlAsync(["user", "add", "root", "--new-user-password=" + password, "--interactive=false"]);
        await EtcdctlAsync(["auth", "enable"]);
        Credentials = "root:" + password;
    }

    /// <summary>The value of a key, or null.</summary>
    public async Task<string?> GetValueAsync(string key)
    {
        var (_, output) = await EtcdctlAsync(["get", key, "--print-value-only"]);
        return output.Length == 0 ? null : output;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp folder; nothing else refers to it.
        }
    }

    private string ReadLog() => File.Exists(LogFile) ? string.Join('\n', File.ReadLines(LogFile).TakeLast(5)) : "(no log)";

    private static int FreePort() => LoopbackPorts.Free();
}
