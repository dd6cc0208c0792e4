using Microsoft.Extensions.Logging;

namespace Cloudlets.Mqtt;

/// <summary>Log messages of Cloudlets.Mqtt (event ids 8000–8059, see <see cref="MqttTelemetry"/>).</summary>
internal static partial class MqttLog
{
    [LoggerMessage(EventId = 8000, Level = LogLevel.Information, Message = "MQTT {Role} {ClientId}: connected to {Broker}")]
    public static partial void Connected(ILogger logger, string role, string clientId, Uri broker);

    [LoggerMessage(EventId = 8001, Level = LogLevel.Warning, Message = "MQTT {Role} {ClientId}: connecting to {Broker} failed (attempt {Attempt}); next attempt in {Delay}")]
    public static partial void ConnectFailed(ILogger logger, string role, string clientId, Uri broker, int attempt, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "MQTT {Role} {ClientId}: disconnected from {Broker} ({Reason})")]
    public static partial void Disconnected(ILogger logger, string role, string clientId, Uri broker, string reason);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Error, Message = "MQTT {Role} {ClientId}: the broker {Broker} refused the connection: {Reason}; retrying with backoff")]
    public static partial void Refused(ILogger logger, string role, string clientId, Uri broker, string reason);

    [LoggerMessage(EventId = 8020, Level = LogLevel.Information, Message = "MQTT source: subscribed to {TopicFilter}")]
    public static partial void Subscribed(ILogger logger, string topicFilter);

    [LoggerMessage(EventId = 8021, Level = LogLevel.Debug, Message = "MQTT source: dropped a message on {Topic} ({Reason}): {Detail}")]
    public static partial void MessageDropped(ILogger logger, string topic, string reason, string detail);

    [LoggerMessage(EventId = 8022, Level = LogLevel.Warning, Message = "MQTT source: vantage point {VantagePoint}'s clock is {Offset} off the controller's (including transit); its timestamps are not used for freshness")]
    public static partial void ClockSkew(ILogger logger, string vantagePoint, TimeSpan offset);

    [LoggerMessage(EventId = 8023, Level = LogLevel.Information, Message = "MQTT source: vantage point {VantagePoint} restarted its sequence ({Previous} -> {Sequence})")]
    public static partial void SequenceRestarted(ILogger logger, string vantagePoint, ulong previous, ulong sequence);

    [LoggerMessage(EventId = 8024, Level = LogLevel.Error, Message = "MQTT source: a subscriber threw while handling a sample; the stream goes on")]
    public static partial void SubscriberFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 8025, Level = LogLevel.Error, Message = "MQTT source: subscribing to {TopicFilter} was refused: {Reason}")]
    public static partial void SubscribeRefused(ILogger logger, string topicFilter, string reason);

    [LoggerMessage(EventId = 8040, Level = LogLevel.Warning, Message = "MQTT publisher {VantagePoint}: the buffer is full ({Capacity} samples); dropping the oldest")]
    public static partial void BufferFull(ILogger logger, string vantagePoint, int capacity);

    [LoggerMessage(EventId = 8041, Level = LogLevel.Error, Message = "MQTT publisher {VantagePoint}: the broker refused {Samples} samples on {Topic}: {Reason} (check its ACL); they are dropped")]
    public static partial void PublishRefused(ILogger logger, string vantagePoint, int samples, string topic, string reason);

    [LoggerMessage(EventId = 8042, Level = LogLevel.Warning, Message = "MQTT publisher {VantagePoint}: publishing failed; {Buffered} samples stay buffered")]
    public static partial void PublishFailed(ILogger logger, string vantagePoint, int buffered, Exception exception);

    [LoggerMessage(EventId = 8043, Level = LogLevel.Warning, Message = "MQTT publisher {VantagePoint}: {Buffered} samples were still buffered when it stopped")]
    public static partial void UnsentAtStop(ILogger logger, string vantagePoint, int buffered);
}
