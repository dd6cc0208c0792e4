using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.NfQueue;

/// <summary>Release every queued packet of <paramref name="Queue"/> with an id up to <paramref name="MaxId"/>.</summary>
internal readonly record struct VerdictBatch(ushort Queue, uint MaxId, int Count);

/// <summary>
/// The due-time queue of the delay line, without I/O: packets go in with their arrival time and come
/// out as batches when due. Times are <see cref="TimeProvider"/> timestamps, so tests drive it with a
/// fake clock. Each queue keeps arrival order (a jittered due time is never earlier than the previous
/// packet's, as netem with a FIFO child), which is what makes one batch verdict per queue correct: the
/// kernel releases every entry up to the highest id, and all of them are due.
/// </summary>
internal sealed class DelayScheduler
{
    private readonly Dictionary<ushort, QueueState> queues = [];
    private readonly long frequency;
    private readonly Random random;

    public DelayScheduler(long timestampFrequency, LatenessStatistics statistics, Random? random = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(timestampFrequency);
        frequency = timestampFrequency;
        Statistics = statistics ?? throw new ArgumentNullException(nameof(statistics));
        this.random = random ?? new Random();
    }

    public LatenessStatistics Statistics { get; }

    /// <summary>Packets waiting in every queue.</summary>
    public int Pending { get; private set; }

    public bool IsConfigured(ushort queue) => queues.ContainsKey(queue);

    /// <summary>Sets (or changes) a queue's impairment; packets already waiting keep their due times.</summary>
    public void Configure(ushort queue, Impairment impairment)
    {
        ArgumentNullException.ThrowIfNull(impairment);
        if (!queues.TryGetValue(queue, out var state))
        {
            state = new QueueState();
            queues[queue] = state;
        }

        state.DelayTicks = ToTicks(impairment.Delay);
        state.JitterTicks = ToTicks(impairment.Jitter);
        state.Distribution = impairment.Distribution;
        state.Correlation = impairment.DelayCorrelationPercent / 100.0;
    }

    /// <summary>Forgets a queue; returns the highest id still waiting (to release it now), if any.</summary>
    public bool Remove(ushort queue, out uint maxPendingId)
    {
        maxPendingId = 0;
        if (!queues.Remove(queue, out var state) || state.Entries.Count == 0)
        {
            return false;
        }

        foreach (var e in state.Entries)
        {
            maxPendingId = e.Id;
        }

        Pending -= state.Entries.Count;
        return true;
    }

    /// <summary>Queues a packet that arrived at <paramref name="now"/>; returns its due time.</summary>
    public long Enqueue(ushort queue, uint id, long now)
    {
        var state = queues[queue];
        var due = now + state.DelayTicks + state.SampleJitter(random);
        due = Math.Max(due, now);
        due = Math.Max(due, state.LastDue);  // keep arrival order
        state.LastDue = due;
        state.Entries.Enqueue(new Entry(id, due));
        Pending++;
        return due;
    }

    /// <summary>The earliest due time, or <see langword="null"/> when nothing waits.</summary>
    public long? NextDue
    {
        get
        {
            long? next = null;
            foreach (var state in queues.Values)
            {
                if (state.Entries.TryPeek(out var head) && (next is null || head.Due < next))
                {
                    next = head.Due;
                }
            }

            return next;
        }
    }

    /// <summary>Takes every packet due at <paramref name="now"/>: one batch per queue, lateness recorded.</summary>
    public void Release(long now, List<VerdictBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        foreach (var (queue, state) in queues)
        {
            uint maxId = 0;
            var count = 0;
            while (state.Entries.TryPeek(out var head) && head.Due <= now)
            {
                state.Entries.Dequeue();
                Statistics.Record(now - head.Due, frequency);
                maxId = head.Id;
                count++;
            }

            if (count > 0)
            {
                Pending -= count;
                batches.Add(new VerdictBatch(queue, maxId, count));
            }
        }
    }

    private long ToTicks(TimeSpan t) => (long)(t.TotalSeconds * frequency);

    private readonly record struct Entry(uint Id, long Due);

    private sealed class QueueState
    {
        public Queue<Entry> Entries { get; } = new();

        public long DelayTicks { get; set; }

        public long JitterTicks { get; set; }

        public DelayDistribution Distribution { get; set; }

        public double Correlation { get; set; }

        public long LastDue { get; set; }

        private double lastSample;

        public long SampleJitter(Random random)
        {
            if (JitterTicks == 0)
            {
                return 0;
            }

            // A standard sample in "jitters": uniform in [-1, 1], or normal with sigma 1 (clamped to ±4).
            double s;
            if (Distribution == DelayDistribution.Normal)
            {
                var u1 = 1.0 - random.NextDouble();
                var u2 = random.NextDouble();
                s = Math.Clamp(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2), -4, 4);
            }
            else
            {
                s = (random.NextDouble() * 2) - 1;
            }

            // netem-style correlation: mix with the previous sample.
            s = ((1 - Correlation) * s) + (Correlation * lastSample);
            lastSample = s;
            return (long)(s * JitterTicks);
        }
    }
}

/// <summary>How late released packets were (release time − due time), as a histogram with 10 µs bins. Thread-safe.</summary>
public sealed class LatenessStatistics
{
    private const int BinMicros = 10;
    private const int Bins = 20_000;  // 200 ms
    private readonly Lock gate = new();
    private readonly long[] histogram = new long[Bins + 1];
    private long count;
    private long maxMicros;

    internal void Record(long lateTicks, long frequency)
    {
        var micros = Math.Max(0, lateTicks) * 1_000_000 / frequency;
        lock (gate)
        {
            histogram[Math.Min(Bins, micros / BinMicros)]++;
            count++;
            maxMicros = Math.Max(maxMicros, micros);
        }
    }

    /// <summary>Forgets everything recorded so far.</summary>
    public void Reset()
    {
        lock (gate)
        {
            Array.Clear(histogram);
            count = 0;
            maxMicros = 0;
        }
    }

    /// <summary>A consistent copy of the numbers.</summary>
    public LatenessSnapshot Snapshot()
    {
        lock (gate)
        {
            return new LatenessSnapshot(count, Percentile(0.50), Percentile(0.99), TimeSpan.FromMicroseconds(maxMicros));
        }
    }

    private TimeSpan Percentile(double p)
    {
        if (count == 0)
        {
            return TimeSpan.Zero;
        }

        var rank = (long)Math.Ceiling(p * count);
        long seen = 0;
        for (var i = 0; i <= Bins; i++)
        {
            seen += histogram[i];
            if (seen >= rank)
            {
                // The bin's upper edge: a conservative figure.
                return i == Bins ? TimeSpan.FromMicroseconds(maxMicros) : TimeSpan.FromMicroseconds((i + 1) * BinMicros);
            }
        }

        return TimeSpan.FromMicroseconds(maxMicros);
    }
}

/// <summary>Lateness of released packets.</summary>
/// <param name="Released">Packets released.</param>
/// <param name="P50">Median lateness (upper edge of its 10 µs bin).</param>
/// <param name="P99">99th percentile lateness (upper edge of its 10 µs bin).</param>
/// <param name="Max">The largest lateness.</param>
public sealed record LatenessSnapshot(long Released, TimeSpan P50, TimeSpan P99, TimeSpan Max);
