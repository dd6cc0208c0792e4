using System.Text.Json;
using System.Xml.Linq;
using Cloudlets.Probing.Commands;
using Cloudlets.TestUtils;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>
/// One 3-host lab with a guest on cloudlet-1, shared by the tests of this fixture in order: the
/// hosts answer, the guest answers from the edge, it live-migrates to cloudlet-2, libvirtd restarts.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public class CloudletLabTests : LabFixture
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(5);

    protected override string LabPrefix => "labt";

    protected override IReadOnlyList<string> LabGuestsOn => ["cloudlet-1"];

    [Test]
    [Order(1)]
    public async Task StartAsync_ThreeHosts_EachLibvirtdAnswersOnItsUriWithItsOwnIdentity()
    {
        Assert.That(Lab.Hosts.Select(h => h.Name), Is.EqualTo(new[] { "cloudlet-1", "cloudlet-2", "cloudlet-3" }));
        var uuids = new List<string>();
        foreach (var host in Lab.Hosts)
        {
            var hostname = await Lab.VirshAsync(host, ["hostname"]);
            var capabilities = await Lab.VirshAsync(host, ["capabilities"]);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(host.Uri.ToString(), Is.EqualTo($"qemu+tcp://{host.Address}/system"));
                Assert.That(hostname.StandardOutput.Trim(), Is.EqualTo(host.Name));
            }

            uuids.Add(XElement.Parse(capabilities.StandardOutput).Element("host")!.Element("uuid")!.Value);
        }

        Assert.That(uuids, Is.Unique);
    }

    [Test]
    [Order(2)]
    public async Task StartGuest_OnCloudlet1_AnswersIcmpAndItsServiceFromTheEdge()
    {
        var guest = Lab.GetGuest("guest-1");
        var client = Lab.CreateGuestClient(guest);
        var first = await client.ReadAsync(ReadTimeout);
        await Task.Delay(TimeSpan.FromSeconds(2.2));
        var second = await client.ReadAsync(ReadTimeout);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((await Lab.FindGuestHostAsync(guest))?.Name, Is.EqualTo("cloudlet-1"));
            Assert.That(await Lab.PingFromEdgeAsync(guest.Address), Is.True);
            Assert.That(second.BootId, Is.EqualTo(first.BootId));
            Assert.That(second.Counter, Is.GreaterThan(first.Counter));
            Assert.That(guest.Address.ToString(), Is.EqualTo($"198.18.{Lab.Plan.Subnet}.101"));
        }
    }

    [Test]
    [Order(3)]
    public void GetProcesses_Cloudlet1_RecordsItsLiveDaemonsAndTheGuestsQemu()
    {
        var processes = Lab.GetProcesses("cloudlet-1");
        var other = Lab.GetProcesses("cloudlet-2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ProcessIdentity.Capture(processes.Virtlogd)?.Executable, Is.EqualTo("/usr/sbin/virtlogd"));
            Assert.That(ProcessIdentity.Capture(processes.Libvirtd)?.Executable, Is.EqualTo("/usr/sbin/libvirtd"));
            Assert.That(processes.Qemu.Keys, Is.EqualTo(new[] { "guest-1" }));
            Assert.That(ProcessIdentity.Capture(processes.Qemu["guest-1"])?.Executable, Is.EqualTo("/usr/bin/qemu-system-x86_64"));
            // The state records the same processes with their start times: what teardown will end.
            Assert.That(Lab.OwnedProcesses.Where(p => p.Host == 1).Select(p => (p.Role, p.Pid)),
                Is.EquivalentTo(new[] { ("virtlogd", processes.Virtlogd), ("libvirtd", processes.Libvirtd), ("qemu guest-1", processes.Qemu["guest-1"]) }));
            Assert.That(Lab.OwnedProcesses.Select(p => p.Identity).All(p => p.IsAlive()), Is.True);
            Assert.That(other.Libvirtd, Is.Not.EqualTo(processes.Libvirtd));
            Assert.That(other.Qemu, Is.Empty);
        }
    }

    [Test]
    [Order(4)]
    public async Task MigrateWithVirsh_ToCloudlet2_AnswersAtTheSameAddressAndKeptCounting()
    {
        var guest = Lab.GetGuest("guest-1");
        var client = Lab.CreateGuestClient(guest);
        var before = await client.ReadAsync(ReadTimeout);

        await Lab.MigrateWithVirshAsync(guest, "cloudlet-1", "cloudlet-2");

        var after = await client.WaitForAnswerAsync(TimeSpan.FromSeconds(10));
        var sourceDomains = await Lab.VirshAsync(Lab.GetHost("cloudlet-1"), ["list", "--all", "--name"]);
        using var status = JsonDocument.Parse((await Lab.GetStatusAsync()).ToJson());
        using (Assert.EnterMultipleScope())
        {
            Assert.That((await Lab.FindGuestHostAsync(guest))?.Name, Is.EqualTo("cloudlet-2"));
            Assert.That(await Lab.PingFromEdgeAsync(guest.Address), Is.True);
            Assert.That(after.BootId, Is.EqualTo(before.BootId), "the guest rebooted");
            Assert.That(after.Counter, Is.GreaterThanOrEqualTo(before.Counter), "the counter went back");
            Assert.That(sourceDomains.StandardOutput, Does.Not.Contain("guest-1"), "--undefinesource left the domain on the source");
            Assert.That(status.RootElement.GetProperty("guests")[0].GetProperty("host").GetString(), Is.EqualTo("cloudlet-2"));
            Assert.That(Lab.GetProcesses("cloudlet-2").Qemu.Keys, Is.EqualTo(new[] { "guest-1" }));
        }
    }

    [Test]
    [Order(5)]
    public async Task RestartLibvirtd_AfterKill_AnswersAgainAndTheGuestKeptRunning()
    {
        var guest = Lab.GetGuest("guest-1");
        var host = Lab.GetHost("cloudlet-2");
        var before = await Lab.CreateGuestClient(guest).ReadAsync(ReadTimeout);
        var oldPid = Lab.GetProcesses(host.Name).Libvirtd;

        await Lab.KillLibvirtdAsync(host.Name);
        var whileDead = await LocalCommandRunner.Instance.RunAsync(Lab.Virsh(host, "version"));
        await Lab.RestartLibvirtdAsync(host.Name);

        var after = await Lab.CreateGuestClient(guest).ReadAsync(ReadTimeout);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(whileDead.Succeeded, Is.False, "virsh answered while libvirtd was killed");
            Assert.That(Lab.GetProcesses(host.Name).Libvirtd, Is.Not.EqualTo(oldPid));
            Assert.That((await Lab.FindGuestHostAsync(guest))?.Name, Is.EqualTo("cloudlet-2"));
            Assert.That(after.BootId, Is.EqualTo(before.BootId));
        }
    }

    private async Task RunCheckedAsync(LabHost host, params string[] ipArguments)
    {
        var result = await Lab.RunInNamespaceAsync(host.Namespace, CommandLine.Of("ip", ipArguments));
        Assert.That(result.Succeeded, Is.True, $"ip {string.Join(' ', ipArguments)}: {result.StandardError}");
    }

    private async Task<string?> MacOfAsync(LabHost host, string device)
    {
        var result = await Lab.RunInNamespaceAsync(host.Namespace, CommandLine.Of("ip", "-j", "link", "show", "dev", device));
        return result.Succeeded ? JsonDocument.Parse(result.StandardOutput).RootElement[0].GetProperty("address").GetString() : null;
    }

    [Test]
    [Order(6)]
    public async Task RunOnHostAsync_Cloudlet3_SeesItsOwnHostnameAndConfiguration()
    {
        var hostname = await Lab.RunOnHostAsync("cloudlet-3", CommandLine.Of("hostname"));
        var config = await Lab.RunOnHostAsync("cloudlet-3", CommandLine.Of("cat", "/etc/libvirt/libvirtd.conf"));
        var address = await Lab.RunOnHostAsync("cloudlet-3", CommandLine.Of("ip", "-4", "-o", "addr", "show", "dev", "br0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(hostname.StandardOutput.Trim(), Is.EqualTo("cloudlet-3"));
            Assert.That(config.StandardOutput, Does.Contain("listen_tcp = 1"));
            Assert.That(address.StandardOutput, Does.Contain(Lab.GetHost("cloudlet-3").Address + "/24"));
            Assert.That(await MacOfAsync(Lab.GetHost("cloudlet-3"), "br0"), Is.EqualTo(Lab.Plan.HostBridgeMac(3)), "the bridge has the lab's fixed address");
        }
    }

    /// <summary>
    /// A host bridge whose address the kernel chose takes the lowest MAC of its ports; libvirt's tap for
    /// the guest is <c>fe:54:00:12:KK:II</c>, so an uplink with a random MAC above that (about 1 host in
    /// 100) made the destination's own address move to the tap's MAC the moment the incoming QEMU
    /// started, the source's bridge dropped everything from it (its own tap's MAC), and the migration
    /// stalled at 0 bytes. Forced here with an uplink MAC above every tap MAC: the bridge keeps the
    /// lab's fixed address and the migration completes. On the parent commit this test stalls.
    /// </summary>
    [Test]
    [Order(7)]
    public async Task MigrateWithVirsh_DestinationUplinkMacAboveTheGuestsTap_CompletesAndTheBridgeKeepsItsAddress()
    {
        var guest = Lab.GetGuest("guest-1");
        var destination = Lab.GetHost("cloudlet-3");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await RunCheckedAsync(destination, "link", "set", "up0", "address", "fe:ff:ff:ff:ff:fe");
        var before = await Lab.CreateGuestClient(guest).ReadAsync(ReadTimeout, timeout.Token);

        // From wherever the earlier tests left it (cloudlet-2 in order; cloudlet-1 when run alone).
        var source = await Lab.FindGuestHostAsync(guest, timeout.Token);
        Assert.That(source?.Name, Is.AnyOf("cloudlet-1", "cloudlet-2"), "precondition: the guest runs, and not on cloudlet-3");
        var migrated = await Lab.MigrateWithVirshAsync(guest, source!.Name, "cloudlet-3", timeout.Token);

        var after = await Lab.CreateGuestClient(guest).WaitForAnswerAsync(TimeSpan.FromSeconds(10), timeout.Token);
        var bridge = await MacOfAsync(destination, "br0");
        var tap = await Lab.RunInNamespaceAsync(destination.Namespace, CommandLine.Of("ip", "-j", "link", "show", "master", "br0"), timeout.Token);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(migrated.Succeeded, Is.True, "virsh migrate: " + migrated.StandardError);
            Assert.That((await Lab.FindGuestHostAsync(guest))?.Name, Is.EqualTo("cloudlet-3"));
            Assert.That(bridge, Is.EqualTo(Lab.Plan.HostBridgeMac(3)), "the bridge keeps the lab's address with the tap added");
            Assert.That(tap.StandardOutput, Does.Contain("fe:54:00:12"), "the guest's tap is a port of the bridge");
            Assert.That(after.BootId, Is.EqualTo(before.BootId));
        }
    }

    [Test]
    [Order(8)]
    public async Task KillQemuAsync_Guest_StopsAnsweringAndNoHostRunsIt()
    {
        var guest = Lab.GetGuest("guest-1");
        await Lab.KillQemuAsync("cloudlet-3", guest.Name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await Lab.PingFromEdgeAsync(guest.Address), Is.False);
            Assert.That(await Lab.FindGuestHostAsync(guest), Is.Null);
        }
    }
}
