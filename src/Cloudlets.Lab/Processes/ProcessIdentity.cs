using System.Globalization;
using System.Runtime.Versioning;

namespace Cloudlets.Lab.Processes;

/// <summary>
/// Who a process is, in a form that survives pid reuse: its pid, its start time in clock ticks since
/// boot (field 22 of <c>/proc/PID/stat</c>) and the absolute path of the program it runs. A pid that
/// was reused by another process has another start time; a process of another program has another
/// path (a file name alone is not enough: any copy named <c>libvirtd</c> would match).
/// </summary>
/// <param name="Pid">The process id.</param>
/// <param name="StartTime">Its start time in clock ticks since boot.</param>
/// <param name="Executable">The absolute path of its program, from <c>/proc/PID/exe</c>.</param>
[SupportedOSPlatform("linux")]
public sealed record ProcessIdentity(int Pid, ulong StartTime, string Executable)
{
    /// <summary>The identity of the live process <paramref name="pid"/> now, or null when it is gone, a zombie or unreadable.</summary>
    public static ProcessIdentity? Capture(int pid)
    {
        if (!LabProcess.IsAlive(pid))
        {
            return null;
        }

        var start = LabProcess.StartTime(pid);
        var exe = LabProcess.ExecutablePath(pid);
        // Read the start time again: if the pid was reused between the two reads, the identity would mix two processes.
        return start != 0 && exe is not null && LabProcess.StartTime(pid) == start ? new ProcessIdentity(pid, start, exe) : null;
    }

    /// <summary>Whether this very process is still alive (same pid, same start time, same program).</summary>
    public bool IsAlive() => LabProcess.IsAlive(Pid) && LabProcess.StartTime(Pid) == StartTime && LabProcess.ExecutablePath(Pid) == Executable;

    /// <summary>
    /// Whether this process still exists in any state a teardown must wait for: alive as recorded,
    /// or dying (same pid and start time, but its exe link is already gone, as for a multi-threaded
    /// daemon whose main thread has exited).
    /// </summary>
    public bool Exists() => LabProcess.IsAlive(Pid) && LabProcess.StartTime(Pid) == StartTime &&
                            (LabProcess.ExecutablePath(Pid) is not { } exe || exe == Executable);

    /// <summary>For messages: <c>PROGRAM PID</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(Executable)} {Pid}");
}
