using Microsoft.Extensions.Time.Testing;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>
/// Virtual time for the pipeline tests: one <see cref="FakeTimeProvider"/> is the pipeline's only clock
/// (its Rx scheduler is derived from it), and <see cref="Step"/> advances it.
/// </summary>
public static class VirtualClock
{
    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A fake clock at <see cref="Epoch"/>.</summary>
    public static FakeTimeProvider Create()
    {
        var clock = new FakeTimeProvider();
        clock.SetUtcNow(Epoch);
        return clock;
    }

    /// <summary>The largest single advance of <see cref="Step"/>.</summary>
    public static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Advances virtual time, running due work (and the awaits it completes) on this thread. The
    /// fake moves its clock to the end of an advance before it fires the timers that fell due, so
    /// this advances in slices of <see cref="Resolution"/>: each timer then fires within 10 ms of
    /// its due time (at it, for due times on the 10 ms grid, as all of these tests use).
    /// </summary>
    public static void Step(this FakeTimeProvider clock, TimeSpan by) => Inline(() =>
    {
        while (by > TimeSpan.Zero)
        {
            var slice = by < Resolution ? by : Resolution;
            clock.Advance(slice);
            by -= slice;
        }
    });

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
