using System.Reactive.Linq;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

/// <summary>
/// The Rx form of a migration (<see cref="HypervisorHostObservableExtensions.MigrateObservable"/>)
/// over a scripted host, so the ordering and cancellation contract is checked without a daemon.
/// </summary>
public class MigrateObservableTests
{
    private static readonly MigrationProgress Sample = new(TimeSpan.FromSeconds(1), 10, 90, 100, 5, 1, TimeSpan.FromMilliseconds(30), 1000);

    [Test]
    public async Task MigrateObservable_Success_ProgressThenResultThenCompletes()
    {
        var host = new ScriptedHost("a", samples: 3);

        var updates = await host.MigrateObservable("vm", new MigrationDestination("b", new Uri("test:///b.xml")), new MigrationOptions()).ToList();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(updates, Has.Count.EqualTo(4));
            Assert.That(updates.Take(3).All(u => u.Progress == Sample && !u.IsCompleted), Is.True);
            Assert.That(updates[^1].IsCompleted, Is.True);
            Assert.That(updates[^1].Result!.Destination, Is.EqualTo("b"));
            Assert.That(host.Calls, Is.EqualTo(1));
        }
    }

    [Test]
    public async Task MigrateObservable_NotSubscribed_DoesNotMigrate()
    {
        var host = new ScriptedHost("a", samples: 1);

        _ = host.MigrateObservable("vm", new MigrationDestination("b", new Uri("test:///b.xml")), new MigrationOptions());
        await Task.Yield();

        Assert.That(host.Calls, Is.Zero);
    }

    [Test]
    public async Task MigrateObservable_Unsubscribed_CancelsTheMigration()
    {
        var host = new ScriptedHost("a", samples: 1, waitForCancel: true);
        var first = new TaskCompletionSource();

        var subscription = host.MigrateObservable("vm", new MigrationDestination("b", new Uri("test:///b.xml")), new MigrationOptions())
            .Subscribe(_ => first.TrySetResult(), _ => { });
        await first.Task.WaitAsync(TimeSpan.FromSeconds(10));
        subscription.Dispose();

        Assert.That(await host.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10)), Is.True);
    }

    private sealed class ScriptedHost(string name, int samples, bool waitForCancel = false) : IHypervisorHost
    {
        public int Calls { get; private set; }

        public TaskCompletionSource<bool> Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Name => name;

        public Uri Uri => new($"test:///{name}");

        public HostConnectionState ConnectionState => HostConnectionState.Connected;

        public IObservable<HostEvent> Events => Observable.Never<HostEvent>();

        public async Task<MigrationResult> MigrateAsync(string vmName, MigrationDestination destination, MigrationOptions options, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            Calls++;
            for (var i = 0; i < samples; i++)
            {
                progress?.Report(Sample);
            }

            if (waitForCancel)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    Cancelled.TrySetResult(true);
                    throw;
                }
            }

            return new MigrationResult(vmName, Name, destination.Name, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(20), 100);
        }

        public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
