// Expected values written inline read better than hoisted fields in tests.
#pragma warning disable CA1861

using System.Net;
using System.Reactive.Concurrency;
using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Tests.Probing;

public class LatencyProbeObservablesTests
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(1);
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly ProbeTarget a = new("a", IPAddress.Parse("127.0.1.1"));
    private readonly ProbeTarget b = new("b", IPAddress.Parse("127.0.1.2"));

    /// <summary>A probe whose answers the test releases by hand.</summary>
    private sealed class ControlledProbe : ILatencyProbe
    {
        public List<(ProbeTarget Target, TaskCompletionSource<LatencySample> Answer, CancellationToken Token)> Calls { get; } = [];

        public string VantagePoint => "test";

        public ValueTask<LatencySample> ProbeAsync(ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            var answer = new TaskCompletionSource<LatencySample>();
            Calls.Add((target, answer, cancellationToken));
            return new ValueTask<LatencySample>(answer.Task);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    // Completions continue on the thread pool: wait (bounded) for their effect before asserting.
    private static void Eventually(Func<bool> condition)
        => Assert.That(SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(5)), Is.True, "the expected effect did not happen in 5 s");

    [Test]
    public void Observe_EachPeriod_ProbesEveryIdleTargetOnce()
    {
        var scheduler = new HistoricalScheduler(T0);
        var probe = new ControlledProbe();
        var samples = new List<LatencySample>();
        using var subscription = probe.Observe([a, b], Period, TimeSpan.FromMilliseconds(500), scheduler).Subscribe(samples.Add);

        scheduler.AdvanceBy(TimeSpan.FromTicks(1));
        Assert.That(probe.Calls.Select(c => c.Target), Is.EqualTo(new[] { a, b }), "first round at once");

        probe.Calls[0].Answer.SetResult(new LatencySample("test", a, T0, TimeSpan.FromMilliseconds(3), ProbeStatus.Ok));
        Eventually(() => samples.Count == 1);
        scheduler.AdvanceBy(Period);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(samples.Select(s => s.Target), Is.EqualTo(new[] { a }));
            // b is still in flight, so the second round probes only a: at most one probe per target outstanding.
            Assert.That(probe.Calls.Select(c => c.Target), Is.EqualTo(new[] { a, b, a }));
        }
    }

    [Test]
    public void Observe_TimeoutSample_IsEmittedAsData()
    {
        var scheduler = new HistoricalScheduler(T0);
        var probe = new ControlledProbe();
        var samples = new List<LatencySample>();
        Exception? error = null;
        using var subscription = probe.Observe([a], Period, Period, scheduler).Subscribe(samples.Add, e => error = e);
        scheduler.AdvanceBy(TimeSpan.FromTicks(1));

        probe.Calls[0].Answer.SetResult(new LatencySample("test", a, T0, null, ProbeStatus.Timeout));
        Eventually(() => samples.Count == 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(samples.Select(s => s.Status), Is.EqualTo(new[] { ProbeStatus.Timeout }));
            Assert.That(error, Is.Null);
        }
    }

    [Test]
    public void Observe_Disposed_CancelsProbesInFlightAndStopsTheTimer()
    {
        var scheduler = new HistoricalScheduler(T0);
        var probe = new ControlledProbe();
        var subscription = probe.Observe([a], Period, Period, scheduler).Subscribe(_ => { });
        scheduler.AdvanceBy(TimeSpan.FromTicks(1));
        var token = probe.Calls[0].Token;

        subscription.Dispose();
        scheduler.AdvanceBy(10 * Period);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(token.IsCancellationRequested, Is.True);
            Assert.That(probe.Calls, Has.Count.EqualTo(1));
        }
    }

    [Test]
    public void Observe_ProbeFails_EndsWithError()
    {
        var scheduler = new HistoricalScheduler(T0);
        var probe = new ControlledProbe();
        Exception? error = null;
        using var subscription = probe.Observe([a], Period, Period, scheduler).Subscribe(_ => { }, e => error = e);
        scheduler.AdvanceBy(TimeSpan.FromTicks(1));

        probe.Calls[0].Answer.SetException(new InvalidOperationException("socket gone"));
        Eventually(() => Volatile.Read(ref error) is not null);

        Assert.That(error, Is.InstanceOf<InvalidOperationException>());
    }

    [Test]
    public void Observe_NoTargets_Throws()
        => Assert.That(() => new ControlledProbe().Observe([], Period, Period, new HistoricalScheduler()), Throws.ArgumentException);

    [Test]
    public void Summarize_Samples_EmitsRollingSummaryPerTarget()
    {
        var scheduler = new HistoricalScheduler(T0);
        var probe = new ControlledProbe();
        var summaries = new List<(ProbeTarget Target, LatencySummary Summary)>();
        using var subscription = probe.Observe([a], Period, Period, scheduler).Summarize(2).Subscribe(summaries.Add);
        scheduler.AdvanceBy(TimeSpan.FromTicks(1));
        foreach (var ms in new[] { 10, 20, 30 })
        {
            probe.Calls[^1].Answer.SetResult(new LatencySample("test", a, scheduler.Now, TimeSpan.FromMilliseconds(ms), ProbeStatus.Ok));
            var expected = summaries.Count + 1;
            Eventually(() => summaries.Count >= expected);
            scheduler.AdvanceBy(Period);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(summaries, Has.Count.EqualTo(3));
            Assert.That(summaries[^1].Summary.Sent, Is.EqualTo(2));
            Assert.That(summaries[^1].Summary.Min, Is.EqualTo(TimeSpan.FromMilliseconds(20)));
        }
    }
}
