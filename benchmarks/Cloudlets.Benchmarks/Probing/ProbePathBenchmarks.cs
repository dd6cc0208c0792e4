using System.Net;
using BenchmarkDotNet.Attributes;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;

namespace Cloudlets.Benchmarks.Probing;

/// <summary>
/// The probe path through the public API, as a user runs it: one round of ICMP echo requests to 256
/// loopback targets through <see cref="IcmpProber.RunAsync"/> (send thread, system calls, reply
/// matching, samples delivered), and the rolling statistics each sample feeds. Root (raw socket) or
/// a <c>net.ipv4.ping_group_range</c> that includes the user (datagram socket).
/// </summary>
/// <remarks>
/// That the prober's internal per-probe work allocates nothing is a unit test
/// (<c>IcmpProbeTableTests</c> in Cloudlets.Probing.Tests), not a benchmark: the package shows its
/// internals to its own tests only.
/// </remarks>
[MemoryDiagnoser]
public class ProbePathBenchmarks
{
    private const int Targets = 256;
    private IcmpProber prober = null!;
    private ProbeTarget[] targets = null!;
    private ProbeSchedule oneRound = null!;
    private RollingLatencyStatistics statistics = null!;
    private LatencySample sample;
    private long delivered;

    [GlobalSetup]
    public void Setup()
    {
        targets = [.. Enumerable.Range(0, Targets).Select(i => new ProbeTarget($"t{i}", IPAddress.Parse($"127.0.1.{i}")))];
        prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = "bench", EnableIPv6 = false });
        oneRound = new ProbeSchedule(1, TimeSpan.FromMilliseconds(1), TimeSpan.Zero, TimeSpan.FromSeconds(1));
        statistics = new RollingLatencyStatistics(200);
        sample = new LatencySample("bench", targets[0], DateTimeOffset.UnixEpoch, TimeSpan.FromMilliseconds(0.005), ProbeStatus.Ok);
        for (var i = 0; i < 400; i++)
        {
            statistics.Add(sample);
        }
    }

    [GlobalCleanup]
    public ValueTask Cleanup() => prober.DisposeAsync();

    /// <summary>One probe of a 256-target round over loopback, end to end (reported per probe).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Targets)]
    public Task ProbeRoundOverLoopback() => prober.RunAsync(targets, oneRound, _ => delivered++);

    /// <summary>The statistics update for one sample (a full 200-sample window).</summary>
    [Benchmark]
    public void StatisticsAdd() => statistics.Add(sample);

    /// <summary>A summary of a full 200-sample window (sorts a copy; no allocation).</summary>
    [Benchmark]
    public LatencySummary StatisticsSummarize() => statistics.Summarize();
}
