using System.Buffers;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;

namespace Cloudlets.Mqtt;

/// <summary>What a publisher has done so far.</summary>
/// <param name="Posted">Samples handed to <see cref="MqttLatencyPublisher.Post"/>.</param>
/// <param name="Published">Samples in messages the broker acknowledged as delivered to at least one subscriber.</param>
/// <param name="MessagesPublished">Messages the broker acknowledged as delivered to at least one subscriber.</param>
/// <param name="DroppedBufferFull">Samples dropped, oldest first, because the buffer was full while the broker was away
/// (a sample dropped while its message was in flight may still have arrived).</param>
/// <param name="Rejected">Samples in messages the broker refused (not authorized for the topic, …); they are not retried.</param>
/// <param name="Buffered">Samples waiting now.</param>
public readonly record struct MqttPublisherCounters(long Posted, long Published, long MessagesPublished, long DroppedBufferFull, long Rejected, int Buffered);

/// <summary>
/// Publishes one vantage point's samples to <c>cloudlets/v1/samples/{vantagePoint}</c>: buffered (bounded, oldest
/// dropped first), one message per <see cref="MqttPublisherOptions.BatchPeriod"/> in the format of
/// <see cref="SampleBatchCodec"/>, at QoS 1, over a connection that reconnects with backoff.
/// </summary>
/// <remarks>
/// A message the broker acknowledges with "no matching subscribers" (MQTT v5) is not counted as published: its
/// samples stay buffered and go again next period, so samples taken while no controller listens (a broker restart
/// races the controller's resubscription) are not lost, within the buffer's bound.
/// <para>Ownership: the publisher owns its MQTT connection and its buffer; it does not own whatever feeds <see cref="Post"/>.
/// <see cref="DisposeAsync"/> stops the batching, publishes what is buffered if the broker is there (bounded by
/// <see cref="MqttPublisherOptions.PublishTimeout"/>), then disconnects. Unsent samples are counted and logged.</para>
/// </remarks>
public sealed class MqttLatencyPublisher : IAsyncDisposable
{
    private readonly MqttPublisherOptions _options;
    private readonly ReconnectingMqttClient _connection;
    private readonly SampleRing _ring;
    private readonly LatencySample[] _scratch;
    private readonly ArrayBufferWriter<byte> _payload = new(16 * 1024);
    private readonly CancellationTokenSource _stop = new();
    private readonly KeyValuePair<string, object?> _vantageTag;
    private Task _loop = Task.CompletedTask;
    private ulong _sequence;
    private long _posted;
    private long _published;
    private long _messages;
    private long _rejected;
    private int _bufferFullLogged;
    private int _disposed;

    private MqttLatencyPublisher(MqttPublisherOptions options)
    {
        _options = options;
        Topic = MqttTopics.Samples(options.VantagePoint);
        _ring = new SampleRing(options.MaxBufferedSamples);
        _scratch = new LatencySample[Math.Min(options.MaxSamplesPerMessage, options.MaxBufferedSamples)];
        _vantageTag = new(MqttTelemetry.Tags.VantagePoint, options.VantagePoint);
        var broker = options.Broker.Copy();
        broker.ClientId ??= $"cloudlets-agent-{options.VantagePoint}-{Random.Shared.Next():x8}";
        _connection = new ReconnectingMqttClient(broker, "publisher", null, options.TimeProvider, options.Logger);
    }

    /// <summary>The vantage point this publisher speaks for.</summary>
    public string VantagePoint => _options.VantagePoint;

    /// <summary>The topic it publishes to.</summary>
    public string Topic { get; }

    /// <summary>Whether it is connected to the broker now.</summary>
    public bool IsConnected => _connection.IsReady;

    /// <summary>What it has done so far.</summary>
    public MqttPublisherCounters Counters => new(
        Interlocked.Read(ref _posted), Interlocked.Read(ref _published), Interlocked.Read(ref _messages),
        _ring.Dropped, Interlocked.Read(ref _rejected), _ring.Count);

    /// <summary>
    /// Validates <paramref name="options"/> (every error listed), then starts connecting and batching in the background.
    /// Returns at once: samples posted before the broker answers are buffered.
    /// </summary>
    /// <exception cref="OptionsValidationException">An option is invalid; nothing was started.</exception>
    public static MqttLatencyPublisher Start(MqttPublisherOptions options)
    {
        OptionsErrors.ValidateAndThrow(options);
        var publisher = new MqttLatencyPublisher(options);
        publisher._connection.Start();
        publisher._loop = Task.Run(publisher.BatchLoopAsync);
        return publisher;
    }

    /// <summary>Completes when the first connection to the broker is up.</summary>
    public Task WaitConnectedAsync(CancellationToken cancellationToken = default) => _connection.WaitReadyAsync(cancellationToken);

    /// <summary>
    /// Buffers one sample for the next message. Never blocks and never throws for a full buffer: the oldest sample is
    /// dropped and counted instead. Safe from any thread (a prober's callback).
    /// </summary>
    /// <exception cref="ArgumentException">The sample is from another vantage point.</exception>
    public void Post(in LatencySample sample)
    {
        if (!string.Equals(sample.VantagePoint, _options.VantagePoint, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The sample is from vantage point '{sample.VantagePoint}'; this publisher speaks for '{_options.VantagePoint}'.", nameof(sample));
        }

        Interlocked.Increment(ref _posted);
        if (_ring.Add(sample))
        {
            MqttTelemetry.SamplesDropped.Add(1, _vantageTag, new(MqttTelemetry.Tags.DropReason, "buffer_full"));
            if (Interlocked.Exchange(ref _bufferFullLogged, 1) == 0)
            {
                MqttLog.BufferFull(_options.Logger, _options.VantagePoint, _ring.Capacity);
            }
        }
    }

    private async Task BatchLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.BatchPeriod, _options.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                await PublishBufferedAsync(_stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Publishes everything buffered, one message per <see cref="MqttPublisherOptions.MaxSamplesPerMessage"/>, while the broker is there.</summary>
    private async Task PublishBufferedAsync(CancellationToken cancellationToken)
    {
        // Only what was buffered at the tick: samples posted meanwhile wait for the next period, so a slow broker
        // gets fewer, fuller messages rather than a chase of small ones.
        var due = _ring.Count;
        while (due > 0 && _connection.IsReady && !cancellationToken.IsCancellationRequested)
        {
            var (start, count) = _ring.Peek(_scratch.AsSpan(0, Math.Min(due, _scratch.Length)));
            if (count == 0)
            {
                return;
            }

            due -= count;

            _payload.ResetWrittenCount();
            SampleBatchCodec.Encode(_payload, _options.VantagePoint, _sequence, _options.TimeProvider.GetUtcNow(), _scratch.AsSpan(0, count));
            var message = new MqttApplicationMessageBuilder()
                .WithTopic(Topic)
                .WithPayload(_payload.WrittenMemory.ToArray())
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .WithContentType("application/vnd.cloudlets.samples.v1")
                .Build();
            MqttClientPublishResult result;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.PublishTimeout);
                result = await _connection.Client.PublishAsync(message, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Not acknowledged: the samples stay buffered for the next connection.
                MqttLog.PublishFailed(_options.Logger, _options.VantagePoint, _ring.Count, ex);
                return;
            }

            if (result.ReasonCode is MqttClientPublishReasonCode.NoMatchingSubscribers)
            {
                // Nobody listens yet (a controller not yet resubscribed after a broker restart): the broker dropped
                // the message, so the samples stay buffered for the next period, and the sequence number is reused.
                return;
            }

            _sequence++;
            if (result.ReasonCode is MqttClientPublishReasonCode.Success)
            {
                _ring.Commit(start, count);
                Interlocked.Add(ref _published, count);
                Interlocked.Increment(ref _messages);
                Volatile.Write(ref _bufferFullLogged, 0);
                MqttTelemetry.SamplesPublished.Add(count, _vantageTag);
            }
            else if (result.ReasonCode is MqttClientPublishReasonCode.NotAuthorized or MqttClientPublishReasonCode.TopicNameInvalid
                     or MqttClientPublishReasonCode.PayloadFormatInvalid or MqttClientPublishReasonCode.PacketIdentifierInUse)
            {
                // Retrying cannot help: the broker will refuse the same message again.
                _ring.Commit(start, count);
                Interlocked.Add(ref _rejected, count);
                MqttTelemetry.SamplesDropped.Add(count, _vantageTag, new(MqttTelemetry.Tags.DropReason, "rejected"));
                MqttLog.PublishRefused(_options.Logger, _options.VantagePoint, count, Topic, result.ReasonCode.ToString());
            }
            else
            {
                MqttLog.PublishFailed(_options.Logger, _options.VantagePoint, _ring.Count, new IOException($"PUBACK {result.ReasonCode} {result.ReasonString}"));
                return;
            }
        }
    }

    /// <summary>
    /// Stops batching, publishes what is buffered if the broker is there (bounded by <see cref="MqttPublisherOptions.PublishTimeout"/>),
    /// and disconnects. Idempotent.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        using (var flush = new CancellationTokenSource(_options.PublishTimeout))
        {
            await PublishBufferedAsync(flush.Token).ConfigureAwait(false);
        }

        if (_ring.Count > 0)
        {
            MqttLog.UnsentAtStop(_options.Logger, _options.VantagePoint, _ring.Count);
        }

        await _connection.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
