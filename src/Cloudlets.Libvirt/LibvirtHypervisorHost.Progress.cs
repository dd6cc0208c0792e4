using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

public sealed partial class LibvirtHypervisorHost
{
    /// <summary>
    /// At most this many job-statistics calls in flight on the connection at once while memory is copied (one
    /// answer per round trip / 6 over a slow control path: every 50 ms over the demonstration's 300 ms). A poll
    /// answers in a millisecond in the daemon then, so they wait on the wire, not in libvirtd's
    /// <c>max_client_requests</c> (default 5, one held by the migrate call). Once a sample shows the memory across,
    /// no more polls: one then waits inside the daemon for the hand-over and delays it (measured side by side with
    /// virsh, 30 runs each on a quiet machine: +79 ms per migration with one poll at a time from then on, +21 ms
    /// with none), and there is nothing left to report but the end, which the job-completed event brings. The polls
    /// sent in the round trip before that was seen can still hold the daemon's slots for the hand-over, delaying the
    /// connection's other calls, not failing them. A hand-over that never ends is the executor's completion timeout's
    /// to abort (the convergence schedule, fed by these samples, is about the copy, which is over).
    /// </summary>
    internal const int MaxPollsInFlight = 6;

    /// <summary>
    /// Samples the job every <paramref name="interval"/>: each sample feeds the convergence schedule (when there is
    /// one), whose due step is applied at once, and then goes to the listener (when there is one) with the steps so far.
    /// </summary>
    /// <remarks>
    /// A poll is one round trip to the source's daemon, and a controller far from its hosts waits that long for
    /// each: over the demonstration's 300 ms path a poll that waited for the previous one sampled a 0.3 s copy
    /// phase once. So a poll is sent every interval without waiting for the previous answer (up to
    /// <see cref="MaxPollsInFlight"/>; libvirt's client multiplexes calls on one connection), and the answers are
    /// handled as they come, in the order the polls were sent. Near the host each answer comes back within the
    /// interval, so one poll at most is in flight, as before.
    /// </remarks>
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
        var inFlight = new Queue<Task<MigrationProgress?>>(MaxPollsInFlight);

        // Never throws: progress is best effort, and the migration's own outcome decides. (A
        // PeriodicTimer outside its range used to throw here after the migration, hiding its result.)
        try
        {
            using var timer = new PeriodicTimer(interval, _time);
            var tick = timer.WaitForNextTickAsync(cancellationToken).AsTask();
            var limit = MaxPollsInFlight;
            var owed = false; // a tick came while the limit was out: poll as soon as one answers
            while (true)
            {
                // The oldest poll's answer as soon as it comes (so the answers are handled in the order the polls
                // were sent), or the next tick, whichever is first: the loop never waits for the daemon to poll again.
                if (inFlight.TryPeek(out var oldest) && await Task.WhenAny(tick, oldest).ConfigureAwait(false) == oldest)
                {
                    _ = inFlight.Dequeue(); // it is oldest, awaited below
                    var sample = await oldest.ConfigureAwait(false);
                    if (sample is { DataTotalBytes: > 0, DataRemainingBytes: 0 })
                    {
                        limit = 0; // the memory is across: what is left is the hand-over, which a poll would delay
                    }

                    if (owed && inFlight.Count < limit)
                    {
                        owed = false;
                        inFlight.Enqueue(Poll());
                    }

                    if (sample is not null)
                    {
                        await HandleSampleAsync(sample).ConfigureAwait(false);
                    }

                    continue;
                }

                if (!await tick.ConfigureAwait(false))
                {
                    break;
                }

                owed = inFlight.Count >= limit;
                if (!owed)
                {
                    inFlight.Enqueue(Poll());
                }

                tick = timer.WaitForNextTickAsync(cancellationToken).AsTask();
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
        finally
        {
            // Not awaited: a poll still in flight answers one round trip late, and the migration's result must not
            // wait for it. The domain handle is a SafeHandle, so a call in flight keeps it alive, and one that starts
            // after the migration released it fails inside its task; either way its failure is observed here.
            foreach (var pending in inFlight)
            {
                _ = pending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        // A thread of its own, as the migrate call has: a poll blocks its thread for a round trip, and a few of them on
        // the thread pool of a 2-core machine starved it (the pool adds threads slowly), so the polls went out late.
        Task<MigrationProgress?> Poll() => Task.Factory.StartNew(
            () => SampleProgress(domain, vmName, started),
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

        async Task HandleSampleAsync(MigrationProgress sample)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return;
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

    private unsafe MigrationProgress? SampleProgress(DomainHandle domain, string vmName, long started)
    {
        var asked = _time.GetTimestamp();
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

        var sample = type is Vir.JobBounded or Vir.JobUnbounded ? ToProgress(stats, _time.GetElapsedTime(started)) : null;
        Log.ProgressSampled(_logger, vmName, _time.GetElapsedTime(asked).TotalMilliseconds, type, sample?.DataProcessedBytes, sample?.DataRemainingBytes, sample?.DataTotalBytes);
        return sample;
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
