namespace Cloudlets.Core.Probing;

/// <summary>
/// Statistics over the newest <see cref="Window"/> samples of one target: a ring buffer that
/// <see cref="Add(in LatencySample)"/> updates in O(1) without allocating, and that
/// <see cref="Summarize()"/> turns into a <see cref="LatencySummary"/> (O(n log n), no allocation either).
/// </summary>
/// <remarks>
/// Not thread-safe: one instance per target, fed from one thread (a prober's callback, an Rx
/// pipeline). Definitions: the median of an even count is the mean of the two middle values; the
/// 95th percentile is the nearest-rank value (the ⌈0.95·n⌉-th smallest); jitter is the mean
/// absolute difference between consecutive answered round trips, in the order they were added,
/// and needs at least two answers.
/// </remarks>
public sealed class RollingLatencyStatistics
{
    private const long Lost = -1;

    private readonly long[] roundTrips;
    private readonly long[] sentAt;
    private readonly long[] scratch;
    private int next;
    private int count;

    /// <summary>Creates empty statistics over a window of <paramref name="window"/> samples (at least 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="window"/> is less than 1.</exception>
    public RollingLatencyStatistics(int window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        roundTrips = new long[window];
        sentAt = new long[window];
        scratch = new long[window];
    }

    /// <summary>How many samples the window holds at most.</summary>
    public int Window => roundTrips.Length;

    /// <summary>How many samples the window holds now.</summary>
    public int Count => count;

    /// <summary>Adds a sample; the oldest one leaves when the window is full. Only <see cref="ProbeStatus.Ok"/> samples count as answered.</summary>
    public void Add(in LatencySample sample)
        => Add(sample.Status == ProbeStatus.Ok ? sample.RoundTripTime : null, sample.SentAt);

    /// <summary>Adds an answered probe (<paramref name="roundTripTime"/> set) or a lost one (<see langword="null"/>) sent at <paramref name="sentAtUtc"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="roundTripTime"/> is negative.</exception>
    public void Add(TimeSpan? roundTripTime, DateTimeOffset sentAtUtc)
    {
        if (roundTripTime is { Ticks: < 0 })
        {
            throw new ArgumentOutOfRangeException(nameof(roundTripTime), roundTripTime, "A round trip cannot be negative.");
        }

        roundTrips[next] = roundTripTime?.Ticks ?? Lost;
        sentAt[next] = sentAtUtc.UtcTicks;
        next = next + 1 == roundTrips.Length ? 0 : next + 1;
        if (count < roundTrips.Length)
        {
            count++;
        }
    }

    /// <summary>Forgets every sample.</summary>
    public void Clear()
    {
        next = 0;
        count = 0;
    }

    /// <summary>Summarizes the window. Round-trip figures are <see langword="null"/> when nothing was answered.</summary>
    public LatencySummary Summarize() => Summarize(long.MinValue, long.MaxValue);

    /// <summary>
    /// Summarizes the samples of the window sent in [<paramref name="fromUtc"/>, <paramref name="toUtc"/>)
    /// (for example those sent after a migration completed), with the same definitions as
    /// <see cref="Summarize()"/>. An empty summary when none was sent in that span.
    /// </summary>
    public LatencySummary Summarize(DateTimeOffset fromUtc, DateTimeOffset toUtc) =>
        Summarize(fromUtc.UtcTicks, toUtc == DateTimeOffset.MaxValue ? long.MaxValue : toUtc.UtcTicks);

    private LatencySummary Summarize(long fromTicks, long toTicks)
    {
        var window = roundTrips.Length;
        var oldest = count < window ? 0 : next;
        var sent = 0;
        var received = 0;
        long sum = 0;
        long jitterSum = 0;
        var previous = Lost;
        var newest = long.MinValue;
        for (var k = 0; k < count; k++)
        {
            var index = oldest + k;
            if (index >= window)
            {
                index -= window;
            }

            var at = sentAt[index];
            if (at < fromTicks || at >= toTicks)
            {
                continue;
            }

            sent++;
            newest = Math.Max(newest, at);
            var rtt = roundTrips[index];
            if (rtt == Lost)
            {
                continue;
            }

            scratch[received++] = rtt;
            sum += rtt;
            if (previous != Lost)
            {
                jitterSum += Math.Abs(rtt - previous);
            }

            previous = rtt;
        }

        if (sent == 0)
        {
            return new LatencySummary(0, 0, null, null, null, null, null, null, null);
        }

        var newestAt = new DateTimeOffset(newest, TimeSpan.Zero);
        if (received == 0)
        {
            return new LatencySummary(sent, 0, null, null, null, null, null, null, newestAt);
        }

        var sorted = scratch.AsSpan(0, received);
        sorted.Sort();
        return new LatencySummary(
            sent,
            received,
            TimeSpan.FromTicks(sorted[0]),
            TimeSpan.FromTicks(Median(sorted)),
            TimeSpan.FromTicks(NearestRank(sorted, 0.95)),
            TimeSpan.FromTicks(sorted[received - 1]),
            TimeSpan.FromTicks(sum / received),
            received > 1 ? TimeSpan.FromTicks(jitterSum / (received - 1)) : null,
            newestAt);
    }

    // The median of an even count is the mean of the two middle values.
    private static long Median(ReadOnlySpan<long> sorted)
    {
        var n = sorted.Length;
        return (n & 1) == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2;
    }

    // Nearest rank: the ⌈p·n⌉-th smallest value.
    private static long NearestRank(ReadOnlySpan<long> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}
