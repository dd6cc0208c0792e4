using System.Globalization;
using System.Text;

namespace Cloudlets.Netem;

/// <summary>
/// Kernel names derived from an owner: chain names (the owner in full, so two owners never share
/// one), the preferred tc handle slot, IFB devices. tc handles and NFQUEUE numbers are short, so they
/// are allocated, not derived: a handle is recorded on the shaped host
/// (<see cref="Tc.TcHandleRecord"/>) and a queue number in the ownership comment of the rule that uses it.
/// </summary>
internal static class OwnerNames
{
    /// <summary>The prefix of every ownership comment.</summary>
    public const string CommentPrefix = "cloudlets-netem:";

    /// <summary>Leaf handles per owner and device (tc): the root major and the next 15.</summary>
    public const int HandlesPerOwner = 16;

    /// <summary>The first tc major handle of the reserved range.</summary>
    public const int FirstHandle = 0x4000;

    /// <summary>The number of handle slots in the reserved range (0x4000 … 0x6ff0, steps of 16).</summary>
    public const int HandleSlots = 0x300;

    /// <summary>The first NFQUEUE number the NFQUEUE backend allocates.</summary>
    public const int FirstQueue = 2048;

    /// <summary>The last NFQUEUE number (queue numbers are 16 bits).</summary>
    public const int LastQueue = 65535;

    public static string EgressChain(string owner) => $"NETEM_{owner}_OUT";

    public static string IngressChain(string owner) => $"NETEM_{owner}_IN";

    public static string Chain(string owner, Core.Shaping.ShapingDirection direction) =>
        direction == Core.Shaping.ShapingDirection.Egress ? EgressChain(owner) : IngressChain(owner);

    /// <summary>
    /// The handle slot tried first for a new owner (stable, so a re-created owner tends to get the same
    /// handle); taken slots are skipped (see <see cref="Tc.TcPlanner"/>). Never proof of ownership.
    /// </summary>
    public static int PreferredHandle(string owner) => FirstHandle + (int)(Fnv1a(owner) % HandleSlots) * HandlesPerOwner;

    /// <summary>
    /// The IFB device the owner with root handle <paramref name="handle"/> uses for ingress on
    /// <paramref name="interfaceName"/>: <c>ifb</c>, the handle (4 hex digits) and a hash of the interface
    /// (15 characters). Handles are unique per host, so two owners never share an IFB device.
    /// </summary>
    public static string IfbDevice(int handle, string interfaceName) =>
        "ifb" + Hex(handle) + Fnv1a(interfaceName).ToString("x8", CultureInfo.InvariantCulture);

    public static string Hex(int handle) => handle.ToString("x", CultureInfo.InvariantCulture);

    public static uint Fnv1a(string s)
    {
        var h = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            h = unchecked((h ^ b) * 16777619u);
        }

        return h;
    }
}
