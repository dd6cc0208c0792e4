using Cloudlets.Probing.Commands;
using Cloudlets.TestUtils;

namespace Cloudlets.Netem.Tests.Lab;

/// <summary>
/// The lab gate for shaping tests. They need less than a cloudlet lab (no libvirt, no guest image):
/// root, network namespaces and the ip, tc, iptables and fping programs; the one gate
/// (<see cref="LabGate.RequireRoot"/>) fails when CI=true and ignores with the reason otherwise.
/// </summary>
internal static class NetemLabGuard
{
    public static void Require() => LabGate.RequireRoot("Shaping tests", "ip", "tc", "iptables", "iptables-save", "fping");

    public static async Task<CommandResult> RunAsync(params string[] argv)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of(argv[0], argv[1..]));
        return r;
    }
}
