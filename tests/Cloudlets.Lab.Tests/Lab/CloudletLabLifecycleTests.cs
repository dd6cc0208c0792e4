using System.Diagnostics;
using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Processes;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>Teardown and crash recovery, each with its own small lab.</summary>
[Category("Lab")]
[NonParallelizable]
public class CloudletLabLifecycleTests
{
    [SetUp]
    public void Gate() => LabGate.Require();

    private static string[] MountTableLinesOf(string name) =>
        [.. Directory.EnumerateDirectories("/proc")
            .Where(d => Path.GetFileName(d).All(char.IsAsciiDigit))
            .SelectMany(d =>
            {
                try
                {
                    return File.ReadAllLines(Path.Combine(d, "mountinfo"));
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return [];
                }
            })
            .Where(l => l.Contains("/labs/" + name + "/", StringComparison.Ordinal) || l.Contains("/netns/" + name + "-", StringComparison.Ordinal))];

    private static string[] NamespacesOf(string name) =>
        Directory.Exists("/run/netns") ? [.. Directory.EnumerateFiles("/run/netns").Select(Path.GetFileName).OfType<string>().Where(n => n.StartsWith(name + "-", StringComparison.Ordinal))] : [];

    private static int[] AllPids(LabHostProcesses p) => [p.Virtlogd, p.Libvirtd, .. p.Qemu.Values];

    [Test]
    public async Task DisposeAsync_LabWithGuest_LeavesNoNamespaceBridgeMountOrProcess()
    {
        var lab = await TestLabs.StartAsync("labd", hosts: 2, guestsOn: ["cloudlet-2"]);
        var name = lab.Name;
        var pids = lab.Hosts.SelectMany(h => AllPids(lab.GetProcesses(h.Name))).ToList();
        var namespacesWhileUp = NamespacesOf(name);
        var bridgesWhileUp = await lab.RunInNamespaceAsync(lab.Hosts[0].Namespace, CommandLine.Of("ip", "-o", "link", "show", "type", "bridge"));

        await lab.DisposeAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(pids, Has.Count.EqualTo(5), "two virtlogd, two libvirtd, one QEMU");
            Assert.That(namespacesWhileUp, Is.EquivalentTo(new[] { name + "-sw", name + "-edge", name + "-h1", name + "-h2" }));
            Assert.That(bridgesWhileUp.StandardOutput, Does.Contain("br0"));
            Assert.That(NamespacesOf(name), Is.Empty, "network namespaces (and with them the bridges and veths) left");
            Assert.That(MountTableLinesOf(name), Is.Empty, "mounts left");
            Assert.That(pids.Where(LabProcess.IsAlive), Is.Empty, "processes left");
            Assert.That(Directory.Exists(new LabPaths(LabPaths.DefaultRoot).LabFolder(name)), Is.False, "folder left");
            Assert.That(CloudletLab.FindLeftovers(name), Is.Empty);
        }
    }

    [Test]
    public async Task DisposeAsync_SshLabWithAnOpenSession_EndsItsSshServersAndSessionsAndLeavesNothing()
    {
        var lab = await TestLabs.StartAsync("labssh", 1, null, LabTransport.Ssh);
        var name = lab.Name;
        var host = lab.Hosts[0];
        var sshd = lab.GetProcesses(host.Name).Sshd;
        var hostNamespace = LabProcess.NetNamespaceInode(lab.GetProcesses(host.Name).Libvirtd);
        // A client that stays logged in through the teardown (its session is a child sshd in the host's namespace).
        using var client = Process.Start(new ProcessStartInfo(CommandPath.Resolve("ip"), ["netns", "exec", lab.Edge.Namespace, CommandPath.Resolve("virsh"), "-c", host.Uri.ToString(), "event", "--all", "--loop", "--timeout", "60"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var sessions = new List<int>();
        for (var i = 0; i < 50 && sessions.Count == 0; i++)
        {
            await Task.Delay(100);
            sessions = [.. LabProcess.EnumerateProcesses().Where(pid => pid != sshd && LabProcess.ExecutablePath(pid) == LabProcess.ExecutablePath(sshd) && LabProcess.NetNamespaceInode(pid) == hostNamespace)];
        }

        try
        {
            await lab.DisposeAsync();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(sshd, Is.GreaterThan(0), "the host's sshd wrote its pid file");
                Assert.That(sessions, Is.Not.Empty, "the client's session ran in the host's namespace");
                Assert.That(sessions.Append(sshd).Where(LabProcess.IsAlive), Is.Empty, "the SSH server and its sessions ended");
                Assert.That(NamespacesOf(name), Is.Empty);
                Assert.That(CloudletLab.FindLeftovers(name), Is.Empty);
            }
        }
        finally
        {
            if (!client.HasExited)
            {
                client.Kill();
            }
        }
    }

    [Test]
    public async Task StartAsync_AfterAnAbandonedRunWithADeadDaemon_CleansUpAndComesUp()
    {
        var name = TestLabs.UniqueName("laba");
        // The first run is abandoned as a killed process would leave it: running, and half broken.
        var first = new CloudletLabBuilder().WithName(name).WithHosts(2).WithKeepRunningOnDispose().Build();
        await first.StartAsync();
        var firstPids = first.Hosts.SelectMany(h => AllPids(first.GetProcesses(h.Name))).ToList();
        await first.KillLibvirtdAsync("cloudlet-1");
        await first.DisposeAsync();
        // As if its owner had been killed: a live owner would make the next start refuse.
        var paths = new LabPaths(LabPaths.DefaultRoot);
        paths.WriteState(paths.TryReadState(name)! with { Owner = int.MaxValue - 1, OwnerStartTime = 1 });

        var second = new CloudletLabBuilder().WithName(name).WithHosts(2).Build();
        try
        {
            await second.StartAsync();
            var version = await second.VirshAsync(second.GetHost("cloudlet-1"), ["version"]);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(version.Succeeded, Is.True);
                Assert.That(firstPids.Where(LabProcess.IsAlive), Is.Empty, "the first run's daemons survived");
            }
        }
        finally
        {
            await second.DisposeAsync();
        }

        Assert.That(CloudletLab.FindLeftovers(name), Is.Empty);
    }

    [Test]
    public async Task StartAsync_TwoLabsAtOnce_GetDifferentSubnetsAndBothAnswer()
    {
        var labs = new[] { TestLabs.StartAsync("labc", hosts: 1), TestLabs.StartAsync("labc", hosts: 1) };
        try
        {
            await Task.WhenAll(labs);
            var (a, b) = (labs[0].Result, labs[1].Result);
            var fromA = await a.VirshAsync(a.Hosts[0], ["hostname"]);
            var fromB = await b.VirshAsync(b.Hosts[0], ["hostname"]);
            // Each edge reaches only its own lab: the labs' switches are separate.
            var crossPing = await a.PingFromEdgeAsync(b.Hosts[0].Address);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(a.Plan.Subnet, Is.Not.EqualTo(b.Plan.Subnet));
                Assert.That(fromA.StandardOutput.Trim(), Is.EqualTo("cloudlet-1"));
                Assert.That(fromB.StandardOutput.Trim(), Is.EqualTo("cloudlet-1"));
                Assert.That(crossPing, Is.False);
            }
        }
        finally
        {
            foreach (var lab in labs.Where(t => t.IsCompletedSuccessfully))
            {
                await lab.Result.DisposeAsync();
            }
        }
    }

    [Test]
    public async Task StartAsync_TransientLabOfAKilledProcess_IsRemovedAsAnOrphan()
    {
        // A test process killed before disposing its lab: its transient lab's owner is gone.
        var orphanName = TestLabs.UniqueName("labo");
        var orphan = new CloudletLabBuilder().WithName(orphanName).WithHosts(1).Build();
        await orphan.StartAsync();
        var paths = new LabPaths(LabPaths.DefaultRoot);
        var state = paths.TryReadState(orphanName)!;
        Assert.That(state.Transient, Is.True);
        paths.WriteState(state with { Owner = int.MaxValue - 1, OwnerStartTime = 1 });

        await using (var next = await TestLabs.StartAsync("labn", hosts: 1))
        {
            Assert.That(CloudletLab.FindLeftovers(orphanName), Is.Empty);
        }

        await orphan.DisposeAsync();
    }

    [Test]
    public async Task SampleUp_KilledWhileTheGuestBoots_NextStartCleansAndComesUpAndDownRemovesAll()
    {
        var name = TestLabs.UniqueName("labk");
        await KillSampleUpWhileGuestBootsAsync(name);
        Assert.That(NamespacesOf(name), Is.Not.Empty, "the killed run should have left namespaces to clean");

        await using (var lab = new CloudletLabBuilder().WithName(name).WithHosts(2).WithGuestOn("cloudlet-1").Build())
        {
            await lab.StartAsync();
            var guest = lab.GetGuest("guest-1");
            var first = await lab.CreateGuestClient(guest).ReadAsync(TimeSpan.FromSeconds(5));
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            var second = await lab.CreateGuestClient(guest).ReadAsync(TimeSpan.FromSeconds(5));
            var copies = await lab.FindGuestCopiesAsync(guest);
            using (Assert.EnterMultipleScope())
            {
                // The guest of the new run runs once, and keeps running (same boot, counting on).
                Assert.That(copies.Select(h => h.Name), Is.EqualTo(new[] { "cloudlet-1" }));
                Assert.That(second.BootId, Is.EqualTo(first.BootId));
                Assert.That(second.Counter, Is.GreaterThan(first.Counter));
            }
        }

        Assert.That(CloudletLab.FindLeftovers(name), Is.Empty);

        // And `down` after a killed `up` removes everything.
        await KillSampleUpWhileGuestBootsAsync(name);
        var down = await RunSampleAsync(["down", "--name", name]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(CloudletLab.FindLeftovers(name), Is.Empty);
            Assert.That(MountTableLinesOf(name), Is.Empty);
        }
    }

    [Test]
    public async Task SampleUpTwiceThenStatusJson_Lab_IsHarmlessAndShowsTheGuest()
    {
        var name = TestLabs.UniqueName("labs");
        try
        {
            var up = await RunSampleAsync(["up", "--hosts", "2", "--guest-on", "cloudlet-2", "--name", name]);
            Assert.That(up.ExitCode, Is.Zero, up.StandardError);
            var pids = CloudletLab.Attach(name)!.Hosts.Select(h => CloudletLab.Attach(name)!.GetProcesses(h.Name).Libvirtd).ToList();
            var again = await RunSampleAsync(["up", "--hosts", "2", "--guest-on", "cloudlet-2", "--name", name]);
            var status = await RunSampleAsync(["status", "--json", "--name", name]);
            using var json = System.Text.Json.JsonDocument.Parse(status.StandardOutput);
            var lab = CloudletLab.Attach(name)!;
            using (Assert.EnterMultipleScope())
            {
                Assert.That(up.StandardOutput, Does.Contain("lab start-up time:").And.Contain("guest boot time: guest-1"));
                Assert.That(again.ExitCode, Is.Zero, again.StandardError);
                Assert.That(again.StandardOutput, Does.Contain("already up"));
                Assert.That(lab.Hosts.Select(h => lab.GetProcesses(h.Name).Libvirtd), Is.EqualTo(pids), "the second up restarted the lab");
                Assert.That(status.ExitCode, Is.Zero, status.StandardError);
                Assert.That(json.RootElement.GetProperty("edge").GetProperty("namespace").GetString(), Is.EqualTo(name + "-edge"));
                Assert.That(json.RootElement.GetProperty("hosts").GetArrayLength(), Is.EqualTo(2));
                Assert.That(json.RootElement.GetProperty("guests")[0].GetProperty("host").GetString(), Is.EqualTo("cloudlet-2"));
            }
        }
        finally
        {
            var down = await RunSampleAsync(["down", "--name", name]);
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
        }
    }

    [Test]
    public async Task SampleUp_BadInput_FailsBeforeCreatingAnything()
    {
        var name = TestLabs.UniqueName("labv");
        var zero = await RunSampleAsync(["up", "--hosts", "0", "--name", name]);
        var unknown = await RunSampleAsync(["up", "--hosts", "2", "--guest-on", "cloudlet-3", "--name", name]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(zero.ExitCode, Is.EqualTo(2));
            Assert.That(zero.StandardError, Does.Contain("1-8 hosts"));
            Assert.That(unknown.ExitCode, Is.EqualTo(2));
            Assert.That(unknown.StandardError, Does.Contain("cloudlet-3"));
            Assert.That(CloudletLab.FindLeftovers(name), Is.Empty);
        }
    }

    private static Task<CommandResult> RunSampleAsync(string[] arguments) => LabSample.RunAsync(arguments);

    /// <summary>Runs `cloudlets-lab up` as a child, holding once the guest's QEMU runs (CLOUDLETS_LAB_HOLD_AT), and kills it (SIGKILL) there.</summary>
    private static async Task KillSampleUpWhileGuestBootsAsync(string name)
    {
        var phase = LabPhases.GuestStarted(1);
        using var up = Process.Start(LabSample.StartInfo(["up", "--hosts", "2", "--guest-on", "cloudlet-1", "--name", name], new Dictionary<string, string> { ["CLOUDLETS_LAB_HOLD_AT"] = phase }))!;
        var error = up.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var holding = false;
        while (!holding && await up.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            holding = line == "holding at phase " + phase;
        }

        Assert.That(holding, Is.True, $"up never reached {phase}: {(up.HasExited ? await error : "")}");
        var qemuPidFile = Path.Combine(new LabPaths(LabPaths.DefaultRoot).HostFolder(name, 1), "run", "libvirt", "qemu", "guest-1.pid");
        Assert.That(File.Exists(qemuPidFile), Is.True, "the guest never started");
        up.Kill();
        await up.WaitForExitAsync();
    }
}
