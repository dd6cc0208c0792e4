using System.Diagnostics;
using System.Runtime.Versioning;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Lab;
using Cloudlets.Probing.Commands;
using Cloudlets.TestUtils;

namespace Cloudlets.Libvirt.Tests.Lab;

/// <summary>
/// The libvirt host over SSH (issue 13), against a lab whose hosts each run an OpenSSH server (keys only)
/// inside their namespaces and whose libvirtds have no network listener: connect, list, events and live
/// migration there and back with the guest answering throughout (the source daemon reaches the destination
/// over SSH with the same key and pinned known_hosts); a known_hosts that pins another key for the host, or
/// lacks the host, and a client key the host does not authorize each fail with a typed authentication error
/// before anything changes (the host's SSH server logs no login).
/// </summary>
[Category("Lab")]
[NonParallelizable]
[SupportedOSPlatform("linux")]
public sealed class LibvirtSshLabTests : LabFixture
{
    private const string H1 = "cloudlet-1";
    private const string H2 = "cloudlet-2";

    protected override string LabPrefix => "ssh";

    protected override int LabHosts => 2;

    protected override IReadOnlyList<string> LabGuestsOn => [H1];

    protected override LabTransport LabTransport => LabTransport.Ssh;

    [Test]
    [Order(1)]
    public async Task MigrateAsync_OverSshThereAndBack_ListsEventsAndGuestAnswersThroughout()
    {
        Assert.That(Lab.GetHost(H1).Uri.Scheme, Is.EqualTo("qemu+libssh2"), "the lab's URIs are SSH ones");
        var logins = Logins(H2);
        _ = await TransportLabChecks.MigrateThereAndBackAsync(Lab, H1, H2, "SSH");
        // Peer to peer: cloudlet-1's libvirtd itself logged in to cloudlet-2's SSH server, from cloudlet-1's address.
        Assert.That(Logins(H2).Skip(logins.Count), Has.Some.Contains("from " + Lab.GetHost(H1).Address + " "), "the source daemon reached the destination over SSH");
    }

    [Test]
    public async Task ConnectAsync_OverSshThreeTimes_EachListsTheGuestAndTheTimeIsRecorded()
    {
        // For the record (not asserted): an SSH connect costs a key exchange and a login on top of libvirt's handshake.
        var times = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.GetTimestamp();
            await using var host = await TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H1).Uri, H1);
            times.Add(Stopwatch.GetElapsedTime(clock).TotalMilliseconds);
            Assert.That((await host.ListVmsAsync()).Select(v => v.Name), Does.Contain(Lab.Guests[0].Name));
        }

        TestContext.Out.WriteLine($"connect over SSH: {string.Join(", ", times.Select(t => $"{t:0} ms"))}");
    }

    [Test]
    public void Processes_SshLab_EachHostsSshServerIsRecordedAsTheLabsOwn()
    {
        using (Assert.EnterMultipleScope())
        {
            foreach (var host in Lab.Hosts)
            {
                var recorded = Lab.OwnedProcesses.SingleOrDefault(p => p.Host == host.Index && p.Role == "sshd");
                Assert.That(recorded, Is.Not.Null, $"{host.Name}'s sshd is recorded");
                Assert.That(recorded?.Pid, Is.EqualTo(Lab.GetProcesses(host.Name).Sshd), "the recorded one is the one of the host's pid file");
                Assert.That(recorded?.Identity.IsAlive(), Is.True);
                Assert.That(recorded?.Executable, Does.EndWith("/sshd"));
            }
        }
    }

    [Test]
    public void ConnectAsync_TcpOnAnSshLab_RefusedNoTcpListener()
    {
        var ex = Assert.ThrowsAsync<LibvirtException>(() => TransportLabChecks.ConnectAsync(Lab, new Uri($"qemu+tcp://{Lab.GetHost(H1).Address}/system"), H1));
        Assert.That(ex!.Message, Does.Contain("16509").Or.Contain("Connection refused"), "nothing listens on libvirt's TCP port");
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task ConnectAsync_KnownHostsWithoutTheHostsKey_AuthenticationFailedBeforeLogin(bool pinsAnotherKey)
    {
        using var folder = new TempFolder();
        var knownHosts = Path.Combine(folder.Path, "known_hosts");
        var address = Lab.GetHost(H1).Address;
        // Another key pinned for the host's address (what a man in the middle would present), or no entry for it at all.
        await File.WriteAllTextAsync(knownHosts, pinsAnotherKey
            ? $"{address} {string.Join(' ', (await NewKeyAsync(folder.Path, "other")).Split(' ').Take(2))}\n"
            : $"{Lab.GetHost(H2).Address} {string.Join(' ', File.ReadAllText(Path.Combine(Lab.GetHost(H2).Folder, "etc", "ssh", "ssh_host_ed25519_key.pub")).Split(' ').Take(2))}\n");
        var logins = Logins(H1);

        var ex = Assert.ThrowsAsync<LibvirtException>(() => TransportLabChecks.ConnectAsync(Lab, SshUri(Lab.GetHost(H1).SshKeyFile!, knownHosts), H1));
        TestContext.Out.WriteLine(ex!.Message);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.AuthenticationFailed), "the host's identity was refused");
            Assert.That(ex.IsTransient, Is.False, "retrying with the same known_hosts cannot help");
            Assert.That(ex.Message, Does.Contain("host key").IgnoreCase);
            Assert.That(Logins(H1), Has.Count.EqualTo(logins.Count), "the client refused the host before it logged in");
        }

        await AssertNothingChangedAsync();
    }

    [Test]
    public async Task ConnectAsync_ClientKeyTheHostDoesNotAuthorize_AuthenticationFailedWithoutTheKey()
    {
        using var folder = new TempFolder();
        await NewKeyAsync(folder.Path, "intruder");
        var key = Path.Combine(folder.Path, "intruder");
        var logins = Logins(H1);

        var ex = Assert.ThrowsAsync<LibvirtException>(() => TransportLabChecks.ConnectAsync(Lab, SshUri(key, Lab.GetHost(H1).SshKnownHostsFile!), H1));
        TestContext.Out.WriteLine(ex!.Message);
        var secret = File.ReadAllLines(key).Where(l => !l.StartsWith("-----", StringComparison.Ordinal)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.AuthenticationFailed), "the host refused the key");
            Assert.That(ex.IsTransient, Is.False);
            Assert.That(secret, Is.Not.Empty);
            Assert.That(secret.Any(l => ex.ToString().Contains(l, StringComparison.Ordinal)), Is.False, "no line of the private key is in the error");
            Assert.That(Logins(H1), Has.Count.EqualTo(logins.Count), "nobody logged in");
        }

        await AssertNothingChangedAsync();
    }

    private Uri SshUri(string keyFile, string knownHosts) =>
        new($"qemu+libssh2://root@{Lab.GetHost(H1).Address}/system?keyfile={keyFile}&known_hosts={knownHosts}&known_hosts_verify=normal&sshauth=privkey");

    /// <summary>The logins the host's SSH server logged (it logs to the host's daemons.log).</summary>
    private List<string> Logins(string hostName) =>
        [.. File.ReadLines(Path.Combine(Lab.GetHost(hostName).Folder, "log", "daemons.log")).Where(l => l.StartsWith("Accepted publickey", StringComparison.Ordinal))];

    private async Task AssertNothingChangedAsync()
    {
        await using var h1 = await TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H1).Uri, H1);
        Assert.That((await h1.TryGetVmAsync(Lab.Guests[0].Name))?.State, Is.EqualTo(VmState.Running), "the guest still runs on cloudlet-1");
    }

    /// <summary>A new ed25519 key (FOLDER/NAME and NAME.pub) made by ssh-keygen; returns the public key line.</summary>
    private static async Task<string> NewKeyAsync(string folder, string name)
    {
        var file = Path.Combine(folder, name);
        var result = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file));
        Assert.That(result.ExitCode, Is.Zero, result.StandardError);
        return (await File.ReadAllTextAsync(file + ".pub")).Trim();
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("cloudlets-ssh-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
