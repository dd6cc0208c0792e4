using System.Text;
using System.Text.Json;
using Cloudlets.Core.Decisions;
using Cloudlets.Simulation.Baselines;

namespace Cloudlets.Simulation;

/// <summary>A policy's replay next to the offline optimum and the three baselines, on one trace.</summary>
/// <param name="Timeline">The trace bound to its fleet.</param>
/// <param name="Policy">The policy's replay.</param>
/// <param name="Optimum">The offline optimum (or its lower bound when capacity binds).</param>
/// <param name="Baselines">never, alwaysNearest and myopic, by name.</param>
public sealed record PolicyComparison(TraceTimeline Timeline, ReplayResult Policy, FleetOptimum Optimum, IReadOnlyDictionary<string, ReplayResult> Baselines)
{
    /// <summary>The policy's cost over the optimum's (1 when both are 0).</summary>
    public double Ratio => RatioOf(Policy.Cost);

    /// <summary>A cost over the optimum's.</summary>
    public double RatioOf(double cost) => Optimum.Cost > 0 ? cost / Optimum.Cost : cost > 0 ? double.PositiveInfinity : 1;
}

/// <summary>Runs a policy, the optimum and the baselines on one trace and writes the report.</summary>
public static class Comparison
{
    /// <summary>The baselines' names, in report order.</summary>
    public static readonly IReadOnlyList<string> BaselineNames = ["never", "alwaysNearest", "myopic"];

    /// <summary>Replays the policy and the baselines and solves the optimum.</summary>
    /// <param name="timeline">The trace bound to its fleet.</param>
    /// <param name="policy">The policy under test.</param>
    /// <param name="policyName">Its name in reports.</param>
    /// <param name="options">Replay options (the same for every policy).</param>
    /// <param name="myopicStay">The expected stay the myopic baseline assumes. The default is 10 minutes.</param>
    public static PolicyComparison Run(TraceTimeline timeline, IMigrationPolicy policy, string policyName, ReplayOptions? options = null, TimeSpan? myopicStay = null)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        var penalty = timeline.Fleet.Cost.MigrationPenaltyMsSeconds;
        var baselines = new Dictionary<string, ReplayResult>(StringComparer.Ordinal)
        {
            ["never"] = PolicyReplay.Run(timeline, new NeverMigratePolicy(), "never", options),
            ["alwaysNearest"] = PolicyReplay.Run(timeline, new AlwaysNearestPolicy(), "alwaysNearest", options),
            ["myopic"] = PolicyReplay.Run(timeline, new MyopicPolicy(penalty, myopicStay ?? TimeSpan.FromMinutes(10)), "myopic", options),
        };
        return new PolicyComparison(timeline, PolicyReplay.Run(timeline, policy, policyName, options), OfflineOptimum.Solve(timeline), baselines);
    }

    /// <summary>
    /// The JSON report: <c>{"vms":[{"name","moves":[{"decidedAt","from","to","completedAt"}],"cost","optimalCost"}],
    /// "total":{"cost","optimalCost","ratio","optimalIsExact"},"baselines":{"never":{"cost","ratio","migrations"},…}}</c>; costs in ms·s, times in seconds from the start.
    /// </summary>
    public static string ToJson(PolicyComparison comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("policy", comparison.Policy.Policy);
            w.WriteStartArray("vms");
            for (var v = 0; v < comparison.Policy.Vms.Count; v++)
            {
                var vm = comparison.Policy.Vms[v];
                w.WriteStartObject();
                w.WriteString("name", vm.Vm);
                w.WriteStartArray("moves");
                foreach (var m in vm.Moves)
                {
                    w.WriteStartObject();
                    w.WriteNumber("decidedAt", m.DecidedAt);
                    w.WriteString("from", m.From);
                    w.WriteString("to", m.To);
                    w.WriteNumber("completedAt", m.CompletedAt);
                    w.WriteString("explanation", m.Explanation);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteNumber("cost", Math.Round(vm.Cost, 3));
                w.WriteNumber("optimalCost", Math.Round(comparison.Optimum.Vms[v].Cost, 3));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("total");
            w.WriteNumber("cost", Math.Round(comparison.Policy.Cost, 3));
            w.WriteNumber("optimalCost", Math.Round(comparison.Optimum.Cost, 3));
            w.WriteNumber("ratio", Math.Round(comparison.Ratio, 4));
            w.WriteBoolean("optimalIsExact", comparison.Optimum.IsExact);
            w.WriteNumber("migrations", comparison.Policy.MigrationCount);
            w.WriteNumber("optimalMigrations", comparison.Optimum.Vms.Sum(v => v.Moves.Count));
            w.WriteEndObject();
            w.WriteStartObject("baselines");
            foreach (var name in BaselineNames)
            {
                var b = comparison.Baselines[name];
                w.WriteStartObject(name);
                w.WriteNumber("cost", Math.Round(b.Cost, 3));
                w.WriteNumber("ratio", Math.Round(comparison.RatioOf(b.Cost), 4));
                w.WriteNumber("migrations", b.MigrationCount);
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
