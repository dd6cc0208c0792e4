using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Simulation;

/// <summary>Options of <see cref="PolicyReplay"/>.</summary>
public sealed class ReplayOptions
{
    /// <summary>
    /// Samples kept per (vantage point, host) for the rolling statistics the policy reads — the
    /// pipeline's <c>SampleWindow</c>. Range [1, 10000], or <see langword="null"/> (the default) for
    /// the samples of the last 20 s at the trace's pace: what the pipeline's default window of 20
    /// samples holds at one probe per second.
    /// </summary>
    public int? SampleWindow { get; set; }

    /// <summary>The wall-clock time that stands for t = 0 of the trace. The default is 2026-01-01T00:00Z.</summary>
    public DateTimeOffset Start { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// The placement rules in force for the whole replay (drained hosts, pinned VMs, groups, exclusions),
    /// validated against the fleet when the replay starts. The default is none.
    /// </summary>
    public PlacementRules Rules { get; set; } = PlacementRules.Empty;
}

/// <summary>One VM's outcome of a replay.</summary>
/// <param name="Vm">The VM.</param>
/// <param name="Moves">Its moves, in order, with the policy's explanations.</param>
/// <param name="Cost">Its cost in ms·s (<see cref="CostCalculator"/>).</param>
public sealed record VmReplay(string Vm, IReadOnlyList<SimulatedMove> Moves, double Cost);

/// <summary>The outcome of a replay: per VM, and the fleet's total cost.</summary>
public sealed record ReplayResult(string Policy, IReadOnlyList<VmReplay> Vms, double Cost)
{
    /// <summary>How many migrations the policy made.</summary>
    public int MigrationCount => Vms.Sum(v => v.Moves.Count);
}

/// <summary>
/// Replays a trace against an <see cref="IMigrationPolicy"/> in virtual time over in-memory hosts.
/// At the start of every step: the step's samples enter rolling statistics per (vantage point,
/// host); migrations whose completion time has come hand over (the VM served from the source until
/// then); the snapshot gets every host's free capacity (a migrating VM holds room on both hosts),
/// every VM's placement and history (last move = its completion); the policy evaluates once; and every
/// move it makes starts, completing after <see cref="MigrationModel.DurationSeconds"/>. Deterministic:
/// the same inputs give the same moves.
/// </summary>
public static class PolicyReplay
{
    /// <summary>Replays <paramref name="timeline"/> against <paramref name="policy"/>.</summary>
    /// <exception cref="Core.Options.OptionsValidationException"><see cref="ReplayOptions.Rules"/> are invalid or name hosts or VMs the fleet lacks.</exception>
    public static ReplayResult Run(TraceTimeline timeline, IMigrationPolicy policy, string policyName, ReplayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        ArgumentNullException.ThrowIfNull(policy);
        options ??= new ReplayOptions();
        var window = options.SampleWindow ?? DefaultWindow(timeline);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(window, 10_000);
        var fleet = timeline.Fleet;
        var hosts = timeline.HostCount;
        var vmCount = fleet.Vms.Count;
        var names = fleet.Hosts.Select(h => h.Name).ToArray();
        var definitions = fleet.Vms.Select(v => new VmDefinition(v.Name, v.Users)).ToArray();
        var snapshot = new FleetSnapshot(names, definitions);
        var results = new DecisionBuffer(snapshot, recordCandidates: true);
        var rules = options.Rules ?? PlacementRules.Empty;
        rules.ValidateAndThrow(names, [.. definitions.Select(d => d.Name)]);
        snapshot.SetRules(rules);

        // The snapshot's vantage points are the users' (in the fleet's order, as the timeline's first ones).
        var vantageOfTimeline = new int[timeline.VantagePoints.Count];
        for (var p = 0; p < vantageOfTimeline.Length; p++)
        {
            vantageOfTimeline[p] = snapshot.IndexOfVantagePoint(timeline.VantagePoints[p]);
        }

        var statistics = new RollingLatencyStatistics?[timeline.PairCount];
        var placement = new int[vmCount];
        var target = new int[vmCount];
        var completesAt = new double[vmCount];
        var lastMove = new DateTimeOffset?[vmCount];
        var moves = new List<SimulatedMove>[vmCount];
        for (var v = 0; v < vmCount; v++)
        {
            placement[v] = fleet.IndexOfHost(fleet.Vms[v].Host);
            target[v] = -1;
            moves[v] = [];
        }

        var usedMemory = new long[hosts];
        var usedVCpus = new int[hosts];
        for (var v = 0; v < vmCount; v++)
        {
            usedMemory[placement[v]] += fleet.Vms[v].MemoryMiB;
            usedVCpus[placement[v]] += fleet.Vms[v].VCpus;
        }

        // The migration model's bandwidth is what the policy's cost estimate should use.
        for (var a = 0; a < hosts; a++)
        {
            for (var b = 0; b < hosts; b++)
            {
                snapshot.SetBandwidth(a, b, fleet.Migration.BandwidthMiBps * (1 << 20));
            }
        }

        for (var k = 0; k < timeline.StepCount; k++)
        {
            var t = timeline.Times[k];
            var now = options.Start + TimeSpan.FromSeconds(t);
            for (var i = timeline.StepSampleStart[k]; i < timeline.StepSampleStart[k + 1]; i++)
            {
                var pair = (timeline.SampleVantage[i] * hosts) + timeline.SampleHost[i];
                var stats = statistics[pair] ??= new RollingLatencyStatistics(window);
                var rtt = timeline.SampleRtt[i];
                stats.Add(double.IsNaN(rtt) ? null : TimeSpan.FromMilliseconds(rtt), now);
                var snapshotVantage = vantageOfTimeline[timeline.SampleVantage[i]];
                if (snapshotVantage >= 0)
                {
                    snapshot.SetLatency(snapshotVantage, timeline.SampleHost[i], stats.Summarize());
                }
            }

            for (var v = 0; v < vmCount; v++)
            {
                if (target[v] >= 0 && completesAt[v] <= t + CostCalculator.Epsilon)
                {
                    usedMemory[placement[v]] -= fleet.Vms[v].MemoryMiB;
                    usedVCpus[placement[v]] -= fleet.Vms[v].VCpus;
                    placement[v] = target[v];
                    target[v] = -1;
                    lastMove[v] = options.Start + TimeSpan.FromSeconds(completesAt[v]);
                }
            }

            snapshot.Now = now;
            for (var h = 0; h < hosts; h++)
            {
                var spec = fleet.Hosts[h];
                snapshot.SetHost(h, HostAvailability.Available, (spec.MemoryMiB - usedMemory[h]) << 20, spec.VCpus - usedVCpus[h]);
            }

            for (var v = 0; v < vmCount; v++)
            {
                var spec = fleet.Vms[v];
                snapshot.SetPlacement(v, placement[v], spec.MemoryMiB << 20, spec.VCpus);
                snapshot.SetMigrationHistory(v, lastMove[v], inFlight: target[v] >= 0, destinationHost: target[v]);
            }

            policy.Evaluate(snapshot, results);
            snapshot.AdvanceConfirmations(results);
            if (results.MoveCount == 0)
            {
                continue;
            }

            for (var v = 0; v < vmCount; v++)
            {
                if (results.KindOf(v) != DecisionKind.Move || target[v] >= 0)
                {
                    continue;
                }

                var to = results.TargetOf(v);
                var spec = fleet.Vms[v];
                var explanation = results.ToDecision(snapshot, v).Explanation;
                var done = t + fleet.Migration.DurationSeconds(spec.MemoryMiB);
                moves[v].Add(new SimulatedMove(spec.Name, t, names[placement[v]], names[to], done, explanation));
                target[v] = to;
                completesAt[v] = done;
                usedMemory[to] += spec.MemoryMiB;
                usedVCpus[to] += spec.VCpus;
            }
        }

        var vms = new VmReplay[vmCount];
        var total = 0.0;
        for (var v = 0; v < vmCount; v++)
        {
            var cost = CostCalculator.VmCost(timeline, v, moves[v]);
            vms[v] = new VmReplay(fleet.Vms[v].Name, moves[v], cost);
            total += cost;
        }

        return new ReplayResult(policyName, vms, total);
    }

    /// <summary>The samples of 20 s at the trace's median step, at least 1.</summary>
    public static int DefaultWindow(TraceTimeline timeline)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        var steps = timeline.StepSeconds.Order().ToArray();
        var median = steps[steps.Length / 2];
        return Math.Clamp((int)Math.Round(20 / median), 1, 10_000);
    }
}
