using System.Runtime.InteropServices;

namespace Cloudlets.Probing.Linux;

/// <summary>
/// The libc calls of this package, in one place: the socket calls of the ICMP prober and the
/// namespace calls of <see cref="NetworkNamespace"/>. The prober calls sockets directly rather than
/// through <see cref="System.Net.Sockets.Socket"/> so the hot path never throws, never allocates,
/// and can drain a socket without blocking (MSG_DONTWAIT) after one poll.
/// </summary>
internal static unsafe partial class Libc
{
    public const int CloneNewNet = 0x40000000;
    public const int OpenReadOnly = 0;
    public const int OpenCloseOnExec = 0x80000;
    public const int AfInet = 2;
    public const int AfInet6 = 10;
    public const int SockDgram = 2;
    public const int SockRaw = 3;
    public const int SockCloexec = 0x80000;
    public const int IpProtoIcmp = 1;
    public const int IpProtoIcmpV6 = 58;
    public const int SolSocket = 1;
    public const int SoRcvBuf = 8;
    public const int SoSndBuf = 7;
    public const int SoSndBufForce = 32;
    public const int SoRcvBufForce = 33;
    public const int SolRaw = 255;
    public const int IcmpFilter = 1;
    public const int SolIcmpV6 = 58;
    public const int Icmp6Filter = 1;
    public const int MsgDontWait = 0x40;
    public const short PollIn = 0x1;
    public const int EIntr = 4;
    public const int EAgain = 11;
    public const int EPerm = 1;
    public const int EAcces = 13;
    public const int EAfNoSupport = 97;
    public const int EProtoNoSupport = 93;
    public const int SoTimestampNs = 35;
    public const int ScmTimestampNs = 35;
    public const int EfdNonBlock = 0x800;
    public const int EfdCloexec = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CMsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    public static partial int RecvMmsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    public static partial nint SendTo(int fd, byte* buffer, nuint length, int flags, byte* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "recvfrom", SetLastError = true)]
    public static partial nint RecvFrom(int fd, byte* buffer, nuint length, int flags, byte* address, uint* addressLength);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "usleep", SetLastError = true)]
    public static partial int USleep(uint microseconds);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int namespaceType);

    /// <summary>Sets an integer socket option; returns the errno, or 0.</summary>
    public static int SetInt(int fd, int level, int name, int value)
        => SetSockOpt(fd, level, name, &value, sizeof(int)) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public static string ErrnoName(int errno) => errno switch
    {
        EPerm => "EPERM (operation not permitted)",
        EAcces => "EACCES (permission denied)",
        EAfNoSupport => "EAFNOSUPPORT (address family not supported)",
        EProtoNoSupport => "EPROTONOSUPPORT (protocol not supported)",
        _ => $"errno {errno}",
    };
}
