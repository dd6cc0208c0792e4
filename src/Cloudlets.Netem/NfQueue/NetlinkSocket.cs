using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Cloudlets.Netem.NfQueue;

/// <summary>
/// Opens a NETLINK_NETFILTER socket. .NET has no public AF_NETLINK, so the socket is made with libc
/// <c>socket()</c>/<c>bind()</c> and wrapped in a <see cref="Socket"/>; it belongs to the network
/// namespace of the thread that opens it.
/// </summary>
[SupportedOSPlatform("linux")]
internal static partial class NetlinkSocket
{
    private const int AfNetlink = 16;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private const int NetlinkNetfilter = 12;
    private const int SolSocket = 1;
    private const int SoRcvbufForce = 33;
    private const int SolNetlink = 270;
    private const int NetlinkNoEnobufs = 5;

    public static Socket Open(int receiveBufferBytes)
    {
        var fd = socket(AfNetlink, SockRaw | SockCloexec, NetlinkNetfilter);
        if (fd < 0)
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }

        var address = new SockaddrNl { Family = AfNetlink };
        if (bind(fd, ref address, Marshal.SizeOf<SockaddrNl>()) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            _ = close(fd);
            throw new SocketException(errno);
        }

        var socketObject = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        try
        {
            // A full receive buffer drops packets in the kernel (user_dropped); root may force a large one.
            socketObject.SetRawSocketOption(SolSocket, SoRcvbufForce, BitConverter.GetBytes(receiveBufferBytes));
        }
        catch (SocketException)
        {
            socketObject.ReceiveBufferSize = receiveBufferBytes;
        }

        try
        {
            socketObject.SetRawSocketOption(SolNetlink, NetlinkNoEnobufs, BitConverter.GetBytes(1));
        }
        catch (SocketException)
        {
            // Older kernels: ENOBUFS then surfaces from Receive and is counted.
        }

        return socketObject;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint Pid;
        public uint Groups;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static partial int bind(int fd, ref SockaddrNl address, int length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int close(int fd);
}
