using System.Net;
using Cloudlets.Core.Probing;

namespace Cloudlets.Mqtt.Tests;

public sealed class SampleBatchCodecTests
{
    private static readonly DateTimeOffset Published = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    internal static LatencySample Sample(string vantagePoint, ProbeTarget target, TimeSpan age, double? rttMs, ProbeStatus status = ProbeStatus.Ok) =>
        new(vantagePoint, target, Published - age, rttMs is { } r ? TimeSpan.FromMicroseconds(r * 1000) : null, status);

    [Test]
    public void Encode_ThenDecode_GivesTheSamplesBack()
    {
        var icmp = new ProbeTarget("cloudlet-1", IPAddress.Parse("198.18.0.11"));
        var tcp = new ProbeTarget("web", IPAddress.Parse("2001:db8::7"), 7070);
        LatencySample[] samples =
        [
            Sample("cell-3", icmp, TimeSpan.FromMilliseconds(900), 20.123),
            Sample("cell-3", tcp, TimeSpan.FromMilliseconds(400), null, ProbeStatus.Timeout),
            Sample("cell-3", icmp, TimeSpan.FromMilliseconds(5), 300.5),
            Sample("cell-3", tcp, TimeSpan.Zero, null, ProbeStatus.Unreachable),
        ];

        var payload = SampleBatchCodec.Encode("cell-3", 42, Published, samples);
        var ok = SampleBatchCodec.TryDecode(payload, out var batch, out var error);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.True, error);
            Assert.That(batch!.VantagePoint, Is.EqualTo("cell-3"));
            Assert.That(batch.Sequence, Is.EqualTo(42UL));
            Assert.That(batch.PublishedAt, Is.EqualTo(Published));
            Assert.That(batch.Samples, Is.EqualTo(samples));
        }
    }

    [Test]
    public void Encode_HundredDistinctTargets_IsThirtyBytesPerSample()
    {
        var samples = Enumerable.Range(1, 100)
            .Select(i => Sample("cell-3", new ProbeTarget($"cloudlet-{i % 90 + 10}", new IPAddress([198, 18, 0, (byte)i])), TimeSpan.FromMilliseconds(i), 1.5))
            .ToArray();

        var payload = SampleBatchCodec.Encode("cell-3", 0, Published, samples);

        // 28 header (vantage point "cell-3") + 100 × 19 targets (1 + 11 name + 1 + 4 + 2) + 2 count + 100 × 11 samples, as documented.
        Assert.That(payload, Has.Length.EqualTo(3030));
    }

    [Test]
    public void Encode_RepeatedTarget_CostsElevenBytesPerFurtherSample()
    {
        var target = new ProbeTarget("cloudlet-1", IPAddress.Loopback);
        var one = SampleBatchCodec.Encode("cell-3", 0, Published, [Sample("cell-3", target, TimeSpan.Zero, 1)]);
        var ten = SampleBatchCodec.Encode("cell-3", 0, Published, Enumerable.Repeat(Sample("cell-3", target, TimeSpan.Zero, 1), 10).ToArray());

        Assert.That(ten.Length - one.Length, Is.EqualTo(9 * 11));
    }

    [Test]
    public void TryDecode_EveryTruncation_IsRejectedWithoutThrowing()
    {
        var payload = SampleBatchCodec.Encode("cell-3", 7, Published,
            [Sample("cell-3", new ProbeTarget("a", IPAddress.Loopback), TimeSpan.Zero, 1), Sample("cell-3", new ProbeTarget("b", IPAddress.IPv6Loopback, 80), TimeSpan.Zero, 2)]);

        for (var length = 0; length < payload.Length; length++)
        {
            Assert.That(SampleBatchCodec.TryDecode(payload.AsSpan(0, length), out var batch, out var error), Is.False, $"length {length}");
            Assert.That(batch, Is.Null);
            Assert.That(error, Is.Not.Empty);
        }
    }

    [Test]
    public void TryDecode_TrailingByte_IsRejected()
    {
        var payload = SampleBatchCodec.Encode("cell-3", 7, Published, [Sample("cell-3", new ProbeTarget("a", IPAddress.Loopback), TimeSpan.Zero, 1)]);

        Assert.That(SampleBatchCodec.TryDecode([.. payload, 0], out _, out var error), Is.False);
        Assert.That(error, Does.Contain("11 bytes"));
    }

    [TestCase(0, (byte)'X', "magic")]
    [TestCase(2, (byte)2, "version 2")]
    public void TryDecode_WrongHeader_SaysWhy(int offset, byte value, string expected)
    {
        var payload = SampleBatchCodec.Encode("cell-3", 7, Published, [Sample("cell-3", new ProbeTarget("a", IPAddress.Loopback), TimeSpan.Zero, 1)]);
        payload[offset] = value;

        Assert.That(SampleBatchCodec.TryDecode(payload, out _, out var error), Is.False);
        Assert.That(error, Does.Contain(expected));
    }

    [Test]
    public void TryDecode_RoundTripOnATimeout_IsRejected()
    {
        var payload = SampleBatchCodec.Encode("cell-3", 7, Published, [Sample("cell-3", new ProbeTarget("a", IPAddress.Loopback), TimeSpan.Zero, null, ProbeStatus.Timeout)]);
        // The last four bytes are the round-trip time (0xFFFFFFFF = none); put a value there.
        payload[^4] = 1;
        payload[^3] = 0;
        payload[^2] = 0;
        payload[^1] = 0;

        Assert.That(SampleBatchCodec.TryDecode(payload, out _, out var error), Is.False);
        Assert.That(error, Does.Contain("exactly when the status is Ok"));
    }

    [Test]
    public void TryDecode_RandomBytes_NeverThrows()
    {
        var random = new Random(1234);
        var valid = SampleBatchCodec.Encode("cell-3", 7, Published, [Sample("cell-3", new ProbeTarget("a", IPAddress.Loopback), TimeSpan.Zero, 1)]);
        var accepted = 0;
        for (var i = 0; i < 20_000; i++)
        {
            // Half pure noise, half a valid message with one byte flipped.
            byte[] bytes;
            if (i % 2 == 0)
            {
                bytes = new byte[random.Next(0, 200)];
                random.NextBytes(bytes);
            }
            else
            {
                bytes = (byte[])valid.Clone();
                bytes[random.Next(bytes.Length)] ^= (byte)random.Next(1, 256);
            }

            Assert.DoesNotThrow(() =>
            {
                if (SampleBatchCodec.TryDecode(bytes, out _, out _))
                {
                    accepted++;
                }
            });
        }

        // A flipped age or round-trip byte still decodes (the format has no checksum; MQTT runs over TCP).
        Assert.That(accepted, Is.LessThan(10_000));
    }

    [Test]
    public void Encode_InvalidVantagePoint_Throws()
    {
        Assert.Throws<ArgumentException>(() => SampleBatchCodec.Encode("cell/3", 0, Published, []));
    }
}
