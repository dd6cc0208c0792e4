using System.Net;
using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class LabSshTests
{
    private static readonly LabHost Host = new("cloudlet-2", 2, IPAddress.Parse("198.18.3.12"), "t1-h2", "br0", "/x/h2");

    [Test]
    public void Config_Host_KeysOnlyOnTheLabAddressWithItsOwnPidFile()
    {
        var lines = LabSsh.Config(Host).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith('#'))
            .ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Does.Contain("ListenAddress 198.18.3.12:22"), "on the host's lab address alone");
            Assert.That(lines, Does.Contain("PasswordAuthentication no").And.Contain("KbdInteractiveAuthentication no").And.Contain("PubkeyAuthentication yes"));
            Assert.That(lines, Does.Contain("PermitRootLogin prohibit-password").And.Contain("UsePAM no"));
            Assert.That(lines, Does.Contain("AuthorizedKeysFile /etc/libvirt/ssh/authorized_keys").And.Contain("HostKey /etc/libvirt/ssh/ssh_host_ed25519_key"));
            Assert.That(lines, Does.Contain("PidFile /run/sshd.pid"), "in the host's own /run, where the lab reads it");
            Assert.That(lines, Does.Contain("AllowTcpForwarding no").And.Contain("AllowStreamLocalForwarding no"));
            Assert.That(lines.Count(l => l.StartsWith("ListenAddress", StringComparison.Ordinal)), Is.EqualTo(1));
        }
    }

    [Test]
    public void KnownHostsLine_PublicKeyLine_PinsTheAddressToTheKeyWithoutTheComment() =>
        Assert.That(LabSsh.KnownHostsLine(Host.Address, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample cloudlets-lab t1 cloudlet-2\n"),
            Is.EqualTo("198.18.3.12 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"));

    [Category("BadInput")]
    [TestCase("")]
    [TestCase("AAAAC3NzaC1lZDI1NTE5")]
    [TestCase("-----BEGIN OPENSSH PRIVATE KEY-----")]
    public void KnownHostsLine_NotAPublicKeyLine_ThrowsLabException(string line) =>
        Assert.That(() => LabSsh.KnownHostsLine(Host.Address, line), Throws.InstanceOf<LabException>());

    [Test]
    public void KeyGen_File_Ed25519WithoutPassphraseAsAnArgumentList()
    {
        var command = LabSsh.KeyGen("/x/ssh/id_ed25519", "cloudlets-lab t1 client");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(command.Program, Is.EqualTo("ssh-keygen"));
            Assert.That(command.Arguments, Is.EqualTo(new[] { "-q", "-t", "ed25519", "-N", "", "-C", "cloudlets-lab t1 client", "-f", "/x/ssh/id_ed25519" }));
        }
    }

    [Test]
    public void Libvirtd_Ssh_HasNoNetworkListener()
    {
        var conf = LabHostConfiguration.Libvirtd(LabTransport.Ssh, "u1");
        Assert.That(conf, Does.Contain("listen_tcp = 0").And.Contain("listen_tls = 0").And.Contain("host_uuid = \"u1\""));
    }

    [Test]
    public void Uri_SshHost_IsLibssh2WithTheKeyAndThePinnedKnownHosts()
    {
        var host = Host with { Transport = LabTransport.Ssh, SshKeyFile = "/run/l/ssh/id_ed25519", SshKnownHostsFile = "/run/l/ssh/known_hosts" };
        Assert.That(host.Uri.ToString(), Is.EqualTo("qemu+libssh2://root@198.18.3.12/system?keyfile=/run/l/ssh/id_ed25519&known_hosts=/run/l/ssh/known_hosts&known_hosts_verify=normal&sshauth=privkey"));
    }

    [Test]
    public void SshPrograms_EachOne_IsInstalledByTheInstallScript()
    {
        var script = File.ReadAllText(Path.Combine(RepositoryRoot(), "eng", "install-deps.sh"));
        Assert.That(LabPrerequisites.SshPrograms.SelectMany(p => p.Package.Split(' ')), Has.All.Matches<string>(package => script.Contains(" " + package, StringComparison.Ordinal)));
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "Cloudlets.Core.sln")))
            {
                return folder.FullName;
            }
        }

        throw new DirectoryNotFoundException("The repository root (Cloudlets.Core.sln) is not above the test folder.");
    }
}
