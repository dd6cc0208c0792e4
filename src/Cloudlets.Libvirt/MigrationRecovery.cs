using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt;

/// <summary>What one host showed of the VM, read in one step after a failed migration.</summary>
/// <param name="Reachable">Whether the host answered; when not, nothing else is known.</param>
/// <param name="Exists">Whether the host has the VM at all.</param>
/// <param name="State">The VM's run state (when it exists).</param>
/// <param name="Reason">libvirt's reason for that state (for a paused VM, <see cref="MigrationRecovery.PausedByMigration"/> and the others).</param>
/// <param name="MigrationJob">Whether the host still runs a migration job for the VM (its daemon is still migrating it).</param>
internal sealed record DomainObservation(bool Reachable, bool Exists, VmState State, int Reason, bool MigrationJob)
{
    /// <summary>A host that did not answer.</summary>
    public static DomainObservation Unreachable { get; } = new(false, false, VmState.Unknown, 0, false);

    /// <summary>A host that answered and has no such VM.</summary>
    public static DomainObservation Absent { get; } = new(true, false, VmState.Unknown, 0, false);

    /// <summary>The VM runs (or is blocked on a resource, which is running too).</summary>
    public bool Runs => Exists && State is VmState.Running or VmState.Blocked;

    /// <summary>There is nothing of the VM here that could be its only copy.</summary>
    public bool Gone => Reachable && (!Exists || State is VmState.ShutOff);

    /// <summary>Paused by the migration itself (libvirt's <c>VIR_DOMAIN_PAUSED_MIGRATION</c>): on a source at the hand-over, on a destination while the VM comes in.</summary>
    public bool PausedByMigration => Exists && State == VmState.Paused && Reason == MigrationRecovery.PausedByMigration;

    /// <inheritdoc />
    public override string ToString() =>
        !Reachable ? "unreachable"
        : !Exists ? "absent"
        : $"{State} (reason {MigrationRecovery.ReasonName(State, Reason)}){(MigrationJob ? ", migration job running" : "")}";
}

/// <summary>What recovery does next.</summary>
internal enum RecoveryAction
{
    /// <summary>Nothing more: report.</summary>
    Report,

    /// <summary>The source daemon is still migrating: look again shortly (until the recovery timeout), touch nothing.</summary>
    WaitForSourceJob,

    /// <summary>Destroy the destination's paused incoming copy (the source runs the VM with no migration job).</summary>
    DestroyDestinationCopy,

    /// <summary>Resume the source's copy, which the migration paused, when the destination has none.</summary>
    ResumeSource,

    /// <summary>The VM runs on both hosts: an alarm for an operator; nothing is touched, nothing is retried.</summary>
    Alarm,
}

/// <summary>A recovery decision: what to do, and what the caller reports when it stops here.</summary>
/// <param name="Action">What to do next.</param>
/// <param name="Copy">What the report says about the destination's copy.</param>
/// <param name="VmRunningOnSource">Whether the report says the source runs the VM.</param>
/// <param name="Rule">The row of the state table (see the package README) that decided.</param>
internal sealed record RecoveryDecision(RecoveryAction Action, DestinationCopyAction Copy, bool VmRunningOnSource, string Rule);

/// <summary>
/// The rules that decide, from what both hosts show, what may be touched after a failed migration
/// so that the VM is never lost. Pure: the state table in the package README lists the same rows.
/// </summary>
internal static class MigrationRecovery
{
    /// <summary><c>VIR_DOMAIN_PAUSED_MIGRATION</c>.</summary>
    public const int PausedByMigration = 2;

    /// <summary>Decides from one observation of both hosts.</summary>
    public static RecoveryDecision Decide(DomainObservation source, DomainObservation destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var leftAlone = !destination.Reachable ? DestinationCopyAction.Unknown
            : destination.Gone ? DestinationCopyAction.None
            : DestinationCopyAction.LeftUntouched;

        if (!source.Reachable)
        {
            return new(RecoveryAction.Report, leftAlone, false, "S1 source unreachable: touch nothing");
        }

        if (source.MigrationJob)
        {
            return new(RecoveryAction.WaitForSourceJob, leftAlone, source.Runs, "S2 source daemon still migrating: touch nothing, look again");
        }

        if (source.Runs)
        {
            if (destination.Runs)
            {
                return new(RecoveryAction.Alarm, DestinationCopyAction.BothRunning, true, "R1 both running: alarm");
            }

            if (!destination.Reachable)
            {
                return new(RecoveryAction.Report, DestinationCopyAction.Unknown, true, "R2 source runs, destination unreachable");
            }

            if (destination.Gone)
            {
                return new(RecoveryAction.Report, DestinationCopyAction.None, true, "R3 source runs, no copy on the destination");
            }

            if (destination.PausedByMigration)
            {
                return new(RecoveryAction.DestroyDestinationCopy, DestinationCopyAction.Removed, true, "R4 source runs without a job, destination paused by the incoming migration: remove that copy");
            }

            return new(RecoveryAction.Report, DestinationCopyAction.LeftUntouched, true, "R5 source runs, destination copy in another state: leave it");
        }

        if (source.PausedByMigration)
        {
            if (destination.Gone)
            {
                return new(RecoveryAction.ResumeSource, DestinationCopyAction.None, false, "P1 source paused by the migration, no copy on the destination: resume the source");
            }

            return new(RecoveryAction.Report, leftAlone, false, "P2 source paused by the migration, destination has a copy or cannot be asked: leave both");
        }

        if (source.Exists && source.State == VmState.Paused)
        {
            return new(RecoveryAction.Report, leftAlone, false, "P3 source paused for another reason (user, I/O error, post-copy): never resumed");
        }

        return new(RecoveryAction.Report, leftAlone, false, "G1 source no longer has the VM running: the destination's copy may be the only one");
    }

    /// <summary>A readable name of libvirt's state reason.</summary>
    public static string ReasonName(VmState state, int reason) => state switch
    {
        VmState.Paused => reason switch
        {
            0 => "unknown",
            1 => "user",
            2 => "migration",
            3 => "save",
            4 => "dump",
            5 => "I/O error",
            6 => "watchdog",
            7 => "from snapshot",
            8 => "shutting down",
            9 => "snapshot",
            10 => "crashed",
            11 => "starting up",
            12 => "post-copy",
            13 => "post-copy failed",
            14 => "API error",
            _ => reason.ToString(System.Globalization.CultureInfo.InvariantCulture),
        },
        VmState.Running => reason switch
        {
            1 => "booted",
            2 => "migrated",
            3 => "restored",
            4 => "from snapshot",
            5 => "unpaused",
            6 => "migration cancelled",
            7 => "save cancelled",
            8 => "wakeup",
            9 => "crashed",
            10 => "post-copy",
            11 => "post-copy failed",
            _ => reason.ToString(System.Globalization.CultureInfo.InvariantCulture),
        },
        VmState.ShutOff => reason switch
        {
            1 => "shutdown",
            2 => "destroyed",
            3 => "crashed",
            4 => "migrated",
            5 => "saved",
            6 => "failed",
            7 => "from snapshot",
            8 => "daemon",
            _ => reason.ToString(System.Globalization.CultureInfo.InvariantCulture),
        },
        _ => reason.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
