using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

// The placement rules: drain, pin, exclusions, anti-affinity and affinity.
public partial class LowestLatencyPolicyTests
{
    /// <summary>
    /// Hosts a, b, c; one VM per row of <paramref name="latencies"/>, each with its own user "u{i}" whose
    /// latency to a, b and c is the row (null = no data); VM i runs on <paramref name="placement"/>[i].
    /// </summary>
    private static FleetSnapshot RuleFleet(double?[][] latencies, int[] placement, PlacementRules rules, long freeMemory = 8L << 30)
    {
        var vms = latencies.Select((_, i) => new VmDefinition($"vm{i}", [new VmUser($"u{i}")])).ToArray();
        var s = new FleetSnapshot(Hosts, vms);
        s.Now = Now;
        for (var h = 0; h < 3; h++)
        {
            s.SetHost(h, HostAvailability.Available, freeMemory, 16);
        }

        for (var v = 0; v < vms.Length; v++)
        {
            for (var h = 0; h < 3; h++)
            {
                if (latencies[v][h] is { } ms)
                {
                    s.SetLatency(v, h, Summary(ms, Now));
                }
            }

            s.SetPlacement(v, placement[v], 256L << 20, 1);
        }

        s.SetRules(rules);
        return s;
    }

    private static PlacementGroup Group(string name, params string[] vms) => new() { Name = name, Vms = vms };

    [Test]
    public void Evaluate_VmOnDrainedHost_MovesToBestAllowedHostEvenWhenSlower()
    {
        var s = RuleFleet([[20, 50, 30]], [0], new PlacementRules { DrainedHosts = ["a"] });
        var d = Policy(windows: 3).Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((d.Kind, d.Reason, d.HeldBy, d.TargetHost), Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove, PlacementRuleKind.Drained, "c")));
            Assert.That(d.GainMs, Is.EqualTo(-10).Within(1e-9), "latency gets worse: 20 -> 30 ms");
            Assert.That(d.Explanation, Does.Contain("a is drained"));
        }
    }

    [Test]
    public void Evaluate_VmOnDrainedHostWithinCooldown_MovesAnyway()
    {
        var s = RuleFleet([[20, 50, 30]], [0], new PlacementRules { DrainedHosts = ["a"] });
        s.SetMigrationHistory(0, Now - TimeSpan.FromSeconds(10), inFlight: false);
        var d = Policy(windows: 3).Decide(s)[0];
        Assert.That((d.Kind, d.Reason), Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove)));
    }

    [Test]
    public void Evaluate_VmOnDrainedHostWithoutLatencyData_MovesToAHostWithRoomAnyway()
    {
        var s = RuleFleet([[20, null, null]], [0], new PlacementRules { DrainedHosts = ["a"] });
        var d = Policy().Decide(s)[0];
        Assert.That((d.Kind, d.Reason, d.TargetHost), Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove, "b")));
    }

    [Test]
    public void Evaluate_DrainedHostNoOtherHostHasRoom_StaysNoAllowedHost()
    {
        var s = RuleFleet([[20, 50, 30]], [0], new PlacementRules { DrainedHosts = ["a"] }, freeMemory: 100L << 20);
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((d.Kind, d.Reason, d.HeldBy), Is.EqualTo((DecisionKind.Stay, DecisionReason.NoAllowedHost, PlacementRuleKind.Drained)));
            Assert.That(d.Candidates.Where(c => !c.IsCurrent).Select(c => c.Status), Has.All.EqualTo(CandidateStatus.NoCapacity));
        }
    }

    [Test]
    public void Evaluate_BestHostDrained_HeldByRuleNamingIt()
    {
        var s = RuleFleet([[300, 20, 300]], [0], new PlacementRules { DrainedHosts = ["b"] });
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((d.Kind, d.Reason, d.HeldBy, d.TargetHost), Is.EqualTo((DecisionKind.Stay, DecisionReason.HeldByRule, PlacementRuleKind.Drained, "b")));
            Assert.That(d.Candidates[1].Status, Is.EqualTo(CandidateStatus.Drained));
            Assert.That(d.Explanation, Does.Contain("b is drained"));
        }
    }

    [Test]
    public void Evaluate_BestHostDrainedSecondBestGood_MovesToSecondBest()
    {
        var s = RuleFleet([[300, 20, 40]], [0], new PlacementRules { DrainedHosts = ["b"] });
        var d = Policy().Decide(s)[0];
        Assert.That((d.Kind, d.Reason, d.HeldBy, d.TargetHost), Is.EqualTo((DecisionKind.Move, DecisionReason.Move, PlacementRuleKind.None, "c")));
    }

    [Test]
    public void Evaluate_FastPathWithoutCandidates_NeverPicksDrainedHost()
    {
        var s = RuleFleet([[300, 20, 40]], [0], new PlacementRules { DrainedHosts = ["b"] });
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        Policy().Evaluate(s, buffer);
        Assert.That((buffer.KindOf(0), buffer.TargetOf(0)), Is.EqualTo((DecisionKind.Move, 2)));
    }

    [Test]
    public void Evaluate_PinnedVmWithBetterHost_StaysPinnedNamingTheHost()
    {
        var s = RuleFleet([[300, 20, 300]], [0], new PlacementRules { PinnedVms = ["vm0"] });
        var d = Policy().Decide(s)[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((d.Kind, d.Reason, d.HeldBy, d.TargetHost), Is.EqualTo((DecisionKind.Stay, DecisionReason.Pinned, PlacementRuleKind.Pinned, "b")));
            Assert.That(d.Explanation, Does.Contain("pinned"));
        }
    }

    [Test]
    public void Evaluate_PinnedVmOnDrainedHost_StaysPinned()
    {
        var s = RuleFleet([[20, 50, 30]], [0], new PlacementRules { PinnedVms = ["vm0"], DrainedHosts = ["a"] });
        var d = Policy().Decide(s)[0];
        Assert.That((d.Kind, d.Reason, d.HeldBy), Is.EqualTo((DecisionKind.Stay, DecisionReason.Pinned, PlacementRuleKind.Pinned)));
    }

    [Test]
    public void Evaluate_BestHostExcludedForVm_HeldByRuleExcluded()
    {
        var rules = new PlacementRules { ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["vm0"] = ["b"] } };
        var d = Policy().Decide(RuleFleet([[300, 20, 300]], [0], rules))[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((d.Kind, d.Reason, d.HeldBy, d.TargetHost), Is.EqualTo((DecisionKind.Stay, DecisionReason.HeldByRule, PlacementRuleKind.Excluded, "b")));
            Assert.That(d.Candidates[1].Status, Is.EqualTo(CandidateStatus.Excluded));
        }
    }

    [Test]
    public void Evaluate_ExclusionOfOtherVm_DoesNotApply()
    {
        var rules = new PlacementRules { ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["vm1"] = ["b"] } };
        var d = Policy().Decide(RuleFleet([[300, 20, 300], [300, 300, 300]], [0, 2], rules))[0];
        Assert.That((d.Kind, d.TargetHost), Is.EqualTo((DecisionKind.Move, "b")));
    }

    [Test]
    public void Evaluate_VmOnExcludedHost_MovesOff()
    {
        var rules = new PlacementRules { ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["vm0"] = ["a"] } };
        var d = Policy().Decide(RuleFleet([[20, 50, 30]], [0], rules))[0];
        Assert.That((d.Kind, d.Reason, d.HeldBy, d.TargetHost), Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove, PlacementRuleKind.Excluded, "c")));
    }

    [Test]
    public void Evaluate_AntiAffinityPairBothPreferSameHost_OnlyTheFirstGoesTheOtherHeld()
    {
        var rules = new PlacementRules { AntiAffinityGroups = [Group("spread", "vm0", "vm1")] };
        var decisions = Policy().Decide(RuleFleet([[300, 20, 300], [300, 20, 300]], [0, 2], rules));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((decisions[0].Kind, decisions[0].TargetHost), Is.EqualTo((DecisionKind.Move, "b")));
            Assert.That((decisions[1].Kind, decisions[1].Reason, decisions[1].HeldBy, decisions[1].TargetHost),
                Is.EqualTo((DecisionKind.Stay, DecisionReason.HeldByRule, PlacementRuleKind.AntiAffinity, "b")));
            Assert.That(decisions[1].Candidates[1].Status, Is.EqualTo(CandidateStatus.AntiAffinity));
        }
    }

    [Test]
    public void Evaluate_AntiAffinityPartnerAlreadyThere_NotADestination()
    {
        var rules = new PlacementRules { AntiAffinityGroups = [Group("spread", "vm0", "vm1")] };
        var d = Policy().Decide(RuleFleet([[300, 20, 300], [300, 300, 300]], [0, 1], rules))[0];
        Assert.That((d.Reason, d.HeldBy), Is.EqualTo((DecisionReason.HeldByRule, PlacementRuleKind.AntiAffinity)));
    }

    [Test]
    public void Evaluate_AntiAffinityPartnerMigratingThere_NotADestination()
    {
        var rules = new PlacementRules { AntiAffinityGroups = [Group("spread", "vm0", "vm1")] };
        var s = RuleFleet([[300, 20, 300], [300, 300, 300]], [0, 2], rules);
        s.SetMigrationHistory(1, null, inFlight: true, destinationHost: 1);
        var d = Policy().Decide(s)[0];
        Assert.That((d.Kind, d.Reason, d.HeldBy), Is.EqualTo((DecisionKind.Stay, DecisionReason.HeldByRule, PlacementRuleKind.AntiAffinity)));
    }

    [Test]
    public void Evaluate_AntiAffinityPairSharingAHost_SecondMovesOffFirstStays()
    {
        var rules = new PlacementRules { AntiAffinityGroups = [Group("spread", "vm0", "vm1")] };
        var decisions = Policy(windows: 3).Decide(RuleFleet([[20, 50, 30], [20, 50, 30]], [0, 0], rules));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((decisions[0].Kind, decisions[0].Reason), Is.EqualTo((DecisionKind.Stay, DecisionReason.AlreadyBest)));
            Assert.That((decisions[1].Kind, decisions[1].Reason, decisions[1].HeldBy, decisions[1].TargetHost),
                Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove, PlacementRuleKind.AntiAffinity, "c")));
        }
    }

    [Test]
    public void Evaluate_AntiAffinityPairSharingAHostFirstPinnedLater_SecondStillMovesOff()
    {
        var rules = new PlacementRules { AntiAffinityGroups = [Group("spread", "vm0", "vm1")], PinnedVms = ["vm1"] };
        var decisions = Policy().Decide(RuleFleet([[20, 50, 30], [20, 50, 30]], [0, 0], rules));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((decisions[0].Kind, decisions[0].Reason, decisions[0].HeldBy), Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove, PlacementRuleKind.AntiAffinity)));
            Assert.That(decisions[1].Reason, Is.EqualTo(DecisionReason.Pinned));
        }
    }

    [Test]
    public void Evaluate_AffinityGroupPrefersOtherHost_LeaderMovesAndMemberFollowsInTheSameWindow()
    {
        var rules = new PlacementRules { AffinityGroups = [Group("together", "vm0", "vm1")] };
        var decisions = Policy().Decide(RuleFleet([[300, 20, 300], [300, 30, 300]], [0, 0], rules));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((decisions[0].Kind, decisions[0].Reason, decisions[0].TargetHost), Is.EqualTo((DecisionKind.Move, DecisionReason.Move, "b")));
            Assert.That(decisions[0].CurrentScoreMs, Is.EqualTo(600).Within(1e-9), "the leader is scored for the group: 300 + 300");
            Assert.That(decisions[0].TargetScoreMs, Is.EqualTo(50).Within(1e-9));
            Assert.That((decisions[1].Kind, decisions[1].Reason, decisions[1].HeldBy, decisions[1].TargetHost),
                Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove, PlacementRuleKind.Affinity, "b")));
        }
    }

    [Test]
    public void Evaluate_AffinityGroupSumFavoursCurrentHost_MemberHeldByAffinity()
    {
        // vm1's own users prefer c, but the group (vm0 far from c) is better on a.
        var rules = new PlacementRules { AffinityGroups = [Group("together", "vm0", "vm1")] };
        var decisions = Policy().Decide(RuleFleet([[20, 300, 300], [100, 300, 20]], [0, 0], rules));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((decisions[0].Kind, decisions[0].Reason), Is.EqualTo((DecisionKind.Stay, DecisionReason.AlreadyBest)));
            Assert.That((decisions[1].Kind, decisions[1].Reason, decisions[1].HeldBy, decisions[1].TargetHost),
                Is.EqualTo((DecisionKind.Stay, DecisionReason.HeldByRule, PlacementRuleKind.Affinity, "c")));
        }
    }

    [Test]
    public void Evaluate_AffinityGroupTargetHasRoomForOneOnly_NoMove()
    {
        var rules = new PlacementRules { AffinityGroups = [Group("together", "vm0", "vm1")] };
        var s = RuleFleet([[300, 20, 300], [300, 30, 300]], [0, 0], rules);
        s.SetHost(1, HostAvailability.Available, (256L << 20) + (64L << 20) + (100L << 20), 16); // one VM + the reserve, not two
        var decisions = Policy().Decide(s);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(decisions.Select(d => d.Kind), Has.All.EqualTo(DecisionKind.Stay));
            Assert.That(decisions[0].Candidates[1].Status, Is.EqualTo(CandidateStatus.NoCapacity));
        }
    }

    [Test]
    public void Evaluate_AffinityGroupSplit_MemberJoinsItsLeader()
    {
        var rules = new PlacementRules { AffinityGroups = [Group("together", "vm0", "vm1")] };
        var decisions = Policy(windows: 3).Decide(RuleFleet([[20, 300, 300], [300, 300, 20]], [0, 2], rules));
        Assert.That((decisions[1].Kind, decisions[1].Reason, decisions[1].HeldBy, decisions[1].TargetHost),
            Is.EqualTo((DecisionKind.Move, DecisionReason.RuleRequiresMove, PlacementRuleKind.Affinity, "a")));
    }

    [Test]
    public void Evaluate_AffinityGroupWithPinnedMember_PinnedMemberLeadsAndNobodyMoves()
    {
        var rules = new PlacementRules { AffinityGroups = [Group("together", "vm0", "vm1")], PinnedVms = ["vm1"] };
        var s = RuleFleet([[300, 20, 300], [300, 20, 300]], [0, 0], rules);
        var decisions = Policy().Decide(s);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.AffinityLeaderOf(0), Is.EqualTo(1));
            Assert.That((decisions[0].Kind, decisions[0].Reason, decisions[0].HeldBy), Is.EqualTo((DecisionKind.Stay, DecisionReason.HeldByRule, PlacementRuleKind.Affinity)));
            Assert.That((decisions[1].Kind, decisions[1].Reason), Is.EqualTo((DecisionKind.Stay, DecisionReason.Pinned)));
        }
    }

    [Test]
    public void Evaluate_AffinityLeaderDrained_GroupEvacuatesTogether()
    {
        var rules = new PlacementRules { AffinityGroups = [Group("together", "vm0", "vm1")], DrainedHosts = ["a"] };
        var decisions = Policy(windows: 3).Decide(RuleFleet([[20, 50, 30], [20, 50, 30]], [0, 0], rules));
        Assert.That(decisions.Select(d => (d.Kind, d.Reason, d.TargetHost)), Is.EqualTo(new[]
        {
            (DecisionKind.Move, DecisionReason.RuleRequiresMove, (string?)"c"),
            (DecisionKind.Move, DecisionReason.RuleRequiresMove, (string?)"c"),
        }));
    }

    [Test]
    public void Evaluate_NoRules_SameDecisionsAsBefore()
    {
        var plain = Policy().Decide(Fleet(300, 20, 25))[0];
        var s = Fleet(300, 20, 25);
        s.SetRules(PlacementRules.Empty);
        var withEmpty = Policy().Decide(s)[0];
        Assert.That((withEmpty.Kind, withEmpty.Reason, withEmpty.TargetHost, withEmpty.HeldBy), Is.EqualTo((plain.Kind, plain.Reason, plain.TargetHost, PlacementRuleKind.None)));
    }
}
