using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Cloudlets.Core.Probing;

namespace Cloudlets.Mqtt;

/// <summary>
/// One published message: the samples of one vantage point since its previous message, as the agent saw them.
/// <see cref="LatencySample.SentAt"/> of each sample is on the agent's clock (<see cref="PublishedAt"/> minus the
/// sample's age); a receiver restamps it on its own clock.
/// </summary>
/// <param name="VantagePoint">The vantage point that measured every sample of the batch.</param>
/// <param name="Sequence">The publisher's message counter: +1 per message, from 0 when the publisher starts.</param>
/// <param name="PublishedAt">When the agent encoded the message, on the agent's clock (microsecond resolution).</param>
/// <param name="Samples">The samples, oldest first.</param>
public sealed record SampleBatch(string VantagePoint, ulong Sequence, DateTimeOffset PublishedAt, IReadOnlyList<LatencySample> Samples);

/// <summary>
/// The payload format of <c>cloudlets/v1/samples/{vantagePoint}</c>, version 1: compact, little-endian binary.
/// </summary>
/// <remarks>
/// <para>Binary rather than JSON because the transport's budget is 10,000 samples/s into one controller: a sample is
/// 11 bytes plus its target's entry once per message (a JSON object with the same fields is 120–150 bytes and costs a
/// parser's allocations per field). The layout (all integers little-endian):</para>
/// <code>
/// header   'C' 'L' 0x01 (magic, format version 1)
///          u8 n, n bytes UTF-8          vantage point (must equal the topic's last level)
///          u64                          sequence (+1 per message from one publisher)
///          i64                          published at: agent's Unix time, microseconds
///          u16 T                        number of targets
/// target×T u8 n, n bytes UTF-8          target name (1–255 bytes)
///          u8 4|6, 4|16 bytes           IPv4 or IPv6 address
///          u16                          TCP port, 0 for ICMP
///          u16 S                        number of samples (after all targets)
/// sample×S u16                          target index (&lt; T)
///          u8                           status (0 Ok, 1 Timeout, 2 Unreachable, 3 Error)
///          u32                          age at publish, milliseconds (published at − sent at, agent's clock)
///          u32                          round-trip time, microseconds; 0xFFFFFFFF unless status is Ok
/// </code>
/// <para>A batch of 100 samples to 100 distinct targets named like <c>cloudlet-42</c> (IPv4, ICMP) is 28 + 100 × 19 + 2 +
/// 100 × 11 = 3,030 bytes (with the vantage point <c>cell-3</c>): 30 bytes per sample; repeated targets cost 11 bytes per further sample. Anything that does
/// not follow this layout exactly (wrong magic or version, truncation, trailing bytes, an index out of range, an
/// undefined status, a round-trip time on a failed probe) is rejected whole.</para>
/// </remarks>
public static class SampleBatchCodec
{
    /// <summary>The format version this codec writes and reads.</summary>
    public const byte Version = 1;

    /// <summary>The most samples one message can carry.</summary>
    public const int MaxSamples = ushort.MaxValue;

    /// <summary>The most distinct targets one message can carry.</summary>
    public const int MaxTargets = ushort.MaxValue;

    private const uint NoRoundTrip = uint.MaxValue;
    private const int HeaderFixed = 3 + 1 + 8 + 8 + 2;
    private static readonly long MaxMicros = (DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    /// <summary>
    /// Writes a batch. <paramref name="publishedAt"/> is the agent's clock now; each sample's age is
    /// <paramref name="publishedAt"/> − <see cref="LatencySample.SentAt"/>, at least 0. Vantage points of the samples are not checked.
    /// </summary>
    /// <exception cref="ArgumentException">The vantage point or a target name cannot be written, or there are too many samples.</exception>
    public static void Encode(IBufferWriter<byte> output, string vantagePoint, ulong sequence, DateTimeOffset publishedAt, ReadOnlySpan<LatencySample> samples)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!MqttTopics.IsValidVantagePoint(vantagePoint))
        {
            throw new ArgumentException($"'{vantagePoint}' is not a valid vantage point.", nameof(vantagePoint));
        }

        if (samples.Length > MaxSamples)
        {
            throw new ArgumentException($"{samples.Length} samples; one message carries at most {MaxSamples}.", nameof(samples));
        }

        var targets = new Dictionary<ProbeTarget, int>();
        var order = new List<ProbeTarget>();
        foreach (var s in samples)
        {
            if (!targets.ContainsKey(s.Target))
            {
                targets.Add(s.Target, order.Count);
                order.Add(s.Target);
            }
        }

        var span = output.GetSpan(HeaderFixed + vantagePoint.Length);
        span[0] = (byte)'C';
        span[1] = (byte)'L';
        span[2] = Version;
        span[3] = (byte)vantagePoint.Length;
        var n = 4 + Encoding.ASCII.GetBytes(vantagePoint, span[4..]);
        BinaryPrimitives.WriteUInt64LittleEndian(span[n..], sequence);
        BinaryPrimitives.WriteInt64LittleEndian(span[(n + 8)..], (publishedAt.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(n + 16)..], (ushort)order.Count);
        output.Advance(n + 18);

        foreach (var t in order)
        {
            var nameBytes = Encoding.UTF8.GetByteCount(t.Name);
            if (nameBytes is 0 or > 255)
            {
                throw new ArgumentException($"Target name '{t.Name}' is {nameBytes} bytes of UTF-8; the format allows 1 to 255.", nameof(samples));
            }

            if (t.Port is < 0 or > ushort.MaxValue)
            {
                throw new ArgumentException($"Target {t} has port {t.Port}; the format allows 0 to 65535.", nameof(samples));
            }

            span = output.GetSpan(1 + nameBytes + 1 + 16 + 2);
            span[0] = (byte)nameBytes;
            Encoding.UTF8.GetBytes(t.Name, span[1..]);
            var p = 1 + nameBytes;
            var address = t.Address.IsIPv4MappedToIPv6 ? t.Address.MapToIPv4() : t.Address;
            var v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
            span[p] = v6 ? (byte)6 : (byte)4;
            address.TryWriteBytes(span[(p + 1)..], out var written);
            p += 1 + written;
            BinaryPrimitives.WriteUInt16LittleEndian(span[p..], (ushort)(t.Port ?? 0));
            output.Advance(p + 2);
        }

        span = output.GetSpan(2 + samples.Length * 11);
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)samples.Length);
        var o = 2;
        foreach (var s in samples)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span[o..], (ushort)targets[s.Target]);
            span[o + 2] = (byte)s.Status;
            var age = Math.Clamp((publishedAt - s.SentAt).Ticks / TimeSpan.TicksPerMillisecond, 0, uint.MaxValue);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(o + 3)..], (uint)age);
            var rtt = s.Status == ProbeStatus.Ok && s.RoundTripTime is { } r
                ? (uint)Math.Clamp(r.Ticks / TimeSpan.TicksPerMicrosecond, 0, NoRoundTrip - 1)
                : NoRoundTrip;
            BinaryPrimitives.WriteUInt32LittleEndian(span[(o + 7)..], rtt);
            o += 11;
        }

        output.Advance(o);
    }

    /// <summary>Writes a batch into a new array (see <see cref="Encode(IBufferWriter{byte}, string, ulong, DateTimeOffset, ReadOnlySpan{LatencySample})"/>).</summary>
    public static byte[] Encode(string vantagePoint, ulong sequence, DateTimeOffset publishedAt, ReadOnlySpan<LatencySample> samples)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + samples.Length * 32);
        Encode(buffer, vantagePoint, sequence, publishedAt, samples);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads a batch. Never throws on bad input: returns <see langword="false"/> with the reason in <paramref name="error"/>.
    /// Each sample's <see cref="LatencySample.SentAt"/> is on the agent's clock.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> payload, out SampleBatch? batch, out string? error)
    {
        batch = null;
        var reader = new Reader(payload);
        if (!reader.Byte(out var c) || c != 'C' || !reader.Byte(out var l) || l != 'L')
        {
            error = "not a Cloudlets sample message (no 'CL' magic)";
            return false;
        }

        if (!reader.Byte(out var version) || version != Version)
        {
            error = $"format version {version} is not supported (this reader knows {Version})";
            return false;
        }

        if (!reader.Text(out var vantagePoint, ascii: true) || !MqttTopics.IsValidVantagePoint(vantagePoint))
        {
            error = "the vantage point is missing or invalid";
            return false;
        }

        if (!reader.UInt64(out var sequence) || !reader.Int64(out var publishedMicros) || !reader.UInt16(out var targetCount))
        {
            error = "the header is truncated";
            return false;
        }

        if (publishedMicros < 0 || publishedMicros > MaxMicros)
        {
            error = "the publication time is out of range";
            return false;
        }

        var targets = new ProbeTarget[targetCount];
        for (var i = 0; i < targetCount; i++)
        {
            if (!reader.Text(out var name, ascii: false) || name.Length == 0 || !reader.Byte(out var family))
            {
                error = $"target {i} is truncated or unnamed";
                return false;
            }

            var size = family switch { 4 => 4, 6 => 16, _ => 0 };
            if (size == 0 || !reader.Bytes(size, out var addressBytes) || !reader.UInt16(out var port))
            {
                error = $"target {i} has a bad address family or is truncated";
                return false;
            }

            targets[i] = new ProbeTarget(name, new IPAddress(addressBytes), port == 0 ? null : port);
        }

        if (!reader.UInt16(out var sampleCount))
        {
            error = "the sample count is missing";
            return false;
        }

        if (reader.Remaining != sampleCount * 11)
        {
            error = $"{reader.Remaining} bytes follow for {sampleCount} samples of 11 bytes";
            return false;
        }

        var publishedAt = new DateTimeOffset(DateTimeOffset.UnixEpoch.UtcTicks + (publishedMicros * 10), TimeSpan.Zero);
        var samples = new LatencySample[sampleCount];
        for (var i = 0; i < sampleCount; i++)
        {
            reader.UInt16(out var index);
            reader.Byte(out var status);
            reader.UInt32(out var ageMs);
            reader.UInt32(out var rttMicros);
            if (index >= targetCount || status > (byte)ProbeStatus.Error)
            {
                error = $"sample {i} has target index {index} of {targetCount} or undefined status {status}";
                return false;
            }

            var ok = (ProbeStatus)status == ProbeStatus.Ok;
            if (ok == (rttMicros == NoRoundTrip))
            {
                error = $"sample {i}: a round-trip time must be present exactly when the status is Ok";
                return false;
            }

            var sentTicks = publishedAt.UtcTicks - (ageMs * TimeSpan.TicksPerMillisecond);
            if (sentTicks < DateTimeOffset.UnixEpoch.UtcTicks)
            {
                error = $"sample {i} is older than the Unix epoch";
                return false;
            }

            samples[i] = new LatencySample(
                vantagePoint,
                targets[index],
                new DateTimeOffset(sentTicks, TimeSpan.Zero),
                ok ? TimeSpan.FromTicks(rttMicros * TimeSpan.TicksPerMicrosecond) : null,
                (ProbeStatus)status);
        }

        batch = new SampleBatch(vantagePoint, sequence, publishedAt, samples);
        error = null;
        return true;
    }

    /// <summary>Reads a batch from a possibly segmented payload (as MQTT clients deliver it).</summary>
    public static bool TryDecode(in ReadOnlySequence<byte> payload, out SampleBatch? batch, out string? error) =>
        payload.IsSingleSegment
            ? TryDecode(payload.FirstSpan, out batch, out error)
            : TryDecode(payload.ToArray(), out batch, out error);

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _at;

        public readonly int Remaining => _data.Length - _at;

        public bool Byte(out byte value)
        {
            value = 0;
            if (Remaining < 1)
            {
                return false;
            }

            value = _data[_at++];
            return true;
        }

        public bool UInt16(out ushort value)
        {
            value = 0;
            if (Remaining < 2)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16LittleEndian(_data[_at..]);
            _at += 2;
            return true;
        }

        public bool UInt32(out uint value)
        {
            value = 0;
            if (Remaining < 4)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt32LittleEndian(_data[_at..]);
            _at += 4;
            return true;
        }

        public bool UInt64(out ulong value)
        {
            value = 0;
            if (Remaining < 8)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt64LittleEndian(_data[_at..]);
            _at += 8;
            return true;
        }

        public bool Int64(out long value)
        {
            var ok = UInt64(out var u);
            value = (long)u;
            return ok;
        }

        public bool Bytes(int count, out ReadOnlySpan<byte> value)
        {
            value = default;
            if (Remaining < count)
            {
                return false;
            }

            value = _data.Slice(_at, count);
            _at += count;
            return true;
        }

        public bool Text(out string value, bool ascii)
        {
            value = "";
            if (!Byte(out var length) || !Bytes(length, out var bytes))
            {
                return false;
            }

            try
            {
                value = (ascii ? StrictAscii : StrictUtf8).GetString(bytes);
                return true;
            }
            catch (DecoderFallbackException)
            {
                return false;
            }
        }
    }

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, throwOnInvalidBytes: true);
    private static readonly Encoding StrictAscii = Encoding.GetEncoding("us-ascii", EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
}
