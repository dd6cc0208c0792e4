using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Probing.Icmp;

/// <summary>The send side: one thread per run, paced like fping, and the single-probe send.</summary>
public sealed partial class IcmpProber
{
    private unsafe void SendLoop(IcmpProbeBatch batch, ProbeSchedule schedule, CancellationToken cancellationToken, CancellationToken callerToken)
    {
        try
        {
            var targets = batch.Targets;
            var packetLength = IcmpPacket.HeaderLength + payloadSize;
            var packets = GC.AllocateUninitializedArray<byte>(2 * packetLength, pinned: true);
            IcmpPacket.WriteTemplate(packets.AsSpan(0, packetLength), ipv6: false, table.Identifier, table.Nonce);
            IcmpPacket.WriteTemplate(packets.AsSpan(packetLength, packetLength), ipv6: true, table.Identifier, table.Nonce);
            var addresses = GC.AllocateUninitializedArray<byte>(targets.Length * SockAddrLength, pinned: true);
            var addressLengths = new int[targets.Length];
            var isIPv6 = new bool[targets.Length];
            for (var i = 0; i < targets.Length; i++)
            {
                addressLengths[i] = IcmpPacket.WriteSockAddr(targets[i].Address, addresses.AsSpan(i * SockAddrLength, SockAddrLength));
                isIPv6[i] = targets[i].Address.AddressFamily == AddressFamily.InterNetworkV6;
            }

            var time = table.Time;
            var period = table.ToTimestampUnits(schedule.Period);
            var interval = table.ToTimestampUnits(schedule.Interval);
            var nextDue = new long[targets.Length];
            var nextAny = long.MinValue;
            fixed (byte* packetBase = packets)
            fixed (byte* addressBase = addresses)
            {
                for (var round = 0; round < schedule.Count; round++)
                {
                    for (var i = 0; i < targets.Length; i++)
                    {
                        var due = Math.Max(nextAny, nextDue[i]);
                        if (!WaitUntil(time, due, cancellationToken))
                        {
                            EndRunEarly(batch, callerToken);
                            return;
                        }

                        var v6 = isIPv6[i];
                        if (!SendOne(batch, i, packetBase + (v6 ? packetLength : 0), packetLength, v6,
                                addressBase + (i * SockAddrLength), addressLengths[i], cancellationToken, out var sentAt))
                        {
                            EndRunEarly(batch, callerToken);
                            return;
                        }

                        // Plan from the planned time, as fping does, so small wake-up delays do not add up
                        // over the rounds; after a long stall restart from now rather than send a burst.
                        var planned = sentAt - due > period ? sentAt : due;
                        nextDue[i] = planned + period;
                        nextAny = (sentAt - due > interval ? sentAt : due) + interval;
                    }
                }
            }
        }
#pragma warning disable CA1031 // A failed sender fails its run; the exception travels to the caller through the run's task.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            batch.Fail(ex);
        }
        finally
        {
            batch.SendingFinished();
            lock (runGate)
            {
                senders.Remove(Thread.CurrentThread);
            }
        }
    }

    /// <summary>
    /// Ends a run before its last round as cancelled (the caller's token) or failed (the prober disposed):
    /// from the run's token registration, and from the sender itself before its <c>SendingFinished</c>,
    /// since the registered callback may run later (<c>CancelAsync</c> runs it on another thread), and by
    /// then every probe sent could be answered and the run completed as if it had sent them all. The first
    /// of the two decides; the other finds the run ended.
    /// </summary>
    private static void EndRunEarly(IcmpProbeBatch batch, CancellationToken callerToken)
    {
        if (callerToken.IsCancellationRequested)
        {
            batch.Cancel(callerToken);
        }
        else
        {
            batch.Fail(new ObjectDisposedException(nameof(IcmpProber), "The prober was disposed during the run."));
        }
    }

    private static unsafe bool WaitUntil(TimeProvider time, long due, CancellationToken cancellationToken)
    {
        var frequency = time.TimestampFrequency;
        var millisecond = frequency / 1000;
        var microsecond = Math.Max(frequency / 1_000_000, 1);
        while (true)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return false;
            }

            var remaining = due - time.GetTimestamp();
            if (remaining <= 0)
            {
                return true;
            }

            if (remaining > 100 * millisecond)
            {
                Thread.Sleep(100);
            }
            else if (remaining > 200 * microsecond)
            {
                // A timed sleep, not a yield: on a loaded machine a yielding thread can lose the processor
                // for a whole time slice, while a sleeper is woken on time. Wake a little early and spin the rest.
                _ = Libc.USleep((uint)((remaining / microsecond) - 60));
            }
            else
            {
                Thread.SpinWait(20);
            }
        }
    }

    /// <summary>Sends one probe; false when cancelled or disposed before it could be sent.</summary>
    private unsafe bool SendOne(IcmpProbeBatch batch, int targetIndex, byte* packet, int packetLength, bool ipv6, byte* sockaddr, int sockaddrLength, CancellationToken cancellationToken, out long sentAt)
    {
        ushort sequence;
        uint generation;
        // Every sequence number busy, or this batch's FIFO full: wait for replies or timeouts to free some.
        while (!batch.HasRoom || !table.TryReserve(batch, targetIndex, out sequence, out generation))
        {
            if (cancellationToken.IsCancellationRequested || Volatile.Read(ref disposed) != 0)
            {
                sentAt = 0;
                return false;
            }

            Thread.Sleep(1);
        }

        IcmpPacket.Stamp(new Span<byte>(packet, packetLength), sequence, generation, computeChecksum: raw && !ipv6);
        sentAt = table.Time.GetTimestamp();
        table.Publish(sequence, sentAt, kernelTimestamps ? DateTime.UtcNow.Ticks : 0);
        // Never block in the kernel: a blocked sendto honours neither the probe's timeout nor its cancellation
        // (issue 11). An ICMP datagram socket blocks once its send buffer is full (packets held in a slow or
        // stalled queue below it stay charged to the socket); with MSG_DONTWAIT that is EAGAIN, and the probe
        // ends at once as an Error, as a raw socket's ENOBUFS already did.
        var sent = Libc.SendTo(ipv6 ? fd6 : fd4, packet, (nuint)packetLength, Libc.MsgDontWait, sockaddr, (uint)sockaddrLength);
        if (sent < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            // No route or unreachable network: the network said no. Anything else (EAGAIN, ENOBUFS, …): the probe failed.
            table.FailSend(sequence, errno is 101 or 113 ? ProbeStatus.Unreachable : ProbeStatus.Error);
        }

        return true;
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        _ = Libc.Write(wakeFd, &one, sizeof(ulong));
    }
}
