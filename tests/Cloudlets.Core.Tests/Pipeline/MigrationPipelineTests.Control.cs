using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

// The operator's seam (IPlacementControl) on the real pipeline, in virtual time.
public partial class MigrationPipelineTests
{
    // a is best (20 ms), c next (30 ms), b last (50 ms); the VM starts on a.
    private static double? Steady(TimeSpan t, string host) => host switch { "a" => 20, "b" => 50, _ => 30 };

    private static PlacementGroup Group(string name, params string[] vms) => new() { Name = name, Vms = vms };

    [Test]
    public async Task DrainHost_VmOnIt_MovesAwayAtOnceAndNotBackUntilUndrained()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        var events = new List<PlacementControlEvent>();
        fleet.Pipeline.ControlEvents.Subscribe(events.Add);
        fleet.Replay(TimeSpan.FromSeconds(30), Steady);
        Assert.That(fleet.VmHost, Is.EqualTo("a"));

        var drainedAt = fleet.Elapsed;
        var change = fleet.Pipeline.DrainHost("a", "alice");
        var evacuation = fleet.Decisions.Single(d => d.IsMove);
        fleet.Replay(TimeSpan.FromSeconds(180), Steady);
        var whileDrained = fleet.Decisions.Where(d => d.At - VirtualClock.Epoch > drainedAt + TimeSpan.FromSeconds(90)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That((change.Changed, change.After.IsDrained("a"), fleet.Pipeline.Rules.IsDrained("a")), Is.EqualTo((true, true, true)));
            Assert.That(evacuation.At - VirtualClock.Epoch, Is.EqualTo(drainedAt), "the drain triggers an evaluation at once");
            Assert.That((evacuation.Reason, evacuation.HeldBy, evacuation.TargetHost), Is.EqualTo((DecisionReason.RuleRequiresMove, PlacementRuleKind.Drained, "c")));
            Assert.That(fleet.VmHost, Is.EqualTo("c"));
            Assert.That(fleet.Moves.Count(), Is.EqualTo(1), "no decision moves it back while a is drained");
            Assert.That(whileDrained, Is.Not.Empty);
            Assert.That(whileDrained.Select(d => (d.Reason, d.HeldBy, d.TargetHost)), Has.All.EqualTo((DecisionReason.HeldByRule, PlacementRuleKind.Drained, "a")));
        }

        fleet.Pipeline.UndrainHost("a", "alice");
        fleet.Replay(TimeSpan.FromSeconds(60), Steady);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.VmHost, Is.EqualTo("a"), "undrained, a is the best host again");
            Assert.That(events.Select(e => (e.Action, e.Host, e.RequestedBy, e.Changed)), Is.EqualTo(new[]
            {
                (PlacementAction.DrainHost, (string?)"a", (string?)"alice", true),
                (PlacementAction.UndrainHost, (string?)"a", (string?)"alice", true),
            }));
            Assert.That(events[0].Rules.IsDrained("a"), Is.True);
            Assert.That(events[1].Rules.IsDrained("a"), Is.False);
        }
    }

    [Test]
    public async Task DrainHost_Twice_SecondChangesNothingButIsPublished()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory);
        var events = new List<PlacementControlEvent>();
        fleet.Pipeline.ControlEvents.Subscribe(events.Add);
        var first = fleet.Pipeline.DrainHost("b");
        var second = fleet.Pipeline.DrainHost("b");
        using (Assert.EnterMultipleScope())
        {
            Assert.That((first.Changed, second.Changed), Is.EqualTo((true, false)));
            Assert.That(second.After, Is.SameAs(second.Before));
            Assert.That(events.Select(e => e.Changed), Is.EqualTo(new[] { true, false }));
            Assert.That(events[1].Explanation, Does.StartWith("No change"));
        }
    }

    [Test]
    public async Task DrainAndPin_UnknownName_ThrowTypedAndChangeNothing()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory);
        var events = new List<PlacementControlEvent>();
        fleet.Pipeline.ControlEvents.Subscribe(events.Add);
        var host = Assert.Throws<UnknownPlacementNameException>(() => fleet.Pipeline.DrainHost("zz"))!;
        var vm = Assert.Throws<UnknownPlacementNameException>(() => fleet.Pipeline.PinVm("ghost"))!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That((host.Kind, host.Name), Is.EqualTo((PlacementNameKind.Host, "zz")));
            Assert.That((vm.Kind, vm.Name), Is.EqualTo((PlacementNameKind.Vm, "ghost")));
            Assert.That(host.Message, Does.Contain("a, b, c"));
            Assert.That(fleet.Pipeline.Rules, Is.SameAs(PlacementRules.Empty));
            Assert.That(events, Is.Empty);
        }
    }

    [Test]
    public async Task PinVm_BetterHostAppears_NeverMovesUntilUnpinned()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        fleet.Pipeline.PinVm("vm", "ops");
        fleet.Replay(TimeSpan.FromSeconds(180), StepTrace);
        var afterStep = fleet.Decisions.Where(d => d.At - VirtualClock.Epoch > Step).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.MigrationCalls, Is.Zero);
            Assert.That(afterStep.Select(d => (d.Reason, d.HeldBy, d.TargetHost)), Has.All.EqualTo((DecisionReason.Pinned, PlacementRuleKind.Pinned, "b")));
        }

        fleet.Pipeline.UnpinVm("vm", "ops");
        fleet.Replay(TimeSpan.FromSeconds(30), StepTrace);
        Assert.That(fleet.VmHost, Is.EqualTo("b"));
    }

    [Test]
    public async Task ReplaceRules_AntiAffinityPair_NeverShareAHost()
    {
        // vm2 runs on b; after the step b is best for both, c second: vm goes to c, never to b.
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, extraVms: ["vm2"], arrange: h => h["b"].AddVm("vm2"));
        fleet.Pipeline.ReplaceRules(new PlacementRules { AntiAffinityGroups = [Group("spread", "vm", "vm2")] }, "config");
        fleet.Replay(TimeSpan.FromSeconds(180), StepTrace);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.VmHost, Is.EqualTo("c"));
            Assert.That(fleet.Moves.Select(d => d.TargetHost), Has.None.EqualTo("b"));
            Assert.That(fleet.Hosts["b"].Vms.Select(v => v.Name), Is.EqualTo(new[] { "vm2" }));
        }
    }

    [Test]
    public async Task ReplaceRules_Invalid_ThrowsListingEveryErrorAndKeepsTheOldRules()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory);
        fleet.Pipeline.DrainHost("b");
        var before = fleet.Pipeline.Rules;
        var e = Assert.Throws<OptionsValidationException>(() => fleet.Pipeline.ReplaceRules(new PlacementRules { DrainedHosts = ["x"], PinnedVms = ["ghost"] }))!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(e.Errors.Select(x => x.Path), Is.EquivalentTo(new[] { "DrainedHosts[0]", "PinnedVms[0]" }));
            Assert.That(fleet.Pipeline.Rules, Is.SameAs(before));
        }
    }

    [Test]
    public void Build_InvalidRules_ThrowsListingEveryError()
    {
        var builder = new MigrationPipelineBuilder()
            .WithSamples(System.Reactive.Linq.Observable.Never<Cloudlets.Core.Probing.LatencySample>())
            .AddHost(new FakeHypervisorHost("a"), "a")
            .AddVm("vm", "edge")
            .WithRules(new PlacementRules { DrainedHosts = ["b"], AntiAffinityGroups = [Group("g", "vm")] });
        var e = Assert.Throws<OptionsValidationException>(() => builder.Build())!;
        Assert.That(e.Errors.Select(x => x.Path), Is.EquivalentTo(new[] { "DrainedHosts[0]", "AntiAffinityGroups[0].Vms" }));
    }

    [Test]
    public async Task MoveNowAsync_AllowedMove_StartsThroughTheExecutorAndIsPublished()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        var events = new List<PlacementControlEvent>();
        fleet.Pipeline.ControlEvents.Subscribe(events.Add);
        fleet.Replay(TimeSpan.FromSeconds(10), Steady);
        var result = await fleet.Pipeline.MoveNowAsync("vm", "b", "bob");
        Assert.That(result.Started, Is.True, result.Explanation);
        fleet.Replay(TimeSpan.FromSeconds(20), Steady); // past the improvement check's delay
        var outcome = await result.Handle!.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Refusal, Is.EqualTo(MoveNowRefusal.None));
            Assert.That((outcome.Kind, outcome.Source, outcome.Destination), Is.EqualTo((MigrationOutcomeKind.Succeeded, "a", "b")));
            Assert.That(fleet.VmHost, Is.EqualTo("b"), "an order: latency is worse on b, and it moves anyway");
            Assert.That(events.Select(e => (e.Action, e.Vm, e.Host, e.RequestedBy, e.Changed, e.Refusal)),
                Is.EqualTo(new[] { (PlacementAction.MoveNow, (string?)"vm", (string?)"b", (string?)"bob", true, MoveNowRefusal.None) }));
        }
    }

    public sealed record RefusalCase(
        MoveNowRefusal Expected,
        Func<TraceFleet, Task<MoveNowResult>> Act,
        PipelineMode Mode = PipelineMode.Automatic,
        string[]? ExtraVms = null,
        Action<IReadOnlyDictionary<string, FakeHypervisorHost>>? Arrange = null,
        Action<MigrationPipelineBuilder>? Build = null)
    {
        public override string ToString() => Expected.ToString();
    }

    private static IEnumerable<RefusalCase> Refusals()
    {
        yield return new(MoveNowRefusal.UnknownVm, f => f.Pipeline.MoveNowAsync("ghost", "b"));
        yield return new(MoveNowRefusal.UnknownHost, f => f.Pipeline.MoveNowAsync("vm", "zz"));
        yield return new(MoveNowRefusal.AlreadyThere, f => f.Pipeline.MoveNowAsync("vm", "a"));
        yield return new(MoveNowRefusal.AdvisoryMode, f => f.Pipeline.MoveNowAsync("vm", "b"), Mode: PipelineMode.Advisory);
        yield return new(MoveNowRefusal.PlacementUnknown, f => f.Pipeline.MoveNowAsync("vm", "c"), Arrange: h => h["b"].AddVm("vm"));
        yield return new(MoveNowRefusal.Pinned, f =>
        {
            f.Pipeline.PinVm("vm");
            return f.Pipeline.MoveNowAsync("vm", "b");
        });
        yield return new(MoveNowRefusal.DestinationDrained, f =>
        {
            f.Pipeline.DrainHost("b");
            return f.Pipeline.MoveNowAsync("vm", "b");
        });
        yield return new(MoveNowRefusal.DestinationExcluded, f =>
        {
            f.Pipeline.ReplaceRules(new PlacementRules { ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["vm"] = ["b"] } });
            return f.Pipeline.MoveNowAsync("vm", "b");
        });
        yield return new(MoveNowRefusal.AntiAffinity, f =>
        {
            f.Pipeline.ReplaceRules(new PlacementRules { AntiAffinityGroups = [Group("spread", "vm", "vm2")] });
            return f.Pipeline.MoveNowAsync("vm", "b");
        }, ExtraVms: ["vm2"], Arrange: h => h["b"].AddVm("vm2"));
        yield return new(MoveNowRefusal.Affinity, f =>
        {
            f.Pipeline.ReplaceRules(new PlacementRules { AffinityGroups = [Group("together", "vm", "vm2")] });
            return f.Pipeline.MoveNowAsync("vm2", "b"); // vm leads the group; vm2 alone may not leave it
        }, ExtraVms: ["vm2"], Arrange: h => h["a"].AddVm("vm2"));
        yield return new(MoveNowRefusal.NoCapacity, f => f.Pipeline.MoveNowAsync("vm", "b"), Arrange: h => h["b"].FreeMemoryBytes = 100L << 20);
        yield return new(MoveNowRefusal.DestinationUnavailable, f =>
        {
            f.Hosts["b"].Answering = false;
            f.Replay(TimeSpan.FromSeconds(20), Steady); // the next periodic read finds it gone
            return f.Pipeline.MoveNowAsync("vm", "b");
        });
        yield return new(MoveNowRefusal.SourceUnavailable, f =>
        {
            f.Hosts["a"].Answering = false;
            f.Replay(TimeSpan.FromSeconds(20), Steady);
            return f.Pipeline.MoveNowAsync("vm", "b");
        });
        yield return new(MoveNowRefusal.AlreadyMigrating, async f =>
        {
            f.Hosts["a"].MigrationMode = FakeMigrationMode.Manual;
            Assert.That((await f.Pipeline.MoveNowAsync("vm", "b")).Started, Is.True);
            return await f.Pipeline.MoveNowAsync("vm", "c");
        });
        yield return new(MoveNowRefusal.LimitReached, async f =>
        {
            f.Hosts["a"].MigrationMode = FakeMigrationMode.Manual;
            Assert.That((await f.Pipeline.MoveNowAsync("vm", "b")).Started, Is.True);
            return await f.Pipeline.MoveNowAsync("vm2", "b"); // one migration per host at a time
        }, ExtraVms: ["vm2"], Arrange: h => h["c"].AddVm("vm2"));
        yield return new(MoveNowRefusal.NotLeading, f => f.Pipeline.MoveNowAsync("vm", "b"), Build: b => b.WithStartGate(new RefusingGate()));
        yield return new(MoveNowRefusal.NotRunning, async f =>
        {
            await f.Pipeline.StopAsync();
            return await f.Pipeline.MoveNowAsync("vm", "b");
        });
    }

    [TestCaseSource(nameof(Refusals))]
    public async Task MoveNowAsync_Unsafe_RefusedWithTypedReasonAndPublished(RefusalCase c)
    {
        await using var fleet = TraceFleet.Start(c.Mode, extraVms: c.ExtraVms, arrange: c.Arrange, build: c.Build);
        var events = new List<PlacementControlEvent>();
        fleet.Pipeline.ControlEvents.Subscribe(events.Add);
        fleet.Replay(TimeSpan.FromSeconds(2), Steady);
        var callsBefore = fleet.MigrationCalls;
        var result = await c.Act(fleet);
        var last = events.Last(e => e.Action == PlacementAction.MoveNow);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Refusal, Is.EqualTo(c.Expected), result.Explanation);
            Assert.That(result.Started, Is.False);
            Assert.That(result.Explanation, Is.Not.Empty);
            Assert.That((last.Refusal, last.Changed), Is.EqualTo((c.Expected, false)));
            Assert.That(fleet.MigrationCalls - callsBefore, Is.LessThanOrEqualTo(c.Expected is MoveNowRefusal.AlreadyMigrating or MoveNowRefusal.LimitReached ? 1 : 0), "nothing started beyond the first move of the case");
        }
    }

    [Test]
    public async Task StartGate_Refuses_AutomaticMovesSkippedWithoutBackoffThenRunWhenAllowed()
    {
        var gate = new RefusingGate();
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, build: b => b.WithStartGate(gate));
        fleet.Replay(TimeSpan.FromSeconds(120), StepTrace);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes, Is.Not.Empty);
            Assert.That(fleet.Outcomes.Select(o => o.Kind), Has.All.EqualTo(MigrationOutcomeKind.Skipped));
            Assert.That(fleet.MigrationCalls, Is.Zero);
            Assert.That(fleet.Decisions.SelectMany(d => d.Candidates).Select(c => c.Status), Has.None.EqualTo(CandidateStatus.BackedOff), "a skipped move backs no host off");
        }

        gate.Allow = true;
        fleet.Replay(TimeSpan.FromSeconds(20), StepTrace); // confirmation starts again after each skipped move
        Assert.That(fleet.VmHost, Is.EqualTo("b"));
    }

    private sealed class RefusingGate : IMigrationStartGate
    {
        public bool Allow { get; set; }

        public ValueTask<MigrationStartVerdict> CheckAsync(MigrationRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(Allow ? MigrationStartVerdict.Allow : MigrationStartVerdict.Refuse("another instance leads"));
    }
}
