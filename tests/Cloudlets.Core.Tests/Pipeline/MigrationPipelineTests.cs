using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

public partial class MigrationPipelineTests
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(60);

    // Before the step: a is best (20 ms). From 60 s on: a is far (300 ms), b is near (20 ms).
    private static double? StepTrace(TimeSpan t, string host) => (t < Step, host) switch
    {
        (true, "a") => 20,
        (true, _) => 100,
        (false, "a") => 300,
        (false, "b") => 20,
        _ => 100,
    };

    [Test]
    public async Task Decisions_StepChange_OneMoveAfterConfirmationWindowsNotBefore()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        fleet.Replay(TimeSpan.FromSeconds(180), StepTrace);

        var vm = fleet.Decisions.Where(d => d.VmName == "vm").ToList();
        var moves = vm.Where(d => d.IsMove).ToList();
        Assert.That(moves, Has.Count.EqualTo(1));
        var move = moves[0];
        var index = vm.IndexOf(move);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(move.TargetHost, Is.EqualTo("b"));
            Assert.That(move.At - VirtualClock.Epoch, Is.GreaterThanOrEqualTo(Step + TimeSpan.FromSeconds(10)), "two windows of confirmation after the step");
            Assert.That(vm[index - 1].Reason, Is.EqualTo(DecisionReason.AwaitingConfirmation));
            Assert.That(vm[index - 1].ConfirmedWindows, Is.EqualTo(2));
            Assert.That(vm[index - 2].Reason, Is.EqualTo(DecisionReason.AwaitingConfirmation));
            Assert.That(vm[index - 2].ConfirmedWindows, Is.EqualTo(1));
            Assert.That(vm.Take(index - 2).All(d => !d.IsMove && d.Reason != DecisionReason.AwaitingConfirmation), Is.True);
            Assert.That(fleet.MigrationCalls, Is.EqualTo(1));
            Assert.That(fleet.VmHost, Is.EqualTo("b"));
            Assert.That(vm[^1].CurrentHost, Is.EqualTo("b"));
            Assert.That(vm[^1].Reason, Is.EqualTo(DecisionReason.AlreadyBest));
        }
    }

    [Test]
    public async Task Outcomes_StepChangeMove_SucceededAndLatencyImproved()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        fleet.Replay(TimeSpan.FromSeconds(180), StepTrace);

        Assert.That(fleet.Outcomes, Has.Count.EqualTo(1));
        var outcome = fleet.Outcomes[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That((outcome.Kind, outcome.Source, outcome.Destination), Is.EqualTo((MigrationOutcomeKind.Succeeded, "a", "b")));
            Assert.That(outcome.Improvement.Verdict, Is.EqualTo(ImprovementVerdict.Improved));
            Assert.That(outcome.Improvement.BeforeMs, Is.EqualTo(300));
            Assert.That(outcome.Improvement.AfterMs, Is.EqualTo(20));
        }
    }

    // a best, then (from 60 s) b, then (from 120 s) a again: a VM that follows moves twice.
    private static double? ThereAndBackTrace(TimeSpan t, string host) => (t.TotalSeconds, host) switch
    {
        ( < 60, "a") or ( >= 120, "a") => 20,
        ( >= 60 and < 120, "b") => 20,
        _ => 300,
    };

    [Test]
    public async Task Decisions_MigrationMeasuredDirtyRateAboveBandwidth_LaterMoveOfThatVmCostsTooMuch()
    {
        // The first move's job showed the VM dirtying 1,000,000 pages/s (4.1 GB/s), above the 125 MB/s the policy
        // assumes for the path: pre-copy of that VM cannot converge, so moving it back is not worth any gain.
        await using var fleet = TraceFleet.Start(
            PipelineMode.Automatic,
            arrange: h => h["a"].ReportDuringMigration = new MigrationProgress(TimeSpan.FromSeconds(1), 1L << 20, 1L << 28, 1L << 28, 1_000_000, 1, null, 125_000_000));
        fleet.Replay(TimeSpan.FromSeconds(240), ThereAndBackTrace);

        var last = fleet.Decisions.Last(d => d.VmName == "vm");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes.Select(o => (o.Source, o.Destination)), Is.EqualTo(new[] { ("a", "b") }), "one move only");
            Assert.That(fleet.Outcomes[0].Measured, Is.EqualTo(new MigrationMeasurements(125_000_000, 1_000_000.0 * MigrationMeasurements.PageSizeBytes)));
            Assert.That(last.CurrentHost, Is.EqualTo("b"));
            Assert.That(last.Reason, Is.EqualTo(DecisionReason.CostExceedsGain), last.Explanation);
        }
    }

    [Test]
    public async Task Decisions_NoMeasurement_SameTraceMovesThereAndBack()
    {
        // The control of the test above: without the measured dirty rate the policy's defaults let the VM follow.
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        fleet.Replay(TimeSpan.FromSeconds(240), ThereAndBackTrace);

        Assert.That(fleet.Outcomes.Select(o => (o.Source, o.Destination)), Is.EqualTo(new[] { ("a", "b"), ("b", "a") }));
        Assert.That(fleet.Outcomes.Select(o => o.Measured), Is.All.Null, "a migration without progress reports measured nothing");
    }

    [Test]
    public async Task Decisions_AdvisoryMode_RecommendsButNeverMigrates()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory);
        fleet.Replay(TimeSpan.FromSeconds(120), StepTrace);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Moves.Count(), Is.GreaterThanOrEqualTo(1));
            Assert.That(fleet.MigrationCalls, Is.Zero);
            Assert.That(fleet.VmHost, Is.EqualTo("a"));
            Assert.That(fleet.Outcomes, Is.Empty);
        }
    }

    [Test]
    public async Task Decisions_OscillatingTrace_AtMostOneMovePerCooldown()
    {
        // a and b swap between 20 and 300 ms every 30 s, for 10 minutes.
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.Cooldown = TimeSpan.FromSeconds(90));
        fleet.Replay(TimeSpan.FromMinutes(10), (t, host) =>
        {
            var aNear = (int)(t.TotalSeconds / 30) % 2 == 0;
            return host switch
            {
                "a" => aNear ? 20 : 300,
                "b" => aNear ? 300 : 20,
                _ => 200,
            };
        });

        var moves = fleet.Moves.Select(d => d.At).ToList();
        var gaps = moves.Zip(moves.Skip(1), (x, y) => y - x).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(moves, Has.Count.GreaterThanOrEqualTo(2), "the trace must provoke moves for the test to mean anything");
            Assert.That(moves, Has.Count.LessThanOrEqualTo(1 + (int)(TimeSpan.FromMinutes(10) / TimeSpan.FromSeconds(90))));
            Assert.That(gaps, Has.All.GreaterThanOrEqualTo(TimeSpan.FromSeconds(90)));
            Assert.That(fleet.MigrationCalls, Is.EqualTo(moves.Count));
        }
    }

    [Test]
    public async Task Decisions_ProbesStop_NoDecisionOnStaleData()
    {
        // The far host a and a near host b, but the probes stop at 10 s and the data is stale (30 s) before
        // ten windows (50 s) can confirm the move: it must not be made on stale data.
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.ConfirmationWindows = 10);
        fleet.Replay(TimeSpan.FromSeconds(120), (t, host) => t < TimeSpan.FromSeconds(10) ? (host == "a" ? 300 : 20) : null);

        var late = fleet.Decisions.Where(d => d.At - VirtualClock.Epoch > TimeSpan.FromSeconds(45)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(late, Is.Not.Empty);
            Assert.That(late.Select(d => (d.Kind, d.Reason)), Has.All.EqualTo((DecisionKind.NoDecision, DecisionReason.StaleData)));
            Assert.That(fleet.Moves, Is.Empty);
            Assert.That(fleet.MigrationCalls, Is.Zero);
        }
    }

    [Test]
    public async Task Decisions_BestHostFull_SkippedWithReasonAndNextBestChosen()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, arrange: h => h["b"].FreeMemoryBytes = 100L << 20);
        fleet.Replay(TimeSpan.FromSeconds(60), (t, host) => host switch { "a" => 300, "b" => 20, _ => 60 });

        var evaluated = fleet.Decisions.Where(d => d.Kind != DecisionKind.NoDecision).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(evaluated, Is.Not.Empty);
            Assert.That(evaluated.Select(d => d.Candidates.Single(c => c.Host == "b").Status), Has.All.EqualTo(CandidateStatus.NoCapacity));
            Assert.That(fleet.Moves.Select(d => d.TargetHost), Is.EqualTo(new List<string?> { "c" }));
            Assert.That(fleet.VmHost, Is.EqualTo("c"));
        }
    }

    [Test]
    public async Task Decisions_OnlyBetterHostFull_StaysWithNoCandidates()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, arrange: h => h["b"].FreeMemoryBytes = 100L << 20, hosts: ["a", "b"]);
        fleet.Replay(TimeSpan.FromSeconds(60), (t, host) => host == "a" ? 300 : 20);

        var evaluated = fleet.Decisions.Where(d => d.Kind != DecisionKind.NoDecision).ToList();
        Assert.That(evaluated.Select(d => (d.Reason, d.Candidates[1].Status)), Has.All.EqualTo((DecisionReason.NoCandidates, CandidateStatus.NoCapacity)));
        Assert.That(evaluated, Is.Not.Empty);
    }

    [Test]
    public async Task Decisions_TwoEqualBestHosts_NoMoveBetweenThem()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, hosts: ["b", "c", "a"]); // the VM starts on b
        fleet.Replay(TimeSpan.FromSeconds(120), (t, host) => host == "a" ? 300 : 20);

        var evaluated = fleet.Decisions.Where(d => d.Kind != DecisionKind.NoDecision).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(evaluated, Is.Not.Empty);
            Assert.That(evaluated.Select(d => d.Reason), Has.All.EqualTo(DecisionReason.Tie));
            Assert.That(fleet.MigrationCalls, Is.Zero);
        }
    }

    [Test]
    public async Task Decisions_Demonstration300_20_20_ExactlyOneMoveToA20msHost()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        fleet.Replay(TimeSpan.FromMinutes(5), (t, host) => host == "a" ? 300 : 20);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.MigrationCalls, Is.EqualTo(1));
            Assert.That(fleet.VmHost, Is.AnyOf("b", "c"));
            Assert.That(fleet.Decisions[^1].Reason, Is.EqualTo(DecisionReason.Tie));
        }
    }

    [Test]
    public async Task Decisions_LostProbesToHost_HostUnreachableNeverChosen()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        // b answers nothing (every probe times out); c answers the odd probe fast but loses 80 %.
        fleet.Replay(TimeSpan.FromSeconds(90), (t, host) => host switch
        {
            "a" => 100,
            "b" => double.NaN,
            _ => (int)t.TotalSeconds % 5 == 0 ? 1 : double.NaN,
        });

        var evaluated = fleet.Decisions.Where(d => d.Kind != DecisionKind.NoDecision).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(evaluated, Is.Not.Empty);
            Assert.That(evaluated.SelectMany(d => d.Candidates.Where(c => !c.IsCurrent)).Select(c => c.Status), Has.All.EqualTo(CandidateStatus.Unreachable));
            Assert.That(evaluated.Select(d => d.Reason), Has.All.EqualTo(DecisionReason.NoCandidates));
            Assert.That(fleet.MigrationCalls, Is.Zero);
        }
    }

    [Test]
    public async Task Decisions_ProbesToCurrentHostLost_MovesToReachableHost()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        fleet.Replay(TimeSpan.FromSeconds(90), (t, host) => host switch
        {
            "a" => t < TimeSpan.FromSeconds(30) ? 20 : double.NaN,
            "b" => 60,
            _ => 80,
        });

        var move = fleet.Moves.Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(move.TargetHost, Is.EqualTo("b"));
            Assert.That(move.CurrentScoreMs, Is.EqualTo(double.PositiveInfinity));
            Assert.That(move.Candidates[0].Status, Is.EqualTo(CandidateStatus.Unreachable));
        }
    }

    [Test]
    public async Task Decisions_HostStopsAnswering_LeavesCandidatesAndReturns()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.ConfirmationWindows = 1, arrange: h => h["b"].Answering = false);
        double? Trace(TimeSpan t, string host) => host switch { "a" => 300, "b" => 20, _ => null };
        fleet.Replay(TimeSpan.FromSeconds(60), Trace);
        var whileDown = fleet.Decisions.ToList();
        fleet.Hosts["b"].Answering = true;
        fleet.Replay(TimeSpan.FromSeconds(60), Trace);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(whileDown.Where(d => d.Kind != DecisionKind.NoDecision).Select(d => d.Candidates[1].Status), Has.All.EqualTo(CandidateStatus.HostDown));
            Assert.That(whileDown.Where(d => d.Kind != DecisionKind.NoDecision), Is.Not.Empty);
            Assert.That(whileDown.Any(d => d.IsMove), Is.False);
            Assert.That(fleet.Moves.Select(d => d.TargetHost), Is.EqualTo(new List<string?> { "b" }));
            Assert.That(fleet.VmHost, Is.EqualTo("b"));
        }
    }

    [Test]
    public async Task Decisions_HostHangs_LeavesCandidatesAfterHostTimeout()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory, options: o => o.HostTimeout = TimeSpan.FromSeconds(5));
        fleet.Replay(TimeSpan.FromSeconds(20), (t, h) => h == "a" ? 300 : 20);
        fleet.Hosts["b"].Hangs = true; // the refresh at 30 s hangs; 5 s later b is down
        fleet.Replay(TimeSpan.FromSeconds(40), (t, h) => h == "a" ? 300 : 20);

        var before = fleet.Decisions.Where(d => d.At - VirtualClock.Epoch is { TotalSeconds: > 15 and <= 30 }).ToList();
        var after = fleet.Decisions.Where(d => d.At - VirtualClock.Epoch > TimeSpan.FromSeconds(35)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(before.Select(d => d.Candidates[1].Status), Has.All.EqualTo(CandidateStatus.Eligible));
            Assert.That(after, Is.Not.Empty);
            Assert.That(after.Select(d => d.Candidates[1].Status), Has.All.EqualTo(CandidateStatus.HostDown));
        }
    }

    [Test]
    public async Task Decisions_CurrentHostStopsAnswering_NoDecision()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic);
        fleet.Replay(TimeSpan.FromSeconds(20), (t, h) => 20);
        fleet.Hosts["a"].Answering = false;
        fleet.Replay(TimeSpan.FromSeconds(40), (t, h) => h == "a" ? 300 : 20);
        Assert.That(fleet.Decisions[^1].Reason, Is.EqualTo(DecisionReason.CurrentHostDown));
        Assert.That(fleet.MigrationCalls, Is.Zero);
    }

    [Test]
    public async Task Decisions_MigrationFails_HostBackedOffAndPipelineKeepsDeciding()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.ConfirmationWindows = 1, hosts: ["a", "b"]);
        fleet.Hosts["a"].MigrationMode = FakeMigrationMode.Fail;
        fleet.Replay(TimeSpan.FromSeconds(150), (t, host) => host == "a" ? 300 : 20);

        var failures = fleet.Outcomes.Select(o => o.FinishedAt).ToList();
        var gaps = failures.Zip(failures.Skip(1), (x, y) => y - x).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes, Has.Count.EqualTo(3));
            Assert.That(fleet.Outcomes.Select(o => o.Kind), Has.All.EqualTo(MigrationOutcomeKind.Failed));
            Assert.That(fleet.Outcomes.Select(o => o.Error), Has.All.InstanceOf<Cloudlets.Core.Hypervisors.HypervisorException>());
            Assert.That(gaps[0], Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(30)), "backed off 30 s after the first failure");
            Assert.That(gaps[1], Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(60)), "then 60 s");
            Assert.That(fleet.Decisions.Any(d => d.Kind != DecisionKind.NoDecision && d.Candidates[1].Status == CandidateStatus.BackedOff), Is.True);
            Assert.That(fleet.VmHost, Is.EqualTo("a"));
            Assert.That(fleet.Decisions[^1].At - VirtualClock.Epoch, Is.EqualTo(TimeSpan.FromSeconds(150)), "the pipeline keeps deciding");
        }
    }

    [Test]
    public async Task Decisions_ExecutorLimitReached_MoveHeldBackWithReasonThenMade()
    {
        // Two VMs want to leave a; one migration per host at a time, and the first one hangs for 30 s.
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.ConfirmationWindows = 1, extraVms: ["vm2"]);
        fleet.Hosts["a"].AddVm("vm2");
        fleet.Hosts["a"].MigrationMode = FakeMigrationMode.Manual;
        fleet.Replay(TimeSpan.FromSeconds(30), (t, h) => h == "a" ? 300 : 20);
        fleet.Hosts["a"].Pending[0].Succeed();
        fleet.Replay(TimeSpan.FromSeconds(10), (t, h) => h == "a" ? 300 : 20);

        var held = fleet.Decisions.Where(d => d.Reason == DecisionReason.MigrationLimitReached).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(held, Is.Not.Empty);
            Assert.That(held[0].Kind, Is.EqualTo(DecisionKind.Stay));
            Assert.That(held[0].Explanation, Does.Contain("limit per host is 1"));
            Assert.That(fleet.Hosts["a"].Pending, Has.Count.EqualTo(2), "the held-back move starts once the host is free");
        }
    }

    [Test]
    public void Build_Twice_Throws()
    {
        var builder = new MigrationPipelineBuilder()
            .WithSamples(System.Reactive.Linq.Observable.Never<Cloudlets.Core.Probing.LatencySample>())
            .AddHost(new FakeHypervisorHost("a"), "a")
            .AddVm("vm", "edge");
        _ = builder.Build();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(builder.Build, Throws.InvalidOperationException.With.Message.Contains("already built"));
            Assert.That(() => builder.AddVm("vm2", "edge"), Throws.InvalidOperationException.With.Message.Contains("already built"));
            Assert.That(() => builder.Configure(o => o.SampleWindow = 3), Throws.InvalidOperationException.With.Message.Contains("already built"));
        }
    }

    [Test]
    public void Build_NoSamples_Throws() =>
        Assert.That(() => new MigrationPipelineBuilder().AddHost(new FakeHypervisorHost("a"), "a").AddVm("vm", "edge").Build(),
            Throws.InvalidOperationException.With.Message.Contains("WithSamples"));

    [Test]
    public void Build_SameProbeTargetForTwoHosts_Throws() =>
        Assert.That(() => new MigrationPipelineBuilder()
                .WithSamples(System.Reactive.Linq.Observable.Never<Cloudlets.Core.Probing.LatencySample>())
                .AddHost(new FakeHypervisorHost("a"), "t")
                .AddHost(new FakeHypervisorHost("b"), "t")
                .AddVm("vm", "edge")
                .Build(),
            Throws.ArgumentException.With.Message.Contains("'t'"));

    [Test]
    public void Build_InvalidOptions_ThrowsListingThem() =>
        Assert.That(() => new MigrationPipelineBuilder()
                .WithSamples(System.Reactive.Linq.Observable.Never<Cloudlets.Core.Probing.LatencySample>())
                .AddHost(new FakeHypervisorHost("a"), "a")
                .AddVm("vm", "edge")
                .Configure(o =>
                {
                    o.EvaluationInterval = TimeSpan.Zero;
                    o.Executor.MaxConcurrentPerHost = 0;
                })
                .Build(),
            Throws.TypeOf<Cloudlets.Core.Options.OptionsValidationException>()
                .With.Property(nameof(Cloudlets.Core.Options.OptionsValidationException.Errors)).Matches<IReadOnlyList<Cloudlets.Core.Options.OptionsError>>(
                    e => e.Select(x => x.Path).SequenceEqual(new[] { "EvaluationInterval", "Executor.MaxConcurrentPerHost" })));

    [Test]
    public async Task PlacementOf_VmMovedOutsideThePipelineWithAnEvent_SeenWithinOneSecond()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory);
        fleet.Replay(TimeSpan.FromSeconds(3), (t, h) => 20);
        Assert.That(fleet.Pipeline.PlacementOf("vm"), Is.EqualTo("a"));

        // As `virsh migrate` would: the VM leaves a and runs on b, and both hosts say so.
        fleet.MoveOutside("vm", "a", "b");
        fleet.Hosts["a"].Emit(new VmLifecycleEvent("a", fleet.Clock.GetUtcNow(), "vm", VmLifecycle.Stopped, 3, ByMigration: true));
        fleet.Hosts["b"].Emit(new VmLifecycleEvent("b", fleet.Clock.GetUtcNow(), "vm", VmLifecycle.Started, 1, ByMigration: true));
        fleet.Clock.Step(TimeSpan.FromSeconds(1));

        Assert.That(fleet.Pipeline.PlacementOf("vm"), Is.EqualTo("b"));
    }

    [Test]
    public async Task PlacementOf_VmMovedOutsideThePipelineWithoutAnEvent_SeenOnlyAtThePeriodicRefresh()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory);
        fleet.Replay(TimeSpan.FromSeconds(3), (t, h) => 20);
        fleet.MoveOutside("vm", "a", "b");

        fleet.Clock.Step(TimeSpan.FromSeconds(1));
        Assert.That(fleet.Pipeline.PlacementOf("vm"), Is.EqualTo("a"), "no event: the change is not seen yet (the control for the test above)");
        fleet.Clock.Step(TimeSpan.FromSeconds(11)); // the refresh every 15 s
        Assert.That(fleet.Pipeline.PlacementOf("vm"), Is.EqualTo("b"));
    }

    [Test]
    public async Task StopAsync_MigrationRunning_NoNewWindowAndTheMigrationFinishes()
    {
        await using var fleet = TraceFleet.Start(
            PipelineMode.Automatic,
            options: o => o.Executor.ProgressTimeout = TimeSpan.FromMinutes(10), // the fake reports no progress
            arrange: h => h["a"].MigrationMode = FakeMigrationMode.Manual);
        fleet.Replay(TimeSpan.FromSeconds(90), StepTrace);
        Assert.That(fleet.Hosts["a"].Pending, Has.Count.EqualTo(1), "the step's move is running");

        var stop = fleet.Pipeline.StopAsync();
        var decisions = fleet.Decisions.Count;
        fleet.Replay(TimeSpan.FromSeconds(20), StepTrace);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(stop.IsCompleted, Is.False, "the stop waits for the running migration");
            Assert.That(fleet.Decisions, Has.Count.EqualTo(decisions), "no window after the stop");
        }

        fleet.Hosts["a"].Pending[0].Succeed();
        await stop.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes.Select(o => o.Kind), Is.EqualTo(new[] { MigrationOutcomeKind.Succeeded }));
            Assert.That(fleet.VmHost, Is.EqualTo("b"));
            Assert.That(fleet.Hosts["a"].Pending[0].WasCancelled, Is.False);
        }
    }

    [Test]
    public async Task StopAsync_StopTimeoutPasses_MigrationAbortedVmStaysOnSource()
    {
        await using var fleet = TraceFleet.Start(
            PipelineMode.Automatic,
            options: o =>
            {
                o.StopTimeout = TimeSpan.FromSeconds(5);
                o.Executor.ProgressTimeout = TimeSpan.FromMinutes(10);
            },
            arrange: h => h["a"].MigrationMode = FakeMigrationMode.Manual);
        fleet.Replay(TimeSpan.FromSeconds(90), StepTrace);
        Assert.That(fleet.Hosts["a"].Pending, Has.Count.EqualTo(1));

        var stop = fleet.Pipeline.StopAsync();
        fleet.Clock.Step(TimeSpan.FromSeconds(5));
        await stop.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes.Select(o => (o.Kind, o.AbortCause)), Is.EqualTo(new[] { (MigrationOutcomeKind.Aborted, MigrationAbortCause.Shutdown) }));
            Assert.That(fleet.VmHost, Is.EqualTo("a"));
        }
    }

    [Test]
    public async Task StartAsync_AfterStop_Throws()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Advisory);
        await fleet.Pipeline.StopAsync();
        Assert.That(() => fleet.Pipeline.StartAsync(), Throws.InvalidOperationException.With.Message.Contains("stopped"));
    }

    [Test]
    public async Task DisposeAsync_OwnedHostsAndResources_DisposedLeftOpenHostsNot()
    {
        var owned = new FakeHypervisorHost("a");
        owned.AddVm("vm");
        var leftOpen = new FakeHypervisorHost("b");
        var prober = new DisposalProbe();
        var pipeline = new MigrationPipelineBuilder()
            .WithSamples(System.Reactive.Linq.Observable.Never<Cloudlets.Core.Probing.LatencySample>())
            .AddHost(owned, "a")
            .AddHost(leftOpen, "b", leaveOpen: true)
            .Owns(prober)
            .AddVm("vm", "edge")
            .Build();
        await pipeline.StartAsync();

        await pipeline.DisposeAsync();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(owned.Disposed, Is.True);
            Assert.That(leftOpen.Disposed, Is.False);
            Assert.That(prober.Disposed, Is.True);
        }
    }

    private sealed class DisposalProbe : IAsyncDisposable
    {
        public bool Disposed { get; private set; }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
