using System.Globalization;
using System.Text;

namespace Cloudlets.Netem;

/// <summary>
/// Kernel names derived from an owner: chain names, NFQUEUE numbers, tc handles, IFB devices.
/// Derived (not random) so that a new process finds a crashed process's leftovers.
/// </summary>
internal static class OwnerNames
{
    /// <summary>The prefix of every ownership comment.</summary>
    public const string CommentPrefix = "cloudlets-netem:";

    /// <summary>Queues per owner and namespace.</summary>
    public const int QueuesPerOwner = 64;

    /// <summary>Leaf handles per owner and device (tc).</summary>
    public const int HandlesPerOwner = 16;

    public static string EgressChain(string owner) => $"NETEM_{owner}_OUT";

    public static string IngressChain(string owner) => $"NETEM_{owner}_IN";

    public static string Chain(string owner, Core.Shaping.ShapingDirection direction) =>
        direction == Core.Shaping.ShapingDirection.Egress ? EgressChain(owner) : IngressChain(owner);

    /// <summary>The first NFQUEUE number of the owner (2048 … 59584, steps of 64).</summary>
    public static int QueueBase(string owner) => 2048 + (int)(Fnv1a(owner) % 900) * QueuesPerOwner;

    /// <summary>The owner's root qdisc major handle (0x4000 … 0x6ff0, steps of 16); leaves use the next 15.</summary>
    public static int HandleBase(string owner) => 0x4000 + (int)(Fnv1a(owner) % 0x300) * HandlesPerOwner;

    /// <summary>The IFB device the owner uses for ingress on <paramref name="interfaceName"/> (11 characters).</summary>
    public static string IfbDevice(string owner, string interfaceName) =>
        "ifb" + Fnv1a(owner + "/" + interfaceName).ToString("x8", CultureInfo.InvariantCulture);

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
