using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Pipeline;

/// <summary>
/// One <see cref="RollingLatencyStatistics"/> per (vantage point, target) pair, so the pipeline, the
/// probes and the policy share one definition of median, percentile and jitter. Not thread-safe;
/// the pipeline serialises access.
/// </summary>
internal sealed class LatencyWindows
{
    private readonly int _capacity;
    private readonly Dictionary<(string VantagePoint, string Target), RollingLatencyStatistics> _windows = [];

    public LatencyWindows(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
    }

    public void Add(in LatencySample sample)
    {
        var key = (sample.VantagePoint, sample.Target.Name);
        if (!_windows.TryGetValue(key, out var window))
        {
            window = new RollingLatencyStatistics(_capacity);
            _windows.Add(key, window);
        }

        window.Add(sample);
    }

    /// <summary>The summary of a pair's window; an empty summary (Sent 0: no data) when nothing was seen.</summary>
    public LatencySummary Summarize(string vantagePoint, string target) =>
        _windows.TryGetValue((vantagePoint, target), out var w) ? w.Summarize() : default;

    /// <summary>The summary of a pair's samples sent in [from, to); an empty summary when there are none.</summary>
    public LatencySummary Summarize(string vantagePoint, string target, DateTimeOffset from, DateTimeOffset to) =>
        _windows.TryGetValue((vantagePoint, target), out var w) ? w.Summarize(from, to) : default;
}
