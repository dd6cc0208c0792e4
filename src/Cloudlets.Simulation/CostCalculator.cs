namespace Cloudlets.Simulation;

/// <summary>One migration of a replay or of the optimum: decided at a step's start, completed after the migration model's duration.</summary>
/// <param name="Vm">The VM.</param>
/// <param name="DecidedAt">When it was decided (and started), in seconds from the start of the trace.</param>
/// <param name="From">The source host.</param>
/// <param name="To">The destination host.</param>
/// <param name="CompletedAt">When the destination started serving, in seconds.</param>
/// <param name="Explanation">Why, in words (empty for the optimum).</param>
public sealed record SimulatedMove(string Vm, double DecidedAt, string From, string To, double CompletedAt, string Explanation = "");

/// <summary>
/// The cost model, the same for every policy and for the optimum. Per VM: the sum over trace steps
/// of the weighted mean of its users' RTT to the host that serves it at the step's start (the last
/// known RTT of a pair when a probe is lost) times the step's length, plus
/// <see cref="CostModel.MigrationPenaltyMsSeconds"/> for each migration. A VM keeps being served by
/// the source until its migration completes. A fleet's cost is the sum over its VMs. Unit: ms·s.
/// </summary>
public static class CostCalculator
{
    /// <summary>Slack for comparing times in seconds (a completion at 10.0000000001 serves the step at 10).</summary>
    internal const double Epsilon = 1e-6;

    /// <summary>The cost of one VM under a schedule of moves (in decision order).</summary>
    public static double VmCost(TraceTimeline timeline, int vm, IReadOnlyList<SimulatedMove> moves)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        ArgumentNullException.ThrowIfNull(moves);
        return VmCost(timeline, vm, timeline.VmCostRates(vm), moves);
    }

    internal static double VmCost(TraceTimeline timeline, int vm, double[] rates, IReadOnlyList<SimulatedMove> moves)
    {
        var fleet = timeline.Fleet;
        var hosts = timeline.HostCount;
        var host = fleet.IndexOfHost(fleet.Vms[vm].Host);
        var next = 0;
        var cost = 0.0;
        for (var k = 0; k < timeline.StepCount; k++)
        {
            while (next < moves.Count && moves[next].CompletedAt <= timeline.Times[k] + Epsilon)
            {
                host = fleet.IndexOfHost(moves[next].To);
                next++;
            }

            cost += rates[(k * hosts) + host] * timeline.StepSeconds[k];
        }

        return cost + (moves.Count * fleet.Cost.MigrationPenaltyMsSeconds);
    }
}
