using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

public partial class FleetSnapshotTests
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

    [TestCase(-1, 0)]
    [TestCase(2, 0)]
    [TestCase(0, -1)]
    [TestCase(0, 2)]
    public void SetBandwidth_HostOutOfRange_ThrowsAndChangesNothing(int source, int destination)
    {
        var s = new FleetSnapshot(["a", "b"], [new VmDefinition("vm", [new VmUser("x", 1)])]);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.SetBandwidth(source, destination, 1e8));
        Assert.That(new[] { s.BandwidthOf(0, 0), s.BandwidthOf(0, 1), s.BandwidthOf(1, 0), s.BandwidthOf(1, 1) }, Has.All.NaN);
    }

    [Test]
    public void PublicViews_AfterSetters_ReadBackWhatWasSet()
    {
        var now = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
        var s = new FleetSnapshot(["a", "b"], [new VmDefinition("vm", [new VmUser("x", 2), new VmUser("y", 3)])]) { Now = now };
        s.SetHost(1, HostAvailability.BackedOff, 4L << 30, 6);
        s.SetBandwidth(0, 1, 1e8);
        s.SetLatency(1, 1, LowestLatencyPolicyTests.Summary(42, now - TimeSpan.FromSeconds(3), sent: 10, received: 8));
        s.SetPlacement(0, 1, 512L << 20, 2, 1e6);
        s.SetMigrationHistory(0, now - TimeSpan.FromMinutes(1), inFlight: true);
        var cell = s.LatencyOf(1, 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((s.AvailabilityOf(1), s.FreeMemoryBytesOf(1), s.FreeVCpusOf(1)), Is.EqualTo((HostAvailability.BackedOff, 4L << 30, 6)));
            Assert.That((s.BandwidthOf(0, 1), s.BandwidthOf(1, 0)), Is.EqualTo((1e8, double.NaN)));
            Assert.That((cell.HasData, cell.Received, cell.MedianMs, cell.Value(LatencyStatistic.Mean)), Is.EqualTo((true, 8, 42.0, 42.0)));
            Assert.That(cell.LossRate, Is.EqualTo(0.2).Within(1e-12));
            Assert.That(cell.NewestSampleAt, Is.EqualTo(now - TimeSpan.FromSeconds(3)));
            Assert.That(s.LatencyAgeOf(1, 1), Is.EqualTo(TimeSpan.FromSeconds(3)));
            Assert.That((s.LatencyOf(0, 1).HasData, s.LatencyAgeOf(0, 1)), Is.EqualTo((false, TimeSpan.MaxValue)));
            Assert.That(s.LatencyRow(1).Length, Is.EqualTo(2));
            Assert.That(s.LatencyRow(1)[1].MedianMs, Is.EqualTo(42));
            Assert.That(s.UserVantagePointsOf(0).ToArray(), Is.EqualTo(new[] { 0, 1 }));
            Assert.That(s.UserWeightsOf(0).ToArray(), Is.EqualTo(new[] { 2.0, 3.0 }));
            Assert.That(s.TotalWeightOf(0), Is.EqualTo(5));
            Assert.That((s.PlacementOf(0), s.MemoryBytesOf(0), s.VCpusOf(0), s.DirtyRateOf(0)), Is.EqualTo((1, 512L << 20, 2, 1e6)));
            Assert.That((s.LastMoveOf(0), s.IsMigrating(0)), Is.EqualTo(((DateTimeOffset?)(now - TimeSpan.FromMinutes(1)), true)));
        }
    }
}
