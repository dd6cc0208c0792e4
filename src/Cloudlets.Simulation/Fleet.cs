using Cloudlets.Core.Decisions;

namespace Cloudlets.Simulation;

/// <summary>A simulated host: its name and what it can give to VMs.</summary>
/// <param name="Name">The host name, as the trace names it.</param>
/// <param name="MemoryMiB">Memory it can give to VMs, in MiB (at least 1).</param>
/// <param name="VCpus">vCPUs it can give to VMs (at least 1).</param>
public sealed record SimulatedHost(string Name, long MemoryMiB, int VCpus);

/// <summary>A simulated VM: its size, its initial host and its users.</summary>
/// <param name="Name">The VM name.</param>
/// <param name="MemoryMiB">Its memory in MiB (at least 1); it sets how long a migration takes.</param>
/// <param name="VCpus">Its vCPUs (at least 1).</param>
/// <param name="Host">The host it runs on when the trace starts.</param>
/// <param name="Users">Its users: vantage points of the trace with weights.</param>
public sealed record SimulatedVm(string Name, long MemoryMiB, int VCpus, string Host, IReadOnlyList<VmUser> Users);

/// <summary>
/// How a live migration behaves: the VM keeps serving from the source until the migration
/// completes, <see cref="FixedSeconds"/> + memory ÷ <see cref="BandwidthMiBps"/> after it was
/// decided, then pauses for <see cref="DowntimeMs"/> and serves from the destination.
/// </summary>
/// <param name="FixedSeconds">Set-up and hand-over time of every migration, in seconds (≥ 0).</param>
/// <param name="BandwidthMiBps">Memory copied per second, in MiB/s (&gt; 0).</param>
/// <param name="DowntimeMs">The pause at the switch-over, in ms (≥ 0); reported, and part of what the penalty stands for.</param>
public sealed record MigrationModel(double FixedSeconds, double BandwidthMiBps, double DowntimeMs)
{
    /// <summary>How long a migration of a VM of <paramref name="memoryMiB"/> takes, in seconds.</summary>
    public double DurationSeconds(long memoryMiB) => FixedSeconds + (memoryMiB / BandwidthMiBps);
}

/// <summary>The cost model every policy and the optimum are scored with (see <see cref="CostCalculator"/>).</summary>
/// <param name="MigrationPenaltyMsSeconds">The cost of one migration, in ms·s (≥ 0): the latency-time it is worth avoiding.</param>
/// <param name="UnreachableRttMs">The RTT charged for a pair that never answered in the whole trace, in ms (&gt; 0). The default is 1000 ms.</param>
public sealed record CostModel(double MigrationPenaltyMsSeconds, double UnreachableRttMs = 1000);

/// <summary>A simulated fleet: hosts, VMs with their users, the migration model and the cost model (the fleet JSON file, see <see cref="FleetJson"/>).</summary>
public sealed record Fleet(IReadOnlyList<SimulatedHost> Hosts, IReadOnlyList<SimulatedVm> Vms, MigrationModel Migration, CostModel Cost)
{
    /// <summary>The index of a host by name, or -1.</summary>
    public int IndexOfHost(string name)
    {
        for (var i = 0; i < Hosts.Count; i++)
        {
            if (string.Equals(Hosts[i].Name, name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Every vantage point the VMs' users name, in order of first appearance.</summary>
    public IReadOnlyList<string> VantagePoints()
    {
        var seen = new List<string>();
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var vm in Vms)
        {
            foreach (var user in vm.Users)
            {
                if (set.Add(user.VantagePoint))
                {
                    seen.Add(user.VantagePoint);
                }
            }
        }

        return seen;
    }
}
