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

    /// <summary>VMs of one user ("edge") on h0, of <paramref name="vmBytes"/> and 1 vCPU each, over hosts with 64 vCPUs.</summary>
    private static FleetSnapshot EdgeUsersFleet(int vmCount, Func<int, long> freeBytes, Func<int, double> latencyMs, long vmBytes)
    {
        var s = new FleetSnapshot(
            [.. Enumerable.Range(0, ReuseHostCount).Select(h => $"h{h}")],
            [.. Enumerable.Range(0, vmCount).Select(v => new VmDefinition($"vm{v}", [new VmUser("edge")]))]) { Now = Now };
        for (var h = 0; h < ReuseHostCount; h++)
        {
            s.SetHost(h, HostAvailability.Available, freeBytes(h), 64);
            s.SetLatency(0, h, Summary(latencyMs(h), Now));
        }

        for (var v = 0; v < vmCount; v++)
        {
            s.SetPlacement(v, 0, vmBytes, 1);
        }

        return s;
    }

    /// <summary>
    /// Applies each change to a fleet and to its copy (both from <paramref name="build"/>), then evaluates the
    /// first with the index (reusing searches) and the copy with the naive scan: every VM's outcome must be the
    /// same each time. Returns what <paramref name="readOutcomes"/> read from the reusing buffer after each evaluation.
    /// </summary>
    private static List<string> SameAsScanAfterEachChange(Func<FleetSnapshot> build, Func<DecisionBuffer, string[]> readOutcomes, params Action<FleetSnapshot>[] changes)
    {
        var reused = build();
        var scanned = build();
        var policy = Policy(windows: 3, o => o.CandidateIndexDepth = 4);
        var scanPolicy = Policy(windows: 3, o => o.CandidateIndexDepth = 0);
        var buffer = new DecisionBuffer(reused, recordCandidates: false);
        var scanBuffer = new DecisionBuffer(scanned, recordCandidates: false);
        var read = new List<string>();
        for (var evaluation = 0; evaluation < changes.Length; evaluation++)
        {
            changes[evaluation](reused);
            changes[evaluation](scanned);
            policy.Evaluate(reused, buffer);
            scanPolicy.Evaluate(scanned, scanBuffer);
            for (var vm = 0; vm < reused.VmCount; vm++)
            {
                Assert.That(Outcome(buffer, vm), Is.EqualTo(Outcome(scanBuffer, vm)), $"evaluation {evaluation + 1}, vm{vm}");
            }

            read.AddRange(readOutcomes(buffer));
            reused.AdvanceConfirmations(buffer);
            scanned.AdvanceConfirmations(scanBuffer);
        }

        return read;
    }

    [Test]
    public void Evaluate_FewVmsChangeHostSizeOrMigrationBetweenWindows_SameDecisionsAsTheScan()
    {
        // 40 VMs of one user on h0 (300 ms), 4 GiB each, so h1 (10 ms, 2 GiB free) fits none: their best is h2
        // (20 ms). No room grows and, but for window 2, no row is written: the reuse must take each VM that
        // changed from the snapshot's list of changes. Window 2: VM 7 starts migrating (so it is passed over), and
        // h2 drops to 15 ms for everyone. Window 3: VM 7's migration ended on h0 after all (its entry from window
        // 1 predates the new row), VM 3 shrinks to 1 GiB (its best is now h1), and VM 5 now runs on h1.
        var outcomes = SameAsScanAfterEachChange(
            () => EdgeUsersFleet(40, h => h == 1 ? 2L << 30 : 64L << 30, h => h switch { 1 => 10, 2 => 20, 3 => 40, _ => 300 }, 4L << 30),
            b => [$"{b.TargetOf(3)} {b.TargetScoreOf(3)}", $"{b.ReasonOf(5)}", $"{b.ReasonOf(7)} {b.TargetScoreOf(7)}"],
            _ => { },
            s =>
            {
                s.SetMigrationHistory(7, lastMoveAt: null, inFlight: true);
                s.SetLatency(0, 2, Summary(15, Now));
            },
            s =>
            {
                s.SetMigrationHistory(7, lastMoveAt: null, inFlight: false);
                s.SetPlacement(3, 0, 1L << 30, 1);
                s.SetPlacement(5, 1, 4L << 30, 1);
            });
        Assert.That(outcomes, Is.EqualTo(new[]
        {
            "2 20", "AwaitingConfirmation", "AwaitingConfirmation 20",
            "2 15", "AwaitingConfirmation", "MigrationInProgress NaN",
            "1 10", "AlreadyBest", "AwaitingConfirmation 15",
        }));
    }

    [Test]
    public void Evaluate_ChangeListStartsANewRoundBetweenWindows_SameDecisionsAsTheScan()
    {
        // Three VMs: the snapshot lists 6 changes, then starts again, and the first window read 3 (their
        // placements). Between windows VM 0 is placed on h1 at 1 GiB (the 4th), then VM 2 is resized 6 times
        // and ends as it was: the list starts a new round and holds 4 again, the 4th being VM 2's. Reading
        // from the 4th would miss VM 0; the buffer must look at every VM.
        var outcomes = SameAsScanAfterEachChange(
            () => EdgeUsersFleet(3, h => h == 1 ? 2L << 30 : 64L << 30, h => h switch { 1 => 10, 2 => 20, _ => 300 }, 4L << 30),
            b => [$"{b.ReasonOf(0)} {b.CurrentScoreOf(0)}"],
            _ => { },
            s =>
            {
                s.SetPlacement(0, 1, 1L << 30, 1);
                for (var i = 0; i < 6; i++)
                {
                    s.SetPlacement(2, 0, i % 2 == 0 ? 1L << 30 : 4L << 30, 1);
                }
            });
        Assert.That(outcomes, Is.EqualTo(new[] { "AwaitingConfirmation 300", "AlreadyBest 10" }));
    }

    [Test]
    public void Evaluate_RowWrittenWhileRulesHeldReuseOff_NextEvaluationWithoutRulesSearchesAgain()
    {
        // Evaluation 2 runs with a rule (a VM pinned), so it takes the checked scan and reuses nothing, and it
        // prepares the row written before it. Evaluation 3, without rules, prepares no row: the entries from
        // evaluation 1 predate that row, and must not stand.
        var targets = SameAsScanAfterEachChange(
            () => EdgeUsersFleet(3, _ => 64L << 30, h => h switch { 1 => 10, 2 => 20, _ => 300 }, 1L << 30),
            b => [$"{b.TargetOf(0)} {b.TargetScoreOf(0)}"],
            _ => { },
            s =>
            {
                s.SetLatency(0, 2, Summary(5, Now));
                s.SetRules(PlacementRules.Empty.WithPinned("vm2", pinned: true));
            },
            s => s.SetRules(PlacementRules.Empty));
        Assert.That(targets, Is.EqualTo(new[] { "1 10", "2 5", "2 5" }));
    }

    [Test]
    public void Evaluate_MovesFillEveryHost_LaterVmsDecideAsTheScan()
    {
        // Every host has room for one VM, and every VM wants to move: the first moves fill every host, and
        // each VM after that finds no host with room (no candidates, or stale data where one of its cells is
        // stale), without a search. Two windows (the moves are not applied, so they repeat on reused entries).
        const int hostCount = ReuseHostCount, vmCount = 300, vantagePoints = 12;
        FleetSnapshot Build()
        {
            var s = new FleetSnapshot(
                [.. Enumerable.Range(0, hostCount).Select(h => $"h{h}")],
                [.. Enumerable.Range(0, vmCount).Select(v => new VmDefinition($"vm{v}", [new VmUser($"p{v % vantagePoints}")]))]) { Now = Now };
            for (var h = 0; h < hostCount; h++)
            {
                s.SetHost(h, HostAvailability.Available, (3L << 30) / 2, 2); // one 1 GiB VM, then closed
            }

            for (var p = 0; p < s.VantagePointCount; p++)
            {
                var g = int.Parse(s.VantagePointName(p).AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
                for (var h = 0; h < hostCount; h++)
                {
                    var newest = g == 5 && h == 7 ? Now - TimeSpan.FromMinutes(5) : Now;
                    s.SetLatency(p, h, Summary(5 + (((h * 7) + (g * 3)) % hostCount * 5), newest));
                }
            }

            for (var v = 0; v < vmCount; v++)
            {
                // On the host farthest from its users.
                var g = v % vantagePoints;
                var far = Enumerable.Range(0, hostCount).MaxBy(h => ((h * 7) + (g * 3)) % hostCount);
                s.SetPlacement(v, far, 1L << 30, 1);
            }

            return s;
        }

        var indexed = Build();
        var scanned = Build();
        var indexPolicy = Policy(windows: 1, o => { o.CandidateIndexDepth = 2; o.MemoryReserveBytes = 0; });
        var scanPolicy = Policy(windows: 1, o => { o.CandidateIndexDepth = 0; o.MemoryReserveBytes = 0; });
        var fast = new DecisionBuffer(indexed, recordCandidates: false);
        var slow = new DecisionBuffer(scanned, recordCandidates: false);
        for (var window = 0; window < 2; window++)
        {
            indexPolicy.Evaluate(indexed, fast);
            scanPolicy.Evaluate(scanned, slow);
            for (var vm = 0; vm < vmCount; vm++)
            {
                Assert.That(Outcome(fast, vm), Is.EqualTo(Outcome(slow, vm)), $"window {window}, vm{vm}: indexed vs scanned");
            }

            // Every host took one VM; every VM after the last move found none with room.
            var last = Enumerable.Range(0, vmCount).Last(vm => fast.KindOf(vm) == DecisionKind.Move);
            var after = Enumerable.Range(last + 1, vmCount - last - 1).Select(fast.ReasonOf).ToArray();
            Assert.That(fast.MoveCount, Is.EqualTo(hostCount), $"window {window}: moves");
            Assert.That(after, Has.Length.GreaterThan(200).And.All.AnyOf(DecisionReason.NoCandidates, DecisionReason.StaleData), $"window {window}: after the last move");
            Assert.That(after, Has.Some.EqualTo(DecisionReason.NoCandidates).And.Some.EqualTo(DecisionReason.StaleData), $"window {window}: both reasons");
            indexed.AdvanceConfirmations(fast);
            scanned.AdvanceConfirmations(slow);
        }
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
