using System.Xml.Linq;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

public class DomainXmlTests
{
    private static VmSpec Kernel(string name = "guest") => new()
    {
        Name = name,
        MemoryMiB = 256,
        VCpus = 2,
        Boot = new KernelBoot("/var/lib/cloudlets/vmlinuz", "/var/lib/cloudlets/initrd.img", "console=ttyS0 quiet"),
        Nic = new BridgedNic("br0", "52:54:00:AB:CD:EF"),
    };

    [Test]
    public void Build_KernelBootWithBridgedNic_HasEveryElement()
    {
        var x = XElement.Parse(DomainXml.Build(Kernel(), "qemu"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)x.Attribute("type"), Is.EqualTo("qemu"));
            Assert.That((string?)x.Element("name"), Is.EqualTo("guest"));
            Assert.That((string?)x.Element("memory"), Is.EqualTo("256"));
            Assert.That((string?)x.Element("memory")!.Attribute("unit"), Is.EqualTo("MiB"));
            Assert.That((string?)x.Element("vcpu"), Is.EqualTo("2"));
            Assert.That((string?)x.Element("os")!.Element("kernel"), Is.EqualTo("/var/lib/cloudlets/vmlinuz"));
            Assert.That((string?)x.Element("os")!.Element("initrd"), Is.EqualTo("/var/lib/cloudlets/initrd.img"));
            Assert.That((string?)x.Element("os")!.Element("cmdline"), Is.EqualTo("console=ttyS0 quiet"));
            var nic = x.Element("devices")!.Element("interface")!;
            Assert.That((string?)nic.Attribute("type"), Is.EqualTo("bridge"));
            Assert.That((string?)nic.Element("source")!.Attribute("bridge"), Is.EqualTo("br0"));
            Assert.That((string?)nic.Element("mac")!.Attribute("address"), Is.EqualTo("52:54:00:ab:cd:ef"));
            Assert.That((string?)nic.Element("model")!.Attribute("type"), Is.EqualTo("virtio"));
        }
    }

    [Test]
    public void Build_DiskBoot_HasVirtioDisk()
    {
        var x = XElement.Parse(DomainXml.Build(Kernel() with { Boot = new DiskBoot("/images/a.qcow2"), Nic = null }));
        var disk = x.Element("devices")!.Element("disk")!;

        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)disk.Element("source")!.Attribute("file"), Is.EqualTo("/images/a.qcow2"));
            Assert.That((string?)disk.Element("driver")!.Attribute("type"), Is.EqualTo("qcow2"));
            Assert.That((string?)disk.Element("target")!.Attribute("bus"), Is.EqualTo("virtio"));
            Assert.That(x.Element("devices")!.Element("interface"), Is.Null);
        }
    }

    [Test]
    public void Build_CommandLineWithMarkup_IsEscaped()
    {
        var xml = DomainXml.Build(Kernel() with { Boot = new KernelBoot("/k", null, "a=<b> & c") });

        Assert.That((string?)XElement.Parse(xml).Element("os")!.Element("cmdline"), Is.EqualTo("a=<b> & c"));
    }

    private static IEnumerable<TestCaseData> BadSpecs()
    {
        yield return new TestCaseData(Kernel() with { MemoryMiB = 0 }).SetName("Validate_ZeroMemory_Throws");
        yield return new TestCaseData(Kernel() with { VCpus = 0 }).SetName("Validate_ZeroVCpus_Throws");
        yield return new TestCaseData(Kernel("bad name")).SetName("Validate_NameWithSpace_Throws");
        yield return new TestCaseData(Kernel("")).SetName("Validate_EmptyName_Throws");
        yield return new TestCaseData(Kernel() with { Boot = new KernelBoot("vmlinuz", null, "") }).SetName("Validate_RelativeKernel_Throws");
        yield return new TestCaseData(Kernel() with { Boot = new DiskBoot("/a.img", "vmdk") }).SetName("Validate_UnknownDiskFormat_Throws");
        yield return new TestCaseData(Kernel() with { Nic = new BridgedNic("br0", "01:00:5e:00:00:01") }).SetName("Validate_MulticastMac_Throws");
        yield return new TestCaseData(Kernel() with { Nic = new BridgedNic("a-very-long-bridge-name") }).SetName("Validate_LongBridgeName_Throws");
    }

    [TestCaseSource(nameof(BadSpecs))]
    public void Validate_BadSpec_ThrowsInvalidArgument(VmSpec spec)
    {
        var ex = Assert.Throws<HypervisorException>(() => DomainXml.Validate(spec));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }

    [Test]
    public void Build_BadDomainType_ThrowsInvalidArgument()
    {
        var ex = Assert.Throws<HypervisorException>(() => DomainXml.Build(Kernel(), "KVM!"));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }
}
