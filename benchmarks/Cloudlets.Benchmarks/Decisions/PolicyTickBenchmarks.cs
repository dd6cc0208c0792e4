using BenchmarkDotNet.Attributes;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Benchmarks.Decisions;

/// <summary>
/// One evaluation window of <see cref="LowestLatencyPolicy"/> over a large fleet (10,000 VMs × 100
/// hosts, 200 vantage points, 1 to 3 weighted users per VM), against a plain LINQ implementation of
/// the same decision in the same run. The setup checks, over several windows, that both make the
/// same decision for every VM, so the comparison is of equals.
/// </summary>
/// <remarks>
/// The fleet: latencies 5–300 ms; 2 % of (vantage point, host) pairs lossy, 1 % stale; two hosts down,
/// one backed off; 10 hosts nearly full; 5 % of the VMs in cooldown; a few with a dirty rate that never
/// converges. Each window also carries the confirmation state into the next (steady state: the
/// same buffers every window, nothing allocated).
/// </remarks>
[MemoryDiagnoser]
public class PolicyTickBenchmarks
{
    private const int Hosts = 100;
    private const int Vms = 10_000;
    private const int VantagePoints = 200;

    private LowestLatencyPolicy _policy = null!;
    private LowestLatencyPolicyOptions _options = null!;
    private FleetSnapshot _snapshot = null!;
    private DecisionBuffer _buffer = null!;
    private DecisionBuffer _recordingBuffer = null!;
    private FleetSnapshot _linqSnapshot = null!;

    [GlobalSetup]
    public void Setup()
    {
        _options = new LowestLatencyPolicyOptions { ConfirmationWindows = 3 };
        _policy = new LowestLatencyPolicy(_options);
        _snapshot = BuildFleet();
        _linqSnapshot = BuildFleet();
        _buffer = new DecisionBuffer(_snapshot, recordCandidates: false);
        _recordingBuffer = new DecisionBuffer(_snapshot, recordCandidates: true);
        VerifySameDecisions();
    }

    /// <summary>The allocation-free evaluation path.</summary>
    [Benchmark]
    public int PolicyTick()
    {
        _policy.Evaluate(_snapshot, _buffer);
        _snapshot.AdvanceConfirmations(_buffer);
        return _buffer.MoveCount;
    }

    /// <summary>The same, keeping every candidate's status and score for explanations (what the pipeline does).</summary>
    [Benchmark]
    public int PolicyTickRecordingCandidates()
    {
        _policy.Evaluate(_snapshot, _recordingBuffer);
        _snapshot.AdvanceConfirmations(_recordingBuffer);
        return _recordingBuffer.MoveCount;
    }

    /// <summary>A plain LINQ implementation of the same decision.</summary>
    [Benchmark(Baseline = true)]
    public int LinqTick()
    {
        var results = LinqBaseline.Evaluate(_linqSnapshot, _options);
        LinqBaseline.Advance(_linqSnapshot, results);
        return results.Count(r => r.Kind == DecisionKind.Move);
    }

    private void VerifySameDecisions()
    {
        for (var window = 0; window < 6; window++)
        {
            _policy.Evaluate(_snapshot, _recordingBuffer);
            _policy.Evaluate(_snapshot, _buffer);
            var linq = LinqBaseline.Evaluate(_linqSnapshot, _options);
            var moves = 0;
            for (var vm = 0; vm < Vms; vm++)
            {
                var fast = (_buffer.KindOf(vm), _buffer.ReasonOf(vm), _buffer.TargetOf(vm));
                var recording = (_recordingBuffer.KindOf(vm), _recordingBuffer.ReasonOf(vm), _recordingBuffer.TargetOf(vm));
                if (fast != (linq[vm].Kind, linq[vm].Reason, linq[vm].Target) || fast != recording)
                {
                    throw new InvalidOperationException($"Window {window}, VM {vm}: the policy says {fast} (recording: {recording}), LINQ says {linq[vm]}.");
                }

                moves += fast.Item1 == DecisionKind.Move ? 1 : 0;
            }

            Console.WriteLine($"// window {window}: {moves} moves, identical decisions for all {Vms} VMs (fast, recording, LINQ)");

            _snapshot.AdvanceConfirmations(_buffer);
            LinqBaseline.Advance(_linqSnapshot, linq);
        }
    }

    private static FleetSnapshot BuildFleet()
    {
        var random = new Random(42);
        var hosts = Enumerable.Range(0, Hosts).Select(h => $"host-{h:000}").ToArray();
        var vms = new VmDefinition[Vms];
        for (var v = 0; v < Vms; v++)
        {
            var users = random.NextDouble() switch { < 0.6 => 1, < 0.9 => 2, _ => 3 };
            vms[v] = new VmDefinition($"vm-{v:00000}", [.. Enumerable.Range(0, users).Select(_ => new VmUser($"edge-{random.Next(VantagePoints):000}", 1 + random.Next(5)))]);
        }

        var s = new FleetSnapshot(hosts, vms) { Now = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero) };
        for (var h = 0; h < Hosts; h++)
        {
            var availability = h is 7 or 42 ? HostAvailability.Down : h == 13 ? HostAvailability.BackedOff : HostAvailability.Available;
            var free = h % 10 == 3 ? 300L << 20 : (2L + random.Next(62)) << 30;
            s.SetHost(h, availability, free, 8 + random.Next(120));
        }

        for (var p = 0; p < s.VantagePointCount; p++)
        {
            for (var h = 0; h < Hosts; h++)
            {
                var roll = random.NextDouble();
                var ms = TimeSpan.FromMilliseconds(5 + (random.NextDouble() * 295));
                var newest = roll < 0.01 ? s.Now - TimeSpan.FromMinutes(2) : s.Now - TimeSpan.FromSeconds(random.Next(5));
                var received = roll is >= 0.01 and < 0.03 ? 2 : 20;
                s.SetLatency(p, h, new LatencySummary(20, received, ms, ms, ms * 1.2, ms * 1.5, ms, TimeSpan.FromMilliseconds(1), newest));
            }
        }

        for (var v = 0; v < Vms; v++)
        {
            var dirty = random.NextDouble() < 0.01 ? 200_000_000.0 : random.NextDouble() * 20_000_000;
            s.SetPlacement(v, random.Next(Hosts), (256L << 20) * (1 + random.Next(32)), 1 + random.Next(4), dirty);
            if (random.NextDouble() < 0.05)
            {
                s.SetMigrationHistory(v, s.Now - TimeSpan.FromMinutes(1), inFlight: false);
            }
        }

        return s;
    }
}
