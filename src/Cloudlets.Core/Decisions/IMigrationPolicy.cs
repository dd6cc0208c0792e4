namespace Cloudlets.Core.Decisions;

/// <summary>
/// Pure decision logic: from what is known at one evaluation (a <see cref="FleetSnapshot"/>), which
/// VM should move where, and why — or why not. An implementation reads only the snapshot, writes only
/// the results, keeps no state between calls (history travels in the snapshot), and is thread-safe.
/// </summary>
public interface IMigrationPolicy
{
    /// <summary>
    /// Evaluates every VM of <paramref name="snapshot"/> into <paramref name="results"/> (created for
    /// the same snapshot). The evaluation path must not allocate: it runs every window over the whole fleet.
    /// </summary>
    /// <remarks>
    /// An implementation in another assembly reads the snapshot through its public views
    /// (<see cref="FleetSnapshot.LatencyRow"/>, <see cref="FleetSnapshot.UserVantagePointsOf"/>,
    /// <see cref="FleetSnapshot.AvailabilityOf"/>, …) and writes through <see cref="DecisionBuffer.Begin"/>,
    /// <see cref="DecisionBuffer.Set"/> and <see cref="DecisionBuffer.SetNextConfirmation"/>.
    /// </remarks>
    void Evaluate(FleetSnapshot snapshot, DecisionBuffer results);

    /// <summary>
    /// The policy's own score of a VM on a host at <see cref="FleetSnapshot.Now"/>, the number its
    /// decisions compare: lower is better, +inf when the VM's users cannot reach the host, NaN when
    /// unknown (stale data, no users). The executor's improvement check compares this before and
    /// after a move. Must not allocate.
    /// </summary>
    double Score(FleetSnapshot snapshot, int vmIndex, int hostIndex);
}

/// <summary>Conveniences over <see cref="IMigrationPolicy"/>.</summary>
public static class MigrationPolicyExtensions
{
    /// <summary>
    /// Evaluates once and returns one explained decision per VM, carrying the confirmation state into
    /// the snapshot for the next call. Allocates; for large fleets use <see cref="IMigrationPolicy.Evaluate"/>
    /// with a reused <see cref="DecisionBuffer"/>.
    /// </summary>
    public static IReadOnlyList<MigrationDecision> Decide(this IMigrationPolicy policy, FleetSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(snapshot);
        var results = new DecisionBuffer(snapshot, recordCandidates: true);
        policy.Evaluate(snapshot, results);
        snapshot.AdvanceConfirmations(results);
        var decisions = new MigrationDecision[snapshot.VmCount];
        for (var i = 0; i < decisions.Length; i++)
        {
            decisions[i] = results.ToDecision(snapshot, i);
        }

        return decisions;
    }
}
