using Cloudlets.Core.Decisions;

namespace Cloudlets.Benchmarks.Decisions;

/// <summary>
/// The lowest-latency decision written the obvious way — LINQ over lists of candidates, a new
/// result array per window — as the baseline the array-based policy is measured against. It makes
/// the same decision as <see cref="LowestLatencyPolicy"/> for every VM (the benchmark's setup checks),
/// reading the snapshot only through its public views, as a policy in any assembly would.
/// </summary>
internal static class LinqBaseline
{
    internal readonly record struct Result(DecisionKind Kind, DecisionReason Reason, int Target, int NextPendingHost, int NextPendingWindows);

    private sealed record Candidate(int Host, CandidateStatus Status, double Score);

    public static Result[] Evaluate(FleetSnapshot s, LowestLatencyPolicyOptions o)
    {
        var hosts = s.HostCount;
        var reservedMemory = new Dictionary<int, long>();
        var reservedVCpus = new Dictionary<int, int>();
        var results = new Result[s.VmCount];
        foreach (var vm in Enumerable.Range(0, s.VmCount))
        {
            results[vm] = EvaluateVm(s, o, vm, hosts, reservedMemory, reservedVCpus);
        }

        return results;
    }

    public static void Advance(FleetSnapshot s, Result[] results)
    {
        foreach (var (r, vm) in results.Select((r, i) => (r, i)))
        {
            s.SetConfirmation(vm, r.NextPendingHost, r.NextPendingWindows);
        }
    }

    private static (bool Stale, double Value) Cell(FleetSnapshot s, LowestLatencyPolicyOptions o, int vantage, int host)
    {
        var c = s.LatencyOf(vantage, host);
        if (c.HasData && s.LatencyAgeOf(vantage, host) > o.MaxSampleAge)
        {
            return (true, double.NaN);
        }

        var value = c.Value(o.Statistic);
        return !c.HasData || c.Received == 0 || c.LossRate > o.MaxLossRate || double.IsNaN(value)
            ? (false, double.PositiveInfinity)
            : (false, value);
    }

    private static (bool Stale, double Score) Score(FleetSnapshot s, LowestLatencyPolicyOptions o, int vm, int host)
    {
        var vantagePoints = s.UserVantagePointsOf(vm).ToArray();
        var weights = s.UserWeightsOf(vm).ToArray();
        var users = vantagePoints.Zip(weights, (vantage, weight) => (Cell: Cell(s, o, vantage, host), Weight: weight)).ToList();
        if (users.Any(u => u.Cell.Stale))
        {
            return (true, double.NaN);
        }

        var ordered = users.OrderBy(u => u.Cell.Value).ToList();
        var threshold = o.UserPercentile * users.Sum(u => u.Weight) * (1 - 1e-12);
        var cumulative = 0.0;
        var pick = ordered.FirstOrDefault(u => (cumulative += u.Weight) >= threshold, ordered[^1]);
        return (false, pick.Cell.Value);
    }

    private static Result EvaluateVm(FleetSnapshot s, LowestLatencyPolicyOptions o, int vm, int hosts, Dictionary<int, long> reservedMemory, Dictionary<int, int> reservedVCpus)
    {
        var cur = s.PlacementOf(vm);
        Result Done(DecisionKind kind, DecisionReason reason, int target = -1, int pendingHost = -1, int pendingWindows = 0) =>
            new(kind, reason, target, pendingHost, pendingWindows);

        if (s.UserVantagePointsOf(vm).IsEmpty)
        {
            return Done(DecisionKind.NoDecision, DecisionReason.NoUsers);
        }

        if (cur < 0)
        {
            return Done(DecisionKind.NoDecision, DecisionReason.PlacementUnknown);
        }

        if (s.IsMigrating(vm))
        {
            return Done(DecisionKind.NoDecision, DecisionReason.MigrationInProgress);
        }

        if (s.AvailabilityOf(cur) == HostAvailability.Down)
        {
            return Done(DecisionKind.NoDecision, DecisionReason.CurrentHostDown);
        }

        var current = Score(s, o, vm, cur);
        if (current.Stale)
        {
            return Done(DecisionKind.NoDecision, DecisionReason.StaleData);
        }

        var memory = s.MemoryBytesOf(vm);
        var vcpus = s.VCpusOf(vm);
        var candidates = Enumerable.Range(0, hosts)
            .Where(h => h != cur)
            .Select(h =>
            {
                if (s.AvailabilityOf(h) == HostAvailability.Down)
                {
                    return new Candidate(h, CandidateStatus.HostDown, double.NaN);
                }

                if (s.AvailabilityOf(h) == HostAvailability.BackedOff)
                {
                    return new Candidate(h, CandidateStatus.BackedOff, double.NaN);
                }

                var (stale, score) = Score(s, o, vm, h);
                var fits = s.FreeMemoryBytesOf(h) - reservedMemory.GetValueOrDefault(h) - o.MemoryReserveBytes >= memory
                    && s.FreeVCpusOf(h) - reservedVCpus.GetValueOrDefault(h) >= vcpus;
                var status = stale ? CandidateStatus.Stale
                    : double.IsPositiveInfinity(score) ? CandidateStatus.Unreachable
                    : !fits ? CandidateStatus.NoCapacity
                    : CandidateStatus.Eligible;
                return new Candidate(h, status, score);
            })
            .ToList();

        var eligible = candidates.Where(c => c.Status == CandidateStatus.Eligible).OrderBy(c => c.Score).ToList();
        if (eligible.Count == 0)
        {
            return candidates.Any(c => c.Status == CandidateStatus.Stale)
                ? Done(DecisionKind.NoDecision, DecisionReason.StaleData)
                : Done(DecisionKind.Stay, DecisionReason.NoCandidates);
        }

        var best = eligible[0];
        var pending = eligible.FirstOrDefault(c => c.Host == s.ConfirmationOf(vm).PendingHost);
        if (pending is not null && pending.Score <= best.Score + o.TieToleranceMs)
        {
            best = pending;
        }

        var gain = current.Score - best.Score;
        if (Math.Abs(gain) <= o.TieToleranceMs)
        {
            return Done(DecisionKind.Stay, DecisionReason.Tie, best.Host);
        }

        if (gain < 0)
        {
            return Done(DecisionKind.Stay, DecisionReason.AlreadyBest);
        }

        if (gain < o.MinAbsoluteGainMs)
        {
            return Done(DecisionKind.Stay, DecisionReason.BelowAbsoluteGain, best.Host);
        }

        var relative = double.IsPositiveInfinity(current.Score) ? 1.0 : gain / current.Score;
        if (relative < o.MinRelativeGain)
        {
            return Done(DecisionKind.Stay, DecisionReason.BelowRelativeGain, best.Host);
        }

        var bandwidth = s.BandwidthOf(cur, best.Host) is var b && double.IsNaN(b) ? o.DefaultBandwidthBytesPerSecond : b;
        var dirty = double.IsNaN(s.DirtyRateOf(vm)) ? o.DefaultDirtyRateBytesPerSecond : s.DirtyRateOf(vm);
        var cost = bandwidth - dirty <= 0 ? double.PositiveInfinity : o.MigrationPenaltyMsSeconds + (memory / (bandwidth - dirty) * o.MigrationImpactMs);
        if (double.IsPositiveInfinity(cost) || cost > gain * o.ExpectedStay.TotalSeconds)
        {
            return Done(DecisionKind.Stay, DecisionReason.CostExceedsGain, best.Host);
        }

        if (s.LastMoveOf(vm) is { } lastMove && s.Now - lastMove < o.Cooldown)
        {
            return Done(DecisionKind.Stay, DecisionReason.Cooldown, best.Host);
        }

        var (pendingHost, pendingWindows) = s.ConfirmationOf(vm);
        var streak = (pendingHost >= 0 ? pendingWindows : 0) + 1;
        if (streak < o.ConfirmationWindows)
        {
            return Done(DecisionKind.Stay, DecisionReason.AwaitingConfirmation, best.Host, best.Host, streak);
        }

        reservedMemory[best.Host] = reservedMemory.GetValueOrDefault(best.Host) + memory;
        reservedVCpus[best.Host] = reservedVCpus.GetValueOrDefault(best.Host) + vcpus;
        return Done(DecisionKind.Move, DecisionReason.Move, best.Host);
    }
}
