namespace Cloudlets.Core.Shaping;

/// <summary>
/// Puts a delay (jitter, loss, …) on a host's traffic, the way <c>tc qdisc … netem</c> does, as
/// declarative rule sets owned by a name: apply converges, clear removes, show reads the kernel.
/// </summary>
public interface INetemShaper : IAsyncDisposable
{
    /// <summary>What this backend supports, and why it was chosen.</summary>
    ShaperCapabilities Capabilities { get; }

    /// <summary>
    /// Converges the owner's kernel state to exactly <paramref name="plan"/>: creates what is missing,
    /// changes what differs, removes owned objects the plan no longer has (also leftovers of a crashed
    /// run of the same owner). Applying the same plan twice changes nothing. Objects of other owners
    /// are never touched. Everything is validated before any command runs.
    /// </summary>
    /// <exception cref="ShapingValidationException">The plan is invalid; nothing ran.</exception>
    /// <exception cref="UnsupportedImpairmentException">The backend cannot do what the plan asks; nothing ran.</exception>
    /// <exception cref="NetemUnavailableException">The kernel has no netem; nothing is left half-built.</exception>
    /// <exception cref="ForeignQdiscException">Another owner's root qdisc is in the way; nothing ran.</exception>
    Task<ShapingState> ApplyAsync(ShapingPlan plan, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes everything <paramref name="owner"/> has in the caller's namespace and in every named
    /// network namespace, including leftovers of a crashed run. Nothing to remove is success.
    /// </summary>
    Task ClearAsync(string owner, CancellationToken cancellationToken = default);

    /// <summary>Reads the owner's state back from the kernel (never from memory).</summary>
    Task<ShapingState> ShowAsync(string owner, CancellationToken cancellationToken = default);

    /// <summary>
    /// What <see cref="ApplyAsync"/> would change to get from <paramref name="current"/> to
    /// <paramref name="plan"/>, rule by rule and independent of the backend (a backend may also show
    /// its own commands). Pure: runs nothing. Empty when the kernel already matches.
    /// </summary>
    /// <exception cref="ShapingValidationException">The plan is invalid.</exception>
    ShapingChanges Plan(ShapingPlan plan, ShapingState current);
}
