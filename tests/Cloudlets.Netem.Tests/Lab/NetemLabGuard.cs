using Cloudlets.Core.Commands;
using Cloudlets.TestUtils;

namespace Cloudlets.Netem.Tests.Lab;

/// <summary>
/// The lab gate for shaping tests. They need less than a cloudlet lab (no libvirt, no guest image):
/// root, network namespaces and the ip, tc, iptables and ping programs. Same policy as
/// <see cref="LabGate"/>: fail when CI=true, ignore with the reason otherwise.
/// </summary>
internal static class NetemLabGuard
{
    public static void Require()
    {
        var reason = MissingReason();
        if (reason is null)
        {
            return;
        }

        if (LabGate.IsCi)
        {
            Assert.Fail("Lab tier is mandatory with CI=true. " + reason);
        }
        else
        {
            Assert.Ignore("Lab tier skipped (set CI=true to make this a failure). " + reason);
        }
    }

    private static string? MissingReason()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "Shaping tests need Linux.";
        }

        if (Environment.UserName != "root")
        {
            return "Shaping tests need root (network namespaces, iptables).";
        }

        foreach (var program in new[] { "ip", "tc", "iptables", "iptables-save", "fping" })
        {
            var found = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
                .Split(':').Append("/usr/sbin").Append("/sbin").Any(d => File.Exists(Path.Combine(d, program)));
            if (!found)
            {
                return $"The program '{program}' is missing (apt-get install iproute2 iptables fping).";
            }
        }

        return null;
    }

    public static async Task<CommandResult> RunAsync(params string[] argv)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of(argv[0], argv[1..]));
        return r;
    }
}
