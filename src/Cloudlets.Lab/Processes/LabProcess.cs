using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Cloudlets.Lab.Processes;

/// <summary>
/// Ends the lab's processes by the ids they recorded in their pid files, and only after checking
/// <c>/proc/PID/exe</c> (a recorded pid may have been reused by another program since).
/// </summary>
[SupportedOSPlatform("linux")]
internal static partial class LabProcess
{
    internal const int SigTerm = 15;
    internal const int SigKill = 9;

    /// <summary>Reads a pid file; 0 when it is missing or does not hold a positive number.</summary>
    public static int ReadPidFile(string path)
    {
        try
        {
            return File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0
                ? pid
                : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>The program file name a process runs (from <c>/proc/PID/exe</c>), or null when it is gone or unreadable.</summary>
    public static string? ExecutableName(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        try
        {
            var target = new FileInfo($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/exe").LinkTarget;
            if (target is null)
            {
                return null;
            }

            const string deleted = " (deleted)";
            var name = Path.GetFileName(target);
            return name.EndsWith(deleted, StringComparison.Ordinal) ? name[..^deleted.Length] : name;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether <paramref name="pid"/> is alive and runs the program <paramref name="program"/> (a file name such as <c>libvirtd</c>).</summary>
    public static bool IsRunning(int pid, string program) => ExecutableName(pid) == program;

    /// <summary>
    /// Ends a recorded process: SIGTERM, then SIGKILL after <paramref name="grace"/>; does nothing when
    /// the pid is gone or now runs another program. Returns whether the process is gone.
    /// </summary>
    public static async Task<bool> EndAsync(int pid, string program, TimeSpan grace, bool killAtOnce, CancellationToken cancellationToken)
    {
        if (!IsRunning(pid, program))
        {
            return true;
        }

        // From here on the pid is known to be ours: wait for it to be gone, not for its exe link
        // (a multi-threaded daemon loses /proc/PID/exe while its other threads still shut down).
        _ = kill(pid, killAtOnce ? SigKill : SigTerm);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (System.Diagnostics.Stopwatch.GetElapsedTime(started) < grace)
        {
            if (!IsAlive(pid))
            {
                return true;
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        if (IsAlive(pid))
        {
            _ = kill(pid, SigKill);
            for (var i = 0; i < 100 && IsAlive(pid); i++)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }

        return !IsAlive(pid);
    }

    /// <summary>Whether a process with this pid exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0)
        {
            return false;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A process's start time in clock ticks since boot (field 22 of /proc/PID/stat); 0 when it is gone.</summary>
    public static ulong StartTime(int pid)
    {
        if (pid <= 0)
        {
            return 0;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
            return fields.Length > 19 && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            return 0;
        }
    }

    /// <summary>Whether the process <paramref name="pid"/> that started at <paramref name="startTime"/> is still alive (not a reused pid).</summary>
    public static bool IsSameProcessAlive(int pid, ulong startTime) => IsAlive(pid) && StartTime(pid) == startTime;

    /// <summary>Whether this process runs as root.</summary>
    public static bool IsRoot => geteuid() == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint geteuid();
}
