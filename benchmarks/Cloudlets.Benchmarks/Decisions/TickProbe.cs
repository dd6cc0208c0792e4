using System.Diagnostics;
using System.Globalization;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Benchmarks.Decisions;

/// <summary>
/// <c>ticks [VMS HOSTS VANTAGEPOINTS] [--windows N] [--threads N] [--pause SECONDS] [--check]</c>: the regional fleet of <see cref="RegionTickBenchmarks"/>,
/// evaluated for twelve windows (or N) one by one, each timed and its allocation counted, so that the window kinds
/// BenchmarkDotNet averages together are seen apart: quiet windows, the windows in which about 23,700 VMs
/// move (every third: the moves are never applied, so the same confirmations run again), and, with new
/// samples, windows after a tenth of the vantage points wrote every cell (timed apart: the window's time is the evaluation's).
/// With <c>--check</c> the naive scan evaluates a second copy in step and every VM's kind, reason, target and
/// scores must be the same (the scan's time is printed too). The last line gives, per window kind, the
/// median and the range of the windows after the first three (a window "with moves" has more than 1 % of the VMs moving) (which include the first evaluation and the
/// JIT's tiering): on a shared machine one window can take twice its median. <c>--threads</c> sets
/// <see cref="LowestLatencyPolicyOptions.MaxDegreeOfParallelism"/> (default 0: the processor count). <c>--pause</c>
/// sleeps that long before each window from the fourth on, as a controller that ticks seldom does (a thread-pool
/// thread retires after 20 s idle: what would a tick then allocate?).
/// </summary>
internal static class TickProbe
{
    public static int Run(string[] args)
    {
        var windowsAt = Array.IndexOf(args, "--windows");
        var windows = windowsAt >= 0 ? int.Parse(args[windowsAt + 1], CultureInfo.InvariantCulture) : 12;
        var threadsAt = Array.IndexOf(args, "--threads");
        var threads = threadsAt >= 0 ? int.Parse(args[threadsAt + 1], CultureInfo.InvariantCulture) : 0;
        var pauseAt = Array.IndexOf(args, "--pause");
        var pause = pauseAt >= 0 ? TimeSpan.FromSeconds(double.Parse(args[pauseAt + 1], CultureInfo.InvariantCulture)) : TimeSpan.Zero;
        var numbers = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && i != windowsAt + 1 && i != threadsAt + 1 && i != pauseAt + 1)
            .Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray();
        var vms = numbers.Length > 0 ? numbers[0] : 1_000_000;
        var hosts = numbers.Length > 1 ? numbers[1] : 1_000;
        var vantagePoints = numbers.Length > 2 ? numbers[2] : 10_000;
        var check = args.Contains("--check");
        var snapshot = Build(hosts, vms, vantagePoints);
        var policy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 3, MaxDegreeOfParallelism = threads });
        var buffer = new DecisionBuffer(snapshot, recordCandidates: false);
        var scanSnapshot = check ? Build(hosts, vms, vantagePoints) : null;
        var scanBuffer = scanSnapshot is null ? null : new DecisionBuffer(scanSnapshot, recordCandidates: false);
        var scanPolicy = new LowestLatencyPolicy(new LowestLatencyPolicyOptions { ConfirmationWindows = 3, CandidateIndexDepth = 0 });
        var nextRow = 0;
        Console.WriteLine($"{vms} VMs x {hosts} hosts x {vantagePoints} vantage points, {(threads == 0 ? Environment.ProcessorCount : threads)} threads at most; load {File.ReadAllText("/proc/loadavg").Trim()}");
        var times = new List<(string Kind, double Ms)>();
        for (var window = 0; window < windows; window++)
        {
            if (window >= 3 && pause > TimeSpan.Zero)
            {
                Thread.Sleep(pause);
            }

            var newSamples = window % 6 == 4;
            var writesMs = 0.0;
            if (newSamples)
            {
                var writing = Stopwatch.GetTimestamp();
                WriteRows(snapshot, nextRow, window);
                writesMs = Stopwatch.GetElapsedTime(writing).TotalMilliseconds;
                if (scanSnapshot is not null)
                {
                    WriteRows(scanSnapshot, nextRow, window);
                }

                nextRow = (nextRow + (snapshot.VantagePointCount / 10)) % snapshot.VantagePointCount;
            }

            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            var started = Stopwatch.GetTimestamp();
            policy.Evaluate(snapshot, buffer);
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated; // every thread's: the refresh may run on pool threads
            snapshot.AdvanceConfirmations(buffer);
            if (window >= 3)
            {
                times.Add((newSamples ? "after new samples" : buffer.MoveCount > vms / 100 ? "with moves" : "quiet", ms));
            }

            var line = string.Create(CultureInfo.InvariantCulture, $"window {window,2}{(newSamples ? " (new samples)" : ""),-14}: {ms,7:0.0} ms, {allocated} B, {buffer.MoveCount} moves{(newSamples ? $" (writing the samples before: {writesMs:0.0} ms)" : "")}");
            if (scanSnapshot is not null)
            {
                started = Stopwatch.GetTimestamp();
                scanPolicy.Evaluate(scanSnapshot, scanBuffer!);
                line += string.Create(CultureInfo.InvariantCulture, $"; scan {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms");
                for (var vm = 0; vm < vms; vm++)
                {
                    var a = (buffer.KindOf(vm), buffer.ReasonOf(vm), buffer.TargetOf(vm), buffer.CurrentScoreOf(vm), buffer.TargetScoreOf(vm));
                    var b = (scanBuffer!.KindOf(vm), scanBuffer.ReasonOf(vm), scanBuffer.TargetOf(vm), scanBuffer.CurrentScoreOf(vm), scanBuffer.TargetScoreOf(vm));
                    if (!a.Equals(b))
                    {
                        throw new InvalidOperationException($"Window {window}, VM {vm}: {a}, the scan says {b}.");
                    }
                }

                scanSnapshot.AdvanceConfirmations(scanBuffer!);
                line += ", identical";
            }

            Console.WriteLine(line + $"; load {File.ReadAllText("/proc/loadavg").Trim()}");
        }

        var summary = times.GroupBy(t => t.Kind).Select(g =>
        {
            var ms = g.Select(t => t.Ms).Order().ToArray();
            return string.Create(CultureInfo.InvariantCulture, $"{g.Key} {ms[ms.Length / 2]:0} ms (median of {ms.Length}, {ms[0]:0}-{ms[^1]:0})");
        });
        Console.WriteLine("windows 3 on: " + string.Join("; ", summary));

        return 0;
    }

    private static FleetSnapshot Build(int hosts, int vms, int vantagePoints) =>
        PolicyTickBenchmarks.BuildFleet(hosts, vms, vantagePoints, oneUser: 0.7, twoUsers: 0.15, nearPlacement: 0.95, geographic: true);

    /// <summary>A tenth of the vantage points write every cell again, each median moved by up to ±3 %.</summary>
    private static void WriteRows(FleetSnapshot s, int first, int window)
    {
        for (var k = 0; k < s.VantagePointCount / 10; k++)
        {
            var p = (first + k) % s.VantagePointCount;
            for (var h = 0; h < s.HostCount; h++)
            {
                ref readonly var c = ref s.LatencyOf(p, h);
                if (!c.HasData)
                {
                    continue;
                }

                TimeSpan? median = double.IsNaN(c.MedianMs) ? null : TimeSpan.FromMilliseconds(c.MedianMs * (1 + ((((p + h + window) % 7) - 3) * 0.01)));
                s.SetLatency(p, h, new LatencySummary(20, c.Received, median, median, median, median, median, TimeSpan.Zero, c.NewestSampleAt));
            }
        }
    }
}
