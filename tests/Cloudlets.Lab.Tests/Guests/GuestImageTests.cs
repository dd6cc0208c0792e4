using System.Xml.Linq;
using Cloudlets.Lab.Guests;

namespace Cloudlets.Lab.Tests.Guests;

public class GuestImageTests
{
    private string _folder = null!;

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), "cloudlets-lab-image-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void FindKernelPackage_VersionedAndMetaPackages_PicksNewestVersioned()
    {
        foreach (var name in new[]
                 {
                     "linux-image-cloud-amd64_6.1.192-2_amd64.deb",
                     "linux-image-6.1.0-55-cloud-amd64_6.1.190-1_amd64.deb",
                     "linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb",
                     "linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb",
                 })
        {
            File.WriteAllText(Path.Combine(_folder, name), "");
        }

        Assert.That(Path.GetFileName(GuestImage.FindKernelPackage(_folder)), Is.EqualTo("linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb"));
    }

    [Test]
    public void FindKernelPackage_EmptyOrMissingFolder_Null()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(GuestImage.FindKernelPackage(_folder), Is.Null);
            Assert.That(GuestImage.FindKernelPackage(Path.Combine(_folder, "absent")), Is.Null);
        }
    }

    private static byte[] Elf(bool withInterpreter)
    {
        var bytes = new byte[64 + (2 * 56)];
        bytes[0] = 0x7F;
        bytes[1] = (byte)'E';
        bytes[2] = (byte)'L';
        bytes[3] = (byte)'F';
        bytes[4] = 2;
        BitConverter.GetBytes(64L).CopyTo(bytes, 0x20);
        BitConverter.GetBytes((ushort)56).CopyTo(bytes, 0x36);
        BitConverter.GetBytes((ushort)2).CopyTo(bytes, 0x38);
        BitConverter.GetBytes(1u).CopyTo(bytes, 64);
        BitConverter.GetBytes(withInterpreter ? 3u : 1u).CopyTo(bytes, 64 + 56);
        return bytes;
    }

    [Test]
    public void IsStaticElf_Headers_TellStaticFromDynamic()
    {
        var stat = Path.Combine(_folder, "static");
        var dyn = Path.Combine(_folder, "dynamic");
        var text = Path.Combine(_folder, "text");
        File.WriteAllBytes(stat, Elf(withInterpreter: false));
        File.WriteAllBytes(dyn, Elf(withInterpreter: true));
        File.WriteAllText(text, "#!/bin/sh\n");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(GuestImage.IsStaticElf(stat), Is.True);
            Assert.That(GuestImage.IsStaticElf(dyn), Is.False);
            Assert.That(GuestImage.IsStaticElf(text), Is.False);
            Assert.That(GuestImage.IsStaticElf(Path.Combine(_folder, "absent")), Is.False);
        }
    }

    [Test]
    public void InitScript_Shipped_ReadsAddressAndPortFromCommandLineAndLoadsModules()
    {
        var init = GuestImage.InitScript;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(init, Does.StartWith("#!/bin/busybox sh"));
            Assert.That(init, Does.Contain("cloudlets.addr="));
            Assert.That(init, Does.Contain("cloudlets.port="));
            Assert.That(init, Does.Contain("/lib/modules/order"));
            Assert.That(init, Does.Contain("/proc/sys/kernel/random/boot_id"));
        }
    }

    [Test]
    public void Modules_LoadOrder_VirtioNetLastAndDependenciesFirst()
    {
        var order = GuestImage.Modules.ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(order[^1], Is.EqualTo("virtio_net"));
            Assert.That(order.IndexOf("virtio_ring"), Is.LessThan(order.IndexOf("virtio")));
            Assert.That(order.IndexOf("virtio_pci_modern_dev"), Is.LessThan(order.IndexOf("virtio_pci")));
            Assert.That(order.IndexOf("failover"), Is.LessThan(order.IndexOf("net_failover")));
        }
    }

    [Test]
    public void DomainXml_Guest_IsQemuTypeBridgedWithFixedMac()
    {
        var xml = XElement.Parse(GuestDomain.Xml("guest-1", new GuestImageFiles("/c/vmlinuz", "/c/initrd.cpio.gz"), "198.18.3.101/24", "52:54:00:12:03:01", "br0", 7070));
        var nic = xml.Element("devices")!.Element("interface")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(xml.Attribute("type")!.Value, Is.EqualTo("qemu"));
            Assert.That(xml.Element("name")!.Value, Is.EqualTo("guest-1"));
            Assert.That(int.Parse(xml.Element("memory")!.Value, System.Globalization.CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(256));
            Assert.That(xml.Element("os")!.Element("kernel")!.Value, Is.EqualTo("/c/vmlinuz"));
            Assert.That(xml.Element("os")!.Element("cmdline")!.Value, Does.Contain("cloudlets.addr=198.18.3.101/24").And.Contain("cloudlets.port=7070"));
            Assert.That(nic.Attribute("type")!.Value, Is.EqualTo("bridge"));
            Assert.That(nic.Element("source")!.Attribute("bridge")!.Value, Is.EqualTo("br0"));
            Assert.That(nic.Element("mac")!.Attribute("address")!.Value, Is.EqualTo("52:54:00:12:03:01"));
            Assert.That(nic.Element("model")!.Attribute("type")!.Value, Is.EqualTo("virtio"));
        }
    }

    [Test]
    public void DomainXml_NameWithMarkup_IsEscapedNotInjected()
    {
        var xml = XElement.Parse(GuestDomain.Xml("a</name><x>", new GuestImageFiles("/k", "/i"), "198.18.3.101/24", "52:54:00:12:03:01", "br0", 7070));
        Assert.That(xml.Element("name")!.Value, Is.EqualTo("a</name><x>"));
    }
}
