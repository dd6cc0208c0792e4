using Cloudlets.Netem.NfQueue;

namespace Cloudlets.Netem.Tests.NfQueue;

public sealed class NetlinkCodecTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", "", StringComparison.Ordinal));

    [Test]
    public void WriteConfigCommand_Bind_IsByteExact()
    {
        var buf = new byte[64];
        var n = NetlinkCodec.WriteConfigCommand(buf, 7, 2048, NetlinkCodec.CmdBind);
        Assert.That(buf[..n], Is.EqualTo(Hex(
            "1c000000 0203 0500 07000000 00000000" +   // nlmsghdr: len 28, CONFIG, REQUEST|ACK, seq 7
            "00 00 0800" +                              // nfgenmsg: AF_UNSPEC, v0, queue 2048 (big-endian)
            "0800 0100 01 00 0000")));                  // NFQA_CFG_CMD: BIND, pf 0
    }

    [Test]
    public void WriteConfigParams_MetaMaxlenFlags_IsByteExact()
    {
        var buf = new byte[128];
        var n = NetlinkCodec.WriteConfigParams(buf, 8, 2048, 1000, NetlinkCodec.FlagFailOpen | NetlinkCodec.FlagGso);
        Assert.That(buf[..n], Is.EqualTo(Hex(
            "38000000 0203 0500 08000000 00000000" +
            "00 00 0800" +
            "0900 0200 00000000 01 000000" +           // NFQA_CFG_PARAMS: copy_range 0, COPY_META, padded
            "0800 0300 000003e8" +                      // QUEUE_MAXLEN 1000
            "0800 0400 00000005" +                      // MASK: FAIL_OPEN|GSO
            "0800 0500 00000005")));                    // FLAGS: FAIL_OPEN|GSO
    }

    [TestCase(false, "0103")]
    [TestCase(true, "0303")]
    public void WriteVerdict_AcceptId_IsByteExact(bool batch, string type)
    {
        var buf = new byte[64];
        var n = NetlinkCodec.WriteVerdict(buf, 9, 2049, 0x01020304, NetlinkCodec.VerdictAccept, batch);
        Assert.That(buf[..n], Is.EqualTo(Hex(
            "20000000 " + type + " 0100 09000000 00000000" +
            "00 00 0801" +
            "0c00 0200 00000001 01020304")));
    }

    [Test]
    public void TryRead_PacketThenAck_DecodesBothWithAttributeTypeMasked()
    {
        var packet = Hex(
            "28000000 0003 0000 00000000 00000000" +   // len 40, PACKET
            "02 00 0800" +                              // AF_INET, queue 2048
            "0800 0580 aabbccdd" +                      // an attribute with NLA_F_NESTED (0x8000|5): skipped
            "0b00 0140 12345678 0800 04 00");            // PACKET_HDR with NLA_F_NET_BYTEORDER set: id, hw proto, hook, pad
        var ack = Hex("24000000 0200 0000 07000000 00000000" + "00000000" + "1c000000 0203 0500 07000000 00000000");
        var buffer = packet.Concat(ack).ToArray();

        var used = NetlinkCodec.TryRead(buffer, out var first);
        Assert.That(used, Is.EqualTo(40));
        Assert.That(NetlinkCodec.TryReadPacket(first, out var queue, out var id), Is.True);
        var used2 = NetlinkCodec.TryRead(buffer.AsSpan(used), out var second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(queue, Is.EqualTo(2048));
            Assert.That(id, Is.EqualTo(0x12345678u));
            Assert.That(used2, Is.EqualTo(36));
            Assert.That(second.Type, Is.EqualTo(NetlinkCodec.NlmsgError));
            Assert.That(second.Sequence, Is.EqualTo(7u));
            Assert.That(NetlinkCodec.ReadError(second), Is.Zero);
        }
    }

    [Test]
    public void ReadError_NegativeErrno_IsReturned()
    {
        var msg = Hex("24000000 0200 0000 03000000 00000000" + "f0ffffff" + "1c000000 0203 0500 03000000 00000000");
        NetlinkCodec.TryRead(msg, out var m);
        Assert.That(NetlinkCodec.ReadError(m), Is.EqualTo(-16));   // EBUSY
    }

    [TestCase("ffff0000 0003 0000 00000000 00000000")]   // length beyond the buffer
    [TestCase("08000000 0003 0000")]                      // shorter than a header
    public void TryRead_Malformed_ReturnsZero(string hex) =>
        Assert.That(NetlinkCodec.TryRead(Hex(hex), out _), Is.Zero);
}
