using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Cloudlets.Netem.NfQueue;

/// <summary>
/// What the delay line needs from libc for precise timing: <c>ppoll</c> (nanosecond timeout, where
/// <see cref="System.Net.Sockets.Socket.Poll(int, System.Net.Sockets.SelectMode)"/> rounds to whole
/// milliseconds), a small timer slack, and real-time scheduling for the delayer thread so a busy
/// machine does not make packets late.
/// </summary>
[SupportedOSPlatform("linux")]
internal static partial class PreciseWait
{
    private const short PollIn = 1;
    private const int SchedFifo = 1;
    private const int PrSetTimerSlack = 29;

    /// <summary>Waits until <paramref name="fd"/> is readable or <paramref name="timeoutNanoseconds"/> pass; true when readable.</summary>
    public static bool WaitReadable(nint fd, long timeoutNanoseconds)
    {
        var pfd = new PollFd { Fd = (int)fd, Events = PollIn };
        var ts = new TimeSpec { Seconds = timeoutNanoseconds / 1_000_000_000, Nanoseconds = timeoutNanoseconds % 1_000_000_000 };
        var n = ppoll(ref pfd, 1, ref ts, 0);
        return n > 0 && (pfd.Revents & PollIn) != 0;
    }

    /// <summary>
    /// Moves the calling thread to SCHED_FIFO at <paramref name="priority"/> (1–99) and sets a 1 µs timer
    /// slack. Returns whether real-time scheduling was granted (it needs CAP_SYS_NICE).
    /// </summary>
    public static bool TryMakeCurrentThreadRealtime(int priority)
    {
        _ = prctl(PrSetTimerSlack, 1000, 0, 0, 0);
        if (priority <= 0)
        {
            return false;
        }

        var param = new SchedParam { Priority = priority };
        return sched_setscheduler(0, SchedFifo, ref param) == 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SchedParam
    {
        public int Priority;
    }

    [LibraryImport("libc", EntryPoint = "ppoll", SetLastError = true)]
    private static partial int ppoll(ref PollFd fds, nuint count, ref TimeSpec timeout, nint sigmask);

    [LibraryImport("libc", EntryPoint = "sched_setscheduler", SetLastError = true)]
    private static partial int sched_setscheduler(int pid, int policy, ref SchedParam param);

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
