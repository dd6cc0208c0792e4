using System.Reactive.Concurrency;

namespace Cloudlets.Core.Pipeline;

/// <summary>Delays on an <see cref="IScheduler"/> as tasks.</summary>
internal static class SchedulerDelay
{
    /// <summary>
    /// A task that completes when <paramref name="delay"/> has passed on <paramref name="scheduler"/>
    /// (cancelled with the token). Continuations run inline on the scheduler's thread, so in virtual
    /// time the code after the await runs while the clock is advanced, not later on the thread pool.
    /// </summary>
    public static Task Delay(IScheduler scheduler, TimeSpan delay, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        var tcs = new TaskCompletionSource();
        var timer = scheduler.Schedule(delay, () => tcs.TrySetResult());
        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.Register(() =>
            {
                timer.Dispose();
                tcs.TrySetCanceled(cancellationToken);
            });
            _ = tcs.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return tcs.Task;
    }
}
