namespace Cloudlets.Core.Election;

/// <summary>
/// One candidate in one leader election (one election per region). At most one candidate of an
/// election leads at a time; the others follow and take over when the leader's lease ends. The
/// etcd implementation is <c>Cloudlets.Etcd.EtcdLeaderElection</c>; <see cref="InMemoryLeaderElection"/>
/// serves unit tests of logic.
/// </summary>
/// <remarks>
/// <para>
/// Fencing rule: being told "leader" by <see cref="States"/> is not enough to act. Right before an
/// action that must be done by the leader only (a migration starts), call
/// <see cref="ConfirmLeadershipAsync"/>: it answers <see langword="true"/> only if the store confirms,
/// at that moment, that the election key is still held by this candidate's lease and term. A paused
/// or partitioned old leader gets <see langword="false"/> and never <see langword="true"/> again
/// until it is elected again (with a new term).
/// </para>
/// <para>Ownership: the election owns its connection to the store and its lease; disposing it resigns
/// (best effort, bounded) and completes <see cref="States"/>.</para>
/// </remarks>
public interface ILeaderElection : IAsyncDisposable
{
    /// <summary>The election's name (the region).</summary>
    string Election { get; }

    /// <summary>This candidate's id (written into the election key while it leads).</summary>
    string CandidateId { get; }

    /// <summary>The latest state.</summary>
    LeadershipState Current { get; }

    /// <summary>
    /// The current state at subscription, then every change, in order. Failures of the store arrive as
    /// follower states with a reason, never as an error; the sequence completes when the election is
    /// disposed. Observers run on the election's own threads and must not block.
    /// </summary>
    IObservable<LeadershipState> States { get; }

    /// <summary>
    /// Starts campaigning in the background and returns (it does not wait to be elected). The candidate
    /// keeps campaigning after losing leadership, until <see cref="ResignAsync"/> or dispose.
    /// </summary>
    /// <exception cref="InvalidOperationException">The election was started before.</exception>
    /// <exception cref="ObjectDisposedException">The election was disposed.</exception>
    ValueTask StartAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Stops campaigning and releases the election if this candidate leads, so a follower can take over
    /// at once instead of waiting for the lease to expire. Idempotent; the election cannot be started again.
    /// </summary>
    ValueTask ResignAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The fencing check made right before a leader-only action: <see langword="true"/> only if this
    /// candidate leads and the store confirms now that its lease and term still hold the election key.
    /// Never throws for store failures (an unreachable store is <see langword="false"/>); bounded in time.
    /// </summary>
    ValueTask<bool> ConfirmLeadershipAsync(CancellationToken cancellationToken = default);
}
