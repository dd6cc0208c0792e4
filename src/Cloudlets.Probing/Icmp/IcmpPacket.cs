using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Probing.Icmp;

/// <summary>
/// The echo request layout: an 8-byte ICMP header (type, code, checksum, identifier, sequence),
/// then the payload: the probe's generation (4 bytes), the prober's nonce (4 bytes), then filler.
/// The generation tells a late reply to a reused sequence number from the current probe; the nonce
/// tells this prober's replies from another prober that happens to use the same identifier.
/// </summary>
internal static class IcmpPacket
{
    public const int HeaderLength = 8;
    public const int MinimumPayload = 8;
    public const byte EchoRequestV4 = 8;
    public const byte EchoReplyV4 = 0;
    public const byte DestinationUnreachableV4 = 3;
    public const byte TimeExceededV4 = 11;
    public const byte EchoRequestV6 = 128;
    public const byte EchoReplyV6 = 129;
    public const byte DestinationUnreachableV6 = 1;
    public const byte TimeExceededV6 = 3;

    /// <summary>Writes the fixed parts of an echo request (everything but sequence, generation and checksum).</summary>
    public static void WriteTemplate(Span<byte> packet, bool ipv6, ushort identifier, uint nonce)
    {
        packet.Clear();
        packet[0] = ipv6 ? EchoRequestV6 : EchoRequestV4;
        BinaryPrimitives.WriteUInt16BigEndian(packet[4..], identifier);
        BinaryPrimitives.WriteUInt32LittleEndian(packet[(HeaderLength + 4)..], nonce);
        for (var i = HeaderLength + MinimumPayload; i < packet.Length; i++)
        {
            packet[i] = (byte)i;
        }
    }

    /// <summary>Stamps sequence and generation into a template; computes the checksum when the kernel will not.</summary>
    public static void Stamp(Span<byte> packet, ushort sequence, uint generation, bool computeChecksum)
    {
        BinaryPrimitives.WriteUInt16BigEndian(packet[6..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(packet[HeaderLength..], generation);
        packet[2] = 0;
        packet[3] = 0;
        if (computeChecksum)
        {
            var sum = Checksum(packet);
            packet[2] = (byte)(sum >> 8);
            packet[3] = (byte)sum;
        }
    }

    /// <summary>The Internet checksum (RFC 1071) of <paramref name="data"/>, in network order as a number.</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        var words = MemoryMarshal.Cast<byte, uint>(data);
        foreach (var w in words)
        {
            sum += w;
        }

        var i = words.Length * 4;
        if (i + 1 < data.Length)
        {
            sum += MemoryMarshal.Read<ushort>(data[i..]);
            i += 2;
        }

        if (i < data.Length)
        {
            sum += data[i];
        }

        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        // Summed in host (little-endian) order; swap to read as a big-endian number.
        var folded = (ushort)~sum;
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(folded) : folded;
    }

    /// <summary>The key the prober compares reply sources with: an address as two 64-bit halves.</summary>
    public static IcmpAddressKey KeyOf(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return new IcmpAddressKey(0, MemoryMarshal.Read<uint>(bytes));
        }

        address.TryWriteBytes(bytes, out _);
        return new IcmpAddressKey(MemoryMarshal.Read<ulong>(bytes), MemoryMarshal.Read<ulong>(bytes[8..]));
    }

    /// <summary>The key of the address inside a <c>sockaddr_in</c> or <c>sockaddr_in6</c>.</summary>
    public static IcmpAddressKey KeyOfSockAddr(ReadOnlySpan<byte> sockaddr, bool ipv6)
        => ipv6
            ? new IcmpAddressKey(MemoryMarshal.Read<ulong>(sockaddr[8..]), MemoryMarshal.Read<ulong>(sockaddr[16..]))
            : new IcmpAddressKey(0, MemoryMarshal.Read<uint>(sockaddr[4..]));

    /// <summary>Writes a <c>sockaddr_in</c> (16 bytes) or <c>sockaddr_in6</c> (28 bytes) for the address; returns its length.</summary>
    public static int WriteSockAddr(IPAddress address, Span<byte> sockaddr)
    {
        sockaddr.Clear();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            MemoryMarshal.Write(sockaddr, (ushort)Libc.AfInet);
            address.TryWriteBytes(sockaddr[4..], out _);
            return 16;
        }

        MemoryMarshal.Write(sockaddr, (ushort)Libc.AfInet6);
        address.TryWriteBytes(sockaddr[8..], out _);
        MemoryMarshal.Write(sockaddr[24..], (uint)address.ScopeId);
        return 28;
    }
}

/// <summary>An address as two 64-bit halves (IPv4 in the low half), compared without allocating.</summary>
internal readonly record struct IcmpAddressKey(ulong High, ulong Low);
