using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>
/// Right after this instance's own migration, a host read that began while it ran can still land and show
/// the VM on two hosts (running on one, a paused copy on the other). That is not a migration started
/// elsewhere: no phantom outcome, no "in progress" hold of the VM's next decision beyond the grace.
/// </summary>
public partial class MigrationPipelineTests
{
    [Test]
    public async Task Evaluate_StaleReadShowsPausedCopyRightAfterOwnMigration_NoMigrationStartedElsewhere()
    {
        await using var fleet = TraceFleet.Start(PipelineMode.Automatic, options: o => o.PlacementRefreshInterval = TimeSpan.FromSeconds(2));
        for (var second = 0; second < 120 && fleet.Outcomes.Count == 0; second++)
        {
            fleet.Replay(TimeSpan.FromSeconds(1), BIsBest);
        }

        Assert.That(fleet.Outcomes.Select(o => (o.Kind, o.Destination)), Is.EqualTo(new[] { (MigrationOutcomeKind.Succeeded, "b") }), "this instance's own move to b");

        // A stale read: the source still lists a paused copy for a moment, then it is gone.
        fleet.Hosts["a"].Add(Incoming("vm"));
        fleet.Replay(TimeSpan.FromSeconds(4), BIsBest);
        fleet.Hosts["a"].Remove("vm");
        fleet.Replay(TimeSpan.FromSeconds(30), BIsBest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Outcomes, Has.Count.EqualTo(1), string.Join("; ", fleet.Outcomes.Select(o => $"{o.Kind} {o.Source}->{o.Destination} elsewhere={o.StartedElsewhere}")));
            Assert.That(fleet.Outcomes.Any(o => o.StartedElsewhere), Is.False);
            Assert.That(fleet.VmHost, Is.EqualTo("b"));
        }
    }
}
