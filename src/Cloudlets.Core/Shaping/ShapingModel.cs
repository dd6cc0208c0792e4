using System.Globalization;
using System.Net;

namespace Cloudlets.Core.Shaping;

/// <summary>Which packets of an interface a rule shapes.</summary>
public enum ShapingDirection
{
    /// <summary>Packets leaving through the interface (what <c>tc qdisc … root netem</c> shapes).</summary>
    Egress,

    /// <summary>Packets arriving on the interface (an IFB device with tc, PREROUTING with NFQUEUE).</summary>
    Ingress,
}

/// <summary>The shape of the jitter added around the delay.</summary>
public enum DelayDistribution
{
    /// <summary>Uniform in [delay − jitter, delay + jitter] (netem's default when no table is named).</summary>
    Uniform,

    /// <summary>Normal with mean delay and standard deviation jitter (netem's <c>normal</c> table).</summary>
    Normal,

    /// <summary>Pareto (netem's <c>pareto</c> table).</summary>
    Pareto,

    /// <summary>Pareto-normal mix (netem's <c>paretonormal</c> table).</summary>
    ParetoNormal,
}

/// <summary>The transport protocol a rule matches.</summary>
public enum TrafficProtocol
{
    /// <summary>Every protocol.</summary>
    Any,

    /// <summary>TCP (IP protocol 6).</summary>
    Tcp,

    /// <summary>UDP (IP protocol 17).</summary>
    Udp,

    /// <summary>ICMP (IPv4 protocol 1) or ICMPv6 (IPv6 protocol 58).</summary>
    Icmp,
}

/// <summary>Impairment features a backend may support.</summary>
[Flags]
public enum ShapingFeatures
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>A constant delay.</summary>
    Delay = 1,

    /// <summary>Jitter around the delay.</summary>
    Jitter = 2,

    /// <summary>Random loss.</summary>
    Loss = 4,

    /// <summary>Duplicated packets.</summary>
    Duplicate = 8,

    /// <summary>Corrupted packets.</summary>
    Corrupt = 16,

    /// <summary>Reordering.</summary>
    Reorder = 32,

    /// <summary>A rate limit.</summary>
    Rate = 64,

    /// <summary>Matching on destination/source network, protocol and ports.</summary>
    PerDestination = 128,

    /// <summary>Shaping the ingress direction.</summary>
    Ingress = 256,

    /// <summary>IPv6 networks in matches.</summary>
    Ipv6 = 512,

    /// <summary>The normal distribution for jitter.</summary>
    NormalDistribution = 1024,

    /// <summary>The pareto and pareto-normal distributions for jitter.</summary>
    ParetoDistribution = 2048,

    /// <summary>Rules on ports of a Linux bridge, matched once per direction.</summary>
    BridgePorts = 4096,
}

/// <summary>
/// The impairment a rule adds, with netem's meaning: every value applies once, on the shaped
/// direction only (shaping egress adds <see cref="Delay"/> once to a round trip).
/// </summary>
public sealed record Impairment
{
    /// <summary>The largest accepted delay. The value is 60 seconds.</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(60);

    /// <summary>The one-way delay added to each matched packet. The default is zero; 0 to <see cref="MaxDelay"/>.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>
    /// The jitter (±) around <see cref="Delay"/>. The default is zero. Bound: at most <see cref="Delay"/>,
    /// so no packet is ever scheduled before it arrived.
    /// </summary>
    public TimeSpan Jitter { get; init; }

    /// <summary>How jitter is distributed. The default is <see cref="DelayDistribution.Uniform"/>.</summary>
    public DelayDistribution Distribution { get; init; } = DelayDistribution.Uniform;

    /// <summary>Correlation of successive delays, in percent (0–100). The default is 0.</summary>
    public double DelayCorrelationPercent { get; init; }

    /// <summary>Random loss in percent (0–100). The default is 0.</summary>
    public double LossPercent { get; init; }

    /// <summary>Duplicated packets in percent (0–100). The default is 0. Backends with <see cref="ShapingFeatures.Duplicate"/> only.</summary>
    public double DuplicatePercent { get; init; }

    /// <summary>Corrupted packets in percent (0–100). The default is 0. Backends with <see cref="ShapingFeatures.Corrupt"/> only.</summary>
    public double CorruptPercent { get; init; }

    /// <summary>Packets sent immediately (reordered) in percent (0–100); needs a delay. The default is 0.</summary>
    public double ReorderPercent { get; init; }

    /// <summary>A rate limit in bits per second, or <see langword="null"/> (the default) for none.</summary>
    public long? RateBitsPerSecond { get; init; }

    /// <summary>
    /// The most packets held at once (netem <c>limit</c>; at least the NFQUEUE length). The default is 1000;
    /// 1 to 1,000,000. Size it to at least packets-per-second × delay.
    /// </summary>
    public int Limit { get; init; } = 1000;

    /// <summary>A delay of <paramref name="milliseconds"/>, checked: NaN, infinite and negative values are refused.</summary>
    /// <exception cref="ShapingValidationException">The value is not a finite, non-negative number of milliseconds.</exception>
    public static Impairment FromDelay(double milliseconds)
    {
        if (!double.IsFinite(milliseconds) || milliseconds < 0 || milliseconds > MaxDelay.TotalMilliseconds)
        {
            throw new ShapingValidationException(nameof(Delay), $"delay {milliseconds.ToString(CultureInfo.InvariantCulture)} ms is not a number of milliseconds between 0 and {MaxDelay.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}.");
        }

        return new Impairment { Delay = TimeSpan.FromMilliseconds(milliseconds) };
    }

    /// <summary>A constant delay.</summary>
    public static Impairment FromDelay(TimeSpan delay) => new() { Delay = delay };

    /// <summary>The features this impairment uses.</summary>
    public ShapingFeatures RequiredFeatures
    {
        get
        {
            var f = ShapingFeatures.None;
            if (Delay > TimeSpan.Zero) { f |= ShapingFeatures.Delay; }
            if (Jitter > TimeSpan.Zero)
            {
                f |= ShapingFeatures.Jitter;
                f |= Distribution switch
                {
                    DelayDistribution.Normal => ShapingFeatures.NormalDistribution,
                    DelayDistribution.Pareto or DelayDistribution.ParetoNormal => ShapingFeatures.ParetoDistribution,
                    _ => ShapingFeatures.None,
                };
            }

            if (LossPercent > 0) { f |= ShapingFeatures.Loss; }
            if (DuplicatePercent > 0) { f |= ShapingFeatures.Duplicate; }
            if (CorruptPercent > 0) { f |= ShapingFeatures.Corrupt; }
            if (ReorderPercent > 0) { f |= ShapingFeatures.Reorder; }
            if (RateBitsPerSecond is not null) { f |= ShapingFeatures.Rate; }
            return f;
        }
    }
}

/// <summary>Which packets of the interface a rule applies to. All unset (the default) means every packet, like <c>root netem</c>.</summary>
public sealed record TrafficMatch
{
    /// <summary>Every packet.</summary>
    public static TrafficMatch All { get; } = new();

    /// <summary>Packets to this network, or any destination when <see langword="null"/> (the default).</summary>
    public IPNetwork? Destination { get; init; }

    /// <summary>Packets from this network, or any source when <see langword="null"/> (the default).</summary>
    public IPNetwork? Source { get; init; }

    /// <summary>The transport protocol. The default is <see cref="TrafficProtocol.Any"/>.</summary>
    public TrafficProtocol Protocol { get; init; } = TrafficProtocol.Any;

    /// <summary>The destination port (1–65535; needs TCP or UDP), or <see langword="null"/> (the default) for any.</summary>
    public int? DestinationPort { get; init; }

    /// <summary>The source port (1–65535; needs TCP or UDP), or <see langword="null"/> (the default) for any.</summary>
    public int? SourcePort { get; init; }

    /// <summary>Packets to one network.</summary>
    public static TrafficMatch To(IPNetwork destination) => new() { Destination = destination };

    /// <summary>Packets to one address.</summary>
    public static TrafficMatch To(IPAddress destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return new() { Destination = new IPNetwork(destination, destination.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128) };
    }

    /// <summary>Whether this matches every packet.</summary>
    public bool IsAll => Destination is null && Source is null && Protocol == TrafficProtocol.Any && DestinationPort is null && SourcePort is null;
}

/// <summary>One shaping rule: an interface, a direction, which packets, and what happens to them.</summary>
/// <param name="Interface">The Linux interface name (1–15 of letters, digits, '-', '_', '.').</param>
/// <param name="Direction">Egress or ingress.</param>
/// <param name="Match">Which packets.</param>
/// <param name="Impairment">What is done to them.</param>
public sealed record ShapingRule(string Interface, ShapingDirection Direction, TrafficMatch Match, Impairment Impairment)
{
    /// <summary>
    /// The named network namespace (<c>ip netns</c>) the interface lives in, or <see langword="null"/>
    /// (the default) for the caller's namespace.
    /// </summary>
    public string? NetworkNamespace { get; init; }

    /// <summary>
    /// A stable name for the rule (1–32 of letters, digits, '-', '_'), unique in its plan; the default
    /// (<see langword="null"/>) is <c>r</c> and the rule's position.
    /// </summary>
    public string? Name { get; init; }

    /// <summary>
    /// Whether <see cref="Interface"/> is a port of a Linux bridge. Bridged packets are then matched
    /// on the bridge port (physdev), so each direction is shaped exactly once. The default is <see langword="false"/>.
    /// </summary>
    public bool BridgePort { get; init; }

    /// <summary>Egress on an interface for every packet, as the demonstration's <c>root netem delay</c>.</summary>
    public static ShapingRule Egress(string interfaceName, Impairment impairment, TrafficMatch? match = null) =>
        new(interfaceName, ShapingDirection.Egress, match ?? TrafficMatch.All, impairment);
}

/// <summary>A complete rule set owned by a name: applying it converges the owner's kernel state to exactly these rules.</summary>
/// <param name="Owner">The owner (1–18 of letters, digits, '-'); it names the kernel objects, so one owner never touches another's.</param>
/// <param name="Rules">The rules; empty means "nothing shaped" for this owner.</param>
public sealed record ShapingPlan(string Owner, IReadOnlyList<ShapingRule> Rules)
{
    /// <summary>The effective name of the rule at <paramref name="index"/>.</summary>
    public string RuleName(int index) => Rules[index].Name ?? "r" + index.ToString(CultureInfo.InvariantCulture);
}

/// <summary>What a backend can do, and why it was chosen.</summary>
/// <param name="Backend">The backend's name (<c>tc-netem</c>, <c>nfqueue</c>).</param>
/// <param name="Features">The supported features.</param>
/// <param name="Reason">Why this backend (for example what a probe found), or <see langword="null"/>.</param>
public sealed record ShaperCapabilities(string Backend, ShapingFeatures Features, string? Reason)
{
    /// <summary>Whether every feature in <paramref name="features"/> is supported.</summary>
    public bool Supports(ShapingFeatures features) => (Features & features) == features;
}

/// <summary>Health of one NFQUEUE, read from <c>/proc/net/netfilter/nfnetlink_queue</c>.</summary>
/// <param name="QueueNumber">The queue number.</param>
/// <param name="PeerPortId">The netlink port id of the process bound to it (0 if none).</param>
/// <param name="QueueTotal">Packets waiting for a verdict now.</param>
/// <param name="QueueDropped">Packets dropped because the queue was full.</param>
/// <param name="UserDropped">Packets dropped because the listener's socket buffer was full.</param>
/// <param name="IdSequence">The last packet id handed out.</param>
public sealed record QueueHealth(int QueueNumber, uint PeerPortId, long QueueTotal, long QueueDropped, long UserDropped, long IdSequence);

/// <summary>One rule as found in the kernel.</summary>
/// <param name="NetworkNamespace">The namespace, or <see langword="null"/> for the caller's.</param>
/// <param name="Interface">The interface.</param>
/// <param name="Direction">The direction.</param>
/// <param name="Name">The rule's name.</param>
/// <param name="Impairment">The impairment read back (fields the kernel does not report are left at their defaults).</param>
/// <param name="KernelObjectId">Where it lives, for example <c>tc:4a10:1</c> or <c>nfq:2048</c>.</param>
/// <param name="Health">Queue health for the NFQUEUE backend; <see langword="null"/> otherwise.</param>
public sealed record AppliedRule(string? NetworkNamespace, string Interface, ShapingDirection Direction, string Name, Impairment Impairment, string KernelObjectId, QueueHealth? Health);

/// <summary>A raw kernel object owned by a shaper, as read back (used to plan changes).</summary>
/// <param name="NetworkNamespace">The namespace, or <see langword="null"/> for the caller's.</param>
/// <param name="Kind">The kind, for example <c>iptables</c>, <c>ip6tables</c>, <c>qdisc</c>, <c>filter</c>, <c>link</c>.</param>
/// <param name="Location">The chain or device.</param>
/// <param name="Text">The object as the kernel tool printed it.</param>
public sealed record KernelObject(string? NetworkNamespace, string Kind, string Location, string Text);

/// <summary>An owner's shaping state read back from the kernel.</summary>
/// <param name="Owner">The owner.</param>
/// <param name="Backend">The backend that read it.</param>
/// <param name="Rules">The rules found.</param>
/// <param name="Objects">The owned kernel objects found.</param>
/// <param name="ForeignObjects">Objects that belong to someone else and would be in the way (for example a foreign root qdisc).</param>
public sealed record ShapingState(string Owner, string Backend, IReadOnlyList<AppliedRule> Rules, IReadOnlyList<KernelObject> Objects, IReadOnlyList<KernelObject> ForeignObjects)
{
    /// <summary>An empty state (nothing owned found).</summary>
    public static ShapingState Empty(string owner, string backend) => new(owner, backend, [], [], []);

    /// <summary>Whether nothing owned was found (foreign objects do not count).</summary>
    public bool IsEmpty => Rules.Count == 0 && Objects.Count == 0;
}
