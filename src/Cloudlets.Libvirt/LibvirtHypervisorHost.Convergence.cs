using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

/// <summary>The convergence steps taken during one migration, shared by its watch loop and its outcome.</summary>
internal sealed class ConvergenceLog
{
    private readonly List<MigrationEscalation> _steps = [];

    public void Add(MigrationEscalation step)
    {
        lock (_steps)
        {
            _steps.Add(step);
        }
    }

    public IReadOnlyList<MigrationEscalation> Snapshot()
    {
        lock (_steps)
        {
            return _steps.Count == 0 ? [] : [.. _steps];
        }
    }

    /// <summary>The abort the library took on its own (completion timeout or stall), or <see langword="null"/>.</summary>
    public MigrationEscalation? LibraryAbort()
    {
        lock (_steps)
        {
            return _steps.LastOrDefault(s => s.Action == MigrationEscalationAction.Aborted);
        }
    }
}

public sealed partial class LibvirtHypervisorHost
{
    /// <summary>
    /// Applies one due step (blocking) and returns what was done (null when a downtime step failed: it is logged, and the next one may work): a post-copy switch that libvirt refuses becomes
    /// an abort, because the completion action must end the migration one way or the other.
    /// </summary>
    private ConvergenceStep? ApplyConvergenceStep(DomainHandle domain, string vmName, ConvergenceStep step, Action abort)
    {
        switch (step.Action)
        {
            case MigrationEscalationAction.RaisedMaxDowntime:
                if (LibvirtNative.virDomainMigrateSetMaxDowntime(domain, (ulong)step.MaxDowntime!.Value.TotalMilliseconds, 0) < 0)
                {
                    var error = LibvirtException.FromLastError("virDomainMigrateSetMaxDowntime");
                    Log.ConvergenceStepFailed(_logger, vmName, Name, step.Action.ToString(), error);
                    return null;
                }

                Log.ConvergenceStep(_logger, vmName, Name, step.Action.ToString(), step.Cause.ToString(), step.MaxDowntime);
                return step;
            case MigrationEscalationAction.SwitchedToPostCopy:
                if (LibvirtNative.virDomainMigrateStartPostCopy(domain, 0) < 0)
                {
                    var error = LibvirtException.FromLastError("virDomainMigrateStartPostCopy");
                    Log.ConvergenceStepFailed(_logger, vmName, Name, step.Action.ToString(), error);
                    abort();
                    return step with { Action = MigrationEscalationAction.Aborted };
                }

                Log.ConvergenceStep(_logger, vmName, Name, step.Action.ToString(), step.Cause.ToString(), null);
                return step;
            default:
                Log.ConvergenceStep(_logger, vmName, Name, step.Action.ToString(), step.Cause.ToString(), null);
                abort();
                return step;
        }
    }

    /// <summary>The failure of a migration the library aborted itself: a timeout, saying why and what was tried.</summary>
    private static MigrationException ConvergenceFailure(MigrationException error, MigrationEscalation abort, IReadOnlyList<MigrationEscalation> steps) =>
        new(
            HypervisorErrorKind.Timeout,
            $"{error.Message} The library aborted it: {(abort.Cause == MigrationEscalationCause.Stalled ? "it stalled (no new minimum of remaining data)" : "its completion timeout passed")} after {abort.Elapsed.TotalSeconds:0.0} s. Steps: {string.Join("; ", steps)}.",
            error.VmName,
            error.SourceHost,
            error.DestinationHost,
            error.VmRunningOnSource,
            error.DestinationCopy,
            error.InnerException);
}
