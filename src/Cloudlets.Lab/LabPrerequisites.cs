using System.Runtime.Versioning;
using System.Text;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Processes;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab;

/// <summary>One thing the lab needs that is missing, and how to get it.</summary>
/// <param name="What">What is missing (for example <c>program libvirtd</c>).</param>
/// <param name="Fix">How to get it (for example <c>apt-get install libvirt-daemon</c>).</param>
public sealed record LabPrerequisite(string What, string Fix);

/// <summary>Checks, before anything is created, that this machine can run a lab. Installs nothing.</summary>
[SupportedOSPlatform("linux")]
public static class LabPrerequisites
{
    /// <summary>The programs the lab runs, with the Debian package that provides each.</summary>
    internal static readonly IReadOnlyList<(string Program, string Package)> Programs =
    [
        ("libvirtd", "libvirt-daemon libvirt-daemon-driver-qemu"),
        ("virtlogd", "libvirt-daemon"),
        ("virsh", "libvirt-clients"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("dpkg-deb", "dpkg"),
    ];

    /// <summary>
    /// The programs an <see cref="LabTransport.Ssh"/> lab runs as well: the hosts' SSH servers, the key maker, and
    /// the helper the SSH session runs on the host to reach libvirtd's socket (libvirt's SSH transports run
    /// <c>virt-ssh-helper</c> when the host has it, <c>nc</c> otherwise).
    /// </summary>
    internal static readonly IReadOnlyList<(string Program, string Package)> SshPrograms =
    [
        ("sshd", "openssh-server"),
        ("ssh-keygen", "openssh-client"),
        ("virt-ssh-helper", "libvirt-daemon"),
    ];

    /// <summary>
    /// Finds a program the way the lab runs it (<see cref="CommandPath"/>: a fixed search path, never the
    /// current directory or the inherited PATH); null when absent.
    /// </summary>
    public static string? FindProgram(string program)
    {
        ArgumentException.ThrowIfNullOrEmpty(program);
        try
        {
            return CommandPath.Resolve(program);
        }
        catch (CommandNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Everything missing on this machine for a lab whose guest image cache is <paramref name="cacheFolder"/>; empty when ready.</summary>
    public static IReadOnlyList<LabPrerequisite> FindMissing(string? cacheFolder = null) => FindMissing(cacheFolder, LabTransport.Tcp);

    /// <summary>
    /// Everything missing on this machine for a lab whose guest image cache is <paramref name="cacheFolder"/> and
    /// whose daemons are reached over <paramref name="transport"/>; empty when ready.
    /// </summary>
    public static IReadOnlyList<LabPrerequisite> FindMissing(string? cacheFolder, LabTransport transport)
    {
        var missing = new List<LabPrerequisite>();
        if (!OperatingSystem.IsLinux())
        {
            missing.Add(new("Linux", "The lab needs a Linux machine (network namespaces, libvirt, QEMU)."));
            return missing;
        }

        if (!LabProcess.IsRoot)
        {
            missing.Add(new("root", "Run as root (the lab creates network namespaces and starts libvirtd)."));
        }

        IReadOnlyList<(string Program, string Package)> programs = transport switch
        {
            LabTransport.Ssh => [.. Programs, .. SshPrograms],
            LabTransport.TlsSasl => [.. Programs, ("saslpasswd2", "sasl2-bin")],
            _ => Programs,
        };
        foreach (var (program, package) in programs)
        {
            if (FindProgram(program) is null)
            {
                missing.Add(new($"program {program}", $"apt-get install {package}"));
            }
        }

        if (transport == LabTransport.TlsSasl && !HasScramPlugin())
        {
            missing.Add(new("cyrus-sasl's SCRAM plugin (libscram.so)", "apt-get install libsasl2-modules"));
        }

        if (!File.Exists(GuestImage.BusyboxPath) || !GuestImage.IsStaticElf(GuestImage.BusyboxPath))
        {
            missing.Add(new($"a static busybox at {GuestImage.BusyboxPath}", "apt-get install busybox-static"));
        }

        if (!UserExists("libvirt-qemu"))
        {
            missing.Add(new("user libvirt-qemu (libvirtd refuses to start without it)",
                "groupadd -f kvm; groupadd -f libvirt-qemu; useradd -r -g libvirt-qemu -G kvm -s /usr/sbin/nologin libvirt-qemu"));
        }

        if (!File.Exists("/proc/self/ns/net") || !File.Exists("/proc/self/ns/mnt") || !File.Exists("/proc/self/ns/uts"))
        {
            missing.Add(new("kernel namespaces (net, mount, uts)", "Use a kernel built with CONFIG_NET_NS, CONFIG_UTS_NS (any Debian kernel)."));
        }

        if (!File.Exists("/dev/net/tun"))
        {
            missing.Add(new("kernel feature tun (/dev/net/tun), for the guests' network taps", "modprobe tun (CONFIG_TUN)"));
        }

        // Bridges and veth pairs are probed in a throwaway network namespace that ends with the probe.
        if (LabProcess.IsRoot && FindProgram("unshare") is { } unshare && FindProgram("ip") is { } ip)
        {
            if (!Probe(unshare, ["--net", "--", ip, "link", "add", "probe0", "type", "bridge"]))
            {
                missing.Add(new("kernel feature bridge", "modprobe bridge (CONFIG_BRIDGE)"));
            }

            if (!Probe(unshare, ["--net", "--", ip, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"]))
            {
                missing.Add(new("kernel feature veth", "modprobe veth (CONFIG_VETH)"));
            }
        }

        if (GuestImage.FindKernelPackage(cacheFolder ?? GuestImage.DefaultCacheFolder) is null)
        {
            var folder = cacheFolder ?? GuestImage.DefaultCacheFolder;
            missing.Add(new($"the guest kernel package in {folder}",
                $"mkdir -p {folder} && cd {folder} && apt-get download $(apt-cache depends linux-image-cloud-amd64 | sed -n 's/.*Depends: \\(linux-image-[0-9].*\\)/\\1/p' | head -n 1)"));
        }

        return missing;
    }

    // cyrus-sasl's plugin folder: /usr/lib/sasl2, or /usr/lib/<multiarch triplet>/sasl2 on Debian.
    private static bool HasScramPlugin() =>
        Directory.Exists("/usr/lib") &&
        Directory.EnumerateDirectories("/usr/lib").Prepend("/usr/lib")
            .Any(d => File.Exists(Path.Combine(d, "sasl2", "libscram.so.2")) || File.Exists(Path.Combine(d, "sasl2", "libscram.so")));

    /// <summary>Throws <see cref="LabPrerequisiteException"/> naming everything missing.</summary>
    public static void EnsureAvailable(string? cacheFolder = null) => EnsureAvailable(cacheFolder, LabTransport.Tcp);

    /// <summary>Throws <see cref="LabPrerequisiteException"/> naming everything missing for a lab over <paramref name="transport"/>.</summary>
    public static void EnsureAvailable(string? cacheFolder, LabTransport transport)
    {
        var missing = FindMissing(cacheFolder, transport);
        if (missing.Count > 0)
        {
            throw new LabPrerequisiteException(missing);
        }
    }

    /// <summary>One message naming everything missing and how to get it.</summary>
    public static string Describe(IReadOnlyList<LabPrerequisite> missing)
    {
        ArgumentNullException.ThrowIfNull(missing);
        if (missing.Count == 0)
        {
            return "Nothing is missing.";
        }

        var sb = new StringBuilder("The cloudlet lab cannot start; missing:");
        foreach (var m in missing)
        {
            sb.AppendLine().Append("  - ").Append(m.What).Append(": ").Append(m.Fix);
        }

        return sb.ToString();
    }

    private static bool UserExists(string user)
    {
        try
        {
            return File.ReadLines("/etc/passwd").Any(l => l.StartsWith(user + ":", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool Probe(string program, string[] arguments)
    {
        // Callers pass paths from FindProgram; resolving again refuses anything else.
        var psi = new System.Diagnostics.ProcessStartInfo(CommandPath.Resolve(program))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["PATH"] = CommandPath.SearchPathVariable;
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        try
        {
            using var process = System.Diagnostics.Process.Start(psi)!;
            _ = process.StandardOutput.ReadToEnd();
            _ = process.StandardError.ReadToEnd();
            return process.WaitForExit(10_000) && process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
