namespace Cloudlets.Core.Hypervisors;

/// <summary>
/// What it takes to create a VM (what virt-install did in the original demonstration):
/// a name, memory, vCPUs, how it boots, and an optional bridged NIC.
/// </summary>
public sealed record VmSpec
{
    /// <summary>The most memory a spec may ask for: 16 TiB, in MiB.</summary>
    public const int MaxMemoryMiB = 16 << 20;

    /// <summary>The most vCPUs a spec may ask for: 255, the limit of QEMU's pc machine.</summary>
    public const int MaxVCpus = 255;

    /// <summary>The VM name: 1 to 64 characters of letters, digits, '-', '_' and '.', starting with a letter or digit.</summary>
    public required string Name { get; init; }

    /// <summary>Memory in MiB, 1 to <see cref="MaxMemoryMiB"/>. The default is 256 MiB.</summary>
    public int MemoryMiB { get; init; } = 256;

    /// <summary>Virtual CPUs, 1 to <see cref="MaxVCpus"/>. The default is 1.</summary>
    public int VCpus { get; init; } = 1;

    /// <summary>How the VM boots: a kernel and initrd, or a disk image.</summary>
    public required VmBoot Boot { get; init; }

    /// <summary>A NIC bridged onto the named host bridge, or <see langword="null"/> for none.</summary>
    public BridgedNic? Nic { get; init; }
}

/// <summary>How a VM boots.</summary>
public abstract record VmBoot;

/// <summary>Direct kernel boot: a kernel image, an initrd and a command line, all paths on the host.</summary>
/// <param name="KernelPath">The kernel image path on the host (absolute, at most 4095 characters, no control characters).</param>
/// <param name="InitrdPath">The initrd path on the host (as the kernel's), or <see langword="null"/>.</param>
/// <param name="CommandLine">The kernel command line (at most 2047 characters, no control characters; empty is allowed).</param>
public sealed record KernelBoot(string KernelPath, string? InitrdPath, string CommandLine) : VmBoot;

/// <summary>Boot from a disk image on the host.</summary>
/// <param name="ImagePath">The disk image path on the host.</param>
/// <param name="Format">The image format (<c>qcow2</c> or <c>raw</c>).</param>
public sealed record DiskBoot(string ImagePath, string Format = "qcow2") : VmBoot;

/// <summary>A virtio NIC bridged onto a host bridge.</summary>
/// <param name="Bridge">The host bridge name.</param>
/// <param name="MacAddress">A fixed MAC address (<c>52:54:00:xx:xx:xx</c>), or <see langword="null"/> for one chosen by the host.</param>
public sealed record BridgedNic(string Bridge, string? MacAddress = null);
