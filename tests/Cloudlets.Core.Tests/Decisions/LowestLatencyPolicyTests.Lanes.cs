using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Tests.Decisions;

/// <summary>
/// An evaluation of a large fleet hands the preparation of rows, the refresh of the reused searches and the
/// look-ahead of the searches for VMs whose best host filled up to other lanes (the policy's lane threads, or the
/// evaluating thread when none takes them): the decisions must be exactly those of one thread, window after
/// window, and the hand-over must allocate nothing.
/// </summary>
public partial class LowestLatencyPolicyTests
{
    [TestCase(2, 51, int.MaxValue, 0.9)]
    [TestCase(3, 52, int.MaxValue, 0.9)]
    [TestCase(8, 53, int.MaxValue, 0.5)]
    [TestCase(2, 55, 24, 0.9)] // 32 hosts or fewer open from the start: the side-by-side copy is made before the lanes start
    [TestCase(3, 56, 24, 0.6)]
    [TestCase(2, 58, int.MaxValue, 0.9, true)] // the VMs after the evaluating thread's first share refreshed only as it decides each: rooms reserved before
    [TestCase(2, 59, int.MaxValue, 0.6, true)]
    [TestCase(3, 60, int.MaxValue, 0.5, true)]
    [TestCase(2, 70, int.MaxValue, 0.9, false, true)] // the refresh beside the decisions claimed by a lane thread each window
    [TestCase(3, 71, int.MaxValue, 0.6, false, true)]
    public void Evaluate_WorkSplitAcrossLanes_SameDecisionsAsOneThread(int lanes, int seed, int openHosts, double percentile, bool refreshInline = false, bool refreshClaimed = false)
    {
        // VMs of one to six users (the lanes leave the VMs of more than three to the evaluating thread;
        // below the 90th percentile some have no essential user and take the nearest lists), new samples on
        // several rows each window (the rows are split too), hosts that fill up.
        const int hostCount = 200, vantagePoints = 12, vmCount = 3000, windows = 5;
        var split = ManyUserFleet(seed, hostCount, vantagePoints, vmCount, openHosts);
        var single = ManyUserFleet(seed, hostCount, vantagePoints, vmCount, openHosts);
        var splitPolicy = new LowestLatencyPolicy(LaneOptions(lanes, percentile)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1, RefreshInline = refreshInline, RefreshClaimed = refreshClaimed };
        var singlePolicy = new LowestLatencyPolicy(LaneOptions(1, percentile)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1 };
        var manyUsers = Enumerable.Range(0, vmCount).Count(vm => split.UserVantagePointsOf(vm).Length > 3);
        Assert.That(manyUsers, Is.GreaterThan(100), "VMs of more than three users, left to the evaluating thread");
        SameOutcomesEachWindow(split, splitPolicy, single, singlePolicy, windows, minMoves: openHosts < hostCount ? 10 : 100, (s, window) =>
        {
            for (var p = window % 3; p < vantagePoints; p += 3)
            {
                for (var h = 0; h < hostCount; h++)
                {
                    s.SetLatency(p, h, Summary(s.LatencyOf(p, h).MedianMs * (h % 4 == window % 4 ? 1.04 : 0.99), Now));
                }
            }
        });
    }

    [TestCase(67, 0.9)]
    [TestCase(68, 0.6)]
    public void Evaluate_RefreshedWhileDeciding_EntriesHoldTheRoomsAtTheStart(int seed, double percentile)
    {
        // The VMs after the evaluating thread's first share are brought up to date as it decides each (the
        // test's inline form of the lanes that do it meanwhile), after earlier VMs reserved room. Their reused
        // searches must still be those under the rooms at the start: in the next window, half of those moves
        // are under way, so they reserve nothing, rooms are wider when the later VMs are decided, and no row
        // changed, so every entry stands.
        const int hostCount = 200, vantagePoints = 12, vmCount = 3000;
        var fleet = ManyUserFleet(seed, hostCount, vantagePoints, vmCount);
        var single = ManyUserFleet(seed, hostCount, vantagePoints, vmCount);
        var policy = new LowestLatencyPolicy(LaneOptions(2, percentile)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1, RefreshInline = true };
        var singlePolicy = new LowestLatencyPolicy(LaneOptions(1, percentile)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1 };
        var buffer = new DecisionBuffer(fleet, recordCandidates: false);
        var singleBuffer = new DecisionBuffer(single, recordCandidates: false);
        policy.Evaluate(fleet, buffer);
        singlePolicy.Evaluate(single, singleBuffer);
        var first = Enumerable.Range(0, vmCount).Select(vm => Outcome(singleBuffer, vm)).ToArray();
        var movers = Enumerable.Range(0, vmCount).Where(vm => singleBuffer.KindOf(vm) == DecisionKind.Move).ToArray();
        Assert.That(movers, Has.Length.GreaterThan(100), "too few moves to fill the hosts");
        foreach (var vm in movers.Where((_, i) => i % 2 == 0))
        {
            fleet.SetMigrationHistory(vm, lastMoveAt: null, inFlight: true);
            single.SetMigrationHistory(vm, lastMoveAt: null, inFlight: true);
        }

        fleet.AdvanceConfirmations(buffer);
        single.AdvanceConfirmations(singleBuffer);
        policy.Evaluate(fleet, buffer);
        singlePolicy.Evaluate(single, singleBuffer);
        for (var vm = 0; vm < vmCount; vm++)
        {
            Assert.That(Outcome(buffer, vm), Is.EqualTo(Outcome(singleBuffer, vm)), $"vm{vm}");
        }

        var changed = Enumerable.Range(LowestLatencyPolicy.OverlapStart(vmCount, 2), vmCount - LowestLatencyPolicy.OverlapStart(vmCount, 2))
            .Count(vm => !single.InFlight[vm] && Outcome(singleBuffer, vm) != first[vm]);
        Assert.That(changed, Is.GreaterThan(10), "VMs refreshed while deciding whose decision the wider rooms changed");
    }

    [Test]
    public void Evaluate_WorkSplitAcrossLanes_AllocatesNothingAfterTheFirst()
    {
        var s = ManyUserFleet(54, 200, 12, 3000);
        var policy = new LowestLatencyPolicy(LaneOptions(2)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1 };
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        policy.Evaluate(s, buffer); // the first evaluation allocates the index, the orderings and the lanes
        var summary = Summary(42, s.Now);

        // The evaluating thread's allocations, and those of the lanes' shares on whichever thread ran them
        // (a lane thread's count is its own; other threads of the test process allocate meanwhile too).
        var before = GC.GetAllocatedBytesForCurrentThread() + buffer.LaneAllocatedBytes;
        var completed = LaneWorkers.Completed;
        for (var window = 0; window < 5; window++)
        {
            s.Now += TimeSpan.FromSeconds(1);
            for (var p = window % 2; p < s.VantagePointCount; p += 2)
            {
                for (var h = 0; h < s.HostCount; h++)
                {
                    s.SetLatency(p, h, summary);
                }
            }

            policy.Evaluate(s, buffer);
            s.AdvanceConfirmations(buffer);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() + buffer.LaneAllocatedBytes - before, Is.Zero);
        Assert.That(LaneWorkers.Completed, Is.GreaterThan(completed), "lane threads ran shares");
    }

    [Test]
    public void Evaluate_ShareThrows_ThrowsAndTheNextEvaluationDecidesAsTheScan()
    {
        // A share that throws (a defect; here injected) on the evaluating thread or on a lane: the evaluation
        // throws only after every lane stopped, and the next one prepares everything again.
        const int hostCount = 200, vantagePoints = 12, vmCount = 3000;
        var fleet = ManyUserFleet(57, hostCount, vantagePoints, vmCount);
        var scanned = ManyUserFleet(57, hostCount, vantagePoints, vmCount);
        var failing = -1;
        var policy = new LowestLatencyPolicy(LaneOptions(2)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1, FailRefreshShare = from => from == failing };
        var scanPolicy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 1, MinAbsoluteGainMs = 1, MinRelativeGain = 0.01, CandidateIndexDepth = 0 });
        var buffer = new DecisionBuffer(fleet, recordCandidates: false);
        var scanBuffer = new DecisionBuffer(scanned, recordCandidates: false);
        policy.Evaluate(fleet, buffer);
        // The evaluating thread's, then the lane's (which refreshes while that thread decides).
        foreach (var share in new[] { 0, LowestLatencyPolicy.OverlapStart(vmCount, 2) })
        {
            failing = share;
            for (var h = 0; h < hostCount; h++)
            {
                fleet.SetLatency(share % vantagePoints, h, Summary(fleet.LatencyOf(share % vantagePoints, h).MedianMs * 1.05, Now));
                scanned.SetLatency(share % vantagePoints, h, Summary(scanned.LatencyOf(share % vantagePoints, h).MedianMs * 1.05, Now));
            }

            var ex = Assert.Throws<InvalidOperationException>(() => policy.Evaluate(fleet, buffer));
            Assert.That(ex!.Message, Is.EqualTo($"Injected fault in the refresh share from VM {share}."));
        }

        failing = -1;
        policy.Evaluate(fleet, buffer);
        scanPolicy.Evaluate(scanned, scanBuffer);
        for (var vm = 0; vm < vmCount; vm++)
        {
            Assert.That(Outcome(buffer, vm), Is.EqualTo(Outcome(scanBuffer, vm)), $"vm{vm}: after the failed evaluations vs the scan");
        }
    }

    [TestCase(61, int.MaxValue, 0.9, true)]
    [TestCase(62, 24, 0.9, true)]
    [TestCase(63, int.MaxValue, 0.6, true)]
    [TestCase(65, int.MaxValue, 0.9, false)]
    [TestCase(66, 24, 0.6, false)]
    public void Evaluate_LookAhead_SameDecisionsAsOneThreadAndResultsTaken(int seed, int openHosts, double percentile, bool inline)
    {
        // Inline: the look-ahead runs on the evaluating thread at every search it would make (for a VM whose
        // reused best host filled up), over every VM after that one; its results are made under the rooms at
        // that point, and some of the hosts found fill up before their VM is decided. The evaluating thread
        // must take exactly those that still fit and search again for the others; both must happen. On a
        // lane (a lane thread, which the evaluating thread waits to have claimed it): the same decisions,
        // and some results taken. New samples every window, so a result left from the window before would
        // be wrong.
        const int hostCount = 200, vantagePoints = 12, vmCount = 3000, windows = 5;
        var fleet = ManyUserFleet(seed, hostCount, vantagePoints, vmCount, openHosts);
        var single = ManyUserFleet(seed, hostCount, vantagePoints, vmCount, openHosts);
        var policy = new LowestLatencyPolicy(LaneOptions(2, percentile)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1, LookAheadInline = inline, LookAheadClaimed = !inline };
        var singlePolicy = new LowestLatencyPolicy(LaneOptions(1, percentile)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1 };
        var buffer = new DecisionBuffer(fleet, recordCandidates: false);
        var singleBuffer = new DecisionBuffer(single, recordCandidates: false);
        // On a lane, up to 40 windows until one of its results was taken: how far it gets ahead depends on
        // the scheduler of a loaded machine.
        for (var window = 0; window < windows || (!inline && buffer.AheadProgress[0].Used == 0 && window < 40); window++)
        {
            policy.Evaluate(fleet, buffer);
            singlePolicy.Evaluate(single, singleBuffer);
            for (var vm = 0; vm < vmCount; vm++)
            {
                Assert.That(Outcome(buffer, vm), Is.EqualTo(Outcome(singleBuffer, vm)), $"window {window}, vm{vm}");
            }

            Assert.That(buffer.MoveCount, Is.GreaterThan(10), $"window {window}: too few moves to fill the hosts");
            Assert.That(buffer.EnsureLanes(1)[0].IsDone, $"window {window}: the look-ahead still runs after the evaluation");
            fleet.AdvanceConfirmations(buffer);
            single.AdvanceConfirmations(singleBuffer);
            foreach (var s in new[] { fleet, single })
            {
                for (var p = window % 3; p < vantagePoints; p += 3)
                {
                    for (var h = 0; h < hostCount; h++)
                    {
                        s.SetLatency(p, h, Summary(s.LatencyOf(p, h).MedianMs * (h % 4 == window % 4 ? 1.04 : 0.99), Now));
                    }
                }
            }
        }

        TestContext.Out.WriteLine($"taken {buffer.AheadProgress[0].Used}, refused {buffer.AheadProgress[0].Refused}");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(buffer.AheadProgress[0].Used, Is.GreaterThan(inline ? 10 : 0), "results taken from the look-ahead");
            if (inline)
            {
                Assert.That(buffer.AheadProgress[0].Refused, Is.GreaterThan(10), "results refused: their host filled up");
            }
        }
    }

    [TestCase("lane")]     // the look-ahead throws on its lane thread as it starts: rethrown once the decisions end
    [TestCase("inline")]   // it throws on the evaluating thread after writing 5 results, which the next evaluation must not take
    [TestCase("decision")] // the evaluating thread throws mid-way while the look-ahead runs: it is stopped first
    public void Evaluate_LookAheadOrDecisionThrows_ThrowsWithTheLaneStoppedAndTheNextEvaluationDecidesAsTheScan(string fault)
    {
        const int hostCount = 200, vantagePoints = 12, vmCount = 3000;
        var fleet = ManyUserFleet(64, hostCount, vantagePoints, vmCount, openHosts: 24);
        var scanned = ManyUserFleet(64, hostCount, vantagePoints, vmCount, openHosts: 24);
        var failing = true;
        var policy = new LowestLatencyPolicy(LaneOptions(2))
        {
            ParallelMinimumVms = 1,
            ParallelMinimumRows = 1,
            LookAheadInline = fault == "inline",
            LookAheadClaimed = fault != "inline",
            FailLookAhead = fault == "lane" ? _ => failing : fault == "inline" ? written => failing && written == 5 : null,
            FailDecisionAt = fault == "decision" ? 2500 : -1,
        };
        var scanPolicy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 1, MinAbsoluteGainMs = 1, MinRelativeGain = 0.01, CandidateIndexDepth = 0 });
        var buffer = new DecisionBuffer(fleet, recordCandidates: false);
        var scanBuffer = new DecisionBuffer(scanned, recordCandidates: false);
        var ex = Assert.Throws<InvalidOperationException>(() => policy.Evaluate(fleet, buffer));
        Assert.That(ex!.Message, Does.Contain(fault == "decision" ? "decision of VM 2500" : fault == "inline" ? "look-ahead after 5 results" : "look-ahead as it starts"));
        Assert.That(buffer.EnsureLanes(1)[0].IsDone, "the look-ahead still runs after the evaluation threw");
        if (fault != "inline")
        {
            Assert.That(buffer.AheadProgress[0].Stop, Is.EqualTo(1), "the look-ahead was never handed over");
        }

        failing = false;
        var next = fault == "decision" ? new LowestLatencyPolicy(LaneOptions(2)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1 } : policy;
        next.Evaluate(fleet, buffer);
        scanPolicy.Evaluate(scanned, scanBuffer);
        for (var vm = 0; vm < vmCount; vm++)
        {
            Assert.That(Outcome(buffer, vm), Is.EqualTo(Outcome(scanBuffer, vm)), $"vm{vm}: after the failed evaluation vs the scan");
        }

        Assert.That(buffer.MoveCount, Is.GreaterThan(10), "too few moves to fill the hosts");
    }

    [Test]
    public void Evaluate_DecisionThrowsWhileLanesRefresh_ThrowsOnlyOnceTheLaneIsDoneAndTheNextEvaluationDecidesAsTheScan()
    {
        // The lane's share is held at its start (released 200 ms later from a timer) while the evaluating thread
        // throws deciding a VM of its own share: the evaluation must wait for that lane before it throws, and
        // the next one must not reuse what either left half done.
        const int hostCount = 200, vantagePoints = 12, vmCount = 3000;
        var fleet = ManyUserFleet(69, hostCount, vantagePoints, vmCount);
        var scanned = ManyUserFleet(69, hostCount, vantagePoints, vmCount);
        var laneFrom = LowestLatencyPolicy.OverlapStart(vmCount, 2);
        using var release = new ManualResetEventSlim();
        var laneLeft = false;
        var failing = new LowestLatencyPolicy(LaneOptions(2))
        {
            ParallelMinimumVms = 1,
            ParallelMinimumRows = 1,
            FailDecisionAt = laneFrom - 10,
            FailRefreshShare = from =>
            {
                if (from == laneFrom)
                {
                    release.Wait(TimeSpan.FromSeconds(30));
                    Volatile.Write(ref laneLeft, true);
                }

                return false;
            },
        };
        var next = new LowestLatencyPolicy(LaneOptions(2)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1 };
        var scanPolicy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 1, MinAbsoluteGainMs = 1, MinRelativeGain = 0.01, CandidateIndexDepth = 0 });
        var buffer = new DecisionBuffer(fleet, recordCandidates: false);
        var scanBuffer = new DecisionBuffer(scanned, recordCandidates: false);
        next.Evaluate(fleet, buffer);
        foreach (var s in new[] { fleet, scanned })
        {
            for (var p = 0; p < vantagePoints; p++)
            {
                for (var h = 0; h < hostCount; h++)
                {
                    s.SetLatency(p, h, Summary(s.LatencyOf(p, h).MedianMs * (h % 3 == p % 3 ? 0.97 : 1.02), Now));
                }
            }
        }

        using var timer = new Timer(_ => release.Set(), null, TimeSpan.FromMilliseconds(200), Timeout.InfiniteTimeSpan);
        var ex = Assert.Throws<InvalidOperationException>(() => failing.Evaluate(fleet, buffer));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Message, Does.Contain($"decision of VM {laneFrom - 10}"));
            Assert.That(Volatile.Read(ref laneLeft), "the evaluation threw while the lane's share still ran");
            Assert.That(buffer.EnsureLanes(1)[0].IsDone, "a lane still refreshes after the evaluation threw");
        }

        next.Evaluate(fleet, buffer);
        scanPolicy.Evaluate(scanned, scanBuffer);
        for (var vm = 0; vm < vmCount; vm++)
        {
            Assert.That(Outcome(buffer, vm), Is.EqualTo(Outcome(scanBuffer, vm)), $"vm{vm}: after the failed evaluation vs the scan");
        }

        Assert.That(buffer.MoveCount, Is.GreaterThan(10), "too few moves to fill the hosts");
    }

    [TestCase(-1)]
    [TestCase(65)]
    public void Constructor_MaxDegreeOfParallelismOutOfRange_ThrowsNamingTheOption(int value)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Policy(configure: o => o.MaxDegreeOfParallelism = value));
        Assert.That(ex!.Message, Does.Contain(nameof(LowestLatencyPolicyOptions.MaxDegreeOfParallelism)));
    }

    internal static LowestLatencyPolicyOptions LaneOptions(int lanes, double percentile = 0.9) =>
        new() { ConfirmationWindows = 1, MinAbsoluteGainMs = 1, MinRelativeGain = 0.01, MaxDegreeOfParallelism = lanes, UserPercentile = percentile };
}
