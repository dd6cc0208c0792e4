namespace Cloudlets.Core.Decisions;

/// <summary>What an evaluation concluded for one VM.</summary>
public enum DecisionKind : byte
{
    /// <summary>Nothing can be concluded (stale data, unknown placement, a migration under way, …); see the reason.</summary>
    NoDecision,
    /// <summary>The VM stays where it is; a better host may exist but was held back (see the reason).</summary>
    Stay,
    /// <summary>The VM should move to the target host.</summary>
    Move,
}

/// <summary>Why an evaluation concluded what it did.</summary>
public enum DecisionReason : byte
{
    /// <summary>A better host passed every gate: move.</summary>
    Move,
    /// <summary>The current host has the lowest score of all candidates.</summary>
    AlreadyBest,
    /// <summary>Another host scores the same as the current one (within the tie tolerance): ties keep the VM.</summary>
    Tie,
    /// <summary>No other host is a candidate (down, backed off, unreachable or full); see each candidate's status.</summary>
    NoCandidates,
    /// <summary>The best host is better, but by less than the minimum absolute gain.</summary>
    BelowAbsoluteGain,
    /// <summary>The best host is better, but by less than the minimum relative gain.</summary>
    BelowRelativeGain,
    /// <summary>The estimated cost of the migration exceeds the expected gain over the expected stay.</summary>
    CostExceedsGain,
    /// <summary>The VM moved recently; it waits for its cooldown to end.</summary>
    Cooldown,
    /// <summary>The gain has not yet been seen for enough consecutive windows.</summary>
    AwaitingConfirmation,
    /// <summary>The move was due, but the executor's limits (per VM, per host, in total) or a host backoff held it back.</summary>
    MigrationLimitReached,
    /// <summary>The latency data of the current host (or of every candidate) is older than the staleness bound.</summary>
    StaleData,
    /// <summary>The current host does not answer its management connection; nothing can be moved from it.</summary>
    CurrentHostDown,
    /// <summary>The VM was not found running on exactly one known host.</summary>
    PlacementUnknown,
    /// <summary>A migration of the VM is under way.</summary>
    MigrationInProgress,
    /// <summary>The VM has no users (vantage points) to measure for.</summary>
    NoUsers,
    /// <summary>The VM is pinned: it stays, whatever latency says (see <see cref="MigrationDecision.TargetHost"/> for the host it would have gone to).</summary>
    Pinned,
    /// <summary>The best host by latency would be a real gain, but a placement rule forbids it (see <see cref="MigrationDecision.HeldBy"/>).</summary>
    HeldByRule,
    /// <summary>
    /// The current host breaks a rule (drained, excluded for the VM, an anti-affinity partner there, the
    /// affinity group elsewhere): move to the best allowed host with room, even when latency gets worse.
    /// </summary>
    RuleRequiresMove,
    /// <summary>The current host breaks a rule, but no allowed host has room for the VM (or its group): it stays for now.</summary>
    NoAllowedHost,
}

/// <summary>Whether a host is a candidate for a VM, and if not, why.</summary>
public enum CandidateStatus : byte
{
    /// <summary>Not evaluated (the evaluation stopped before candidates were scored).</summary>
    NotEvaluated,
    /// <summary>A candidate (for the current host: scored normally).</summary>
    Eligible,
    /// <summary>The host's management connection does not answer.</summary>
    HostDown,
    /// <summary>Migrations to the host failed recently; it is backed off.</summary>
    BackedOff,
    /// <summary>The latency data to the host is older than the staleness bound.</summary>
    Stale,
    /// <summary>The users' probes to the host are lost (loss above the bound, or no data): unreachable, never "fast".</summary>
    Unreachable,
    /// <summary>The host has no room for the VM (free memory or vCPUs).</summary>
    NoCapacity,
    /// <summary>The host is drained.</summary>
    Drained,
    /// <summary>The host is excluded for the VM.</summary>
    Excluded,
    /// <summary>Another member of one of the VM's anti-affinity groups runs (or is going) there.</summary>
    AntiAffinity,
    /// <summary>Going there would separate the VM from its affinity group.</summary>
    Affinity,
}

/// <summary>Whether a host can take part in an evaluation, as the caller of the policy knows it.</summary>
public enum HostAvailability : byte
{
    /// <summary>The host answers and may receive VMs.</summary>
    Available,
    /// <summary>The host does not answer its management connection.</summary>
    Down,
    /// <summary>Migrations to the host failed recently; it may not receive VMs until its backoff ends.</summary>
    BackedOff,
}

/// <summary>A user of a VM: a vantage point whose latency counts, with a weight.</summary>
/// <param name="VantagePoint">The vantage point name, as stamped on latency samples.</param>
/// <param name="Weight">The user's weight; must be finite and greater than 0. One user of weight 1 is the demonstration's case.</param>
public readonly record struct VmUser(string VantagePoint, double Weight = 1.0);

/// <summary>A VM managed by the policy and the users it serves.</summary>
/// <param name="Name">The VM name, as the hosts list it.</param>
/// <param name="Users">Its users; at least one.</param>
public sealed record VmDefinition(string Name, IReadOnlyList<VmUser> Users);

/// <summary>One host as a candidate for a VM.</summary>
/// <param name="Host">The host name.</param>
/// <param name="Status">Whether it is a candidate, and if not, why.</param>
/// <param name="ScoreMs">The VM's score on the host in milliseconds (the users' weighted-percentile latency), or <see langword="null"/> when it could not be scored (stale or unreachable).</param>
/// <param name="IsCurrent">Whether the VM runs on this host.</param>
public readonly record struct CandidateScore(string Host, CandidateStatus Status, double? ScoreMs, bool IsCurrent);

/// <summary>
/// The explained outcome of one evaluation for one VM: stay, move or no decision, the reason in a
/// code and in words, and the score of every candidate.
/// </summary>
/// <param name="VmName">The VM.</param>
/// <param name="At">The evaluation time.</param>
/// <param name="Kind">Stay, move, or no decision.</param>
/// <param name="Reason">Why.</param>
/// <param name="CurrentHost">Where the VM runs, or <see langword="null"/> when unknown.</param>
/// <param name="TargetHost">For a move, the destination; for a held-back move, the host it would have gone to; otherwise <see langword="null"/>.</param>
/// <param name="CurrentScoreMs">The VM's score on its current host in ms (<see cref="double.PositiveInfinity"/> when its users cannot reach it), or <see langword="null"/>.</param>
/// <param name="TargetScoreMs">The VM's score on <paramref name="TargetHost"/> in ms, or <see langword="null"/>.</param>
/// <param name="ConfirmedWindows">Consecutive windows in which the move's gain has been seen, counting this one.</param>
/// <param name="Candidates">Every host with its status and score (empty when the evaluation stopped early).</param>
/// <param name="Explanation">The reason in words, with the figures.</param>
public sealed record MigrationDecision(
    string VmName,
    DateTimeOffset At,
    DecisionKind Kind,
    DecisionReason Reason,
    string? CurrentHost,
    string? TargetHost,
    double? CurrentScoreMs,
    double? TargetScoreMs,
    int ConfirmedWindows,
    IReadOnlyList<CandidateScore> Candidates,
    string Explanation)
{
    /// <summary>Whether this decision is a move.</summary>
    public bool IsMove => Kind == DecisionKind.Move;

    /// <summary>
    /// The placement rule that shaped this decision: the one that holds a move back
    /// (<see cref="DecisionReason.Pinned"/>, <see cref="DecisionReason.HeldByRule"/>), or the one that requires a
    /// move (<see cref="DecisionReason.RuleRequiresMove"/>, <see cref="DecisionReason.NoAllowedHost"/>, or such a
    /// move held by the executor's limits); <see cref="PlacementRuleKind.None"/> otherwise.
    /// </summary>
    public PlacementRuleKind HeldBy { get; init; }

    /// <summary>The expected gain in ms (current score minus target score), or <see langword="null"/> without a target.</summary>
    public double? GainMs => CurrentScoreMs is { } c && TargetScoreMs is { } t ? c - t : null;
}
