using System.Diagnostics.Metrics;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Hosting;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;

namespace Cloudlets.Controller.Telemetry;

/// <summary>
/// The controller's instruments, on the <c>Cloudlets.Controller</c> meter (Core's <c>Cloudlets.Core</c>
/// meter adds decisions by kind and reason, migrations by outcome, active migrations and migration
/// durations). All are exported at <c>/metrics</c> in Prometheus format.
/// </summary>
/// <remarks>
/// Instruments (OpenTelemetry name → Prometheus name):
/// <list type="bullet">
/// <item><c>cloudlets.probe.rtt</c> (ms, gauge) → <c>cloudlets_probe_rtt_milliseconds{cloudlets_vantage_point, cloudlets_host | cloudlets_vm}</c>: the last measured round trip.</item>
/// <item><c>cloudlets.probe.samples</c> (counter) → <c>cloudlets_probe_samples_total{cloudlets_vantage_point, cloudlets_target, cloudlets_probe_status}</c>.</item>
/// <item><c>cloudlets.sample.age</c> (s, gauge) → <c>cloudlets_sample_age_seconds{cloudlets_vantage_point, cloudlets_target}</c>: time since the last sample (freshness).</item>
/// <item><c>cloudlets.host.connected</c> (gauge) → <c>cloudlets_host_connected{cloudlets_host, cloudlets_host_state}</c>: 1 when the management connection is up.</item>
/// <item><c>cloudlets.migration.downtime</c> (s, histogram) → <c>cloudlets_migration_downtime_seconds_bucket{…}</c>: the pause at hand-over, as the hypervisor measured it.</item>
/// <item><c>cloudlets.controller.leader</c> (gauge) → <c>cloudlets_controller_leader{cloudlets_region}</c>: 1 while this controller leads its region's election, else 0 (only with an election).</item>
/// <item><c>cloudlets.controller.up</c> (gauge) → <c>cloudlets_controller_up{cloudlets_controller_phase, cloudlets_pipeline_mode}</c>: 1 while the pipeline runs.</item>
/// </list>
/// </remarks>
public sealed class ControllerMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Cloudlets.Controller";

    /// <summary>Bucket boundaries of migration durations in seconds: from half a second to ten minutes.</summary>
    public static readonly IReadOnlyList<double> DurationBuckets = [0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300, 600];

    /// <summary>Bucket boundaries of downtime in seconds: from 10 ms to 5 s (idle guests pause 10–300 ms).</summary>
    public static readonly IReadOnlyList<double> DowntimeBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5];

    /// <summary>Tag keys.</summary>
    public static class Tags
    {
        /// <summary>The vantage point of a sample.</summary>
        public const string VantagePoint = "cloudlets.vantage_point";
        /// <summary>A host.</summary>
        public const string Host = "cloudlets.host";
        /// <summary>A VM.</summary>
        public const string Vm = "cloudlets.vm";
        /// <summary>A probe target (<c>host:NAME</c> or <c>vm:NAME</c>).</summary>
        public const string Target = "cloudlets.target";
        /// <summary>A probe's status.</summary>
        public const string ProbeStatus = "cloudlets.probe.status";
        /// <summary>A host's connection state.</summary>
        public const string HostState = "cloudlets.host.state";
        /// <summary>The controller's phase.</summary>
        public const string Phase = "cloudlets.controller.phase";
        /// <summary>The pipeline's mode.</summary>
        public const string Mode = "cloudlets.pipeline.mode";
        /// <summary>The region (the election's name).</summary>
        public const string Region = "cloudlets.region";
    }

    private readonly ControllerState _state;
    private readonly TimeProvider _time;
    private readonly Counter<long> _samples;
    private readonly Histogram<double> _downtime;

    /// <summary>Creates the instruments on a meter from <paramref name="meters"/>.</summary>
    public ControllerMetrics(IMeterFactory meters, ControllerState state, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _state = state ?? throw new ArgumentNullException(nameof(state));
        _time = timeProvider ?? TimeProvider.System;
        var meter = meters.Create(MeterName, typeof(ControllerMetrics).Assembly.GetName().Version?.ToString());
        meter.CreateObservableGauge("cloudlets.probe.rtt", ObserveRtt, "ms", "The last measured round trip from a vantage point to a host or VM.");
        _samples = meter.CreateCounter<long>("cloudlets.probe.samples", "{sample}", "Latency samples received, per vantage point, target and status.");
        meter.CreateObservableGauge("cloudlets.sample.age", ObserveAge, "s", "Time since the last sample from a vantage point to a target (freshness).");
        meter.CreateObservableGauge("cloudlets.host.connected", ObserveHosts, "{host}", "1 when the host's management connection is up, else 0; the state is a tag.");
        _downtime = meter.CreateHistogram("cloudlets.migration.downtime", "s", "The pause the VM saw at hand-over, as the hypervisor measured it.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DowntimeBuckets });
        meter.CreateObservableGauge("cloudlets.controller.up", ObservePhase, "{controller}", "1 while the pipeline runs, else 0; the phase and mode are tags.");
        meter.CreateObservableGauge("cloudlets.controller.leader", ObserveLeader, "{controller}", "1 while this controller leads its region's election, else 0; the region is a tag.");
    }

    internal void OnSample(LatencySample sample) =>
        _samples.Add(
            1,
            new KeyValuePair<string, object?>(Tags.VantagePoint, sample.VantagePoint),
            new KeyValuePair<string, object?>(Tags.Target, sample.Target.Name),
            new KeyValuePair<string, object?>(Tags.ProbeStatus, sample.Status.ToString()));

    internal void OnOutcome(MigrationOutcome outcome)
    {
        if (outcome.Result?.Downtime is { } downtime)
        {
            _downtime.Record(
                downtime.TotalSeconds,
                new KeyValuePair<string, object?>(Core.Telemetry.CloudletsTelemetry.Tags.SourceHost, outcome.Source),
                new KeyValuePair<string, object?>(Core.Telemetry.CloudletsTelemetry.Tags.DestinationHost, outcome.Destination));
        }
    }

    private IEnumerable<Measurement<double>> ObserveRtt()
    {
        foreach (var s in _state.LastSamples)
        {
            if (s.Status == ProbeStatus.Ok && s.RoundTripTime is { } rtt)
            {
                yield return new Measurement<double>(rtt.TotalMilliseconds, new KeyValuePair<string, object?>(Tags.VantagePoint, s.VantagePoint), TargetTag(s.Target));
            }
        }
    }

    private IEnumerable<Measurement<double>> ObserveAge()
    {
        var now = _time.GetUtcNow();
        foreach (var s in _state.LastSamples)
        {
            yield return new Measurement<double>(
                Math.Max(0, (now - s.ReceivedAt).TotalSeconds),
                new KeyValuePair<string, object?>(Tags.VantagePoint, s.VantagePoint),
                new KeyValuePair<string, object?>(Tags.Target, s.Target));
        }
    }

    private IEnumerable<Measurement<int>> ObserveHosts()
    {
        foreach (var h in _state.Hosts)
        {
            var state = h.ConnectionState;
            yield return new Measurement<int>(
                state == HostConnectionState.Connected ? 1 : 0,
                new KeyValuePair<string, object?>(Tags.Host, h.Name),
                new KeyValuePair<string, object?>(Tags.HostState, state.ToString()));
        }
    }

    private Measurement<int> ObservePhase() =>
        new(
            _state.Phase == ControllerPhase.Running ? 1 : 0,
            new KeyValuePair<string, object?>(Tags.Phase, _state.Phase.ToString()),
            new KeyValuePair<string, object?>(Tags.Mode, _state.Mode.ToString()));

    private IEnumerable<Measurement<int>> ObserveLeader()
    {
        if (_state.Leadership is { } l)
        {
            yield return new Measurement<int>(l.IsLeader ? 1 : 0, new KeyValuePair<string, object?>(Tags.Region, l.Election));
        }
    }

    private static KeyValuePair<string, object?> TargetTag(string target) =>
        target.StartsWith("host:", StringComparison.Ordinal) ? new(Tags.Host, target[5..])
        : target.StartsWith("vm:", StringComparison.Ordinal) ? new(Tags.Vm, target[3..])
        : new(Tags.Target, target);

    /// <summary>Whether <paramref name="target"/> names a host (see <see cref="ControllerOptions.HostTarget"/>).</summary>
    internal static bool IsHostTarget(string target) => target.StartsWith("host:", StringComparison.Ordinal);
}
