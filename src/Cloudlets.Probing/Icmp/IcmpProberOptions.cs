using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Probing.Icmp;

/// <summary>Which kind of ICMP socket a prober uses.</summary>
public enum IcmpSocketKind
{
    /// <summary>A raw socket when allowed (root or CAP_NET_RAW), else an unprivileged ICMP datagram socket.</summary>
    Auto,
    /// <summary>A raw ICMP socket (root or CAP_NET_RAW). Sees ICMP errors, so unreachable targets are reported as such.</summary>
    Raw,
    /// <summary>
    /// An unprivileged ICMP datagram ("ping") socket, allowed when the caller's group is inside
    /// <c>net.ipv4.ping_group_range</c>. The kernel picks the identifier and hands over only this
    /// socket's replies; ICMP errors are not seen, so an unreachable target shows as a timeout.
    /// </summary>
    Datagram,
}

/// <summary>Settings of an <see cref="IcmpProber"/>, validated once by <see cref="IcmpProber.Create"/>.</summary>
public sealed class IcmpProberOptions : IValidatableOptions
{
    /// <summary>The name every sample is stamped with. The default is the machine name.</summary>
    public string VantagePoint { get; set; } = Environment.MachineName;

    /// <summary>Which socket to use. The default is <see cref="IcmpSocketKind.Auto"/>.</summary>
    public IcmpSocketKind SocketKind { get; set; } = IcmpSocketKind.Auto;

    /// <summary>
    /// A named network namespace (<c>ip netns</c>) to create the sockets in, so probes leave from
    /// there; <see langword="null"/> for the caller's namespace. The default is <see langword="null"/>.
    /// </summary>
    public string? NetworkNamespace { get; set; }

    /// <summary>Bytes after the 8-byte ICMP header, 8 to 1400. The default is 56 (as ping and fping).</summary>
    public int PayloadSize { get; set; } = 56;

    /// <summary>
    /// The socket receive buffer asked for, in bytes (root may exceed <c>net.core.rmem_max</c>), 64 KiB
    /// to 256 MiB. A large buffer keeps replies from being dropped in bursts. The default is 4 MiB.
    /// </summary>
    public int ReceiveBufferBytes { get; set; } = 4 << 20;

    /// <summary>The ICMP identifier of raw sockets; <see langword="null"/> picks a random one. The default is <see langword="null"/>.</summary>
    public ushort? Identifier { get; set; }

    /// <summary>Whether to open an IPv6 socket too; IPv6 targets are refused without it. The default is <see langword="true"/>.</summary>
    public bool EnableIPv6 { get; set; } = true;

    /// <summary>
    /// Whether round trips end at the kernel's receive timestamp of the reply (SO_TIMESTAMPNS) rather
    /// than when the receive thread reads it, so a busy machine does not inflate them. Takes effect only
    /// with <see cref="TimeProvider.System"/> (kernel timestamps are wall-clock time); other providers
    /// measure with their own clock. The default is <see langword="true"/>.
    /// </summary>
    public bool UseKernelTimestamps { get; set; } = true;

    /// <summary>
    /// With kernel timestamps in use, how long the receive thread lets replies gather after reading a
    /// batch, 0 to 10 ms. Reading late does not change a measured round trip then, and it saves a
    /// thread wake-up per reply (about a third of the kernel time in a 70,000 probes a second run);
    /// it only delays each sample's delivery by up to this much. <see cref="TimeSpan.Zero"/> reads at once.
    /// The default is 500 microseconds.
    /// </summary>
    public TimeSpan ReceiveGatherTime { get; set; } = TimeSpan.FromMicroseconds(500);

    /// <summary>Where the prober logs (event ids 4000 to 4099). The default logs nowhere.</summary>
    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <summary>The clock for send times and round trips. The default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.NotEmpty(nameof(VantagePoint), VantagePoint);
        errors.Require(TimeProvider is not null, nameof(TimeProvider), "is required.");
        errors.Require(Logger is not null, nameof(Logger), "is required.");
        errors.Defined(nameof(SocketKind), SocketKind);
        errors.InRange(nameof(PayloadSize), PayloadSize, IcmpPacket.MinimumPayload, 1400);
        errors.InRange(nameof(ReceiveBufferBytes), ReceiveBufferBytes, 64 << 10, 256 << 20);
        errors.InRange(nameof(ReceiveGatherTime), ReceiveGatherTime, TimeSpan.Zero, TimeSpan.FromMilliseconds(10));
        if (NetworkNamespace is not null && OperatingSystem.IsLinux())
        {
            try
            {
                Linux.NetworkNamespace.ValidateName(NetworkNamespace);
            }
            catch (ArgumentException ex)
            {
                errors.Add(nameof(NetworkNamespace), ex.Message);
            }
        }
    }
}

/// <summary>What an <see cref="IcmpProber"/> has seen since it was created.</summary>
/// <param name="Matched">Echo replies matched to a pending probe in time.</param>
/// <param name="Unreachable">ICMP errors (unreachable, time exceeded) matched to a pending probe.</param>
/// <param name="TimedOut">Probes that timed out.</param>
/// <param name="Late">Replies that came after their probe's timeout (not counted as answers).</param>
/// <param name="Duplicates">Second and later replies to an answered probe (not counted).</param>
/// <param name="Foreign">Echo replies meant for another prober (other identifier or nonce).</param>
/// <param name="Unmatched">Replies with our identifier that match no pending probe (wrong source, stale sequence).</param>
public readonly record struct IcmpProberCounters(
    long Matched, long Unreachable, long TimedOut, long Late, long Duplicates, long Foreign, long Unmatched);

/// <summary>Neither a raw nor a datagram ICMP socket could be opened; the message says why and what would help.</summary>
public sealed class IcmpUnavailableException : IOException
{
    /// <summary>Creates the exception.</summary>
    public IcmpUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public IcmpUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public IcmpUnavailableException()
        : base("No ICMP socket could be opened.")
    {
    }
}
