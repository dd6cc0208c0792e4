using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt.Tests;

public class LibvirtHostOptionsTests
{
    private static LibvirtHostOptions Valid() => new() { Name = "h1", Uri = new Uri("test:///default") };

    private static IReadOnlyList<string> Paths(LibvirtHostOptions options)
    {
        var errors = new OptionsErrors();
        options.Validate(errors);
        return [.. errors.Errors.Select(e => e.Path)];
    }

    [Test]
    public void Validate_Defaults_HaveNoErrors()
    {
        Assert.That(Paths(Valid()), Is.Empty);
    }

    private static IEnumerable<TestCaseData> BadOptions()
    {
        TestCaseData Case(string name, string path, Action<LibvirtHostOptions> change)
        {
            var o = Valid();
            change(o);
            return new TestCaseData(o, path).SetName("Validate_" + name + "_ReportsItsPath");
        }

        yield return Case("EmptyName", "Name", o => o.Name = "");
        yield return Case("MissingUri", "Uri", o => o.Uri = null);
        yield return Case("FractionalKeepAlive", "KeepAliveInterval", o => o.KeepAliveInterval = TimeSpan.FromMilliseconds(1500));
        yield return Case("KeepAliveOverAnHour", "KeepAliveInterval", o => o.KeepAliveInterval = TimeSpan.FromHours(2));
        yield return Case("NegativeKeepAliveCount", "KeepAliveCount", o => o.KeepAliveCount = -1);
        yield return Case("ZeroReconnectDelay", "ReconnectInitialDelay", o => o.ReconnectInitialDelay = TimeSpan.Zero);
        yield return Case("MaxBelowInitialDelay", "ReconnectMaxDelay", o => o.ReconnectMaxDelay = TimeSpan.FromMilliseconds(1));
        yield return Case("BadNamespaceName", "NetworkNamespace", o => o.NetworkNamespace = "../etc");
        yield return Case("NegativeRecoveryCheckTimeout", "RecoveryCheckTimeout", o => o.RecoveryCheckTimeout = TimeSpan.FromSeconds(-1));
        yield return Case("NegativeJobCompletedWait", "JobCompletedWait", o => o.JobCompletedWait = TimeSpan.FromSeconds(-1));
        yield return Case("UnknownDomainType", "DomainType", o => o.DomainType = "xen");
        yield return Case("NullMigration", "Migration", o => o.Migration = null!);
        yield return Case("PeerUriOnClientManaged", "Migration.PeerUri", o => o.Migration = new LibvirtMigrationOptions { Mode = LibvirtMigrationMode.ClientManaged, PeerUri = new Uri("qemu+tcp://198.18.0.12/system") });
        yield return Case("PeerUriRunsAProgram", "Migration.PeerUri", o => o.Migration = new LibvirtMigrationOptions { PeerUri = new Uri("qemu+ext:///system?command=/bin/sh") });
    }

    [Category("BadInput")]
    [TestCaseSource(nameof(BadOptions))]
    public void Validate_BadOption(LibvirtHostOptions options, string path)
    {
        Assert.That(Paths(options), Does.Contain(path));
    }

    [Category("BadInput")]
    [Test]
    public async Task ConnectAsync_SeveralBadOptions_ThrowsOneExceptionListingEveryOne()
    {
        var options = new LibvirtHostOptions { Name = "", Uri = new Uri("qemu+tcp://user:hunter2@198.18.0.11/system"), KeepAliveCount = 1000 };

        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => LibvirtHypervisorHost.ConnectAsync(options));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "Name", "Uri", "KeepAliveCount" }));
            Assert.That(ex.Message, Does.Not.Contain("hunter2"), "a password is never echoed");
        }

        await Task.CompletedTask;
    }

    [Test]
    public async Task ConnectAsync_OptionsChangedAfterwards_HostKeepsWhatWasValidated()
    {
        using var node = TestNode.Create();
        var options = node.Options("before");
        await using var host = await LibvirtHypervisorHost.ConnectAsync(options);

        options.Name = "after";
        options.Migration.UndefineSource = false;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.Name, Is.EqualTo("before"));
            Assert.That(host.Options.Migration.UndefineSource, Is.True);
        }
    }
}
