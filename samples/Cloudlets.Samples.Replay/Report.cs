using System.Globalization;
using System.Text;
using Cloudlets.Simulation;

namespace Cloudlets.Samples.Replay;

/// <summary>The text reports of cloudlets-replay.</summary>
internal static class Report
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>Per VM its moves with explanations, then the cost report.</summary>
    public static string Text(PolicyComparison comparison)
    {
        var text = new StringBuilder();
        text.Append(C, $"trace: {comparison.Timeline}\n");
        for (var v = 0; v < comparison.Policy.Vms.Count; v++)
        {
            var vm = comparison.Policy.Vms[v];
            var optimum = comparison.Optimum.Vms[v];
            text.Append(C, $"\n{vm.Vm}: cost {vm.Cost:0} ms·s (optimum {optimum.Cost:0}, {optimum.Moves.Count} moves), {vm.Moves.Count} moves\n");
            foreach (var m in vm.Moves)
            {
                text.Append(C, $"  t={m.DecidedAt,7:0.#} s  {m.From} -> {m.To} (done at {m.CompletedAt:0.#} s): {m.Explanation}\n");
            }
        }

        text.Append('\n');
        text.Append(C, $"{"policy",-14} {"cost ms·s",14} {"ratio",7} {"migrations",10}\n");
        Row(text, "default", comparison.Policy.Cost, comparison.Ratio, comparison.Policy.MigrationCount);
        Row(text, comparison.Optimum.IsExact ? "optimum" : "optimum (≥)", comparison.Optimum.Cost, 1, comparison.Optimum.Vms.Sum(v => v.Moves.Count));
        foreach (var name in Comparison.BaselineNames)
        {
            var b = comparison.Baselines[name];
            Row(text, name, b.Cost, comparison.RatioOf(b.Cost), b.MigrationCount);
        }

        if (!comparison.Optimum.IsExact)
        {
            text.Append("capacity binds: the optimum shown is a lower bound (the optimum without capacity).\n");
        }

        return text.ToString();
    }

    /// <summary>One Markdown table over several traces.</summary>
    public static string Table(IReadOnlyList<string> names, IReadOnlyList<PolicyComparison> rows)
    {
        var text = new StringBuilder();
        text.Append("| trace | policy | cost (ms·s) | ratio to optimum | migrations |\n");
        text.Append("|---|---|---:|---:|---:|\n");
        for (var i = 0; i < rows.Count; i++)
        {
            var c = rows[i];
            text.Append(C, $"| {names[i]} | default | {c.Policy.Cost:0} | {c.Ratio:0.000} | {c.Policy.MigrationCount} |\n");
            text.Append(C, $"| {names[i]} | optimum{(c.Optimum.IsExact ? "" : " (lower bound)")} | {c.Optimum.Cost:0} | 1.000 | {c.Optimum.Vms.Sum(v => v.Moves.Count)} |\n");
            foreach (var name in Comparison.BaselineNames)
            {
                var b = c.Baselines[name];
                text.Append(C, $"| {names[i]} | {name} | {b.Cost:0} | {c.RatioOf(b.Cost):0.000} | {b.MigrationCount} |\n");
            }
        }

        return text.ToString();
    }

    private static void Row(StringBuilder text, string name, double cost, double ratio, int migrations) =>
        text.Append(C, $"{name,-14} {cost,14:0} {ratio,7:0.000} {migrations,10}\n");
}
