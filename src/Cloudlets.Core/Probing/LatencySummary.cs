namespace Cloudlets.Core.Probing;

/// <summary>
/// Statistics over a window of samples from one vantage point to one target. Round-trip figures
/// are <see langword="null"/> when no reply was received in the window: silence is never "fast".
/// </summary>
/// <param name="Sent">Probes in the window.</param>
/// <param name="Received">Probes answered in time.</param>
/// <param name="Min">The smallest round-trip time.</param>
/// <param name="Median">The median round-trip time.</param>
/// <param name="P95">The 95th percentile round-trip time.</param>
/// <param name="Max">The largest round-trip time.</param>
/// <param name="Mean">The mean round-trip time.</param>
/// <param name="Jitter">The mean absolute difference between consecutive round-trip times (RFC 3550 style, unsmoothed).</param>
/// <param name="NewestSampleAt">When the newest sample in the window (answered or not) was sent; <see langword="null"/> for an empty window.</param>
public readonly record struct LatencySummary(
    int Sent,
    int Received,
    TimeSpan? Min,
    TimeSpan? Median,
    TimeSpan? P95,
    TimeSpan? Max,
    TimeSpan? Mean,
    TimeSpan? Jitter,
    DateTimeOffset? NewestSampleAt)
{
    /// <summary>The share of probes lost, 0 to 1; 1 for an empty window (nothing known is nothing answered).</summary>
    public double LossRate => Sent == 0 ? 1.0 : 1.0 - ((double)Received / Sent);

    /// <summary>How old the newest sample is at <paramref name="now"/>; <see langword="null"/> for an empty window.</summary>
    public TimeSpan? AgeAt(DateTimeOffset now) => NewestSampleAt is { } t ? now - t : null;
}
