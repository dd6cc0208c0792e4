using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt.Tests;

public class LibvirtUriTests
{
    [TestCase("qemu:///system")]
    [TestCase("qemu:///session")]
    [TestCase("qemu+unix:///system")]
    [TestCase("qemu+tcp://198.18.0.11/system")]
    [TestCase("qemu+tls://host:16514/system")]
    [TestCase("qemu+ssh://root@host/system?no_tty=1&keyfile=/root/.ssh/id_ed25519")]
    [TestCase("qemu+libssh2://root@host/system?known_hosts=/root/.ssh/known_hosts&known_hosts_verify=normal")]
    [TestCase("qemu+tls://host/system?pkipath=/etc/pki/cloudlets")]
    [TestCase("test:///default")]
    [TestCase("test:///tmp/node.xml")]
    public void Validate_AllowedUri_Passes(string uri)
    {
        Assert.DoesNotThrow(() => LibvirtUri.Validate(new Uri(uri)));
    }

    [Category("BadInput")]
    [TestCase("http://example/system", "scheme")]
    [TestCase("qemu+ext:///system?command=/tmp/x", "scheme")]
    [TestCase("qemu+libssh://host/system", "scheme")]
    [TestCase("lxc:///system", "scheme")]
    [TestCase("qemu+carrier-pigeon://host/system", "scheme")]
    [TestCase("qemu+tcp:///system", "no host")]
    [TestCase("qemu://host/system", "local transport")]
    [TestCase("qemu+unix://host/system", "local transport")]
    [TestCase("qemu+tcp://host/nowhere", "/system or /session")]
    [TestCase("qemu+ssh://host/system?command=/bin/sh", "run a program")]
    [TestCase("qemu+ssh://host/system?netcat=/tmp/nc", "run a program")]
    [TestCase("qemu+ssh://host/system?proxy=netcat", "run a program")]
    [TestCase("qemu+unix:///system?socket=/tmp/evil.sock", "socket of the caller's choosing")]
    [TestCase("qemu+ssh://host/system?no_verify=1", "host verification off")]
    [TestCase("qemu+ssh://host/system?keyfile=id_rsa", "absolute path")]
    [TestCase("qemu+libssh2://host/system?known_hosts_verify=ignore", "always verified")]
    [TestCase("qemu+ssh://host/system?name=qemu:///session", "not allowed")]
    [TestCase("test:///", "test driver URI")]
    [TestCase("test+tcp://host/default", "in-process")]
    [TestCase("qemu+tcp://host/system#x", "fragment")]
    public void Validate_RefusedUri_ThrowsWithTheReason(string uri, string reason)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => LibvirtUri.Validate(new Uri(uri)));

        Assert.That(ex.Message, Does.Contain(reason));
    }

    [Category("BadInput")]
    [TestCase("qemu+ssh://admin:s3cr3t-pw@host/system")]
    [TestCase("qemu+tcp://:s3cr3t-pw@host/system")]
    public void Validate_PasswordInUri_RefusesSaysWhereCredentialsGoAndNeverEchoesIt(string uri)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => LibvirtUri.Validate(new Uri(uri)));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Message, Does.Contain("password"));
            Assert.That(ex.Message, Does.Contain("keyfile="));
            Assert.That(ex.Message, Does.Not.Contain("s3cr3t-pw"));
            Assert.That(ex.Message, Does.Not.Contain("admin"));
        }
    }

    [TestCase("qemu+ssh://admin:s3cr3t-pw@host/system?no_tty=1", "qemu+ssh://host/system?no_tty=1")]
    [TestCase("qemu+ssh://admin@host:2222/system", "qemu+ssh://host:2222/system")]
    [TestCase("qemu+tcp://198.18.0.11/system", "qemu+tcp://198.18.0.11/system")]
    [TestCase("test:///tmp/node.xml", "test:///tmp/node.xml")]
    public void Redact_UriWithUserInfo_ShowsItWithout(string uri, string shown)
    {
        Assert.That(LibvirtUri.Redact(new Uri(uri)), Is.EqualTo(shown));
    }

    [Category("BadInput")]
    [TestCase(null, "missing")]
    [TestCase("  ", "missing")]
    [TestCase("not a uri", "not an absolute URI")]
    public void Problems_NotAUri_SaysSo(string? text, string reason)
    {
        Assert.That(LibvirtUri.Problems(text), Has.Exactly(1).Contains(reason));
    }

    [Category("BadInput")]
    [Test]
    public void Problems_UnparseableWithPassword_DoesNotEchoIt()
    {
        var problems = LibvirtUri.Problems("qemu+ssh://admin:s3cr3t pw@host/sys tem");

        Assert.That(string.Join(" ", problems), Does.Not.Contain("s3cr3t"));
    }

    [Category("BadInput")]
    [Test]
    public void Problems_SeveralFaults_ListsEach()
    {
        var problems = LibvirtUri.Problems("qemu+ssh://u:p@host/nowhere?command=/bin/sh&socket=/tmp/s");

        Assert.That(problems, Has.Count.EqualTo(4));
    }
}
