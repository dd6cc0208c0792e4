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
}
