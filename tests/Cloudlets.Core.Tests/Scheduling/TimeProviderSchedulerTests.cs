using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using Cloudlets.Core.Scheduling;
using Cloudlets.Core.Tests.Pipeline;

namespace Cloudlets.Core.Tests.Scheduling;

public class TimeProviderSchedulerTests
{
    [Test]
    public void Schedule_DifferentDueTimes_EachRunsAtItsDueTimeInVirtualTime()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        var ran = new List<(string Name, DateTimeOffset At)>();
        foreach (var (name, seconds) in new[] { ("c", 3), ("a", 1), ("b", 2) })
        {
            scheduler.Schedule(TimeSpan.FromSeconds(seconds), () => ran.Add((name, scheduler.Now)));
        }

        clock.Step(TimeSpan.FromMilliseconds(999));
        Assert.That(ran, Is.Empty, "nothing is due before 1 s");
        for (var i = 0; i < 10; i++)
        {
            clock.Step(TimeSpan.FromMilliseconds(1)); // to 1 s, then past 2 s and 3 s in steps
            clock.Step(TimeSpan.FromMilliseconds(999));
        }
        Assert.That(ran, Is.EqualTo(new[]
        {
            ("a", VirtualClock.Epoch.AddSeconds(1)),
            ("b", VirtualClock.Epoch.AddSeconds(2)),
            ("c", VirtualClock.Epoch.AddSeconds(3)),
        }));
    }

    [Test]
    public void Schedule_SameDueTime_RunInTheOrderScheduled()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        var ran = new List<int>();
        for (var i = 0; i < 20; i++)
        {
            var n = i;
            scheduler.Schedule(TimeSpan.FromSeconds(5), () => ran.Add(n));
        }

        clock.Step(TimeSpan.FromSeconds(5));
        Assert.That(ran, Is.EqualTo(Enumerable.Range(0, 20)));
    }

    [Test]
    public void Schedule_AbsoluteDueTime_RunsAtThatTime()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        DateTimeOffset? at = null;
        scheduler.Schedule(VirtualClock.Epoch.AddMinutes(2), () => at = scheduler.Now);

        clock.Step(TimeSpan.FromMinutes(1));
        Assert.That(at, Is.Null);
        clock.Step(TimeSpan.FromMinutes(1));
        Assert.That(at, Is.EqualTo(VirtualClock.Epoch.AddMinutes(2)));
    }

    [Test]
    public void Schedule_DisposedBeforeDue_NeverRuns()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        var ran = new List<string>();
        var cancelled = scheduler.Schedule(TimeSpan.FromSeconds(1), () => ran.Add("cancelled"));
        scheduler.Schedule(TimeSpan.FromSeconds(2), () => ran.Add("kept"));

        cancelled.Dispose();
        clock.Step(TimeSpan.FromSeconds(10));
        cancelled.Dispose(); // twice is harmless
        Assert.That(ran, Is.EqualTo(new[] { "kept" }));
    }

    [Test]
    public void Schedule_DisposedAfterRun_DisposesWhatTheWorkReturned()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        var inner = new BooleanDisposable();
        var handle = scheduler.Schedule(0, TimeSpan.FromSeconds(1), (_, _) => inner);

        clock.Step(TimeSpan.FromSeconds(1));
        Assert.That(inner.IsDisposed, Is.False);
        handle.Dispose();
        Assert.That(inner.IsDisposed, Is.True);
    }

    [Test]
    public void Schedule_DueNowOnFakeClock_RunsAtOnceWithoutAdvancing()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        var ran = 0;
        scheduler.Schedule(() => ran++);
        scheduler.Schedule(TimeSpan.FromSeconds(-5), () => ran++);
        Assert.That((ran, scheduler.Now), Is.EqualTo((2, VirtualClock.Epoch)));
    }

    [Test]
    public void Interval_OnFakeClock_TicksEveryPeriodOfVirtualTime()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        var ticks = new List<DateTimeOffset>();
        using var subscription = Observable.Interval(TimeSpan.FromSeconds(5), scheduler).Subscribe(_ => ticks.Add(scheduler.Now));

        for (var i = 0; i < 22; i++)
        {
            clock.Step(TimeSpan.FromSeconds(1));
        }

        subscription.Dispose();
        clock.Step(TimeSpan.FromSeconds(20));
        Assert.That(ticks, Is.EqualTo(new[] { 5, 10, 15, 20 }.Select(s => VirtualClock.Epoch.AddSeconds(s))));
    }

    [Test]
    public async Task Schedule_SystemTimeProvider_RunsOnTheThreadPoolAfterTheDueTime()
    {
        var scheduler = new TimeProviderScheduler(TimeProvider.System);
        var ran = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
        var scheduledAt = TimeProvider.System.GetUtcNow();
        scheduler.Schedule(TimeSpan.FromMilliseconds(50), () => ran.TrySetResult(TimeProvider.System.GetUtcNow()));

        var at = await ran.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(at - scheduledAt, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(40)), "not before its due time (timer resolution allowed)");
    }

    [Test]
    public void StartStopwatch_FakeClock_MeasuresVirtualTime()
    {
        var clock = VirtualClock.Create();
        var stopwatch = new TimeProviderScheduler(clock).StartStopwatch();
        clock.Step(TimeSpan.FromSeconds(90));
        Assert.That(stopwatch.Elapsed, Is.EqualTo(TimeSpan.FromSeconds(90)));
    }

    [Test]
    public void SchedulePeriodic_Disposed_StopsTicking()
    {
        var clock = VirtualClock.Create();
        var scheduler = new TimeProviderScheduler(clock);
        var handle = scheduler.SchedulePeriodic(0, TimeSpan.FromSeconds(1), n => n + 1);
        var count = 0;
        using var counted = scheduler.SchedulePeriodic(0, TimeSpan.FromSeconds(1), n => count = n + 1);
        clock.Step(TimeSpan.FromSeconds(1));
        clock.Step(TimeSpan.FromSeconds(1));
        handle.Dispose();
        counted.Dispose();
        clock.Step(TimeSpan.FromSeconds(1));
        Assert.That(count, Is.EqualTo(2));
    }

    [Test]
    public void Ctor_NullTimeProvider_Throws()
    {
        Assert.That(() => new TimeProviderScheduler(null!), Throws.ArgumentNullException);
    }
}
