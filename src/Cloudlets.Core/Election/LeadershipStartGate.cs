using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Election;

/// <summary>
/// The executor's start gate for a controller that must lead to act: right before each migration it
/// asks the election to confirm (<see cref="ILeaderElection.ConfirmLeadershipAsync"/>, the fencing
/// check); a no skips the move (<see cref="MigrationOutcomeKind.Skipped"/>: nothing started, no host
/// backed off). Ownership: it does not own the election.
/// </summary>
public sealed class LeadershipStartGate : IMigrationStartGate
{
    private readonly ILeaderElection _election;

    /// <summary>Creates the gate over <paramref name="election"/> (not owned).</summary>
    public LeadershipStartGate(ILeaderElection election)
    {
        _election = election ?? throw new ArgumentNullException(nameof(election));
    }

    /// <inheritdoc />
    public async ValueTask<MigrationStartVerdict> CheckAsync(MigrationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var state = _election.Current;
        if (await _election.ConfirmLeadershipAsync(cancellationToken).ConfigureAwait(false))
        {
            return MigrationStartVerdict.Allow;
        }

        return MigrationStartVerdict.Refuse(
            $"candidate '{_election.CandidateId}' does not lead election '{_election.Election}'"
            + (state.LeaderId is null || state.LeaderId == _election.CandidateId ? " (its leadership could not be confirmed)" : $" ('{state.LeaderId}' does)") + ".");
    }
}
