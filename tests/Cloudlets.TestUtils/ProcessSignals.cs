using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Cloudlets.TestUtils;

/// <summary>
/// Signals to a child process a test started (by its pid: never by name or pattern). .NET's
/// <see cref="Process.Kill()"/> only sends SIGKILL; a test of a clean stop needs SIGTERM or SIGINT.
/// </summary>
public static partial class ProcessSignals
{
    /// <summary>SIGINT, what Ctrl+C sends.</summary>
    public const int Interrupt = 2;

    /// <summary>SIGKILL: no clean-up, a crash.</summary>
    public const int Kill = 9;

    /// <summary>SIGTERM, what systemctl stop and a plain kill send.</summary>
    public const int Terminate = 15;

    /// <summary>Sends <paramref name="signal"/> to the process unless it has exited; throws when kill(2) fails.</summary>
    /// <exception cref="InvalidOperationException">kill(2) failed (the errno is in the message).</exception>
    public static void Send(Process process, int signal)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (!process.HasExited && NativeKill(process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int NativeKill(int pid, int signal);
}
