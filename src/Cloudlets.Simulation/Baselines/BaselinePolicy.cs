using Cloudlets.Core.Decisions;

namespace Cloudlets.Simulation.Baselines;

/// <summary>
/// What the baselines share, written against the public snapshot views only (as a policy in any
/// assembly would be): the score — the weighted mean of the users' median RTT (the cost model's
/// measure) — and one evaluation loop that asks <see cref="Choose"/> per VM.
/// </summary>
public abstract class BaselinePolicy : IMigrationPolicy
{
    private readonly TimeSpan _maxAge;
    private readonly double _maxLoss;
    private long[] _room = [];
    private int[] _roomVCpus = [];

    /// <summary>Creates the policy.</summary>
    /// <param name="maxSampleAge">Latency older than this is unknown. The default is 30 s.</param>
    /// <param name="maxLossRate">A pair losing more than this is unreachable. The default is 0.5.</param>
    protected BaselinePolicy(TimeSpan? maxSampleAge = null, double maxLossRate = 0.5)
    {
        _maxAge = maxSampleAge ?? TimeSpan.FromSeconds(30);
        _maxLoss = maxLossRate;
    }

    /// <summary>The weighted mean of the VM's users' median RTT to the host: +inf when a user cannot reach it, NaN when a user's data is stale.</summary>
    public double Score(FleetSnapshot snapshot, int vmIndex, int hostIndex)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var vantage = snapshot.UserVantagePointsOf(vmIndex);
        var weights = snapshot.UserWeightsOf(vmIndex);
        if (vantage.IsEmpty)
        {
            return double.NaN;
        }

        var sum = 0.0;
        for (var j = 0; j < vantage.Length; j++)
        {
            ref readonly var cell = ref snapshot.LatencyOf(vantage[j], hostIndex);
            if (cell.HasData && cell.AgeAt(snapshot.Now) > _maxAge)
            {
                return double.NaN;
            }

            if (!cell.HasData || cell.Received == 0 || cell.LossRate > _maxLoss || double.IsNaN(cell.MedianMs))
            {
                return double.PositiveInfinity;
            }

            sum += weights[j] * cell.MedianMs;
        }

        return sum / snapshot.TotalWeightOf(vmIndex);
    }

    /// <inheritdoc />
    public void Evaluate(FleetSnapshot snapshot, DecisionBuffer results)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(results);
        results.Begin(snapshot);
        if (_room.Length != snapshot.HostCount)
        {
            _room = new long[snapshot.HostCount];
            _roomVCpus = new int[snapshot.HostCount];
        }

        for (var h = 0; h < snapshot.HostCount; h++)
        {
            var available = snapshot.AvailabilityOf(h) == HostAvailability.Available;
            _room[h] = available ? snapshot.FreeMemoryBytesOf(h) : long.MinValue;
            _roomVCpus[h] = available ? snapshot.FreeVCpusOf(h) : int.MinValue;
        }

        for (var vm = 0; vm < snapshot.VmCount; vm++)
        {
            var current = snapshot.PlacementOf(vm);
            if (current < 0)
            {
                results.Set(vm, DecisionKind.NoDecision, DecisionReason.PlacementUnknown);
                continue;
            }

            if (snapshot.IsMigrating(vm))
            {
                results.Set(vm, DecisionKind.NoDecision, DecisionReason.MigrationInProgress);
                continue;
            }

            var currentScore = Score(snapshot, vm, current);
            var best = -1;
            var bestScore = double.PositiveInfinity;
            for (var h = 0; h < snapshot.HostCount; h++)
            {
                if (h == current || _room[h] < snapshot.MemoryBytesOf(vm) || _roomVCpus[h] < snapshot.VCpusOf(vm))
                {
                    continue;
                }

                var score = Score(snapshot, vm, h);
                if (score < bestScore)
                {
                    best = h;
                    bestScore = score;
                }
            }

            if (best < 0)
            {
                results.Set(vm, DecisionKind.Stay, DecisionReason.NoCandidates, -1, currentScore);
                continue;
            }

            var reason = Choose(snapshot, vm, currentScore, bestScore);
            if (reason == DecisionReason.Move)
            {
                _room[best] -= snapshot.MemoryBytesOf(vm);
                _roomVCpus[best] -= snapshot.VCpusOf(vm);
                results.Set(vm, DecisionKind.Move, DecisionReason.Move, best, currentScore, bestScore);
            }
            else
            {
                results.Set(vm, DecisionKind.Stay, reason, best, currentScore, bestScore);
            }
        }
    }

    /// <summary>Whether the VM moves from a host scoring <paramref name="currentScore"/> to the best other host (<paramref name="bestScore"/>): <see cref="DecisionReason.Move"/>, or the reason to stay.</summary>
    protected abstract DecisionReason Choose(FleetSnapshot snapshot, int vm, double currentScore, double bestScore);
}

/// <summary>The baseline that never migrates.</summary>
public sealed class NeverMigratePolicy : BaselinePolicy
{
    /// <inheritdoc />
    protected override DecisionReason Choose(FleetSnapshot snapshot, int vm, double currentScore, double bestScore) => DecisionReason.NoCandidates;
}

/// <summary>The baseline that moves a VM whenever another host with room scores strictly lower, at once.</summary>
public sealed class AlwaysNearestPolicy : BaselinePolicy
{
    /// <inheritdoc />
    protected override DecisionReason Choose(FleetSnapshot snapshot, int vm, double currentScore, double bestScore) =>
        double.IsNaN(currentScore) ? DecisionReason.StaleData
        : bestScore < currentScore ? DecisionReason.Move
        : DecisionReason.AlreadyBest;
}

/// <summary>
/// The myopic baseline: move when this window's gain, held for the expected stay, exceeds the
/// migration penalty — (current − best) × stay &gt; penalty — with no confirmation and no cooldown.
/// </summary>
/// <param name="migrationPenaltyMsSeconds">The penalty of one migration in ms·s (the cost model's).</param>
/// <param name="expectedStay">How long the gain is assumed to last.</param>
public sealed class MyopicPolicy(double migrationPenaltyMsSeconds, TimeSpan expectedStay) : BaselinePolicy
{
    /// <inheritdoc />
    protected override DecisionReason Choose(FleetSnapshot snapshot, int vm, double currentScore, double bestScore)
    {
        if (double.IsNaN(currentScore))
        {
            return DecisionReason.StaleData;
        }

        var gain = currentScore - bestScore;
        if (gain <= 0)
        {
            return DecisionReason.AlreadyBest;
        }

        return gain * expectedStay.TotalSeconds > migrationPenaltyMsSeconds ? DecisionReason.Move : DecisionReason.CostExceedsGain;
    }
}
