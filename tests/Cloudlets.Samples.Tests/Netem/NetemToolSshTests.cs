using System.Globalization;
using Cloudlets.Netem.Tests.Ssh;
using Cloudlets.Probing.Commands;
using Cloudlets.TestUtils;

namespace Cloudlets.Samples.Tests.Netem;

/// <summary>
/// <c>cloudlets-netem --ssh</c> against a real OpenSSH server on loopback that the fixture starts (key-only, its
/// own host key). The "remote" is this machine, whose kernel has no netem: <c>set</c> must fail with the typed
/// "no netem" error (exit 3) and change nothing; <c>show</c> and <c>del</c> of a device with nothing applied say so.
/// The device is a veth end in a namespace the fixture creates.
/// </summary>
[TestFixture]
[Category("Lab")]
[NonParallelizable]
public sealed class NetemToolSshTests
{
    private const string Device = "vs";
    private static readonly string Tag = (Environment.ProcessId % 0xffff).ToString("x4", CultureInfo.InvariantCulture);
    private readonly string ns = $"cnt{Tag}-s";
    private TestSshServer server = null!;
    private string knownHosts = null!;
    private bool made;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        LabGate.RequireRoot("cloudlets-netem SSH tests", "ip", "tc", "iptables-save");
        LabGate.Decide(TestSshServer.Available ? null : "OpenSSH (sshd, ssh-keygen) is missing (apt-get install openssh-server openssh-client).");

        await NetemToolProcess.RunCheckedAsync("ip", "netns", "add", ns);
        made = true;
        await NetemToolProcess.RunCheckedAsync("ip", "link", "add", Device, "netns", ns, "type", "veth", "peer", "name", "vs-peer", "netns", ns);
        await NetemToolProcess.RunCheckedAsync("ip", "-n", ns, "link", "set", Device, "up");
        server = await TestSshServer.StartAsync();
        knownHosts = server.WriteKnownHosts("known_hosts", server.KnownHostsLine);
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        if (server is not null)
        {
            await server.DisposeAsync();
        }

        if (made)
        {
            await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("ip", "netns", "del", ns));
        }
    }

    private string[] Ssh(string knownHostsFile) =>
        ["--ssh", Environment.UserName + "@127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--key", server.ClientKey, "--known-hosts", knownHostsFile];

    [Test]
    public async Task Set_RemoteKernelWithoutNetem_ExitsThreeWithTheTypedErrorAndChangesNothing()
    {
        var before = await StateAsync();
        var (code, output, error) = await NetemToolProcess.RunAsync(["set", Device, "--delay", "300ms", "--netns", ns, .. Ssh(knownHosts)]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(3), output + error + server.Log);
            Assert.That(error, Does.Contain("has no netem").And.Contain("CONFIG_NET_SCH_NETEM").And.Contain("127.0.0.1"));
            Assert.That(error, Does.Contain("nothing was changed there"));
            Assert.That(output, Is.Empty);
            Assert.That(await StateAsync(), Is.EqualTo(before), "the remote namespace and the tc handle records are as they were");
        }
    }

    [Test]
    public async Task Show_RemoteWithNothingApplied_ReportsNothing()
    {
        var (code, output, error) = await NetemToolProcess.RunAsync(["show", Device, "--netns", ns, .. Ssh(knownHosts)]);
        var (jsonCode, json, jsonError) = await NetemToolProcess.RunAsync(["show", Device, "--json", "--netns", ns, .. Ssh(knownHosts)]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, error + server.Log);
            Assert.That(output, Does.Contain("nothing applied by cloudlets-netem (tc-netem)").And.Contain("@127.0.0.1"));
            Assert.That(jsonCode, Is.Zero, jsonError);
            Assert.That(json, Does.Contain("\"applied\":false").And.Contain("\"backend\":\"tc-netem\"").And.Contain("\"rules\":[]"));
        }
    }

    [Test]
    public async Task Del_RemoteWithNothingApplied_ReportsNothing()
    {
        var before = await StateAsync();
        var (code, output, error) = await NetemToolProcess.RunAsync(["del", Device, "--netns", ns, .. Ssh(knownHosts)]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, error + server.Log);
            Assert.That(output, Does.Contain("nothing to delete"));
            Assert.That(await StateAsync(), Is.EqualTo(before));
        }
    }

    [Category("BadInput")]
    [Test]
    public async Task Set_RemoteDeviceMissing_ExitsTwoNamingTheHost()
    {
        var (code, _, error) = await NetemToolProcess.RunAsync(["set", "nosuchdev", "--delay", "300ms", "--netns", ns, .. Ssh(knownHosts)]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2), error);
            Assert.That(error, Does.Contain("the device 'nosuchdev' does not exist").And.Contain("127.0.0.1"));
        }
    }

    [Test]
    public async Task Set_UnknownHostKey_ExitsFiveAndRunsNothing()
    {
        var other = server.WriteKnownHosts("known_hosts_other", $"[127.0.0.1]:{server.Port.ToString(CultureInfo.InvariantCulture)} {await server.OtherPublicKeyAsync()}");
        var (code, _, error) = await NetemToolProcess.RunAsync(["set", Device, "--delay", "300ms", "--netns", ns, .. Ssh(other)]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(5), error);
            Assert.That(error, Does.Contain("host key").IgnoreCase);
        }
    }

    /// <summary>What a shaping attempt could change: the namespace's qdiscs and mangle rules, and the tc handle records.</summary>
    private async Task<string> StateAsync()
    {
        var qdiscs = (await NetemToolProcess.RunCheckedAsync("ip", "netns", "exec", ns, "tc", "qdisc", "show")).StandardOutput;
        var mangle = (await NetemToolProcess.RunCheckedAsync("ip", "netns", "exec", ns, "iptables-save", "-t", "mangle")).StandardOutput.Split('\n').Where(l => !l.StartsWith('#'));
        // Only this device's owner: other tests of the machine may claim handles of their own meanwhile.
        var owner = Cloudlets.Samples.Netem.NetemCommandLine.OwnerFor(ns, Device);
        string[] records = Directory.Exists("/run/cloudlets-netem/tc-handles")
            ? [.. Directory.GetFileSystemEntries("/run/cloudlets-netem/tc-handles", "*", SearchOption.AllDirectories).Where(e => e.Contains(owner, StringComparison.Ordinal)).Order(StringComparer.Ordinal)]
            : [];
        return string.Join("\n--\n", qdiscs, string.Join('\n', mangle), string.Join('\n', records));
    }
}
