using Cloudlets.Core.Probing;
using static Cloudlets.Mqtt.Tests.BrokerTestKit;

namespace Cloudlets.Mqtt.Tests;

/// <summary>The source against a real mosquitto (password file, ACL, TLS listener) started by the fixture.</summary>
[NonParallelizable]
public sealed class MqttLatencySampleSourceTests
{
    private MosquittoBroker _broker = null!;

    [OneTimeSetUp]
    public async Task StartBroker() => _broker = await MosquittoBroker.StartAsync();

    [OneTimeTearDown]
    public async Task StopBroker() => await _broker.DisposeAsync();

    [Test]
    public async Task Samples_FromAPublisher_ArriveRestampedOnTheControllersClock()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);
        // The agent's clock is an hour ahead: its timestamps must not make the samples look fresh or old.
        var agentClock = new SkewedTimeProvider(TimeSpan.FromHours(1));
        await using var publisher = MqttLatencyPublisher.Start(Publisher(_broker, "cell-1", time: agentClock));
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        var agentNow = agentClock.GetUtcNow();
        for (var i = 0; i < 10; i++)
        {
            publisher.Post(Sample("cell-1", i + 1, agentNow - TimeSpan.FromMilliseconds(500)));
        }

        await WaitUntilAsync(() => recorder.Items.Count == 10, "10 samples arrived");
        var controllerNow = DateTimeOffset.UtcNow;
        var status = source.GetVantagePoints().Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(recorder.Items.Select(s => s.VantagePoint), Is.All.EqualTo("cell-1"));
            Assert.That(recorder.Items.Select(s => s.Target.Name), Is.EqualTo(Enumerable.Range(1, 10).Select(i => $"cloudlet-{i}")));
            Assert.That(recorder.Items.Select(s => s.RoundTripTime), Is.All.EqualTo(TimeSpan.FromMicroseconds(1500)));
            // Sent 500 ms (+ up to one batch period) before arrival on the controller's clock, not an hour ahead.
            foreach (var s in recorder.Items)
            {
                Assert.That(controllerNow - s.SentAt, Is.InRange(TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5)));
            }

            Assert.That(status.VantagePoint, Is.EqualTo("cell-1"));
            Assert.That(status.ClockOffset, Is.InRange(TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(61)));
            Assert.That(source.Counters.Samples, Is.EqualTo(10));
        }
    }

    [Test]
    public async Task Batches_CarryBothClocksAndTheSamplesOfSamples()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var batches = new Recorder<ReceivedSampleBatch>();
        var samples = new Recorder<LatencySample>();
        using var s1 = source.Batches.Subscribe(batches);
        using var s2 = source.Samples.Subscribe(samples);
        await source.WaitConnectedAsync().WaitAsync(Patience);
        var agentClock = new SkewedTimeProvider(TimeSpan.FromMinutes(-10));
        await using var publisher = MqttLatencyPublisher.Start(Publisher(_broker, "cell-1", time: agentClock));
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        var sentOnAgentClock = agentClock.GetUtcNow() - TimeSpan.FromSeconds(2);
        publisher.Post(Sample("cell-1", 1, sentOnAgentClock));
        publisher.Post(Sample("cell-1", 2, sentOnAgentClock));

        await WaitUntilAsync(() => samples.Items.Count == 2, "2 samples arrived");
        var batch = batches.Items.Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(batch.Samples, Is.EqualTo(samples.Items));
            Assert.That(batch.PublishedAt - batch.ArrivedAt, Is.InRange(TimeSpan.FromMinutes(-10.1), TimeSpan.FromMinutes(-9.9)));
            // The documented way back to the agent's clock gives the agent's stamp (to the format's millisecond).
            var back = batch.PublishedAt - (batch.ArrivedAt - batch.Samples[0].SentAt);
            Assert.That((back - sentOnAgentClock).Duration(), Is.LessThan(TimeSpan.FromMilliseconds(1)));
        }
    }

    [Test]
    public async Task Samples_ThreeObservers_ShareOneSubscription()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorders = Enumerable.Range(0, 3).Select(_ => new Recorder<LatencySample>()).ToArray();
        var subscriptions = recorders.Select(r => source.Samples.Subscribe(r)).ToArray();
        await source.WaitConnectedAsync().WaitAsync(Patience);
        await using var publisher = MqttLatencyPublisher.Start(Publisher(_broker, "cell-2"));
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        for (var i = 0; i < 3; i++)
        {
            publisher.Post(Sample("cell-2", 1, DateTimeOffset.UtcNow));
            await WaitUntilAsync(() => publisher.Counters.MessagesPublished == i + 1, $"message {i + 1} published");
        }

        await WaitUntilAsync(() => recorders.All(r => r.Items.Count == 3), "every observer saw 3 samples");
        foreach (var s in subscriptions)
        {
            s.Dispose();
        }

        // One subscription: each message arrived once, not once per observer.
        Assert.That(source.Counters.Messages, Is.EqualTo(3));
    }

    [Test]
    public async Task Samples_MalformedFlood_IsCountedAndDroppedAndTheStreamGoesOn()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);
        await using var publisher = MqttLatencyPublisher.Start(Publisher(_broker, "cell-3"));
        await publisher.WaitConnectedAsync().WaitAsync(Patience);
        using var raw = await RawClientAsync(_broker, "raw-writer");
        var random = new Random(7);
        var valid = SampleBatchCodec.Encode("cell-3", 0, DateTimeOffset.UtcNow, [Sample("cell-3", 1, DateTimeOffset.UtcNow)]);

        const int Flood = 2000;
        var sent = 0;
        for (var i = 0; i < Flood; i++)
        {
            var garbage = new byte[random.Next(0, 64)];
            random.NextBytes(garbage);
            await PublishRawAsync(raw, "cloudlets/v1/samples/cell-9", garbage);
            if (i % 100 == 0)
            {
                // Valid samples keep flowing from the real publisher in the middle of the flood.
                publisher.Post(Sample("cell-3", 2, DateTimeOffset.UtcNow));
                sent++;
            }
        }

        // Foreign: a valid payload naming another vantage point than its topic, and a topic below the sample level.
        await PublishRawAsync(raw, "cloudlets/v1/samples/cell-9", valid);
        await PublishRawAsync(raw, "cloudlets/v1/samples/cell-9/extra", valid);

        await WaitUntilAsync(() => source.Counters.Malformed == Flood && source.Counters.Foreign == 1 && recorder.Items.Count == sent,
            $"{Flood} malformed and 1 foreign counted and {sent} samples arrived");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(recorder.Error, Is.Null);
            Assert.That(recorder.Completed, Is.False);
            Assert.That(recorder.Items.Select(s => s.VantagePoint), Is.All.EqualTo("cell-3"));
            Assert.That(source.IsConnected, Is.True);
        }

        // And after the flood the stream still delivers.
        publisher.Post(Sample("cell-3", 3, DateTimeOffset.UtcNow));
        await WaitUntilAsync(() => recorder.Items.Count == sent + 1, "a sample after the flood arrived");
    }

    [Test]
    public async Task Samples_AgentPublishingAnotherVantagePointsTopic_IsRefusedByTheAcl()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);
        // User cell-1 may write only cloudlets/v1/samples/cell-1.
        await using var impostor = MqttLatencyPublisher.Start(Publisher(_broker, "cell-2", user: "cell-1"));
        await impostor.WaitConnectedAsync().WaitAsync(Patience);
        using var raw = await RawClientAsync(_broker, "cell-1");

        impostor.Post(Sample("cell-2", 1, DateTimeOffset.UtcNow));
        var rawResult = await PublishRawAsync(raw, "cloudlets/v1/samples/cell-2",
            SampleBatchCodec.Encode("cell-2", 0, DateTimeOffset.UtcNow, [Sample("cell-2", 1, DateTimeOffset.UtcNow)]));
        await WaitUntilAsync(() => impostor.Counters.Rejected == 1, "the impostor's sample was refused");
        // A legitimate message afterwards proves the source was listening all along.
        await PublishRawAsync(raw, "cloudlets/v1/samples/cell-1",
            SampleBatchCodec.Encode("cell-1", 0, DateTimeOffset.UtcNow, [Sample("cell-1", 1, DateTimeOffset.UtcNow)]));
        await WaitUntilAsync(() => recorder.Items.Count == 1, "cell-1's own sample arrived");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rawResult.ReasonCode, Is.EqualTo(MQTTnet.MqttClientPublishReasonCode.NotAuthorized));
            Assert.That(recorder.Items.Single().VantagePoint, Is.EqualTo("cell-1"));
            Assert.That(impostor.Counters.Published, Is.Zero);
        }
    }

    [Test]
    public async Task Start_WrongPassword_NeverConnects()
    {
        var options = Source(_broker);
        options.Broker.Password = "wrong";
        await using var source = MqttLatencySampleSource.Start(options);

        await Task.Delay(1500);

        Assert.That(source.IsConnected, Is.False);
        Assert.That(source.WaitConnectedAsync().IsCompleted, Is.False);
    }

    [Test]
    public async Task Samples_OverTlsWithTheTestCa_Arrive()
    {
        var sourceOptions = Source(_broker);
        sourceOptions.Broker = Broker(_broker.Tls, "controller", _broker.CaFile);
        await using var source = MqttLatencySampleSource.Start(sourceOptions);
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        var publisherOptions = Publisher(_broker, "cell-1");
        publisherOptions.Broker = Broker(_broker.Tls, "cell-1", _broker.CaFile);
        await using var publisher = MqttLatencyPublisher.Start(publisherOptions);
        await Task.WhenAll(source.WaitConnectedAsync(), publisher.WaitConnectedAsync()).WaitAsync(Patience);

        publisher.Post(Sample("cell-1", 4, DateTimeOffset.UtcNow));

        await WaitUntilAsync(() => recorder.Items.Count == 1, "the sample arrived over TLS");
        Assert.That(recorder.Items.Single().Target.Name, Is.EqualTo("cloudlet-4"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task Samples_WithASocketFactory_ConnectThroughItsSockets(bool tls)
    {
        // What a controller outside a lab namespace does: the socket comes from the factory (there, made in the namespace).
        var made = 0;
        System.Net.Sockets.Socket Factory(System.Net.Sockets.AddressFamily family)
        {
            Interlocked.Increment(ref made);
            return new System.Net.Sockets.Socket(family, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        }

        var sourceOptions = Source(_broker);
        sourceOptions.Broker = Broker(tls ? _broker.Tls : _broker.Plain, "controller", tls ? _broker.CaFile : null);
        sourceOptions.Broker.SocketFactory = Factory;
        await using var source = MqttLatencySampleSource.Start(sourceOptions);
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await using var publisher = MqttLatencyPublisher.Start(Publisher(_broker, "cell-2"));
        await Task.WhenAll(source.WaitConnectedAsync(), publisher.WaitConnectedAsync()).WaitAsync(Patience);

        publisher.Post(Sample("cell-2", 5, DateTimeOffset.UtcNow));

        await WaitUntilAsync(() => recorder.Items.Count == 1, "the sample arrived");
        Assert.That(made, Is.EqualTo(1), "one connection, over the factory's socket");
    }

    [Test]
    public async Task Start_SocketFactoryThrows_NeverConnectsAndKeepsTrying()
    {
        var calls = 0;
        var options = Source(_broker);
        options.Broker.SocketFactory = _ =>
        {
            Interlocked.Increment(ref calls);
            throw new IOException("no namespace");
        };
        await using var source = MqttLatencySampleSource.Start(options);

        await Task.Delay(1500);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(source.IsConnected, Is.False);
            Assert.That(calls, Is.GreaterThan(1), "each attempt asks the factory again, with backoff");
        }
    }

    [Test]
    public async Task Start_TlsWithAnUnrelatedCa_NeverConnects()
    {
        var options = Source(_broker);
        options.Broker = Broker(_broker.Tls, "controller", _broker.WriteUnrelatedCa());
        await using var source = MqttLatencySampleSource.Start(options);

        await Task.Delay(1500);

        Assert.That(source.IsConnected, Is.False);
    }

    [Test]
    public async Task DisposeAsync_CompletesTheSequence()
    {
        var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);

        await source.DisposeAsync();

        Assert.That((recorder.Completed, recorder.Error), Is.EqualTo((true, (Exception?)null)));
    }
}
