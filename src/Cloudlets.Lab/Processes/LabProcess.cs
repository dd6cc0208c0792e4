using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Cloudlets.Lab.Processes;

/// <summary>
/// Reads and ends processes the lab proved its own (see <see cref="ProcessIdentity"/>): a recorded
/// pid may have been reused by another program since, so nothing is signalled by pid alone.
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

    /// <summary>The absolute path of the program a process runs (from <c>/proc/PID/exe</c>), or null when it is gone or unreadable.</summary>
    public static string? ExecutablePath(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        try
        {
            var target = new FileInfo($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/exe").LinkTarget;
            const string deleted = " (deleted)";
            return target is null ? null : target.EndsWith(deleted, StringComparison.Ordinal) ? target[..^deleted.Length] : target;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Ends a process the lab proved its own: SIGTERM (or SIGKILL at once), then SIGKILL after
    /// <paramref name="grace"/>. Every signal goes out only after the identity is checked again (same
    /// pid, start time and program), so a pid reused meanwhile is never signalled. Returns whether
    /// the process is gone.
    /// </summary>
    public static async Task<bool> EndAsync(ProcessIdentity process, TimeSpan grace, bool killAtOnce, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (!process.IsAlive())
        {
            return !process.Exists();
        }

        _ = kill(process.Pid, killAtOnce ? SigKill : SigTerm);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        // Wait for the process to be gone, not for its exe link (a multi-threaded daemon loses
        // /proc/PID/exe while its other threads still shut down): Exists() checks pid and start time.
        while (System.Diagnostics.Stopwatch.GetElapsedTime(started) < grace)
        {
            if (!process.Exists())
            {
                return true;
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        if (process.Exists() && LabProcess.StartTime(process.Pid) == process.StartTime)
        {
            _ = kill(process.Pid, SigKill);
            for (var i = 0; i < 100 && process.Exists(); i++)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }

        return !process.Exists();
    }

    /// <summary>The inode of the network namespace a process lives in (what <c>/proc/PID/ns/net</c> shows as <c>net:[INODE]</c>); 0 when unknown.</summary>
    public static ulong NetNamespaceInode(int pid) =>
        pid > 0 ? NamespaceLinkInode($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/ns/net") : 0;

    /// <summary>Parses the target of a namespace link (<c>net:[INODE]</c>); 0 when it is not one.</summary>
    internal static ulong NamespaceLinkInode(string link)
    {
        try
        {
            var target = new FileInfo(link).LinkTarget;
            return target is not null && target.StartsWith("net:[", StringComparison.Ordinal) && target.EndsWith(']') &&
                   ulong.TryParse(target.AsSpan(5, target.Length - 6), NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
                ? inode
                : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>Every pid in /proc.</summary>
    public static IEnumerable<int> EnumerateProcesses() =>
        Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Select(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
            .Where(pid => pid > 0);

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

    /// <summary>Whether this process runs as root (effective user id 0; the one root check of the lab and its test gate).</summary>
    public static bool IsRoot => Environment.IsPrivilegedProcess;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
