using System.Collections.Concurrent;
using Cloudlets.Core.Decisions;

namespace Cloudlets.Core.Tests.Decisions;

/// <summary>
/// The process-wide threads that run the shares an evaluation hands over: they are the policy's own, at most
/// one fewer than the processors, kept once started, and a hand-over after they parked allocates nothing.
/// </summary>
public class LaneWorkersTests
{
    [Test]
    public void Queue_EvaluationsAskingForMoreLanesThanProcessors_RunOnLaneThreadsNeverMoreThanTheMost()
    {
        // Eight lanes asked for, on any machine: the shares no lane thread takes are run by the evaluating thread.
        var ranOn = new ConcurrentBag<string?>();
        var s = LowestLatencyPolicyTests.ManyUserFleet(61, 200, 12, 3000);
        var policy = new LowestLatencyPolicy(LowestLatencyPolicyTests.LaneOptions(8))
        {
            ParallelMinimumVms = 1,
            ParallelMinimumRows = 1,
            FailRefreshShare = _ =>
            {
                ranOn.Add(Thread.CurrentThread.Name);
                return false;
            },
        };
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        var evaluatingThread = Thread.CurrentThread.Name;
        var completed = LaneWorkers.Completed;
        for (var window = 0; window < 20; window++)
        {
            RewriteRows(s, window);
            policy.Evaluate(s, buffer);
            s.AdvanceConfirmations(buffer);
        }

        Assert.That(LaneWorkers.MaxThreadCount, Is.EqualTo(Math.Clamp(Environment.ProcessorCount - 1, 1, 63)));
        Assert.That(LaneWorkers.ThreadCount, Is.InRange(1, LaneWorkers.MaxThreadCount));
        Assert.That(LaneWorkers.Completed, Is.GreaterThan(completed));
        Assert.That(ranOn.Where(name => name != evaluatingThread), Is.Not.Empty.And.All.EqualTo("Cloudlets policy lane"), "a share not on the evaluating thread ran on a lane thread, not the pool");
    }

    [Test]
    public void Queue_AfterTheLaneThreadsParked_HandsOverAgainAndAllocatesNothing()
    {
        // Each window comes after the lane threads stopped spinning and parked (1 ms): the hand-over wakes
        // one, and neither the evaluating thread nor the shares on the lane threads allocate.
        var s = LowestLatencyPolicyTests.ManyUserFleet(62, 200, 12, 3000);
        var policy = new LowestLatencyPolicy(LowestLatencyPolicyTests.LaneOptions(2)) { ParallelMinimumVms = 1, ParallelMinimumRows = 1 };
        var buffer = new DecisionBuffer(s, recordCandidates: false);
        RewriteRows(s, 0);
        policy.Evaluate(s, buffer); // the first evaluation allocates the index, the orderings and the lanes
        s.AdvanceConfirmations(buffer);
        var threads = LaneWorkers.ThreadCount;
        var completed = LaneWorkers.Completed;
        var before = GC.GetAllocatedBytesForCurrentThread() + buffer.LaneAllocatedBytes;
        for (var window = 1; window <= 5; window++)
        {
            Thread.Sleep(50);
            RewriteRows(s, window);
            policy.Evaluate(s, buffer);
            s.AdvanceConfirmations(buffer);
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() + buffer.LaneAllocatedBytes - before, Is.Zero);
        Assert.That(LaneWorkers.Completed, Is.GreaterThan(completed), "the parked lane threads took shares");
        Assert.That(LaneWorkers.ThreadCount, Is.EqualTo(threads), "no thread was started again");
    }

    /// <summary>Half of the vantage points report new samples to every host (so rows and refresh are split), a little different each window.</summary>
    private static void RewriteRows(FleetSnapshot s, int window)
    {
        for (var p = window % 2; p < s.VantagePointCount; p += 2)
        {
            for (var h = 0; h < s.HostCount; h++)
            {
                var median = s.LatencyOf(p, h).MedianMs;
                if (!double.IsNaN(median))
                {
                    s.SetLatency(p, h, LowestLatencyPolicyTests.Summary(median * (((h + window) % 3) == 0 ? 1.02 : 0.99), s.Now));
                }
            }
        }
    }
}
