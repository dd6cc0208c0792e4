using System.Diagnostics;
using System.Text;
using Cloudlets.Probing.Commands;
using Renci.SshNet;

namespace Cloudlets.Netem.Ssh;

/// <summary>
/// Runs commands on a remote host over SSH (SSH.NET). SSH runs a shell string on the far side, so
/// every argument is single-quoted: nothing an argument contains can become a second command.
/// </summary>
public sealed class SshCommandRunner : ICommandRunner, IDisposable
{
    private readonly SshClient client;
    private readonly bool ownsClient;
    private readonly SemaphoreSlim connectGate = new(1, 1);

    /// <summary>Wraps a client.</summary>
    /// <param name="client">The SSH client; it is connected on first use if it is not yet.</param>
    /// <param name="ownsClient">Whether disposing this runner disposes the client. The default is <see langword="false"/>.</param>
    public SshCommandRunner(SshClient client, bool ownsClient = false)
    {
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.ownsClient = ownsClient;
    }

    /// <summary>Where commands run: <c>user@host:port</c>.</summary>
    public string Destination => $"{client.ConnectionInfo.Username}@{client.ConnectionInfo.Host}:{client.ConnectionInfo.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <inheritdoc />
    public async Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var text = ToShellCommand(command);
        if (!client.IsConnected)
        {
            await connectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!client.IsConnected)
                {
                    await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                connectGate.Release();
            }
        }

        var started = Stopwatch.GetTimestamp();
        using var ssh = client.CreateCommand(text);
        await ssh.ExecuteAsync(cancellationToken).ConfigureAwait(false);
        return new CommandResult(command, ssh.ExitStatus ?? -1, ssh.Result, ssh.Error, Stopwatch.GetElapsedTime(started));
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
        connectGate.Dispose();
        if (ownsClient)
        {
            client.Dispose();
        }
    }
}
