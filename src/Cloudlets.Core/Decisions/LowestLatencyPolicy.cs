using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Decisions;

/// <summary>
/// The default policy: move a VM to the host with the lowest latency to its users, calmly.
/// </summary>
/// <remarks>
/// <para>
/// A VM's score on a host is the weighted percentile (<see cref="LowestLatencyPolicyOptions.UserPercentile"/>)
/// of its users' latency to that host; an unreachable user counts as infinitely slow, and a host whose
/// data is stale for any user is not scored.
/// </para>
/// <para>
/// The gates, in order: ties keep the VM; the gain must reach both the absolute and the relative
/// minimum; the estimated migration cost must be below the gain over the expected stay; the VM must
/// be out of its cooldown; and the gain must have been seen in
/// <see cref="LowestLatencyPolicyOptions.ConfirmationWindows"/> consecutive windows. A move reserves
/// the VM's memory and vCPUs on its destination for the rest of the evaluation, so two VMs are never
/// sent into the same last slot.
/// </para>
/// </remarks>
public sealed class LowestLatencyPolicy : IMigrationPolicy
{
    private readonly LowestLatencyPolicyOptions _options;
    private readonly double _percentile;
    private readonly double _minAbsolute;
    private readonly double _minRelative;
    private readonly double _tie;
    private readonly double _maxLoss;
    private readonly long _maxAgeTicks;
    private readonly long _cooldownTicks;
    private readonly int _windows;
    private readonly long _reserve;
    private readonly double _bandwidth;
    private readonly double _dirty;
    private readonly double _staySeconds;
    private readonly double _impact;
    private readonly double _penalty;
    private readonly LatencyStatistic _statistic;

    /// <summary>Builds the policy, validating the options once.</summary>
    /// <param name="options">The options, copied; <see langword="null"/> for the defaults.</param>
    /// <exception cref="OptionsValidationException">An option is out of its range (the exception lists every violation with its property).</exception>
    public LowestLatencyPolicy(LowestLatencyPolicyOptions? options = null)
    {
        _options = (options ?? new LowestLatencyPolicyOptions()).Clone();
        OptionsErrors.ValidateAndThrow(_options);

        _statistic = _options.Statistic;
        _percentile = _options.UserPercentile;
        _minAbsolute = _options.MinAbsoluteGainMs;
        _minRelative = _options.MinRelativeGain;
        _tie = _options.TieToleranceMs;
        _maxLoss = _options.MaxLossRate;
        _maxAgeTicks = _options.MaxSampleAge.Ticks;
        _cooldownTicks = _options.Cooldown.Ticks;
        _windows = _options.ConfirmationWindows;
        _reserve = _options.MemoryReserveBytes;
        _bandwidth = _options.DefaultBandwidthBytesPerSecond;
        _dirty = _options.DefaultDirtyRateBytesPerSecond;
        _staySeconds = _options.ExpectedStay.TotalSeconds;
        _impact = _options.MigrationImpactMs;
        _penalty = _options.MigrationPenaltyMsSeconds;
    }

    /// <summary>A copy of the options the policy was built with.</summary>
    public LowestLatencyPolicyOptions Options => _options.Clone();

    /// <inheritdoc />
    public void Evaluate(FleetSnapshot snapshot, DecisionBuffer results)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(results);
        if (!results.Fits(snapshot))
        {
            throw new ArgumentException("The decision buffer was created for a different snapshot layout.", nameof(results));
        }

        var now = snapshot.Now.UtcTicks;
        PrepareRooms(snapshot, results);
        PrepareCells(snapshot, results, now);
        results.RequiredWindows = _windows;
        results.EvaluatedAt = snapshot.Now;
        var moves = 0;
        for (var vm = 0; vm < snapshot.VmCount; vm++)
        {
            if (EvaluateVm(snapshot, results, vm, now))
            {
                moves++;
            }
        }

        results.MoveCount = moves;
    }

    /// <summary>Each user's latency to each host as one number: ms, +inf when unreachable, NaN when stale.</summary>
    private void PrepareCells(FleetSnapshot s, DecisionBuffer r, long now)
    {
        var cells = s.Cells;
        var values = r.CellValue;
        var hosts = s.HostCount;
        Array.Clear(r.StaleCount);
        for (var i = 0; i < cells.Length; i++)
        {
            ref readonly var c = ref cells[i];
            if (c.HasData && now - c.NewestTicks > _maxAgeTicks)
            {
                values[i] = double.NaN;
                if (s.Availability[i % hosts] == HostAvailability.Available)
                {
                    r.StaleCount[i / hosts]++;
                }

                continue;
            }

            values[i] = Reachable(c);
        }
    }

    /// <summary>A fresh cell's value: the chosen statistic in ms, or +inf when the users cannot reach the host (no data, nothing answered, too lossy).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private double Reachable(in LatencyCell c)
    {
        var value = c.Value(_statistic);
        return !c.HasData || c.Received == 0 || c.LossRate > _maxLoss || double.IsNaN(value) ? double.PositiveInfinity : value;
    }

    /// <inheritdoc />
    /// <remarks>
    /// The weighted percentile of the VM's users' latency to the host at <see cref="FleetSnapshot.Now"/>:
    /// +inf when its users cannot reach it, NaN when any user's data is stale or the VM has no users —
    /// the same number an evaluation compares.
    /// </remarks>
    public double Score(FleetSnapshot snapshot, int vmIndex, int hostIndex)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)vmIndex, (uint)snapshot.VmCount, nameof(vmIndex));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)hostIndex, (uint)snapshot.HostCount, nameof(hostIndex));
        var vantage = snapshot.UserVantagePointsOf(vmIndex);
        if (vantage.Length == 0)
        {
            return double.NaN;
        }

        var now = snapshot.Now.UtcTicks;
        Span<double> values = vantage.Length <= 64 ? stackalloc double[vantage.Length] : new double[vantage.Length];
        for (var j = 0; j < vantage.Length; j++)
        {
            ref readonly var c = ref snapshot.LatencyOf(vantage[j], hostIndex);
            if (c.HasData && now - c.NewestTicks > _maxAgeTicks)
            {
                return double.NaN;
            }

            values[j] = Reachable(c);
        }

        return WeightedPercentile(values, snapshot.UserWeightsOf(vmIndex), Threshold(snapshot, vmIndex));
    }

    /// <summary>The room on each host for incoming VMs; a host that may not receive VMs has none at all.</summary>
    private void PrepareRooms(FleetSnapshot s, DecisionBuffer r)
    {
        for (var h = 0; h < s.HostCount; h++)
        {
            var available = s.Availability[h] == HostAvailability.Available;
            r.RoomMemory[h] = available ? s.FreeMemoryBytes[h] - _reserve : long.MinValue;
            r.RoomVCpus[h] = available ? s.FreeVCpus[h] : int.MinValue;
        }
    }

    /// <returns>Whether the VM moves.</returns>
    private bool EvaluateVm(FleetSnapshot s, DecisionBuffer r, int vm, long now)
    {
        var hosts = s.HostCount;
        var cur = s.CurrentHost[vm];
        r.Target[vm] = -1;
        r.CurrentScore[vm] = double.NaN;
        r.TargetScore[vm] = double.NaN;
        r.Detail1[vm] = double.NaN;
        r.Detail2[vm] = double.NaN;
        r.NextPendingHost[vm] = -1;
        r.NextPendingWindows[vm] = 0;
        var record = r.CandidateStatuses is not null;
        var row = vm * hosts;
        if (record)
        {
            Array.Fill(r.CandidateStatuses!, CandidateStatus.NotEvaluated, row, hosts);
            Array.Fill(r.CandidateScores!, double.NaN, row, hosts);
        }

        if (s.UserCount[vm] == 0)
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.NoUsers);
        }

        if (cur < 0)
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.PlacementUnknown);
        }

        if (s.InFlight[vm])
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.MigrationInProgress);
        }

        if (s.Availability[cur] == HostAvailability.Down)
        {
            if (record)
            {
                r.CandidateStatuses![row + cur] = CandidateStatus.HostDown;
            }

            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.CurrentHostDown);
        }

        var currentScore = Score(s, r, vm, cur);
        var currentStale = double.IsNaN(currentScore);
        if (record)
        {
            r.CandidateStatuses![row + cur] = currentStale ? CandidateStatus.Stale
                : double.IsPositiveInfinity(currentScore) ? CandidateStatus.Unreachable : CandidateStatus.Eligible;
            r.CandidateScores![row + cur] = double.IsFinite(currentScore) ? currentScore : double.NaN;
        }

        if (currentStale)
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.StaleData);
        }

        r.CurrentScore[vm] = currentScore;
        var memory = s.VmMemoryBytes[vm];
        var vcpus = s.VmVCpus[vm];
        double bestScore;
        var best = record
            ? ScanRecording(s, r, vm, cur, memory, vcpus, out bestScore)
            : ScanFast(s, r, vm, cur, memory, vcpus, out bestScore);
        if (best < 0)
        {
            return AnyStale(s, r, vm, cur)
                ? Set(r, vm, DecisionKind.NoDecision, DecisionReason.StaleData)
                : Set(r, vm, DecisionKind.Stay, DecisionReason.NoCandidates);
        }

        // Stickiness among near-equal candidates: noise must not flip the target and restart confirmation.
        var pending = s.PendingHost[vm];
        if (pending >= 0 && pending < hosts && pending != best && pending != cur
            && r.RoomMemory[pending] >= memory && r.RoomVCpus[pending] >= vcpus)
        {
            var pendingScore = Score(s, r, vm, pending);
            if (double.IsFinite(pendingScore) && pendingScore <= bestScore + _tie)
            {
                best = pending;
                bestScore = pendingScore;
            }
        }

        var gain = currentScore - bestScore;
        if (Math.Abs(gain) <= _tie)
        {
            r.Target[vm] = best;
            r.TargetScore[vm] = bestScore;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.Tie);
        }

        if (gain < 0)
        {
            return Set(r, vm, DecisionKind.Stay, DecisionReason.AlreadyBest);
        }

        r.Target[vm] = best;
        r.TargetScore[vm] = bestScore;
        if (gain < _minAbsolute)
        {
            r.Detail1[vm] = _minAbsolute;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.BelowAbsoluteGain);
        }

        var relative = double.IsPositiveInfinity(currentScore) ? 1.0 : gain / currentScore;
        if (relative < _minRelative)
        {
            r.Detail1[vm] = _minRelative;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.BelowRelativeGain);
        }

        var bandwidth = s.Bandwidth[(cur * hosts) + best];
        if (double.IsNaN(bandwidth))
        {
            bandwidth = _bandwidth;
        }

        var dirty = s.DirtyRate[vm];
        if (double.IsNaN(dirty))
        {
            dirty = _dirty;
        }

        var effective = bandwidth - dirty;
        var cost = effective <= 0 ? double.PositiveInfinity : _penalty + (memory / effective * _impact);
        var benefit = gain * _staySeconds;
        if (double.IsPositiveInfinity(cost) || cost > benefit)
        {
            r.Detail1[vm] = cost;
            r.Detail2[vm] = benefit;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.CostExceedsGain);
        }

        var lastMove = s.LastMoveTicks[vm];
        if (lastMove != long.MinValue && now - lastMove < _cooldownTicks)
        {
            r.Detail1[vm] = TimeSpan.FromTicks(_cooldownTicks - (now - lastMove)).TotalSeconds;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.Cooldown);
        }

        var streak = (s.PendingHost[vm] >= 0 ? s.PendingWindows[vm] : 0) + 1;
        if (streak < _windows)
        {
            r.NextPendingHost[vm] = best;
            r.NextPendingWindows[vm] = streak;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.AwaitingConfirmation);
        }

        r.RoomMemory[best] -= memory;
        r.RoomVCpus[best] -= vcpus;
        Set(r, vm, DecisionKind.Move, DecisionReason.Move);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Set(DecisionBuffer r, int vm, DecisionKind kind, DecisionReason reason)
    {
        r.Kind[vm] = kind;
        r.Reason[vm] = reason;
        return false;
    }

    /// <summary>
    /// The best candidate, recording every host's status and score. Statuses in order of precedence:
    /// down, backed off, stale, unreachable, no room, eligible.
    /// </summary>
    private int ScanRecording(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, out double bestScore)
    {
        var hosts = s.HostCount;
        var row = vm * hosts;
        var best = -1;
        bestScore = double.PositiveInfinity;
        for (var h = 0; h < hosts; h++)
        {
            if (h == cur)
            {
                continue;
            }

            CandidateStatus status;
            var score = double.NaN;
            var availability = s.Availability[h];
            if (availability == HostAvailability.Down)
            {
                status = CandidateStatus.HostDown;
            }
            else if (availability == HostAvailability.BackedOff)
            {
                status = CandidateStatus.BackedOff;
            }
            else
            {
                score = Score(s, r, vm, h);
                if (double.IsNaN(score))
                {
                    status = CandidateStatus.Stale;
                }
                else if (double.IsPositiveInfinity(score))
                {
                    status = CandidateStatus.Unreachable;
                }
                else if (r.RoomMemory[h] < memory || r.RoomVCpus[h] < vcpus)
                {
                    status = CandidateStatus.NoCapacity;
                }
                else
                {
                    status = CandidateStatus.Eligible;
                    if (score < bestScore)
                    {
                        best = h;
                        bestScore = score;
                    }
                }
            }

            r.CandidateStatuses![row + h] = status;
            r.CandidateScores![row + h] = double.IsFinite(score) ? score : double.NaN;
        }

        return best;
    }

    /// <summary>
    /// The best candidate without recording anything: the hot path over a whole fleet. A stale host
    /// (NaN) and an unreachable one (+inf) never compare lower; a host that may not receive VMs has no room.
    /// </summary>
    private int ScanFast(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, out double bestScore)
    {
        var hosts = s.HostCount;
        var start = s.UserStart[vm];
        var count = s.UserCount[vm];
        var cells = r.CellValue;
        var roomMemory = r.RoomMemory.AsSpan(0, hosts);
        var roomVCpus = r.RoomVCpus.AsSpan(0, hosts);
        var best = -1;
        var bestValue = double.PositiveInfinity;
        if (count == 1)
        {
            var line = cells.AsSpan(s.UserVantage[start] * hosts, hosts);
            for (var h = 0; h < line.Length; h++)
            {
                var v = line[h];
                if (v < bestValue && h != cur && roomMemory[h] >= memory && roomVCpus[h] >= vcpus)
                {
                    best = h;
                    bestValue = v;
                }
            }
        }
        else if (count <= 3)
        {
            // Two or three users: every host's weighted percentile at once (vectorised), then the
            // same scan as for one user.
            var scores = r.HostScores.AsSpan(0, hosts);
            var line1 = cells.AsSpan(s.UserVantage[start] * hosts, hosts);
            var line2 = cells.AsSpan(s.UserVantage[start + 1] * hosts, hosts);
            var three = count == 3;
            var line3 = three ? cells.AsSpan(s.UserVantage[start + 2] * hosts, hosts) : line2;
            WeightedPercentiles(
                line1, line2, line3,
                s.UserWeight[start], s.UserWeight[start + 1], three ? s.UserWeight[start + 2] : 0,
                Threshold(s, vm),
                scores);
            for (var h = 0; h < scores.Length; h++)
            {
                var v = scores[h];
                if (v < bestValue && h != cur && roomMemory[h] >= memory && roomVCpus[h] >= vcpus)
                {
                    best = h;
                    bestValue = v;
                }
            }
        }
        else
        {
            var rows = r.UserRows;
            for (var j = 0; j < count; j++)
            {
                rows[j] = s.UserVantage[start + j] * hosts;
            }

            var threshold = Threshold(s, vm);
            var line1 = cells.AsSpan(rows[0], hosts);
            var line2 = cells.AsSpan(rows[1], hosts);
            var line3 = cells.AsSpan(rows[2], hosts);
            for (var h = 0; h < line1.Length && h < line2.Length && h < line3.Length; h++)
            {
                var beats = (line1[h] < bestValue) | (line2[h] < bestValue) | (line3[h] < bestValue);
                for (var j = 3; j < count; j++)
                {
                    beats |= cells[rows[j] + h] < bestValue;
                }

                // Percentile passes NaN (stale) through, and NaN never compares lower.
                if (!beats || h == cur || roomMemory[h] < memory || roomVCpus[h] < vcpus)
                {
                    continue;
                }

                var v = Percentile(s, r, start, count, rows, h, threshold);
                if (v < bestValue)
                {
                    best = h;
                    bestValue = v;
                }
            }
        }

        bestScore = bestValue;
        return best;
    }

    /// <summary>
    /// The weighted percentile of three users' latencies (a, b, c with weights; for two users c
    /// repeats b with weight 0) for every host: the smallest latency x whose users at or below x carry
    /// at least the threshold of weight — the same value <see cref="Percentile"/> gives, lane by lane
    /// without branches. NaN where any latency is NaN (stale).
    /// </summary>
    private static void WeightedPercentiles(
        ReadOnlySpan<double> la, ReadOnlySpan<double> lb, ReadOnlySpan<double> lc,
        double wa, double wb, double wc, double threshold, Span<double> scores)
    {
        var n = scores.Length;
        var h = 0;
        if (Vector256.IsHardwareAccelerated && la.Length >= n && lb.Length >= n && lc.Length >= n)
        {
            var va = Vector256.Create(wa);
            var vb = Vector256.Create(wb);
            var vc = Vector256.Create(wc);
            var t = Vector256.Create(threshold);
            var inf = Vector256.Create(double.PositiveInfinity);
            var nan = Vector256.Create(double.NaN);
            for (; h <= n - Vector256<double>.Count; h += Vector256<double>.Count)
            {
                var a = Vector256.Create(la.Slice(h, Vector256<double>.Count));
                var b = Vector256.Create(lb.Slice(h, Vector256<double>.Count));
                var c = Vector256.Create(lc.Slice(h, Vector256<double>.Count));
                var weightA = va + (Vector256.LessThanOrEqual(b, a) & vb) + (Vector256.LessThanOrEqual(c, a) & vc);
                var weightB = (Vector256.LessThanOrEqual(a, b) & va) + vb + (Vector256.LessThanOrEqual(c, b) & vc);
                var weightC = (Vector256.LessThanOrEqual(a, c) & va) + (Vector256.LessThanOrEqual(b, c) & vb) + vc;
                var ca = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(weightA, t), a, inf);
                var cb = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(weightB, t), b, inf);
                var cc = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(weightC, t), c, inf);
                var min = Vector256.ConditionalSelect(Vector256.LessThan(ca, cb), ca, cb);
                min = Vector256.ConditionalSelect(Vector256.LessThan(cc, min), cc, min);
                var stale = ~(Vector256.Equals(a, a) & Vector256.Equals(b, b) & Vector256.Equals(c, c));
                Vector256.ConditionalSelect(stale, nan, min).CopyTo(scores.Slice(h, Vector256<double>.Count));
            }
        }

        for (; h < n; h++)
        {
            double a = la[h], b = lb[h], c = lc[h];
            if (double.IsNaN(a) || double.IsNaN(b) || double.IsNaN(c))
            {
                scores[h] = double.NaN;
                continue;
            }

            var result = double.PositiveInfinity;
            if (wa + (b <= a ? wb : 0) + (c <= a ? wc : 0) >= threshold)
            {
                result = a;
            }

            if (b < result && (a <= b ? wa : 0) + wb + (c <= b ? wc : 0) >= threshold)
            {
                result = b;
            }

            if (c < result && (a <= c ? wa : 0) + (b <= c ? wb : 0) + wc >= threshold)
            {
                result = c;
            }

            scores[h] = result;
        }
    }

    /// <summary>
    /// Whether some other host that may receive VMs has stale data for the VM (asked only when no
    /// candidate was found). A host is stale for the VM when it is stale for any user, so this is
    /// whether any user has a stale cell on such a host: counted per vantage point in advance.
    /// </summary>
    private static bool AnyStale(FleetSnapshot s, DecisionBuffer r, int vm, int cur)
    {
        var start = s.UserStart[vm];
        var currentCounts = s.Availability[cur] == HostAvailability.Available;
        for (var j = 0; j < s.UserCount[vm]; j++)
        {
            var vantage = s.UserVantage[start + j];
            var stale = r.StaleCount[vantage];
            if (currentCounts && double.IsNaN(r.CellValue[(vantage * s.HostCount) + cur]))
            {
                stale--;
            }

            if (stale > 0)
            {
                return true;
            }
        }

        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private double Threshold(FleetSnapshot s, int vm) => _percentile * s.TotalWeight[vm] * (1 - 1e-12);

    /// <summary>The VM's weighted-percentile latency on a host: ms, +inf when unreachable, NaN when any user's data is stale.</summary>
    private double Score(FleetSnapshot s, DecisionBuffer r, int vm, int host) => Score(s, r, vm, host, Threshold(s, vm));

    private static double Score(FleetSnapshot s, DecisionBuffer r, int vm, int host, double threshold)
    {
        var hosts = s.HostCount;
        var start = s.UserStart[vm];
        var count = s.UserCount[vm];
        if (count == 1)
        {
            return r.CellValue[(s.UserVantage[start] * hosts) + host];
        }

        var rows = r.UserRows;
        for (var j = 0; j < count; j++)
        {
            rows[j] = s.UserVantage[start + j] * hosts;
        }

        return Percentile(s, r, start, count, rows, host, threshold);
    }

    /// <summary>
    /// The smallest latency v such that the users seeing v or better carry at least
    /// <paramref name="threshold"/> of weight — the weighted percentile, without sorting (a VM has few users).
    /// NaN when any user's data is stale.
    /// </summary>
    private static double Percentile(FleetSnapshot s, DecisionBuffer r, int start, int count, int[] rows, int host, double threshold)
    {
        var values = r.UserValues;
        for (var j = 0; j < count; j++)
        {
            var v = r.CellValue[rows[j] + host];
            if (double.IsNaN(v))
            {
                return double.NaN;
            }

            values[j] = v;
        }

        return WeightedPercentile(values.AsSpan(0, count), s.UserWeight.AsSpan(start, count), threshold);
    }

    /// <summary>The smallest value whose users at or below it carry at least <paramref name="threshold"/> of weight (no NaN in <paramref name="values"/>).</summary>
    private static double WeightedPercentile(ReadOnlySpan<double> values, ReadOnlySpan<double> weights, double threshold)
    {
        var result = double.PositiveInfinity;
        for (var i = 0; i < values.Length; i++)
        {
            var candidate = values[i];
            if (candidate >= result)
            {
                continue;
            }

            var weight = 0.0;
            for (var j = 0; j < values.Length && j < weights.Length; j++)
            {
                if (values[j] <= candidate)
                {
                    weight += weights[j];
                }
            }

            if (weight >= threshold)
            {
                result = candidate;
            }
        }

        return result;
    }
}
