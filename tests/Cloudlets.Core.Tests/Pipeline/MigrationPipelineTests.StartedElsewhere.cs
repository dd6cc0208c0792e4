using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>
/// Migrations under way that this instance did not start (a leader before a takeover started them):
/// the pipeline finds them on the hosts (the VM running on its source, a paused copy on the destination,
/// as libvirt shows an incoming migration), counts them against the limits, does not move their VMs,
/// and reports each one's outcome when it ends.
/// </summary>
public partial class MigrationPipelineTests
{
    private static double? BIsBest(TimeSpan t, string host) => host == "b" ? 20 : 300;

    private static VmInfo Incoming(string vm) => new(vm, Guid.NewGuid(), VmState.Paused, 256L << 20, 256L << 20, 1, false);

    private static void Arrive(TraceFleet fleet, string vm, string from, string to)
    {
        fleet.Hosts[from].Remove(vm);
        fleet.Hosts[to].Remove(vm);
        fleet.Hosts[to].AddVm(vm);
    }

    [Test]
    public async Task Evaluate_MigrationStartedElsewhere_VmNotMovedAndOutcomeReportedWhenItEnds()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, arrange: h => h["b"].Add(Incoming("vm")));
        fleet.Replay(TimeSpan.FromSeconds(60), BIsBest);
        var during = fleet.Decisions.Where(d => d.VmName == "vm").ToList();
        Arrive(fleet, "vm", "a", "b");
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(during, Is.Not.Empty);
            Assert.That(during.Select(d => d.Reason), Is.All.EqualTo(DecisionReason.MigrationInProgress), "a VM being migrated by another instance is not moved again");
            Assert.That(fleet.MigrationCalls, Is.Zero, "this instance never called a migration");
            Assert.That(fleet.Outcomes, Has.Count.EqualTo(1));
            var outcome = fleet.Outcomes[0];
            Assert.That((outcome.Kind, outcome.Source, outcome.Destination, outcome.StartedElsewhere), Is.EqualTo((MigrationOutcomeKind.Succeeded, "a", "b", true)));
            Assert.That(outcome.Result?.TotalTime, Is.EqualTo(outcome.Duration));
            Assert.That(outcome.Duration, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(60)), "from when it was found to when it was seen ended");
            Assert.That(fleet.Decisions.Last(d => d.VmName == "vm").Reason, Is.EqualTo(DecisionReason.AlreadyBest));
        }
    }

    [Test]
    public async Task Evaluate_MigrationStartedElsewhereEndsOnSource_FailedOutcomeAndVmMovableAgain()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.Cooldown = TimeSpan.FromSeconds(1), arrange: h => h["b"].Add(Incoming("vm")));
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);
        fleet.Hosts["b"].Remove("vm"); // the incoming copy went away: the migration failed, the VM stays on a
        fleet.Replay(TimeSpan.FromSeconds(60), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes.Select(o => (o.Kind, o.StartedElsewhere)).First(), Is.EqualTo((MigrationOutcomeKind.Failed, true)));
            Assert.That(fleet.Outcomes[0].Error?.Message, Does.Contain("started by another instance, ended with the VM on 'a'"));
            Assert.That(fleet.MigrationCalls, Is.EqualTo(1), "once it ended, this instance moves the VM itself");
            Assert.That(fleet.VmHost, Is.EqualTo("b"));
        }
    }

    [Test]
    public async Task Evaluate_MigrationStartedElsewhere_CountsAgainstThePerHostLimit()
    {
        await using var fleet = TraceFleet.Start(
            PipelineMode.Automatic,
            options: o => o.Executor.MaxConcurrentPerHost = 1,
            extraVms: ["vm2"],
            arrange: h =>
            {
                h["a"].AddVm("vm2");
                h["b"].Add(Incoming("vm"));
            });
        fleet.Replay(TimeSpan.FromSeconds(60), BIsBest);
        var held = fleet.Decisions.Where(d => d.VmName == "vm2" && d.Reason == DecisionReason.MigrationLimitReached).ToList();
        var callsDuring = fleet.MigrationCalls;
        Arrive(fleet, "vm", "a", "b");
        fleet.Replay(TimeSpan.FromSeconds(60), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(held, Is.Not.Empty, "vm2's move waits: host a already takes part in the other instance's migration");
            Assert.That(held[0].Explanation, Does.Contain("already takes part in 1 migration(s), the limit per host is 1"));
            Assert.That(callsDuring, Is.Zero);
            Assert.That(fleet.Hosts["b"].Vms.Select(v => v.Name), Is.EquivalentTo(new[] { "vm", "vm2" }), "after it ended, vm2 moved");
            Assert.That(fleet.Outcomes.Count(o => o.StartedElsewhere), Is.EqualTo(1));
        }
    }
}
