using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt;

/// <summary>Turns a <see cref="VmSpec"/> into libvirt domain XML, after checking it.</summary>
public static partial class DomainXml
{
    // x86's COMMAND_LINE_SIZE is 2048 bytes including the terminating NUL.
    private const int MaxCommandLineLength = 2047;
    private const int MaxPathLength = 4095;

    /// <summary>
    /// Checks a spec and throws a <see cref="HypervisorException"/> of kind
    /// <see cref="HypervisorErrorKind.InvalidArgument"/> that says what is wrong.
    /// </summary>
    public static void Validate(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ValidateVmName(spec.Name);
        if (spec.MemoryMiB is < 1 or > VmSpec.MaxMemoryMiB)
        {
            throw Invalid($"VM '{spec.Name}': memory must be 1 MiB to {VmSpec.MaxMemoryMiB} MiB (16 TiB) (was {spec.MemoryMiB}).");
        }

        if (spec.VCpus is < 1 or > VmSpec.MaxVCpus)
        {
            throw Invalid($"VM '{spec.Name}': vCPUs must be 1 to {VmSpec.MaxVCpus} (the limit of QEMU's pc machine) (was {spec.VCpus}).");
        }

        switch (spec.Boot)
        {
            case KernelBoot k:
                RequireAbsolute(spec.Name, "kernel", k.KernelPath);
                if (k.InitrdPath is not null)
                {
                    RequireAbsolute(spec.Name, "initrd", k.InitrdPath);
                }

                if (k.CommandLine is null)
                {
                    throw Invalid($"VM '{spec.Name}': the kernel command line is required (empty is allowed).");
                }

                if (k.CommandLine.Length > MaxCommandLineLength || k.CommandLine.Any(char.IsControl))
                {
                    throw Invalid($"VM '{spec.Name}': the kernel command line must be at most {MaxCommandLineLength} characters without control characters.");
                }

                break;
            case DiskBoot d:
                RequireAbsolute(spec.Name, "disk image", d.ImagePath);
                if (d.Format is not ("qcow2" or "raw"))
                {
                    throw Invalid($"VM '{spec.Name}': disk format '{d.Format}' is not supported (qcow2 or raw).");
                }

                break;
            default:
                throw Invalid($"VM '{spec.Name}': a boot method (kernel or disk) is required.");
        }

        if (spec.Nic is { } nic)
        {
            if (string.IsNullOrEmpty(nic.Bridge) || nic.Bridge.Length > 15 || !nic.Bridge.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                throw Invalid($"VM '{spec.Name}': bridge name '{nic.Bridge}' is not a valid interface name.");
            }

            if (nic.MacAddress is not null && !MacPattern().IsMatch(nic.MacAddress))
            {
                throw Invalid($"VM '{spec.Name}': MAC address '{nic.MacAddress}' is not valid (xx:xx:xx:xx:xx:xx, unicast).");
            }
        }
    }

    /// <summary>Checks a VM name (1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit).</summary>
    public static void ValidateVmName(string? name)
    {
        // The first character is a letter or digit: a leading '-' reads as an option to virsh, and a
        // name of dots names a folder in libvirt's state paths.
        if (string.IsNullOrEmpty(name) || name.Length > 64 || !char.IsAsciiLetterOrDigit(name[0]) ||
            !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw Invalid($"VM name '{name}' is not valid: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit.");
        }
    }

    /// <summary>Builds the domain XML for a valid spec.</summary>
    /// <param name="spec">The VM.</param>
    /// <param name="domainType">The libvirt domain type: <c>kvm</c>, <c>qemu</c> (TCG) or <c>test</c> (see <see cref="LibvirtHostOptions.DomainType"/>).</param>
    public static string Build(VmSpec spec, string domainType = "kvm")
    {
        Validate(spec);
        if (string.IsNullOrEmpty(domainType) || !DomainTypePattern().IsMatch(domainType))
        {
            throw Invalid($"VM '{spec.Name}': domain type '{domainType}' is not valid (kvm, qemu, or test for the test driver).");
        }

        var isTest = domainType == "test";
        var type = isTest
            ? new XElement("type", "hvm")
            : new XElement("type", new XAttribute("arch", "x86_64"), new XAttribute("machine", "pc"), "hvm");
        var os = new XElement("os", type);
        var devices = new XElement("devices");
        switch (spec.Boot)
        {
            case KernelBoot k:
                os.Add(new XElement("kernel", k.KernelPath));
                if (k.InitrdPath is not null)
                {
                    os.Add(new XElement("initrd", k.InitrdPath));
                }

                os.Add(new XElement("cmdline", k.CommandLine));
                break;
            case DiskBoot d:
                os.Add(new XElement("boot", new XAttribute("dev", "hd")));
                devices.Add(new XElement(
                    "disk",
                    new XAttribute("type", "file"),
                    new XAttribute("device", "disk"),
                    new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", d.Format)),
                    new XElement("source", new XAttribute("file", d.ImagePath)),
                    new XElement("target", new XAttribute("dev", "vda"), new XAttribute("bus", "virtio"))));
                break;
        }

        if (spec.Nic is { } nic)
        {
            var iface = new XElement("interface", new XAttribute("type", "bridge"), new XElement("source", new XAttribute("bridge", nic.Bridge)));
            if (nic.MacAddress is not null)
            {
                iface.Add(new XElement("mac", new XAttribute("address", nic.MacAddress.ToLowerInvariant())));
            }

            iface.Add(new XElement("model", new XAttribute("type", "virtio")));
            devices.Add(iface);
        }

        if (!isTest)
        {
            devices.Add(new XElement("serial", new XAttribute("type", "pty")));
            devices.Add(new XElement("console", new XAttribute("type", "pty")));
            devices.Add(new XElement("memballoon", new XAttribute("model", "none")));
        }

        var domain = new XElement(
            "domain",
            new XAttribute("type", domainType),
            new XElement("name", spec.Name),
            new XElement("memory", new XAttribute("unit", "MiB"), spec.MemoryMiB.ToString(CultureInfo.InvariantCulture)),
            new XElement("vcpu", spec.VCpus.ToString(CultureInfo.InvariantCulture)),
            os,
            new XElement("on_poweroff", "destroy"),
            new XElement("on_reboot", "restart"),
            new XElement("on_crash", "destroy"),
            devices);
        return domain.ToString(SaveOptions.DisableFormatting);
    }

    private static void RequireAbsolute(string vm, string what, string? path)
    {
        if (string.IsNullOrEmpty(path) || !path.StartsWith('/'))
        {
            throw Invalid($"VM '{vm}': the {what} path must be an absolute path on the host (was '{path}').");
        }

        // Linux's PATH_MAX, and no control characters (XML cannot carry most of them, and a newline in a path is never meant).
        if (path.Length > MaxPathLength || path.Any(char.IsControl))
        {
            throw Invalid($"VM '{vm}': the {what} path must be at most {MaxPathLength} characters without control characters.");
        }
    }

    private static HypervisorException Invalid(string message) => new(HypervisorErrorKind.InvalidArgument, message);

    [GeneratedRegex("^[a-z][a-z0-9]{1,15}$", RegexOptions.CultureInvariant)]
    private static partial Regex DomainTypePattern();

    [GeneratedRegex("^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$", RegexOptions.CultureInvariant)]
    private static partial Regex MacPattern();
}
