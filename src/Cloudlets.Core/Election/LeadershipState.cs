namespace Cloudlets.Core.Election;

/// <summary>The role of one candidate in one election.</summary>
public enum LeadershipRole
{
    /// <summary>Not leading: advisory only, warm (samples, windows, placement), ready to take over.</summary>
    Follower,
    /// <summary>Leading: the one instance of the election that may start migrations (after confirming, see <see cref="ILeaderElection.ConfirmLeadershipAsync"/>).</summary>
    Leader,
}

/// <summary>Why a candidate's state changed.</summary>
public enum LeadershipReason
{
    /// <summary>The candidate started campaigning and does not lead (yet).</summary>
    Campaigning,
    /// <summary>The candidate won the election.</summary>
    Elected,
    /// <summary>A follower learned who leads now (another candidate won or was already leading).</summary>
    LeaderObserved,
    /// <summary>The candidate's lease ended: it expired (keepalives missed, e.g. a partition or a pause), was revoked, or was not renewed in time.</summary>
    LeaseLost,
    /// <summary>The election key was deleted or overwritten by someone else while the candidate led.</summary>
    KeyLost,
    /// <summary>A fencing check found that the candidate no longer holds the election.</summary>
    ConfirmationFailed,
    /// <summary>The store (etcd) cannot be reached; the candidate keeps trying with backoff.</summary>
    StoreUnavailable,
    /// <summary>The candidate resigned: it stopped campaigning and released the election.</summary>
    Resigned,
}

/// <summary>
/// What one candidate knows about one election at one moment. A leader's <see cref="LeaseId"/> and
/// <see cref="Revision"/> identify its term: a candidate elected again gets a new revision, so a
/// fencing check made with an old term can never succeed.
/// </summary>
/// <param name="Election">The election's name (the region, e.g. <c>eu-west</c>).</param>
/// <param name="CandidateId">This candidate's id.</param>
/// <param name="Role">Leader or follower.</param>
/// <param name="LeaseId">The lease this candidate campaigns with, or <see langword="null"/> when it holds none (not started, resigned, or the store is unreachable).</param>
/// <param name="Revision">The term: the store revision at which the current leader took the election key, or <see langword="null"/> when unknown.</param>
/// <param name="LeaderId">The candidate id of the current leader (this one when leading), or <see langword="null"/> when unknown.</param>
/// <param name="Since">When this state began (the election's <see cref="TimeProvider"/>).</param>
/// <param name="Reason">Why the state changed.</param>
/// <param name="Detail">A human-readable detail (an error message, the key), or <see langword="null"/>.</param>
public sealed record LeadershipState(
    string Election,
    string CandidateId,
    LeadershipRole Role,
    long? LeaseId,
    long? Revision,
    string? LeaderId,
    DateTimeOffset Since,
    LeadershipReason Reason,
    string? Detail = null)
{
    /// <summary>Whether this candidate leads.</summary>
    public bool IsLeader => Role == LeadershipRole.Leader;

    /// <summary>The state of a candidate that has not started campaigning.</summary>
    public static LeadershipState Initial(string election, string candidateId, DateTimeOffset now) =>
        new(election, candidateId, LeadershipRole.Follower, null, null, null, now, LeadershipReason.Campaigning, "not started");
}
