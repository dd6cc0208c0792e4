using System.Buffers.Binary;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Probing.Icmp;

/// <summary>How the prober classified one received ICMP message.</summary>
internal enum IcmpReplyKind
{
    /// <summary>An echo reply to a pending probe of ours, in time.</summary>
    Matched,
    /// <summary>An ICMP error about a pending probe of ours: the probe is <see cref="ProbeStatus.Unreachable"/>.</summary>
    Unreachable,
    /// <summary>An echo reply for another prober (other identifier or nonce).</summary>
    Foreign,
    /// <summary>A second reply to a probe that was already answered.</summary>
    Duplicate,
    /// <summary>A reply after the probe's timeout.</summary>
    Late,
    /// <summary>Our identifier and nonce, but no pending probe matches (sequence, generation or source differ).</summary>
    Unmatched,
    /// <summary>Not a message the prober looks at (a request, a truncated packet, another type).</summary>
    Ignored,
}

/// <summary>
/// The pending probes of one prober, indexed by ICMP sequence number, and the matching of replies
/// to them. Free of sockets and threads so matching and timeouts can be tested in virtual time.
/// </summary>
/// <remarks>
/// Slot life: Free → Reserved (a sender claimed the sequence number) → Pending (timestamps written,
/// packet about to leave) → Free (answered, unreachable, failed or expired; whoever wins the
/// compare-and-swap from Pending delivers the one sample). Replies and expiry run on one thread.
/// </remarks>
internal sealed class IcmpProbeTable
{
    /// <summary>Sequence numbers are 16 bits: at most this many probes are outstanding at once.</summary>
    public const int Capacity = 65536;

    private const int Free = 0;
    private const int Reserved = 1;
    private const int Pending = 2;
    private const byte Answered = 1;
    private const byte Expired = 2;

    private readonly Slot[] slots = new Slot[Capacity];
    private readonly TimeProvider time;
    private readonly long baseTimestamp;
    private readonly DateTimeOffset baseUtc;
    private readonly double ticksPerTimestamp;
    private readonly Lock batchGate = new();
    private IcmpProbeBatch[] batches = new IcmpProbeBatch[4];
    private int batchCount;
    private IcmpProbeBatch[] scan = new IcmpProbeBatch[4];
    private int nextSequence = -1;
    private int nextGeneration;
    private long matched;
    private long unreachable;
    private long foreign;
    private long duplicates;
    private long late;
    private long unmatched;
    private long timedOut;

    public IcmpProbeTable(TimeProvider time, string vantagePoint, ushort identifier, uint nonce, bool checkIdentifier)
    {
        this.time = time;
        VantagePoint = vantagePoint;
        Identifier = identifier;
        Nonce = nonce;
        CheckIdentifier = checkIdentifier;
        baseTimestamp = time.GetTimestamp();
        baseUtc = time.GetUtcNow();
        ticksPerTimestamp = (double)TimeSpan.TicksPerSecond / time.TimestampFrequency;
    }

    public string VantagePoint { get; }

    public ushort Identifier { get; }

    public uint Nonce { get; }

    /// <summary>False for ICMP datagram sockets, where the kernel picks the identifier and filters replies itself.</summary>
    public bool CheckIdentifier { get; }

    public TimeProvider Time => time;

    /// <summary>A snapshot of the counters.</summary>
    public IcmpProberCounters Counters => new(
        Interlocked.Read(ref matched), Interlocked.Read(ref unreachable), Interlocked.Read(ref timedOut),
        Interlocked.Read(ref late), Interlocked.Read(ref duplicates), Interlocked.Read(ref foreign), Interlocked.Read(ref unmatched));

    /// <summary>Converts a duration to timestamp units of the <see cref="TimeProvider"/>.</summary>
    public long ToTimestampUnits(TimeSpan duration) => (long)Math.Ceiling(duration.Ticks / ticksPerTimestamp);

    public void Register(IcmpProbeBatch batch)
    {
        lock (batchGate)
        {
            if (batchCount == batches.Length)
            {
                Array.Resize(ref batches, batches.Length * 2);
            }

            batches[batchCount++] = batch;
        }
    }

    /// <summary>Fails every registered batch (the prober is going away; nothing will be answered any more).</summary>
    public void FailAll(Exception exception)
    {
        lock (batchGate)
        {
            for (var i = 0; i < batchCount; i++)
            {
                batches[i].Fail(exception);
            }
        }
    }

    /// <summary>Claims a free sequence number for a probe of <paramref name="batch"/>; false when all are in use.</summary>
    public bool TryReserve(IcmpProbeBatch batch, int targetIndex, out ushort sequence, out uint generation)
    {
        for (var attempt = 0; attempt < 256; attempt++)
        {
            var s = Interlocked.Increment(ref nextSequence) & 0xFFFF;
            ref var slot = ref slots[s];
            if (Interlocked.CompareExchange(ref slot.State, Reserved, Free) == Free)
            {
                generation = (uint)Interlocked.Increment(ref nextGeneration);
                slot.Generation = generation;
                slot.Batch = batch;
                slot.TargetIndex = targetIndex;
                slot.LastOutcome = 0;
                batch.AddOutstanding();
                sequence = (ushort)s;
                return true;
            }
        }

        sequence = 0;
        generation = 0;
        return false;
    }

    /// <summary>Publishes a reserved probe as sent at <paramref name="sentTimestamp"/>; call right before the packet leaves.</summary>
    /// <param name="sequence">The reserved sequence number.</param>
    /// <param name="sentTimestamp">The send time on the table's <see cref="TimeProvider"/>.</param>
    /// <param name="sentUtcTicks">The send time as <see cref="DateTime.UtcNow"/> ticks when replies carry kernel receive timestamps; 0 otherwise.</param>
    public void Publish(ushort sequence, long sentTimestamp, long sentUtcTicks = 0)
    {
        ref var slot = ref slots[sequence];
        slot.SentTimestamp = sentTimestamp;
        slot.SentUtcTicks = sentUtcTicks;
        slot.Deadline = sentTimestamp + slot.Batch!.TimeoutTicks;
        Volatile.Write(ref slot.State, Pending);
        slot.Batch.Enqueue(sequence, slot.Generation);
    }

    /// <summary>The packet of a published probe could not be sent: deliver <paramref name="status"/> now.</summary>
    public void FailSend(ushort sequence, ProbeStatus status)
    {
        ref var slot = ref slots[sequence];
        var owner = new Owner(slot);
        slot.LastOutcome = Expired;
        if (Interlocked.CompareExchange(ref slot.State, Free, Pending) == Pending)
        {
            Deliver(owner, status, 0);
        }
    }

    /// <summary>
    /// Classifies one ICMP message (starting at the ICMP header, the IP header already removed) that
    /// came from <paramref name="source"/> at <paramref name="now"/>, and delivers the sample it completes.
    /// </summary>
    /// <remarks>
    /// <paramref name="receivedUtcTicks"/>, when not 0, is the kernel's receive timestamp (SO_TIMESTAMPNS)
    /// as <see cref="DateTime"/> ticks: the round trip is then measured from the probe's UTC send time to
    /// it, so a busy receive thread does not add its queueing delay to the figure.
    /// </remarks>
    public IcmpReplyKind HandleMessage(ReadOnlySpan<byte> icmp, bool ipv6, in IcmpAddressKey source, long now, long receivedUtcTicks = 0)
    {
        if (icmp.Length < IcmpPacket.HeaderLength)
        {
            return IcmpReplyKind.Ignored;
        }

        var type = icmp[0];
        if (type == (ipv6 ? IcmpPacket.EchoReplyV6 : IcmpPacket.EchoReplyV4))
        {
            return HandleEchoReply(icmp, source, now, receivedUtcTicks);
        }

        if (ipv6 ? type is IcmpPacket.DestinationUnreachableV6 or IcmpPacket.TimeExceededV6
                 : type is IcmpPacket.DestinationUnreachableV4 or IcmpPacket.TimeExceededV4)
        {
            return HandleError(icmp, ipv6, now);
        }

        return IcmpReplyKind.Ignored;
    }

    private IcmpReplyKind HandleEchoReply(ReadOnlySpan<byte> icmp, in IcmpAddressKey source, long now, long receivedUtcTicks)
    {
        if (CheckIdentifier && BinaryPrimitives.ReadUInt16BigEndian(icmp[4..]) != Identifier)
        {
            foreign++;
            return IcmpReplyKind.Foreign;
        }

        if (icmp.Length < IcmpPacket.HeaderLength + IcmpPacket.MinimumPayload ||
            BinaryPrimitives.ReadUInt32LittleEndian(icmp[(IcmpPacket.HeaderLength + 4)..]) != Nonce)
        {
            foreign++;
            return IcmpReplyKind.Foreign;
        }

        var sequence = BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]);
        var generation = BinaryPrimitives.ReadUInt32LittleEndian(icmp[IcmpPacket.HeaderLength..]);
        ref var slot = ref slots[sequence];
        var state = Volatile.Read(ref slot.State);
        if (slot.Generation != generation)
        {
            unmatched++;
            return IcmpReplyKind.Unmatched;
        }

        if (state != Pending)
        {
            if (slot.LastOutcome == Answered)
            {
                duplicates++;
                return IcmpReplyKind.Duplicate;
            }

            if (slot.LastOutcome == Expired)
            {
                late++;
                return IcmpReplyKind.Late;
            }

            unmatched++;
            return IcmpReplyKind.Unmatched;
        }

        if (slot.Batch!.Keys[slot.TargetIndex] != source)
        {
            unmatched++;
            return IcmpReplyKind.Unmatched;
        }

        long rttTicks;
        if (receivedUtcTicks != 0 && slot.SentUtcTicks != 0)
        {
            rttTicks = receivedUtcTicks - slot.SentUtcTicks;
            if (rttTicks > slot.Batch.TimeoutTimeSpanTicks)
            {
                late++;
                return IcmpReplyKind.Late;
            }
        }
        else
        {
            if (now > slot.Deadline)
            {
                // Too late to count; the expiry pass turns the probe into a timeout sample.
                late++;
                return IcmpReplyKind.Late;
            }

            rttTicks = (long)((now - slot.SentTimestamp) * ticksPerTimestamp);
        }

        var owner = new Owner(slot);
        slot.LastOutcome = Answered;
        if (Interlocked.CompareExchange(ref slot.State, Free, Pending) != Pending)
        {
            duplicates++;
            return IcmpReplyKind.Duplicate;
        }

        matched++;
        Deliver(owner, ProbeStatus.Ok, rttTicks);
        return IcmpReplyKind.Matched;
    }

    private IcmpReplyKind HandleError(ReadOnlySpan<byte> icmp, bool ipv6, long now)
    {
        // The error quotes the offending packet: its IP header, then at least 8 bytes of our ICMP header.
        var quoted = icmp[IcmpPacket.HeaderLength..];
        int innerOffset;
        IcmpAddressKey destination;
        if (ipv6)
        {
            if (quoted.Length < 48 || quoted[6] != Libc.IpProtoIcmpV6)
            {
                return IcmpReplyKind.Ignored;
            }

            destination = new IcmpAddressKey(
                System.Runtime.InteropServices.MemoryMarshal.Read<ulong>(quoted[24..]),
                System.Runtime.InteropServices.MemoryMarshal.Read<ulong>(quoted[32..]));
            innerOffset = 40;
        }
        else
        {
            if (quoted.Length < 28 || quoted[9] != Libc.IpProtoIcmp)
            {
                return IcmpReplyKind.Ignored;
            }

            innerOffset = (quoted[0] & 0xF) * 4;
            if (innerOffset < 20 || quoted.Length < innerOffset + 8)
            {
                return IcmpReplyKind.Ignored;
            }

            destination = new IcmpAddressKey(0, System.Runtime.InteropServices.MemoryMarshal.Read<uint>(quoted[16..]));
        }

        var inner = quoted[innerOffset..];
        if (inner[0] != (ipv6 ? IcmpPacket.EchoRequestV6 : IcmpPacket.EchoRequestV4) ||
            (CheckIdentifier && BinaryPrimitives.ReadUInt16BigEndian(inner[4..]) != Identifier))
        {
            return IcmpReplyKind.Ignored;
        }

        var sequence = BinaryPrimitives.ReadUInt16BigEndian(inner[6..]);
        ref var slot = ref slots[sequence];
        if (Volatile.Read(ref slot.State) != Pending || slot.Batch!.Keys[slot.TargetIndex] != destination)
        {
            unmatched++;
            return IcmpReplyKind.Unmatched;
        }

        // When the quote is long enough, its generation and nonce must be ours too.
        if (inner.Length >= IcmpPacket.HeaderLength + IcmpPacket.MinimumPayload &&
            (BinaryPrimitives.ReadUInt32LittleEndian(inner[IcmpPacket.HeaderLength..]) != slot.Generation ||
             BinaryPrimitives.ReadUInt32LittleEndian(inner[(IcmpPacket.HeaderLength + 4)..]) != Nonce))
        {
            unmatched++;
            return IcmpReplyKind.Unmatched;
        }

        if (now > slot.Deadline)
        {
            late++;
            return IcmpReplyKind.Late;
        }

        var owner = new Owner(slot);
        slot.LastOutcome = Expired;
        if (Interlocked.CompareExchange(ref slot.State, Free, Pending) != Pending)
        {
            late++;
            return IcmpReplyKind.Late;
        }

        unreachable++;
        Deliver(owner, ProbeStatus.Unreachable, 0);
        return IcmpReplyKind.Unreachable;
    }

    /// <summary>
    /// Turns every pending probe whose deadline is at or before <paramref name="now"/> into a timeout
    /// sample, forgets finished batches, and returns the next deadline (<see cref="long.MaxValue"/> for none).
    /// </summary>
    public long Expire(long now)
    {
        int count;
        lock (batchGate)
        {
            count = batchCount;
            if (scan.Length < count)
            {
                scan = new IcmpProbeBatch[batches.Length];
            }

            Array.Copy(batches, scan, count);
        }

        var next = long.MaxValue;
        var finished = 0;
        for (var i = 0; i < count; i++)
        {
            var batch = scan[i];
            while (batch.TryPeek(out var sequence, out var generation))
            {
                ref var slot = ref slots[sequence];
                if (slot.Generation != generation || Volatile.Read(ref slot.State) != Pending)
                {
                    batch.Dequeue();
                    continue;
                }

                if (slot.Deadline > now)
                {
                    next = Math.Min(next, slot.Deadline);
                    break;
                }

                batch.Dequeue();
                var owner = new Owner(slot);
                slot.LastOutcome = Expired;
                if (Interlocked.CompareExchange(ref slot.State, Free, Pending) == Pending)
                {
                    timedOut++;
                    Deliver(owner, ProbeStatus.Timeout, 0);
                }
            }

            if (batch.Completion.IsCompleted && batch.Outstanding == 0)
            {
                finished++;
            }
        }

        if (finished > 0)
        {
            lock (batchGate)
            {
                var kept = 0;
                for (var i = 0; i < batchCount; i++)
                {
                    var b = batches[i];
                    if (!(b.Completion.IsCompleted && b.Outstanding == 0))
                    {
                        batches[kept++] = b;
                    }
                }

                Array.Clear(batches, kept, batchCount - kept);
                batchCount = kept;
            }
        }

        Array.Clear(scan, 0, count);
        return next;
    }

    /// <summary>The UTC time a timestamp of this table's <see cref="TimeProvider"/> stands for.</summary>
    public DateTimeOffset ToUtc(long timestamp) => baseUtc.AddTicks((long)((timestamp - baseTimestamp) * ticksPerTimestamp));

    private void Deliver(in Owner owner, ProbeStatus status, long roundTripTicks)
    {
        var batch = owner.Batch;
        TimeSpan? rtt = null;
        if (status == ProbeStatus.Ok)
        {
            // A real reply always took time; a coarse or virtual clock must not make it "0 ms".
            rtt = TimeSpan.FromTicks(Math.Max(1, roundTripTicks));
        }

        var sample = new LatencySample(VantagePoint, batch.Targets[owner.TargetIndex], ToUtc(owner.SentTimestamp), rtt, status);
        batch.Deliver(sample);
    }

    /// <summary>What a delivery needs from a slot, read before the slot is freed (a sender may reuse it at once).</summary>
    private readonly struct Owner(in Slot slot)
    {
        public readonly IcmpProbeBatch Batch = slot.Batch!;
        public readonly int TargetIndex = slot.TargetIndex;
        public readonly long SentTimestamp = slot.SentTimestamp;
    }

    private struct Slot
    {
        public int State;
        public uint Generation;
        public long SentTimestamp;
        public long SentUtcTicks;
        public long Deadline;
        public IcmpProbeBatch? Batch;
        public int TargetIndex;
        public byte LastOutcome;
    }
}
