using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Tests.Decisions;

public partial class LowestLatencyPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly string[] Hosts = ["a", "b", "c"];

    internal static LatencySummary Summary(double ms, DateTimeOffset newest, int sent = 10, int received = 10)
    {
        var t = received == 0 ? (TimeSpan?)null : TimeSpan.FromMilliseconds(ms);
        return new LatencySummary(sent, received, t, t, t, t, t, TimeSpan.Zero, newest);
    }

    /// <summary>One VM on host a, one user "edge" with the given latency to a, b and c (null = no data).</summary>
    private static FleetSnapshot Fleet(double? a, double? b, double? c, int vms = 1)
    {
        var s = new FleetSnapshot(Hosts, [.. Enumerable.Range(0, vms).Select(i => new VmDefinition($"vm{i}", [new VmUser("edge")]))]);
        s.Now = Now;
        double?[] latencies = [a, b, c];
        for (var h = 0; h < 3; h++)
        {
            s.SetHost(h, HostAvailability.Available, 8L << 30, 16);
            if (latencies[h] is { } ms)
            {
                s.SetLatency(0, h, Summary(ms, Now));
            }
        }

        for (var v = 0; v < vms; v++)
        {
            s.SetPlacement(v, 0, 256L << 20, 1);
        }

        return s;
    }

    /// <summary>What two evaluations that must decide alike are compared on, per VM: kind, reason, target and both scores (NaN equals NaN).</summary>
    private static (DecisionKind Kind, DecisionReason Reason, int Target, double CurrentScore, double TargetScore) Outcome(DecisionBuffer buffer, int vm) =>
        (buffer.KindOf(vm), buffer.ReasonOf(vm), buffer.TargetOf(vm), buffer.CurrentScoreOf(vm), buffer.TargetScoreOf(vm));

    private static LowestLatencyPolicy Policy(int windows = 1, Action<LowestLatencyPolicyOptions>? configure = null)
    {
        var o = new LowestLatencyPolicyOptions { ConfirmationWindows = windows };
        configure?.Invoke(o);
        return new LowestLatencyPolicy(o);
    }

    [Test]
    public void Evaluate_LowerHostForDemonstration_MovesToLowestHost()
    {
        var s = Fleet(300, 20, 25);
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Kind, Is.EqualTo(DecisionKind.Move));
            Assert.That(d.Reason, Is.EqualTo(DecisionReason.Move));
            Assert.That(d.TargetHost, Is.EqualTo("b"));
            Assert.That(d.CurrentScoreMs, Is.EqualTo(300).Within(1e-9));
            Assert.That(d.GainMs, Is.EqualTo(280).Within(1e-9));
            Assert.That(d.Candidates.Select(c => c.ScoreMs), Is.EqualTo(new double?[] { 300, 20, 25 }));
            Assert.That(d.Candidates[0].IsCurrent, Is.True);
            Assert.That(d.Explanation, Does.Contain("to b"));
        }
    }

    [Test]
    public void Evaluate_GainSustained_MovesOnlyInConfirmationWindow()
    {
        var s = Fleet(300, 20, 300);
        var policy = Policy(windows: 3);
        var kinds = new List<(DecisionKind, DecisionReason, int)>();
        for (var i = 0; i < 3; i++)
        {
            var d = policy.Decide(s)[0];
            kinds.Add((d.Kind, d.Reason, d.ConfirmedWindows));
        }

        Assert.That(kinds, Is.EqualTo(new[]
        {
            (DecisionKind.Stay, DecisionReason.AwaitingConfirmation, 1),
            (DecisionKind.Stay, DecisionReason.AwaitingConfirmation, 2),
            (DecisionKind.Move, DecisionReason.Move, 3),
        }));
    }

    [Test]
    public void Evaluate_GainInterrupted_ConfirmationRestarts()
    {
        var s = Fleet(300, 20, 300);
        var policy = Policy(windows: 3);
        policy.Decide(s);
        policy.Decide(s);
        s.SetLatency(0, 1, Summary(295, Now)); // gain gone for one window
        var interrupted = policy.Decide(s)[0];
        s.SetLatency(0, 1, Summary(20, Now));
        var again = policy.Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(interrupted.Reason, Is.EqualTo(DecisionReason.BelowAbsoluteGain));
            Assert.That(again.Reason, Is.EqualTo(DecisionReason.AwaitingConfirmation));
            Assert.That(again.ConfirmedWindows, Is.EqualTo(1));
        }
    }

    [Test]
    public void Evaluate_GainBelowAbsoluteMinimum_Stays()
    {
        var d = Policy(configure: o => o.MinAbsoluteGainMs = 10).Decide(Fleet(25, 16, 30))[0];
        Assert.That((d.Kind, d.Reason, d.TargetHost), Is.EqualTo((DecisionKind.Stay, DecisionReason.BelowAbsoluteGain, "b")));
    }

    [Test]
    public void Evaluate_GainBelowRelativeMinimum_Stays()
    {
        var d = Policy(configure: o => o.MinRelativeGain = 0.2).Decide(Fleet(200, 170, 300))[0];
        Assert.That((d.Kind, d.Reason), Is.EqualTo((DecisionKind.Stay, DecisionReason.BelowRelativeGain)));
    }

    [Test]
    public void Evaluate_CurrentHostIsBest_StaysAlreadyBest()
    {
        var d = Policy().Decide(Fleet(20, 300, 300))[0];
        Assert.That((d.Kind, d.Reason, d.TargetHost), Is.EqualTo((DecisionKind.Stay, DecisionReason.AlreadyBest, (string?)null)));
    }

    [Test]
    public void Evaluate_OtherHostEqualToCurrent_StaysTie()
    {
        var d = Policy(configure: o => o.MinAbsoluteGainMs = 0).Decide(Fleet(20, 20.5, 300))[0];
        Assert.That((d.Kind, d.Reason), Is.EqualTo((DecisionKind.Stay, DecisionReason.Tie)));
    }

    [Test]
    public void Evaluate_TwoEqualBestCandidates_TargetStaysWithPendingHost()
    {
        var s = Fleet(300, 20, 20.4);
        var policy = Policy(windows: 3);
        var first = policy.Decide(s)[0];
        s.SetLatency(0, 1, Summary(20.4, Now));
        s.SetLatency(0, 2, Summary(20, Now)); // noise flips the order within the tie tolerance
        var second = policy.Decide(s)[0];
        var third = policy.Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.TargetHost, Is.EqualTo("b"));
            Assert.That(second.TargetHost, Is.EqualTo("b"));
            Assert.That(second.ConfirmedWindows, Is.EqualTo(2));
            Assert.That((third.Kind, third.TargetHost), Is.EqualTo((DecisionKind.Move, "b")));
        }
    }

    [Test]
    public void Evaluate_BestHostFull_SkippedWithNoCapacity()
    {
        var s = Fleet(300, 20, 40);
        s.SetHost(1, HostAvailability.Available, 100L << 20, 16); // 100 MiB free, the VM needs 256 MiB
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Candidates[1].Status, Is.EqualTo(CandidateStatus.NoCapacity));
            Assert.That(d.Candidates[1].ScoreMs, Is.EqualTo(20));
            Assert.That((d.Kind, d.TargetHost), Is.EqualTo((DecisionKind.Move, "c")));
        }
    }

    [Test]
    public void Evaluate_NoVCpusLeft_SkippedWithNoCapacity()
    {
        var s = Fleet(300, 20, null);
        s.SetHost(1, HostAvailability.Available, 8L << 30, 0);
        var d = Policy().Decide(s)[0];
        Assert.That((d.Kind, d.Reason, d.Candidates[1].Status), Is.EqualTo((DecisionKind.Stay, DecisionReason.NoCandidates, CandidateStatus.NoCapacity)));
    }

    [Test]
    public void Evaluate_TwoVmsForTheLastSlot_OnlyOneMoves()
    {
        var s = Fleet(300, 20, 300, vms: 2);
        s.SetHost(1, HostAvailability.Available, (256L << 20) + (64L << 20), 16); // room for exactly one
        var decisions = Policy().Decide(s);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(decisions[0].Kind, Is.EqualTo(DecisionKind.Move));
            Assert.That(decisions[1].Kind, Is.EqualTo(DecisionKind.Stay));
            Assert.That(decisions[1].Candidates[1].Status, Is.EqualTo(CandidateStatus.NoCapacity));
        }
    }

    [Test]
    public void Evaluate_StaleCurrentHostData_NoDecision()
    {
        var s = Fleet(300, 20, 20);
        s.SetLatency(0, 0, Summary(300, Now - TimeSpan.FromSeconds(31)));
        var d = Policy().Decide(s)[0];
        Assert.That((d.Kind, d.Reason, d.TargetHost), Is.EqualTo((DecisionKind.NoDecision, DecisionReason.StaleData, (string?)null)));
    }

    [Test]
    public void Evaluate_StaleCandidate_NotACandidate()
    {
        var s = Fleet(300, 20, 40);
        s.SetLatency(0, 1, Summary(20, Now - TimeSpan.FromMinutes(5)));
        var d = Policy().Decide(s)[0];
        Assert.That((d.Candidates[1].Status, d.TargetHost), Is.EqualTo((CandidateStatus.Stale, "c")));
    }

    [Test]
    public void Evaluate_EveryCandidateStale_NoDecision()
    {
        var s = Fleet(300, 20, 20);
        s.SetLatency(0, 1, Summary(20, Now - TimeSpan.FromMinutes(5)));
        s.SetLatency(0, 2, Summary(20, Now - TimeSpan.FromMinutes(5)));
        Assert.That(Policy().Decide(s)[0].Reason, Is.EqualTo(DecisionReason.StaleData));
    }

    [Test]
    public void Evaluate_LossyHost_UnreachableNeverFast()
    {
        var s = Fleet(300, 20, null);
        s.SetLatency(0, 1, Summary(1, Now, sent: 10, received: 4)); // 60 % loss, the few replies are "fast"
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Candidates[1].Status, Is.EqualTo(CandidateStatus.Unreachable));
            Assert.That(d.Candidates[2].Status, Is.EqualTo(CandidateStatus.Unreachable)); // no data at all
            Assert.That((d.Kind, d.Reason), Is.EqualTo((DecisionKind.Stay, DecisionReason.NoCandidates)));
        }
    }

    [Test]
    public void Evaluate_CurrentHostUnreachable_MovesToReachableHost()
    {
        var s = Fleet(null, 40, null);
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((d.Kind, d.TargetHost), Is.EqualTo((DecisionKind.Move, "b")));
            Assert.That(d.CurrentScoreMs, Is.EqualTo(double.PositiveInfinity));
            Assert.That(d.Candidates[0].Status, Is.EqualTo(CandidateStatus.Unreachable));
        }
    }

    [Test]
    public void Evaluate_HostDownOrBackedOff_NotACandidate()
    {
        var s = Fleet(300, 20, 30);
        s.SetHost(1, HostAvailability.Down, 8L << 30, 16);
        s.SetHost(2, HostAvailability.BackedOff, 8L << 30, 16);
        var d = Policy().Decide(s)[0];
        Assert.That((d.Reason, d.Candidates[1].Status, d.Candidates[2].Status),
            Is.EqualTo((DecisionReason.NoCandidates, CandidateStatus.HostDown, CandidateStatus.BackedOff)));
    }

    [Test]
    public void Evaluate_CurrentHostDown_NoDecision()
    {
        var s = Fleet(300, 20, 30);
        s.SetHost(0, HostAvailability.Down, 8L << 30, 16);
        Assert.That(Policy().Decide(s)[0].Reason, Is.EqualTo(DecisionReason.CurrentHostDown));
    }

    [Test]
    public void Evaluate_WithinCooldown_HeldBackThenMovesAfter()
    {
        var s = Fleet(300, 20, 300);
        var policy = Policy(configure: o => o.Cooldown = TimeSpan.FromMinutes(5));
        s.SetMigrationHistory(0, Now - TimeSpan.FromMinutes(4), inFlight: false);
        var held = policy.Decide(s)[0];
        s.SetMigrationHistory(0, Now - TimeSpan.FromMinutes(5), inFlight: false);
        var moved = policy.Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((held.Kind, held.Reason, held.TargetHost), Is.EqualTo((DecisionKind.Stay, DecisionReason.Cooldown, "b")));
            Assert.That(held.Explanation, Does.Contain("60 s"));
            Assert.That(moved.Kind, Is.EqualTo(DecisionKind.Move));
        }
    }

    [Test]
    public void Evaluate_MigrationInFlight_NoDecision()
    {
        var s = Fleet(300, 20, 300);
        s.SetMigrationHistory(0, null, inFlight: true);
        Assert.That(Policy().Decide(s)[0].Reason, Is.EqualTo(DecisionReason.MigrationInProgress));
    }

    [Test]
    public void Evaluate_PlacementUnknown_NoDecision()
    {
        var s = Fleet(300, 20, 300);
        s.SetPlacement(0, -1, 0, 0);
        Assert.That(Policy().Decide(s)[0].Reason, Is.EqualTo(DecisionReason.PlacementUnknown));
    }

    [Test]
    public void Evaluate_CostAboveGainOverStay_Stays()
    {
        // 64 GiB over 10 MB/s is ~6900 s of migration at 100 ms impact: ~690,000 ms·s; 20 ms × 1200 s = 24,000 ms·s.
        var s = Fleet(100, 80, 300);
        s.SetPlacement(0, 0, 64L << 30, 1);
        s.SetHost(1, HostAvailability.Available, 128L << 30, 16);
        s.SetBandwidth(0, 1, 10_000_000);
        var d = Policy().Decide(s)[0];
        Assert.That((d.Kind, d.Reason), Is.EqualTo((DecisionKind.Stay, DecisionReason.CostExceedsGain)));
    }

    [Test]
    public void Evaluate_BandwidthPairsSetAndCleared_MeasuredPairReadUntilCleared()
    {
        // The policy reads a source host's bandwidth only while that host has a measured pair (a count
        // kept by SetBandwidth): setting a pair again, and clearing another three times, must leave the
        // measured pair in use (a count that fell to 0 would read the default); clearing it brings the
        // default back (a fast one: the move goes ahead).
        var s = Fleet(100, 80, 300);
        s.SetPlacement(0, 0, 8L << 30, 1); // 8 GiB: ~860 s at 10 MB/s, ~69 s at the default
        s.SetHost(1, HostAvailability.Available, 128L << 30, 16);
        s.SetBandwidth(0, 1, 20_000_000);
        s.SetBandwidth(0, 1, 10_000_000);
        s.SetBandwidth(0, 2, 1e9);
        s.SetBandwidth(0, 2, double.NaN);
        s.SetBandwidth(0, 2, double.NaN);
        s.SetBandwidth(0, 2, double.NaN);
        s.SetBandwidth(1, 0, double.NaN);
        var measured = Policy().Decide(s)[0];
        s.SetBandwidth(0, 1, double.NaN);
        var cleared = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(measured.Reason, Is.EqualTo(DecisionReason.CostExceedsGain), measured.Explanation);
            Assert.That((cleared.Kind, cleared.Reason, cleared.TargetHost), Is.EqualTo((DecisionKind.Move, DecisionReason.Move, "b")), cleared.Explanation);
        }
    }

    [TestCase(30_000, DecisionKind.Stay)]
    [TestCase(10_000, DecisionKind.Move)]
    public void Evaluate_MigrationPenalty_WeighedAgainstGainOverStay(double penalty, DecisionKind expected)
    {
        // 100 → 80 ms: 20 ms × the default 20-minute stay = 24,000 ms·s of gain.
        var s = Fleet(100, 80, 300);
        var d = Policy(configure: o => { o.MigrationPenaltyMsSeconds = penalty; o.MinRelativeGain = 0.1; }).Decide(s)[0];
        Assert.That(d.Kind, Is.EqualTo(expected), d.Explanation);
    }

    [Test]
    public void Evaluate_DirtyRateReachesBandwidth_NeverProposed()
    {
        var s = Fleet(300, 20, 300);
        s.SetPlacement(0, 0, 256L << 20, 1, dirtyRateBytesPerSecond: 200_000_000);
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Reason, Is.EqualTo(DecisionReason.CostExceedsGain));
            Assert.That(d.Explanation, Does.Contain("not converge"));
        }
    }

    [Test]
    public void Evaluate_WeightedUsers_ScoreIsWeightedPercentile()
    {
        // Three users; on host b the heavy user is fast and two light users are slow.
        var s = new FleetSnapshot(["a", "b"], [new VmDefinition("vm", [new VmUser("u1", 8), new VmUser("u2", 1), new VmUser("u3", 1)])]) { Now = Now };
        s.SetHost(0, HostAvailability.Available, 8L << 30, 8);
        s.SetHost(1, HostAvailability.Available, 8L << 30, 8);
        s.SetPlacement(0, 0, 256L << 20, 1);
        s.SetLatency(0, 0, Summary(100, Now));
        s.SetLatency(1, 0, Summary(100, Now));
        s.SetLatency(2, 0, Summary(100, Now));
        s.SetLatency(0, 1, Summary(10, Now));
        s.SetLatency(1, 1, Summary(50, Now));
        s.SetLatency(2, 1, Summary(70, Now));
        var p80 = Policy(configure: o => o.UserPercentile = 0.8).Decide(s)[0];
        var p90 = Policy(configure: o => o.UserPercentile = 0.9).Decide(s)[0];
        var p100 = Policy(configure: o => o.UserPercentile = 1.0).Decide(s)[0];
        Assert.That(
            new[] { p80.Candidates[1].ScoreMs, p90.Candidates[1].ScoreMs, p100.Candidates[1].ScoreMs },
            Is.EqualTo(new double?[] { 10, 50, 70 }));
    }

    [Test]
    public void Evaluate_OneUserUnreachable_CountsAsInfinitelySlow()
    {
        var s = new FleetSnapshot(["a", "b"], [new VmDefinition("vm", [new VmUser("u1", 9), new VmUser("u2", 1)])]) { Now = Now };
        s.SetHost(0, HostAvailability.Available, 8L << 30, 8);
        s.SetHost(1, HostAvailability.Available, 8L << 30, 8);
        s.SetPlacement(0, 0, 256L << 20, 1);
        s.SetLatency(0, 0, Summary(100, Now));
        s.SetLatency(1, 0, Summary(100, Now));
        s.SetLatency(0, 1, Summary(10, Now)); // u2 has no data for b
        var median = Policy(configure: o => o.UserPercentile = 0.5).Decide(s)[0];
        var all = Policy(configure: o => o.UserPercentile = 1.0).Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((median.Kind, median.Candidates[1].ScoreMs), Is.EqualTo((DecisionKind.Move, (double?)10)));
            Assert.That(all.Candidates[1].Status, Is.EqualTo(CandidateStatus.Unreachable));
        }
    }

    [Test]
    public void Evaluate_BufferOfOtherLayout_Throws()
    {
        var s = Fleet(300, 20, 300);
        var other = new DecisionBuffer(Fleet(300, 20, 300, vms: 2));
        Assert.That(() => Policy().Evaluate(s, other), Throws.ArgumentException);
    }

    [Test]
    public void Ctor_DefaultOptions_AreValid()
    {
        var errors = new OptionsErrors();
        new LowestLatencyPolicyOptions().Validate(errors);
        Assert.That(errors.Errors, Is.Empty);
    }

    private static IEnumerable<TestCaseData> InvalidOptions()
    {
        TestCaseData Case(Action<LowestLatencyPolicyOptions> spoil, string path, string name) => new TestCaseData(spoil, path).SetName(name);
        yield return Case(o => o.UserPercentile = 0, nameof(LowestLatencyPolicyOptions.UserPercentile), "Ctor_PercentileZero_Throws");
        yield return Case(o => o.UserPercentile = 1.5, nameof(LowestLatencyPolicyOptions.UserPercentile), "Ctor_PercentileAboveOne_Throws");
        yield return Case(o => o.MinAbsoluteGainMs = -1, nameof(LowestLatencyPolicyOptions.MinAbsoluteGainMs), "Ctor_NegativeAbsoluteGain_Throws");
        yield return Case(o => o.MinRelativeGain = 1, nameof(LowestLatencyPolicyOptions.MinRelativeGain), "Ctor_RelativeGainOne_Throws");
        yield return Case(o => o.ConfirmationWindows = 0, nameof(LowestLatencyPolicyOptions.ConfirmationWindows), "Ctor_ZeroWindows_Throws");
        yield return Case(o => o.DecisiveBenefitFactor = 0.5, nameof(LowestLatencyPolicyOptions.DecisiveBenefitFactor), "Ctor_DecisiveFactorBelowOne_Throws");
        yield return Case(o => o.DecisiveBenefitFactor = double.NaN, nameof(LowestLatencyPolicyOptions.DecisiveBenefitFactor), "Ctor_DecisiveFactorNaN_Throws");
        yield return Case(o => o.DecisiveConfirmationWindows = 0, nameof(LowestLatencyPolicyOptions.DecisiveConfirmationWindows), "Ctor_ZeroDecisiveWindows_Throws");
        yield return Case(o => o.Cooldown = TimeSpan.FromSeconds(-1), nameof(LowestLatencyPolicyOptions.Cooldown), "Ctor_NegativeCooldown_Throws");
        yield return Case(o => o.MaxSampleAge = TimeSpan.Zero, nameof(LowestLatencyPolicyOptions.MaxSampleAge), "Ctor_ZeroSampleAge_Throws");
        yield return Case(o => o.MaxLossRate = 1, nameof(LowestLatencyPolicyOptions.MaxLossRate), "Ctor_LossRateOne_Throws");
        yield return Case(o => o.DefaultBandwidthBytesPerSecond = 0, nameof(LowestLatencyPolicyOptions.DefaultBandwidthBytesPerSecond), "Ctor_ZeroBandwidth_Throws");
        yield return Case(o => o.DefaultBandwidthBytesPerSecond = double.NaN, nameof(LowestLatencyPolicyOptions.DefaultBandwidthBytesPerSecond), "Ctor_NaNBandwidth_Throws");
        yield return Case(o => o.ExpectedStay = TimeSpan.Zero, nameof(LowestLatencyPolicyOptions.ExpectedStay), "Ctor_ZeroStay_Throws");
        yield return Case(o => o.MemoryReserveBytes = -1, nameof(LowestLatencyPolicyOptions.MemoryReserveBytes), "Ctor_NegativeReserve_Throws");
        yield return Case(o => o.Statistic = (LatencyStatistic)42, nameof(LowestLatencyPolicyOptions.Statistic), "Ctor_UnknownStatistic_Throws");
        yield return Case(o => o.TieToleranceMs = double.PositiveInfinity, nameof(LowestLatencyPolicyOptions.TieToleranceMs), "Ctor_InfiniteTie_Throws");
        yield return Case(o => o.MigrationPenaltyMsSeconds = double.NaN, nameof(LowestLatencyPolicyOptions.MigrationPenaltyMsSeconds), "Ctor_NaNPenalty_Throws");
        yield return Case(o => o.MigrationImpactMs = -1, nameof(LowestLatencyPolicyOptions.MigrationImpactMs), "Ctor_NegativeImpact_Throws");
    }

    [TestCaseSource(nameof(InvalidOptions))]
    [Category("BadInput")]
    public void Ctor_InvalidOption_ThrowsNamingIt(Action<LowestLatencyPolicyOptions> spoil, string path)
    {
        var o = new LowestLatencyPolicyOptions();
        spoil(o);
        var ex = Assert.Throws<OptionsValidationException>(() => new LowestLatencyPolicy(o));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.OptionsType, Is.EqualTo(nameof(LowestLatencyPolicyOptions)));
            Assert.That(ex.Errors.Select(e => e.Path), Is.EqualTo(new[] { path }));
            Assert.That(ex.Message, Does.Contain(path + ": is "));
        }
    }

    [Test]
    [Category("BadInput")]
    public void Ctor_SeveralInvalidOptions_ListsEveryOne()
    {
        var o = new LowestLatencyPolicyOptions { UserPercentile = 2, ConfirmationWindows = 0, MaxLossRate = -1 };
        var ex = Assert.Throws<OptionsValidationException>(() => new LowestLatencyPolicy(o));
        Assert.That(ex.Errors.Select(e => e.Path), Is.EqualTo(new[] { "UserPercentile", "ConfirmationWindows", "MaxLossRate" }));
    }

    [Test]
    public void Score_OneUser_IsTheChosenStatisticOfTheCell()
    {
        var s = Fleet(300, 20, null);
        var policy = Policy();
        Assert.That((policy.Score(s, 0, 0), policy.Score(s, 0, 1), policy.Score(s, 0, 2)), Is.EqualTo((300.0, 20.0, double.PositiveInfinity)));
    }

    [Test]
    public void Score_StaleCell_IsNaN()
    {
        var s = Fleet(300, 20, 25);
        s.SetLatency(0, 1, Summary(20, Now - TimeSpan.FromMinutes(5)));
        Assert.That(Policy().Score(s, 0, 1), Is.NaN);
    }

    [Test]
    public void Score_WeightedUsers_EqualsTheScoreTheEvaluationRecords()
    {
        var s = new FleetSnapshot(Hosts, [new VmDefinition("vm", [new VmUser("x", 1), new VmUser("y", 3), new VmUser("z", 1)])]) { Now = Now };
        double[,] ms = { { 100, 40, 70 }, { 10, 80, 60 }, { 50, 20, 90 } };
        for (var h = 0; h < 3; h++)
        {
            s.SetHost(h, HostAvailability.Available, 8L << 30, 16);
            for (var p = 0; p < 3; p++)
            {
                s.SetLatency(p, h, Summary(ms[p, h], Now));
            }
        }

        s.SetPlacement(0, 0, 256L << 20, 1);
        var policy = Policy(configure: o => o.UserPercentile = 0.5);
        var candidates = policy.Decide(s)[0].Candidates;
        Assert.That(Enumerable.Range(0, 3).Select(h => policy.Score(s, 0, h)), Is.EqualTo(candidates.Select(c => c.ScoreMs ?? double.NaN)));
        Assert.That(policy.Score(s, 0, 0), Is.EqualTo(10), "y carries 3 of 5 weights, so the median is y's 10 ms on host a");
    }

    [Test]
    public void Ctor_OptionsChangedAfterBuild_PolicyKeepsItsCopy()
    {
        var o = new LowestLatencyPolicyOptions { ConfirmationWindows = 1 };
        var policy = new LowestLatencyPolicy(o);
        o.ConfirmationWindows = 50;
        Assert.That(policy.Decide(Fleet(300, 20, 300))[0].Kind, Is.EqualTo(DecisionKind.Move));
    }
}
