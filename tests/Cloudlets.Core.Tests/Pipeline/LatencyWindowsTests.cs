using System.Net;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Tests.Pipeline;

public class LatencyWindowsTests
{
    private static readonly ProbeTarget Target = new("a", IPAddress.Loopback);
    private static readonly DateTimeOffset T0 = VirtualClock.Epoch;

    private static LatencySample Sample(int second, double? ms) => new(
        "edge", Target, T0 + TimeSpan.FromSeconds(second), ms is { } m ? TimeSpan.FromMilliseconds(m) : null, ms is null ? ProbeStatus.Timeout : ProbeStatus.Ok);

    [Test]
    public void Summarize_WindowWithLoss_StatisticsOverAnsweredSamples()
    {
        var windows = new LatencyWindows(capacity: 5);
        foreach (var s in new[] { Sample(0, 999), Sample(1, 10), Sample(2, null), Sample(3, 30), Sample(4, 20), Sample(5, 40) })
        {
            windows.Add(s); // the first (999 ms) falls out of the 5-sample window
        }

        var summary = windows.Summarize("edge", "a");
        using (Assert.EnterMultipleScope())
        {
            Assert.That((summary.Sent, summary.Received), Is.EqualTo((5, 4)));
            Assert.That(summary.LossRate, Is.EqualTo(0.2).Within(1e-12));
            Assert.That(summary.Min, Is.EqualTo(TimeSpan.FromMilliseconds(10)));
            Assert.That(summary.Median, Is.EqualTo(TimeSpan.FromMilliseconds(25)), "10/20/30/40: the mean of the two middle values, as RollingLatencyStatistics defines it");
            Assert.That(summary.P95, Is.EqualTo(TimeSpan.FromMilliseconds(40)));
            Assert.That(summary.Mean, Is.EqualTo(TimeSpan.FromMilliseconds(25)));
            Assert.That(summary.Jitter!.Value.TotalMilliseconds, Is.EqualTo(50.0 / 3).Within(1e-3)); // |30-10|, |20-30|, |40-20|
            Assert.That(summary.NewestSampleAt, Is.EqualTo(T0 + TimeSpan.FromSeconds(5)));
        }
    }

    [Test]
    public void Summarize_AllLost_NoRoundTripFiguresNeverFast()
    {
        var windows = new LatencyWindows(capacity: 3);
        windows.Add(Sample(0, null));
        windows.Add(Sample(1, null));
        var summary = windows.Summarize("edge", "a");
        Assert.That((summary.Sent, summary.Received, summary.Median, summary.LossRate), Is.EqualTo((2, 0, (TimeSpan?)null, 1.0)));
    }

    [Test]
    public void Summarize_UnknownPair_EmptySummary()
    {
        Assert.That(new LatencyWindows(3).Summarize("edge", "nowhere"), Is.EqualTo(default(LatencySummary)));
    }

    [Test]
    public void Summarize_Span_OnlySamplesSentInIt()
    {
        var windows = new LatencyWindows(capacity: 10);
        for (var i = 0; i < 10; i++)
        {
            windows.Add(Sample(i, i < 5 ? 300 : 20));
        }

        using (Assert.EnterMultipleScope())
        {
            var before = windows.Summarize("edge", "a", T0, T0 + TimeSpan.FromSeconds(5));
            Assert.That((before.Sent, before.Median), Is.EqualTo((5, (TimeSpan?)TimeSpan.FromMilliseconds(300))));
            var after = windows.Summarize("edge", "a", T0 + TimeSpan.FromSeconds(5), DateTimeOffset.MaxValue);
            Assert.That((after.Sent, after.Median, after.NewestSampleAt), Is.EqualTo((5, (TimeSpan?)TimeSpan.FromMilliseconds(20), (DateTimeOffset?)(T0 + TimeSpan.FromSeconds(9)))));
            Assert.That(windows.Summarize("edge", "a", T0 + TimeSpan.FromSeconds(50), DateTimeOffset.MaxValue), Is.EqualTo(default(LatencySummary)));
        }
    }

    [Test]
    public void Summarize_SameSamples_SameAsRollingLatencyStatistics()
    {
        var windows = new LatencyWindows(capacity: 4);
        var statistics = new RollingLatencyStatistics(4);
        foreach (var s in new[] { Sample(0, 10), Sample(1, 20), Sample(2, 30), Sample(3, 40) })
        {
            windows.Add(s);
            statistics.Add(s);
        }

        Assert.That(windows.Summarize("edge", "a"), Is.EqualTo(statistics.Summarize()));
    }
}
