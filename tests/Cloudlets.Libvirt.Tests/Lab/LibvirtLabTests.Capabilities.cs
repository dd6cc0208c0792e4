using System.Globalization;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Libvirt.Tests.Lab;

/// <summary>
/// The migration capabilities of <see cref="LibvirtMigrationOptions"/> against the lab's QEMU, each observed while
/// the migration runs (a flag libvirt dropped would migrate just as well, and libvirt resets the capabilities on
/// both sides once it ends): multifd opens its parallel connections to the destination (with post-copy allowed too),
/// XBZRLE shows its cache in
/// the source's job statistics, and a switch to post-copy that the migration was not started for is refused with a
/// typed error while the migration carries on.
/// </summary>
public partial class LibvirtLabTests
{
    // QEMU's incoming migration listens on a port from libvirtd's migration_port_min..max (qemu.conf defaults).
    private const int MigrationPortMin = 49152;
    private const int MigrationPortMax = 49215;

    [Test]
    [Order(30)]
    public async Task MigrateAsync_ParallelConnections_OpensThatManyChannelsToTheDestinationAndMoves()
    {
        await using var h1 = await ConnectAsync(H1);
        await using var h2 = await ConnectAsync(H2);
        var seen = new SampledOnce<int>(() => MigrationConnectionsAsync(H2));

        var result = await h1.MigrateAsync(Guest.Name, ToH2(h2), CappedOptions(), new LibvirtMigrationOptions { ParallelConnections = 4 }, seen.Progress);
        var connections = await seen.Value;
        var reading = await Lab.CreateGuestClient(Guest).WaitForAnswerAsync(TimeSpan.FromSeconds(20));
        await TestContext.Out.WriteLineAsync($"multifd x4: {connections} migration connections on the destination; total {result.TotalTime.TotalMilliseconds:0} ms, downtime {result.Downtime?.TotalMilliseconds} ms");

        using (Assert.EnterMultipleScope())
        {
            // The main channel and one per parallel connection (a plain migration has the main channel only).
            Assert.That(connections, Is.EqualTo(5), "established connections to the destination's incoming QEMU while memory was copied");
            Assert.That(await RunningCopiesAsync(), Is.EqualTo(new[] { H2 }));
            Assert.That(reading.BootId, Is.EqualTo(_bootId), "the same guest keeps answering from the edge");
        }
    }

    [Test]
    [Order(31)]
    public async Task MigrateAsync_PlainPreCopy_OneChannelToTheDestination()
    {
        await using var h1 = await ConnectAsync(H1);
        await using var h2 = await ConnectAsync(H2);
        var seen = new SampledOnce<int>(() => MigrationConnectionsAsync(H2));

        await h1.MigrateAsync(Guest.Name, ToH2(h2), CappedOptions(), new LibvirtMigrationOptions(), seen.Progress);

        Assert.That(await seen.Value, Is.EqualTo(1), "the counting above sees one channel when multifd is off");
    }

    [Test]
    [Order(31)]
    public async Task MigrateAsync_ParallelConnectionsWithPostCopyAllowed_BothAcceptedAndMoves()
    {
        // QEMU 7.2 (Debian 12) accepts multifd with the post-copy capability (the option's documentation said it
        // refused them; this shows it does not), so the library does not forbid the pair.
        await using var h1 = await ConnectAsync(H1);
        await using var h2 = await ConnectAsync(H2);
        var seen = new SampledOnce<int>(() => MigrationConnectionsAsync(H2));

        await h1.MigrateAsync(Guest.Name, ToH2(h2), CappedOptions(), new LibvirtMigrationOptions { ParallelConnections = 2, AllowPostCopy = true }, seen.Progress);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(await seen.Value, Is.EqualTo(3), "the main channel and two parallel ones");
            Assert.That(await RunningCopiesAsync(), Is.EqualTo(new[] { H2 }));
        }
    }

    [Test]
    [Order(32)]
    public async Task MigrateAsync_Compressed_SourceJobReportsTheXbzrleCacheAndMoves()
    {
        await using var h1 = await ConnectAsync(H1);
        await using var h2 = await ConnectAsync(H2);
        var seen = new SampledOnce<string>(() => JobInfoAsync(H1));

        var result = await h1.MigrateAsync(Guest.Name, ToH2(h2), CappedOptions(), new LibvirtMigrationOptions { Compressed = true }, seen.Progress);
        var jobInfo = await seen.Value;
        var reading = await Lab.CreateGuestClient(Guest).WaitForAnswerAsync(TimeSpan.FromSeconds(20));
        await TestContext.Out.WriteLineAsync($"xbzrle: total {result.TotalTime.TotalMilliseconds:0} ms, downtime {result.Downtime?.TotalMilliseconds} ms; the source's job while it ran:\n{jobInfo}");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(jobInfo, Does.Contain("Compression cache:"), "QEMU reports an XBZRLE cache only when the capability is on");
            Assert.That(await RunningCopiesAsync(), Is.EqualTo(new[] { H2 }));
            Assert.That(reading.BootId, Is.EqualTo(_bootId), "the same guest keeps answering from the edge");
        }
    }

    [Test]
    [Order(33)]
    public async Task StartPostCopyAsync_MigrationNotStartedForPostCopy_TypedRefusalAndTheMigrationCompletes()
    {
        await using var h1 = await ConnectAsync(H1);
        await using var h2 = await ConnectAsync(H2);
        var refusal = new SampledOnce<Exception?>(async () =>
        {
            try
            {
                await h1.StartPostCopyAsync(Guest.Name);
                return null;
            }
            catch (Exception ex)
            {
                return ex;
            }
        });

        var result = await h1.MigrateAsync(Guest.Name, ToH2(h2), CappedOptions(), new LibvirtMigrationOptions { AllowPostCopy = false }, refusal.Progress);
        var error = await refusal.Value;
        var reading = await Lab.CreateGuestClient(Guest).WaitForAnswerAsync(TimeSpan.FromSeconds(20));
        await TestContext.Out.WriteLineAsync($"post-copy refused: {(error as HypervisorException)?.Kind}: {error?.Message}; migration total {result.TotalTime.TotalMilliseconds:0} ms");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(error, Is.InstanceOf<HypervisorException>(), $"a typed refusal: {error}");
            Assert.That((error as HypervisorException)?.Kind, Is.EqualTo(HypervisorErrorKind.OperationFailed), error?.Message);
            Assert.That(await RunningCopiesAsync(), Is.EqualTo(new[] { H2 }), "the pre-copy migration carried on and completed");
            Assert.That(reading.BootId, Is.EqualTo(_bootId), "the same guest keeps answering from the edge");
        }
    }

    /// <summary>16 MiB/s: the idle guest's ~95 MB take about 6 s, time to look at the migration while it runs.</summary>
    private static MigrationOptions CappedOptions() => new() { BandwidthMiBps = 16, ProgressInterval = TimeSpan.FromMilliseconds(200) };

    /// <summary>Established TCP connections to a host's incoming-migration ports, counted inside that host's namespace.</summary>
    private async Task<int> MigrationConnectionsAsync(string hostName)
    {
        var r = await Lab.RunInNamespaceAsync(Lab.GetHost(hostName).Namespace, CommandLine.Of("/usr/bin/ss", "-Htn", "state", "established"));
        Assert.That(r.Succeeded, Is.True, r.StandardError);
        return r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 4)
            .Select(f => f[2]) // Recv-Q, Send-Q, local address:port, peer address:port
            .Select(local => int.TryParse(local[(local.LastIndexOf(':') + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : 0)
            .Count(port => port is >= MigrationPortMin and <= MigrationPortMax);
    }

    private async Task<string> JobInfoAsync(string hostName)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(Lab.Virsh(Lab.GetHost(hostName), "domjobinfo", Guest.Name));
        return r.StandardOutput + r.StandardError;
    }

    /// <summary>Runs <c>sample</c> once, at the first progress report with memory on the way (not before, so the migration really runs).</summary>
    private sealed class SampledOnce<T>(Func<Task<T>> sample)
    {
        private readonly TaskCompletionSource<Task<T>> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IProgress<MigrationProgress> Progress => new SyncProgress(p =>
        {
            if (p.DataProcessedBytes > 0 && p.DataRemainingBytes > 0)
            {
                _ = _started.TrySetResult(Task.Run(sample));
            }
        });

        /// <summary>The sample's result; fails when the migration never reported memory on the way.</summary>
        public Task<T> Value => _started.Task.IsCompleted ? _started.Task.Result : Task.FromException<T>(new AssertionException("no progress report with memory on the way came"));
    }
}
