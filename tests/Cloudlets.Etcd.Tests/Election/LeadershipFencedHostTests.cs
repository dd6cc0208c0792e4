using Cloudlets.Core.Election;
using Cloudlets.Core.Hypervisors;
using Microsoft.Extensions.Time.Testing;

namespace Cloudlets.Etcd.Tests.Election;

public sealed class LeadershipFencedHostTests
{
    /// <summary>Counts the migrations that reached it.</summary>
    private sealed class CountingHost(string name) : IHypervisorHost
    {
        public int Migrations { get; private set; }

        public int InfoReads { get; private set; }

        public string Name => name;

        public Uri Uri { get; } = new($"test:///{name}");

        public HostConnectionState ConnectionState => HostConnectionState.Connected;

        public IObservable<HostEvent> Events => System.Reactive.Linq.Observable.Never<HostEvent>();

        public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default)
        {
            InfoReads++;
            return Task.FromResult(new HostInfo(name, Uri, name, "x86_64", 2, 1000, 1 << 30, 1 << 29));
        }

        public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) => Task.FromResult<IReadOnlyList<VmInfo>>([]);

        public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.FromResult<VmInfo?>(null);

        public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task<MigrationResult> MigrateAsync(string vmName, MigrationDestination destination, MigrationOptions options, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            Migrations++;
            return Task.FromResult(new MigrationResult(vmName, name, destination.Name, TimeSpan.FromSeconds(1), null, null));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private static readonly MigrationDestination Destination = new("b", new Uri("test:///b"));

    private FakeTimeProvider _time = null!;
    private InMemoryElectionStore _store = null!;
    private InMemoryLeaderElection _a = null!;
    private InMemoryLeaderElection _b = null!;

    [SetUp]
    public async Task SetUp()
    {
        _time = new FakeTimeProvider();
        _store = new InMemoryElectionStore(_time);
        _a = new InMemoryLeaderElection(_store, new LeaderElectionOptions { Election = "r1", CandidateId = "a", LeaseTtl = TimeSpan.FromSeconds(3) });
        _b = new InMemoryLeaderElection(_store, new LeaderElectionOptions { Election = "r1", CandidateId = "b", LeaseTtl = TimeSpan.FromSeconds(3) });
        await _a.StartAsync();
        await _b.StartAsync();
    }

    [TearDown]
    public async Task TearDown()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        _store.Dispose();
    }

    [Test]
    public async Task MigrateAsync_Leader_Migrates()
    {
        var inner = new CountingHost("a");
        var host = new LeadershipFencedHost(inner, _a);
        await host.MigrateAsync("vm1", Destination, new MigrationOptions());
        Assert.That((inner.Migrations, host.MigrationsRefused), Is.EqualTo((1, 0)));
    }

    [Test]
    public async Task MigrateAsync_Follower_RefusedBeforeTheHostIsAskedAndOtherCallsStillWork()
    {
        var inner = new CountingHost("a");
        var host = new LeadershipFencedHost(inner, _b);
        var e = Assert.ThrowsAsync<LeadershipLostException>(async () => await host.MigrateAsync("vm1", Destination, new MigrationOptions()))!;
        await host.GetInfoAsync();
        Assert.Multiple(() =>
        {
            Assert.That(inner.Migrations, Is.Zero);
            Assert.That(host.MigrationsRefused, Is.EqualTo(1));
            Assert.That(inner.InfoReads, Is.EqualTo(1), "a follower stays warm: reads pass through");
            Assert.That(e.LeaderId, Is.EqualTo("a"));
            Assert.That(e.Message, Does.Contain("'a' does").And.Contain("stays on its source"));
            Assert.That(e.IsTransient, Is.False);
        });
    }

    [Test]
    public async Task MigrateAsync_LeaderCutOffPastItsLease_Refused()
    {
        var inner = new CountingHost("a");
        var host = new LeadershipFencedHost(inner, _a);
        _store.SetReachable("a", false);
        for (var i = 0; i < 40; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }

        Assert.ThrowsAsync<LeadershipLostException>(async () => await host.MigrateAsync("vm1", Destination, new MigrationOptions()));
        Assert.That(inner.Migrations, Is.Zero);
        Assert.That(_b.Current.IsLeader, Is.True);
    }
}
