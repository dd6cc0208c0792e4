namespace Cloudlets.Samples.Demo;

/// <summary>Everything the run measured, for the live view, the JSON summary and the plot.</summary>
internal sealed class Recorder
{
    private readonly Lock _gate = new();
    private readonly List<RttPoint> _points = [];
    private readonly List<MigrationRecord> _migrations = [];
    private readonly List<string> _decisions = [];
    private readonly List<(double AtSeconds, string Label)> _steps = [];

    public IReadOnlyList<RttPoint> Points { get { lock (_gate) { return [.. _points]; } } }

    public IReadOnlyList<MigrationRecord> Migrations { get { lock (_gate) { return [.. _migrations]; } } }

    public IReadOnlyList<(double AtSeconds, string Label)> Steps { get { lock (_gate) { return [.. _steps]; } } }

    public IReadOnlyList<string> RecentDecisions(int count) { lock (_gate) { return [.. _decisions.TakeLast(count)]; } }

    /// <summary>A round trip to <paramref name="series"/> (a host name, or "vm"); null when lost.</summary>
    public void AddRtt(double atSeconds, string series, double? rttMs)
    {
        lock (_gate) { _points.Add(new RttPoint(atSeconds, series, rttMs)); }
    }

    public void AddDecision(string text)
    {
        lock (_gate) { _decisions.Add(text); }
    }

    public void AddStep(double atSeconds, string label)
    {
        lock (_gate) { _steps.Add((atSeconds, label)); }
    }

    public void AddMigration(MigrationRecord record)
    {
        lock (_gate) { _migrations.Add(record); }
    }

    /// <summary>The median RTT of <paramref name="series"/> over answered probes in [from, to).</summary>
    public double? MedianRtt(string series, double fromSeconds, double toSeconds)
    {
        double[] values;
        lock (_gate)
        {
            values = [.. _points.Where(p => p.Series == series && p.RttMs is not null && p.AtSeconds >= fromSeconds && p.AtSeconds < toSeconds)
                                .Select(p => p.RttMs!.Value)];
        }

        if (values.Length == 0)
        {
            return null;
        }

        Array.Sort(values);
        return values.Length % 2 == 1 ? values[values.Length / 2] : (values[(values.Length / 2) - 1] + values[values.Length / 2]) / 2;
    }
}

internal sealed record RttPoint(double AtSeconds, string Series, double? RttMs);

internal sealed record MigrationRecord(string From, string To, double StartedAtSeconds, double EndedAtSeconds, double? TotalMs, double? DowntimeMs, string Outcome, string? Error, int ProgressValues);
