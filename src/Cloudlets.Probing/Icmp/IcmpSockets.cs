using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Probing.Icmp;

/// <summary>Opening and configuring the ICMP sockets: raw when allowed, else datagram, and why neither when both fail.</summary>
internal static class IcmpSockets
{
    public static (int Fd4, int Fd6, string? V6Failure, bool Raw) OpenSockets(IcmpProberOptions options)
    {
        var fd4 = Open(ipv6: false, options.SocketKind, out var isRaw, out var failure);
        if (fd4 < 0)
        {
            throw new IcmpUnavailableException(failure!);
        }

        Configure(fd4, ipv6: false, isRaw, options.ReceiveBufferBytes);
        var fd6 = -1;
        string? v6Failure = "IPv6 was disabled in the prober's options.";
        if (options.EnableIPv6)
        {
            fd6 = Open(ipv6: true, isRaw ? IcmpSocketKind.Raw : IcmpSocketKind.Datagram, out _, out v6Failure);
            if (fd6 >= 0)
            {
                Configure(fd6, ipv6: true, isRaw, options.ReceiveBufferBytes);
            }
        }

        return (fd4, fd6, v6Failure, isRaw);
    }

    private static int Open(bool ipv6, IcmpSocketKind kind, out bool isRaw, out string? failure)
    {
        var family = ipv6 ? Libc.AfInet6 : Libc.AfInet;
        var protocol = ipv6 ? Libc.IpProtoIcmpV6 : Libc.IpProtoIcmp;
        var name = ipv6 ? "ICMPv6" : "ICMP";
        string? rawFailure = null;
        if (kind is IcmpSocketKind.Auto or IcmpSocketKind.Raw)
        {
            var fd = Libc.Socket(family, Libc.SockRaw | Libc.SockCloexec, protocol);
            if (fd >= 0)
            {
                isRaw = true;
                failure = null;
                return fd;
            }

            rawFailure = $"a raw {name} socket was refused: {Libc.ErrnoName(Marshal.GetLastPInvokeError())} (raw sockets need root or CAP_NET_RAW)";
            if (kind == IcmpSocketKind.Raw)
            {
                isRaw = false;
                failure = $"Cannot probe with {name}: {rawFailure}.";
                return -1;
            }
        }

        var dgram = Libc.Socket(family, Libc.SockDgram | Libc.SockCloexec, protocol);
        if (dgram >= 0)
        {
            isRaw = false;
            failure = null;
            return dgram;
        }

        var dgramFailure = $"an unprivileged {name} datagram socket was refused: {Libc.ErrnoName(Marshal.GetLastPInvokeError())} " +
            $"(allowed only when the process's group is inside net.ipv4.ping_group_range, now '{ReadPingGroupRange()}')";
        isRaw = false;
        failure = rawFailure is null
            ? $"Cannot probe with {name}: {dgramFailure}."
            : $"Cannot probe with {name}: {rawFailure}, and {dgramFailure}. Run as root, grant CAP_NET_RAW, or widen ping_group_range.";
        return -1;
    }

    private static string ReadPingGroupRange()
    {
        try
        {
            return File.ReadAllText("/proc/sys/net/ipv4/ping_group_range").Trim().Replace('\t', ' ');
        }
        catch (IOException)
        {
            return "unreadable";
        }
        catch (UnauthorizedAccessException)
        {
            return "unreadable";
        }
    }

    private unsafe static void Configure(int fd, bool ipv6, bool isRaw, int receiveBufferBytes)
    {
        // Best effort: a smaller buffer or no filter still works, just less well under load.
        if (Libc.SetInt(fd, Libc.SolSocket, Libc.SoRcvBufForce, receiveBufferBytes) != 0)
        {
            _ = Libc.SetInt(fd, Libc.SolSocket, Libc.SoRcvBuf, receiveBufferBytes);
        }

        if (!isRaw)
        {
            return;
        }

        if (ipv6)
        {
            // ICMP6_FILTER: a set bit blocks the type. Let through echo replies and the errors that name a probe.
            var filter = stackalloc uint[8];
            for (var i = 0; i < 8; i++)
            {
                filter[i] = uint.MaxValue;
            }

            foreach (var type in (ReadOnlySpan<byte>)[IcmpPacket.EchoReplyV6, IcmpPacket.DestinationUnreachableV6, IcmpPacket.TimeExceededV6])
            {
                filter[type >> 5] &= ~(1u << (type & 31));
            }

            _ = Libc.SetSockOpt(fd, Libc.SolIcmpV6, Libc.Icmp6Filter, filter, 32);
        }
        else
        {
            // ICMP_FILTER: a set bit blocks the type. Without it a raw socket also reads every echo request it sends to loopback.
            var blocked = ~((1u << IcmpPacket.EchoReplyV4) | (1u << IcmpPacket.DestinationUnreachableV4) | (1u << IcmpPacket.TimeExceededV4));
            _ = Libc.SetSockOpt(fd, Libc.SolRaw, Libc.IcmpFilter, &blocked, sizeof(uint));
        }
    }
}
