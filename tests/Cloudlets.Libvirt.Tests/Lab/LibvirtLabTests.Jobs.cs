using System.Collections.Concurrent;
using System.Diagnostics;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests.Lab;

/// <summary>
/// A migration's job on its source, read by a process that did not start it (issue 17: a new leader
/// learns what is under way), and a migration's progress from job statistics (issue 15).
/// </summary>
public partial class LibvirtLabTests
{
    // Capped so the migration lasts seconds: long enough for several reads, short enough for CI.
    private const int JobBandwidthMiBps = 16;

    // virsh (another process, another connection) migrates the guest; the library's own connection
    // to the source, which started nothing, lists the guest with its outgoing migration while the
    // job runs, then without one after it ended. The destination's paused incoming copy is not
    // taken for an outgoing migration.
    [Test]
    [Order(20)]
    public async Task ListVmsAsync_MigrationStartedByAnotherProcess_SourceListsItsOutgoingJobWithProgressThenNone()
    {
        await using var source = await ConnectAsync(H1);
        await using var destination = await ConnectAsync(H2);
        var before = (await source.ListVmsAsync()).Single(v => v.Name == Guest.Name);

        var migration = Lab.MigrateWithVirshAsync(Guest, H1, H2, JobBandwidthMiBps);
        var listed = new List<MigrationProgress>();
        var lookedUp = new List<MigrationProgress>();
        var incoming = new List<VmInfo>();
        var clock = Stopwatch.StartNew();
        while (!migration.IsCompleted && clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            if ((await source.ListVmsAsync()).FirstOrDefault(v => v.Name == Guest.Name)?.OutgoingMigration is { } job)
            {
                listed.Add(job);
            }

            if ((await source.TryGetVmAsync(Guest.Name))?.OutgoingMigration is { } job2)
            {
                lookedUp.Add(job2);
            }

            if (await destination.TryGetVmAsync(Guest.Name) is { State: VmState.Paused } copy)
            {
                incoming.Add(copy);
            }

            await Task.WhenAny(migration, Task.Delay(200));
        }

        var virsh = await migration;
        var sourceAfter = (await source.ListVmsAsync()).FirstOrDefault(v => v.Name == Guest.Name);
        var destinationAfter = await destination.TryGetVmAsync(Guest.Name);
        TestContext.Out.WriteLine($"virsh migrate took {clock.Elapsed.TotalSeconds:0.0} s; the source listed the job {listed.Count} times, looked up {lookedUp.Count} times; the destination showed a paused copy {incoming.Count} times");
        foreach (var p in listed)
        {
            TestContext.Out.WriteLine($"  {p}");
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(virsh.Succeeded, Is.True, $"virsh migrate failed: {virsh.StandardError}");
            Assert.That(before.OutgoingMigration, Is.Null, "no outgoing migration was listed before virsh started one");
            Assert.That(listed, Has.Count.GreaterThanOrEqualTo(2), "the source's list showed virsh's migration job on at least two reads while it ran");
            Assert.That(lookedUp, Is.Not.Empty, "looking the VM up on the source showed the job too");
            Assert.That(listed.Where(p => p.DataTotalBytes > 0).Select(p => p.DataProcessedBytes).Distinct().Count(), Is.GreaterThanOrEqualTo(2), "the listed job's progress (data processed of its total) moved between reads");
            Assert.That(listed, Has.All.Matches<MigrationProgress>(p => p.Elapsed > TimeSpan.Zero), "every listed job says how long it has run");
            Assert.That(incoming.Select(v => v.OutgoingMigration), Has.All.Null, "the destination's paused incoming copy is not an outgoing migration");
            Assert.That(sourceAfter?.OutgoingMigration, Is.Null, "after the migration ended the source lists no job");
            Assert.That(destinationAfter, Is.Not.Null.And.Property(nameof(VmInfo.State)).EqualTo(VmState.Running), "the guest runs on the destination");
            Assert.That(destinationAfter?.OutgoingMigration, Is.Null, "the destination, now running the guest, lists no outgoing migration");
        }
    }

    // Progress comes from the source's job statistics at the default interval (250 ms, at least twice a
    // second): a capped migration reports several distinct intermediate values, each with the data
    // total, processed and remaining, the pass over memory and the dirty rate.
    [Test]
    [Order(21)]
    public async Task MigrateAsync_BandwidthCappedAtDefaultInterval_ReportsAtLeastThreeDistinctIntermediateValuesFromJobStats()
    {
        await using var h1 = await ConnectAsync(H1);
        await using var h2 = await ConnectAsync(H2);
        var options = new MigrationOptions { BandwidthMiBps = JobBandwidthMiBps };
        var samples = new ConcurrentQueue<(TimeSpan At, MigrationProgress Progress)>();
        var clock = Stopwatch.StartNew();

        var result = await h1.MigrateAsync(Guest.Name, ToH2(h2), options, new SyncProgress(p => samples.Enqueue((clock.Elapsed, p))));

        var intermediate = samples.Select(s => s.Progress)
            .Where(p => p.DataProcessedBytes > 0 && p.DataRemainingBytes > 0 && p.DataTotalBytes > 0)
            .ToList();
        var distinct = intermediate.Select(p => (p.DataProcessedBytes, p.DataRemainingBytes)).Distinct().Count();

        // What a progress bar shows: whole percents strictly between 0 and 100.
        var percents = intermediate.Select(p => Math.Round(p.CompletedFraction.GetValueOrDefault() * 100)).Where(v => v is > 0 and < 100).Distinct().Count();
        TestContext.Out.WriteLine($"{samples.Count} samples in {result.TotalTime.TotalSeconds:0.0} s ({samples.Count / Math.Max(result.TotalTime.TotalSeconds, 0.001):0.0}/s) at interval {options.ProgressInterval.TotalMilliseconds} ms; {intermediate.Count} intermediate, {distinct} distinct, {percents} distinct percents");
        foreach (var (at, p) in samples)
        {
            TestContext.Out.WriteLine($"  {at.TotalMilliseconds,7:0} ms {p}");
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(options.ProgressInterval, Is.LessThanOrEqualTo(TimeSpan.FromMilliseconds(500)), "the default progress interval samples at least twice a second");
            Assert.That(distinct, Is.GreaterThanOrEqualTo(3), "at least three distinct intermediate progress values (data processed and remaining) during the capped migration");
            Assert.That(percents, Is.GreaterThanOrEqualTo(3), "a progress bar (CompletedFraction) shows at least three distinct whole percents between 0 and 100");
            Assert.That(intermediate, Has.All.Matches<MigrationProgress>(p => p.Iteration >= 1 && p.DirtyRatePagesPerSecond is not null), "every intermediate value carries the pass over memory and the dirty rate");
            Assert.That(intermediate.Any(p => p.ExpectedDowntime is not null), Is.True, "the expected downtime is reported once the hypervisor has estimated it");
            Assert.That(intermediate.Zip(intermediate.Skip(1)).All(x => x.Second.DataProcessedBytes >= x.First.DataProcessedBytes), Is.True, "data processed never goes back");
            Assert.That(result.Destination, Is.EqualTo(H2));
        }
    }
}
