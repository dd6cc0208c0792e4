using System.Globalization;
using Cloudlets.Etcd.Tests.Support;

namespace Cloudlets.Etcd.Tests;

/// <summary>
/// Candidates as separate processes (this test assembly run as <see cref="CandidateProgram"/>) against a
/// real etcd: the leader SIGKILLed (takeover measured over 10 kills) and the leader paused with SIGSTOP
/// past its lease (fencing).
/// </summary>
[NonParallelizable]
public sealed class EtcdCandidateProcessTests
{
    /// <summary>The lease TTL of the child candidates: 2 s, or CLOUDLETS_ETCD_TEST_TTL (whole seconds, 2-60) to measure takeover at another TTL.</summary>
    private static readonly int TtlSeconds =
        int.TryParse(Environment.GetEnvironmentVariable("CLOUDLETS_ETCD_TEST_TTL"), CultureInfo.InvariantCulture, out var ttl) && ttl is >= 2 and <= 60 ? ttl : 2;
    private const int ConfirmEveryMs = 100;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>The takeover bound asserted: the lease TTL plus etcd's expiry sweep (500 ms) plus campaigning, with room for a loaded machine.</summary>
    private static readonly TimeSpan TakeoverBound = TimeSpan.FromSeconds(TtlSeconds + 2);

    private EtcdServer _etcd = null!;
    private readonly List<CandidateProcess> _processes = [];

    [OneTimeSetUp]
    public async Task OneTimeSetUp() => _etcd = await EtcdServer.StartAsync();

    [OneTimeTearDown]
    public async Task OneTimeTearDown() => await _etcd.DisposeAsync();

    [TearDown]
    public async Task TearDown()
    {
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }

        _processes.Clear();
    }

    [Test]
    public async Task SigKill_LeaderOfThreeTenTimes_AFollowerLeadsWithinTheTtlPlusABoundEachTime()
    {
        var region = "kill-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var live = new List<CandidateProcess>();
        for (var i = 1; i <= 3; i++)
        {
            live.Add(Start(region, "p" + i.ToString(CultureInfo.InvariantCulture)));
        }

        await Task.WhenAll(live.Select(p => p.WaitForAsync(l => l.Kind == "STATE" && l.Fields[1] is "LeaderObserved" or "Elected", Patience, "campaigning")));
        var takeovers = new List<double>();
        for (var round = 1; round <= 10; round++)
        {
            var leader = await CurrentLeaderAsync(live);
            Assert.That(live.Count(IsLeading), Is.EqualTo(1), "exactly one of three leads");
            var killedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await leader.KillAsync();
            live.Remove(leader);

            var elected = await WaitAnyAsync(live, l => l.IsLeaderState && l.UnixMs >= killedAt, "a follower leads after the kill");
            var takeover = TimeSpan.FromMilliseconds(elected.UnixMs - killedAt);
            takeovers.Add(takeover.TotalMilliseconds);
            TestContext.Progress.WriteLine($"round {round}: killed {leader.Id} (pid {leader.Pid}); {elected.Candidate} leads after {takeover.TotalMilliseconds:F0} ms");
            Assert.That(takeover, Is.LessThanOrEqualTo(TakeoverBound), $"round {round}: takeover within TTL {TtlSeconds} s + 2 s");

            live.Add(Start(region, "p" + (round + 3).ToString(CultureInfo.InvariantCulture)));
        }

        takeovers.Sort();
        var median = (takeovers[4] + takeovers[5]) / 2;
        TestContext.Progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"TAKEOVER ttl={TtlSeconds}s kills=10 median={median:F0}ms max={takeovers[^1]:F0}ms min={takeovers[0]:F0}ms all=[{string.Join(", ", takeovers.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))}]"));
        Assert.That(takeovers[0], Is.GreaterThan(0));
    }

    [Test]
    public async Task SigStop_LeaderPausedPastItsLease_NeverConfirmsAfterwardsAndRejoinsAsFollower()
    {
        var region = "pause-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var a = Start(region, "a");
        await a.WaitForAsync(l => l.IsLeaderState, Patience, "a leads");
        var b = Start(region, "b");
        await b.WaitForAsync(l => l.Kind == "STATE" && l.Fields[1] == "LeaderObserved", Patience, "b follows");
        await a.WaitForAsync(l => l.IsConfirmTrue, Patience, "a confirms its leadership");

        var pausedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        a.Pause();
        var bLeads = await b.WaitForAsync(l => l.IsLeaderState && l.UnixMs >= pausedAt, Patience, "b takes over while a is paused");
        await b.WaitForAsync(l => l.IsConfirmTrue && l.UnixMs >= bLeads.UnixMs, Patience, "b confirms");
        await Task.Delay(500);
        var resumedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        a.Resume();

        await a.WaitForAsync(l => l.Kind == "STATE" && l.Fields[0] == "Follower" && l.UnixMs >= resumedAt, Patience, "a steps down after the pause");
        await a.WaitForAsync(l => l.Kind == "CONFIRM" && l.UnixMs >= resumedAt + 1000, Patience, "a keeps checking for a second");
        await a.WaitForAsync(l => l.Kind == "STATE" && l.Fields[1] == "LeaderObserved" && l.Fields[4] == "b" && l.UnixMs >= resumedAt, Patience, "a rejoins as b's follower");

        var afterResume = a.Lines.Where(l => l.Kind == "CONFIRM" && l.UnixMs >= resumedAt).ToArray();
        var lastTrueOfA = a.Lines.Where(l => l.IsConfirmTrue).Max(l => long.Parse(l.Fields[1], CultureInfo.InvariantCulture));
        var firstTrueOfB = b.Lines.Where(l => l.IsConfirmTrue).Min(l => l.UnixMs);
        Assert.Multiple(() =>
        {
            Assert.That(afterResume, Is.Not.Empty);
            Assert.That(afterResume.Where(l => l.IsConfirmTrue), Is.Empty, "no confirmation once the lease had expired");
            Assert.That(a.Lines.Any(l => l.IsLeaderState && l.UnixMs >= resumedAt), Is.False, "b still leads: a was not elected again");
            Assert.That(lastTrueOfA, Is.LessThan(firstTrueOfB), "a's last confirmed check ended before b's first began: never two confirmed leaders at once");
        });
    }

    [Test]
    public async Task PacketsDroppedInItsNamespace_Leader_StartsNothingAfterItsLeaseAndRejoinsAsFollowerWhenHealed()
    {
        await using var network = await PartitionNetwork.CreateAsync();
        await using var etcd = await EtcdServer.StartAsync(network.ServerAddress, 2379, 2380, network.ServerNamespace);
        var region = "cut-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var cut = Start(region, "cut", network.CandidateNamespace, etcd.Endpoint);
        await cut.WaitForAsync(l => l.IsLeaderState, Patience, "the candidate in its own namespace leads");
        var ok = Start(region, "ok", network.ServerNamespace, etcd.Endpoint);
        await ok.WaitForAsync(l => l.Kind == "STATE" && l.Fields[1] == "LeaderObserved" && l.Fields[4] == "cut", Patience, "the other follows");
        await cut.WaitForAsync(l => l.IsConfirmTrue, Patience, "the leader confirms");

        var cutAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await network.CutAsync();
        var okLeads = await ok.WaitForAsync(l => l.IsLeaderState && l.UnixMs >= cutAt, Patience, "the other leads once the cut-off leader's lease expired");
        await cut.WaitForAsync(l => l.Kind == "STATE" && l.Fields[1] == "LeaseLost" && l.UnixMs >= cutAt, Patience, "the cut-off leader gives up its lease");
        await Task.Delay(TimeSpan.FromSeconds(TtlSeconds));
        var healedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await network.HealAsync();
        await cut.WaitForAsync(l => l.Kind == "STATE" && l.Fields[1] == "LeaderObserved" && l.Fields[4] == "ok" && l.UnixMs >= healedAt, Patience, "it rejoins as a follower");
        await Task.Delay(TimeSpan.FromSeconds(1));

        var lostAt = cut.Lines.First(l => l.Kind == "STATE" && l.Fields[1] == "LeaseLost" && l.UnixMs >= cutAt).UnixMs;
        var checksWhileCut = cut.Lines.Where(l => l.Kind == "CONFIRM" && l.UnixMs > cutAt + 50).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(checksWhileCut, Is.Not.Empty);
            Assert.That(checksWhileCut.Where(l => l.IsConfirmTrue), Is.Empty, "no confirmation once cut off (and so none after its lease expired)");
            Assert.That(lostAt - cutAt, Is.LessThanOrEqualTo(TtlSeconds * 1000 + 1000), "it knew it lost the lease no later than about the TTL");
            Assert.That(cut.Lines.Any(l => l.IsLeaderState && l.UnixMs >= cutAt), Is.False, "never leads again while the other does");
            Assert.That(ok.Lines.Where(l => l.IsConfirmTrue).Min(l => l.UnixMs), Is.GreaterThanOrEqualTo(okLeads.UnixMs));
            Assert.That(cut.Lines.Where(l => l.IsConfirmTrue).Max(l => long.Parse(l.Fields[1], CultureInfo.InvariantCulture)),
                Is.LessThan(ok.Lines.Where(l => l.IsConfirmTrue).Min(l => l.UnixMs)), "never two confirmed leaders at once");
        });
        TestContext.Progress.WriteLine($"partition: cut at 0 ms; the cut-off leader stepped down at {lostAt - cutAt} ms; the other led at {okLeads.UnixMs - cutAt} ms");
    }

    private CandidateProcess Start(string region, string id, string? networkNamespace = null, string? endpoint = null)
    {
        var process = CandidateProcess.Start(endpoint ?? _etcd.Endpoint, region, id, TtlSeconds, ConfirmEveryMs, networkNamespace);
        _processes.Add(process);
        return process;
    }

    private static bool IsLeading(CandidateProcess process) =>
        process.Lines.LastOrDefault(l => l.Kind == "STATE") is { } last && last.Fields[0] == "Leader";

    private static async Task<CandidateProcess> CurrentLeaderAsync(IReadOnlyList<CandidateProcess> processes)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (processes.SingleOrDefault(IsLeading) is { } leader && leader.Lines.Any(l => l.IsConfirmTrue && l.UnixMs >= leader.Lines.Last(x => x.IsLeaderState).UnixMs))
            {
                return leader;
            }

            await Task.Delay(50);
        }

        Assert.Fail("No single leader that confirms.");
        return null!;
    }

    private static async Task<CandidateLine> WaitAnyAsync(IReadOnlyList<CandidateProcess> processes, Func<CandidateLine, bool> predicate, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var process in processes)
            {
                if (process.Lines.FirstOrDefault(predicate) is { } line)
                {
                    return line;
                }
            }

            await Task.Delay(10);
        }

        Assert.Fail("Timed out waiting for: " + what);
        return null!;
    }
}
