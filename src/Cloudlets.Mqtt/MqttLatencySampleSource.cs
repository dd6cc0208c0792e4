using System.Reactive.Linq;
using System.Reactive.Subjects;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using MQTTnet;
using MQTTnet.Protocol;

namespace Cloudlets.Mqtt;

/// <summary>What a sample source has received and dropped so far.</summary>
/// <param name="Messages">Messages that arrived on the subscription.</param>
/// <param name="Samples">Samples emitted to <see cref="MqttLatencySampleSource.Samples"/>.</param>
/// <param name="Malformed">Messages dropped because their payload is not a valid version-1 batch.</param>
/// <param name="Foreign">Messages dropped because their topic is not a sample topic, their payload names another vantage point than the topic, or the vantage point is not accepted.</param>
/// <param name="Duplicates">Messages dropped because they repeat the previous sequence number of their vantage point (a QoS 1 redelivery).</param>
/// <param name="MissedMessages">Messages that never arrived, from gaps in the vantage points' sequence numbers.</param>
public readonly record struct MqttSampleSourceCounters(long Messages, long Samples, long Malformed, long Foreign, long Duplicates, long MissedMessages);

/// <summary>
/// One accepted message with both clocks: the agent's publication time and the controller's arrival time. Its
/// samples are those emitted on <see cref="MqttLatencySampleSource.Samples"/> (restamped on the controller's clock);
/// a sample's send time on the agent's clock is <c>PublishedAt - (ArrivedAt - sample.SentAt)</c>.
/// </summary>
/// <param name="VantagePoint">The vantage point.</param>
/// <param name="Sequence">The publisher's message counter.</param>
/// <param name="PublishedAt">When the agent encoded it, on the agent's clock (never used for freshness).</param>
/// <param name="ArrivedAt">When it arrived, on the controller's clock.</param>
/// <param name="Samples">Its samples, restamped on the controller's clock.</param>
public sealed record ReceivedSampleBatch(string VantagePoint, ulong Sequence, DateTimeOffset PublishedAt, DateTimeOffset ArrivedAt, IReadOnlyList<LatencySample> Samples);

/// <summary>One vantage point as the source has seen it.</summary>
/// <param name="VantagePoint">The vantage point.</param>
/// <param name="LastArrival">When its last message arrived, on the controller's clock.</param>
/// <param name="ClockOffset">Its clock minus the controller's at that arrival (an overestimate by the transit time). Reported, never used for freshness.</param>
/// <param name="Messages">Messages accepted from it.</param>
/// <param name="Samples">Samples accepted from it.</param>
/// <param name="LastSequence">The sequence number of its last message.</param>
/// <param name="MissedMessages">Messages that never arrived (sequence gaps).</param>
public sealed record VantagePointStatus(string VantagePoint, DateTimeOffset LastArrival, TimeSpan ClockOffset, long Messages, long Samples, ulong LastSequence, long MissedMessages);

/// <summary>
/// The samples that agents publish on <c>cloudlets/v1/samples/+</c>, as the <see cref="IObservable{T}"/> of
/// <see cref="LatencySample"/> the migration pipeline takes.
/// </summary>
/// <remarks>
/// <para><see cref="Samples"/> is hot: one broker connection and one subscription, however many observers; an
/// observer sees what arrives after it subscribed. The sequence never fails: malformed, foreign and duplicate
/// messages are counted (<see cref="Counters"/>, metric <c>cloudlets.mqtt.messages.dropped</c>) and dropped, and a
/// lost broker is reconnected with backoff and resubscribed. It completes when the source is disposed.</para>
/// <para>Freshness is judged on the controller's clock: each sample's <see cref="LatencySample.SentAt"/> is
/// restamped as the arrival time minus the sample's age at publication (a duration on the agent's clock, so a
/// skewed agent clock does not move it). The agent's clock offset is measured per message and reported
/// (<see cref="GetVantagePoints"/>, metric <c>cloudlets.mqtt.agent.clock_offset</c>, a warning past
/// <see cref="MqttSampleSourceOptions.ClockSkewWarning"/>).</para>
/// <para>Ownership: the source owns its MQTT connection; <see cref="DisposeAsync"/> disconnects and completes the sequence.</para>
/// </remarks>
public sealed class MqttLatencySampleSource : IAsyncDisposable
{
    private readonly MqttSampleSourceOptions _options;
    private readonly ReconnectingMqttClient _connection;
    private readonly Subject<LatencySample> _subject = new();
    private readonly Subject<ReceivedSampleBatch> _batches = new();
    private readonly HashSet<string>? _accepted;
    private readonly Dictionary<string, VantagePointState> _vantagePoints = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private long _messages;
    private long _samples;
    private long _malformed;
    private long _foreign;
    private long _duplicates;
    private long _missed;
    private int _disposed;

    private MqttLatencySampleSource(MqttSampleSourceOptions options)
    {
        _options = options;
        _accepted = options.VantagePoints is { } v ? new HashSet<string>(v, StringComparer.Ordinal) : null;
        _connection = new ReconnectingMqttClient(options.Broker.Copy(), "source", SubscribeAsync, options.TimeProvider, options.Logger);
        _connection.Client.ApplicationMessageReceivedAsync += OnMessageAsync;
        Samples = _subject.AsObservable();
        Batches = _batches.AsObservable();
    }

    /// <summary>
    /// Each accepted message as one batch with both clocks (for measuring transit and batching delay), emitted just
    /// before its samples on <see cref="Samples"/>. Hot, never fails, completes on dispose.
    /// </summary>
    public IObservable<ReceivedSampleBatch> Batches { get; }

    /// <summary>The samples, restamped on the controller's clock. Hot, never fails, completes on dispose.</summary>
    public IObservable<LatencySample> Samples { get; }

    /// <summary>Whether it is connected and subscribed now.</summary>
    public bool IsConnected => _connection.IsReady;

    /// <summary>What it has received and dropped so far.</summary>
    public MqttSampleSourceCounters Counters => new(
        Interlocked.Read(ref _messages), Interlocked.Read(ref _samples), Interlocked.Read(ref _malformed),
        Interlocked.Read(ref _foreign), Interlocked.Read(ref _duplicates), Interlocked.Read(ref _missed));

    /// <summary>Validates <paramref name="options"/> (every error listed), then starts connecting and subscribing in the background.</summary>
    /// <exception cref="OptionsValidationException">An option is invalid; nothing was started.</exception>
    public static MqttLatencySampleSource Start(MqttSampleSourceOptions options)
    {
        OptionsErrors.ValidateAndThrow(options);
        var source = new MqttLatencySampleSource(options);
        source._connection.Start();
        return source;
    }

    /// <summary>Completes when the first subscription is acknowledged.</summary>
    public Task WaitConnectedAsync(CancellationToken cancellationToken = default) => _connection.WaitReadyAsync(cancellationToken);

    /// <summary>Every vantage point heard from, with its last arrival (controller's clock) and its clock offset.</summary>
    public IReadOnlyList<VantagePointStatus> GetVantagePoints()
    {
        lock (_gate)
        {
            return _vantagePoints.Values.Select(s => s.ToStatus()).OrderBy(s => s.VantagePoint, StringComparer.Ordinal).ToArray();
        }
    }

    private async Task SubscribeAsync(IMqttClient client, CancellationToken cancellationToken)
    {
        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(MqttTopics.AllSamples).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
            .Build();
        var result = await client.SubscribeAsync(subscribe, cancellationToken).ConfigureAwait(false);
        var code = result.Items.Count == 1 ? result.Items.First().ResultCode : MqttClientSubscribeResultCode.UnspecifiedError;
        if (code is not (MqttClientSubscribeResultCode.GrantedQoS0 or MqttClientSubscribeResultCode.GrantedQoS1 or MqttClientSubscribeResultCode.GrantedQoS2))
        {
            MqttLog.SubscribeRefused(_options.Logger, MqttTopics.AllSamples, code.ToString());
            throw new IOException($"Subscribing to {MqttTopics.AllSamples} was refused: {code}.");
        }

        MqttLog.Subscribed(_options.Logger, MqttTopics.AllSamples);
    }

    private Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs args)
    {
        var arrival = _options.TimeProvider.GetUtcNow();
        Interlocked.Increment(ref _messages);
        var message = args.ApplicationMessage;
        var topicVantagePoint = MqttTopics.TryGetVantagePoint(message.Topic);
        if (topicVantagePoint is null || (_accepted is not null && !_accepted.Contains(topicVantagePoint)))
        {
            return Drop(ref _foreign, "foreign", message.Topic, "not an accepted vantage point's sample topic");
        }

        if (!SampleBatchCodec.TryDecode(message.Payload, out var batch, out var error))
        {
            return Drop(ref _malformed, "malformed", message.Topic, error!);
        }

        if (!string.Equals(batch!.VantagePoint, topicVantagePoint, StringComparison.Ordinal))
        {
            return Drop(ref _foreign, "foreign", message.Topic, $"the payload is from vantage point '{batch.VantagePoint}'");
        }

        var offset = batch.PublishedAt - arrival;
        lock (_gate)
        {
            if (!_vantagePoints.TryGetValue(batch.VantagePoint, out var state))
            {
                state = new VantagePointState(batch.VantagePoint);
                _vantagePoints.Add(batch.VantagePoint, state);
            }
            else if (state.Messages > 0)
            {
                if (batch.Sequence == state.LastSequence)
                {
                    return Drop(ref _duplicates, "duplicate", message.Topic, $"sequence {batch.Sequence} again");
                }

                if (batch.Sequence < state.LastSequence)
                {
                    MqttLog.SequenceRestarted(_options.Logger, batch.VantagePoint, state.LastSequence, batch.Sequence);
                }
                else if (batch.Sequence > state.LastSequence + 1)
                {
                    var gap = (long)Math.Min(batch.Sequence - state.LastSequence - 1, long.MaxValue);
                    state.Missed += gap;
                    Interlocked.Add(ref _missed, gap);
                }
            }

            state.LastSequence = batch.Sequence;
            state.Messages++;
            state.Samples += batch.Samples.Count;
            state.LastArrival = arrival;
            state.ClockOffset = offset;
            var skewed = offset.Duration() > _options.ClockSkewWarning;
            if (skewed && !state.SkewReported)
            {
                MqttLog.ClockSkew(_options.Logger, batch.VantagePoint, offset);
            }

            state.SkewReported = skewed;
        }

        MqttTelemetry.ClockOffset.Record(offset.TotalSeconds, new KeyValuePair<string, object?>(MqttTelemetry.Tags.VantagePoint, batch.VantagePoint));
        var restamped = new LatencySample[batch.Samples.Count];
        for (var i = 0; i < restamped.Length; i++)
        {
            // The age is a difference of two readings of the agent's clock; the arrival is the controller's.
            var s = batch.Samples[i];
            restamped[i] = s with { SentAt = arrival - (batch.PublishedAt - s.SentAt) };
        }

        Emit(_batches, new ReceivedSampleBatch(batch.VantagePoint, batch.Sequence, batch.PublishedAt, arrival, restamped));
        foreach (var s in restamped)
        {
            Emit(_subject, s);
        }

        Interlocked.Add(ref _samples, batch.Samples.Count);
        MqttTelemetry.SamplesReceived.Add(batch.Samples.Count);
        return Task.CompletedTask;
    }

    private void Emit<T>(Subject<T> subject, T value)
    {
        try
        {
            subject.OnNext(value);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            MqttLog.SubscriberFailed(_options.Logger, ex);
        }
    }

    private Task Drop(ref long counter, string reason, string topic, string detail)
    {
        Interlocked.Increment(ref counter);
        MqttTelemetry.MessagesDropped.Add(1, new KeyValuePair<string, object?>(MqttTelemetry.Tags.DropReason, reason));
        MqttLog.MessageDropped(_options.Logger, topic, reason, detail);
        return Task.CompletedTask;
    }

    /// <summary>Disconnects from the broker and completes <see cref="Samples"/>. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _connection.Client.ApplicationMessageReceivedAsync -= OnMessageAsync;
        await _connection.DisposeAsync().ConfigureAwait(false);
        _batches.OnCompleted();
        _subject.OnCompleted();
        _batches.Dispose();
        _subject.Dispose();
    }

    private sealed class VantagePointState(string name)
    {
        public long Messages;
        public long Samples;
        public long Missed;
        public ulong LastSequence;
        public DateTimeOffset LastArrival;
        public TimeSpan ClockOffset;
        public bool SkewReported;

        public VantagePointStatus ToStatus() => new(name, LastArrival, ClockOffset, Messages, Samples, LastSequence, Missed);
    }
}
