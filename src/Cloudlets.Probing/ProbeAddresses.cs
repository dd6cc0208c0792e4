using System.Net;
using System.Net.Sockets;
using Cloudlets.Core.Probing;

namespace Cloudlets.Probing;

/// <summary>
/// The addresses no prober of this package measures: one probe must reach one host. The unspecified
/// address (Linux sends to the local host instead), broadcast and multicast (many hosts answer, or
/// the kernel refuses without SO_BROADCAST) are refused before anything is sent.
/// </summary>
internal static class ProbeAddresses
{
    /// <summary>Throws unless <paramref name="target"/> names one unicast host.</summary>
    /// <exception cref="ArgumentException">The target has no address, or one that does not name one host.</exception>
    public static IPAddress CheckUnicast(ProbeTarget target, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(target, parameterName);
        var address = target.Address ?? throw new ArgumentException($"Target '{target.Name}' has no address.", parameterName);
        var why = address switch
        {
            _ when address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) => "the unspecified address (Linux would send to this host instead)",
            _ when address.Equals(IPAddress.Broadcast) => "the broadcast address",
            { AddressFamily: AddressFamily.InterNetwork } when (address.GetAddressBytes()[0] & 0xF0) == 0xE0 => "a multicast address",
            { IsIPv6Multicast: true } => "a multicast address",
            _ => null,
        };
        return why is null ? address : throw new ArgumentException($"Target '{target.Name}' is {why} ({address}); a probe measures one host.", parameterName);
    }
}
