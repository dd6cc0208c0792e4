using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

public sealed partial class LibvirtHypervisorHost
{
    private async Task PollProgressAsync(DomainHandle domain, string vmName, TimeSpan interval, IProgress<MigrationProgress> progress, long started, CancellationToken cancellationToken)
    {
        // Never throws: progress is best effort, and the migration's own outcome decides. (A
        // PeriodicTimer outside its range used to throw here after the migration, hiding its result.)
        try
        {
            using var timer = new PeriodicTimer(interval, _time);
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var sample = await Task.Run(() => SampleProgress(domain, started), CancellationToken.None).ConfigureAwait(false);
                if (sample is not null && !cancellationToken.IsCancellationRequested)
                {
                    progress.Report(sample);
                }
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

        if (type is not (1 or 2))
        {
            return null;
        }

        return new MigrationProgress(
            JobStats.Milliseconds(stats, "time_elapsed") ?? _time.GetElapsedTime(started),
            JobStats.Long(stats, "data_processed"),
            JobStats.Long(stats, "data_remaining"),
            JobStats.Long(stats, "data_total"),
            JobStats.Long(stats, "memory_dirty_rate"),
            JobStats.Long(stats, "memory_iteration") is { } it ? (int)it : null,
            JobStats.Milliseconds(stats, "downtime"),
            JobStats.Long(stats, "memory_bps"));
    }
}
