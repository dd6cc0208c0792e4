using System.Net;
using Cloudlets.Core.Probing;

namespace Cloudlets.Mqtt.Tests;

public sealed class SampleRingTests
{
    private static LatencySample At(int i) =>
        new("v", new ProbeTarget("t", IPAddress.Loopback), DateTimeOffset.UnixEpoch.AddSeconds(i), TimeSpan.FromMilliseconds(1), ProbeStatus.Ok);

    [Test]
    public void Add_PastCapacity_DropsTheOldestAndCountsThem()
    {
        var ring = new SampleRing(3);
        for (var i = 0; i < 5; i++)
        {
            ring.Add(At(i));
        }

        var copy = new LatencySample[10];
        var (_, count) = ring.Peek(copy);

        Assert.That((ring.Dropped, count), Is.EqualTo((2L, 3)));
        Assert.That(copy.Take(3).Select(s => s.SentAt.ToUnixTimeSeconds()), Is.EqualTo(new long[] { 2, 3, 4 }));
    }

    [Test]
    public void Commit_AfterDropsDuringFlight_RemovesOnlyWhatIsLeft()
    {
        var ring = new SampleRing(3);
        ring.Add(At(0));
        ring.Add(At(1));
        var (start, count) = ring.Peek(new LatencySample[2]);
        // While those two are in flight, three more arrive: both in-flight samples are evicted.
        ring.Add(At(2));
        ring.Add(At(3));
        ring.Add(At(4));
        ring.Commit(start, count);

        var copy = new LatencySample[10];
        var (_, left) = ring.Peek(copy);

        Assert.That(left, Is.EqualTo(3));
        Assert.That(copy.Take(3).Select(s => s.SentAt.ToUnixTimeSeconds()), Is.EqualTo(new long[] { 2, 3, 4 }));
    }
}
