using System.Reactive.Linq;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

/// <summary>
/// The "VM is never lost" rule after a failed migration, with a scripted destination: a paused copy
/// there is removed only when the source is confirmed to run the VM, and never touched otherwise.
/// The source is a test-driver host (its migration always fails).
/// </summary>
[Parallelizable(ParallelScope.All)]
public class LibvirtHypervisorHostRecoveryTests
{
    private static readonly string[] VmRunOnly = ["vm-run"];

    private static VmInfo Copy(VmState state) => new("vm-run", Guid.NewGuid(), state, 1, 1, 1, IsPersistent: false);

    [Test]
    public async Task MigrateAsync_FailsWhileSourceRuns_RemovesPausedDestinationCopy()
    {
        using var node = TestNode.Create();
        await using var source = await LibvirtHypervisorHost.ConnectAsync(node.Options("src"));
        var destination = new ScriptedDestination(call => call == 1 ? null : Copy(VmState.Paused));

        var ex = Assert.ThrowsAsync<MigrationException>(() => source.MigrateAsync("vm-run", destination, new MigrationOptions()));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.VmRunningOnSource, Is.True);
            Assert.That(ex.DestinationCopy, Is.EqualTo(DestinationCopyAction.Removed));
            Assert.That(destination.Destroyed, Is.EqualTo(VmRunOnly));
        }
    }

    [Test]
    public async Task MigrateAsync_FailsAndSourceNoLongerRunsTheVm_NeverTouchesTheDestinationCopy()
    {
        using var node = TestNode.Create();
        await using var source = await LibvirtHypervisorHost.ConnectAsync(node.Options("src"));

        // The destination's pre-flight answer is the moment the source loses the VM (as if it had handed over).
        var destination = new ScriptedDestination(call =>
        {
            if (call == 1)
            {
                source.DestroyVmAsync("vm-run").GetAwaiter().GetResult();
                return null;
            }

            return Copy(VmState.Paused);
        });

        var ex = Assert.ThrowsAsync<MigrationException>(() => source.MigrateAsync("vm-run", destination, new MigrationOptions()));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.VmRunningOnSource, Is.False);
            Assert.That(ex.DestinationCopy, Is.EqualTo(DestinationCopyAction.LeftUntouched));
            Assert.That(ex.Message, Does.Contain("may be the only one"));
            Assert.That(destination.Destroyed, Is.Empty);
        }
    }

    [Test]
    public async Task MigrateAsync_FailsWhileSourceRunsAndDestinationAlsoRuns_LeavesBothAlone()
    {
        using var node = TestNode.Create();
        await using var source = await LibvirtHypervisorHost.ConnectAsync(node.Options("src"));
        var destination = new ScriptedDestination(call => call == 1 ? null : Copy(VmState.Running));

        var ex = Assert.ThrowsAsync<MigrationException>(() => source.MigrateAsync("vm-run", destination, new MigrationOptions()));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.VmRunningOnSource, Is.True);
            Assert.That(ex.DestinationCopy, Is.EqualTo(DestinationCopyAction.LeftUntouched));
            Assert.That(destination.Destroyed, Is.Empty);
        }
    }

    [Test]
    public async Task MigrateAsync_DestinationUnreachableDuringRecovery_ReportsUnknownAndTouchesNothing()
    {
        using var node = TestNode.Create();
        var options = node.Options("src") with { RecoveryCheckTimeout = TimeSpan.FromMilliseconds(300) };
        await using var source = await LibvirtHypervisorHost.ConnectAsync(options);
        var destination = new ScriptedDestination(call => call == 1
            ? null
            : throw new HypervisorException(HypervisorErrorKind.ConnectionLost, "destination down"));

        var ex = Assert.ThrowsAsync<MigrationException>(() => source.MigrateAsync("vm-run", destination, new MigrationOptions()));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.VmRunningOnSource, Is.True);
            Assert.That(ex.DestinationCopy, Is.EqualTo(DestinationCopyAction.Unknown));
            Assert.That(destination.Calls, Is.GreaterThan(2), "asked again while the destination might be reconnecting");
            Assert.That(destination.Destroyed, Is.Empty);
        }
    }

    private sealed class ScriptedDestination(Func<int, VmInfo?> answer) : IHypervisorHost
    {
        private int _calls;

        public int Calls => _calls;

        public List<string> Destroyed { get; } = [];

        public string Name => "dst";

        public Uri Uri => new("test:///scripted-destination");

        public HostConnectionState ConnectionState => HostConnectionState.Connected;

        public IObservable<HostEvent> Events => Observable.Never<HostEvent>();

        public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) =>
            Task.FromResult(answer(Interlocked.Increment(ref _calls)));

        public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default)
        {
            lock (Destroyed)
            {
                Destroyed.Add(vmName);
            }

            return Task.CompletedTask;
        }

        public Task<MigrationResult> MigrateAsync(string vmName, IHypervisorHost destination, MigrationOptions options, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
