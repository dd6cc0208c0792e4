using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

public class LibvirtHostOptionsTests
{
    [TestCase("qemu:///system")]
    [TestCase("qemu+tcp://198.18.0.11/system")]
    [TestCase("qemu+ssh://root@host/system?no_tty=1")]
    [TestCase("qemu+tls://host:16514/system")]
    [TestCase("test:///default")]
    [TestCase("test:///tmp/node.xml")]
    public void Validate_LibvirtUri_Passes(string uri)
    {
        var o = new LibvirtHostOptions { Name = "h1", Uri = new Uri(uri) };

        Assert.DoesNotThrow(o.Validate);
    }

    [TestCase("http://example/system")]
    [TestCase("qemu+tcp:///system")]
    [TestCase("qemu+tcp://host/nowhere")]
    [TestCase("qemu+carrier-pigeon://host/system")]
    [TestCase("test:///")]
    public void Validate_MalformedUri_ThrowsInvalidArgument(string uri)
    {
        var o = new LibvirtHostOptions { Name = "h1", Uri = new Uri(uri) };

        var ex = Assert.Throws<HypervisorException>(o.Validate);

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }

    private static IEnumerable<TestCaseData> BadOptions()
    {
        var ok = new LibvirtHostOptions { Name = "h1", Uri = new Uri("test:///default") };
        yield return new TestCaseData(ok with { Name = "" }).SetName("Validate_EmptyName_Throws");
        yield return new TestCaseData(ok with { KeepAliveInterval = TimeSpan.FromMilliseconds(1500) }).SetName("Validate_FractionalKeepAlive_Throws");
        yield return new TestCaseData(ok with { KeepAliveCount = -1 }).SetName("Validate_NegativeKeepAliveCount_Throws");
        yield return new TestCaseData(ok with { ReconnectInitialDelay = TimeSpan.Zero }).SetName("Validate_ZeroReconnectDelay_Throws");
        yield return new TestCaseData(ok with { ReconnectMaxDelay = TimeSpan.FromMilliseconds(1) }).SetName("Validate_MaxBelowInitialDelay_Throws");
        yield return new TestCaseData(ok with { NetworkNamespace = "../etc" }).SetName("Validate_BadNamespaceName_Throws");
        yield return new TestCaseData(ok with { RecoveryCheckTimeout = TimeSpan.FromSeconds(-1) }).SetName("Validate_NegativeRecoveryCheckTimeout_Throws");
        yield return new TestCaseData(ok with { JobCompletedWait = TimeSpan.FromSeconds(-1) }).SetName("Validate_NegativeJobCompletedWait_Throws");
    }

    [TestCaseSource(nameof(BadOptions))]
    public void Validate_BadOption_ThrowsInvalidArgument(LibvirtHostOptions options)
    {
        var ex = Assert.Throws<HypervisorException>(options.Validate);

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }
}
