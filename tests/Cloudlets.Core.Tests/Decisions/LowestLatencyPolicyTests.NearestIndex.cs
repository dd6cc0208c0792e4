using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Tests.Decisions;

/// <summary>
/// The nearest-host index (<see cref="LowestLatencyPolicyOptions.CandidateIndexDepth"/>) must never
/// change a decision: the same fleets evaluated with the index and with a scan of every host give the
/// same kind, reason, target and scores for every VM, window after window.
/// </summary>
public partial class LowestLatencyPolicyTests
{
    /// <summary>
    /// A fleet built to stress the search: latencies on a coarse grid (ties between hosts are common),
    /// stale and unreachable cells, hosts down or full, one to five weighted users per VM, VMs on
    /// hosts that are their users' nearest, and memory that runs out as moves reserve it.
    /// </summary>
    private static FleetSnapshot IndexFleet(int seed, int hosts, int vantagePoints, int vms, bool twoOrThreeUsers = false)
    {
        var random = new Random(seed);
        var names = Enumerable.Range(0, hosts).Select(h => $"h{h}").ToArray();
        var definitions = Enumerable.Range(0, vms).Select(v => new VmDefinition(
            $"vm{v}",
            [.. Enumerable.Range(0, twoOrThreeUsers ? 2 + random.Next(2) : random.NextDouble() switch { < 0.5 => 1, < 0.75 => 2, < 0.9 => 3, _ => 4 + random.Next(2) })
                .Select(_ => new VmUser($"p{random.Next(vantagePoints)}", 1 + random.Next(3)))])).ToArray();
        var s = new FleetSnapshot(names, definitions) { Now = Now };
        for (var h = 0; h < hosts; h++)
        {
            var availability = random.NextDouble() switch { < 0.08 => HostAvailability.Down, < 0.12 => HostAvailability.BackedOff, _ => HostAvailability.Available };
            // A quarter of the hosts have room for one or two VMs only.
            var free = random.NextDouble() < 0.25 ? (600L + random.Next(400)) << 20 : 64L << 30;
            s.SetHost(h, availability, free, 64);
        }

        for (var p = 0; p < s.VantagePointCount; p++)
        {
            for (var h = 0; h < hosts; h++)
            {
                var roll = random.NextDouble();
                if (roll < 0.05)
                {
                    continue; // no data: unreachable
                }

                var ms = 5 + (5 * random.Next(30)); // a 5 ms grid: many ties
                var newest = roll < 0.1 ? Now - TimeSpan.FromMinutes(5) : Now - TimeSpan.FromSeconds(random.Next(3));
                var received = roll is >= 0.1 and < 0.14 ? 2 : 10;
                s.SetLatency(p, h, Summary(ms, newest, sent: 10, received: received));
            }
        }

        for (var v = 0; v < vms; v++)
        {
            s.SetPlacement(v, random.Next(hosts), (256L << 20) * (1 + random.Next(3)), 1 + random.Next(2));
        }

        return s;
    }

    [TestCase(1, 2)]
    [TestCase(2, 4)]
    [TestCase(3, 5)]
    [TestCase(4, 1)]
    [TestCase(5, 3)]
    public void Evaluate_NearestIndex_SameDecisionsAsScanningEveryHost(int seed, int depth) => SameDecisions(seed, depth, twoOrThreeUsers: false);

    [TestCase(11, 2)]
    [TestCase(12, 3)]
    [TestCase(13, 4)]
    [TestCase(14, 5)]
    [TestCase(15, 1)]
    public void Evaluate_NearestIndexTwoOrThreeUsers_SameDecisionsAsScanningEveryHost(int seed, int depth) => SameDecisions(seed, depth, twoOrThreeUsers: true);

    private static void SameDecisions(int seed, int depth, bool twoOrThreeUsers) =>
        SameDecisionsAsScan(seed, depth, twoOrThreeUsers, windows: 4, configure: null, change: null);

    /// <summary>
    /// Two copies of <see cref="IndexFleet"/>, one evaluated with the index at <paramref name="depth"/> (and
    /// reuse), one scanning every host, for <paramref name="windows"/> windows; after each, <paramref name="change"/>
    /// (given a seed, the same for both copies) may change both alike. Every VM's kind, reason, target and
    /// scores must be the same in every window, and some VM must move.
    /// </summary>
    private static void SameDecisionsAsScan(int seed, int depth, bool twoOrThreeUsers, int windows, Action<LowestLatencyPolicyOptions>? configure, Action<FleetSnapshot, int, int>? change)
    {
        const int hostCount = 40, vantagePoints = 12, vmCount = 400;
        var indexed = IndexFleet(seed, hostCount, vantagePoints, vmCount, twoOrThreeUsers);
        var scanned = IndexFleet(seed, hostCount, vantagePoints, vmCount, twoOrThreeUsers);
        var indexPolicy = Policy(windows: 2, o => { o.CandidateIndexDepth = depth; o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; configure?.Invoke(o); });
        var scanPolicy = Policy(windows: 2, o => { o.CandidateIndexDepth = 0; o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; configure?.Invoke(o); });
        var fast = new DecisionBuffer(indexed, recordCandidates: false);
        var slow = new DecisionBuffer(scanned, recordCandidates: false);
        var changes = new Random(seed * 7);
        var moves = 0;
        for (var window = 0; window < windows; window++)
        {
            indexPolicy.Evaluate(indexed, fast);
            scanPolicy.Evaluate(scanned, slow);
            for (var vm = 0; vm < vmCount; vm++)
            {
                var a = Outcome(fast, vm);
                var b = Outcome(slow, vm);
                Assert.That(a, Is.EqualTo(b), $"window {window}, vm{vm}: indexed vs scanned");
            }

            moves += fast.MoveCount;
            Assert.That(fast.MoveCount, Is.EqualTo(slow.MoveCount), $"window {window}: moves");
            indexed.AdvanceConfirmations(fast);
            scanned.AdvanceConfirmations(slow);
            if (change is not null)
            {
                var seedOfChanges = changes.Next();
                change(indexed, seedOfChanges, window);
                change(scanned, seedOfChanges, window);
            }
        }

        // The fleet must exercise the search, not only stays: some VMs move over the windows.
        Assert.That(moves, Is.GreaterThan(0), "no VM moved: the comparison proved little");
    }

    [Test]
    public void Evaluate_NearestIndexFullOfFullHosts_FallsBackToTheScanAndFindsTheFarHostWithRoom()
    {
        // One user; its two nearest hosts (h1, h2) have no room: a depth-2 index runs out and the scan
        // finds h3. The other hosts are far (300 ms).
        const int hostCount = 2 * LowestLatencyPolicy.IndexMinimumHostsPerEntry;
        var s = new FleetSnapshot([.. Enumerable.Range(0, hostCount).Select(h => $"h{h}")], [new VmDefinition("vm", [new VmUser("edge")])]) { Now = Now };
        for (var h = 0; h < hostCount; h++)
        {
            s.SetHost(h, HostAvailability.Available, h is 1 or 2 ? 100L << 20 : 8L << 30, 16);
            s.SetLatency(0, h, Summary(h switch { 1 => 10, 2 => 20, 3 => 40, _ => 300 }, Now));
        }

        s.SetPlacement(0, 0, 1L << 30, 1);
        var buffer = new DecisionBuffer(s, recordCandidates: false); // the path that uses the index
        Policy(configure: o => o.CandidateIndexDepth = 2).Evaluate(s, buffer);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(buffer.KindOf(0), Is.EqualTo(DecisionKind.Move));
            Assert.That(buffer.TargetOf(0), Is.EqualTo(3), "h3");
        }
    }

    [Test]
    [Category("BadInput")]
    public void Constructor_CandidateIndexDepthOutOfRange_ThrowsNamingTheOption()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Policy(configure: o => o.CandidateIndexDepth = -1));
        Assert.That(ex!.Message, Does.Contain(nameof(LowestLatencyPolicyOptions.CandidateIndexDepth)));
    }

    [TestCase(0)]
    [TestCase(3)]
    public void Evaluate_BufferReusedWhileCellsTimeAndHostsChange_SameDecisionsAsAFreshBuffer(int depth)
    {
        // A reused buffer re-reads only the rows that changed; a fresh one reads everything. Over
        // windows in which cells are rewritten, time passes (cells turn stale) and hosts go down and
        // come back, both must decide the same.
        var s = IndexFleet(7, 40, 12, 400);
        var random = new Random(7);
        var policy = Policy(windows: 2, o => { o.CandidateIndexDepth = depth; o.MaxSampleAge = TimeSpan.FromSeconds(10); });
        var reused = new DecisionBuffer(s, recordCandidates: false);
        for (var window = 0; window < 10; window++)
        {
            s.Now += TimeSpan.FromSeconds(random.Next(0, 6));
            for (var i = 0; i < 25; i++)
            {
                var (p, h) = (random.Next(s.VantagePointCount), random.Next(s.HostCount));
                if (random.NextDouble() < 0.2)
                {
                    s.ClearLatency(p, h);
                }
                else
                {
                    s.SetLatency(p, h, Summary(5 + (5 * random.Next(30)), s.Now - TimeSpan.FromSeconds(random.Next(3))));
                }
            }

            if (window % 3 == 1)
            {
                var h = random.Next(s.HostCount);
                s.SetHost(h, s.AvailabilityOf(h) == HostAvailability.Down ? HostAvailability.Available : HostAvailability.Down, 64L << 30, 64);
            }

            var fresh = new DecisionBuffer(s, recordCandidates: false);
            policy.Evaluate(s, reused);
            policy.Evaluate(s, fresh);
            for (var vm = 0; vm < s.VmCount; vm++)
            {
                var a = Outcome(reused, vm);
                var b = Outcome(fresh, vm);
                Assert.That(a, Is.EqualTo(b), $"window {window}, vm{vm}: reused vs fresh buffer");
            }

            s.AdvanceConfirmations(reused);
        }
    }

    [Test]
    public void Evaluate_SameBufferForTwoSnapshots_ReadsEachSnapshotsOwnCells()
    {
        var near = Fleet(300, 20, 25);
        var far = Fleet(300, 280, 290);
        var buffer = new DecisionBuffer(near, recordCandidates: false);
        var policy = Policy();
        policy.Evaluate(near, buffer);
        Assert.That(buffer.KindOf(0), Is.EqualTo(DecisionKind.Move), "near: moves to b");
        policy.Evaluate(far, buffer);
        Assert.That(buffer.KindOf(0), Is.Not.EqualTo(DecisionKind.Move), "far: b is no better; the cells of the other snapshot must not be reused");
    }

    [Test]
    public void Evaluate_CellTurnsStaleWithoutAWrite_ReusedBufferSeesItStale()
    {
        var s = Fleet(300, 20, 25);
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        var policy = Policy(configure: o => o.MaxSampleAge = TimeSpan.FromSeconds(30));
        policy.Evaluate(s, buffer);
        Assert.That(buffer.ReasonOf(0), Is.EqualTo(DecisionReason.Move));
        s.Now += TimeSpan.FromMinutes(1); // nothing written: every cell is now too old
        policy.Evaluate(s, buffer);
        Assert.That(buffer.ReasonOf(0), Is.EqualTo(DecisionReason.StaleData));
    }

    [Test]
    public void Evaluate_IndexedWithNewSamplesEachWindow_AllocatesNothingAfterTheFirst()
    {
        var s = IndexFleet(11, 160, 20, 2000);
        var policy = Policy(windows: 2, o => o.CandidateIndexDepth = 16); // 160 hosts: the index is used
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        policy.Evaluate(s, buffer); // the first evaluation allocates the index
        var summary = Summary(42, s.Now);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var window = 0; window < 5; window++)
        {
            s.Now += TimeSpan.FromSeconds(1);
            for (var h = 0; h < s.HostCount; h++)
            {
                s.SetLatency(window % s.VantagePointCount, h, summary);
            }

            policy.Evaluate(s, buffer);
            s.AdvanceConfirmations(buffer);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }
}
