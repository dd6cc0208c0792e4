using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Probing.Icmp;

/// <summary>The receive side: one thread, poll + recvmmsg, kernel receive timestamps, the expiry pass.</summary>
public sealed partial class IcmpProber
{
    private unsafe void ReceiveLoop()
    {
        // One recvmmsg reads up to ReceiveBatch replies, each with its kernel receive timestamp.
        var buffers = (byte*)NativeMemory.Alloc((nuint)(ReceiveBatch * (ReceiveBufferLength + SockAddrLength + ControlLength)));
        var messages = (Libc.MMsgHdr*)NativeMemory.AllocZeroed((nuint)ReceiveBatch, (nuint)sizeof(Libc.MMsgHdr));
        var vectors = (Libc.IoVec*)NativeMemory.AllocZeroed((nuint)ReceiveBatch, (nuint)sizeof(Libc.IoVec));
        try
        {
            for (var j = 0; j < ReceiveBatch; j++)
            {
                var at = buffers + (j * (ReceiveBufferLength + SockAddrLength + ControlLength));
                vectors[j].Base = at;
                vectors[j].Length = ReceiveBufferLength;
                messages[j].Header.Iov = vectors + j;
                messages[j].Header.IovLength = 1;
                messages[j].Header.Name = at + ReceiveBufferLength;
                messages[j].Header.Control = at + ReceiveBufferLength + SockAddrLength;
            }

            var fds = stackalloc Libc.PollFd[3];
            fds[0] = new Libc.PollFd { Fd = wakeFd, Events = Libc.PollIn };
            fds[1] = new Libc.PollFd { Fd = fd4, Events = Libc.PollIn };
            fds[2] = new Libc.PollFd { Fd = fd6, Events = Libc.PollIn };
            var count = fd6 >= 0 ? 3 : 2;
            var time = table.Time;
            var frequency = time.TimestampFrequency;
            while (!stopping)
            {
                var now = time.GetTimestamp();
                var next = table.Expire(now);
                var timeoutMs = next == long.MaxValue ? 1000 : (int)Math.Clamp(((next - now) * 1000 + frequency - 1) / frequency, 0, 1000);
                var ready = Libc.Poll(fds, (nuint)count, timeoutMs);
                if (ready <= 0)
                {
                    continue;
                }

                if (fds[0].Revents != 0)
                {
                    ulong wakeCount;
                    _ = Libc.Read(wakeFd, &wakeCount, sizeof(ulong));
                }

                var drained = 0;
                if (fds[1].Revents != 0)
                {
                    drained += Drain(fd4, ipv6: false, messages);
                }

                if (count == 3 && fds[2].Revents != 0)
                {
                    drained += Drain(fd6, ipv6: true, messages);
                }

                // With kernel receive timestamps a reply read later still measures right, so under load let
                // replies gather for a moment: one wake-up and a few recvmmsg calls per hundred replies
                // instead of a wake-up (an inter-processor interrupt) per reply.
                if (kernelTimestamps && drained > 0 && receivePauseMicroseconds > 0)
                {
                    _ = Libc.USleep(receivePauseMicroseconds);
                }
            }
        }
        finally
        {
            NativeMemory.Free(vectors);
            NativeMemory.Free(messages);
            NativeMemory.Free(buffers);
        }
    }

    private unsafe int Drain(int fd, bool ipv6, Libc.MMsgHdr* messages)
    {
        var total = 0;
        var time = table.Time;
        for (var round = 0; round < 64; round++)
        {
            for (var j = 0; j < ReceiveBatch; j++)
            {
                messages[j].Header.NameLength = SockAddrLength;
                messages[j].Header.ControlLength = ControlLength;
                messages[j].Header.Flags = 0;
            }

            var received = Libc.RecvMmsg(fd, messages, ReceiveBatch, Libc.MsgDontWait, null);
            if (received <= 0)
            {
                return total;
            }

            total += received;

            var now = time.GetTimestamp();
            for (var j = 0; j < received; j++)
            {
                ref var header = ref messages[j].Header;
                var buffer = (byte*)header.Iov->Base;
                var length = (int)messages[j].Length;
                var message = new ReadOnlySpan<byte>(buffer, length);
                if (!ipv6 && raw)
                {
                    // Raw IPv4 sockets hand over the IP header too.
                    var headerLength = (buffer[0] & 0xF) * 4;
                    if (length < headerLength + IcmpPacket.HeaderLength)
                    {
                        continue;
                    }

                    message = message[headerLength..];
                }

                var source = IcmpPacket.KeyOfSockAddr(new ReadOnlySpan<byte>(header.Name, SockAddrLength), ipv6);
                table.HandleMessage(message, ipv6, source, now, kernelTimestamps ? ReceiveTimestamp(ref header) : 0);
            }

            if (received < ReceiveBatch)
            {
                return total;
            }
        }

        return total;
    }

    /// <summary>The SCM_TIMESTAMPNS control message of a received datagram as <see cref="DateTime"/> ticks; 0 when absent.</summary>
    private static unsafe long ReceiveTimestamp(ref Libc.MsgHdr header)
    {
        var control = (byte*)header.Control;
        var end = control + header.ControlLength;
        var headerSize = sizeof(Libc.CMsgHdr);
        while (control + headerSize <= end)
        {
            var cmsg = (Libc.CMsgHdr*)control;
            if (cmsg->Length < (nuint)headerSize)
            {
                return 0;
            }

            if (cmsg->Level == Libc.SolSocket && cmsg->Type == Libc.ScmTimestampNs && cmsg->Length >= (nuint)(headerSize + 16))
            {
                var seconds = *(long*)(control + headerSize);
                var nanoseconds = *(long*)(control + headerSize + 8);
                return DateTime.UnixEpoch.Ticks + (seconds * TimeSpan.TicksPerSecond) + (nanoseconds / 100);
            }

            control += (int)((cmsg->Length + 7) & ~(nuint)7);
        }

        return 0;
    }
}
