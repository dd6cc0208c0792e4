using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt;

/// <summary>What the library does when a migration's time or progress runs out.</summary>
public enum LibvirtCompletionAction
{
    /// <summary>Abort the migration (<c>virDomainAbortJob</c>): the VM stays on its source, as it was.</summary>
    Abort,

    /// <summary>
    /// Switch to post-copy (<c>virDomainMigrateStartPostCopy</c>; needs <see cref="LibvirtMigrationOptions.AllowPostCopy"/>):
    /// the VM runs on the destination at once and pulls the rest of its memory from the source, so the
    /// migration always completes. The risk: from the switch on, the VM's memory is split over both hosts,
    /// and a failure of either host (or of the path between them) loses the VM. If the switch is refused,
    /// the migration is aborted instead.
    /// </summary>
    PostCopy,
}

/// <summary>
/// Convergence control of a libvirt migration, driven by this library while the migration runs (the
/// way Nova and KubeVirt drive theirs): the allowed downtime raised in steps (Nova's
/// <c>live_migration_downtime</c>, <c>_steps</c>, <c>_delay</c>), a completion timeout, and a stall
/// detector on the remaining data; when time or progress runs out, <see cref="CompletionAction"/> is taken.
/// Every step shows in <see cref="Core.Hypervisors.MigrationProgress.Escalations"/> and
/// <see cref="Core.Hypervisors.MigrationResult.Escalations"/>. Off by default: nothing is set, nothing runs.
/// Every property documents its default and range.
/// </summary>
public sealed class LibvirtConvergenceOptions : IValidatableOptions
{
    /// <summary>The longest downtime or step delay accepted.</summary>
    public static readonly TimeSpan MaxTime = TimeSpan.FromHours(1);

    /// <summary>
    /// The allowed downtime the steps end at, or <see langword="null"/> for no downtime steps. The steps start at
    /// <see cref="Core.Hypervisors.MigrationOptions.MaxDowntime"/> when it is set (it must then be lower), else at
    /// this value divided by <see cref="DowntimeSteps"/> (as Nova does), and rise linearly to it. Nova's default
    /// final downtime is 500 ms. The default is <see langword="null"/>; range 1 ms to 1 hour.
    /// </summary>
    public TimeSpan? FinalMaxDowntime { get; set; }

    /// <summary>How many times the allowed downtime is raised after its first value. The default is 10 (Nova's); range 1 to 100.</summary>
    public int DowntimeSteps { get; set; } = 10;

    /// <summary>
    /// The time between downtime steps. (Nova scales its 75 s by the guest's GiB of memory; here it is the time
    /// itself.) The default is 10 seconds; range 100 ms to 1 hour.
    /// </summary>
    public TimeSpan DowntimeStepDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long the migration may run before <see cref="CompletionAction"/> is taken, or <see langword="null"/> for
    /// no limit (the executor's own timeout still applies). The default is <see langword="null"/>; range 1 second to 24 hours.
    /// </summary>
    public TimeSpan? CompletionTimeout { get; set; }

    /// <summary>
    /// How long the remaining data may go without a new minimum (at least 1 MiB below the last; after the first pass,
    /// counted at the start of each pass, where it is the dirty set the last pass left) before the library
    /// escalates at once: the next downtime step is taken now, and when none is left, <see cref="CompletionAction"/>.
    /// <see langword="null"/> turns the detector off. The default is <see langword="null"/>; range 1 second to 1 hour.
    /// </summary>
    public TimeSpan? StallTimeout { get; set; }

    /// <summary>
    /// What is done when <see cref="CompletionTimeout"/> passes, or the migration stalls with no downtime step left.
    /// <see cref="LibvirtCompletionAction.PostCopy"/> is opt-in: a host failure after the switch loses the VM.
    /// The default is <see cref="LibvirtCompletionAction.Abort"/>.
    /// </summary>
    public LibvirtCompletionAction CompletionAction { get; set; } = LibvirtCompletionAction.Abort;

    /// <summary>Whether anything here needs the library to watch the migration.</summary>
    internal bool IsActive => FinalMaxDowntime is not null || CompletionTimeout is not null || StallTimeout is not null;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (FinalMaxDowntime is { } final)
        {
            errors.InRange(nameof(FinalMaxDowntime), final, TimeSpan.FromMilliseconds(1), MaxTime);
        }

        errors.InRange(nameof(DowntimeSteps), DowntimeSteps, 1, 100);
        errors.InRange(nameof(DowntimeStepDelay), DowntimeStepDelay, TimeSpan.FromMilliseconds(100), MaxTime);
        if (CompletionTimeout is { } completion)
        {
            errors.InRange(nameof(CompletionTimeout), completion, TimeSpan.FromSeconds(1), TimeSpan.FromHours(24));
        }

        if (StallTimeout is { } stall)
        {
            errors.InRange(nameof(StallTimeout), stall, TimeSpan.FromSeconds(1), MaxTime);
        }

        errors.Defined(nameof(CompletionAction), CompletionAction);
    }

    /// <summary>A copy of these options.</summary>
    public LibvirtConvergenceOptions Clone() => (LibvirtConvergenceOptions)MemberwiseClone();
}
