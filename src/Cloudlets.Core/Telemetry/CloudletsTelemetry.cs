using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Cloudlets.Core.Telemetry;

/// <summary>
/// The library's one <see cref="Meter"/> and one <see cref="ActivitySource"/>, both named
/// <c>Cloudlets.Core</c>, with OpenTelemetry-style lowercase dotted instrument names and units.
/// </summary>
/// <remarks>
/// Log event ids are assigned in ranges per area: 6000–6099 decisions (policy and pipeline),
/// 6100–6199 the migration executor, 6200–6299 placement and host refresh.
/// </remarks>
public static class CloudletsTelemetry
{
    /// <summary>The name of the meter and of the activity source.</summary>
    public const string Name = "Cloudlets.Core";

    /// <summary>Tag keys.</summary>
    public static class Tags
    {
        /// <summary>The decision kind (<c>Move</c>, <c>Stay</c>, <c>NoDecision</c>).</summary>
        public const string DecisionKind = "cloudlets.decision.kind";
        /// <summary>The decision reason.</summary>
        public const string DecisionReason = "cloudlets.decision.reason";
        /// <summary>The migration outcome (<c>Succeeded</c>, <c>Failed</c>, <c>Aborted</c>).</summary>
        public const string Outcome = "cloudlets.migration.outcome";
        /// <summary>The source host.</summary>
        public const string SourceHost = "cloudlets.host.source";
        /// <summary>The destination host.</summary>
        public const string DestinationHost = "cloudlets.host.destination";
        /// <summary>The VM name.</summary>
        public const string Vm = "cloudlets.vm";
    }

    /// <summary>The meter.</summary>
    public static Meter Meter { get; } = new(Name, typeof(CloudletsTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>The activity source (one activity per evaluation and per migration).</summary>
    public static ActivitySource ActivitySource { get; } = new(Name, typeof(CloudletsTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Decisions made, per kind and reason.</summary>
    internal static Counter<long> Decisions { get; } = Meter.CreateCounter<long>(
        "cloudlets.decisions", "{decision}", "Per-VM decisions made by the migration pipeline.");

    /// <summary>Migrations finished, per outcome.</summary>
    internal static Counter<long> Migrations { get; } = Meter.CreateCounter<long>(
        "cloudlets.migrations", "{migration}", "Migrations finished by the executor, per outcome.");

    /// <summary>Migrations running now.</summary>
    internal static UpDownCounter<long> ActiveMigrations { get; } = Meter.CreateUpDownCounter<long>(
        "cloudlets.migrations.active", "{migration}", "Migrations running now.");

    /// <summary>Migration durations.</summary>
    internal static Histogram<double> MigrationDuration { get; } = Meter.CreateHistogram<double>(
        "cloudlets.migration.duration", "s", "Wall time of migrations, from start to outcome.");

    /// <summary>Latency gain measured after a move (before minus after; negative = worse).</summary>
    internal static Histogram<double> LatencyGain { get; } = Meter.CreateHistogram<double>(
        "cloudlets.latency.gain", "ms", "Users' latency gain measured after a move.");
}
