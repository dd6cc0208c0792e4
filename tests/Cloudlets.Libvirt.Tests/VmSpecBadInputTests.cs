using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

/// <summary>
/// The <see cref="VmSpec"/> part of the bad-input suite (issue 11): every bad spec given to a real
/// libvirt host (the test driver) is a <see cref="HypervisorException"/> of kind
/// <see cref="HypervisorErrorKind.InvalidArgument"/>, and the host's VMs are exactly what they were.
/// </summary>
[Category("BadInput")]
[NonParallelizable]
public sealed class VmSpecBadInputTests
{
    private TestNode? _node;
    private LibvirtHypervisorHost? _host;

    private static VmSpec Good(string name = "guest") => new()
    {
        Name = name,
        MemoryMiB = 256,
        VCpus = 1,
        Boot = new KernelBoot("/var/lib/cloudlets/vmlinuz", "/var/lib/cloudlets/initrd.img", "console=ttyS0"),
        Nic = new BridgedNic("br0", "52:54:00:ab:cd:ef"),
    };

    /// <summary>The cases (the count is in the README): the spec and what is wrong with it.</summary>
    public static IEnumerable<TestCaseData> BadSpecs()
    {
        TestCaseData Case(string what, VmSpec spec) => new TestCaseData(spec).SetName($"DefineVmAsync_{what}_InvalidArgumentAndNothingDefined");

        yield return Case("EmptyName", Good(""));
        yield return Case("NameWithSpace", Good("bad name"));
        yield return Case("NameWithSlash", Good("a/b"));
        yield return Case("NameOfDots", Good(".."));
        yield return Case("NameStartingWithDash", Good("-guest"));
        yield return Case("NameWithNonAsciiLetter", Good("gäst"));
        yield return Case("NameOf65Characters", Good(new string('a', 65)));
        yield return Case("NameWithNewline", Good("guest\nx"));
        yield return Case("ZeroMemory", Good() with { MemoryMiB = 0 });
        yield return Case("NegativeMemory", Good() with { MemoryMiB = -256 });
        yield return Case("MemoryAbove16TiB", Good() with { MemoryMiB = VmSpec.MaxMemoryMiB + 1 });
        yield return Case("MemoryIntMax", Good() with { MemoryMiB = int.MaxValue });
        yield return Case("ZeroVCpus", Good() with { VCpus = 0 });
        yield return Case("NegativeVCpus", Good() with { VCpus = -1 });
        yield return Case("VCpusAbovePcMachineLimit", Good() with { VCpus = VmSpec.MaxVCpus + 1 });
        yield return Case("NoBoot", Good() with { Boot = null! });
        yield return Case("RelativeKernel", Good() with { Boot = new KernelBoot("vmlinuz", null, "") });
        yield return Case("EmptyKernel", Good() with { Boot = new KernelBoot("", null, "") });
        yield return Case("NullKernel", Good() with { Boot = new KernelBoot(null!, null, "") });
        yield return Case("KernelPathWithNul", Good() with { Boot = new KernelBoot("/boot/vm\0linuz", null, "") });
        yield return Case("KernelPathLongerThanPathMax", Good() with { Boot = new KernelBoot("/" + new string('k', 4095), null, "") });
        yield return Case("RelativeInitrd", Good() with { Boot = new KernelBoot("/boot/vmlinuz", "initrd.img", "") });
        yield return Case("EmptyInitrd", Good() with { Boot = new KernelBoot("/boot/vmlinuz", "", "") });
        yield return Case("NullCommandLine", Good() with { Boot = new KernelBoot("/boot/vmlinuz", null, null!) });
        yield return Case("CommandLineWithNewline", Good() with { Boot = new KernelBoot("/boot/vmlinuz", null, "quiet\ninit=/bin/sh") });
        yield return Case("CommandLineWithNul", Good() with { Boot = new KernelBoot("/boot/vmlinuz", null, "quiet\0") });
        yield return Case("CommandLineLongerThanTheKernelTakes", Good() with { Boot = new KernelBoot("/boot/vmlinuz", null, new string('x', 2048)) });
        yield return Case("RelativeDiskImage", Good() with { Boot = new DiskBoot("images/a.qcow2") });
        yield return Case("EmptyDiskImage", Good() with { Boot = new DiskBoot("") });
        yield return Case("DiskImageWithTab", Good() with { Boot = new DiskBoot("/images/a\t.qcow2") });
        yield return Case("UnknownDiskFormat", Good() with { Boot = new DiskBoot("/images/a.img", "vmdk") });
        yield return Case("UpperCaseDiskFormat", Good() with { Boot = new DiskBoot("/images/a.img", "QCOW2") });
        yield return Case("NullDiskFormat", Good() with { Boot = new DiskBoot("/images/a.img", null!) });
        yield return Case("EmptyBridge", Good() with { Nic = new BridgedNic("") });
        yield return Case("NullBridge", Good() with { Nic = new BridgedNic(null!) });
        yield return Case("BridgeLongerThanAnInterfaceName", Good() with { Nic = new BridgedNic("a-very-long-bridge-name") });
        yield return Case("BridgeWithSpace", Good() with { Nic = new BridgedNic("br 0") });
        yield return Case("BridgeWithSlash", Good() with { Nic = new BridgedNic("br/0") });
        yield return Case("MulticastMac", Good() with { Nic = new BridgedNic("br0", "01:00:5e:00:00:01") });
        yield return Case("ShortMac", Good() with { Nic = new BridgedNic("br0", "52:54:00:ab:cd") });
        yield return Case("MacWithDashes", Good() with { Nic = new BridgedNic("br0", "52-54-00-ab-cd-ef") });
        yield return Case("MacNotHex", Good() with { Nic = new BridgedNic("br0", "52:54:00:ab:cd:zz") });
        yield return Case("EmptyMac", Good() with { Nic = new BridgedNic("br0", "") });
    }

    [OneTimeSetUp]
    public async Task ConnectAsync()
    {
        _node = TestNode.Create();
        _host = await LibvirtHypervisorHost.ConnectAsync(_node.Options("bad-input"));
    }

    [OneTimeTearDown]
    public async Task DisconnectAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        _node?.Dispose();
    }

    [TestCaseSource(nameof(BadSpecs))]
    public async Task DefineVmAsync_BadSpec_InvalidArgumentAndNothingDefined(VmSpec spec)
    {
        var before = await VmNamesAsync();

        var ex = Assert.ThrowsAsync<HypervisorException>(() => _host!.DefineVmAsync(spec));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument), ex.Message);
            Assert.That(ex, Is.Not.InstanceOf<LibvirtException>(), "refused by the library before libvirt was asked");
            Assert.That(await VmNamesAsync(), Is.EqualTo(before), "no VM defined or changed");
        }
    }

    [Test]
    public async Task DefineVmAsync_NullSpec_ThrowsArgumentNullAndDefinesNothing()
    {
        var before = await VmNamesAsync();

        Assert.ThrowsAsync<ArgumentNullException>(() => _host!.DefineVmAsync(null!));

        Assert.That(await VmNamesAsync(), Is.EqualTo(before));
    }

    [Test]
    public async Task DefineVmAsync_TheGoodSpecTheCasesStartFrom_IsDefined()
    {
        // The control: each bad case differs from this spec in one field only, and this one is accepted.
        var defined = await _host!.DefineVmAsync(Good("good-control"));
        try
        {
            Assert.That(defined.Name, Is.EqualTo("good-control"));
        }
        finally
        {
            await _host.UndefineVmAsync("good-control");
        }
    }

    private async Task<string[]> VmNamesAsync()
        => [.. (await _host!.ListVmsAsync()).Select(v => $"{v.Name}:{v.State}").Order(StringComparer.Ordinal)];
}
