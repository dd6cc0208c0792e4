using System.Runtime.CompilerServices;

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
    private readonly LatencyStatistic _statistic;

    /// <summary>Builds the policy, validating the options once.</summary>
    /// <param name="options">The options, copied; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentException">An option is out of its range (the message lists every violation).</exception>
    public LowestLatencyPolicy(LowestLatencyPolicyOptions? options = null)
    {
        _options = (options ?? new LowestLatencyPolicyOptions()).Clone();
        var errors = _options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid LowestLatencyPolicyOptions: " + string.Join(" ", errors), nameof(options));
        }

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
    }

    /// <summary>A copy of the options the policy was built with.</summary>
    public LowestLatencyPolicyOptions Options => _options.Clone();

    /// <inheritdoc />
    public void Evaluate(FleetSnapshot snapshot, DecisionBuffer results)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(results);
        if (results.VmCount != snapshot.VmCount || results.HostCount != snapshot.HostCount || results.CellValue.Length != snapshot.Cells.Length)
        {
            throw new ArgumentException("The decision buffer was created for a different snapshot layout.", nameof(results));
        }

        var now = snapshot.Now.UtcTicks;
        PrepareCells(snapshot, results, now);
        Array.Clear(results.ReservedMemory);
        Array.Clear(results.ReservedVCpus);
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

    private void PrepareCells(FleetSnapshot s, DecisionBuffer r, long now)
    {
        var cells = s.Cells;
        var values = r.CellValue;
        var statuses = r.CellStatus;
        for (var i = 0; i < cells.Length; i++)
        {
            ref readonly var c = ref cells[i];
            if (c.HasData && now - c.NewestTicks > _maxAgeTicks)
            {
                statuses[i] = CandidateStatus.Stale;
                values[i] = double.NaN;
                continue;
            }

            var value = _statistic switch
            {
                LatencyStatistic.P95 => c.P95Ms,
                LatencyStatistic.Mean => c.MeanMs,
                _ => c.MedianMs,
            };
            if (!c.HasData || c.Received == 0 || c.LossRate > _maxLoss || double.IsNaN(value))
            {
                statuses[i] = CandidateStatus.Unreachable;
                values[i] = double.PositiveInfinity;
            }
            else
            {
                statuses[i] = CandidateStatus.Eligible;
                values[i] = value;
            }
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

        var currentScore = Score(s, r, vm, cur, out var currentStale);
        if (record)
        {
            r.CandidateStatuses![row + cur] = currentStale ? CandidateStatus.Stale
                : double.IsPositiveInfinity(currentScore) ? CandidateStatus.Unreachable : CandidateStatus.Eligible;
            r.CandidateScores![row + cur] = currentStale || double.IsPositiveInfinity(currentScore) ? double.NaN : currentScore;
        }

        if (currentStale)
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.StaleData);
        }

        r.CurrentScore[vm] = currentScore;
        var memory = s.VmMemoryBytes[vm];
        var vcpus = s.VmVCpus[vm];
        var pending = s.PendingHost[vm];
        var pendingScore = double.NaN;
        var best = -1;
        var bestScore = double.PositiveInfinity;
        var anyStale = false;
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
                score = Score(s, r, vm, h, out var stale);
                if (stale)
                {
                    status = CandidateStatus.Stale;
                    anyStale = true;
                }
                else if (double.IsPositiveInfinity(score))
                {
                    status = CandidateStatus.Unreachable;
                }
                else if (s.FreeMemoryBytes[h] - r.ReservedMemory[h] - _reserve < memory || s.FreeVCpus[h] - r.ReservedVCpus[h] < vcpus)
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

                    if (h == pending)
                    {
                        pendingScore = score;
                    }
                }
            }

            if (record)
            {
                r.CandidateStatuses![row + h] = status;
                r.CandidateScores![row + h] = double.IsPositiveInfinity(score) ? double.NaN : score;
            }
        }

        if (best < 0)
        {
            return anyStale
                ? Set(r, vm, DecisionKind.NoDecision, DecisionReason.StaleData)
                : Set(r, vm, DecisionKind.Stay, DecisionReason.NoCandidates);
        }

        // Stickiness among near-equal candidates: noise must not flip the target and restart confirmation.
        if (pending >= 0 && pendingScore <= bestScore + _tie)
        {
            best = pending;
            bestScore = pendingScore;
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
        var cost = effective <= 0 ? double.PositiveInfinity : memory / effective * _impact;
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

        r.ReservedMemory[best] += memory;
        r.ReservedVCpus[best] += vcpus;
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

    /// <summary>The VM's weighted-percentile latency on a host; +inf when unreachable; NaN and <paramref name="stale"/> when any user's data is stale.</summary>
    private double Score(FleetSnapshot s, DecisionBuffer r, int vm, int host, out bool stale)
    {
        var hosts = s.HostCount;
        var start = s.UserStart[vm];
        var count = s.UserCount[vm];
        if (count == 1)
        {
            var cell = (s.UserVantage[start] * hosts) + host;
            stale = r.CellStatus[cell] == CandidateStatus.Stale;
            return r.CellValue[cell];
        }

        var values = r.UserValues;
        var weights = r.UserWeights;
        for (var j = 0; j < count; j++)
        {
            var cell = (s.UserVantage[start + j] * hosts) + host;
            if (r.CellStatus[cell] == CandidateStatus.Stale)
            {
                stale = true;
                return double.NaN;
            }

            // Insertion sort by latency as the values are gathered (a VM has few users).
            var value = r.CellValue[cell];
            var weight = s.UserWeight[start + j];
            var k = j - 1;
            while (k >= 0 && values[k] > value)
            {
                values[k + 1] = values[k];
                weights[k + 1] = weights[k];
                k--;
            }

            values[k + 1] = value;
            weights[k + 1] = weight;
        }

        stale = false;
        var threshold = _percentile * s.TotalWeight[vm] * (1 - 1e-12);
        var cumulative = 0.0;
        for (var j = 0; j < count; j++)
        {
            cumulative += weights[j];
            if (cumulative >= threshold)
            {
                return values[j];
            }
        }

        return values[count - 1];
    }
}
