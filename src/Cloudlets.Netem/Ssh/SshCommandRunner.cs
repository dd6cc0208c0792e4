using System.Diagnostics;
using System.Globalization;
using System.Text;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Options;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace Cloudlets.Netem.Ssh;

/// <summary>Options of <see cref="SshCommandRunner.Create"/>. Validated once, when the runner is built.</summary>
public sealed class SshCommandRunnerOptions : IValidatableOptions
{
    /// <summary>The host name or address. Required.</summary>
    public string Host { get; set; } = "";

    /// <summary>The port (1–65535). The default is 22.</summary>
    public int Port { get; set; } = 22;

    /// <summary>The user to log in as. The default is <c>root</c> (tc needs it).</summary>
    public string UserName { get; set; } = "root";

    /// <summary>The private key file (OpenSSH format) to log in with. Required: passwords are not supported.</summary>
    public string PrivateKeyFile { get; set; } = "";

    /// <summary>A <c>known_hosts</c> file that vouches for the host's key. One of this and <see cref="HostKeyFingerprints"/> is required.</summary>
    public string? KnownHostsFile { get; set; }

    /// <summary>Pinned SHA-256 host key fingerprints (<c>SHA256:…</c>). The default is none.</summary>
    public IList<string> HostKeyFingerprints { get; } = [];

    /// <summary>How long connecting (TCP, key exchange, authentication) may take; 1 second to 5 minutes. The default is 10 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.NotEmpty(nameof(Host), Host);
        errors.Require(Host is null || !Host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '@' or '/'), nameof(Host), $"'{Host}' is not a host name or address.");
        errors.InRange(nameof(Port), Port, 1, 65535);
        errors.NotEmpty(nameof(UserName), UserName);
        errors.NotEmpty(nameof(PrivateKeyFile), PrivateKeyFile);
        errors.Require(!string.IsNullOrEmpty(KnownHostsFile) || HostKeyFingerprints.Count > 0, nameof(KnownHostsFile),
            "a known_hosts file or a pinned host key fingerprint is required: an unverified host key is never trusted.");
        for (var i = 0; i < HostKeyFingerprints.Count; i++)
        {
            try
            {
                _ = SshHostKeyPolicy.Pinned(HostKeyFingerprints[i]);
            }
            catch (FormatException ex)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{nameof(HostKeyFingerprints)}[{i}]"), ex.Message);
            }
        }

        errors.InRange(nameof(ConnectTimeout), ConnectTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
    }
}

/// <summary>
/// Runs commands on a remote host over SSH (SSH.NET). The host key is checked against an
/// <see cref="SshHostKeyPolicy"/> during the key exchange and the connection fails closed with
/// <see cref="SshHostKeyException"/> before authentication, so nothing runs on a host nobody vouched for.
/// SSH runs a shell string on the far side, so every argument is single-quoted: nothing an argument
/// contains can become a second command.
/// </summary>
public sealed class SshCommandRunner : ICommandRunner, IDisposable
{
    private readonly SshClient client;
    private readonly SshHostKeyPolicy hostKeys;
    private readonly bool ownsClient;
    private readonly SemaphoreSlim connectGate = new(1, 1);
    private SshHostKeyException? refusal;
    private bool verified;

    /// <summary>Wraps a client and checks its host key against <paramref name="hostKeys"/>.</summary>
    /// <param name="client">The SSH client; it is connected on first use if it is not yet. It must not be connected yet (its key could not be checked).</param>
    /// <param name="hostKeys">Which host keys to trust.</param>
    /// <param name="ownsClient">Whether disposing this runner disposes the client. The default is <see langword="false"/>.</param>
    /// <exception cref="InvalidOperationException">The client is already connected.</exception>
    public SshCommandRunner(SshClient client, SshHostKeyPolicy hostKeys, bool ownsClient = false)
    {
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.hostKeys = hostKeys ?? throw new ArgumentNullException(nameof(hostKeys));
        if (client.IsConnected)
        {
            throw new InvalidOperationException("The SSH client is already connected, so its host key can no longer be checked; pass a client that is not connected.");
        }

        this.ownsClient = ownsClient;
        client.HostKeyReceived += OnHostKeyReceived;
    }

    /// <summary>Builds a runner that logs in with a key and checks the host key (known_hosts and/or pinned fingerprints).</summary>
    /// <exception cref="OptionsValidationException">An option is invalid.</exception>
    /// <exception cref="FileNotFoundException">The key or known_hosts file does not exist.</exception>
    /// <exception cref="FormatException">The known_hosts file cannot be read.</exception>
    public static SshCommandRunner Create(SshCommandRunnerOptions options)
    {
        OptionsErrors.ValidateAndThrow(options);
        SshHostKeyPolicy? policy = null;
        if (!string.IsNullOrEmpty(options.KnownHostsFile))
        {
            policy = SshHostKeyPolicy.FromKnownHostsFile(options.KnownHostsFile);
        }

        if (options.HostKeyFingerprints.Count > 0)
        {
            var pinned = SshHostKeyPolicy.Pinned(options.HostKeyFingerprints);
            policy = policy is null ? pinned : policy.Or(pinned);
        }

        if (!File.Exists(options.PrivateKeyFile))
        {
            throw new FileNotFoundException($"The private key file '{options.PrivateKeyFile}' does not exist.", options.PrivateKeyFile);
        }

        var key = new PrivateKeyFile(options.PrivateKeyFile);
        var connection = new ConnectionInfo(options.Host, options.Port, options.UserName, new PrivateKeyAuthenticationMethod(options.UserName, key))
        {
            Timeout = options.ConnectTimeout,
        };
        return new SshCommandRunner(new SshClient(connection), policy!, ownsClient: true);
    }

    /// <summary>Where commands run: <c>user@host:port</c>.</summary>
    public string Destination => $"{client.ConnectionInfo.Username}@{client.ConnectionInfo.Host}:{client.ConnectionInfo.Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Connects (if not yet connected) and checks the host key, without running anything.</summary>
    /// <exception cref="SshHostKeyException">The host key was refused; nothing ran.</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        if (client.IsConnected)
        {
            return;
        }

        await connectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (client.IsConnected)
            {
                return;
            }

            refusal = null;
            verified = false;
            try
            {
                await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (refusal is not null && ex is SshException or SshConnectionException or IOException or System.Net.Sockets.SocketException)
            {
                throw new SshHostKeyException(refusal.Host!, refusal.Port, refusal.Verdict, refusal.KeyType, refusal.Fingerprint!, hostKeys.Description, ex);
            }

            if (!verified)
            {
                // Never reached with SSH.NET (the key exchange always raises the event), but fail closed.
                client.Disconnect();
                throw new SshHostKeyException($"The SSH host key of {Destination} was never presented for checking; nothing was run.");
            }
        }
        finally
        {
            connectGate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var text = ToShellCommand(command);
        await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        using var ssh = client.CreateCommand(text);
        await ssh.ExecuteAsync(cancellationToken).ConfigureAwait(false);
        return new CommandResult(command, ssh.ExitStatus ?? -1, ssh.Result, ssh.Error, Stopwatch.GetElapsedTime(started));
    }

    private void OnHostKeyReceived(object? sender, HostKeyEventArgs e)
    {
        var host = client.ConnectionInfo.Host;
        var port = client.ConnectionInfo.Port;
        var verdict = hostKeys.Check(host, port, e.HostKeyName, e.HostKey);
        e.CanTrust = verdict == SshHostKeyVerdict.Trusted;
        if (e.CanTrust)
        {
            verified = true;
            refusal = null;
        }
        else
        {
            refusal = new SshHostKeyException(host, port, verdict, e.HostKeyName, SshHostKeyPolicy.Fingerprint(e.HostKey), hostKeys.Description, null);
        }
    }

    /// <summary>
    /// The remote shell command for <paramref name="command"/>: <c>env LC_ALL=C 'program' 'arg' …</c>, each
    /// word single-quoted (a quote inside becomes <c>'\''</c>), so the far shell sees exactly the argv.
    /// </summary>
    /// <exception cref="ArgumentException">An argument contains a NUL character, which no argv can carry.</exception>
    public static string ToShellCommand(CommandLine command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var sb = new StringBuilder("env LC_ALL=C ");
        sb.Append(Quote(command.Program));
        foreach (var a in command.Arguments)
        {
            sb.Append(' ').Append(Quote(a));
        }

        return sb.ToString();
    }

    /// <summary>Single-quotes one word for a POSIX shell.</summary>
    public static string Quote(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        if (word.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("An argument cannot contain a NUL character.", nameof(word));
        }

        return "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    /// <inheritdoc />
    public void Dispose()
    {
        client.HostKeyReceived -= OnHostKeyReceived;
        connectGate.Dispose();
        if (ownsClient)
        {
            client.Dispose();
        }
    }
}
