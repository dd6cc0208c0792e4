using Cloudlets.Core.Probing;

namespace Cloudlets.Simulation;

/// <summary>
/// Records latency samples (for example a pipeline's sample stream) as a version-1 trace file, so
/// what a live run measured can be replayed. Samples are kept in memory and written in time order
/// when the recorder completes or is disposed (probes of several vantage points arrive slightly out
/// of order). Owns nothing but its buffer; the writer stays the caller's.
/// </summary>
public sealed class TraceRecorder : IObserver<LatencySample>, IDisposable
{
    private readonly TextWriter _writer;
    private readonly DateTimeOffset _start;
    private readonly Func<ProbeTarget, string?> _hostOf;
    private readonly List<TraceSample> _samples = [];
    private readonly Lock _lock = new();
    private bool _written;

    /// <summary>Creates a recorder.</summary>
    /// <param name="writer">Where the trace is written (when the recorder completes or is disposed).</param>
    /// <param name="start">The time that stands for t = 0; earlier samples are dropped.</param>
    /// <param name="hostOf">The host a probe target stands for, or <see langword="null"/> to drop its samples. The default is the target's name.</param>
    public TraceRecorder(TextWriter writer, DateTimeOffset start, Func<ProbeTarget, string?>? hostOf = null)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _start = start;
        _hostOf = hostOf ?? (t => t.Name);
    }

    /// <summary>How many samples were recorded.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _samples.Count;
            }
        }
    }

    /// <summary>Records one sample: an answered probe with its RTT, anything else as lost.</summary>
    public void Record(in LatencySample sample)
    {
        var host = _hostOf(sample.Target);
        var t = (sample.SentAt - _start).TotalSeconds;
        if (host is null || t < 0)
        {
            return;
        }

        double? rtt = sample.Status == ProbeStatus.Ok && sample.RoundTripTime is { } r ? r.TotalMilliseconds : null;
        lock (_lock)
        {
            _samples.Add(new TraceSample(Math.Round(t, 3), sample.VantagePoint, host, rtt is { } v ? Math.Round(v, 3) : null));
        }
    }

    /// <inheritdoc />
    public void OnNext(LatencySample value) => Record(value);

    /// <inheritdoc />
    public void OnError(Exception error) => Flush();

    /// <inheritdoc />
    public void OnCompleted() => Flush();

    /// <summary>Writes the trace (once), sorted by time; later calls do nothing.</summary>
    public void Flush()
    {
        lock (_lock)
        {
            if (_written)
            {
                return;
            }

            _written = true;
            var ordered = _samples.OrderBy(s => s.T).ToList();
            TraceCsv.Write(_writer, new LatencyTrace(ordered));
            _writer.Flush();
        }
    }

    /// <inheritdoc />
    public void Dispose() => Flush();
}
