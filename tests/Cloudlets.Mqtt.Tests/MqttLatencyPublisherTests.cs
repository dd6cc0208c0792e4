using Cloudlets.Core.Probing;
using static Cloudlets.Mqtt.Tests.BrokerTestKit;

namespace Cloudlets.Mqtt.Tests;

/// <summary>The publisher against a real mosquitto that the tests kill and restart (by its pid).</summary>
[NonParallelizable]
public sealed class MqttLatencyPublisherTests
{
    private MosquittoBroker _broker = null!;

    [SetUp]
    public async Task StartBroker() => _broker = await MosquittoBroker.StartAsync();

    [TearDown]
    public async Task StopBroker() => await _broker.DisposeAsync();

    [Test]
    public async Task Post_BrokerRestarted_PublisherAndSourceReconnectAndBufferedSamplesArrive()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await using var publisher = MqttLatencyPublisher.Start(Publisher(_broker, "cell-1"));
        await Task.WhenAll(source.WaitConnectedAsync(), publisher.WaitConnectedAsync()).WaitAsync(Patience);
        publisher.Post(Sample("cell-1", 1, DateTimeOffset.UtcNow));
        await WaitUntilAsync(() => recorder.Items.Count == 1, "the first sample arrived");

        await _broker.KillAsync();
        await WaitUntilAsync(() => !publisher.IsConnected && !source.IsConnected, "both saw the broker go");
        for (var i = 0; i < 5; i++)
        {
            publisher.Post(Sample("cell-1", 2, DateTimeOffset.UtcNow));
        }

        await Task.Delay(500);
        Assert.That(publisher.Counters.Buffered, Is.EqualTo(5), "samples posted while the broker is away stay buffered");

        await _broker.StartProcessAsync();
        await WaitUntilAsync(() => recorder.Items.Count == 6, "the buffered samples arrived after the restart");
        publisher.Post(Sample("cell-1", 3, DateTimeOffset.UtcNow));
        await WaitUntilAsync(() => recorder.Items.Count == 7, "new samples flow after the restart");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(recorder.Error, Is.Null);
            Assert.That(recorder.Completed, Is.False);
            Assert.That(publisher.Counters, Is.EqualTo(new MqttPublisherCounters(7, 7, publisher.Counters.MessagesPublished, 0, 0, 0)));
            Assert.That(recorder.Items.Select(s => s.Target.Name), Is.EqualTo(new[] { "cloudlet-1" }.Concat(Enumerable.Repeat("cloudlet-2", 5)).Append("cloudlet-3")));
        }
    }

    [Test]
    public async Task Post_BrokerAwayAndBufferFull_DropsTheOldestAndCountsThem()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);
        var options = Publisher(_broker, "cell-2");
        options.MaxBufferedSamples = 10;
        await using var publisher = MqttLatencyPublisher.Start(options);
        await publisher.WaitConnectedAsync().WaitAsync(Patience);
        await _broker.KillAsync();
        await WaitUntilAsync(() => !publisher.IsConnected, "the publisher saw the broker go");

        for (var i = 1; i <= 25; i++)
        {
            publisher.Post(Sample("cell-2", i, DateTimeOffset.UtcNow));
        }

        Assert.That(publisher.Counters.DroppedBufferFull, Is.EqualTo(15));
        await _broker.StartProcessAsync();
        await WaitUntilAsync(() => recorder.Items.Count == 10, "the 10 newest samples arrived");
        await Task.Delay(300);

        Assert.That(recorder.Items.Select(s => s.Target.Name), Is.EqualTo(Enumerable.Range(16, 10).Select(i => $"cloudlet-{i}")));
    }

    [Test]
    public async Task Post_NoControllerSubscribed_KeepsTheSamplesUntilOneIs()
    {
        await using var publisher = MqttLatencyPublisher.Start(Publisher(_broker, "cell-1"));
        await publisher.WaitConnectedAsync().WaitAsync(Patience);
        for (var i = 1; i <= 3; i++)
        {
            publisher.Post(Sample("cell-1", i, DateTimeOffset.UtcNow));
        }

        await Task.Delay(600); // several batch periods: each publish is answered "no matching subscribers"
        Assert.That((publisher.Counters.Published, publisher.Counters.Buffered), Is.EqualTo((0L, 3)));

        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await WaitUntilAsync(() => recorder.Items.Count == 3, "the kept samples arrived once a controller subscribed");
        Assert.That(source.Counters.MissedMessages, Is.Zero);
    }

    [Test]
    public async Task DisposeAsync_WithBufferedSamples_PublishesThemFirst()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);
        var options = Publisher(_broker, "cell-3");
        options.BatchPeriod = TimeSpan.FromMinutes(1);
        var publisher = MqttLatencyPublisher.Start(options);
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        publisher.Post(Sample("cell-3", 1, DateTimeOffset.UtcNow));
        publisher.Post(Sample("cell-3", 2, DateTimeOffset.UtcNow));
        await publisher.DisposeAsync();

        await WaitUntilAsync(() => recorder.Items.Count == 2, "both samples arrived");
        Assert.That(publisher.Counters.Published, Is.EqualTo(2));
    }

    [Test]
    public void Post_SampleOfAnotherVantagePoint_Throws()
    {
        var options = Publisher(_broker, "cell-1");
        var publisher = MqttLatencyPublisher.Start(options);
        try
        {
            Assert.Throws<ArgumentException>(() => publisher.Post(Sample("cell-2", 1, DateTimeOffset.UtcNow)));
        }
        finally
        {
            publisher.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
