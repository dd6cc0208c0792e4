using System.Net;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;

namespace Cloudlets.Probing.Tests.Icmp;

public class IcmpProbeBatchTests
{
    [Test]
    public void Deliver_RacingSendingFinished_CompletesTheBatchEveryTime()
    {
        // Issue 11 (fixed in 16cdbb3): the sender's "sending finished" and the receive thread's last
        // delivery used to be two flags, each written by one thread and read by the other. A store
        // followed by a load may be reordered (x86 does so through its store buffer), so both threads
        // could read the other's flag stale and nobody completed the batch: a probe that was answered
        // but never returned. Two threads start each pair of calls at the same moment, many times.
        var target = new ProbeTarget("t", IPAddress.Loopback);
        var sample = new LatencySample("edge", target, DateTimeOffset.UnixEpoch, TimeSpan.FromMilliseconds(1), ProbeStatus.Ok);
        const int Rounds = 100_000;
        var batches = new IcmpProbeBatch[Rounds];
        for (var i = 0; i < Rounds; i++)
        {
            batches[i] = new IcmpProbeBatch([target], 1, 1, _ => { });
            batches[i].AddOutstanding();
        }

        var go = 0;
        var ready = 0;
        var receiver = new Thread(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                Interlocked.Increment(ref ready);
                while (Volatile.Read(ref go) <= i)
                {
                    Thread.SpinWait(1);
                }

                batches[i].Deliver(sample);
            }
        });
        receiver.Start();
        for (var i = 0; i < Rounds; i++)
        {
            while (Volatile.Read(ref ready) <= i)
            {
                Thread.SpinWait(1);
            }

            Volatile.Write(ref go, i + 1);
            batches[i].SendingFinished();
        }

        receiver.Join();
        var stuck = batches.Count(b => !b.Completion.IsCompleted);
        Assert.That(stuck, Is.Zero, $"batches whose last probe was delivered and whose sender finished, but which never completed (of {Rounds})");
    }
}
