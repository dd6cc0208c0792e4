using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Tests.Decisions;

/// <summary>
/// The decisive-move rule (<see cref="LowestLatencyPolicyOptions.DecisiveBenefitFactor"/>): with a penalty
/// set, a gain whose benefit over the expected stay is at least the factor times the move's cost, and that
/// even the target's 95th percentile keeps, is confirmed in <see cref="LowestLatencyPolicyOptions.DecisiveConfirmationWindows"/>.
/// A 256 MiB VM at the default 1 Gbit/s costs the 20,000 ms·s penalty + 100 ms × 2.1 s ≈ 20,215 ms·s; the
/// default stay is 1,200 s.
/// </summary>
public partial class LowestLatencyPolicyTests
{
    private const double Penalty = 20_000;

    private static LowestLatencyPolicy DecisivePolicy(Action<LowestLatencyPolicyOptions>? configure = null) =>
        Policy(windows: 3, o =>
        {
            o.MigrationPenaltyMsSeconds = Penalty;
            configure?.Invoke(o);
        });

    /// <summary>A cell whose median and 95th percentile differ (the helper above gives one value for all statistics).</summary>
    private static LatencySummary Spread(double medianMs, double p95Ms) =>
        new(10, 10, TimeSpan.FromMilliseconds(medianMs), TimeSpan.FromMilliseconds(medianMs), TimeSpan.FromMilliseconds(p95Ms),
            TimeSpan.FromMilliseconds(p95Ms), TimeSpan.FromMilliseconds(medianMs), TimeSpan.Zero, Now);

    [Test]
    public void Evaluate_DecisiveGain_MovesInTheFirstWindow()
    {
        // 280 ms × 1,200 s = 336,000 ms·s: 16.6 × the cost.
        var d = DecisivePolicy().Decide(Fleet(300, 20, 300))[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((d.Kind, d.Reason, d.TargetHost), Is.EqualTo((DecisionKind.Move, DecisionReason.Move, "b")));
            Assert.That(d.ConfirmedWindows, Is.EqualTo(1));
            Assert.That(d.Explanation, Does.Contain("held for 1 of 3 windows and is decisive").And.Contain("16.6 ×"));
        }
    }

    [Test]
    public void Evaluate_GainBelowDecisiveFactor_AwaitsTheFullConfirmation()
    {
        // 100 → 60 ms: 48,000 ms·s, 2.4 × the cost: it pays, but not three times over.
        var policy = DecisivePolicy();
        var s = Fleet(100, 60, 300);
        var reasons = Enumerable.Range(0, 3).Select(_ => policy.Decide(s)[0]).Select(d => (d.Reason, d.ConfirmedWindows)).ToList();
        Assert.That(reasons, Is.EqualTo(new[]
        {
            (DecisionReason.AwaitingConfirmation, 1),
            (DecisionReason.AwaitingConfirmation, 2),
            (DecisionReason.Move, 3),
        }));
    }

    [Test]
    public void Evaluate_DecisiveFactorLowered_SameGainMovesInTheFirstWindow()
    {
        // The previous case with the factor at 2: the gates are the only difference.
        var d = DecisivePolicy(o => o.DecisiveBenefitFactor = 2).Decide(Fleet(100, 60, 300))[0];
        Assert.That((d.Reason, d.ConfirmedWindows), Is.EqualTo((DecisionReason.Move, 1)));
    }

    [Test]
    public void Evaluate_NoisyTarget_AwaitsConfirmation()
    {
        // The target's median is 20 ms, but its 95th percentile (295 ms) is within the minimum gain of the current 300 ms.
        var s = Fleet(300, 20, 300);
        s.SetLatency(0, 1, Spread(20, 295));
        var d = DecisivePolicy().Decide(s)[0];
        Assert.That((d.Reason, d.ConfirmedWindows, d.TargetHost), Is.EqualTo((DecisionReason.AwaitingConfirmation, 1, "b")));
    }

    [Test]
    public void Evaluate_TargetSpreadWithinTheGain_MovesInTheFirstWindow()
    {
        // A 95th percentile of 200 ms still beats 300 ms by more than the minimum gain.
        var s = Fleet(300, 20, 300);
        s.SetLatency(0, 1, Spread(20, 200));
        var d = DecisivePolicy().Decide(s)[0];
        Assert.That((d.Reason, d.ConfirmedWindows), Is.EqualTo((DecisionReason.Move, 1)));
    }

    [Test]
    public void Evaluate_DecisiveGainWithoutPenalty_AwaitsConfirmation()
    {
        var d = DecisivePolicy(o => o.MigrationPenaltyMsSeconds = 0).Decide(Fleet(300, 20, 300))[0];
        Assert.That((d.Reason, d.ConfirmedWindows), Is.EqualTo((DecisionReason.AwaitingConfirmation, 1)));
    }

    [Test]
    public void Evaluate_DecisiveFactorZero_AwaitsConfirmation()
    {
        var d = DecisivePolicy(o => o.DecisiveBenefitFactor = 0).Decide(Fleet(300, 20, 300))[0];
        Assert.That((d.Reason, d.ConfirmedWindows), Is.EqualTo((DecisionReason.AwaitingConfirmation, 1)));
    }

    [Test]
    public void Evaluate_CurrentHostUnreachable_AwaitsConfirmation()
    {
        // An unreachable current host is an infinite gain: the loss may be noise, so it is never decisive.
        var s = Fleet(300, 20, 300);
        s.SetLatency(0, 0, Summary(300, Now, sent: 10, received: 0));
        var d = DecisivePolicy().Decide(s)[0];
        Assert.That((d.Reason, d.ConfirmedWindows), Is.EqualTo((DecisionReason.AwaitingConfirmation, 1)));
    }

    [Test]
    public void Evaluate_DecisiveConfirmationWindowsTwo_MovesInTheSecondWindow()
    {
        var policy = DecisivePolicy(o => o.DecisiveConfirmationWindows = 2);
        var s = Fleet(300, 20, 300);
        var reasons = Enumerable.Range(0, 2).Select(_ => policy.Decide(s)[0]).Select(d => (d.Reason, d.ConfirmedWindows)).ToList();
        Assert.That(reasons, Is.EqualTo(new[] { (DecisionReason.AwaitingConfirmation, 1), (DecisionReason.Move, 2) }));
    }

    [Test]
    public void Evaluate_DecisiveMoveInCooldown_StaysForTheCooldown()
    {
        // The rule shortens the confirmation only; the cooldown still holds.
        var s = Fleet(300, 20, 300);
        s.SetMigrationHistory(0, Now - TimeSpan.FromMinutes(1), inFlight: false);
        var d = DecisivePolicy().Decide(s)[0];
        Assert.That(d.Reason, Is.EqualTo(DecisionReason.Cooldown));
    }
}
