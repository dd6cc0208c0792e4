using System.Buffers.Binary;

namespace Cloudlets.Netem.NfQueue;

/// <summary>One netlink message found in a receive buffer.</summary>
internal readonly ref struct NetlinkMessage
{
    public NetlinkMessage(ushort type, ushort flags, uint sequence, ReadOnlySpan<byte> payload)
    {
        Type = type;
        Flags = flags;
        Sequence = sequence;
        Payload = payload;
    }

    public ushort Type { get; }

    public ushort Flags { get; }

    public uint Sequence { get; }

    /// <summary>Everything after the 16-byte header.</summary>
    public ReadOnlySpan<byte> Payload { get; }
}

/// <summary>
/// Encodes and decodes the nfnetlink_queue messages a delay line needs (linux/netfilter/nfnetlink_queue.h).
/// Netlink headers and attribute headers are host-endian; nfnetlink payload fields are big-endian.
/// </summary>
internal static class NetlinkCodec
{
    public const int HeaderLength = 16;
    public const int NfGenLength = 4;
    public const ushort NlmFRequest = 1;
    public const ushort NlmFAck = 4;
    public const ushort NlmsgNoop = 1;
    public const ushort NlmsgError = 2;
    public const ushort NlmsgDone = 3;
    public const ushort NlmsgOverrun = 4;

    private const int SubsysQueue = 3;
    public const ushort MsgPacket = (SubsysQueue << 8) | 0;
    public const ushort MsgVerdict = (SubsysQueue << 8) | 1;
    public const ushort MsgConfig = (SubsysQueue << 8) | 2;
    public const ushort MsgVerdictBatch = (SubsysQueue << 8) | 3;

    private const ushort AttrCfgCmd = 1;
    private const ushort AttrCfgParams = 2;
    private const ushort AttrCfgQueueMaxLen = 3;
    private const ushort AttrCfgMask = 4;
    private const ushort AttrCfgFlags = 5;
    private const ushort AttrPacketHeader = 1;
    private const ushort AttrVerdictHeader = 2;

    public const byte CmdBind = 1;
    public const byte CmdUnbind = 2;
    public const byte CopyMeta = 1;
    public const uint FlagFailOpen = 1;
    public const uint FlagGso = 4;
    public const uint VerdictDrop = 0;
    public const uint VerdictAccept = 1;

    /// <summary>The size of a verdict (or batch verdict) message.</summary>
    public const int VerdictLength = HeaderLength + NfGenLength + 4 + 8;

    /// <summary>CONFIG with NFQA_CFG_CMD (bind or unbind a queue). Returns the length written.</summary>
    public static int WriteConfigCommand(Span<byte> dst, uint sequence, ushort queue, byte command)
    {
        var len = HeaderLength + NfGenLength + 8;
        WriteHeader(dst, len, MsgConfig, NlmFRequest | NlmFAck, sequence, queue);
        var a = dst[(HeaderLength + NfGenLength)..];
        WriteAttrHeader(a, 4 + 4, AttrCfgCmd);
        a[4] = command;
        a[5] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(a[6..], 0); // pf: ignored by kernels since 3.8
        return len;
    }

    /// <summary>
    /// CONFIG with copy mode META (no payload: a delay line needs only the id), the queue length and
    /// the flags. Returns the length written.
    /// </summary>
    public static int WriteConfigParams(Span<byte> dst, uint sequence, ushort queue, uint maxLength, uint flags)
    {
        const int ParamsAttr = 12;   // 4 header + 5 payload (be32 copy_range, u8 copy_mode), padded to 8
        const int U32Attr = 8;
        var len = HeaderLength + NfGenLength + ParamsAttr + (3 * U32Attr);
        dst[..len].Clear();
        WriteHeader(dst, len, MsgConfig, NlmFRequest | NlmFAck, sequence, queue);
        var a = dst[(HeaderLength + NfGenLength)..];
        WriteAttrHeader(a, 4 + 5, AttrCfgParams);
        BinaryPrimitives.WriteUInt32BigEndian(a[4..], 0);
        a[8] = CopyMeta;
        a = a[ParamsAttr..];
        WriteU32Attr(a, AttrCfgQueueMaxLen, maxLength);
        WriteU32Attr(a[U32Attr..], AttrCfgMask, FlagFailOpen | FlagGso);
        WriteU32Attr(a[(2 * U32Attr)..], AttrCfgFlags, flags);
        return len;
    }

    /// <summary>
    /// A verdict for one packet, or with <paramref name="batch"/> for every queued packet whose id is
    /// at most <paramref name="id"/>. Returns the length written (<see cref="VerdictLength"/>).
    /// </summary>
    public static int WriteVerdict(Span<byte> dst, uint sequence, ushort queue, uint id, uint verdict, bool batch)
    {
        WriteHeader(dst, VerdictLength, batch ? MsgVerdictBatch : MsgVerdict, NlmFRequest, sequence, queue);
        var a = dst[(HeaderLength + NfGenLength)..];
        WriteAttrHeader(a, 4 + 8, AttrVerdictHeader);
        BinaryPrimitives.WriteUInt32BigEndian(a[4..], verdict);
        BinaryPrimitives.WriteUInt32BigEndian(a[8..], id);
        return VerdictLength;
    }

    /// <summary>Reads the message at the start of <paramref name="buffer"/>; returns the aligned length consumed, or 0 at the end or on a malformed message.</summary>
    public static int TryRead(ReadOnlySpan<byte> buffer, out NetlinkMessage message)
    {
        message = default;
        if (buffer.Length < HeaderLength)
        {
            return 0;
        }

        var len = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        if (len < HeaderLength || len > buffer.Length)
        {
            return 0;
        }

        message = new NetlinkMessage(
            BinaryPrimitives.ReadUInt16LittleEndian(buffer[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(buffer[6..]),
            BinaryPrimitives.ReadUInt32LittleEndian(buffer[8..]),
            buffer[HeaderLength..len]);
        return Math.Min(Align(len), buffer.Length);
    }

    /// <summary>The queue number and packet id of a PACKET message.</summary>
    public static bool TryReadPacket(in NetlinkMessage message, out ushort queue, out uint id)
    {
        queue = 0;
        id = 0;
        if (message.Type != MsgPacket || message.Payload.Length < NfGenLength)
        {
            return false;
        }

        queue = BinaryPrimitives.ReadUInt16BigEndian(message.Payload[2..]);
        var attrs = message.Payload[NfGenLength..];
        while (attrs.Length >= 4)
        {
            var alen = BinaryPrimitives.ReadUInt16LittleEndian(attrs);
            var atype = BinaryPrimitives.ReadUInt16LittleEndian(attrs[2..]) & 0x3fff;   // strip NESTED/NET_BYTEORDER
            if (alen < 4 || alen > attrs.Length)
            {
                return false;
            }

            if (atype == AttrPacketHeader && alen >= 4 + 7)
            {
                id = BinaryPrimitives.ReadUInt32BigEndian(attrs[4..]);
                return true;
            }

            attrs = attrs[Math.Min(Align(alen), attrs.Length)..];
        }

        return false;
    }

    /// <summary>The error of an NLMSG_ERROR message: 0 for an acknowledgement, otherwise a negative errno.</summary>
    public static int ReadError(in NetlinkMessage message) =>
        message.Payload.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(message.Payload) : -22;

    private static int Align(int n) => (n + 3) & ~3;

    private static void WriteHeader(Span<byte> dst, int length, ushort type, ushort flags, uint sequence, ushort queue)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(dst, (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[12..], 0);
        dst[16] = 0;    // AF_UNSPEC
        dst[17] = 0;    // NFNETLINK_V0
        BinaryPrimitives.WriteUInt16BigEndian(dst[18..], queue);
    }

    private static void WriteAttrHeader(Span<byte> dst, int length, ushort type)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)length);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[2..], type);
    }

    private static void WriteU32Attr(Span<byte> dst, ushort type, uint value)
    {
        WriteAttrHeader(dst, 8, type);
        BinaryPrimitives.WriteUInt32BigEndian(dst[4..], value);
    }
}
