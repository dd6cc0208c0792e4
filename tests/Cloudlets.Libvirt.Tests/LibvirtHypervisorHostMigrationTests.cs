using System.Reactive.Linq;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt.Tests;

/// <summary>
/// Migration error paths on the test driver (which cannot migrate): input is rejected before
/// anything changes, and a failed migration reports the VM still running on the source.
/// Real migrations are in the lab tests.
/// </summary>
[Parallelizable(ParallelScope.All)]
public class LibvirtHypervisorHostMigrationTests
{
    private sealed class Pair : IAsyncDisposable
    {
        public required TestNode SourceNode { get; init; }
        public required TestNode DestinationNode { get; init; }
        public required LibvirtHypervisorHost Source { get; init; }
        public required LibvirtHypervisorHost Destination { get; init; }

        public static async Task<Pair> CreateAsync(params string[] destinationVms)
        {
            var s = TestNode.Create();
            var d = TestNode.CreateOther(destinationVms);
            return new Pair
            {
                SourceNode = s,
                DestinationNode = d,
                Source = await LibvirtHypervisorHost.ConnectAsync(s.Options("src")),
                Destination = await LibvirtHypervisorHost.ConnectAsync(d.Options("dst")),
            };
        }

        public async ValueTask DisposeAsync()
        {
            await Source.DisposeAsync();
            await Destination.DisposeAsync();
            SourceNode.Dispose();
            DestinationNode.Dispose();
        }
    }

    private static MigrationDestination To(IHypervisorHost host, string? dataUri = null) =>
        MigrationDestination.Of(host, dataUri is null ? null : new Uri(dataUri));

    private static async Task AssertUnchangedAsync(Pair p)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That((await p.Source.TryGetVmAsync("vm-run"))!.State, Is.EqualTo(VmState.Running));
            Assert.That((await p.Destination.ListVmsAsync()).Select(v => v.Name), Does.Not.Contain("vm-run"));
        }
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_ToItself_ThrowsInvalidArgument()
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<HypervisorException>(() => p.Source.MigrateAsync("vm-run", To(p.Source), new MigrationOptions()));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_ToAnotherHostObjectForTheSameUri_ThrowsInvalidArgument()
    {
        await using var p = await Pair.CreateAsync();
        await using var again = await LibvirtHypervisorHost.ConnectAsync(p.SourceNode.Options("src-again"));

        var ex = Assert.ThrowsAsync<HypervisorException>(() => p.Source.MigrateAsync("vm-run", To(again), new MigrationOptions()));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
            Assert.That(ex.Message, Does.Contain("is the host the VM is on"));
        }
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_UnknownVm_ThrowsNotFound()
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<LibvirtException>(() => p.Source.MigrateAsync("ghost", To(p.Destination), new MigrationOptions()));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.NotFound));
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_StoppedVm_ThrowsInvalidArgument()
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<HypervisorException>(() => p.Source.MigrateAsync("vm-off", To(p.Destination), new MigrationOptions()));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_NegativeBandwidth_ThrowsOptionsValidationAndChangesNothing()
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<OptionsValidationException>(() =>
            p.Source.MigrateAsync("vm-run", To(p.Destination), new MigrationOptions { BandwidthMiBps = -1 }));

        Assert.That(ex.Errors.Select(e => e.Path), Is.EqualTo(new[] { "BandwidthMiBps" }));
        await AssertUnchangedAsync(p);
    }

    // Before: 0.5 ms passed validation and PeriodicTimer threw after the migration, so recovery never
    // ran and the caller got an ArgumentOutOfRangeException instead of the outcome; a day passed too.
    [Category("BadInput")]
    [TestCase(0.5)]
    [TestCase(0.0)]
    [TestCase(86_400_000.0)]
    public async Task MigrateAsync_ProgressIntervalOutOfRange_ThrowsOptionsValidationAndChangesNothing(double milliseconds)
    {
        await using var p = await Pair.CreateAsync();
        var samples = new List<MigrationProgress>();

        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => p.Source.MigrateAsync(
            "vm-run", To(p.Destination), new MigrationOptions { ProgressInterval = TimeSpan.FromMilliseconds(milliseconds) }, new Progress<MigrationProgress>(samples.Add)));

        Assert.That(ex.Errors.Select(e => e.Path), Is.EqualTo(new[] { "ProgressInterval" }));
        await AssertUnchangedAsync(p);
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_SeveralBadOptions_ListsEveryErrorWithItsPath()
    {
        await using var p = await Pair.CreateAsync();
        var options = new MigrationOptions { Live = false, BandwidthMiBps = 0, MaxDowntime = TimeSpan.Zero, AbortTimeout = TimeSpan.Zero };
        var own = new LibvirtMigrationOptions { AllowPostCopy = true, Mode = (LibvirtMigrationMode)7 };

        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => p.Source.MigrateAsync("vm-run", To(p.Destination), options, own));

        Assert.That(
            ex.Errors.Select(e => e.Path),
            Is.EquivalentTo(new[] { "BandwidthMiBps", "MaxDowntime", "AbortTimeout", "Libvirt.Mode", "Libvirt.AllowPostCopy" }));
    }

    [Category("BadInput")]
    [TestCase("http://198.18.0.12")]
    [TestCase("tcp:///nohost")]
    [TestCase("tcp://user:secret@198.18.0.12")]
    public async Task MigrateAsync_BadDataUri_ThrowsInvalidArgumentWithoutEchoingSecrets(string uri)
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<HypervisorException>(() =>
            p.Source.MigrateAsync("vm-run", To(p.Destination, uri), new MigrationOptions()));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
            Assert.That(ex.Message, Does.Not.Contain("secret"));
        }

        await AssertUnchangedAsync(p);
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_DestinationUriRunsAProgram_ThrowsInvalidArgumentBeforeConnecting()
    {
        await using var p = await Pair.CreateAsync();
        var destination = new MigrationDestination("dst", new Uri("qemu+ext:///system?command=/tmp/evil"));

        var ex = Assert.ThrowsAsync<HypervisorException>(() => p.Source.MigrateAsync("vm-run", destination, new MigrationOptions()));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
        await AssertUnchangedAsync(p);
    }

    [Category("BadInput")]
    [Test]
    public async Task MigrateAsync_DestinationAlreadyRunsTheVm_ThrowsAlreadyExists()
    {
        await using var p = await Pair.CreateAsync("vm-run");

        var ex = Assert.ThrowsAsync<HypervisorException>(() => p.Source.MigrateAsync("vm-run", To(p.Destination), new MigrationOptions()));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.AlreadyExists));
    }

    [TestCase(LibvirtMigrationMode.PeerToPeer)]
    [TestCase(LibvirtMigrationMode.ClientManaged)]
    public async Task MigrateAsync_DriverCannotMigrate_ThrowsMigrationExceptionAndVmStaysOnSource(LibvirtMigrationMode mode)
    {
        await using var p = await Pair.CreateAsync();
        var samples = new List<MigrationProgress>();

        var ex = Assert.ThrowsAsync<MigrationException>(() => p.Source.MigrateAsync(
            "vm-run",
            To(p.Destination, "tcp://127.0.0.1:49152"),
            new MigrationOptions { BandwidthMiBps = 10 },
            new LibvirtMigrationOptions { Mode = mode },
            new Progress<MigrationProgress>(samples.Add)));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.NotSupported));
            Assert.That(ex.VmRunningOnSource, Is.True);
            Assert.That(ex.DestinationCopy, Is.EqualTo(DestinationCopyAction.None));
            Assert.That(ex.SourceHost, Is.EqualTo("src"));
            Assert.That(ex.DestinationHost, Is.EqualTo("dst"));
            Assert.That(ex.InnerException, Is.TypeOf<LibvirtException>().With.Property(nameof(LibvirtException.Code)).AnyOf(3, 74));
            Assert.That(ex.Message, Does.Contain("still runs on src"));
        }

        await AssertUnchangedAsync(p);
    }

    [Test]
    public async Task MigrateAsync_MaxDowntimeOnDriverWithoutIt_ThrowsNotSupportedBeforeMigrating()
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<LibvirtException>(() =>
            p.Source.MigrateAsync("vm-run", To(p.Destination), new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(300) }));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Api, Is.EqualTo("virDomainMigrateSetMaxDowntime"));
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.NotSupported));
        }

        await AssertUnchangedAsync(p);
    }

    [Test]
    public async Task MigrateAsync_AlreadyCancelled_ThrowsOperationCanceledAndChangesNothing()
    {
        await using var p = await Pair.CreateAsync();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        Assert.That(
            () => p.Source.MigrateAsync("vm-run", To(p.Destination), new MigrationOptions(), null, cts.Token),
            Throws.InstanceOf<OperationCanceledException>());
        await AssertUnchangedAsync(p);
    }

    [Test]
    public async Task MigrateObservable_DriverCannotMigrate_EndsWithTheMigrationError()
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<MigrationException>(async () =>
            await p.Source.MigrateObservable("vm-run", To(p.Destination), new MigrationOptions()).ToList());

        Assert.That(ex.VmRunningOnSource, Is.True);
    }

    [Test]
    public async Task StartPostCopyAsync_NoMigrationRunning_ThrowsLibvirtException()
    {
        await using var p = await Pair.CreateAsync();

        var ex = Assert.ThrowsAsync<LibvirtException>(() => p.Source.StartPostCopyAsync("vm-run"));

        Assert.That(ex.Api, Is.EqualTo("virDomainMigrateStartPostCopy"));
    }
}
