namespace Cloudlets.Samples.Demo;

/// <summary>
/// The best feasible placement of a fleet: the assignment of VMs to hosts that minimizes the sum over VMs of the users'
/// weighted mean delay (Σ weight × delay / Σ weight, from the act's matrix), subject to at most the hosts' capacity
/// in VMs on each host. Brute force over hosts^VMs assignments (5^4 = 625 for the demo).
/// </summary>
internal static class FleetAssignment
{
    /// <summary>The most VMs the brute force takes (8 hosts^6 VMs is 262,144 assignments).</summary>
    public const int MaxVms = 6;

    /// <summary>The VM's cost on a host: its users' weighted mean one-way delay in ms.</summary>
    public static double Cost(FleetVm vm, FleetAct act, int host) =>
        vm.Users.Sum(u => u.Weight * FleetScenario.Delay(act, u.Site, host)) / vm.Users.Sum(u => u.Weight);

    /// <summary>
    /// The best feasible assignment (host index per VM) and how many assignments reach the same total cost (within
    /// 1e-9 ms); more than one means the best host of some VM is not unique.
    /// </summary>
    public static (int[] Hosts, double TotalCost, int Optima) Best(IReadOnlyList<FleetVm> vms, FleetAct act, int hostCount, int capacityVms)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vms.Count, MaxVms);
        var costs = vms.Select(vm => Enumerable.Range(0, hostCount).Select(h => Cost(vm, act, h)).ToArray()).ToArray();
        var current = new int[vms.Count];
        var load = new int[hostCount];
        int[]? best = null;
        var bestCost = double.PositiveInfinity;
        var optima = 0;

        void Search(int vm, double cost)
        {
            if (vm == vms.Count)
            {
                if (cost < bestCost - 1e-9)
                {
                    (best, bestCost, optima) = ((int[])current.Clone(), cost, 1);
                }
                else if (Math.Abs(cost - bestCost) <= 1e-9)
                {
                    optima++;
                }

                return;
            }

            for (var h = 0; h < hostCount; h++)
            {
                if (load[h] < capacityVms)
                {
                    load[h]++;
                    current[vm] = h;
                    Search(vm + 1, cost + costs[vm][h]);
                    load[h]--;
                }
            }
        }

        Search(0, 0);
        return (best ?? throw new InvalidOperationException($"{vms.Count} VMs do not fit on {hostCount} hosts of {capacityVms}."), bestCost, optima);
    }

    /// <summary>
    /// The most VMs each host held at once over the run, from each VM's residencies (a migrating VM counts on both
    /// hosts from the migration's start to its end: the conservative count).
    /// </summary>
    public static Dictionary<string, int> PeakVms(IEnumerable<(string Host, double From, double To)> residencies)
    {
        var peaks = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var group in residencies.GroupBy(r => r.Host, StringComparer.Ordinal))
        {
            // Arrivals before departures at the same instant: the conservative order.
            var events = group.SelectMany(r => new[] { (At: r.From, Delta: 1), (At: r.To, Delta: -1) }).OrderBy(e => e.At).ThenByDescending(e => e.Delta);
            int now = 0, peak = 0;
            foreach (var e in events)
            {
                now += e.Delta;
                peak = Math.Max(peak, now);
            }

            peaks[group.Key] = peak;
        }

        return peaks;
    }
}
