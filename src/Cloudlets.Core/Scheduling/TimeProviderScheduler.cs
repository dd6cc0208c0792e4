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
/// Each scheduled item is one one-shot timer of the provider, so work runs where the provider's
/// timers fire: on the thread pool for the system provider, inside <c>Advance</c> for
/// <c>FakeTimeProvider</c>. With <c>FakeTimeProvider</c>, items due at the same time run in the order
/// they were scheduled, and work due now (less than 1 ms away: the fake counts whole milliseconds)
/// runs at once, on the scheduling thread, before <see cref="Schedule{TState}(TState, TimeSpan, Func{IScheduler, TState, IDisposable})"/>
/// returns. Disposing the returned value before the item ran cancels it; after it ran, it
/// disposes what the work returned. <c>FakeTimeProvider</c> moves its clock to the end of an
/// <c>Advance</c> before it fires the timers that fell due, so a test advances in steps no larger
/// than the resolution it means to observe. Stopwatches (<see cref="StartStopwatch"/>), absolute
/// due times and periodic work (<see cref="SchedulePeriodic{TState}"/>, used by
/// <c>Observable.Interval</c>) all follow the provider too.
/// </remarks>
public sealed class TimeProviderScheduler : LocalScheduler, ISchedulerPeriodic
{
    /// <summary>Creates a scheduler over <paramref name="timeProvider"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
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
        var item = new Item<TState>(this, state, action);
        item.Start(Scheduler.Normalize(dueTime));
        return item;
    }

    /// <inheritdoc />
    public override IDisposable Schedule<TState>(TState state, DateTimeOffset dueTime, Func<IScheduler, TState, IDisposable> action) =>
        // LocalScheduler's own absolute scheduling runs on the system clock; this one follows the provider.
        Schedule(state, dueTime - Now, action);

    /// <inheritdoc />
    public override IStopwatch StartStopwatch() => new ProviderStopwatch(TimeProvider);

    /// <summary>Runs <paramref name="action"/> every <paramref name="period"/> on one periodic timer of the provider; runs never overlap.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="period"/> is not positive.</exception>
    public IDisposable SchedulePeriodic<TState>(TState state, TimeSpan period, Func<TState, TState> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        var gate = new Lock();
        var current = state;
        var stopped = false;
        var timer = TimeProvider.CreateTimer(
            _ =>
            {
                lock (gate)
                {
                    if (!stopped)
                    {
                        current = action(current);
                    }
                }
            },
            null,
            period,
            period);
        return Disposable.Create(() =>
        {
            lock (gate)
            {
                stopped = true;
            }

            timer.Dispose();
        });
    }

    /// <inheritdoc />
    protected override object? GetService(Type serviceType) =>
        serviceType == typeof(ISchedulerPeriodic) ? this : base.GetService(serviceType);

    private sealed class ProviderStopwatch(TimeProvider timeProvider) : IStopwatch
    {
        private readonly long _start = timeProvider.GetTimestamp();

        public TimeSpan Elapsed => timeProvider.GetElapsedTime(_start);
    }

    /// <summary>One scheduled piece of work and its timer; runs at most once.</summary>
    private sealed class Item<TState>(TimeProviderScheduler scheduler, TState state, Func<IScheduler, TState, IDisposable> action) : IDisposable
    {
        private readonly Lock _gate = new();
        private readonly SingleAssignmentDisposable _result = new();
        private ITimer? _timer;
        private bool _ran;
        private bool _disposed;

        public void Start(TimeSpan dueTime)
        {
            // A fake provider may fire a timer that is due now inside CreateTimer: Run then finds no
            // timer to release, and the timer is released here instead (a fired fake timer stays
            // registered with its provider until disposed).
            var timer = scheduler.TimeProvider.CreateTimer(static s => ((Item<TState>)s!).Run(), this, dueTime, Timeout.InfiniteTimeSpan);
            lock (_gate)
            {
                if (!_ran && !_disposed)
                {
                    _timer = timer;
                    return;
                }
            }

            timer.Dispose();
        }

        public void Dispose()
        {
            ITimer? timer;
            lock (_gate)
            {
                _disposed = true;
                timer = _timer;
                _timer = null;
            }

            timer?.Dispose();
            _result.Dispose();
        }

        private void Run()
        {
            ITimer? timer;
            lock (_gate)
            {
                if (_ran || _disposed)
                {
                    return;
                }

                _ran = true;
                timer = _timer;
                _timer = null;
            }

            timer?.Dispose();
            _result.Disposable = action(scheduler, state);
        }
    }
}
