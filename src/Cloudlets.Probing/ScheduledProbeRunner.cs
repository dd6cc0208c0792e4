using Cloudlets.Core.Probing;

namespace Cloudlets.Probing;

/// <summary>
/// Runs a <see cref="ProbeSchedule"/> over any <see cref="ILatencyProbe"/>: targets in turn, the
/// period and interval honoured through the <see cref="TimeProvider"/>, at most a given number of
/// probes in flight. For probers without a faster native many-target path (TCP connect).
/// </summary>
internal static class ScheduledProbeRunner
{
    public static async Task RunAsync(
        ILatencyProbe probe,
        IReadOnlyList<ProbeTarget> targets,
        ProbeSchedule schedule,
        Action<LatencySample> onSample,
        int maxInFlight,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        using var slots = new SemaphoreSlim(maxInFlight, maxInFlight);
        var gate = new Lock();
        var inFlight = new List<Task>();
        var nextDue = new long[targets.Count];
        var nextAny = long.MinValue;
        var period = ToUnits(schedule.Period, time);
        var interval = ToUnits(schedule.Interval, time);
        Exception? failure = null;
        for (var round = 0; round < schedule.Count && failure is null; round++)
        {
            for (var i = 0; i < targets.Count && failure is null; i++)
            {
                var due = Math.Max(nextAny, nextDue[i]);
                var wait = due - time.GetTimestamp();
                if (wait > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds((double)wait / time.TimestampFrequency), time, cancellationToken).ConfigureAwait(false);
                }

                await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                var now = time.GetTimestamp();
                nextDue[i] = now + period;
                nextAny = now + interval;
                inFlight.Add(ProbeOneAsync(targets[i]));
            }

            inFlight.RemoveAll(t => t.IsCompleted);
        }

        await Task.WhenAll(inFlight).ConfigureAwait(false);
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }

        cancellationToken.ThrowIfCancellationRequested();

        async Task ProbeOneAsync(ProbeTarget target)
        {
            try
            {
                var sample = await probe.ProbeAsync(target, schedule.Timeout, cancellationToken).ConfigureAwait(false);
                lock (gate)
                {
                    if (!cancellationToken.IsCancellationRequested)
                    {
                        onSample(sample);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
#pragma warning disable CA1031 // The first failure ends the run and is rethrown to its caller.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failure ??= ex;
            }
            finally
            {
                slots.Release();
            }
        }
    }

    private static long ToUnits(TimeSpan duration, TimeProvider time)
        => (long)Math.Ceiling(duration.Ticks * (double)time.TimestampFrequency / TimeSpan.TicksPerSecond);
}
