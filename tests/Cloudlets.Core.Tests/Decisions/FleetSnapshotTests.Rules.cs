using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

// SetRules: the rules compiled to the snapshot's indices, the views every policy reads.
public partial class FleetSnapshotTests
{
    private static FleetSnapshot FourVms() => new(["a", "b", "c"], [.. new[] { "w1", "w2", "w3", "d1" }.Select(n => new VmDefinition(n, [new VmUser("e")]))]);

    [Test]
    public void SetRules_EveryKind_CompiledToIndices()
    {
        var s = FourVms();
        s.SetRules(new PlacementRules
        {
            DrainedHosts = ["b"],
            PinnedVms = ["d1"],
            ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["w1"] = ["c"] },
            AntiAffinityGroups = [new() { Name = "x", Vms = ["w1", "d1"] }, new() { Name = "y", Vms = ["w1", "w3"] }],
            AffinityGroups = [new() { Name = "p", Vms = ["w2", "w3"] }],
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Enumerable.Range(0, 3).Select(s.IsDrained), Is.EqualTo(new[] { false, true, false }));
            Assert.That(Enumerable.Range(0, 4).Select(s.IsPinned), Is.EqualTo(new[] { false, false, false, true }));
            Assert.That((s.IsExcluded(0, 2), s.IsExcluded(0, 1), s.IsExcluded(1, 2)), Is.EqualTo((true, false, false)));
            Assert.That(s.AntiAffinityPartnersOf(0).ToArray(), Is.EqualTo(new[] { 2, 3 }), "over both groups, ascending");
            Assert.That(s.AntiAffinityPartnersOf(3).ToArray(), Is.EqualTo(new[] { 0 }));
            Assert.That(s.AntiAffinityPartnersOf(1).ToArray(), Is.Empty);
            Assert.That(s.AffinityMembersOf(2).ToArray(), Is.EqualTo(new[] { 1, 2 }));
            Assert.That((s.AffinityLeaderOf(1), s.AffinityLeaderOf(2), s.AffinityLeaderOf(0)), Is.EqualTo((1, 1, -1)));
        }
    }

    [Test]
    public void SetRules_GroupsJoinedThroughASharedVm_OneGroupLedByItsPinnedMember()
    {
        var s = FourVms();
        s.SetRules(new PlacementRules
        {
            PinnedVms = ["d1"],
            AffinityGroups = [new() { Name = "p", Vms = ["w1", "w2"] }, new() { Name = "q", Vms = ["w2", "d1"] }],
        });
        Assert.That((string.Join(",", s.AffinityMembersOf(0).ToArray()), s.AffinityLeaderOf(0), s.AffinityLeaderOf(1)), Is.EqualTo(("0,1,3", 3, 3)));
    }

    [Test]
    public void SetRules_ThenEmpty_EverythingCleared()
    {
        var s = FourVms();
        s.SetRules(new PlacementRules { DrainedHosts = ["a"], PinnedVms = ["w1"], AffinityGroups = [new() { Name = "p", Vms = ["w1", "w2"] }] });
        s.SetRules(PlacementRules.Empty);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((s.IsDrained(0), s.IsPinned(0), s.AffinityLeaderOf(0)), Is.EqualTo((false, false, -1)));
            Assert.That(s.AffinityMembersOf(0).ToArray(), Is.Empty);
            Assert.That(s.Rules, Is.SameAs(PlacementRules.Empty));
        }
    }

    [Test]
    public void SetRules_UnknownNames_Ignored()
    {
        var s = FourVms();
        s.SetRules(new PlacementRules { DrainedHosts = ["zz"], PinnedVms = ["ghost"], AntiAffinityGroups = [new() { Name = "x", Vms = ["w1", "ghost"] }] });
        Assert.That((s.IsDrained(0) || s.IsDrained(1) || s.IsDrained(2), s.AntiAffinityPartnersOf(0).Length), Is.EqualTo((false, 0)));
    }
}
