using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

public sealed partial class LibvirtHypervisorHost
{
    /// <summary>
    /// Samples the job every <paramref name="interval"/>: each sample feeds the convergence schedule (when there is
    /// one), whose due step is applied at once, and then goes to the listener (when there is one) with the steps so far.
    /// </summary>
    private async Task WatchMigrationAsync(
        DomainHandle domain,
        string vmName,
        TimeSpan interval,
        IProgress<MigrationProgress>? progress,
        ConvergenceSchedule? schedule,
        ConvergenceLog escalations,
        Action abort,
        long started,
        CancellationToken cancellationToken)
    {
        // Never throws: progress is best effort, and the migration's own outcome decides. (A
        // PeriodicTimer outside its range used to throw here after the migration, hiding its result.)
        try
        {
            using var timer = new PeriodicTimer(interval, _time);
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var sample = await Task.Run(() => SampleProgress(domain, started), CancellationToken.None).ConfigureAwait(false);
                if (sample is null || cancellationToken.IsCancellationRequested)
                {
                    continue;
                }

                // The schedule runs on this process's clock (as TotalTime does), only while a job runs.
                var elapsed = _time.GetElapsedTime(started);
                // QEMU reports zeros while it sets the migration up: a zero then would be a minimum never beaten.
                var remaining = sample.DataTotalBytes > 0 ? sample.DataRemainingBytes : null;
                if (schedule?.Next(elapsed, remaining, sample.Iteration) is { } step)
                {
                    var taken = await Task.Run(() => ApplyConvergenceStep(domain, vmName, step, abort), CancellationToken.None).ConfigureAwait(false);
                    if (taken is not null)
                    {
                        escalations.Add(new MigrationEscalation(elapsed, taken.Action, taken.Cause, taken.MaxDowntime, sample.DataRemainingBytes));
                    }
                }

                progress?.Report(sample with { Escalations = escalations.Snapshot() });
            }
        }
        catch (OperationCanceledException)
        {
        }
#pragma warning disable CA1031 // Progress is best effort; the migration's own outcome decides.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.ProgressFailed(_logger, vmName, ex);
        }
    }

    private unsafe MigrationProgress? SampleProgress(DomainHandle domain, long started)
    {
        if (LibvirtNative.virDomainGetJobStats(domain, out var type, out var p, out var n, 0) < 0)
        {
            // The job may just have finished (the domain is gone, or no longer running).
            LibvirtNative.virResetLastError();
            return null;
        }

        Dictionary<string, object> stats;
        try
        {
            stats = TypedParams.Read(p, n);
        }
        finally
        {
            LibvirtNative.virTypedParamsFree(p, n);
        }

        return type is Vir.JobBounded or Vir.JobUnbounded ? ToProgress(stats, _time.GetElapsedTime(started)) : null;
    }

    /// <summary>
    /// The domain's outgoing migration as its job shows it, or <see langword="null"/> when none runs. libvirt
    /// keeps a migration's job on the source daemon, so any connection to it reads the job, whoever started
    /// the migration (another controller, virsh). Blocking; called for active domains only.
    /// </summary>
    /// <exception cref="LibvirtException">The connection was lost (any other failure reads as no migration).</exception>
    internal static unsafe MigrationProgress? ReadOutgoingMigration(DomainHandle domain)
    {
        if (LibvirtNative.virDomainGetJobStats(domain, out var type, out var p, out var n, 0) < 0)
        {
            // An incoming domain ("statistics are available only on the source host"), a domain that stopped
            // since it was listed, or a driver without jobs (the test driver): no outgoing migration here.
            var error = LibvirtException.FromLastError("virDomainGetJobStats");
            return error.Kind == HypervisorErrorKind.ConnectionLost ? throw error : null;
        }

        Dictionary<string, object> stats;
        try
        {
            stats = TypedParams.Read(p, n);
        }
        finally
        {
            LibvirtNative.virTypedParamsFree(p, n);
        }

        // Only a migration out: a save, dump, backup or snapshot job is not one.
        return type is Vir.JobBounded or Vir.JobUnbounded && JobStats.Long(stats, "operation") == Vir.JobOperationMigrationOut
            ? ToProgress(stats, TimeSpan.Zero)
            : null;
    }

    /// <summary>An active job's statistics as progress; <paramref name="elapsed"/> when the job does not say how long it has run.</summary>
    private static MigrationProgress ToProgress(Dictionary<string, object> stats, TimeSpan elapsed) =>
        new(
            JobStats.Milliseconds(stats, "time_elapsed") ?? elapsed,
            JobStats.Long(stats, "data_processed"),
            JobStats.Long(stats, "data_remaining"),
            JobStats.Long(stats, "data_total"),
            JobStats.Long(stats, "memory_dirty_rate"),
            JobStats.Long(stats, "memory_iteration") is { } it ? (int)it : null,
            JobStats.Milliseconds(stats, "downtime"),
            JobStats.Long(stats, "memory_bps"))
        {
            CpuThrottlePercent = JobStats.Long(stats, "auto_converge_throttle") is { } throttle ? (int)throttle : null,
        };
}
