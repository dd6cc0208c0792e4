using System.Globalization;
using BenchmarkDotNet.Attributes;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Benchmarks.Decisions;

/// <summary>
/// One evaluation window of <see cref="LowestLatencyPolicy"/> over a large fleet (10,000 VMs × 100
/// hosts, 200 vantage points, 1 to 3 weighted users per VM), with its nearest-host index (the
/// default), against the same policy scanning every host for every VM (the naive scan, the baseline)
/// and a plain LINQ implementation of the same decision, in the same run. The setup checks, over
/// several windows, that all of them make the same decision for every VM, so the comparison is of equals.
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
    private LowestLatencyPolicy _scanPolicy = null!;
    private LowestLatencyPolicyOptions _options = null!;
    private FleetSnapshot _snapshot = null!;
    private DecisionBuffer _buffer = null!;
    private DecisionBuffer _recordingBuffer = null!;
    private FleetSnapshot _scanSnapshot = null!;
    private DecisionBuffer _scanBuffer = null!;
    private FleetSnapshot _linqSnapshot = null!;

    [GlobalSetup]
    public void Setup()
    {
        _options = new LowestLatencyPolicyOptions { ConfirmationWindows = 3 };
        _policy = new LowestLatencyPolicy(_options);
        _scanPolicy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 3, CandidateIndexDepth = 0 });
        _snapshot = BuildFleet(Hosts, Vms, VantagePoints, oneUser: 0.6, twoUsers: 0.3);
        _scanSnapshot = BuildFleet(Hosts, Vms, VantagePoints, oneUser: 0.6, twoUsers: 0.3);
        _linqSnapshot = BuildFleet(Hosts, Vms, VantagePoints, oneUser: 0.6, twoUsers: 0.3);
        _buffer = new DecisionBuffer(_snapshot, recordCandidates: false);
        _scanBuffer = new DecisionBuffer(_scanSnapshot, recordCandidates: false);
        _recordingBuffer = new DecisionBuffer(_snapshot, recordCandidates: true);
        VerifySameDecisions();
    }

    /// <summary>The naive scan: the same policy with the nearest-host index off (every VM scans every host).</summary>
    [Benchmark(Baseline = true)]
    public int ScanTick()
    {
        _scanPolicy.Evaluate(_scanSnapshot, _scanBuffer);
        _scanSnapshot.AdvanceConfirmations(_scanBuffer);
        return _scanBuffer.MoveCount;
    }

    /// <summary>The allocation-free evaluation path, with the nearest-host index (the default).</summary>
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
    [Benchmark]
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
            _scanPolicy.Evaluate(_scanSnapshot, _scanBuffer);
            var linq = LinqBaseline.Evaluate(_linqSnapshot, _options);
            var moves = 0;
            for (var vm = 0; vm < Vms; vm++)
            {
                var fast = (_buffer.KindOf(vm), _buffer.ReasonOf(vm), _buffer.TargetOf(vm));
                var recording = (_recordingBuffer.KindOf(vm), _recordingBuffer.ReasonOf(vm), _recordingBuffer.TargetOf(vm));
                var scan = (_scanBuffer.KindOf(vm), _scanBuffer.ReasonOf(vm), _scanBuffer.TargetOf(vm));
                if (fast != (linq[vm].Kind, linq[vm].Reason, linq[vm].Target) || fast != recording || fast != scan)
                {
                    throw new InvalidOperationException($"Window {window}, VM {vm}: the policy says {fast} (recording: {recording}, scan: {scan}), LINQ says {linq[vm]}.");
                }

                moves += fast.Item1 == DecisionKind.Move ? 1 : 0;
            }

            Console.WriteLine($"// window {window}: {moves} moves, identical decisions for all {Vms} VMs (indexed, recording, scan, LINQ)");

            _snapshot.AdvanceConfirmations(_buffer);
            _scanSnapshot.AdvanceConfirmations(_scanBuffer);
            LinqBaseline.Advance(_linqSnapshot, linq);
        }
    }

    /// <summary>
    /// The benchmark fleet, the same for every call with the same arguments (seed 42): <paramref name="oneUser"/>
    /// of the VMs with one user, <paramref name="twoUsers"/> with two, the rest with three; a share
    /// <paramref name="nearPlacement"/> of the VMs already runs on one of its first user's three nearest
    /// hosts (a fleet in steady state), the others on a random host. With <paramref name="geographic"/> the
    /// vantage points sit on a square grid and the hosts at random places on it, the RTT grows with the
    /// distance (2 ms + 250 ms across the whole square + up to 3 ms of jitter), a VM's second and third users
    /// are near its first (within three grid cells; one VM in ten has them anywhere), and the hosts have
    /// room for hundreds of VMs; otherwise every (vantage point, host) pair has an independent RTT in 5–300 ms.
    /// </summary>
    internal static FleetSnapshot BuildFleet(int hostCount, int vmCount, int vantagePointCount, double oneUser, double twoUsers, double nearPlacement = 0, bool geographic = false)
    {
        var random = new Random(42);
        var hosts = Enumerable.Range(0, hostCount).Select(h => $"host-{h:0000}").ToArray();
        var vms = new VmDefinition[vmCount];
        var edges = Enumerable.Range(0, vantagePointCount).Select(p => $"edge-{p:00000}").ToArray();
        var firstUser = new int[vmCount];
        for (var v = 0; v < vmCount; v++)
        {
            var roll = random.NextDouble();
            var users = roll < oneUser ? 1 : roll < oneUser + twoUsers ? 2 : 3;
            var points = new int[users];
            points[0] = random.Next(vantagePointCount);
            var nearby = geographic && random.NextDouble() < 0.9;
            for (var j = 1; j < users; j++)
            {
                points[j] = nearby ? Near(points[0], vantagePointCount, random) : random.Next(vantagePointCount);
            }

            firstUser[v] = points[0];
            vms[v] = new VmDefinition($"vm-{v:0000000}", [.. points.Select(p => new VmUser(edges[p], 1 + random.Next(5)))]);
        }

        var s = new FleetSnapshot(hosts, vms) { Now = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero) };
        var side = GridSide(vantagePointCount);
        var hostX = new double[hostCount];
        var hostY = new double[hostCount];
        for (var h = 0; h < hostCount; h++)
        {
            hostX[h] = random.NextDouble();
            hostY[h] = random.NextDouble();
        }

        for (var h = 0; h < hostCount; h++)
        {
            var availability = h % 50 is 7 or 42 ? HostAvailability.Down : h % 100 == 13 ? HostAvailability.BackedOff : HostAvailability.Available;
            var free = h % 10 == 3 ? 300L << 20 : geographic ? (256L + random.Next(768)) << 30 : (2L + random.Next(62)) << 30;
            s.SetHost(h, availability, free, 8 + random.Next(120));
        }

        var nearest = new int[vantagePointCount * 3];
        for (var p = 0; p < s.VantagePointCount; p++)
        {
            // The snapshot numbers the vantage points its VMs name in its own order; g is the grid's.
            var g = int.Parse(s.VantagePointName(p).AsSpan(5), CultureInfo.InvariantCulture);
            var top = new SortedList<double, int>(4);
            for (var h = 0; h < hostCount; h++)
            {
                var roll = random.NextDouble();
                var ms = TimeSpan.FromMilliseconds(geographic
                    ? 2 + (250 * Math.Sqrt((Square((((g % side) + 0.5) / side) - hostX[h]) + Square((((g / side) + 0.5) / side) - hostY[h])) / 2)) + (3 * random.NextDouble())
                    : 5 + (random.NextDouble() * 295));
                if (nearPlacement > 0 && !top.ContainsKey(ms.TotalMilliseconds))
                {
                    top.Add(ms.TotalMilliseconds, h);
                    if (top.Count > 3)
                    {
                        top.RemoveAt(3);
                    }
                }

                var newest = roll < 0.01 ? s.Now - TimeSpan.FromMinutes(2) : s.Now - TimeSpan.FromSeconds(random.Next(5));
                var received = roll is >= 0.01 and < 0.03 ? 2 : 20;
                s.SetLatency(p, h, new LatencySummary(20, received, ms, ms, ms * 1.2, ms * 1.5, ms, TimeSpan.FromMilliseconds(1), newest));
            }

            for (var i = 0; i < top.Count; i++)
            {
                nearest[(g * 3) + i] = top.Values[i];
            }
        }

        for (var v = 0; v < vmCount; v++)
        {
            var dirty = random.NextDouble() < 0.01 ? 200_000_000.0 : random.NextDouble() * 20_000_000;
            var host = random.Next(hostCount);
            if (random.NextDouble() < nearPlacement)
            {
                host = nearest[(firstUser[v] * 3) + random.Next(3)];
            }

            s.SetPlacement(v, host, (256L << 20) * (1 + random.Next(32)), 1 + random.Next(4), dirty);
            if (random.NextDouble() < 0.05)
            {
                s.SetMigrationHistory(v, s.Now - TimeSpan.FromMinutes(1), inFlight: false);
            }
        }

        return s;
    }

    private static int GridSide(int count) => (int)Math.Ceiling(Math.Sqrt(count));

    private static double Square(double x) => x * x;

    /// <summary>A vantage point within three grid cells of <paramref name="point"/>.</summary>
    private static int Near(int point, int count, Random random)
    {
        var side = GridSide(count);
        var x = Math.Clamp((point % side) + random.Next(-3, 4), 0, side - 1);
        var y = Math.Clamp((point / side) + random.Next(-3, 4), 0, side - 1);
        return Math.Min((y * side) + x, count - 1);
    }
}
