using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Cloudlets.Probing.Commands;
using Cloudlets.TestUtils;

namespace Cloudlets.Netem.Tests.Ssh;

/// <summary>
/// A real OpenSSH server for one test fixture: key-only, listening on 127.0.0.1 on a free port, with a
/// fresh ed25519 host key and client key in a temp folder, started as a child process and stopped by
/// its own handle. <see cref="KnownHosts"/> pins the host key the way <c>ssh-keyscan</c> would print it.
/// </summary>
internal sealed class TestSshServer : IAsyncDisposable
{
    private const string Sshd = "/usr/sbin/sshd";
    private const string SshKeygen = "/usr/bin/ssh-keygen";
    private readonly Process process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> log = new();

    private TestSshServer(string directory, int port, Process process, string hostPublicKey)
    {
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { log.Enqueue(e.Data); } };
        process.BeginErrorReadLine();
        Directory = directory;
        Port = port;
        this.process = process;
        HostPublicKey = hostPublicKey;
    }

    public string Directory { get; }

    public int Port { get; }

    public string ClientKey => Path.Combine(Directory, "client_ed25519");

    /// <summary>The host key as <c>ssh-ed25519 BASE64</c>.</summary>
    public string HostPublicKey { get; }

    /// <summary>A known_hosts line for this server's key.</summary>
    public string KnownHostsLine => string.Create(CultureInfo.InvariantCulture, $"[127.0.0.1]:{Port} {HostPublicKey}");

    /// <summary>What sshd logged so far (-e: to stderr).</summary>
    public string Log => string.Join(Environment.NewLine, log);

    public static bool Available => File.Exists(Sshd) && File.Exists(SshKeygen);

    public static async Task<TestSshServer> StartAsync()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("netem-sshd-").FullName;
        await Run(SshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", Path.Combine(dir, "host_ed25519"));
        await Run(SshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "test-client", "-f", Path.Combine(dir, "client_ed25519"));
        File.Copy(Path.Combine(dir, "client_ed25519.pub"), Path.Combine(dir, "authorized_keys"));
        var hostKey = string.Join(' ', File.ReadAllText(Path.Combine(dir, "host_ed25519.pub")).Trim().Split(' ')[..2]);

        // sshd wants its privilege separation directory when started as root.
        System.IO.Directory.CreateDirectory("/run/sshd");
        var port = FreePort();
        var config = Path.Combine(dir, "sshd_config");
        await File.WriteAllLinesAsync(config,
        [
            "Port " + port.ToString(CultureInfo.InvariantCulture),
            "ListenAddress 127.0.0.1",
            "HostKey " + Path.Combine(dir, "host_ed25519"),
            "AuthorizedKeysFile " + Path.Combine(dir, "authorized_keys"),
            "PidFile " + Path.Combine(dir, "sshd.pid"),
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "AllowUsers " + Environment.UserName,
        ]);
        var psi = new ProcessStartInfo(Sshd) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in new[] { "-D", "-e", "-f", config })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi)!;
        var server = new TestSshServer(dir, port, process, hostKey);
        try
        {
            await server.WaitListeningAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Writes a known_hosts file with <paramref name="lines"/> and returns its path.</summary>
    public string WriteKnownHosts(string name, params string[] lines)
    {
        var path = Path.Combine(Directory, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>A fresh ed25519 public key (<c>ssh-ed25519 BASE64</c>) that is not this server's.</summary>
    public async Task<string> OtherPublicKeyAsync()
    {
        var path = Path.Combine(Directory, "other_" + Guid.NewGuid().ToString("N"));
        await Run(SshKeygen, "-q", "-t", "ed25519", "-N", "", "-f", path);
        return string.Join(' ', File.ReadAllText(path + ".pub").Trim().Split(' ')[..2]);
    }

    /// <summary>The host key's SHA-256 fingerprint as <c>ssh-keygen -l</c> prints it.</summary>
    public async Task<string> FingerprintAsync() =>
        (await Run(SshKeygen, "-l", "-E", "sha256", "-f", Path.Combine(Directory, "host_ed25519.pub"))).StandardOutput.Split(' ')[1];

    /// <summary>Hashes the host names of a known_hosts file in place (<c>ssh-keygen -H</c>).</summary>
    public static Task HashAsync(string knownHosts) => Run(SshKeygen, "-q", "-H", "-f", knownHosts);

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill();   // the sshd this fixture started, by its own handle
            await process.WaitForExitAsync();
        }

        process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A session child may still be writing; the temp folder is left.
        }
    }

    private async Task WaitListeningAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException("sshd exited: " + Log);
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }

        throw new TimeoutException("sshd did not listen within 20 s.");
    }

    private static int FreePort() => LoopbackPorts.Free();

    private static async Task<CommandResult> Run(string program, params string[] args)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of(program, args));
        if (!r.Succeeded)
        {
            throw new CommandException(r);
        }

        return r;
    }
}
