using System.Reactive.Concurrency;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>A <see cref="TimeProvider"/> that reads the virtual clock of a <see cref="HistoricalScheduler"/>, so both advance together.</summary>
public sealed class VirtualClock : TimeProvider
{
    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public VirtualClock() => Scheduler = new HistoricalScheduler(Epoch);

    public HistoricalScheduler Scheduler { get; }

    public override DateTimeOffset GetUtcNow() => Scheduler.Now;

    /// <summary>Advances virtual time, running due work (and the awaits it completes) on this thread.</summary>
    public void Advance(TimeSpan by) => Inline(() => Scheduler.AdvanceBy(by));

    /// <summary>
    /// Runs an action without a synchronization context. NUnit runs async tests under one, and an
    /// await completed under a context is posted to the thread pool instead of running inline —
    /// which would let virtual time run ahead of the code it drives.
    /// </summary>
    public static void Inline(Action action)
    {
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            action();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }
}
