using System.Diagnostics.Metrics;

namespace Cloudlets.Mqtt;

/// <summary>
/// The package's one <see cref="Meter"/>, named <c>Cloudlets.Mqtt</c>, with OpenTelemetry-style lowercase dotted
/// instrument names and units. Log event ids: 8000–8019 connection, 8020–8039 sample source, 8040–8059 publisher.
/// </summary>
public static class MqttTelemetry
{
    /// <summary>The name of the meter.</summary>
    public const string Name = "Cloudlets.Mqtt";

    /// <summary>Tag keys.</summary>
    public static class Tags
    {
        /// <summary>Why a message or sample was dropped (<c>malformed</c>, <c>foreign</c>, <c>duplicate</c>, <c>buffer_full</c>, <c>rejected</c>).</summary>
        public const string DropReason = "cloudlets.mqtt.drop.reason";
        /// <summary>The vantage point.</summary>
        public const string VantagePoint = "cloudlets.vantage_point";
        /// <summary>The client's role (<c>publisher</c> or <c>source</c>).</summary>
        public const string Role = "cloudlets.mqtt.role";
    }

    /// <summary>The meter.</summary>
    public static Meter Meter { get; } = new(Name, typeof(MqttTelemetry).Assembly.GetName().Version?.ToString());

    internal static Counter<long> SamplesPublished { get; } = Meter.CreateCounter<long>(
        "cloudlets.mqtt.samples.published", "{sample}", "Samples a publisher handed to the broker and the broker acknowledged.");

    internal static Counter<long> SamplesDropped { get; } = Meter.CreateCounter<long>(
        "cloudlets.mqtt.samples.dropped", "{sample}", "Samples a publisher dropped (oldest first when its buffer was full, or refused by the broker).");

    internal static Counter<long> SamplesReceived { get; } = Meter.CreateCounter<long>(
        "cloudlets.mqtt.samples.received", "{sample}", "Samples a source accepted and emitted.");

    internal static Counter<long> MessagesDropped { get; } = Meter.CreateCounter<long>(
        "cloudlets.mqtt.messages.dropped", "{message}", "Messages a source dropped, per reason (malformed, foreign, duplicate).");

    internal static Counter<long> Connections { get; } = Meter.CreateCounter<long>(
        "cloudlets.mqtt.connections", "{connection}", "Successful connections to the broker (the first and every reconnection).");

    internal static Histogram<double> ClockOffset { get; } = Meter.CreateHistogram<double>(
        "cloudlets.mqtt.agent.clock_offset", "s", "An agent's clock minus the controller's at arrival of its message (includes the transit time).");
}
