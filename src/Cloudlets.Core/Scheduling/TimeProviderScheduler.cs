using System.Reactive.Concurrency;
using System.Reactive.Disposables;

namespace Cloudlets.Core.Scheduling;

/// <summary>
/// An Rx <see cref="IScheduler"/> whose clock and timers are a <see cref="TimeProvider"/>: the one
/// clock of the library. Give a pipeline <see cref="TimeProvider.System"/> for real time, or a fake
/// time provider (for example <c>FakeTimeProvider</c>) for virtual time: its Rx operators and its
/// other timing code then follow the same clock, with nothing to keep in step by hand.
/// </summary>
/// <remarks>
/// Work runs when the provider's timer fires: on the thread pool for the system provider (work due
/// now at once), inside <c>Advance</c> for a fake provider (work due now on its next advance or at once, as the fake does).
/// </remarks>
public sealed class TimeProviderScheduler : LocalScheduler
{
    /// <summary>Creates a scheduler over <paramref name="timeProvider"/>.</summary>
    public TimeProviderScheduler(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        TimeProvider = timeProvider;
    }

    /// <summary>The clock and timer source.</summary>
    public TimeProvider TimeProvider { get; }

    /// <inheritdoc />
    public override DateTimeOffset Now => TimeProvider.GetUtcNow();

    /// <inheritdoc />
    public override IDisposable Schedule<TState>(TState state, TimeSpan dueTime, Func<IScheduler, TState, IDisposable> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var result = new SingleAssignmentDisposable();
        var due = Scheduler.Normalize(dueTime);
        var timerLock = new object();
        ITimer? timer = null;
        timer = TimeProvider.CreateTimer(_ => Run(), null, due, Timeout.InfiniteTimeSpan);
        return new CompositeDisposable(result, Disposable.Create(() =>
        {
            lock (timerLock)
            {
                timer?.Dispose();
                timer = null;
            }
        }));

        void Run()
        {
            if (!result.IsDisposed)
            {
                result.Disposable = action(this, state);
            }

            lock (timerLock)
            {
                timer?.Dispose();
                timer = null;
            }
        }
    }
}
