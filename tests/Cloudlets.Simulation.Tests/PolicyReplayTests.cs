using Cloudlets.Core.Decisions;
using Cloudlets.Simulation;
using Cloudlets.Simulation.Baselines;

namespace Cloudlets.Simulation.Tests;

public class PolicyReplayTests
{
    [Test]
    public void Run_AlwaysNearest_MovesAtTheFirstStepAndServesFromTheSourceUntilDone()
    {
        var timeline = new TraceTimeline(Fleets.TwoHosts(), Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10)));
        var result = PolicyReplay.Run(timeline, new AlwaysNearestPolicy(), "alwaysNearest");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Vms[0].Moves.Select(m => (m.DecidedAt, m.From, m.To)), Is.EqualTo(new[] { (0.0, "a", "b") }));
            Assert.That(result.Vms[0].Moves[0].CompletedAt, Is.EqualTo(5.001).Within(1e-9));
            Assert.That(result.Cost, Is.EqualTo(2400).Within(1e-6), "the same cost as the optimum's identical schedule");
        }
    }

    [Test]
    public void Run_Never_CostsTheInitialHostThroughout()
    {
        var timeline = new TraceTimeline(Fleets.TwoHosts(), Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10)));
        var result = PolicyReplay.Run(timeline, new NeverMigratePolicy(), "never");
        Assert.That((result.MigrationCount, result.Cost), Is.EqualTo((0, 10000.0)));
    }

    [Test]
    public void Run_LostProbes_ChargeTheLastKnownRtt()
    {
        // a: 100, lost, lost, 50 ... the cost model charges 100 for the lost steps.
        double?[] a = [100, null, null, 50];
        var timeline = new TraceTimeline(Fleets.TwoHosts(), Fleets.Trace(a, Fleets.Repeat(500, 4)));
        var result = PolicyReplay.Run(timeline, new NeverMigratePolicy(), "never");
        Assert.That(result.Cost, Is.EqualTo((100 + 100 + 100 + 50) * 10.0));
    }

    [Test]
    public void Run_Myopic_MovesOnlyWhenGainOverStayExceedsPenalty()
    {
        var timeline = new TraceTimeline(Fleets.TwoHosts(penalty: 5000), Fleets.Trace(Fleets.Repeat(100, 10), Fleets.Repeat(10, 10)));
        var eager = PolicyReplay.Run(timeline, new MyopicPolicy(5000, TimeSpan.FromSeconds(60)), "myopic");
        var shy = PolicyReplay.Run(timeline, new MyopicPolicy(5000, TimeSpan.FromSeconds(50)), "myopic");
        Assert.That((eager.MigrationCount, shy.MigrationCount), Is.EqualTo((1, 0)), "90 ms × 60 s = 5400 > 5000; 90 × 50 = 4500 < 5000");
    }

    [Test]
    public void Run_SameInputsTwice_GivesTheSameMoves()
    {
        var generated = TraceGenerator.Generate(MobilityModel.Commute, seed: 7, durationSeconds: 3600);
        var timeline = new TraceTimeline(generated.Fleet, generated.Trace);
        var first = PolicyReplay.Run(timeline, new LowestLatencyPolicy(), "default");
        var second = PolicyReplay.Run(timeline, new LowestLatencyPolicy(), "default");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.MigrationCount, Is.GreaterThan(0), "the commuters make the policy move");
            Assert.That(second.Vms.SelectMany(v => v.Moves), Is.EqualTo(first.Vms.SelectMany(v => v.Moves)));
            Assert.That(second.Cost, Is.EqualTo(first.Cost));
        }
    }

    [Test]
    public void Run_EveryPolicy_CostsAtLeastTheOptimum()
    {
        foreach (var model in Enum.GetValues<MobilityModel>())
        {
            var generated = TraceGenerator.Generate(model, seed: 3, durationSeconds: 1800);
            var timeline = new TraceTimeline(generated.Fleet, generated.Trace);
            var comparison = Comparison.Run(timeline, new LowestLatencyPolicy(), "default");
            var costs = comparison.Baselines.Values.Select(b => b.Cost).Append(comparison.Policy.Cost);
            Assert.That(costs, Is.All.GreaterThanOrEqualTo(comparison.Optimum.Cost - 1e-6), model.ToString());
        }
    }
}

public class TraceGeneratorTests
{
    [Test]
    public void Generate_SameSeed_SameTrace()
    {
        var a = TraceGenerator.Generate(MobilityModel.Walk, seed: 11, durationSeconds: 600);
        var b = TraceGenerator.Generate(MobilityModel.Walk, seed: 11, durationSeconds: 600);
        var c = TraceGenerator.Generate(MobilityModel.Walk, seed: 12, durationSeconds: 600);
        Assert.That((a.Trace.Samples.SequenceEqual(b.Trace.Samples), a.Trace.Samples.SequenceEqual(c.Trace.Samples)), Is.EqualTo((true, false)));
    }

    [Test]
    public void Generate_Walk_OneRoundPerStepToEveryHost()
    {
        var g = TraceGenerator.Generate(MobilityModel.Walk, seed: 1, durationSeconds: 100, stepSeconds: 5);
        Assert.That(g.Trace.Samples, Has.Count.EqualTo(20 * g.Fleet.Hosts.Count));
    }

    [Test]
    public void Run_NearestHostDrained_VmMovesOffAndPaysTheLatencyOfTheDrain()
    {
        // a is near (10 ms), b far (50 ms): undrained the VM stays on a; drained, it moves to b at once and
        // stays there. The price: 40 ms more for the 90 s served from b (steps 1-9) plus one migration (500).
        var timeline = new TraceTimeline(Fleets.TwoHosts(), Fleets.Trace(Fleets.Repeat(10, 10), Fleets.Repeat(50, 10)));
        var stay = PolicyReplay.Run(timeline, new LowestLatencyPolicy(), "default");
        var drained = PolicyReplay.Run(timeline, new LowestLatencyPolicy(), "default", new ReplayOptions { Rules = new PlacementRules { DrainedHosts = ["a"] } });
        using (Assert.EnterMultipleScope())
        {
            Assert.That((stay.MigrationCount, stay.Cost), Is.EqualTo((0, 1000.0)));
            Assert.That(drained.Vms[0].Moves.Select(m => (m.DecidedAt, m.From, m.To)), Is.EqualTo(new[] { (0.0, "a", "b") }));
            Assert.That(drained.Vms[0].Moves[0].Explanation, Does.Contain("a is drained"));
            Assert.That(drained.Cost, Is.EqualTo(100 + (9 * 10 * 50) + 500).Within(1e-6));
            Assert.That(drained.Cost - stay.Cost, Is.EqualTo((9 * 10 * 40) + 500).Within(1e-6));
        }
    }

    [Test]
    [Category("BadInput")]
    public void Run_RulesNameUnknownHost_ThrowsBeforeReplaying()
    {
        var timeline = new TraceTimeline(Fleets.TwoHosts(), Fleets.Trace(Fleets.Repeat(10, 2), Fleets.Repeat(50, 2)));
        var e = Assert.Throws<Cloudlets.Core.Options.OptionsValidationException>(() =>
            PolicyReplay.Run(timeline, new LowestLatencyPolicy(), "default", new ReplayOptions { Rules = new PlacementRules { DrainedHosts = ["z"] } }))!;
        Assert.That(e.Errors.Select(x => x.Path), Is.EqualTo(new[] { "DrainedHosts[0]" }));
    }
}
