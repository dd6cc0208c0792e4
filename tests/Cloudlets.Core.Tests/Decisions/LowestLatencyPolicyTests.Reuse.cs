using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

/// <summary>
/// Reuse of each VM's search between evaluations (the index on, no rules, no candidate recording) must
/// never change a decision: while hosts fill up and free up, VMs change host or size or start and end a
/// migration, rows get new samples and cells turn stale, the reusing policy decides exactly what a policy
/// scanning every host decides.
/// </summary>
public partial class LowestLatencyPolicyTests
{
    private const int ReuseHostCount = 2 * LowestLatencyPolicy.IndexMinimumHostsPerEntry * 2; // indexed at depth 2

    /// <summary>One user near h1 (10 ms), h2 (20 ms), h3 (40 ms); the VM on h0 (300 ms), like every other host.</summary>
    private static FleetSnapshot NearHostsFleet(long h1FreeBytes)
    {
        var s = new FleetSnapshot([.. Enumerable.Range(0, ReuseHostCount).Select(h => $"h{h}")], [new VmDefinition("vm", [new VmUser("edge")])]) { Now = Now };
        for (var h = 0; h < ReuseHostCount; h++)
        {
            s.SetHost(h, HostAvailability.Available, h == 1 ? h1FreeBytes : 8L << 30, 16);
            s.SetLatency(0, h, Summary(h switch { 1 => 10, 2 => 20, 3 => 40, _ => 300 }, Now));
        }

        s.SetPlacement(0, 0, 1L << 30, 1);
        return s;
    }

    [Test]
    public void Evaluate_HostFreesRoomBetweenWindows_TargetBecomesTheNearerHost()
    {
        // Window 1: h1 is full, the best is h2. Window 2: h1 has room again; a reused search would still say h2.
        var s = NearHostsFleet(h1FreeBytes: 100L << 20);
        var policy = Policy(windows: 3, o => o.CandidateIndexDepth = 4);
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        policy.Evaluate(s, buffer);
        var first = buffer.TargetOf(0);
        s.SetHost(1, HostAvailability.Available, 8L << 30, 16);
        policy.Evaluate(s, buffer);
        Assert.That((first, buffer.TargetOf(0), buffer.TargetScoreOf(0)), Is.EqualTo((2, 1, 10.0)));
    }

    [Test]
    public void Evaluate_VmShrinksBetweenWindows_TargetBecomesTheHostItNowFits()
    {
        // h1 has room for 1 GiB but not for 4 GiB: after the VM shrinks to 1 GiB, its best is h1, no longer h2.
        var s = NearHostsFleet(h1FreeBytes: 2L << 30);
        s.SetPlacement(0, 0, 4L << 30, 1);
        var policy = Policy(windows: 3, o => o.CandidateIndexDepth = 4);
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        policy.Evaluate(s, buffer);
        var first = buffer.TargetOf(0);
        s.SetPlacement(0, 0, 1L << 30, 1);
        policy.Evaluate(s, buffer);
        Assert.That((first, buffer.TargetOf(0)), Is.EqualTo((2, 1)));
    }

    [Test]
    public void Evaluate_VmMovedBetweenWindows_TargetIsNotItsNewHost()
    {
        // The VM now runs on h1 (its best before): its best other host is h2.
        var s = NearHostsFleet(h1FreeBytes: 8L << 30);
        var policy = Policy(windows: 3, o => o.CandidateIndexDepth = 4);
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        policy.Evaluate(s, buffer);
        var first = buffer.TargetOf(0);
        s.SetPlacement(0, 1, 1L << 30, 1);
        policy.Evaluate(s, buffer);
        Assert.That((first, buffer.ReasonOf(0), buffer.CurrentScoreOf(0)), Is.EqualTo((1, DecisionReason.AlreadyBest, 10.0)));
    }

    [TestCase(21, 2)]
    [TestCase(22, 3)]
    [TestCase(23, 4)]
    [TestCase(24, 5)]
    public void Evaluate_ReuseWhileEverythingChanges_SameDecisionsAsScanningEveryHost(int seed, int depth) =>
        SameDecisionsAsScan(seed, depth, twoOrThreeUsers: false, windows: 12, o => o.Cooldown = TimeSpan.FromSeconds(20), (s, changeSeed, window) => Change(s, new Random(changeSeed), window));

    /// <summary>The same random changes to either snapshot: hosts' room up and down, VMs moved, resized, in flight, new samples, time.</summary>
    private static void Change(FleetSnapshot s, Random random, int window)
    {
        for (var i = 0; i < 6; i++)
        {
            var h = random.Next(s.HostCount);
            var free = random.NextDouble() switch { < 0.4 => 300L << 20, < 0.7 => (1L + random.Next(3)) << 30, _ => 64L << 30 };
            var availability = random.NextDouble() < 0.05 ? HostAvailability.Down : HostAvailability.Available;
            s.SetHost(h, availability, free, 1 + random.Next(64));
        }

        for (var i = 0; i < 20; i++)
        {
            var vm = random.Next(s.VmCount);
            switch (random.Next(4))
            {
                case 0:
                    s.SetPlacement(vm, random.Next(s.HostCount), s.MemoryBytesOf(vm), s.VCpusOf(vm));
                    break;
                case 1:
                    s.SetPlacement(vm, s.PlacementOf(vm), (256L << 20) * (1 + random.Next(4)), 1 + random.Next(3));
                    break;
                case 2:
                    s.SetMigrationHistory(vm, s.Now, inFlight: random.Next(2) == 0);
                    break;
                default:
                    s.SetMigrationHistory(vm, null, inFlight: false);
                    break;
            }
        }

        for (var i = 0; i < 2; i++)
        {
            var p = random.Next(s.VantagePointCount);
            for (var h = 0; h < s.HostCount; h++)
            {
                if (random.NextDouble() < 0.5)
                {
                    s.SetLatency(p, h, Summary(5 + (5 * random.Next(30)), s.Now));
                }
            }
        }

        // Time moves on: some cells turn stale on their own (their newest sample is up to 3 s old, the bound 30 s).
        s.Now += TimeSpan.FromSeconds(window % 4 == 3 ? 29 : 1);
    }
}
