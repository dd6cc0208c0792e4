using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Core.Tests.Hypervisors;

public sealed class ProgressObservingHostTests
{
    private static readonly MigrationProgress Sample = new(TimeSpan.FromSeconds(1), 10, 90, 100, null, 1, null, null);

    /// <summary>Records what it was asked and reports one progress sample, as a real host would.</summary>
    private sealed class RecordingHost(string name) : IHypervisorHost
    {
        public MigrationDestination? LastDestination { get; private set; }

        public string Name => name;

        public Uri Uri { get; } = new($"test:///{name}");

        public HostConnectionState ConnectionState => HostConnectionState.Connected;

        public IObservable<HostEvent> Events => System.Reactive.Linq.Observable.Never<HostEvent>();

        public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) =>
            Task.FromResult(new HostInfo(name, Uri, name, "x86_64", 2, 1000, 1 << 30, 1 << 29));

        public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) => Task.FromResult<IReadOnlyList<VmInfo>>([]);

        public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.FromResult<VmInfo?>(null);

        public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task<MigrationResult> MigrateAsync(string vmName, MigrationDestination destination, MigrationOptions options, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            LastDestination = destination;
            progress?.Report(Sample);
            return Task.FromResult(new MigrationResult(vmName, name, destination.Name, TimeSpan.FromSeconds(1), null, null));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class ListProgress : IProgress<MigrationProgress>
    {
        public List<MigrationProgress> Seen { get; } = [];

        public void Report(MigrationProgress value) => Seen.Add(value);
    }

    [Test]
    public async Task MigrateAsync_WrappedDestination_PassesTheDestinationValueUnchangedAndShowsProgressToBoth()
    {
        var source = new RecordingHost("a");
        var destination = new RecordingHost("b");
        var observed = new List<(string Vm, MigrationProgress Progress)>();
        var caller = new ListProgress();
        var wrappedSource = new ProgressObservingHost(source, (vm, p) => observed.Add((vm, p)));
        var wrappedDestination = new ProgressObservingHost(destination, (_, _) => { });

        var target = MigrationDestination.Of(wrappedDestination, new Uri("tcp://198.18.0.12"));
        var result = await wrappedSource.MigrateAsync("vm1", target, new MigrationOptions(), caller);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(source.LastDestination, Is.SameAs(target), "the value as given: nothing to unwrap");
            Assert.That(target.ManagementUri, Is.EqualTo(destination.Uri), "a wrapper's destination value names the real host's endpoint");
            Assert.That(observed, Is.EqualTo(new[] { ("vm1", Sample) }));
            Assert.That(caller.Seen, Is.EqualTo(new[] { Sample }), "the caller's progress still sees every sample");
            Assert.That(wrappedSource.MigrationsStarted, Is.EqualTo(1));
            Assert.That(result.Destination, Is.EqualTo("b"));
        }
    }

    [Test]
    public async Task GetInfoAsync_Always_ForwardsToTheRealHost()
    {
        var host = new ProgressObservingHost(new RecordingHost("a"), (_, _) => { });

        var info = await host.GetInfoAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(info.Name, Is.EqualTo("a"));
            Assert.That(host.Name, Is.EqualTo("a"));
            Assert.That(host.Uri, Is.EqualTo(new Uri("test:///a")));
        }
    }

    [Test]
    public void Constructor_NullArguments_Throw()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new ProgressObservingHost(null!, (_, _) => { }), Throws.ArgumentNullException);
            Assert.That(() => new ProgressObservingHost(new RecordingHost("a"), null!), Throws.ArgumentNullException);
        }
    }
}
