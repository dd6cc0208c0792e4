using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Pipeline;

/// <summary>
/// The operator's hand on a running pipeline: its placement rules (drain, pin, and the whole rule set
/// from a configuration reload) and moving one VM now. Implemented by <see cref="MigrationPipeline"/>.
/// Thread-safe.
/// </summary>
/// <remarks>
/// A rule change takes effect at the next evaluation, and the pipeline evaluates at once after one.
/// Every call is published on <see cref="ControlEvents"/>, including the ones that changed nothing and
/// refused moves, so an audit log can subscribe there.
/// </remarks>
public interface IPlacementControl
{
    /// <summary>The rules in force (an immutable value).</summary>
    PlacementRules Rules { get; }

    /// <summary>Every operator action and rule change, in order (hot; completes when the pipeline is disposed).</summary>
    IObservable<PlacementControlEvent> ControlEvents { get; }

    /// <summary>Drains a host: it receives no VM, and its VMs are moved to the best allowed hosts with room. Idempotent.</summary>
    /// <param name="host">The host name.</param>
    /// <param name="requestedBy">Who asked (for the event), or <see langword="null"/>.</param>
    /// <exception cref="UnknownPlacementNameException">The pipeline has no such host; nothing changed.</exception>
    PlacementChange DrainHost(string host, string? requestedBy = null);

    /// <summary>Ends a host's drain: it is a candidate again. Idempotent.</summary>
    /// <exception cref="UnknownPlacementNameException">The pipeline has no such host; nothing changed.</exception>
    PlacementChange UndrainHost(string host, string? requestedBy = null);

    /// <summary>Pins a VM: it is never moved, by the policy or by <see cref="MoveNowAsync"/>. Idempotent.</summary>
    /// <exception cref="UnknownPlacementNameException">The pipeline has no such VM; nothing changed.</exception>
    PlacementChange PinVm(string vm, string? requestedBy = null);

    /// <summary>Unpins a VM. Idempotent.</summary>
    /// <exception cref="UnknownPlacementNameException">The pipeline has no such VM; nothing changed.</exception>
    PlacementChange UnpinVm(string vm, string? requestedBy = null);

    /// <summary>Replaces the whole rule set (a configuration reload), validated against the pipeline's hosts and VMs first.</summary>
    /// <exception cref="Options.OptionsValidationException">The rules are invalid (every error listed with its path); the old rules stay.</exception>
    PlacementChange ReplaceRules(PlacementRules rules, string? requestedBy = null);

    /// <summary>
    /// Moves a VM to a host now, through the same executor, limits, start gate (leadership fencing) and
    /// safety checks as automatic moves. The latency gates (gain, cost, cooldown, confirmation) do not
    /// apply — it is an order — but no placement rule is broken. Returns once the migration has started
    /// (its start gate passed) or was refused; a refusal is a result, never an exception.
    /// </summary>
    /// <param name="vm">The VM.</param>
    /// <param name="host">The destination host.</param>
    /// <param name="requestedBy">Who asked (for the event), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops waiting for the start gate (the migration, once admitted, runs on).</param>
    Task<MoveNowResult> MoveNowAsync(string vm, string host, string? requestedBy = null, CancellationToken cancellationToken = default);
}

/// <summary>An operator action on a pipeline.</summary>
public enum PlacementAction
{
    /// <summary><see cref="IPlacementControl.DrainHost"/>.</summary>
    DrainHost,
    /// <summary><see cref="IPlacementControl.UndrainHost"/>.</summary>
    UndrainHost,
    /// <summary><see cref="IPlacementControl.PinVm"/>.</summary>
    PinVm,
    /// <summary><see cref="IPlacementControl.UnpinVm"/>.</summary>
    UnpinVm,
    /// <summary><see cref="IPlacementControl.ReplaceRules"/>.</summary>
    ReplaceRules,
    /// <summary><see cref="IPlacementControl.MoveNowAsync"/>.</summary>
    MoveNow,
}

/// <summary>What a rule change did.</summary>
/// <param name="Action">The action.</param>
/// <param name="Subject">The host or VM it named, or <see langword="null"/> for <see cref="PlacementAction.ReplaceRules"/>.</param>
/// <param name="Changed">Whether the rules changed (<see langword="false"/>: they already said so).</param>
/// <param name="Before">The rules before.</param>
/// <param name="After">The rules after (the same instance as <paramref name="Before"/> when nothing changed).</param>
/// <param name="At">When, on the pipeline's clock.</param>
public sealed record PlacementChange(PlacementAction Action, string? Subject, bool Changed, PlacementRules Before, PlacementRules After, DateTimeOffset At);

/// <summary>Why an operator's move was not started.</summary>
public enum MoveNowRefusal
{
    /// <summary>Not refused: the migration started (<see cref="MoveNowResult.Handle"/> is set).</summary>
    None,
    /// <summary>The pipeline is not started, or stopping, stopped or disposed.</summary>
    NotRunning,
    /// <summary>The pipeline runs advisory: it has no executor.</summary>
    AdvisoryMode,
    /// <summary>The pipeline has no such VM.</summary>
    UnknownVm,
    /// <summary>The pipeline has no such host.</summary>
    UnknownHost,
    /// <summary>The VM does not run on exactly one known host.</summary>
    PlacementUnknown,
    /// <summary>The VM already runs on that host.</summary>
    AlreadyThere,
    /// <summary>The VM is pinned (unpin it first).</summary>
    Pinned,
    /// <summary>The destination is drained.</summary>
    DestinationDrained,
    /// <summary>The destination is excluded for the VM.</summary>
    DestinationExcluded,
    /// <summary>Another member of one of the VM's anti-affinity groups runs (or is going) there.</summary>
    AntiAffinity,
    /// <summary>The move would separate the VM from its affinity group.</summary>
    Affinity,
    /// <summary>The destination does not answer, or is backed off after failed migrations.</summary>
    DestinationUnavailable,
    /// <summary>The VM's host does not answer.</summary>
    SourceUnavailable,
    /// <summary>The destination lacks free memory or vCPUs for the VM.</summary>
    NoCapacity,
    /// <summary>A migration of the VM is under way.</summary>
    AlreadyMigrating,
    /// <summary>The executor's limits (in total or per host) refuse another migration now.</summary>
    LimitReached,
    /// <summary>The start gate refused: this instance does not lead its election (fencing).</summary>
    NotLeading,
}

/// <summary>The answer to <see cref="IPlacementControl.MoveNowAsync"/>.</summary>
/// <param name="VmName">The VM.</param>
/// <param name="Host">The destination asked for.</param>
/// <param name="Refusal">Why it was not started, or <see cref="MoveNowRefusal.None"/>.</param>
/// <param name="Explanation">What happened, in one sentence.</param>
/// <param name="Handle">The running migration (its outcome, an abort), or <see langword="null"/> when refused.</param>
public sealed record MoveNowResult(string VmName, string Host, MoveNowRefusal Refusal, string Explanation, MigrationHandle? Handle)
{
    /// <summary>Whether the migration started.</summary>
    public bool Started => Handle is not null;

    /// <summary>The request an admitted move carries to the executor.</summary>
    internal MigrationRequest? Request { get; init; }
}

/// <summary>One operator action or rule change, as <see cref="IPlacementControl.ControlEvents"/> publishes it.</summary>
/// <param name="At">When, on the pipeline's clock.</param>
/// <param name="Action">The action.</param>
/// <param name="Vm">The VM it named, or <see langword="null"/>.</param>
/// <param name="Host">The host it named (for a move: the destination), or <see langword="null"/>.</param>
/// <param name="RequestedBy">Who asked, as the caller said, or <see langword="null"/>.</param>
/// <param name="Changed">Rule actions: whether the rules changed. <see cref="PlacementAction.MoveNow"/>: whether the migration started.</param>
/// <param name="Refusal">For <see cref="PlacementAction.MoveNow"/>, why it was refused; otherwise <see cref="MoveNowRefusal.None"/>.</param>
/// <param name="Explanation">What happened, in one sentence.</param>
/// <param name="Rules">The rules in force after the action.</param>
public sealed record PlacementControlEvent(
    DateTimeOffset At,
    PlacementAction Action,
    string? Vm,
    string? Host,
    string? RequestedBy,
    bool Changed,
    MoveNowRefusal Refusal,
    string Explanation,
    PlacementRules Rules);

/// <summary>What kind of name an operator gave.</summary>
public enum PlacementNameKind
{
    /// <summary>A host name.</summary>
    Host,
    /// <summary>A VM name.</summary>
    Vm,
}

/// <summary>An operator action named a host or VM the pipeline does not know; nothing changed.</summary>
public sealed class UnknownPlacementNameException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public UnknownPlacementNameException()
        : this(PlacementNameKind.Host, "")
    {
    }

    /// <summary>Creates the exception.</summary>
    public UnknownPlacementNameException(string message)
        : base(message)
    {
        Name = "";
    }

    /// <summary>Creates the exception.</summary>
    public UnknownPlacementNameException(string message, Exception innerException)
        : base(message, innerException)
    {
        Name = "";
    }

    /// <summary>Creates the exception for a name of a kind.</summary>
    public UnknownPlacementNameException(PlacementNameKind kind, string name, IEnumerable<string>? known = null)
        : base($"The pipeline has no {(kind == PlacementNameKind.Host ? "host" : "VM")} '{name}'" + (known is null ? "." : $" (it has {string.Join(", ", known)})."))
    {
        Kind = kind;
        Name = name;
    }

    /// <summary>Whether a host or a VM was unknown.</summary>
    public PlacementNameKind Kind { get; }

    /// <summary>The name given.</summary>
    public string Name { get; }
}

/// <summary>
/// Asked by the executor right before each migration starts, after its limits admitted it: the place
/// for a leadership fence (<see cref="Election.LeadershipStartGate"/>). A refusal skips the move —
/// <see cref="MigrationOutcomeKind.Skipped"/>, nothing started, no host backoff.
/// </summary>
public interface IMigrationStartGate
{
    /// <summary>Whether the migration may start now. Should be bounded in time; an exception counts as a refusal.</summary>
    ValueTask<MigrationStartVerdict> CheckAsync(MigrationRequest request, CancellationToken cancellationToken);
}

/// <summary>A start gate's answer.</summary>
/// <param name="Allowed">Whether the migration may start.</param>
/// <param name="Reason">Why not, or <see langword="null"/>.</param>
public readonly record struct MigrationStartVerdict(bool Allowed, string? Reason)
{
    /// <summary>The migration may start.</summary>
    public static MigrationStartVerdict Allow { get; } = new(true, null);

    /// <summary>The migration must not start, for <paramref name="reason"/>.</summary>
    public static MigrationStartVerdict Refuse(string reason) => new(false, reason);
}
