using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab.Guests;

/// <summary>The two files a lab guest boots from.</summary>
/// <param name="KernelPath">The Debian cloud kernel (vmlinuz).</param>
/// <param name="InitrdPath">The busybox initramfs (gzip-compressed newc cpio).</param>
public sealed record GuestImageFiles(string KernelPath, string InitrdPath);

/// <summary>
/// The lab's guest image: the Debian cloud kernel taken out of its .deb in the cache folder, and an
/// initramfs of busybox-static, the virtio modules and an /init that serves a boot id and a counter.
/// Built once per kernel package and init script, then reused from the cache.
/// </summary>
public static class GuestImage
{
    /// <summary>The default cache folder. It must not lie under /run (each host bind-mounts its own /run).</summary>
    public const string DefaultCacheFolder = "/var/cache/cloudlets-lab";

    /// <summary>Where busybox-static installs busybox.</summary>
    public const string BusyboxPath = "/bin/busybox";

    /// <summary>The guest's TCP service port: it answers one line, <c>boot=ID counter=N</c>, and closes.</summary>
    public const int ServicePort = 7070;

    /// <summary>The virtio modules the guest loads, in load order (they are not built into the cloud kernel).</summary>
    public static readonly IReadOnlyList<string> Modules =
        ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "failover", "net_failover", "virtio_net"];

    /// <summary>The versioned kernel package in the cache (<c>linux-image-X-cloud-amd64_*.deb</c>), the newest by name; null when absent.</summary>
    public static string? FindKernelPackage(string cacheFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(cacheFolder);
        return Directory.Exists(cacheFolder)
            ? Directory.EnumerateFiles(cacheFolder, "linux-image-*-cloud-amd64_*_amd64.deb")
                .Where(f => char.IsAsciiDigit(Path.GetFileName(f)["linux-image-".Length]))
                .Order(StringComparer.Ordinal)
                .LastOrDefault()
            : null;
    }

    /// <summary>Whether an ELF file has no program interpreter (is statically linked).</summary>
    public static bool IsStaticElf(string path)
    {
        try
        {
            var bytes = File.ReadAllBytes(path);
            if (bytes.Length < 64 || bytes[0] != 0x7F || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F' || bytes[4] != 2)
            {
                return false;
            }

            var phoff = BitConverter.ToInt64(bytes, 0x20);
            var phentsize = BitConverter.ToUInt16(bytes, 0x36);
            var phnum = BitConverter.ToUInt16(bytes, 0x38);
            for (var i = 0; i < phnum; i++)
            {
                var at = phoff + ((long)i * phentsize);
                if (at + 4 > bytes.Length)
                {
                    return false;
                }

                const uint ptInterp = 3;
                if (BitConverter.ToUInt32(bytes, (int)at) == ptInterp)
                {
                    return false;
                }
            }

            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The init script shipped with the library.</summary>
    internal static string InitScript => ReadAsset("guest-init.sh");

    internal static string ReadAsset(string name)
    {
        using var stream = typeof(GuestImage).Assembly.GetManifestResourceStream("Cloudlets.Lab.Assets." + name)
            ?? throw new InvalidOperationException($"The asset {name} is missing from the assembly.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// Returns the cached kernel and initramfs, building them from the kernel package and busybox
    /// when they are not cached yet. Several processes may call this at once: each builds into a
    /// private folder and renames it into place.
    /// </summary>
    public static async Task<GuestImageFiles> EnsureAsync(string cacheFolder, ICommandRunner runner, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        var package = FindKernelPackage(cacheFolder)
            ?? throw new LabPrerequisiteException([new LabPrerequisite($"the guest kernel package in {cacheFolder}", "apt-get download the versioned dependency of linux-image-cloud-amd64 into that folder")]);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(InitScript + string.Join(',', Modules))))[..12];
        var folder = Path.Combine(cacheFolder, "guest-" + Path.GetFileNameWithoutExtension(package) + "-" + key);
        var files = new GuestImageFiles(Path.Combine(folder, "vmlinuz"), Path.Combine(folder, "initrd.cpio.gz"));
        if (File.Exists(files.KernelPath) && File.Exists(files.InitrdPath))
        {
            return files;
        }

        var work = Path.Combine(cacheFolder, ".build-" + Guid.NewGuid().ToString("N"));
        try
        {
            var extracted = Path.Combine(work, "deb");
            Directory.CreateDirectory(extracted);
            await runner.RunCheckedAsync(CommandLine.Of("dpkg-deb", "-x", package, extracted), cancellationToken).ConfigureAwait(false);
            var kernel = Directory.EnumerateFiles(Path.Combine(extracted, "boot"), "vmlinuz-*").FirstOrDefault()
                ?? throw new LabException($"{package} holds no boot/vmlinuz-*.");
            var output = Path.Combine(work, "out");
            Directory.CreateDirectory(output);
            File.Copy(kernel, Path.Combine(output, "vmlinuz"));
            await using (var file = File.Create(Path.Combine(output, "initrd.cpio.gz")))
            await using (var gzip = new GZipStream(file, CompressionLevel.Optimal))
            {
                WriteInitramfs(gzip, extracted);
            }

            try
            {
                Directory.Move(output, folder);
            }
            catch (IOException) when (File.Exists(files.InitrdPath))
            {
                // Another process finished the same image first; theirs is identical.
            }

            return files;
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    private static void WriteInitramfs(Stream output, string extractedPackage)
    {
        var cpio = new CpioWriter(output);
        foreach (var dir in new[] { "bin", "dev", "proc", "sys", "run", "tmp", "lib", "lib/modules" })
        {
            cpio.AddDirectory(dir);
        }

        cpio.AddCharDevice("dev/console", 0x180, 5, 1);
        cpio.AddCharDevice("dev/null", 0x1B6, 1, 3);
        cpio.AddFile("bin/busybox", File.ReadAllBytes(BusyboxPath), 0x1ED);
        cpio.AddFile("init", Encoding.UTF8.GetBytes(InitScript), 0x1ED);
        cpio.AddFile("bin/guest-state", Encoding.UTF8.GetBytes("#!/bin/sh\ncat /run/state\n"), 0x1ED);
        var moduleRoot = Path.Combine(extractedPackage, "lib", "modules");
        var all = Directory.Exists(moduleRoot) ? Directory.EnumerateFiles(moduleRoot, "*.ko*", SearchOption.AllDirectories).ToList() : [];
        foreach (var module in Modules)
        {
            var plain = all.FirstOrDefault(f => Path.GetFileName(f) == module + ".ko");
            var gz = all.FirstOrDefault(f => Path.GetFileName(f) == module + ".ko.gz");
            byte[] bytes;
            if (plain is not null)
            {
                bytes = File.ReadAllBytes(plain);
            }
            else if (gz is not null)
            {
                using var source = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress);
                using var buffer = new MemoryStream();
                source.CopyTo(buffer);
                bytes = buffer.ToArray();
            }
            else
            {
                var other = all.FirstOrDefault(f => Path.GetFileName(f).StartsWith(module + ".ko.", StringComparison.Ordinal));
                throw new LabException(other is null
                    ? $"The kernel package has no module {module}.ko."
                    : $"The kernel package's module {Path.GetFileName(other)} is compressed in a format the lab does not unpack (it reads .ko and .ko.gz).");
            }

            cpio.AddFile("lib/modules/" + module + ".ko", bytes, 0x1A4);
        }

        cpio.AddFile("lib/modules/order", Encoding.UTF8.GetBytes(string.Join('\n', Modules) + "\n"), 0x1A4);
        cpio.Finish();
    }
}

/// <summary>The libvirt domain XML of a lab guest.</summary>
internal static class GuestDomain
{
    /// <summary>The guest's memory. 256 MiB is what a busybox guest with the cloud kernel needs.</summary>
    public const int MemoryMiB = 256;

    /// <param name="name">The domain name.</param>
    /// <param name="image">The kernel and initramfs.</param>
    /// <param name="addressWithPrefix">The guest's address and prefix.</param>
    /// <param name="mac">Its MAC.</param>
    /// <param name="bridge">The host bridge its tap joins.</param>
    /// <param name="servicePort">Its state service's port.</param>
    /// <param name="onLinkRoute">A network the guest routes on-link besides its own (the lab's other sites), or null.</param>
    /// <param name="dirtyRateMiBps">MiB of its memory the guest rewrites every second (0: none).</param>
    public static string Xml(string name, GuestImageFiles image, string addressWithPrefix, string mac, string bridge, int servicePort, string? onLinkRoute = null, int dirtyRateMiBps = 0)
    {
        var cmdline = $"console=ttyS0 panic=-1 quiet cloudlets.addr={addressWithPrefix} cloudlets.port={servicePort}"
            + (onLinkRoute is null ? "" : " cloudlets.route=" + onLinkRoute)
            + (dirtyRateMiBps > 0 ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $" cloudlets.dirty={dirtyRateMiBps}") : "");
        var domain = new System.Xml.Linq.XElement("domain",
            new System.Xml.Linq.XAttribute("type", "qemu"),
            new System.Xml.Linq.XElement("name", name),
            new System.Xml.Linq.XElement("memory", new System.Xml.Linq.XAttribute("unit", "MiB"), MemoryMiB),
            new System.Xml.Linq.XElement("vcpu", 1),
            new System.Xml.Linq.XElement("os",
                new System.Xml.Linq.XElement("type", new System.Xml.Linq.XAttribute("arch", "x86_64"), new System.Xml.Linq.XAttribute("machine", "pc"), "hvm"),
                new System.Xml.Linq.XElement("kernel", image.KernelPath),
                new System.Xml.Linq.XElement("initrd", image.InitrdPath),
                new System.Xml.Linq.XElement("cmdline", cmdline)),
            new System.Xml.Linq.XElement("on_poweroff", "destroy"),
            new System.Xml.Linq.XElement("on_reboot", "restart"),
            new System.Xml.Linq.XElement("on_crash", "destroy"),
            new System.Xml.Linq.XElement("devices",
                new System.Xml.Linq.XElement("emulator", "/usr/bin/qemu-system-x86_64"),
                new System.Xml.Linq.XElement("interface", new System.Xml.Linq.XAttribute("type", "bridge"),
                    new System.Xml.Linq.XElement("source", new System.Xml.Linq.XAttribute("bridge", bridge)),
                    new System.Xml.Linq.XElement("mac", new System.Xml.Linq.XAttribute("address", mac)),
                    new System.Xml.Linq.XElement("model", new System.Xml.Linq.XAttribute("type", "virtio"))),
                new System.Xml.Linq.XElement("serial", new System.Xml.Linq.XAttribute("type", "pty"),
                    new System.Xml.Linq.XElement("log", new System.Xml.Linq.XAttribute("file", $"/var/log/libvirt/qemu/{name}.console.log"), new System.Xml.Linq.XAttribute("append", "on"))),
                new System.Xml.Linq.XElement("console", new System.Xml.Linq.XAttribute("type", "pty")),
                new System.Xml.Linq.XElement("memballoon", new System.Xml.Linq.XAttribute("model", "none"))));
        return domain.ToString();
    }
}
