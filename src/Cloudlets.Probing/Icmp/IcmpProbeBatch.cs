using Cloudlets.Core.Probing;

namespace Cloudlets.Probing.Icmp;

/// <summary>
/// The probes of one run (or of one single probe): its targets, its sample callback, and the FIFO
/// of its outstanding probes in send order. One timeout per batch makes send order deadline order,
/// so expiry only ever looks at the head: O(1) per probe, no heap, no lock on the hot path.
/// </summary>
/// <remarks>The FIFO is single-producer (the batch's sender) single-consumer (the receive thread).</remarks>
internal sealed class IcmpProbeBatch
{
    private readonly Action<LatencySample> onSample;
    private readonly long[] fifo;
    private readonly int mask;
    private readonly Lock deliveryGate = new();
    private readonly TaskCompletionSource completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long head;
    private long tail;
    // Probes without a sample yet, plus one for the sender until SendingFinished: whoever takes it to
    // zero completes the batch. (Two separate flags, "sending done" and "outstanding == 0", each set by
    // one thread and read by the other, could both be read stale: a store followed by a load may be
    // reordered, and a probe answered while the sender was finishing then never completed — issue 11.)
    private int outstanding = 1;
    private int sendingDone;
    private volatile bool cancelled;

    public IcmpProbeBatch(ProbeTarget[] targets, long timeoutTicks, long expectedProbes, Action<LatencySample> onSample, TimeSpan timeout = default)
    {
        Targets = targets;
        Keys = new IcmpAddressKey[targets.Length];
        for (var i = 0; i < targets.Length; i++)
        {
            Keys[i] = IcmpPacket.KeyOf(targets[i].Address);
        }

        TimeoutTicks = timeoutTicks;
        TimeoutTimeSpanTicks = timeout > TimeSpan.Zero ? timeout.Ticks : long.MaxValue;
        this.onSample = onSample;
        var capacity = (int)Math.Min(Math.Max(expectedProbes, 1), 2 * IcmpProbeTable.Capacity);
        fifo = new long[(int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity)];
        mask = fifo.Length - 1;
    }

    public ProbeTarget[] Targets { get; }

    public IcmpAddressKey[] Keys { get; }

    /// <summary>The timeout in <see cref="TimeProvider"/> timestamp units.</summary>
    public long TimeoutTicks { get; }

    /// <summary>The timeout in <see cref="TimeSpan"/> ticks, for round trips measured with kernel timestamps.</summary>
    public long TimeoutTimeSpanTicks { get; }

    /// <summary>Completes when sending is done and every probe has its sample (or the batch was cancelled).</summary>
    public Task Completion => completion.Task;

    public bool IsCancelled => cancelled;

    /// <summary>Probes sent (or being sent) that have no sample yet.</summary>
    public int Outstanding => Volatile.Read(ref outstanding) - (Volatile.Read(ref sendingDone) == 0 ? 1 : 0);

    /// <summary>Whether the FIFO can take one more entry (the sender waits otherwise).</summary>
    public bool HasRoom => Volatile.Read(ref tail) - Volatile.Read(ref head) < fifo.Length;

    /// <summary>Called by the sender before it publishes a probe.</summary>
    public void AddOutstanding() => Interlocked.Increment(ref outstanding);

    /// <summary>Producer side: remembers a published probe.</summary>
    public void Enqueue(ushort sequence, uint generation)
    {
        var t = tail;
        fifo[t & mask] = ((long)generation << 16) | sequence;
        Volatile.Write(ref tail, t + 1);
    }

    /// <summary>Consumer side: the oldest remembered probe, if any.</summary>
    public bool TryPeek(out ushort sequence, out uint generation)
    {
        var h = head;
        if (h == Volatile.Read(ref tail))
        {
            sequence = 0;
            generation = 0;
            return false;
        }

        var entry = fifo[h & mask];
        sequence = (ushort)entry;
        generation = (uint)(entry >> 16);
        return true;
    }

    /// <summary>Consumer side: drops the oldest remembered probe.</summary>
    public void Dequeue() => Volatile.Write(ref head, head + 1);

    /// <summary>Delivers one probe's sample and completes the batch when it was the last.</summary>
    public void Deliver(in LatencySample sample)
    {
        if (!cancelled)
        {
            lock (deliveryGate)
            {
                if (!cancelled)
                {
                    onSample(sample);
                }
            }
        }

        if (Interlocked.Decrement(ref outstanding) == 0)
        {
            completion.TrySetResult();
        }
    }

    /// <summary>The sender has sent everything it will send.</summary>
    public void SendingFinished()
    {
        if (Interlocked.Exchange(ref sendingDone, 1) == 0 && Interlocked.Decrement(ref outstanding) == 0)
        {
            completion.TrySetResult();
        }
    }

    /// <summary>Stops deliveries; the caller sees the cancellation at once.</summary>
    public void Cancel(CancellationToken token)
    {
        lock (deliveryGate)
        {
            cancelled = true;
        }

        completion.TrySetCanceled(token);
    }

    /// <summary>Fails the batch (for example the prober was disposed under it).</summary>
    public void Fail(Exception exception)
    {
        lock (deliveryGate)
        {
            cancelled = true;
        }

        completion.TrySetException(exception);
    }
}
