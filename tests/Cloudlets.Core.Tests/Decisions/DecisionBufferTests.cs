using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

public class DecisionBufferTests
{
    private static (FleetSnapshot Snapshot, DecisionBuffer Results) MoveReady(int windows)
    {
        var s = new FleetSnapshot(["a", "b"], [new VmDefinition("vm", [new VmUser("e")])]) { Now = DateTimeOffset.UnixEpoch };
        s.SetHost(0, HostAvailability.Available, 8L << 30, 8);
        s.SetHost(1, HostAvailability.Available, 8L << 30, 8);
        s.SetPlacement(0, 0, 1 << 20, 1);
        s.SetLatency(0, 0, LowestLatencyPolicyTests.Summary(300, s.Now));
        s.SetLatency(0, 1, LowestLatencyPolicyTests.Summary(20, s.Now));
        s.SetConfirmation(0, 1, windows - 1);
        return (s, new DecisionBuffer(s));
    }

    [Test]
    public void HoldBack_Move_BecomesStayAndMovesInNextWindow()
    {
        var (s, r) = MoveReady(windows: 3);
        var policy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 3 });
        policy.Evaluate(s, r);
        Assert.That(r.KindOf(0), Is.EqualTo(DecisionKind.Move));
        r.HoldBack(0, DecisionReason.MigrationLimitReached);
        var held = r.ToDecision(s, 0);
        s.AdvanceConfirmations(r);
        policy.Evaluate(s, r);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((held.Kind, held.Reason, held.TargetHost), Is.EqualTo((DecisionKind.Stay, DecisionReason.MigrationLimitReached, "b")));
            Assert.That(r.MoveCount, Is.EqualTo(1));
            Assert.That(r.KindOf(0), Is.EqualTo(DecisionKind.Move));
        }
    }

    [Test]
    public void ToDecision_WithoutCandidateRecording_HasNoCandidates()
    {
        var (s, _) = MoveReady(windows: 1);
        var r = new DecisionBuffer(s, recordCandidates: false);
        new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 1 }).Evaluate(s, r);
        var d = r.ToDecision(s, 0);
        Assert.That((d.Kind, d.Candidates.Count), Is.EqualTo((DecisionKind.Move, 0)));
    }

    [Test]
    public void Set_MovesAndStays_MoveCountFollowsTheLastCallPerVm()
    {
        var (s, r) = MoveReady(windows: 1);
        r.Begin(s, requiredWindows: 2);
        r.Set(0, DecisionKind.Move, DecisionReason.Move, targetHost: 1, currentScore: 300, targetScore: 20);
        var moved = r.MoveCount;
        r.Set(0, DecisionKind.Stay, DecisionReason.Cooldown, targetHost: 1, currentScore: 300, targetScore: 20, figure1: 12);
        var d = r.ToDecision(s, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((moved, r.MoveCount, r.RequiredWindows, r.EvaluatedAt), Is.EqualTo((1, 0, 2, s.Now)));
            Assert.That((d.Kind, d.Reason, d.TargetHost, d.CurrentScoreMs, d.TargetScoreMs), Is.EqualTo((DecisionKind.Stay, DecisionReason.Cooldown, "b", 300.0, 20.0)));
            Assert.That(d.Explanation, Does.Contain("cooldown ends in 12 s"));
        }
    }

    [Test]
    public void Begin_AfterAnEvaluation_ResetsEveryEntry()
    {
        var (s, r) = MoveReady(windows: 1);
        new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 1 }).Evaluate(s, r);
        r.Begin(s);
        var d = r.ToDecision(s, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((r.MoveCount, r.KindOf(0), r.TargetOf(0), r.CurrentScoreOf(0), r.NextConfirmationOf(0)), Is.EqualTo((0, DecisionKind.NoDecision, -1, double.NaN, (-1, 0))));
            Assert.That(d.Candidates.Select(c => c.Status), Is.All.EqualTo(CandidateStatus.NotEvaluated));
        }
    }

    [Test]
    public void SetCandidateAndNextConfirmation_AreWhatToDecisionAndAdvanceRead()
    {
        var (s, r) = MoveReady(windows: 1);
        r.Begin(s, requiredWindows: 3);
        r.Set(0, DecisionKind.Stay, DecisionReason.AwaitingConfirmation, targetHost: 1, currentScore: 300, targetScore: 20);
        r.SetNextConfirmation(0, 1, 2);
        r.SetCandidate(0, 0, CandidateStatus.Eligible, 300);
        r.SetCandidate(0, 1, CandidateStatus.Eligible, 20);
        var d = r.ToDecision(s, 0);
        s.AdvanceConfirmations(r);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Candidates.Select(c => c.ScoreMs), Is.EqualTo(new double?[] { 300, 20 }));
            Assert.That(d.ConfirmedWindows, Is.EqualTo(2));
            Assert.That(s.ConfirmationOf(0), Is.EqualTo((1, 2)));
        }
    }

    [Test]
    public void Set_MoveWithoutTarget_Throws()
    {
        var (s, r) = MoveReady(windows: 1);
        r.Begin(s);
        Assert.That(() => r.Set(0, DecisionKind.Move, DecisionReason.Move), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Begin_SnapshotOfOtherLayout_Throws()
    {
        var (_, r) = MoveReady(windows: 1);
        var other = new FleetSnapshot(["a", "b", "c"], [new VmDefinition("vm", [new VmUser("e")])]);
        Assert.That(() => r.Begin(other), Throws.ArgumentException);
    }
}

public class LowestLatencyPolicyFastPathTests
{
    /// <summary>A random fleet with every kind of trouble: 1 to 4 weighted users, stale, lossy, down, backed off, full.</summary>
    private static FleetSnapshot RandomFleet(int seed)
    {
        var random = new Random(seed);
        var hosts = Enumerable.Range(0, 20).Select(h => $"h{h}").ToArray();
        var vms = Enumerable.Range(0, 300)
            .Select(v => new VmDefinition($"vm{v}", [.. Enumerable.Range(0, 1 + random.Next(4)).Select(_ => new VmUser($"e{random.Next(15)}", 1 + random.Next(3)))]))
            .ToArray();
        var s = new FleetSnapshot(hosts, vms) { Now = DateTimeOffset.UnixEpoch + TimeSpan.FromDays(1) };
        for (var h = 0; h < hosts.Length; h++)
        {
            var availability = random.Next(10) switch { 0 => HostAvailability.Down, 1 => HostAvailability.BackedOff, _ => HostAvailability.Available };
            s.SetHost(h, availability, random.Next(4) == 0 ? 200L << 20 : 4L << 30, random.Next(12));
        }

        for (var p = 0; p < s.VantagePointCount; p++)
        {
            for (var h = 0; h < hosts.Length; h++)
            {
                var roll = random.Next(20);
                var newest = roll == 0 ? s.Now - TimeSpan.FromMinutes(5) : s.Now;
                // Coarse latencies so that ties and tie-tolerance cases occur.
                s.SetLatency(p, h, LowestLatencyPolicyTests.Summary(5 * (1 + random.Next(40)), newest, 10, roll == 1 ? 3 : roll == 2 ? 0 : 10));
            }
        }

        for (var v = 0; v < vms.Length; v++)
        {
            s.SetPlacement(v, random.Next(hosts.Length), (128L << 20) * (1 + random.Next(8)), 1 + random.Next(3));
            if (random.Next(10) == 0)
            {
                s.SetMigrationHistory(v, s.Now - TimeSpan.FromMinutes(1), inFlight: false);
            }
        }

        return s;
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void Evaluate_FastAndRecordingPaths_SameDecisionsEveryWindow(int seed)
    {
        var fast = RandomFleet(seed);
        var recording = RandomFleet(seed);
        var policy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 2, MinRelativeGain = 0.1 });
        var fastResults = new DecisionBuffer(fast, recordCandidates: false);
        var recordingResults = new DecisionBuffer(recording, recordCandidates: true);
        var moves = 0;
        for (var window = 0; window < 5; window++)
        {
            policy.Evaluate(fast, fastResults);
            policy.Evaluate(recording, recordingResults);
            for (var vm = 0; vm < fast.VmCount; vm++)
            {
                Assert.That(
                    (fastResults.KindOf(vm), fastResults.ReasonOf(vm), fastResults.TargetOf(vm), fastResults.TargetScoreOf(vm)),
                    Is.EqualTo((recordingResults.KindOf(vm), recordingResults.ReasonOf(vm), recordingResults.TargetOf(vm), recordingResults.TargetScoreOf(vm))),
                    $"window {window}, VM {vm}");
            }

            moves += fastResults.MoveCount;
            fast.AdvanceConfirmations(fastResults);
            recording.AdvanceConfirmations(recordingResults);
        }

        Assert.That(moves, Is.GreaterThan(0), "the fleet must produce moves for the comparison to mean anything");
    }
}
