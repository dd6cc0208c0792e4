using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>
/// Migrations under way that this instance did not start, found from the source's job
/// (<see cref="VmInfo.OutgoingMigration"/>, as libvirt keeps it on the source for any connection to
/// read) even where placement shows nothing: no paused copy listed yet, or the destination outside
/// this fleet. They count against the limits, their VMs are not moved, and each one's outcome is
/// reported when the job ended, timed from the job's start.
/// </summary>
public partial class MigrationPipelineTests
{
    private static readonly TimeSpan JobRanBeforeFound = TimeSpan.FromSeconds(20);

    private static VmInfo WithOutgoingJob(VmInfo vm, TimeSpan elapsed) =>
        vm with { OutgoingMigration = new MigrationProgress(elapsed, 64L << 20, 192L << 20, 256L << 20, 0, 1, TimeSpan.FromMilliseconds(300), 8L << 20) };

    /// <summary>Replaces the VM's entry on the host: <paramref name="change"/> of what the host lists.</summary>
    private static void Relist(FakeHypervisorHost host, string vm, Func<VmInfo, VmInfo> change)
    {
        var info = host.Vms.Single(v => v.Name == vm);
        host.Remove(vm);
        host.Add(change(info));
    }

    [Test]
    public async Task Evaluate_SourceJobWithNoIncomingCopySeen_VmNotMovedAndOutcomeTimedFromTheJobsStart()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, arrange: h => Relist(h["a"], "vm", v => WithOutgoingJob(v, JobRanBeforeFound)));
        fleet.Replay(TimeSpan.FromSeconds(60), BIsBest);
        var during = fleet.Decisions.Where(d => d.VmName == "vm").ToList();
        var callsDuring = fleet.MigrationCalls;
        Arrive(fleet, "vm", "a", "b"); // the job ended: the VM runs on b, a lists it no more
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(during, Is.Not.Empty);
            Assert.That(during.Select(d => d.Reason), Is.All.EqualTo(DecisionReason.MigrationInProgress), "the source's job alone shows the migration: the VM is not moved again");
            Assert.That(callsDuring, Is.Zero, "this instance called no migration while the other one ran");
            Assert.That(fleet.Outcomes, Has.Count.EqualTo(1), string.Join("; ", fleet.Outcomes.Select(o => $"{o.Kind} {o.Source}->{o.Destination} elsewhere={o.StartedElsewhere}")));
            var outcome = fleet.Outcomes[0];
            Assert.That((outcome.Kind, outcome.Source, outcome.Destination, outcome.StartedElsewhere), Is.EqualTo((MigrationOutcomeKind.Succeeded, "a", "b", true)), "succeeded to where the VM ended up");
            Assert.That(outcome.Duration, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(60) + JobRanBeforeFound), "timed from the job's start, not from when it was found");
            Assert.That(outcome.Result?.TotalTime, Is.EqualTo(outcome.Duration));
        }
    }

    [Test]
    public async Task Evaluate_SourceJobEndsWithTheVmOnTheSource_FailedOutcomeWithoutDestinationAndVmMovableAgain()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.Cooldown = TimeSpan.FromSeconds(1), arrange: h => Relist(h["a"], "vm", v => WithOutgoingJob(v, JobRanBeforeFound)));
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);
        var callsDuring = fleet.MigrationCalls;
        Relist(fleet.Hosts["a"], "vm", v => v with { OutgoingMigration = null }); // the job ended (failed or aborted), the VM still on a
        fleet.Replay(TimeSpan.FromSeconds(60), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(callsDuring, Is.Zero, "no migration of this instance while the other one's job ran");
            Assert.That(fleet.Outcomes.Select(o => (o.Kind, o.Source, o.Destination, o.StartedElsewhere)).FirstOrDefault(), Is.EqualTo((MigrationOutcomeKind.Failed, "a", string.Empty, true)), "failed, its destination never seen");
            Assert.That(fleet.Outcomes.FirstOrDefault()?.Error?.Message, Does.Contain("to a host not seen, started by another instance, ended with the VM on 'a'"));
            Assert.That(fleet.MigrationCalls, Is.EqualTo(1), "once it ended, this instance moves the VM itself");
            Assert.That(fleet.VmHost, Is.EqualTo("b"));
        }
    }

    [Test]
    public async Task Evaluate_SourceJobWithNoIncomingCopySeen_CountsAgainstTheSourcesLimit()
    {
        await using var fleet = TraceFleet.Start(
            PipelineMode.Automatic,
            options: o => o.Executor.MaxConcurrentPerHost = 1,
            extraVms: ["vm2"],
            arrange: h =>
            {
                Relist(h["a"], "vm", v => WithOutgoingJob(v, JobRanBeforeFound));
                h["a"].AddVm("vm2");
            });
        fleet.Replay(TimeSpan.FromSeconds(60), BIsBest);
        var held = fleet.Decisions.Where(d => d.VmName == "vm2" && d.Reason == DecisionReason.MigrationLimitReached).ToList();
        var callsDuring = fleet.MigrationCalls;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(held, Is.Not.Empty, "vm2's move waits: host a already takes part in the other instance's migration");
            Assert.That(held.FirstOrDefault()?.Explanation, Does.Contain("host 'a' already takes part in 1 migration(s), the limit per host is 1"));
            Assert.That(callsDuring, Is.Zero);
        }
    }

    // In post-copy the source lists the VM paused (its job still runs) and the destination runs it: placement
    // alone reads that backwards (source b, destination a). The job says which host is the source.
    [Test]
    public async Task Evaluate_SourceJobInPostCopy_SourceIsTheHostWithTheJobAndTheEndIsASuccess()
    {
        await using var fleet = TraceFleet.Start(
            PipelineMode.Automatic,
            arrange: h =>
            {
                Relist(h["a"], "vm", v => WithOutgoingJob(v, JobRanBeforeFound) with { State = VmState.Paused });
                h["b"].AddVm("vm");
            });
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);
        fleet.Hosts["a"].Remove("vm"); // post-copy done: the source let the VM go
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes.Select(o => (o.Kind, o.Source, o.Destination, o.StartedElsewhere)), Is.EqualTo(new[] { (MigrationOutcomeKind.Succeeded, "a", "b", true) }));
            Assert.That(fleet.MigrationCalls, Is.Zero);
        }
    }

    [Test]
    public async Task Evaluate_StaleReadShowsSourceJobRightAfterOwnMigration_NoMigrationStartedElsewhere()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, options: o => o.PlacementRefreshInterval = TimeSpan.FromSeconds(2));
        for (var second = 0; second < 120 && fleet.Outcomes.Count == 0; second++)
        {
            fleet.Replay(TimeSpan.FromSeconds(1), BIsBest);
        }

        Assert.That(fleet.Outcomes.Select(o => (o.Kind, o.Destination)), Is.EqualTo(new[] { (MigrationOutcomeKind.Succeeded, "b") }), "this instance's own move to b");

        // A read begun while the move ran: the source still lists the VM with its outgoing job for a moment.
        fleet.Hosts["a"].Add(WithOutgoingJob(fleet.Hosts["b"].Vms.Single(v => v.Name == "vm"), TimeSpan.FromSeconds(1)));
        fleet.Replay(TimeSpan.FromSeconds(4), BIsBest);
        fleet.Hosts["a"].Remove("vm");
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes, Has.Count.EqualTo(1), string.Join("; ", fleet.Outcomes.Select(o => $"{o.Kind} {o.Source}->{o.Destination} elsewhere={o.StartedElsewhere}")));
            Assert.That(fleet.VmHost, Is.EqualTo("b"));
        }
    }
}
