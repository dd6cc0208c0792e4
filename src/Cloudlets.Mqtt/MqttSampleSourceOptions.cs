using Cloudlets.Core.Options;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Mqtt;

/// <summary>Options of <see cref="MqttLatencySampleSource"/>.</summary>
public sealed class MqttSampleSourceOptions : IValidatableOptions
{
    /// <summary>The broker and how to reach it. Required.</summary>
    public MqttBrokerOptions Broker { get; set; } = new();

    /// <summary>
    /// The vantage points to accept. A message from any other is foreign: counted and dropped. The default is none:
    /// every valid vantage point on <c>cloudlets/v1/samples/+</c> is accepted (the broker's ACL decides who may publish).
    /// </summary>
    public IReadOnlyCollection<string>? VantagePoints { get; set; }

    /// <summary>An agent whose clock differs from the controller's by more than this (transit included) is reported once per excursion at warning level. Range [1 ms, 1 day]. The default is 2 seconds.</summary>
    public TimeSpan ClockSkewWarning { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The controller's clock: arrival times, and so every sample's <c>SentAt</c>, come from it. The default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Where the source logs (event ids 8000–8039). The default logs nowhere.</summary>
    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.Nested(nameof(Broker), Broker);
        if (VantagePoints is not null)
        {
            errors.Require(VantagePoints.Count > 0, nameof(VantagePoints), "is empty; leave it unset to accept every vantage point.");
            foreach (var v in VantagePoints)
            {
                errors.Require(MqttTopics.IsValidVantagePoint(v), nameof(VantagePoints), $"contains '{v}', which is not a valid vantage point.");
            }
        }

        errors.InRange(nameof(ClockSkewWarning), ClockSkewWarning, TimeSpan.FromMilliseconds(1), TimeSpan.FromDays(1));
        errors.Require(TimeProvider is not null, nameof(TimeProvider), "is required.");
        errors.Require(Logger is not null, nameof(Logger), "is required.");
    }
}
