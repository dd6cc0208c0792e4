using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

public class FleetSnapshotTests
{
    [Test]
    public void Ctor_UsersOfSeveralVms_VantagePointsIndexedOnceInOrder()
    {
        var s = new FleetSnapshot(["a", "b"], [
            new VmDefinition("vm1", [new VmUser("edge-1"), new VmUser("edge-2", 2)]),
            new VmDefinition("vm2", [new VmUser("edge-2")]),
        ]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.VantagePointCount, Is.EqualTo(2));
            Assert.That(s.IndexOfVantagePoint("edge-2"), Is.EqualTo(1));
            Assert.That(s.IndexOfVm("vm2"), Is.EqualTo(1));
            Assert.That(s.IndexOfHost("b"), Is.EqualTo(1));
            Assert.That(s.IndexOfHost("nope"), Is.EqualTo(-1));
            Assert.That(s.PlacementOf(0), Is.EqualTo(-1));
        }
    }

    [Test]
    public void Ctor_DuplicateHost_Throws() =>
        Assert.That(() => new FleetSnapshot(["a", "a"], [new VmDefinition("vm", [new VmUser("e")])]), Throws.ArgumentException.With.Message.Contains("'a' appears twice"));

    [Test]
    public void Ctor_DuplicateVm_Throws() =>
        Assert.That(() => new FleetSnapshot(["a"], [new VmDefinition("vm", [new VmUser("e")]), new VmDefinition("vm", [new VmUser("e")])]), Throws.ArgumentException);

    [TestCase(0.0)]
    [TestCase(-1.0)]
    [TestCase(double.NaN)]
    [TestCase(double.PositiveInfinity)]
    public void Ctor_InvalidWeight_Throws(double weight) =>
        Assert.That(() => new FleetSnapshot(["a"], [new VmDefinition("vm", [new VmUser("e", weight)])]), Throws.ArgumentException.With.Message.Contains("weight"));

    [Test]
    public void AdvanceConfirmations_AfterEvaluation_CarriesPendingMove()
    {
        var s = new FleetSnapshot(["a", "b"], [new VmDefinition("vm", [new VmUser("e")])]) { Now = DateTimeOffset.UnixEpoch };
        s.SetHost(0, HostAvailability.Available, 8L << 30, 8);
        s.SetHost(1, HostAvailability.Available, 8L << 30, 8);
        s.SetPlacement(0, 0, 1 << 20, 1);
        s.SetLatency(0, 0, LowestLatencyPolicyTests.Summary(300, s.Now));
        s.SetLatency(0, 1, LowestLatencyPolicyTests.Summary(20, s.Now));
        var results = new DecisionBuffer(s);
        new LowestLatencyPolicy().Evaluate(s, results);
        s.AdvanceConfirmations(results);
        Assert.That(s.ConfirmationOf(0), Is.EqualTo((1, 1)));
    }
}
