using Cloudlets.Core.Shaping;

namespace Cloudlets.Core.Tests.Shaping;

public class ShapingChangesTests
{
    private static readonly Impairment Delay20 = Impairment.FromDelay(20);
    private static readonly Impairment Delay300 = Impairment.FromDelay(300);

    private static ShapingState StateWith(params AppliedRule[] rules) => new("o", "test", rules, [], []);

    private static AppliedRule Applied(string name, Impairment impairment, string iface = "eth0") =>
        new(null, iface, ShapingDirection.Egress, name, impairment, "test:" + name, null);

    [Test]
    public void Between_NoBackendWork_IsEmptyEvenIfReadBackDiffers()
    {
        var plan = new ShapingPlan("o", [ShapingRule.Egress("eth0", Delay20) with { Name = "a" }]);

        var changes = ShapingChanges.Between(plan, StateWith(), backendHasWork: false);

        Assert.That((changes.Owner, changes.IsEmpty), Is.EqualTo(("o", true)));
    }

    [Test]
    public void Between_NewChangedAndDroppedRules_ListsAddChangeRemoveInOrder()
    {
        var plan = new ShapingPlan("o",
        [
            ShapingRule.Egress("eth0", Delay300) with { Name = "a" },
            ShapingRule.Egress("eth1", Delay20) with { Name = "b" },
        ]);
        var current = StateWith(Applied("a", Delay20), Applied("gone", Delay20, "eth2"));

        var changes = ShapingChanges.Between(plan, current, backendHasWork: true);

        Assert.That(changes.Changes.Select(c => (c.Kind, c.Interface, c.RuleName)), Is.EqualTo(new[]
        {
            (ShapingChangeKind.Change, "eth0", "a"),
            (ShapingChangeKind.Add, "eth1", "b"),
            (ShapingChangeKind.Remove, "eth2", "gone"),
        }));
        Assert.That(changes.Changes[0].Description, Does.Contain("delay 20 ms").And.Contain("-> delay 300 ms"));
    }

    [Test]
    public void Between_RulesMatchButBackendHasWork_IsOneRepair()
    {
        var plan = new ShapingPlan("o", [ShapingRule.Egress("eth0", Delay20) with { Name = "a" }]);

        var changes = ShapingChanges.Between(plan, StateWith(Applied("a", Delay20)), backendHasWork: true);

        Assert.That(changes.Changes.Select(c => c.Kind), Is.EqualTo(new[] { ShapingChangeKind.Repair }));
    }

    [Test]
    public void Between_UnnamedRule_UsesTheEffectiveName()
    {
        var plan = new ShapingPlan("o", [ShapingRule.Egress("eth0", Delay20)]);

        var changes = ShapingChanges.Between(plan, StateWith(), backendHasWork: true);

        Assert.That(changes.Changes.Single().RuleName, Is.EqualTo("r0"));
    }
}
