using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

/// <summary>
/// The per-vantage-point host orderings (walked by one-user VMs once their nearest-host list holds no
/// host with room, with cursors past the hosts that filled up during the evaluation) must decide exactly
/// what scanning every host decides — in particular while the hosts fill up within one evaluation.
/// </summary>
public partial class LowestLatencyPolicyTests
{
    [TestCase(31)]
    [TestCase(32)]
    [TestCase(33)]
    public void Evaluate_HostsFillUpDuringTheEvaluation_SameDecisionsAsScanningEveryHost(int seed)
    {
        // Enough hosts for the default depth of 16 and for more than the open hosts scanned directly; few
        // vCPUs per host, so that the moves of one evaluation fill most of them; VMs of 1–5 vCPUs (every
        // cursor class); a 5 ms latency grid (many ties); new samples on a vantage point between windows.
        const int hostCount = 160, vantagePoints = 6, vmCount = 3000, windows = 4;
        var indexed = OrderingFleet(seed, hostCount, vantagePoints, vmCount);
        var scanned = OrderingFleet(seed, hostCount, vantagePoints, vmCount);
        var indexPolicy = Policy(windows: 1, o => { o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; });
        var scanPolicy = Policy(windows: 1, o => { o.CandidateIndexDepth = 0; o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; });
        var noRoom = SameOutcomesEachWindow(indexed, indexPolicy, scanned, scanPolicy, windows, minMoves: 100, (s, window) =>
        {
            // New samples a little off the old ones (a tenth of the hosts 5 ms worse or better): the
            // ordering is rebuilt by insertion from the previous one, ties to the lower host index.
            var p = window % vantagePoints;
            for (var h = 0; h < hostCount; h++)
            {
                var ms = s.LatencyOf(p, h).MedianMs + (h % 10 != window ? 0 : h % 20 < 10 ? 5 : -5);
                s.SetLatency(p, h, Summary(Math.Max(5, ms), Now));
            }
        });

        // The hosts must really have filled up: some VMs found no host with room at all.
        Assert.That(noRoom, Is.GreaterThan(0), "the hosts never filled up: the cursors were not exercised");
    }

    [Test]
    public void Evaluate_RulesClearedAfterAnEvaluationWithThem_SameDecisionsAsScanningEveryHost()
    {
        // With rules the policy takes the checked scan and no orderings are made; the first evaluation
        // without rules must build them for every vantage point, not only for rows that changed.
        const int hostCount = 160, vantagePoints = 6, vmCount = 3000;
        var indexed = OrderingFleet(34, hostCount, vantagePoints, vmCount);
        var scanned = OrderingFleet(34, hostCount, vantagePoints, vmCount);
        var indexPolicy = Policy(windows: 1, o => { o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; });
        var scanPolicy = Policy(windows: 1, o => { o.CandidateIndexDepth = 0; o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; });
        var fast = new DecisionBuffer(indexed, recordCandidates: false);
        var slow = new DecisionBuffer(scanned, recordCandidates: false);
        indexed.SetRules(new PlacementRules { DrainedHosts = ["h0"] });
        indexPolicy.Evaluate(indexed, fast);
        indexed.SetRules(PlacementRules.Empty);
        indexPolicy.Evaluate(indexed, fast);
        scanPolicy.Evaluate(scanned, slow);
        for (var vm = 0; vm < vmCount; vm++)
        {
            var a = Outcome(fast, vm);
            var b = Outcome(slow, vm);
            Assert.That(a, Is.EqualTo(b), $"vm{vm}: indexed vs scanned");
        }
    }

    [TestCase(0.9, 41)] // at the default percentile every VM of up to six users has an essential user
    [TestCase(0.9, 42)]
    [TestCase(0.5, 43)]
    [TestCase(0.6, 44)]
    public void Evaluate_SeveralUsersWithAndWithoutAnEssentialOne_SameDecisionsAsScanningEveryHost(double percentile, int seed)
    {
        // VMs of one to six users with weights 1–10: some have a user whose weight the others cannot make up
        // for (its ordering is walked, the others bounded by its latency), some have none (the threshold
        // search over the nearest-host lists). Latencies independent per pair, so that many walks run out
        // of their budget and scan; few vCPUs per host, so that the open hosts dwindle to the side-by-side copy.
        const int hostCount = 200, vantagePoints = 12, vmCount = 3000, windows = 4;
        var indexed = ManyUserFleet(seed, hostCount, vantagePoints, vmCount);
        var scanned = ManyUserFleet(seed, hostCount, vantagePoints, vmCount);
        var indexPolicy = Policy(windows: 1, o => { o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; o.UserPercentile = percentile; });
        var scanPolicy = Policy(windows: 1, o => { o.CandidateIndexDepth = 0; o.MinAbsoluteGainMs = 1; o.MinRelativeGain = 0.01; o.UserPercentile = percentile; });
        var essential = 0;
        var none = 0;
        for (var vm = 0; vm < vmCount; vm++)
        {
            var weights = indexed.UserWeightsOf(vm);
            var total = indexed.TotalWeightOf(vm);
            var has = false;
            foreach (var w in weights)
            {
                has |= total - w < percentile * total * 0.999;
            }

            essential += has && weights.Length > 1 ? 1 : 0;
            none += has ? 0 : 1;
        }

        Assert.Multiple(() =>
        {
            Assert.That(essential, Is.GreaterThan(100), "VMs of several users with an essential one");
            Assert.That(none, percentile < 0.9 ? Is.GreaterThan(100) : Is.Zero, "VMs without an essential user");
        });
        var noRoom = SameOutcomesEachWindow(indexed, indexPolicy, scanned, scanPolicy, windows, minMoves: 100, (s, window) =>
        {
            var p = window % vantagePoints;
            for (var h = 0; h < hostCount; h++)
            {
                s.SetLatency(p, h, Summary(s.LatencyOf(p, h).MedianMs * (h % 3 == 0 ? 1.03 : 0.98), Now));
            }
        });

        Assert.That(noRoom, Is.GreaterThan(0), "the hosts never filled up: the open hosts were not copied side by side");
    }

    /// <summary>
    /// Evaluates <paramref name="fleet"/> and its copy <paramref name="expectedFleet"/> window by window with
    /// their policies, each into its own buffer: every VM's outcome must be the same, and more than
    /// <paramref name="minMoves"/> VMs must move in each window. Between windows the confirmations advance and
    /// <paramref name="change"/> writes new samples into each fleet (it reads what it changes from the fleet it
    /// is given, so both get the same values). Returns how many outcomes found no host with room.
    /// </summary>
    private static int SameOutcomesEachWindow(
        FleetSnapshot fleet, LowestLatencyPolicy policy, FleetSnapshot expectedFleet, LowestLatencyPolicy expectedPolicy,
        int windows, int minMoves, Action<FleetSnapshot, int> change)
    {
        var actual = new DecisionBuffer(fleet, recordCandidates: false);
        var expected = new DecisionBuffer(expectedFleet, recordCandidates: false);
        var noRoom = 0;
        for (var window = 0; window < windows; window++)
        {
            policy.Evaluate(fleet, actual);
            expectedPolicy.Evaluate(expectedFleet, expected);
            for (var vm = 0; vm < fleet.VmCount; vm++)
            {
                var outcome = Outcome(actual, vm);
                Assert.That(outcome, Is.EqualTo(Outcome(expected, vm)), $"window {window}, vm{vm}");
                noRoom += outcome.Reason == DecisionReason.NoCandidates ? 1 : 0;
            }

            Assert.That(actual.MoveCount, Is.GreaterThan(minMoves), $"window {window}: too few moves to fill the hosts");
            fleet.AdvanceConfirmations(actual);
            expectedFleet.AdvanceConfirmations(expected);
            change(fleet, window);
            change(expectedFleet, window);
        }

        return noRoom;
    }

    /// <param name="openHosts">Hosts from this index on get too little memory for any VM (not open).</param>
    internal static FleetSnapshot ManyUserFleet(int seed, int hosts, int vantagePoints, int vms, int openHosts = int.MaxValue)
    {
        var random = new Random(seed);
        var definitions = Enumerable.Range(0, vms).Select(v => new VmDefinition(
            $"vm{v}",
            [.. Enumerable.Range(0, random.NextDouble() < 0.4 ? 1 : 2 + random.Next(5)).Select(j => new VmUser($"p{(j * 5 + random.Next(vantagePoints)) % vantagePoints}", 1 + random.Next(10)))]))
            .Select(d => new VmDefinition(d.Name, [.. d.Users.DistinctBy(u => u.VantagePoint)])).ToArray();
        var s = new FleetSnapshot([.. Enumerable.Range(0, hosts).Select(h => $"h{h}")], definitions) { Now = Now };
        for (var h = 0; h < hosts; h++)
        {
            var availability = random.NextDouble() < 0.05 ? HostAvailability.Down : HostAvailability.Available;
            var free = (4L + random.Next(8)) << 30;
            s.SetHost(h, availability, h < openHosts ? free : 64L << 20, 2 + random.Next(10));
        }

        for (var p = 0; p < s.VantagePointCount; p++)
        {
            for (var h = 0; h < hosts; h++)
            {
                s.SetLatency(p, h, Summary(5 + (2.5 * random.Next(60)), Now - TimeSpan.FromSeconds(random.Next(3))));
            }
        }

        for (var v = 0; v < vms; v++)
        {
            s.SetPlacement(v, random.Next(hosts), (256L << 20) * (1 + random.Next(8)), 1 + random.Next(5));
        }

        return s;
    }

    private static FleetSnapshot OrderingFleet(int seed, int hosts, int vantagePoints, int vms)
    {
        var random = new Random(seed);
        var definitions = Enumerable.Range(0, vms).Select(v => new VmDefinition(
            $"vm{v}",
            [.. Enumerable.Range(0, random.NextDouble() < 0.8 ? 1 : 2).Select(_ => new VmUser($"p{random.Next(vantagePoints)}", 1 + random.Next(3)))])).ToArray();
        var s = new FleetSnapshot([.. Enumerable.Range(0, hosts).Select(h => $"h{h}")], definitions) { Now = Now };
        for (var h = 0; h < hosts; h++)
        {
            var availability = random.NextDouble() < 0.05 ? HostAvailability.Down : HostAvailability.Available;
            var free = random.NextDouble() < 0.1 ? 300L << 20 : (4L + random.Next(8)) << 30;
            s.SetHost(h, availability, free, 2 + random.Next(10));
        }

        for (var p = 0; p < s.VantagePointCount; p++)
        {
            for (var h = 0; h < hosts; h++)
            {
                s.SetLatency(p, h, Summary(5 + (5 * random.Next(30)), Now - TimeSpan.FromSeconds(random.Next(3))));
            }
        }

        for (var v = 0; v < vms; v++)
        {
            s.SetPlacement(v, random.Next(hosts), (256L << 20) * (1 + random.Next(8)), 1 + random.Next(5));
        }

        return s;
    }
}
