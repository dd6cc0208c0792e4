using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

public sealed class FleetAssignmentTests
{
    private static FleetVm Vm(params (string Site, double Weight)[] users) =>
        new() { InitialHost = "cloudlet-1", Users = [.. users.Select(u => new FleetUser { Site = u.Site, Weight = u.Weight })] };

    private static FleetAct Act(params double[][] rows) =>
        new() { DelaysMs = rows.Select((r, i) => (Site: $"site-{i + 1}", Row: (IReadOnlyList<double>)r)).ToDictionary(x => x.Site, x => x.Row) };

    [Test]
    public void Cost_TwoWeightedUsers_WeightedMean() =>
        Assert.That(FleetAssignment.Cost(Vm(("site-1", 0.7), ("site-2", 0.3)), Act([20, 60], [40, 20]), 0), Is.EqualTo(26).Within(1e-9));

    [Test]
    public void Best_CapacityBinds_ThirdVmGoesToItsSecondBestHost()
    {
        // Three VMs want host 0; only two fit. The one with the cheapest second choice (site-2's users: 30 ms) yields.
        var vms = new[] { Vm(("site-1", 1)), Vm(("site-1", 1)), Vm(("site-2", 1)) };
        var (hosts, total, optima) = FleetAssignment.Best(vms, Act([10, 200], [10, 30]), hostCount: 2, capacityVms: 2);

        Assert.That((hosts, total, optima), Is.EqualTo((new[] { 0, 0, 1 }, 50.0, 1)));
    }

    [Test]
    public void Best_SymmetricVms_CountsEveryOptimum()
    {
        var vms = new[] { Vm(("site-1", 1)), Vm(("site-1", 1)) };
        var (_, _, optima) = FleetAssignment.Best(vms, Act([10, 20]), hostCount: 2, capacityVms: 1);

        Assert.That(optima, Is.EqualTo(2));
    }

    [Test]
    public void Best_DoesNotFit_Throws() =>
        Assert.Throws<InvalidOperationException>(() => FleetAssignment.Best([Vm(("site-1", 1)), Vm(("site-1", 1))], Act([10]), hostCount: 1, capacityVms: 1));

    [Test]
    public void PeakVms_MigratingVm_CountsOnBothHostsWhileItMoves()
    {
        // a stays on h1; b moves h1 -> h2 between 5 and 7; c arrives on h1 at 7 (as b's move ends).
        var peaks = FleetAssignment.PeakVms([("h1", 0, 10), ("h1", 0, 7), ("h2", 5, 10), ("h1", 7, 10)]);

        Assert.That(peaks, Is.EquivalentTo(new Dictionary<string, int> { ["h1"] = 3, ["h2"] = 1 }), "an arrival at the instant of a departure counts both");
    }
}
