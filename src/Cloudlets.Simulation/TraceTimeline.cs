using System.Globalization;

namespace Cloudlets.Simulation;

/// <summary>
/// A trace bound to a fleet, in steps: step <c>k</c> starts at the k-th distinct time of the trace and
/// lasts until the next one (the last step lasts as long as the one before it, or 1 s in a trace of
/// one step). For every step and every (vantage point, host) pair it holds the RTT the cost model
/// charges: the step's sample, or the last known RTT when the probe is lost or missing (before a
/// pair's first answer, its first answer; a pair that never answers costs
/// <see cref="CostModel.UnreachableRttMs"/>).
/// </summary>
public sealed class TraceTimeline
{
    private readonly float[] _filled; // [step][vantage * H + host]

    /// <summary>Binds a trace to a fleet.</summary>
    /// <exception cref="TraceFormatException">A sample names a host that is not in the fleet (the line is the sample's position + the two header lines).</exception>
    public TraceTimeline(Fleet fleet, LatencyTrace trace)
    {
        ArgumentNullException.ThrowIfNull(fleet);
        ArgumentNullException.ThrowIfNull(trace);
        Fleet = fleet;
        HostCount = fleet.Hosts.Count;
        var vantage = new List<string>(fleet.VantagePoints());
        var vantageIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < vantage.Count; i++)
        {
            vantageIndex[vantage[i]] = i;
        }

        var hostIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var h = 0; h < HostCount; h++)
        {
            hostIndex[fleet.Hosts[h].Name] = h;
        }

        var times = new List<double>();
        var stepStart = new List<int>();
        var samples = trace.Samples;
        for (var i = 0; i < samples.Count; i++)
        {
            if (times.Count == 0 || samples[i].T > times[^1])
            {
                times.Add(samples[i].T);
                stepStart.Add(i);
            }

            if (!hostIndex.ContainsKey(samples[i].Host))
            {
                throw new TraceFormatException("trace", i + 3, "host", $"'{samples[i].Host}' is not a host of the fleet.");
            }

            if (!vantageIndex.ContainsKey(samples[i].VantagePoint))
            {
                // A vantage point no VM uses costs nothing; it is kept so the policy sees it.
                vantageIndex[samples[i].VantagePoint] = vantage.Count;
                vantage.Add(samples[i].VantagePoint);
            }
        }

        if (times.Count == 0)
        {
            throw new TraceFormatException("trace", 3, "t", "the trace has no samples.");
        }

        VantagePoints = vantage;
        Times = [.. times];
        StepCount = Times.Length;
        StepSeconds = new double[StepCount];
        for (var k = 0; k < StepCount; k++)
        {
            StepSeconds[k] = k + 1 < StepCount ? Times[k + 1] - Times[k] : StepCount > 1 ? Times[k] - Times[k - 1] : 1;
        }

        var pairs = vantage.Count * HostCount;
        PairCount = pairs;
        _filled = new float[StepCount * pairs];
        StepSampleStart = [.. stepStart, samples.Count];
        SampleVantage = new int[samples.Count];
        SampleHost = new int[samples.Count];
        SampleRtt = new double[samples.Count];
        var last = new float[pairs];
        Array.Fill(last, float.NaN);
        var first = new float[pairs];
        Array.Fill(first, float.NaN);
        for (var k = 0; k < StepCount; k++)
        {
            for (var i = StepSampleStart[k]; i < StepSampleStart[k + 1]; i++)
            {
                var s = samples[i];
                var p = vantageIndex[s.VantagePoint];
                var h = hostIndex[s.Host];
                SampleVantage[i] = p;
                SampleHost[i] = h;
                SampleRtt[i] = s.RttMs ?? double.NaN;
                if (s.RttMs is { } r)
                {
                    last[(p * HostCount) + h] = (float)r;
                    if (float.IsNaN(first[(p * HostCount) + h]))
                    {
                        first[(p * HostCount) + h] = (float)r;
                    }
                }
            }

            Array.Copy(last, 0, _filled, k * pairs, pairs);
        }

        var unreachable = (float)fleet.Cost.UnreachableRttMs;
        for (var p = 0; p < pairs; p++)
        {
            var fill = float.IsNaN(first[p]) ? unreachable : first[p];
            for (var k = 0; k < StepCount && float.IsNaN(_filled[(k * pairs) + p]); k++)
            {
                _filled[(k * pairs) + p] = fill;
            }
        }
    }

    /// <summary>The fleet.</summary>
    public Fleet Fleet { get; }

    /// <summary>Every vantage point: the fleet's users' first, then any others the trace names.</summary>
    public IReadOnlyList<string> VantagePoints { get; }

    /// <summary>The number of hosts.</summary>
    public int HostCount { get; }

    /// <summary>The number of steps.</summary>
    public int StepCount { get; }

    /// <summary>The number of (vantage point, host) pairs.</summary>
    public int PairCount { get; }

    /// <summary>Each step's start, in seconds from the start of the trace.</summary>
    public double[] Times { get; }

    /// <summary>Each step's length in seconds.</summary>
    public double[] StepSeconds { get; }

    /// <summary>The first sample of each step (and one past the last sample at index <see cref="StepCount"/>).</summary>
    internal int[] StepSampleStart { get; }

    internal int[] SampleVantage { get; }

    internal int[] SampleHost { get; }

    internal double[] SampleRtt { get; }

    /// <summary>The index of a vantage point, or -1.</summary>
    public int IndexOfVantagePoint(string name)
    {
        for (var i = 0; i < VantagePoints.Count; i++)
        {
            if (string.Equals(VantagePoints[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The RTT the cost model charges at a step for a pair (see the type's remarks).</summary>
    public double ChargedRttMs(int step, int vantagePoint, int host) => _filled[(step * PairCount) + (vantagePoint * HostCount) + host];

    /// <summary>
    /// The weighted mean of a VM's users' charged RTT to every host at every step, <c>[step * H + host]</c>:
    /// the per-second cost of serving the VM from that host at that step.
    /// </summary>
    public double[] VmCostRates(int vm)
    {
        var v = Fleet.Vms[vm];
        var rates = new double[StepCount * HostCount];
        var total = 0.0;
        foreach (var u in v.Users)
        {
            total += u.Weight;
        }

        foreach (var u in v.Users)
        {
            var p = IndexOfVantagePoint(u.VantagePoint);
            var share = u.Weight / total;
            for (var k = 0; k < StepCount; k++)
            {
                for (var h = 0; h < HostCount; h++)
                {
                    rates[(k * HostCount) + h] += share * _filled[(k * PairCount) + (p * HostCount) + h];
                }
            }
        }

        return rates;
    }

    /// <summary>The first step starting at or after <paramref name="seconds"/>, or <see cref="StepCount"/> when none.</summary>
    public int FirstStepAtOrAfter(double seconds)
    {
        var i = Array.BinarySearch(Times, seconds);
        if (i >= 0)
        {
            return i;
        }

        return ~i;
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{StepCount} steps over {Times[^1] + StepSeconds[^1]} s, {VantagePoints.Count} vantage points × {HostCount} hosts");
}
