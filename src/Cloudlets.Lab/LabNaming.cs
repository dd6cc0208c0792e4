using System.Globalization;
using System.Net;

namespace Cloudlets.Lab;

/// <summary>
/// Every name and address of a lab derives from its name and its subnet index K, so a lab killed
/// mid-way can be found and removed again from the name alone.
/// </summary>
/// <remarks>
/// <para>
/// Namespaces: <c>NAME-sw</c> (the switch: bridge <c>sw0</c>, one veth port per member),
/// <c>NAME-edge</c> (<c>eth0</c>, 198.18.K.1/24) and <c>NAME-hN</c> per host (bridge <c>br0</c> that
/// holds the uplink veth <c>up0</c> and carries 198.18.K.(10+N)/24). Guests: 198.18.K.(100+I),
/// MAC 52:54:00:12:KK:II (hex). Nothing lives in the root namespace.
/// </para>
/// <para>
/// Sites (users in several places): <c>site-1</c> is the edge above. A lab with M &gt; 1 sites adds, for
/// S = 2..M, the namespace <c>NAME-sS</c> (<c>eth0</c>, 198.19.K.(16(S−1)+1)/28: its own subnet) on switch
/// port <c>sS</c>. The switch stays one layer-2 segment: the hosts, their guests and the sites reach each
/// other's subnets through on-link routes (hosts and guests: 198.19.K.0/24; each site: 198.18.K.0/24), so
/// no router sits between a site and a host and the switch port of a host still sees all its traffic.
/// </para>
/// </remarks>
public static class LabNaming
{
    /// <summary>The most hosts a lab can have. The default host count is 3.</summary>
    public const int MaxHosts = 8;

    /// <summary>The most guests a lab can have.</summary>
    public const int MaxGuests = 16;

    /// <summary>The most sites (edge namespaces where users are) a lab can have. The default is 1, the edge alone.</summary>
    public const int MaxSites = 8;

    /// <summary>The longest lab name.</summary>
    public const int MaxNameLength = 24;

    /// <summary>The lowest subnet index K.</summary>
    public const int MinSubnet = 1;

    /// <summary>The highest subnet index K.</summary>
    public const int MaxSubnet = 254;

    /// <summary>The bridge inside each host namespace.</summary>
    public const string HostBridge = "br0";

    /// <summary>The bridge inside the switch namespace.</summary>
    public const string SwitchBridge = "sw0";

    /// <summary>The uplink veth inside each host namespace.</summary>
    public const string HostUplink = "up0";

    /// <summary>The edge's interface inside the edge namespace.</summary>
    public const string EdgeInterface = "eth0";

    /// <summary>Whether <paramref name="name"/> is a valid lab name: 1–24 of lowercase letters, digits and '-', starting with a letter, not ending with '-'.</summary>
    public static bool IsValidLabName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxNameLength && char.IsAsciiLetterLower(name[0]) && name[^1] != '-' &&
        name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    /// <summary>Throws <see cref="LabConfigurationException"/> unless the name is valid.</summary>
    public static void ValidateLabName(string? name)
    {
        if (!IsValidLabName(name))
        {
            throw new LabConfigurationException($"'{name}' is not a valid lab name: use 1-{MaxNameLength} lowercase letters, digits and '-', starting with a letter and not ending with '-'.");
        }
    }

    /// <summary>The host name of host N: <c>cloudlet-N</c>.</summary>
    public static string HostName(int index) => "cloudlet-" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>Parses <c>cloudlet-N</c> back to N, or returns false.</summary>
    public static bool TryParseHostName(string? hostName, out int index) => TryParseNumbered(hostName, "cloudlet-", out index);

    /// <summary>The name of site S: <c>site-S</c> (<c>site-1</c> is the edge).</summary>
    public static string SiteName(int index) => "site-" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>Parses <c>site-S</c> back to S, or returns false.</summary>
    public static bool TryParseSiteName(string? siteName, out int index) => TryParseNumbered(siteName, "site-", out index);

    // PREFIX then a number from 1 without leading zeros (so every index has exactly one name).
    private static bool TryParseNumbered(string? name, string prefix, out int index)
    {
        index = 0;
        return name is not null && name.StartsWith(prefix, StringComparison.Ordinal) &&
               name.Length > prefix.Length && name[prefix.Length] != '0' && name[prefix.Length..].All(char.IsAsciiDigit) &&
               int.TryParse(name.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out index);
    }

    /// <summary>The namespace of site S: the edge's (<c>NAME-edge</c>) for S = 1, <c>NAME-sS</c> otherwise.</summary>
    public static string SiteNamespace(string lab, int index) =>
        index == 1 ? EdgeNamespace(lab) : lab + "-s" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The switch port (inside the switch namespace) toward site S: <c>edge</c> for S = 1, <c>sS</c> otherwise.</summary>
    public static string SwitchPortForSite(int index) =>
        index == 1 ? SwitchPortForEdge : "s" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The guest (libvirt domain) name of guest I: <c>guest-I</c>.</summary>
    public static string GuestName(int index) => "guest-" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The switch namespace: <c>NAME-sw</c>.</summary>
    public static string SwitchNamespace(string lab) => lab + "-sw";

    /// <summary>The edge namespace: <c>NAME-edge</c>.</summary>
    public static string EdgeNamespace(string lab) => lab + "-edge";

    /// <summary>The namespace of host N: <c>NAME-hN</c>.</summary>
    public static string HostNamespace(string lab, int index) => lab + "-h" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>Every namespace name a lab of this name may have made, in teardown order (hosts, sites 2..8, edge, switch).</summary>
    public static IReadOnlyList<string> AllNamespaces(string lab) =>
        [.. Enumerable.Range(1, MaxHosts).Select(i => HostNamespace(lab, i)), .. Enumerable.Range(2, MaxSites - 1).Select(s => SiteNamespace(lab, s)), EdgeNamespace(lab), SwitchNamespace(lab)];

    /// <summary>The switch port (inside the switch namespace) toward host N: <c>hN</c>.</summary>
    public static string SwitchPortForHost(int index) => "h" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The switch port (inside the switch namespace) toward the edge.</summary>
    public const string SwitchPortForEdge = "edge";
}

/// <summary>The addresses of a lab with subnet index K: 198.18.K.0/24.</summary>
/// <param name="Subnet">K, 1–254.</param>
public sealed record LabAddressPlan(int Subnet)
{
    /// <summary>The prefix length of the lab network.</summary>
    public const int PrefixLength = 24;

    /// <summary>Validates K.</summary>
    public int Subnet { get; } = Subnet is >= LabNaming.MinSubnet and <= LabNaming.MaxSubnet
        ? Subnet
        : throw new ArgumentOutOfRangeException(nameof(Subnet), Subnet, $"The subnet index must be {LabNaming.MinSubnet}-{LabNaming.MaxSubnet}.");

    /// <summary>The lab network, <c>198.18.K.0</c>.</summary>
    public IPAddress Network => Address(0);

    /// <summary>The edge's address, <c>198.18.K.1</c>.</summary>
    public IPAddress Edge => Address(1);

    /// <summary>The prefix length of the subnet of each site after the first (<c>/28</c>: 14 addresses, one used).</summary>
    public const int SitePrefixLength = 28;

    /// <summary>The hosts' subnet as a route takes it: <c>198.18.K.0/24</c> (the sites after the first route it on-link).</summary>
    public string HostsNetwork => WithPrefix(Network);

    /// <summary>
    /// The subnets of the sites after the first, as one route takes them: <c>198.19.K.0/24</c> (hosts and
    /// guests route it on-link when the lab has more than one site).
    /// </summary>
    public string SitesNetwork => string.Create(CultureInfo.InvariantCulture, $"198.19.{Subnet}.0/{PrefixLength}");

    /// <summary>Site S's address: the edge's (<c>198.18.K.1</c>) for S = 1, <c>198.19.K.(16(S−1)+1)</c> otherwise.</summary>
    public IPAddress Site(int index) => index switch
    {
        1 => Edge,
        >= 2 and <= LabNaming.MaxSites => new([198, 19, (byte)Subnet, (byte)((16 * (index - 1)) + 1)]),
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, $"Site indexes are 1-{LabNaming.MaxSites}."),
    };

    /// <summary>Site S's address with its prefix, as <c>ip addr add</c> takes it (<c>/24</c> for the edge, <c>/28</c> otherwise).</summary>
    public string SiteWithPrefix(int index) =>
        index == 1 ? WithPrefix(Edge) : string.Create(CultureInfo.InvariantCulture, $"{Site(index)}/{SitePrefixLength}");

    /// <summary>Host N's address, <c>198.18.K.(10+N)</c>.</summary>
    public IPAddress Host(int index) => index is >= 1 and <= LabNaming.MaxHosts
        ? Address(10 + index)
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"Host indexes are 1-{LabNaming.MaxHosts}.");

    /// <summary>Guest I's address, <c>198.18.K.(100+I)</c>.</summary>
    public IPAddress Guest(int index) => index is >= 1 and <= LabNaming.MaxGuests
        ? Address(100 + index)
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"Guest indexes are 1-{LabNaming.MaxGuests}.");

    /// <summary>Guest I's MAC, <c>52:54:00:12:KK:II</c> (hex; the QEMU prefix, unique per lab and guest).</summary>
    public string GuestMac(int index) => index is >= 1 and <= LabNaming.MaxGuests
        ? string.Create(CultureInfo.InvariantCulture, $"52:54:00:12:{Subnet:x2}:{index:x2}")
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"Guest indexes are 1-{LabNaming.MaxGuests}.");

    /// <summary>
    /// Host N's bridge MAC, <c>02:54:00:13:KK:NN</c> (hex; locally administered). Set explicitly because
    /// a Linux bridge with a kernel-chosen address takes the lowest MAC of its ports: when libvirt adds
    /// a guest's tap (<c>fe:54:00:12:KK:II</c>) and the uplink's random MAC is higher (about 1 host in
    /// 100), the host's own address moves to the tap's MAC, which the source host's bridge holds as its
    /// own and drops. Every migration into that host then stalls at 0 bytes (seen in CI as "client
    /// socket is closed" after the progress timeout).
    /// </summary>
    public string HostBridgeMac(int index) => index is >= 1 and <= LabNaming.MaxHosts
        ? string.Create(CultureInfo.InvariantCulture, $"02:54:00:13:{Subnet:x2}:{index:x2}")
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"Host indexes are 1-{LabNaming.MaxHosts}.");

    /// <summary>An address with its prefix, as <c>ip addr add</c> takes it.</summary>
    public static string WithPrefix(IPAddress address) => $"{address}/{PrefixLength}";

    private IPAddress Address(int last) => new([198, 18, (byte)Subnet, (byte)last]);
}
