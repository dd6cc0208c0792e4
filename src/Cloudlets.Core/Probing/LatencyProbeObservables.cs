using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;

namespace Cloudlets.Core.Probing;

/// <summary>Latency probes as an <see cref="IObservable{T}"/> of samples.</summary>
public static class LatencyProbeObservables
{
    /// <summary>
    /// Probes every target once per <paramref name="period"/> (the first round at once), on
    /// <paramref name="scheduler"/>, and emits each sample as it completes. Bounded: a target whose
    /// previous probe is still in flight is skipped that round, so at most one probe per target is
    /// ever outstanding. Disposing the subscription cancels probes in flight and stops the timer.
    /// Loss and timeouts are samples; only an unexpected failure of the probe ends the sequence with an error.
    /// </summary>
    /// <exception cref="ArgumentException">No targets, or a period or timeout that is not positive.</exception>
    public static IObservable<LatencySample> Observe(
        this ILatencyProbe probe,
        IReadOnlyList<ProbeTarget> targets,
        TimeSpan period,
        TimeSpan timeout,
        IScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        var fixedTargets = ProbeTargetList.Copy(targets, nameof(targets));
        return Observable.Create<LatencySample>(observer =>
        {
            var cancellation = new CancellationTokenSource();
            var gate = new Lock();
            var inFlight = new bool[fixedTargets.Length];
            var stopped = false;

            void Emit(Action<IObserver<LatencySample>> action)
            {
                lock (gate)
                {
                    if (!stopped)
                    {
                        action(observer);
                    }
                }
            }

            async Task ProbeOneAsync(int index)
            {
                try
                {
                    var sample = await probe.ProbeAsync(fixedTargets[index], timeout, cancellation.Token).ConfigureAwait(false);
                    lock (gate)
                    {
                        inFlight[index] = false;
                    }

                    Emit(o => o.OnNext(sample));
                }
                catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
                {
                }
#pragma warning disable CA1031 // An unexpected failure ends the sequence with OnError, as Rx expects.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    lock (gate)
                    {
                        if (stopped)
                        {
                            return;
                        }

                        stopped = true;
                        observer.OnError(ex);
                    }

                    await cancellation.CancelAsync().ConfigureAwait(false);
                }
            }

            var timer = Observable.Timer(TimeSpan.Zero, period, scheduler).Subscribe(tick =>
            {
                for (var i = 0; i < fixedTargets.Length; i++)
                {
                    lock (gate)
                    {
                        if (stopped || inFlight[i])
                        {
                            continue;
                        }

                        inFlight[i] = true;
                    }

                    _ = ProbeOneAsync(i);
                }
            });

            return Disposable.Create(() =>
            {
                lock (gate)
                {
                    stopped = true;
                }

                timer.Dispose();
                cancellation.Cancel();
                cancellation.Dispose();
            });
        });
    }

    /// <summary>
    /// Keeps rolling statistics over the newest <paramref name="window"/> samples of each target and
    /// emits the target's fresh summary after every sample.
    /// </summary>
    public static IObservable<(ProbeTarget Target, LatencySummary Summary)> Summarize(this IObservable<LatencySample> samples, int window)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        return Observable.Defer(() =>
        {
            var byTarget = new Dictionary<ProbeTarget, RollingLatencyStatistics>();
            return samples.Select(sample =>
            {
                if (!byTarget.TryGetValue(sample.Target, out var statistics))
                {
                    statistics = new RollingLatencyStatistics(window);
                    byTarget.Add(sample.Target, statistics);
                }

                statistics.Add(sample);
                return (sample.Target, statistics.Summarize());
            });
        });
    }
}
