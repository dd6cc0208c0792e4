using Cloudlets.Core.Options;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Mqtt;

/// <summary>Options of <see cref="MqttLatencyPublisher"/>: the broker, the vantage point, batching and buffering.</summary>
public sealed class MqttPublisherOptions : IValidatableOptions
{
    /// <summary>The broker and how to reach it. Required.</summary>
    public MqttBrokerOptions Broker { get; set; } = new();

    /// <summary>The vantage point this publisher speaks for: its topic is <c>cloudlets/v1/samples/{VantagePoint}</c>. 1 to 64 letters, digits, <c>.</c>, <c>_</c>, <c>-</c>. Required.</summary>
    public string VantagePoint { get; set; } = "";

    /// <summary>How often buffered samples are published (one message per period, or more when there are more than <see cref="MaxSamplesPerMessage"/>). Range [10 ms, 1 min]. The default is 1 second.</summary>
    public TimeSpan BatchPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The most samples in one message. Range [1, 65535]. The default is 4,096.</summary>
    public int MaxSamplesPerMessage { get; set; } = 4096;

    /// <summary>How many samples are kept while the broker is away; past that the oldest are dropped (counted). Range [1, 10,000,000]. The default is 100,000 (a minute of 100 targets at 16 Hz).</summary>
    public int MaxBufferedSamples { get; set; } = 100_000;

    /// <summary>How long one publish may wait for the broker's acknowledgement; also bounds the final flush on dispose. Range [100 ms, 5 min]. The default is 10 seconds.</summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The clock for batching, sample ages and backoff. The default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Where the publisher logs (event ids 8000–8019 and 8040–8059). The default logs nowhere.</summary>
    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.Nested(nameof(Broker), Broker);
        errors.Require(MqttTopics.IsValidVantagePoint(VantagePoint), nameof(VantagePoint),
            $"is '{VantagePoint}'; it must be 1 to {MqttTopics.MaxVantagePointLength} of letters, digits, '.', '_' and '-'.");
        errors.InRange(nameof(BatchPeriod), BatchPeriod, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        errors.InRange(nameof(MaxSamplesPerMessage), MaxSamplesPerMessage, 1, SampleBatchCodec.MaxSamples);
        errors.InRange(nameof(MaxBufferedSamples), MaxBufferedSamples, 1, 10_000_000);
        errors.InRange(nameof(PublishTimeout), PublishTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5));
        errors.Require(TimeProvider is not null, nameof(TimeProvider), "is required.");
        errors.Require(Logger is not null, nameof(Logger), "is required.");
    }
}
