using System.Globalization;
using Cloudlets.Core.Election;
using Cloudlets.Etcd.Tests.Support;

namespace Cloudlets.Etcd.Tests;

/// <summary>Candidates in this process against a real etcd (one per fixture, on 127.0.0.1); each test has its own election.</summary>
[NonParallelizable]
public sealed class EtcdLeaderElectionTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private EtcdServer _etcd = null!;
    private readonly List<EtcdLeaderElection> _candidates = [];
    private int _election;

    [OneTimeSetUp]
    public async Task OneTimeSetUp() => _etcd = await EtcdServer.StartAsync();

    [OneTimeTearDown]
    public async Task OneTimeTearDown() => await _etcd.DisposeAsync();

    [TearDown]
    public async Task TearDown()
    {
        foreach (var candidate in _candidates)
        {
            await candidate.DisposeAsync();
        }

        _candidates.Clear();
    }

    [Test]
    public async Task StartAsync_ThreeCandidates_ExactlyOneLeadsAndTheKeyNamesItAndTheRegion()
    {
        var region = Region();
        var watch = new LeaderCount();
        var candidates = new[] { Candidate(region, "a"), Candidate(region, "b"), Candidate(region, "c") };
        foreach (var c in candidates)
        {
            watch.Watch(c);
            await c.StartAsync();
        }

        var leader = await WaitForLeaderAsync(candidates);
        await Task.Delay(Ttl * 3); // several keepalive rounds: nobody else takes over
        await WaitUntilAsync(() => candidates.All(c => c.Current.LeaderId == leader.CandidateId), "every follower knows the leader");
        Assert.Multiple(async () =>
        {
            Assert.That(candidates.Count(c => c.Current.IsLeader), Is.EqualTo(1));
            Assert.That(watch.Max, Is.EqualTo(1), "never two leaders at once");
            Assert.That(leader.Key, Is.EqualTo("/cloudlets/v1/elections/" + region));
            Assert.That(await _etcd.GetValueAsync(leader.Key), Is.EqualTo(leader.CandidateId));
            Assert.That(await leader.ConfirmLeadershipAsync(), Is.True);
            foreach (var follower in candidates.Where(c => c != leader))
            {
                Assert.That(await follower.ConfirmLeadershipAsync(), Is.False);
            }
        });
    }

    [Test]
    public async Task DisposeAsync_Leader_RevokesItsLeaseAndAFollowerLeads()
    {
        var region = Region();
        var candidates = new[] { Candidate(region, "a"), Candidate(region, "b") };
        foreach (var c in candidates)
        {
            await c.StartAsync();
        }

        var leader = await WaitForLeaderAsync(candidates);
        var lease = leader.Current.LeaseId!.Value;
        await leader.DisposeAsync();
        var (_, ttl) = await _etcd.EtcdctlAsync(["lease", "timetolive", lease.ToString("x", CultureInfo.InvariantCulture)]);
        Assert.That(ttl, Does.Contain("already expired"), "resigning revokes the lease at once");
        var next = await WaitForLeaderAsync(candidates.Where(c => c != leader).ToArray());
        Assert.That(await next.ConfirmLeadershipAsync(), Is.True);
    }

    [Test]
    public async Task LeaseRevokedWithEtcdctl_Leader_LosesTheLeaseAndNeverConfirmsThatTermAgain()
    {
        var region = Region();
        var candidates = new[] { Candidate(region, "a"), Candidate(region, "b") };
        foreach (var c in candidates)
        {
            await c.StartAsync();
        }

        var leader = await WaitForLeaderAsync(candidates);
        var term = leader.Current;
        var reasons = Record(leader);
        await _etcd.EtcdctlAsync(["lease", "revoke", term.LeaseId!.Value.ToString("x", CultureInfo.InvariantCulture)]);
        await WaitUntilAsync(() => reasons.Contains(LeadershipReason.LeaseLost) || reasons.Contains(LeadershipReason.KeyLost), "the leader notices");
        var next = await WaitForLeaderAsync(candidates);
        Assert.Multiple(async () =>
        {
            Assert.That(next.Current.Revision, Is.GreaterThan(term.Revision!.Value), "a new term");
            Assert.That(next.Current.LeaseId, Is.Not.EqualTo(term.LeaseId));
            Assert.That(await next.ConfirmLeadershipAsync(), Is.True);
            if (next != leader)
            {
                Assert.That(await leader.ConfirmLeadershipAsync(), Is.False);
            }
        });
    }

    [Test]
    public async Task KeyDeletedWithEtcdctl_Leader_ObservesKeyLostAndOneLeadsAgain()
    {
        var region = Region();
        var candidates = new[] { Candidate(region, "a"), Candidate(region, "b") };
        foreach (var c in candidates)
        {
            await c.StartAsync();
        }

        var leader = await WaitForLeaderAsync(candidates);
        var term = leader.Current.Revision!.Value;
        var reasons = Record(leader);
        await _etcd.EtcdctlAsync(["del", leader.Key]);
        await WaitUntilAsync(() => reasons.Contains(LeadershipReason.KeyLost), "the leader sees its key deleted");
        var next = await WaitForLeaderAsync(candidates);
        Assert.That(next.Current.Revision, Is.GreaterThan(term));
        Assert.That(await next.ConfirmLeadershipAsync(), Is.True);
    }

    [Test]
    public async Task StartAsync_TwoRegions_BothLeadAtOnceWithTheirOwnKeys()
    {
        var (west, east) = (Region(), Region());
        var candidates = new[] { Candidate(west, "w1"), Candidate(west, "w2"), Candidate(east, "e1"), Candidate(east, "e2") };
        foreach (var c in candidates)
        {
            await c.StartAsync();
        }

        var westLeader = await WaitForLeaderAsync(candidates[..2]);
        var eastLeader = await WaitForLeaderAsync(candidates[2..]);
        Assert.Multiple(async () =>
        {
            Assert.That(await westLeader.ConfirmLeadershipAsync() && await eastLeader.ConfirmLeadershipAsync(), Is.True, "both lead at once");
            Assert.That(await _etcd.GetValueAsync("/cloudlets/v1/elections/" + west), Is.EqualTo(westLeader.CandidateId));
            Assert.That(await _etcd.GetValueAsync("/cloudlets/v1/elections/" + east), Is.EqualTo(eastLeader.CandidateId));
        });
    }

    [Test]
    public async Task EtcdStopped_Leader_LosesItsLeaseWithinTheTtlAndOneLeadsWhenEtcdIsBack()
    {
        await using var etcd = await EtcdServer.StartAsync();
        var region = Region();
        var candidates = new[] { Candidate(region, "a", etcd), Candidate(region, "b", etcd) };
        foreach (var c in candidates)
        {
            await c.StartAsync();
        }

        var leader = await WaitForLeaderAsync(candidates);
        var reasons = Record(leader);
        await etcd.StopAsync();
        Assert.That(await leader.ConfirmLeadershipAsync(), Is.False, "etcd is gone: no confirmation");
        await WaitUntilAsync(() => reasons.Contains(LeadershipReason.LeaseLost), "the leader gives up its lease after the TTL");
        Assert.That(candidates.Count(c => c.Current.IsLeader), Is.Zero);
        Assert.That(await leader.ConfirmLeadershipAsync(), Is.False);

        await etcd.RestartAsync();
        var next = await WaitForLeaderAsync(candidates);
        Assert.That(await next.ConfirmLeadershipAsync(), Is.True);
        Assert.That(candidates.Count(c => c.Current.IsLeader), Is.EqualTo(1));
    }

    [Test]
    public async Task ResignAsync_Leader_FollowerStateAndNoConfirmation()
    {
        var region = Region();
        var a = Candidate(region, "a");
        await a.StartAsync();
        await WaitForLeaderAsync([a]);
        await a.ResignAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(a.Current.Reason, Is.EqualTo(LeadershipReason.Resigned));
            Assert.That(await a.ConfirmLeadershipAsync(), Is.False);
            Assert.That(await _etcd.GetValueAsync(a.Key), Is.Null);
        });
        Assert.ThrowsAsync<InvalidOperationException>(async () => await a.StartAsync());
    }

    [Test]
    public async Task StartAsync_EtcdWithAuthentication_TheRightPasswordLeadsAndAWrongOneIsReported()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.EnableAuthAsync("s3cret-pw");
        var region = Region();
        var wrong = Candidate(region, "wrong", etcd, o => (o.Username, o.Password) = ("root", "not-it"));
        await wrong.StartAsync();
        await WaitUntilAsync(() => wrong.Current.Reason == LeadershipReason.StoreUnavailable, "a wrong password is reported as a store failure");
        var right = Candidate(region, "right", etcd, o => (o.Username, o.Password) = ("root", "s3cret-pw"));
        await right.StartAsync();
        Assert.That(await WaitForLeaderAsync([right, wrong]), Is.SameAs(right));
        Assert.Multiple(async () =>
        {
            Assert.That(await right.ConfirmLeadershipAsync(), Is.True);
            Assert.That(await wrong.ConfirmLeadershipAsync(), Is.False);
            Assert.That(await etcd.GetValueAsync(right.Key), Is.EqualTo("right"));
        });
    }

    [Test]
    public async Task StartAsync_EtcdWithTlsAndClientCertificates_LeadsOnlyWithATrustedCaAndACertificate()
    {
        using var certificates = await TestCertificates.CreateAsync();
        await using var etcd = await EtcdServer.StartWithTlsAsync(certificates);
        var region = Region();
        var noCertificate = Candidate(region, "no-cert", etcd, o => o.Tls = new EtcdTlsOptions { CaCertificateFile = certificates.CaFile });
        var untrusted = Candidate(region, "untrusted", etcd, o => o.Tls = new EtcdTlsOptions
        {
            ClientCertificateFile = certificates.ClientCertificateFile,
            ClientKeyFile = certificates.ClientKeyFile,
        });
        await noCertificate.StartAsync();
        await untrusted.StartAsync();
        await WaitUntilAsync(() => noCertificate.Current.Reason == LeadershipReason.StoreUnavailable && untrusted.Current.Reason == LeadershipReason.StoreUnavailable,
            "etcd refuses a client without a certificate, and the client refuses a server its trust store does not know");

        var trusted = Candidate(region, "tls", etcd, o => o.Tls = new EtcdTlsOptions
        {
            CaCertificateFile = certificates.CaFile,
            ClientCertificateFile = certificates.ClientCertificateFile,
            ClientKeyFile = certificates.ClientKeyFile,
        });
        await trusted.StartAsync();
        Assert.That(await WaitForLeaderAsync([trusted, noCertificate, untrusted]), Is.SameAs(trusted));
        Assert.That(await trusted.ConfirmLeadershipAsync(), Is.True);
        Assert.That(await etcd.GetValueAsync(trusted.Key), Is.EqualTo("tls"));
    }

    private string Region() => string.Create(CultureInfo.InvariantCulture, $"t{Environment.ProcessId}-{++_election}");

    private EtcdLeaderElection Candidate(string region, string id, EtcdServer? etcd = null, Action<EtcdLeaderElectionOptions>? configure = null)
    {
        var options = new EtcdLeaderElectionOptions
        {
            Endpoints = [(etcd ?? _etcd).Endpoint],
            RequestTimeout = TimeSpan.FromMilliseconds(500),
            Election = new LeaderElectionOptions
            {
                Election = region,
                CandidateId = id,
                LeaseTtl = Ttl,
                RetryInitialBackoff = TimeSpan.FromMilliseconds(100),
                RetryMaxBackoff = TimeSpan.FromSeconds(1),
            },
        };
        configure?.Invoke(options);
        var candidate = EtcdLeaderElection.Create(options);
        _candidates.Add(candidate);
        return candidate;
    }

    private static List<LeadershipReason> Record(EtcdLeaderElection election)
    {
        var reasons = new List<LeadershipReason>();
        election.States.Subscribe(s =>
        {
            lock (reasons)
            {
                reasons.Add(s.Reason);
            }
        });
        return reasons;
    }

    private static async Task<EtcdLeaderElection> WaitForLeaderAsync(IReadOnlyList<EtcdLeaderElection> candidates)
    {
        await WaitUntilAsync(() => candidates.Any(c => c.Current.IsLeader), "one candidate leads");
        return candidates.Single(c => c.Current.IsLeader);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("Timed out waiting until " + what);
            }

            await Task.Delay(20);
        }
    }

    /// <summary>The most candidates that believed they led at the same moment.</summary>
    private sealed class LeaderCount
    {
        private readonly Dictionary<string, bool> _leading = [];

        public int Max { get; private set; }

        public void Watch(EtcdLeaderElection election) => election.States.Subscribe(s =>
        {
            lock (_leading)
            {
                _leading[s.CandidateId] = s.IsLeader;
                Max = Math.Max(Max, _leading.Values.Count(v => v));
            }
        });
    }
}
