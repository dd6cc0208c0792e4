using Cloudlets.Core.Election;
using Microsoft.Extensions.Time.Testing;

namespace Cloudlets.Etcd.Tests.Election;

public sealed class InMemoryLeaderElectionTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(6);

    private FakeTimeProvider _time = null!;
    private InMemoryElectionStore _store = null!;
    private List<InMemoryLeaderElection> _candidates = null!;

    [SetUp]
    public void SetUp()
    {
        _time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        _store = new InMemoryElectionStore(_time);
        _candidates = [];
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var candidate in _candidates)
        {
            await candidate.DisposeAsync();
        }

        _store.Dispose();
    }

    [Test]
    public async Task StartAsync_ThreeCandidates_ExactlyOneLeadsAndTheOthersKnowIt()
    {
        var (a, b, c) = (await StartAsync("a"), await StartAsync("b"), await StartAsync("c"));
        Run(Ttl * 3);
        Assert.Multiple(() =>
        {
            Assert.That(new[] { a, b, c }.Count(x => x.Current.IsLeader), Is.EqualTo(1));
            Assert.That(a.Current.IsLeader, Is.True, "the first to campaign takes the free key");
            Assert.That(b.Current.LeaderId, Is.EqualTo("a"));
            Assert.That(c.Current.LeaderId, Is.EqualTo("a"));
            Assert.That(_store.LeaderOf("r1"), Is.EqualTo("a"));
        });
    }

    [Test]
    public async Task ResignAsync_Leader_AFollowerLeadsAtOnce()
    {
        var a = await StartAsync("a");
        var b = await StartAsync("b");
        await a.ResignAsync();
        Assert.Multiple(() =>
        {
            Assert.That(a.Current.Reason, Is.EqualTo(LeadershipReason.Resigned));
            Assert.That(b.Current.IsLeader, Is.True);
        });
    }

    [Test]
    public async Task Partition_Leader_LosesAfterTtlAndNeverConfirmsUntilElectedAgain()
    {
        var a = await StartAsync("a");
        var b = await StartAsync("b");
        Assert.That(await a.ConfirmLeadershipAsync(), Is.True);
        var firstTerm = a.Current.Revision;

        _store.SetReachable("a", false);
        Assert.That(await a.ConfirmLeadershipAsync(), Is.False, "unreachable store: no confirmation");
        Run(Ttl + TimeSpan.FromSeconds(1));
        Assert.Multiple(async () =>
        {
            Assert.That(b.Current.IsLeader, Is.True, "b takes over after a's lease expired");
            Assert.That(a.Current.IsLeader, Is.False);
            Assert.That(await a.ConfirmLeadershipAsync(), Is.False);
        });

        _store.SetReachable("a", true);
        Run(Ttl);
        Assert.Multiple(async () =>
        {
            Assert.That(a.Current.Role, Is.EqualTo(LeadershipRole.Follower), "a rejoins as a follower");
            Assert.That(a.Current.LeaderId, Is.EqualTo("b"));
            Assert.That(await a.ConfirmLeadershipAsync(), Is.False);
            Assert.That(await b.ConfirmLeadershipAsync(), Is.True);
        });

        await b.ResignAsync();
        Assert.That(a.Current.IsLeader, Is.True);
        Assert.That(a.Current.Revision, Is.Not.EqualTo(firstTerm), "a new term");
        Assert.That(await a.ConfirmLeadershipAsync(), Is.True);
    }

    [Test]
    public async Task ConfirmLeadershipAsync_TtlPassedBeforeTheNextKeepAlive_FalseAtOnce()
    {
        var a = await StartAsync("a");
        var states = new List<LeadershipState>();
        using var subscription = a.States.Subscribe(states.Add);
        _store.SetReachable("a", false);
        Run(Ttl - TimeSpan.FromMilliseconds(1));
        Assert.That(a.Current.IsLeader, Is.True, "the last keepalive tick was before the deadline");
        Run(TimeSpan.FromMilliseconds(1));
        Assert.That(await a.ConfirmLeadershipAsync(), Is.False);
        Assert.That(a.Current.IsLeader, Is.False);
        Assert.That(states.Select(s => s.Reason), Does.Contain(LeadershipReason.LeaseLost));
    }

    [Test]
    public async Task RevokeLease_Leader_LeaseLostAndAnotherLeads()
    {
        var a = await StartAsync("a");
        var b = await StartAsync("b");
        _store.RevokeLease(a.Current.LeaseId!.Value);
        Assert.Multiple(async () =>
        {
            Assert.That(a.Current.Reason, Is.EqualTo(LeadershipReason.LeaseLost));
            Assert.That(b.Current.IsLeader, Is.True);
            Assert.That(await a.ConfirmLeadershipAsync(), Is.False);
        });
    }

    [Test]
    public async Task DeleteKey_Leader_KeyLostThenSomeoneLeadsAgain()
    {
        var a = await StartAsync("a");
        var b = await StartAsync("b");
        var states = new List<LeadershipState>();
        using var subscription = a.States.Subscribe(states.Add);
        _store.DeleteKey("r1");
        Assert.That(states.Select(s => s.Reason), Does.Contain(LeadershipReason.KeyLost));
        Assert.That(new[] { a, b }.Count(x => x.Current.IsLeader), Is.EqualTo(1));
    }

    [Test]
    public async Task States_TwoElections_BothLeadAtOnce()
    {
        var a = await StartAsync("a", "eu-west");
        var b = await StartAsync("b", "us-east");
        Assert.That(a.Current.IsLeader && b.Current.IsLeader, Is.True);
    }

    [Test]
    public async Task StartAsync_Twice_Throws()
    {
        var a = await StartAsync("a");
        Assert.ThrowsAsync<InvalidOperationException>(async () => await a.StartAsync());
    }

    [Test]
    public async Task DisposeAsync_States_Complete()
    {
        var a = await StartAsync("a");
        var completed = false;
        using var subscription = a.States.Subscribe(_ => { }, () => completed = true);
        await a.DisposeAsync();
        Assert.That(completed, Is.True);
    }

    [Test]
    public async Task AsGate_Follower_False()
    {
        await StartAsync("a");
        var b = await StartAsync("b");
        Assert.That(await b.AsGate()(CancellationToken.None), Is.False);
    }

    /// <summary>Advances the fake clock in 100 ms steps (one big step would fire every keepalive at the end time, after the leases expired).</summary>
    private void Run(TimeSpan duration)
    {
        var step = TimeSpan.FromMilliseconds(100);
        for (; duration >= step; duration -= step)
        {
            _time.Advance(step);
        }

        _time.Advance(duration);
    }

    private async Task<InMemoryLeaderElection> StartAsync(string id, string election = "r1")
    {
        var candidate = new InMemoryLeaderElection(_store, new LeaderElectionOptions { Election = election, CandidateId = id, LeaseTtl = Ttl });
        _candidates.Add(candidate);
        await candidate.StartAsync();
        return candidate;
    }
}
