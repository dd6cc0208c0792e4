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

    /// <summary>
    /// The traffic-control modules a netem-host guest loads besides <see cref="Modules"/> (their dependencies,
    /// read from each module's <c>depends=</c>, are loaded first): netem, HTB, the ingress qdisc, u32, IFB and mirred.
    /// </summary>
    public static readonly IReadOnlyList<string> NetemModules = ["sch_netem", "sch_htb", "sch_ingress", "cls_u32", "ifb", "act_mirred"];

    /// <summary>Where a netem-host guest has iproute2's <c>tc</c> (busybox's own applet stays at <c>/bin/tc</c>).</summary>
    public const string NetemTcPath = "/usr/sbin/tc";

    /// <summary>Where a netem-host guest has iproute2's <c>ip</c> (busybox's own applet stays at <c>/bin/ip</c>).</summary>
    public const string NetemIpPath = "/usr/sbin/ip";

    /// <summary>Where a netem-host guest has its SSH server, Dropbear.</summary>
    public const string DropbearPath = "/usr/sbin/dropbear";

    /// <summary>The netem-host guest's Dropbear host key (added per guest, see <see cref="WriteNetemCredentials"/>).</summary>
    public const string DropbearHostKeyPath = "/etc/dropbear/dropbear_ed25519_host_key";

    /// <summary>The netem-host guest's root authorized_keys (added per guest).</summary>
    public const string AuthorizedKeysPath = "/root/.ssh/authorized_keys";

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
    public static Task<GuestImageFiles> EnsureAsync(string cacheFolder, ICommandRunner runner, CancellationToken cancellationToken = default) =>
        EnsureAsync(cacheFolder, runner, netemHost: false, cancellationToken);

    /// <summary>
    /// As <see cref="EnsureAsync(string, ICommandRunner, CancellationToken)"/>; with <paramref name="netemHost"/>
    /// the image also carries <see cref="NetemModules"/>, iproute2's <c>tc</c> and <c>ip</c> (with their
    /// shared libraries, found by <c>ldd</c>, and tc's distribution tables) and Dropbear, all taken from the
    /// Debian packages installed on this machine. Keys are not in it: they are added per guest.
    /// </summary>
    public static async Task<GuestImageFiles> EnsureAsync(string cacheFolder, ICommandRunner runner, bool netemHost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        var package = FindKernelPackage(cacheFolder)
            ?? throw new LabPrerequisiteException([new LabPrerequisite($"the guest kernel package in {cacheFolder}", "apt-get download the versioned dependency of linux-image-cloud-amd64 into that folder")]);
        var extras = netemHost ? await NetemHostFilesAsync(runner, cancellationToken).ConfigureAwait(false) : [];
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(InitScript + string.Join(',', Modules)
            + (netemHost ? "|netem|" + string.Join(',', NetemModules) + "|" + string.Join(',', extras.Select(e => e.ImagePath + "=" + e.SourcePath)) : ""))))[..12];
        var folder = Path.Combine(cacheFolder, (netemHost ? "netem-guest-" : "guest-") + Path.GetFileNameWithoutExtension(package) + "-" + key);
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
                WriteInitramfs(gzip, extracted, netemHost, extras);
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

    /// <summary>A file of this machine copied into a netem-host image.</summary>
    private sealed record ImageFile(string SourcePath, string ImagePath, int Permissions);

    /// <summary>
    /// tc, ip (from <c>dpkg-query -L iproute2</c>), dropbear (from <c>dpkg-query -L dropbear-bin</c>), tc's
    /// distribution tables, and every shared library <c>ldd</c> names for the three programs, at the paths ldd gives.
    /// </summary>
    private static async Task<IReadOnlyList<ImageFile>> NetemHostFilesAsync(ICommandRunner runner, CancellationToken cancellationToken)
    {
        async Task<string[]> PackageFiles(string package)
        {
            var listed = await runner.RunAsync(CommandLine.Of("dpkg-query", "-L", package), cancellationToken).ConfigureAwait(false);
            return listed.Succeeded
                ? listed.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                : throw new LabPrerequisiteException([new LabPrerequisite($"the Debian package {package} (for the netem-host guest)", $"apt-get install {package}")]);
        }

        string Program(string[] files, string name, string package) =>
            files.FirstOrDefault(f => (f.EndsWith("/sbin/" + name, StringComparison.Ordinal) || f.EndsWith("/bin/" + name, StringComparison.Ordinal)) && File.Exists(f))
            ?? throw new LabException($"The package {package} lists no {name} program.");

        var iproute2 = await PackageFiles("iproute2").ConfigureAwait(false);
        var dropbear = await PackageFiles("dropbear-bin").ConfigureAwait(false);
        var programs = new List<ImageFile>
        {
            new(Program(iproute2, "tc", "iproute2"), NetemTcPath, 0x1ED),
            new(Program(iproute2, "ip", "iproute2"), NetemIpPath, 0x1ED),
            new(Program(dropbear, "dropbear", "dropbear-bin"), DropbearPath, 0x1ED),
        };
        var files = new List<ImageFile>(programs);
        files.AddRange(iproute2.Where(f => f.EndsWith(".dist", StringComparison.Ordinal) && f.Contains("/tc/", StringComparison.Ordinal) && File.Exists(f)).Select(f => new ImageFile(f, f, 0x1A4)));
        foreach (var program in programs)
        {
            var ldd = await runner.RunCheckedAsync(CommandLine.Of("ldd", program.SourcePath), cancellationToken).ConfigureAwait(false);
            foreach (var line in ldd.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"; the vDSO has no file.
                var arrow = line.IndexOf("=> ", StringComparison.Ordinal);
                var path = (arrow >= 0 ? line[(arrow + 3)..] : line).Split(' ')[0];
                if (path.StartsWith('/') && files.All(f => f.ImagePath != path))
                {
                    files.Add(new ImageFile(path, path, 0x1ED));
                }
            }
        }

        return files;
    }

    /// <summary>The module names a module file depends on (its <c>.modinfo</c> <c>depends=</c> entry).</summary>
    private static string[] ModuleDependencies(byte[] module)
    {
        var marker = "\0depends="u8;
        var at = module.AsSpan().IndexOf(marker);
        if (at < 0)
        {
            return [];
        }

        var rest = module.AsSpan(at + marker.Length);
        var end = rest.IndexOf((byte)0);
        var text = Encoding.ASCII.GetString(end < 0 ? rest : rest[..end]);
        return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static void WriteInitramfs(Stream output, string extractedPackage, bool netemHost, IReadOnlyList<ImageFile> extras)
    {
        var cpio = new CpioWriter(output);
        foreach (var dir in new[] { "bin", "dev", "proc", "sys", "run", "tmp", "lib", "lib/modules" })
        {
            cpio.AddDirectory(dir);
        }

        if (netemHost)
        {
            var dirs = new SortedSet<string>(StringComparer.Ordinal) { "etc", "etc/dropbear", "root", "root/.ssh", "usr", "usr/sbin" };
            foreach (var file in extras)
            {
                for (var parent = Path.GetDirectoryName(file.ImagePath.TrimStart('/')); !string.IsNullOrEmpty(parent); parent = Path.GetDirectoryName(parent))
                {
                    dirs.Add(parent);
                }
            }

            foreach (var dir in dirs.Where(d => d is not ("bin" or "lib")).OrderBy(d => d.Count(c => c == '/')).ThenBy(d => d, StringComparer.Ordinal))
            {
                cpio.AddDirectory(dir);
            }

            foreach (var file in extras)
            {
                cpio.AddFile(file.ImagePath.TrimStart('/'), File.ReadAllBytes(file.SourcePath), file.Permissions);
            }

            // Dropbear looks root up (glibc's files NSS, built into libc) and accepts only a shell that /etc/shells lists.
            cpio.AddFile("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"u8.ToArray(), 0x1A4);
            cpio.AddFile("etc/group", "root:x:0:\n"u8.ToArray(), 0x1A4);
            cpio.AddFile("etc/shells", "/bin/sh\n"u8.ToArray(), 0x1A4);
            cpio.AddFile("etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\n"u8.ToArray(), 0x1A4);
        }

        cpio.AddCharDevice("dev/console", 0x180, 5, 1);
        cpio.AddCharDevice("dev/null", 0x1B6, 1, 3);
        cpio.AddFile("bin/busybox", File.ReadAllBytes(BusyboxPath), 0x1ED);
        cpio.AddFile("init", Encoding.UTF8.GetBytes(InitScript), 0x1ED);
        cpio.AddFile("bin/guest-state", Encoding.UTF8.GetBytes("#!/bin/sh\ncat /run/state\n"), 0x1ED);
        var moduleRoot = Path.Combine(extractedPackage, "lib", "modules");
        var all = Directory.Exists(moduleRoot) ? Directory.EnumerateFiles(moduleRoot, "*.ko*", SearchOption.AllDirectories).ToList() : [];
        var order = new List<string>();
        var contents = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        void Load(string module, int depth)
        {
            if (contents.ContainsKey(module))
            {
                return;
            }

            if (depth > 16)
            {
                throw new LabException($"The module dependencies of {module} go deeper than 16.");
            }

            var bytes = ReadModule(all, module);
            contents[module] = bytes;
            foreach (var dependency in ModuleDependencies(bytes))
            {
                Load(dependency.Replace('-', '_'), depth + 1);
            }

            order.Add(module);   // after its dependencies
        }

        foreach (var module in netemHost ? Modules.Concat(NetemModules) : Modules)
        {
            Load(module, 0);
        }

        foreach (var module in order)
        {
            cpio.AddFile("lib/modules/" + module + ".ko", contents[module], 0x1A4);
        }

        cpio.AddFile("lib/modules/order", Encoding.UTF8.GetBytes(string.Join('\n', order) + "\n"), 0x1A4);
        cpio.Finish();
    }

    private static byte[] ReadModule(List<string> all, string module)
    {
        var plain = all.FirstOrDefault(f => Path.GetFileName(f).Replace('-', '_') == module + ".ko");
        var gz = all.FirstOrDefault(f => Path.GetFileName(f).Replace('-', '_') == module + ".ko.gz");
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

        return bytes;
    }

    /// <summary>
    /// Writes the per-guest part of a netem-host guest's initramfs: a second gzip-compressed cpio archive
    /// holding the Dropbear host key and root's authorized_keys. The kernel unpacks concatenated archives in
    /// order, so <c>cat image overlay</c> is the guest's initramfs and the cached image never holds a key.
    /// </summary>
    internal static void WriteNetemCredentials(Stream output, byte[] dropbearHostKey, string authorizedKeys)
    {
        using var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true);
        var cpio = new CpioWriter(gzip);
        cpio.AddFile(DropbearHostKeyPath.TrimStart('/'), dropbearHostKey, 0x180);
        cpio.AddFile(AuthorizedKeysPath.TrimStart('/'), Encoding.UTF8.GetBytes(authorizedKeys), 0x180);
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
    /// <param name="acpi">
    /// Whether the guest gets ACPI, and with it the HPET and the ACPI PM timer. Without them the guest kernel
    /// cannot calibrate its TSC under TCG and keeps time with jiffies (4 ms steps), which a netem host cannot
    /// afford: its delays would be released up to 4 ms early or late.
    /// </param>
    public static string Xml(string name, GuestImageFiles image, string addressWithPrefix, string mac, string bridge, int servicePort, string? onLinkRoute = null, int dirtyRateMiBps = 0, bool acpi = false)
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
            acpi ? new System.Xml.Linq.XElement("features", new System.Xml.Linq.XElement("acpi")) : null,
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
