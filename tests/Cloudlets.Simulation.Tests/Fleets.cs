using Cloudlets.Core.Decisions;
using Cloudlets.Simulation;

namespace Cloudlets.Simulation.Tests;

/// <summary>Small hand-checkable fleets and traces.</summary>
internal static class Fleets
{
    /// <summary>One VM of 1 MiB on host a, one user "u"; hosts a and b; migrations take <paramref name="fixedSeconds"/> (+ 1 ms of copying).</summary>
    public static Fleet TwoHosts(double fixedSeconds = 5, double penalty = 500, int vms = 1, long hostMemoryMiB = 1024) => new(
        [new SimulatedHost("a", hostMemoryMiB, 16), new SimulatedHost("b", hostMemoryMiB, 16)],
        [.. Enumerable.Range(0, vms).Select(i => new SimulatedVm($"vm{i}", 1, 1, "a", [new VmUser("u")]))],
        new MigrationModel(fixedSeconds, 1000, 100),
        new CostModel(penalty));

    /// <summary>A trace of "u" every 10 s: <paramref name="a"/>[k] and <paramref name="b"/>[k] ms to a and b at step k (null = lost).</summary>
    public static LatencyTrace Trace(double?[] a, double?[] b)
    {
        var samples = new List<TraceSample>();
        for (var k = 0; k < a.Length; k++)
        {
            samples.Add(new TraceSample(k * 10, "u", "a", a[k]));
            samples.Add(new TraceSample(k * 10, "u", "b", b[k]));
        }

        return new LatencyTrace(samples);
    }

    public static double?[] Repeat(double? value, int count) => [.. Enumerable.Repeat(value, count)];
}
