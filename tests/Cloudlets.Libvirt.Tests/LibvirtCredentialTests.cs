using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

public sealed class LibvirtCredentialTests
{
    private const string Secret = "s3cret-never-shown";

    [Test]
    public void ToString_Credential_ShowsTheUserNotThePassword()
    {
        var credential = new LibvirtCredential("fred", Secret);
        Assert.That(credential.ToString(), Does.Contain("fred").And.Not.Contain(Secret));
    }

    [Test]
    public void Constructor_EmptyPassword_ThrowsWithoutAValue()
    {
        var ex = Assert.Throws<ArgumentException>(() => _ = new LibvirtCredential("fred", string.Empty));
        Assert.That(ex!.ParamName, Is.EqualTo("password"));
    }

    [Test]
    public void Constructor_EmptyUser_Throws() =>
        Assert.Throws<ArgumentException>(() => _ = new LibvirtCredential(string.Empty, Secret));

    [Test]
    public void GetCredential_StaticProvider_AnswersTheSameCredentialForEveryUri()
    {
        var provider = new StaticLibvirtCredentialProvider("fred", Secret);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(provider.GetCredential(new Uri("qemu+tls://198.18.0.11/system"))?.Password, Is.EqualTo(Secret));
            Assert.That(provider.GetCredential(new Uri("qemu+tls://198.18.0.12/system"))?.UserName, Is.EqualTo("fred"));
            Assert.That(provider.ToString(), Does.Not.Contain(Secret));
        }
    }

    [Test]
    public void Clone_OptionsWithCredentials_SharesTheProvider()
    {
        var provider = new StaticLibvirtCredentialProvider("fred", Secret);
        var options = new LibvirtHostOptions { Name = "h", Uri = new Uri("test:///default"), Credentials = provider };
        Assert.That(options.Clone().Credentials, Is.SameAs(provider));
    }

    [Test]
    public async Task ConnectAsync_DriverWithoutAuthenticationAndAProvider_ConnectsThroughTheAuthPathUnasked()
    {
        using var node = TestNode.Create();
        var asked = 0;
        var options = node.Options("alpha");
        options.Credentials = new Provider(() => asked++);
        await using var host = await LibvirtHypervisorHost.ConnectAsync(options);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.ConnectionState, Is.EqualTo(HostConnectionState.Connected));
            Assert.That(asked, Is.Zero, "a driver that asks for nothing is given nothing");
        }
    }

    private sealed class Provider(Action onAsk) : ILibvirtCredentialProvider
    {
        public LibvirtCredential? GetCredential(Uri uri)
        {
            onAsk();
            return null;
        }
    }
}
