namespace Cloudlets.Core.Election;

/// <summary>Helpers over <see cref="ILeaderElection"/>.</summary>
public static class LeaderElectionExtensions
{
    /// <summary>
    /// The fencing check as a gate for an executor: a function that answers, right before a leader-only
    /// action starts, whether it may (<see cref="ILeaderElection.ConfirmLeadershipAsync"/>).
    /// </summary>
    public static Func<CancellationToken, ValueTask<bool>> AsGate(this ILeaderElection election)
    {
        ArgumentNullException.ThrowIfNull(election);
        return election.ConfirmLeadershipAsync;
    }

    /// <summary>Completes with the first state of <paramref name="election"/> that satisfies <paramref name="predicate"/> (the current one included).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="InvalidOperationException">The election was disposed first.</exception>
    public static async Task<LeadershipState> WaitForAsync(this ILeaderElection election, Func<LeadershipState, bool> predicate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(election);
        ArgumentNullException.ThrowIfNull(predicate);
        var done = new TaskCompletionSource<LeadershipState>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = election.States.Subscribe(
            s =>
            {
                if (predicate(s))
                {
                    done.TrySetResult(s);
                }
            },
            e => done.TrySetException(e),
            () => done.TrySetException(new InvalidOperationException($"The election '{election.Election}' of candidate '{election.CandidateId}' ended first.")));
        using var registration = cancellationToken.Register(() => done.TrySetCanceled(cancellationToken));
        return await done.Task.ConfigureAwait(false);
    }
}
