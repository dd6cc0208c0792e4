// Expected values written inline read better than hoisted fields in tests.
#pragma warning disable CA1861

using System.Net;
using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Tests.Probing;

public class RollingLatencyStatisticsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [Test]
    public void Summarize_KnownRoundTrips_GivesKnownFigures()
    {
        var statistics = new RollingLatencyStatistics(10);
        double[] rtts = [10, 12, 11, 30, 9];
        for (var i = 0; i < rtts.Length; i++)
        {
            statistics.Add(Ms(rtts[i]), T0.AddSeconds(i));
        }

        var s = statistics.Summarize();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.Sent, Is.EqualTo(5));
            Assert.That(s.Received, Is.EqualTo(5));
            Assert.That(s.Min, Is.EqualTo(Ms(9)));
            Assert.That(s.Median, Is.EqualTo(Ms(11)));
            Assert.That(s.P95, Is.EqualTo(Ms(30)));
            Assert.That(s.Max, Is.EqualTo(Ms(30)));
            Assert.That(s.Mean, Is.EqualTo(Ms(14.4)));
            // |12-10| + |11-12| + |30-11| + |9-30| = 2 + 1 + 19 + 21 = 43 over 4 pairs.
            Assert.That(s.Jitter, Is.EqualTo(Ms(10.75)));
            Assert.That(s.LossRate, Is.Zero);
            Assert.That(s.NewestSampleAt, Is.EqualTo(T0.AddSeconds(4)));
            Assert.That(s.AgeAt(T0.AddSeconds(6)), Is.EqualTo(TimeSpan.FromSeconds(2)));
        }
    }

    [Test]
    public void Summarize_EvenCount_MedianIsMeanOfMiddlePair()
    {
        var statistics = new RollingLatencyStatistics(4);
        foreach (var ms in new double[] { 4, 1, 3, 2 })
        {
            statistics.Add(Ms(ms), T0);
        }

        Assert.That(statistics.Summarize().Median, Is.EqualTo(Ms(2.5)));
    }

    [Test]
    public void Summarize_HundredValues_P95IsNearestRank()
    {
        var statistics = new RollingLatencyStatistics(100);
        for (var i = 1; i <= 100; i++)
        {
            statistics.Add(Ms(101 - i), T0);
        }

        Assert.That(statistics.Summarize().P95, Is.EqualTo(Ms(95)));
    }

    [Test]
    public void Summarize_LostProbes_CountInLossButNotInFigures()
    {
        var statistics = new RollingLatencyStatistics(4);
        statistics.Add(Ms(5), T0);
        statistics.Add(null, T0.AddSeconds(1));
        statistics.Add(Ms(7), T0.AddSeconds(2));
        statistics.Add(null, T0.AddSeconds(3));

        var s = statistics.Summarize();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.Sent, Is.EqualTo(4));
            Assert.That(s.Received, Is.EqualTo(2));
            Assert.That(s.LossRate, Is.EqualTo(0.5));
            Assert.That(s.Min, Is.EqualTo(Ms(5)));
            Assert.That(s.Max, Is.EqualTo(Ms(7)));
            Assert.That(s.Jitter, Is.EqualTo(Ms(2)), "consecutive answers, skipping the lost one");
            Assert.That(s.NewestSampleAt, Is.EqualTo(T0.AddSeconds(3)), "a lost probe is still the newest sample");
        }
    }

    [Test]
    public void Summarize_NothingAnswered_RoundTripsAreNullAndLossIsFull()
    {
        var statistics = new RollingLatencyStatistics(3);
        statistics.Add(null, T0);
        statistics.Add(null, T0);

        var s = statistics.Summarize();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.Received, Is.Zero);
            Assert.That(s.LossRate, Is.EqualTo(1.0));
            Assert.That(new[] { s.Min, s.Median, s.P95, s.Max, s.Mean, s.Jitter }, Is.All.Null);
        }
    }

    [Test]
    public void Summarize_Empty_HasNoNewestSample()
    {
        var s = new RollingLatencyStatistics(3).Summarize();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.Sent, Is.Zero);
            Assert.That(s.NewestSampleAt, Is.Null);
            Assert.That(s.AgeAt(T0), Is.Null);
        }
    }

    [Test]
    public void Add_BeyondWindow_OldestSamplesLeave()
    {
        var statistics = new RollingLatencyStatistics(3);
        foreach (var ms in new double[] { 100, 200, 1, 2, 3 })
        {
            statistics.Add(Ms(ms), T0);
        }

        var s = statistics.Summarize();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(statistics.Count, Is.EqualTo(3));
            Assert.That(s.Sent, Is.EqualTo(3));
            Assert.That(s.Max, Is.EqualTo(Ms(3)));
            Assert.That(s.Jitter, Is.EqualTo(Ms(1)));
        }
    }

    [Test]
    public void Add_Sample_OnlyOkCountsAsAnswered()
    {
        var statistics = new RollingLatencyStatistics(3);
        var target = new ProbeTarget("t", IPAddress.Loopback);
        statistics.Add(new LatencySample("v", target, T0, Ms(1), ProbeStatus.Ok));
        statistics.Add(new LatencySample("v", target, T0, null, ProbeStatus.Timeout));
        statistics.Add(new LatencySample("v", target, T0, null, ProbeStatus.Unreachable));

        Assert.That(statistics.Summarize().Received, Is.EqualTo(1));
    }

    [Test]
    public void Constructor_WindowBelowOne_Throws()
        => Assert.That(() => new RollingLatencyStatistics(0), Throws.InstanceOf<ArgumentOutOfRangeException>());

    [Test]
    public void Add_NegativeRoundTrip_Throws()
        => Assert.That(() => new RollingLatencyStatistics(1).Add(Ms(-1), T0), Throws.InstanceOf<ArgumentOutOfRangeException>());

    [Test]
    public void Add_SteadyState_AllocatesNothing()
    {
        var statistics = new RollingLatencyStatistics(64);
        for (var i = 0; i < 128; i++)
        {
            statistics.Add(Ms(i), T0);
        }

        statistics.Summarize();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            statistics.Add(Ms(i % 7), T0.AddTicks(i));
        }

        statistics.Summarize();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(allocated, Is.Zero);
    }

    [Test]
    public void Summarize_Span_CountsOnlySamplesSentInIt()
    {
        var statistics = new RollingLatencyStatistics(8);
        statistics.Add(Ms(300), T0);
        statistics.Add(null, T0.AddSeconds(1));
        statistics.Add(Ms(300), T0.AddSeconds(2));
        statistics.Add(Ms(10), T0.AddSeconds(3));
        statistics.Add(Ms(20), T0.AddSeconds(4));
        statistics.Add(null, T0.AddSeconds(5));
        statistics.Add(Ms(40), T0.AddSeconds(6));

        var after = statistics.Summarize(T0.AddSeconds(3), DateTimeOffset.MaxValue);
        var before = statistics.Summarize(T0, T0.AddSeconds(3));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((after.Sent, after.Received, after.Median, after.Max), Is.EqualTo((4, 3, (TimeSpan?)Ms(20), (TimeSpan?)Ms(40))));
            Assert.That(after.Jitter, Is.EqualTo(Ms(15)), "|20-10| and |40-20| over two consecutive answered pairs");
            Assert.That(after.NewestSampleAt, Is.EqualTo(T0.AddSeconds(6)));
            Assert.That((before.Sent, before.Received, before.Median, before.NewestSampleAt), Is.EqualTo((3, 2, (TimeSpan?)Ms(300), (DateTimeOffset?)T0.AddSeconds(2))));
            Assert.That(statistics.Summarize(T0.AddSeconds(7), DateTimeOffset.MaxValue), Is.EqualTo(new LatencySummary(0, 0, null, null, null, null, null, null, null)));
            Assert.That(statistics.Summarize(DateTimeOffset.MinValue, DateTimeOffset.MaxValue), Is.EqualTo(statistics.Summarize()));
        }
    }
}
