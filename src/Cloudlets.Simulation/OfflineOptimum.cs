namespace Cloudlets.Simulation;

/// <summary>The offline optimum of one VM: its least cost and the moves that reach it.</summary>
/// <param name="Vm">The VM.</param>
/// <param name="Cost">The least cost in ms·s.</param>
/// <param name="Moves">The moves, in order.</param>
public sealed record VmOptimum(string Vm, double Cost, IReadOnlyList<SimulatedMove> Moves);

/// <summary>The offline optimum of a fleet.</summary>
/// <param name="Vms">Each VM's optimum.</param>
/// <param name="Cost">The sum of the VMs' least costs.</param>
/// <param name="IsExact">
/// Whether <see cref="Cost"/> is the optimum itself: the VMs' independent optima together never
/// exceed a host's capacity. When they do, capacity binds and <see cref="Cost"/> is a lower bound
/// (the optimum of the relaxation without capacity).
/// </param>
public sealed record FleetOptimum(IReadOnlyList<VmOptimum> Vms, double Cost, bool IsExact);

/// <summary>
/// The schedule of moves with the least cost (<see cref="CostCalculator"/>), knowing the whole trace.
/// Per VM, a dynamic program over steps × hosts: at the start of a step the VM, settled on a host,
/// either stays for the step or starts a migration to another host, which keeps it on the source
/// until the first step starting at or after the migration's completion and costs the penalty; no
/// second migration starts while one runs — the same rules the replay of a policy follows. O(steps ×
/// hosts) per VM. Exact when capacity does not bind; otherwise a lower bound (see <see cref="FleetOptimum.IsExact"/>).
/// </summary>
public static class OfflineOptimum
{
    /// <summary>Solves every VM of the timeline's fleet and checks capacity.</summary>
    public static FleetOptimum Solve(TraceTimeline timeline)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        var vms = new VmOptimum[timeline.Fleet.Vms.Count];
        var total = 0.0;
        for (var v = 0; v < vms.Length; v++)
        {
            vms[v] = SolveVm(timeline, v);
            total += vms[v].Cost;
        }

        return new FleetOptimum(vms, total, FitsCapacity(timeline, vms));
    }

    /// <summary>Solves one VM, ignoring capacity.</summary>
    public static VmOptimum SolveVm(TraceTimeline timeline, int vm)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        var fleet = timeline.Fleet;
        var spec = fleet.Vms[vm];
        var n = timeline.StepCount;
        var hosts = timeline.HostCount;
        var rates = timeline.VmCostRates(vm);
        var penalty = fleet.Cost.MigrationPenaltyMsSeconds;
        var duration = fleet.Migration.DurationSeconds(spec.MemoryMiB);

        // prefix[k * H + h]: the cost of steps 0..k-1 on h.
        var prefix = new double[(n + 1) * hosts];
        for (var k = 0; k < n; k++)
        {
            for (var h = 0; h < hosts; h++)
            {
                prefix[((k + 1) * hosts) + h] = prefix[(k * hosts) + h] + (rates[(k * hosts) + h] * timeline.StepSeconds[k]);
            }
        }

        // arrival[k]: the step from which a migration decided at step k serves from its destination (n: never).
        var arrival = new int[n];
        for (var k = 0; k < n; k++)
        {
            arrival[k] = Math.Max(k + 1, timeline.FirstStepAtOrAfter(timeline.Times[k] + duration - CostCalculator.Epsilon));
        }

        // value[k * H + h]: the least cost of steps k..n-1, settled on h at the start of step k; choice: -1 stay, else the destination.
        var value = new double[(n + 1) * hosts];
        var choice = new int[n * hosts];
        for (var k = n - 1; k >= 0; k--)
        {
            var m = arrival[k];
            // The best and second-best destination at the arrival step (a move goes elsewhere than the source).
            int best = -1, second = -1;
            if (m < n)
            {
                for (var h = 0; h < hosts; h++)
                {
                    var x = value[(m * hosts) + h];
                    if (best < 0 || x < value[(m * hosts) + best])
                    {
                        second = best;
                        best = h;
                    }
                    else if (second < 0 || x < value[(m * hosts) + second])
                    {
                        second = h;
                    }
                }
            }

            for (var h = 0; h < hosts; h++)
            {
                var stay = (rates[(k * hosts) + h] * timeline.StepSeconds[k]) + value[((k + 1) * hosts) + h];
                var pick = -1;
                var least = stay;
                var to = best == h ? second : best;
                if (to >= 0)
                {
                    var move = prefix[(m * hosts) + h] - prefix[(k * hosts) + h] + penalty + value[(m * hosts) + to];
                    if (move < least - 1e-9)
                    {
                        least = move;
                        pick = to;
                    }
                }

                value[(k * hosts) + h] = least;
                choice[(k * hosts) + h] = pick;
            }
        }

        var moves = new List<SimulatedMove>();
        var host = fleet.IndexOfHost(spec.Host);
        var cost = value[host];
        for (var k = 0; k < n;)
        {
            var pick = choice[(k * hosts) + host];
            if (pick < 0)
            {
                k++;
                continue;
            }

            var at = timeline.Times[k];
            moves.Add(new SimulatedMove(spec.Name, at, fleet.Hosts[host].Name, fleet.Hosts[pick].Name, at + duration));
            host = pick;
            k = arrival[k];
        }

        return new VmOptimum(spec.Name, cost, moves);
    }

    /// <summary>
    /// Whether the schedules together respect every host's memory and vCPUs at every step: a VM
    /// counts on its host, and a migrating VM on both its source and its destination.
    /// </summary>
    public static bool FitsCapacity(TraceTimeline timeline, IReadOnlyList<VmOptimum> schedules)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        ArgumentNullException.ThrowIfNull(schedules);
        var fleet = timeline.Fleet;
        var events = new List<(double At, int Host, long Memory, int VCpus)>();
        for (var v = 0; v < fleet.Vms.Count; v++)
        {
            var spec = fleet.Vms[v];
            events.Add((double.NegativeInfinity, fleet.IndexOfHost(spec.Host), spec.MemoryMiB, spec.VCpus));
            foreach (var move in schedules[v].Moves)
            {
                // The destination is held from the decision; the source is freed at completion.
                events.Add((move.DecidedAt, fleet.IndexOfHost(move.To), spec.MemoryMiB, spec.VCpus));
                events.Add((move.CompletedAt, fleet.IndexOfHost(move.From), -spec.MemoryMiB, -spec.VCpus));
            }
        }

        // At equal times, releases first: a slot freed at t may be taken at t.
        events.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Memory.CompareTo(b.Memory));
        var memory = new long[timeline.HostCount];
        var vcpus = new int[timeline.HostCount];
        foreach (var e in events)
        {
            memory[e.Host] += e.Memory;
            vcpus[e.Host] += e.VCpus;
            if (memory[e.Host] > fleet.Hosts[e.Host].MemoryMiB || vcpus[e.Host] > fleet.Hosts[e.Host].VCpus)
            {
                return false;
            }
        }

        return true;
    }
}
