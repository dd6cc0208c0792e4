using Cloudlets.Simulation;

namespace Cloudlets.Simulation.Tests;

public class OfflineOptimumTests
{
    [Test]
    public void SolveVm_BetterHostThroughout_MovesAtOnceAndPaysTheSourceUntilArrival()
    {
        // Ten 10-s steps; a = 100 ms, b = 10 ms. Moving at t=0 (arrival at step 1, 5 s later):
        // step 0 on a (1000) + penalty 500 + 9 steps on b (900) = 2400; staying costs 10000.
        var timeline = new TraceTimeline(Fleets.TwoHosts(), Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10)));
        var optimum = OfflineOptimum.SolveVm(timeline, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(optimum.Cost, Is.EqualTo(2400).Within(1e-6));
            Assert.That(optimum.Moves.Select(m => (m.DecidedAt, m.From, m.To)), Is.EqualTo(new[] { (0.0, "a", "b") }));
            Assert.That(CostCalculator.VmCost(timeline, 0, optimum.Moves), Is.EqualTo(optimum.Cost).Within(1e-6));
        }
    }

    [Test]
    public void SolveVm_PenaltyAboveAnyGain_NeverMoves()
    {
        var timeline = new TraceTimeline(Fleets.TwoHosts(penalty: 1e6), Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10)));
        var optimum = OfflineOptimum.SolveVm(timeline, 0);
        Assert.That((optimum.Cost, optimum.Moves.Count), Is.EqualTo((10000.0, 0)));
    }

    [Test]
    public void SolveVm_SlowMigration_HonoursTheDelay()
    {
        // 25 s migration: the destination serves from step 3 (t=30): 3 steps on a (3000) + 500 + 7 on b (700).
        var timeline = new TraceTimeline(Fleets.TwoHosts(fixedSeconds: 25), Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10)));
        Assert.That(OfflineOptimum.SolveVm(timeline, 0).Cost, Is.EqualTo(4200).Within(1e-6));
    }

    [Test]
    public void SolveVm_ShortDip_MovesOnlyWhenTheGainPaysThePenalty()
    {
        // b is better (10 vs 100 ms) only at steps 2-3, then worse (200 ms): going and coming back costs
        // 2 penalties; the gain is 90 ms × 20 s = 1800 minus the return trip's loss.
        double?[] a = [100, 100, 100, 100, 100, 100, 100, 100];
        double?[] b = [200, 200, 10, 10, 200, 200, 200, 200];
        var cheap = OfflineOptimum.SolveVm(new TraceTimeline(Fleets.TwoHosts(fixedSeconds: 1, penalty: 100), Fleets.Trace(a, b)), 0);
        var dear = OfflineOptimum.SolveVm(new TraceTimeline(Fleets.TwoHosts(fixedSeconds: 1, penalty: 1000), Fleets.Trace(a, b)), 0);
        using (Assert.EnterMultipleScope())
        {
            // Cheap: move at t=10 (arrive t=20), back at t=30 (arrive t=40): 2 steps on a + b,b + 4 on a = 6×1000 + 2×100 + 2×100 = 6400.
            Assert.That(cheap.Moves.Select(m => (m.DecidedAt, m.To)), Is.EqualTo(new[] { (10.0, "b"), (30.0, "a") }));
            Assert.That(cheap.Cost, Is.EqualTo(6400).Within(1e-6));
            Assert.That((dear.Moves.Count, dear.Cost), Is.EqualTo((0, 8000.0)));
        }
    }

    [Test]
    public void Solve_CapacityForOne_IsALowerBound()
    {
        // Two VMs both want b, which holds one (1 MiB each, b has 1 MiB).
        var fleet = Fleets.TwoHosts(vms: 2, hostMemoryMiB: 2) with { };
        fleet = fleet with { Hosts = [fleet.Hosts[0], fleet.Hosts[1] with { MemoryMiB = 1 }] };
        var optimum = OfflineOptimum.Solve(new TraceTimeline(fleet, Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10))));
        Assert.That((optimum.IsExact, optimum.Cost), Is.EqualTo((false, 4800.0)));
    }

    [Test]
    public void Solve_CapacityToSpare_IsExact()
    {
        var optimum = OfflineOptimum.Solve(new TraceTimeline(Fleets.TwoHosts(vms: 2), Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10))));
        Assert.That((optimum.IsExact, optimum.Cost), Is.EqualTo((true, 4800.0)));
    }
}
