using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Pipeline;

/// <summary>
/// The last N samples of every (vantage point, target) pair, summarised on demand. Internal: the
/// pipeline's own rolling statistics (the probing area had none when the pipeline was written).
/// Not thread-safe; the pipeline serialises access.
/// </summary>
internal sealed class LatencyWindows
{
    private readonly int _capacity;
    private readonly Dictionary<(string VantagePoint, string Target), Window> _windows = [];
    private readonly double[] _scratch;

    public LatencyWindows(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _scratch = new double[capacity];
    }

    public void Add(in LatencySample sample)
    {
        var key = (sample.VantagePoint, sample.Target.Name);
        if (!_windows.TryGetValue(key, out var window))
        {
            window = new Window(_capacity);
            _windows.Add(key, window);
        }

        var rtt = sample.Status == ProbeStatus.Ok && sample.RoundTripTime is { } t ? t.TotalMilliseconds : double.NaN;
        window.Add(sample.SentAt, rtt);
    }

    /// <summary>The summary of a pair's window; an empty summary (Sent 0: no data) when nothing was seen.</summary>
    public LatencySummary Summarize(string vantagePoint, string target) =>
        _windows.TryGetValue((vantagePoint, target), out var w) ? w.Summarize(_scratch) : default;

    /// <summary>The median round-trip time in ms of the answered samples sent in [from, to), or NaN when there are none.</summary>
    public double MedianBetween(string vantagePoint, string target, DateTimeOffset from, DateTimeOffset to) =>
        _windows.TryGetValue((vantagePoint, target), out var w) ? w.MedianBetween(from, to, _scratch) : double.NaN;

    private sealed class Window(int capacity)
    {
        private readonly DateTimeOffset[] _sent = new DateTimeOffset[capacity];
        private readonly double[] _rtt = new double[capacity];
        private int _count;
        private int _next;

        public void Add(DateTimeOffset sentAt, double rttMs)
        {
            _sent[_next] = sentAt;
            _rtt[_next] = rttMs;
            _next = (_next + 1) % _sent.Length;
            _count = Math.Min(_count + 1, _sent.Length);
        }

        public LatencySummary Summarize(double[] scratch)
        {
            if (_count == 0)
            {
                return default;
            }

            var oldest = (_next - _count + _sent.Length) % _sent.Length;
            DateTimeOffset newest = default;
            var received = 0;
            double sum = 0, jitterSum = 0, previous = double.NaN;
            var jitterCount = 0;
            for (var i = 0; i < _count; i++)
            {
                var k = (oldest + i) % _sent.Length;
                if (i == 0 || _sent[k] > newest)
                {
                    newest = _sent[k];
                }

                var rtt = _rtt[k];
                if (double.IsNaN(rtt))
                {
                    continue;
                }

                scratch[received++] = rtt;
                sum += rtt;
                if (!double.IsNaN(previous))
                {
                    jitterSum += Math.Abs(rtt - previous);
                    jitterCount++;
                }

                previous = rtt;
            }

            if (received == 0)
            {
                return new LatencySummary(_count, 0, null, null, null, null, null, null, newest);
            }

            Array.Sort(scratch, 0, received);
            return new LatencySummary(
                _count,
                received,
                Ms(scratch[0]),
                Ms(Percentile(scratch, received, 0.5)),
                Ms(Percentile(scratch, received, 0.95)),
                Ms(scratch[received - 1]),
                Ms(sum / received),
                jitterCount > 0 ? Ms(jitterSum / jitterCount) : TimeSpan.Zero,
                newest);
        }

        public double MedianBetween(DateTimeOffset from, DateTimeOffset to, double[] scratch)
        {
            var n = 0;
            for (var i = 0; i < _count; i++)
            {
                if (_sent[i] >= from && _sent[i] < to && !double.IsNaN(_rtt[i]))
                {
                    scratch[n++] = _rtt[i];
                }
            }

            if (n == 0)
            {
                return double.NaN;
            }

            Array.Sort(scratch, 0, n);
            return Percentile(scratch, n, 0.5);
        }

        // Nearest rank: the smallest value with at least p of the samples at or below it.
        private static double Percentile(double[] sorted, int count, double p) =>
            sorted[Math.Clamp((int)Math.Ceiling(p * count) - 1, 0, count - 1)];

        private static TimeSpan Ms(double ms) => TimeSpan.FromTicks((long)Math.Round(ms * TimeSpan.TicksPerMillisecond));
    }
}
