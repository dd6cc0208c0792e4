using System.Net;
using Cloudlets.Probing.Icmp;

namespace Cloudlets.Probing.Tests.Icmp;

public class IcmpPacketTests
{
    [Test]
    public void Checksum_KnownEchoRequest_MatchesTheRfc1071Sum()
    {
        // Echo request, id 1, seq 1, payload "abcd": computed by hand as 0x2b3b... checked by summing 16-bit words.
        byte[] packet = [8, 0, 0, 0, 0, 1, 0, 1, (byte)'a', (byte)'b', (byte)'c', (byte)'d'];
        uint sum = 0x0800 + 0x0000 + 0x0001 + 0x0001 + 0x6162 + 0x6364;
        var expected = (ushort)~((sum & 0xFFFF) + (sum >> 16));

        Assert.That(IcmpPacket.Checksum(packet), Is.EqualTo(expected));
    }

    [Test]
    public void Stamp_WithChecksum_PacketSumsToZero()
    {
        var packet = new byte[64];
        IcmpPacket.WriteTemplate(packet, ipv6: false, 0xBEEF, 42);

        IcmpPacket.Stamp(packet, 513, 77, computeChecksum: true);

        // A packet with a correct checksum sums (one's complement) to 0xFFFF, so its checksum is 0.
        Assert.That(IcmpPacket.Checksum(packet), Is.Zero);
    }

    [Test]
    public void Checksum_OddLength_PadsWithZero()
    {
        byte[] odd = [1, 2, 3];
        byte[] padded = [1, 2, 3, 0];

        Assert.That(IcmpPacket.Checksum(odd), Is.EqualTo(IcmpPacket.Checksum(padded)));
    }

    [Test]
    public void KeyOfSockAddr_SameAddressAsKeyOf()
    {
        var v4 = IPAddress.Parse("127.0.1.9");
        var v6 = IPAddress.Parse("fe80::1%2");
        var buffer = new byte[28];

        IcmpPacket.WriteSockAddr(v4, buffer);
        var k4 = IcmpPacket.KeyOfSockAddr(buffer, ipv6: false);
        IcmpPacket.WriteSockAddr(v6, buffer);
        var k6 = IcmpPacket.KeyOfSockAddr(buffer, ipv6: true);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(k4, Is.EqualTo(IcmpPacket.KeyOf(v4)));
            Assert.That(k6, Is.EqualTo(IcmpPacket.KeyOf(v6)));
            Assert.That(k4, Is.Not.EqualTo(IcmpPacket.KeyOf(IPAddress.Parse("127.0.1.8"))));
        }
    }
}
