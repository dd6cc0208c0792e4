using System.Collections.Concurrent;
using System.Net;
using Cloudlets.Core.Probing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Cloudlets.Mqtt.Tests;

/// <summary>Options, clients and waiting helpers for tests against a real broker.</summary>
internal static class BrokerTestKit
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    public static MqttBrokerOptions Broker(Uri uri, string user, string? ca = null) => new()
    {
        Broker = uri,
        Username = user,
        Password = MosquittoBroker.Users[user],
        CaCertificateFile = ca,
        ReconnectMinDelay = TimeSpan.FromMilliseconds(100),
        ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        KeepAlive = TimeSpan.FromSeconds(2),
        ConnectTimeout = TimeSpan.FromSeconds(3),
    };

    public static MqttSampleSourceOptions Source(MosquittoBroker broker, TimeProvider? time = null) => new()
    {
        Broker = Broker(broker.Plain, "controller"),
        TimeProvider = time ?? TimeProvider.System,
    };

    public static MqttPublisherOptions Publisher(MosquittoBroker broker, string vantagePoint, string? user = null, TimeProvider? time = null) => new()
    {
        Broker = Broker(broker.Plain, user ?? vantagePoint),
        VantagePoint = vantagePoint,
        BatchPeriod = TimeSpan.FromMilliseconds(100),
        TimeProvider = time ?? TimeProvider.System,
    };

    public static LatencySample Sample(string vantagePoint, int target, DateTimeOffset sentAt, double rttMs = 1.5) =>
        new(vantagePoint, new ProbeTarget($"cloudlet-{target}", new IPAddress([198, 18, 0, (byte)target])), sentAt, TimeSpan.FromMicroseconds(rttMs * 1000), ProbeStatus.Ok);

    /// <summary>A raw MQTTnet client (for injecting messages the library would never write).</summary>
    public static async Task<IMqttClient> RawClientAsync(MosquittoBroker broker, string user)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", broker.Port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithCredentials(user, MosquittoBroker.Users[user])
            .Build());
        return client;
    }

    public static Task<MqttClientPublishResult> PublishRawAsync(IMqttClient client, string topic, byte[] payload) =>
        client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

    public static async Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? Patience);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting until {what}.");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Collects what a sequence emits, and whether it failed or completed.</summary>
    public sealed class Recorder<T> : IObserver<T>
    {
        public ConcurrentQueue<T> Items { get; } = new();

        public Exception? Error { get; private set; }

        public bool Completed { get; private set; }

        public void OnCompleted() => Completed = true;

        public void OnError(Exception error) => Error = error;

        public void OnNext(T value) => Items.Enqueue(value);
    }
}

/// <summary>A clock that reads <paramref name="offset"/> ahead of the system's (an agent with a skewed clock); timers run as the system's.</summary>
internal sealed class SkewedTimeProvider(TimeSpan offset) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
}
