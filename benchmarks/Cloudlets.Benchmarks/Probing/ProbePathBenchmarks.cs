using System.Net;
using BenchmarkDotNet.Attributes;
using Cloudlets.Core.Probing;
using Cloudlets.Core.Probing.Icmp;

namespace Cloudlets.Benchmarks.Probing;

/// <summary>
/// The per-probe work of the ICMP prober without the system calls: building the echo request,
/// the bookkeeping of a sent probe, matching its reply, and the rolling statistics update.
/// Every method must report 0 bytes allocated: nothing is allocated per probe in the steady state.
/// </summary>
[MemoryDiagnoser]
public class ProbePathBenchmarks
{
    private const int Targets = 256;
    private readonly byte[] packet = new byte[IcmpPacket.HeaderLength + 56];
    private readonly ushort[] sequences = new ushort[Targets];
    private readonly byte[][] replies = new byte[Targets][];
    private IcmpAddressKey[] sources = null!;
    private IcmpProbeTable table = null!;
    private IcmpProbeBatch batch = null!;
    private RollingLatencyStatistics statistics = null!;
    private LatencySample sample;
    private long delivered;
    private ushort nextSequence;

    [GlobalSetup]
    public void Setup()
    {
        var targets = Enumerable.Range(0, Targets).Select(i => new ProbeTarget($"t{i}", IPAddress.Parse($"127.0.1.{i}"))).ToArray();
        sources = [.. targets.Select(t => IcmpPacket.KeyOf(t.Address))];
        table = new IcmpProbeTable(TimeProvider.System, "bench", 0x4242, 0xFEEDBEEF, checkIdentifier: true);
        batch = new IcmpProbeBatch(targets, table.ToTimestampUnits(TimeSpan.FromSeconds(1)), 2 * IcmpProbeTable.Capacity, _ => delivered++);
        table.Register(batch);
        IcmpPacket.WriteTemplate(packet, ipv6: false, table.Identifier, table.Nonce);
        for (var i = 0; i < Targets; i++)
        {
            replies[i] = (byte[])packet.Clone();
        }

        statistics = new RollingLatencyStatistics(200);
        sample = new LatencySample("bench", targets[0], DateTimeOffset.UnixEpoch, TimeSpan.FromMilliseconds(0.005), ProbeStatus.Ok);
        for (var i = 0; i < 400; i++)
        {
            statistics.Add(sample);
        }
    }

    /// <summary>Baseline: stamping sequence and generation without the checksum.</summary>
    [Benchmark(Baseline = true)]
    public void StampWithoutChecksum() => IcmpPacket.Stamp(packet, nextSequence++, 7, computeChecksum: false);

    /// <summary>The send path's packet work: sequence, generation and the Internet checksum of a 64-byte request.</summary>
    [Benchmark]
    public void BuildPacket() => IcmpPacket.Stamp(packet, nextSequence++, 7, computeChecksum: true);

    /// <summary>
    /// Per probe: reserve a sequence number, publish the probe, then match its echo reply (which
    /// delivers the sample), and the expiry pass that forgets answered probes. 256 probes per call.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Targets)]
    public void SendBookkeepingAndMatch()
    {
        var now = TimeProvider.System.GetTimestamp();
        for (var i = 0; i < Targets; i++)
        {
            table.TryReserve(batch, i, out var sequence, out var generation);
            var reply = replies[i];
            IcmpPacket.Stamp(reply, sequence, generation, computeChecksum: false);
            reply[0] = IcmpPacket.EchoReplyV4;
            sequences[i] = sequence;
            table.Publish(sequence, now);
        }

        now = TimeProvider.System.GetTimestamp();
        for (var i = 0; i < Targets; i++)
        {
            table.HandleMessage(replies[i], ipv6: false, sources[i], now);
        }

        table.Expire(now);
    }

    /// <summary>The statistics update for one sample (a full 200-sample window).</summary>
    [Benchmark]
    public void StatisticsAdd() => statistics.Add(sample);

    /// <summary>A summary of a full 200-sample window (sorts a copy; no allocation).</summary>
    [Benchmark]
    public LatencySummary StatisticsSummarize() => statistics.Summarize();
}
