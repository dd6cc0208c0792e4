using Cloudlets.Core.Shaping;
using Cloudlets.Netem.NfQueue;

namespace Cloudlets.Netem.Tests.NfQueue;

public sealed class DelaySchedulerTests
{
    private const long Frequency = 1_000_000;   // timestamps in microseconds: a fake clock

    private static DelayScheduler Create(int seed = 1) => new(Frequency, new LatenessStatistics(), new Random(seed));

    private static long Ms(double ms) => (long)(ms * 1000);

    [Test]
    public void Release_ConstantDelay_OneBatchWithTheHighestDueId()
    {
        var s = Create();
        s.Configure(1, Impairment.FromDelay(20));
        s.Enqueue(1, 10, Ms(0));
        s.Enqueue(1, 11, Ms(1));
        s.Enqueue(1, 12, Ms(5));
        var batches = new List<VerdictBatch>();

        s.Release(Ms(19.9), batches);
        Assert.That(batches, Is.Empty);
        s.Release(Ms(21), batches);
        Assert.That(batches, Is.EqualTo(new[] { new VerdictBatch(1, 11, 2) }));
        Assert.That(s.NextDue, Is.EqualTo(Ms(25)));
    }

    [Test]
    public void NextDue_TwoQueues_IsTheEarliestHead()
    {
        var s = Create();
        s.Configure(1, Impairment.FromDelay(300));
        s.Configure(2, Impairment.FromDelay(20));
        s.Enqueue(1, 1, Ms(0));
        s.Enqueue(2, 1, Ms(10));
        Assert.That(s.NextDue, Is.EqualTo(Ms(30)));
        var batches = new List<VerdictBatch>();
        s.Release(Ms(300), batches);
        Assert.That(batches, Is.EquivalentTo(new[] { new VerdictBatch(1, 1, 1), new VerdictBatch(2, 1, 1) }));
        Assert.That(s.Pending, Is.Zero);
    }

    [Test]
    public void Enqueue_Jitter_StaysWithinBoundsAndKeepsOrder()
    {
        var s = Create();
        s.Configure(1, new Impairment { Delay = TimeSpan.FromMilliseconds(20), Jitter = TimeSpan.FromMilliseconds(5) });
        var dues = Enumerable.Range(0, 500).Select(i => s.Enqueue(1, (uint)i, Ms(i * 20))).ToList();
        var arrivals = Enumerable.Range(0, 500).Select(i => Ms(i * 20)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(dues, Is.Ordered, "FIFO: a jittered packet never overtakes an earlier one");
            Assert.That(dues.Zip(arrivals, (d, a) => d - a), Has.All.InRange(Ms(15), Ms(25)), "delay − jitter … delay + jitter");
            Assert.That(dues.Zip(arrivals, (d, a) => d - a).Min(), Is.LessThan(Ms(16)), "jitter is really applied");
            Assert.That(dues.Zip(arrivals, (d, a) => d - a).Max(), Is.GreaterThan(Ms(24)), "both ways");
        }
    }

    [Test]
    public void Configure_NewDelay_AppliesToLaterPacketsOnly()
    {
        var s = Create();
        s.Configure(1, Impairment.FromDelay(300));
        Assert.That(s.Enqueue(1, 1, Ms(0)), Is.EqualTo(Ms(300)));
        s.Configure(1, Impairment.FromDelay(50));
        Assert.That(s.Enqueue(1, 2, Ms(400)), Is.EqualTo(Ms(450)));
    }

    [Test]
    public void Remove_WithPending_ReturnsHighestIdToRelease()
    {
        var s = Create();
        s.Configure(3, Impairment.FromDelay(100));
        s.Enqueue(3, 5, 0);
        s.Enqueue(3, 6, 0);
        Assert.That(s.Remove(3, out var max), Is.True);
        Assert.That((max, s.Pending, s.IsConfigured(3)), Is.EqualTo((6u, 0, false)));
    }

    [Test]
    public void Release_Late_RecordsLateness()
    {
        var s = Create();
        s.Configure(1, Impairment.FromDelay(10));
        s.Enqueue(1, 1, 0);
        s.Enqueue(1, 2, Ms(1));
        s.Release(Ms(13), []);
        var snapshot = s.Statistics.Snapshot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(snapshot.Released, Is.EqualTo(2));
            Assert.That(snapshot.Max, Is.EqualTo(TimeSpan.FromMilliseconds(3)));
            Assert.That(snapshot.P50, Is.EqualTo(TimeSpan.FromMicroseconds(2010)), "upper edge of the 10 µs bin of 2 ms");
        }
    }
}
