using BenchmarkDotNet.Attributes;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Benchmarks.Decisions;

/// <summary>
/// One evaluation window of <see cref="LowestLatencyPolicy"/> over a regional deployment: 1,000,000
/// VMs × 1,000 hosts × 10,000 vantage points (70 % of the VMs with one user, 30 % with two or three),
/// with the nearest-host index (the default) against the same policy scanning every host for every VM
/// (the naive scan, the baseline). The setup checks over four windows (the third carries about 23,700
/// moves) that both decide the same for every VM: kind, reason, target and both scores.
/// </summary>
/// <remarks>
/// The fleet is geographic and in steady state: the RTT grows with the distance between a vantage point
/// and a host, a VM's users are mostly near each other, and 95 % of the VMs run on one of their first
/// user's three nearest hosts, the rest anywhere (they want to move). Stale and lossy cells, host states
/// and VM sizes are those of <see cref="PolicyTickBenchmarks.BuildFleet"/>. About 1.2 GB of memory per
/// snapshot; two are built.
/// </remarks>
[MemoryDiagnoser]
public class RegionTickBenchmarks
{
    private const int Hosts = 1_000;
    private const int Vms = 1_000_000;
    private const int VantagePoints = 10_000;

    private LowestLatencyPolicy _policy = null!;
    private LowestLatencyPolicy _scanPolicy = null!;
    private FleetSnapshot _snapshot = null!;
    private FleetSnapshot _scanSnapshot = null!;
    private DecisionBuffer _buffer = null!;
    private DecisionBuffer _scanBuffer = null!;
    private int _nextRow;

    [GlobalSetup]
    public void Setup()
    {
        _policy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 3 });
        _scanPolicy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 3, CandidateIndexDepth = 0 });
        _snapshot = PolicyTickBenchmarks.BuildFleet(Hosts, Vms, VantagePoints, oneUser: 0.7, twoUsers: 0.15, nearPlacement: 0.95, geographic: true);
        _scanSnapshot = PolicyTickBenchmarks.BuildFleet(Hosts, Vms, VantagePoints, oneUser: 0.7, twoUsers: 0.15, nearPlacement: 0.95, geographic: true);
        _buffer = new DecisionBuffer(_snapshot, recordCandidates: false);
        _scanBuffer = new DecisionBuffer(_scanSnapshot, recordCandidates: false);
        for (var window = 0; window < 4; window++)
        {
            _policy.Evaluate(_snapshot, _buffer);
            _scanPolicy.Evaluate(_scanSnapshot, _scanBuffer);
            var moves = 0;
            var stays = 0;
            for (var vm = 0; vm < Vms; vm++)
            {
                var indexed = (_buffer.KindOf(vm), _buffer.ReasonOf(vm), _buffer.TargetOf(vm), _buffer.CurrentScoreOf(vm), _buffer.TargetScoreOf(vm));
                var scanned = (_scanBuffer.KindOf(vm), _scanBuffer.ReasonOf(vm), _scanBuffer.TargetOf(vm), _scanBuffer.CurrentScoreOf(vm), _scanBuffer.TargetScoreOf(vm));
                if (!indexed.Equals(scanned)) // Equals: NaN scores (no target) are equal
                {
                    throw new InvalidOperationException($"Window {window}, VM {vm}: indexed {indexed}, scanned {scanned}.");
                }

                moves += indexed.Item1 == DecisionKind.Move ? 1 : 0;
                stays += indexed.Item1 == DecisionKind.Stay ? 1 : 0;
            }

            Console.WriteLine($"// window {window}: {moves} moves, {stays} stays, identical decisions and scores for all {Vms} VMs (indexed with reuse, scan)");
            _snapshot.AdvanceConfirmations(_buffer);
            _scanSnapshot.AdvanceConfirmations(_scanBuffer);
        }
    }

    /// <summary>The naive scan: every VM scores every host.</summary>
    [Benchmark(Baseline = true)]
    public int ScanTick()
    {
        _scanPolicy.Evaluate(_scanSnapshot, _scanBuffer);
        _scanSnapshot.AdvanceConfirmations(_scanBuffer);
        return _scanBuffer.MoveCount;
    }

    /// <summary>The default: candidates searched in the users' nearest-host lists; no new samples since the last window.</summary>
    [Benchmark]
    public int PolicyTick()
    {
        _policy.Evaluate(_snapshot, _buffer);
        _snapshot.AdvanceConfirmations(_buffer);
        return _buffer.MoveCount;
    }

    /// <summary>
    /// A window in which a tenth of the vantage points reported new samples to every host (each reporting
    /// every 10 s): those 1,000,000 cells are written, then the same evaluation. The writes are measured too.
    /// </summary>
    [Benchmark]
    public int PolicyTickAfterNewSamples()
    {
        var rows = _snapshot.VantagePointCount / 10;
        for (var i = 0; i < rows; i++)
        {
            var p = _nextRow;
            _nextRow = (_nextRow + 1) % _snapshot.VantagePointCount;
            for (var h = 0; h < Hosts; h++)
            {
                ref readonly var c = ref _snapshot.LatencyOf(p, h);
                if (!c.HasData)
                {
                    continue;
                }

                TimeSpan? median = double.IsNaN(c.MedianMs) ? null : TimeSpan.FromMilliseconds(c.MedianMs);
                _snapshot.SetLatency(p, h, new LatencySummary(20, c.Received, median, median, median, median, median, TimeSpan.Zero, c.NewestSampleAt));
            }
        }

        _policy.Evaluate(_snapshot, _buffer);
        _snapshot.AdvanceConfirmations(_buffer);
        return _buffer.MoveCount;
    }
}
