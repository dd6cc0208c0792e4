using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Ownership;
using Cloudlets.Lab.Processes;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>
/// The lab removes what it created and nothing else, and refuses to start over a name somebody else
/// holds (issue 11). Each test reproduces a defect of the earlier lab: it failed there.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public class CloudletLabOwnershipTests
{
    private static readonly LabPaths Paths = new(LabPaths.DefaultRoot);

    [SetUp]
    public void Gate() => LabGate.Require();

    [Test]
    public async Task SampleDown_ForeignNamespaceWithTheLabsNaming_LeavesItAndItsProcessesAlone()
    {
        var name = TestLabs.UniqueName("own");
        await using var foreign = await ForeignObjects.CreateAsync(LabNaming.HostNamespace(name, 1));

        var down = await LabSample.RunAsync("down", "--name", name);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(await foreign.ChangedAsync(), Is.Empty, "down touched a namespace (or what is in it) that the lab did not create");
            Assert.That(down.StandardError, Does.Contain("left alone").And.Contain(foreign.Namespace));
        }
    }

    [Test]
    public async Task SampleUp_ForeignNamespaceWithOneOfItsNames_RefusesAndChangesNothing()
    {
        var name = TestLabs.UniqueName("own");
        await using var foreign = await ForeignObjects.CreateAsync(LabNaming.HostNamespace(name, 2));

        var up = await LabSample.RunAsync("up", "--hosts", "2", "--name", name);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(up.ExitCode, Is.EqualTo(4), up.StandardError);
            Assert.That(up.StandardError, Does.Contain(foreign.Namespace).And.Contain("not created by this lab"));
            Assert.That(await foreign.ChangedAsync(), Is.Empty);
            Assert.That(CloudletLab.FindLeftovers(name).Where(l => !l.Contains(foreign.Namespace, StringComparison.Ordinal)), Is.Empty, "up created something before refusing");
        }
    }

    [Test]
    public async Task SampleUp_OtherHostCountOnARunningLab_RefusesAndChangesNothing()
    {
        var name = TestLabs.UniqueName("own");
        try
        {
            var up = await LabSample.RunAsync("up", "--hosts", "2", "--name", name);
            Assert.That(up.ExitCode, Is.Zero, up.StandardError);
            var before = Paths.TryReadState(name)!;

            var again = await LabSample.RunAsync("up", "--hosts", "3", "--name", name);

            var after = Paths.TryReadState(name)!;
            using (Assert.EnterMultipleScope())
            {
                Assert.That(again.ExitCode, Is.EqualTo(4), again.StandardOutput + again.StandardError);
                Assert.That(again.StandardError, Does.Contain("is up with 2 hosts").And.Contain("down --name " + name));
                Assert.That(after.Hosts, Has.Count.EqualTo(2));
                Assert.That(after.Processes, Is.EqualTo(before.Processes), "the running lab's daemons were replaced");
                Assert.That(before.Processes.Select(p => p.Identity).All(p => p.IsAlive()), Is.True, "a daemon of the running lab ended");
                Assert.That(after.Namespaces, Is.EqualTo(before.Namespaces));
                Assert.That(LabOwnership.NamespaceInode(LabNaming.HostNamespace(name, 3)), Is.Zero, "a third host was made");
            }
        }
        finally
        {
            var down = await LabSample.RunAsync("down", "--name", name);
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
        }
    }

    [Test]
    public async Task StartAsync_LabOfTheSameNameWhoseOwnerIsAlive_RefusesAndLeavesItRunning()
    {
        await using var first = await TestLabs.StartAsync("own", hosts: 1);
        var second = new CloudletLabBuilder().WithName(first.Name).WithHosts(1).Build();

        var refused = Assert.ThrowsAsync<LabConflictException>(() => second.StartAsync());
        await second.DisposeAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused!.Message, Does.Contain("belongs to this process"));
            Assert.That(await first.IsHealthyAsync(), Is.True, "the first lab was torn down");
            Assert.That(first.OwnedProcesses.Select(p => p.Identity).All(p => p.IsAlive()), Is.True);
        }
    }

    [Test]
    public async Task RunOnHostAsync_RecordedVirtlogdPidNowAnotherProcess_RefusesToEnterIt()
    {
        await using var lab = await TestLabs.StartAsync("own", hosts: 1);
        await using var decoy = await StartNamedCopyOfSleepAsync("virtlogd");
        SimulatePidReuse(lab, "virtlogd", decoy.Pid);
        var attached = CloudletLab.Attach(lab.Name)!;

        var entered = Assert.ThrowsAsync<LabException>(() => attached.RunOnHostAsync("cloudlet-1", CommandLine.Of("hostname")));

        Assert.That(entered!.Message, Does.Contain("not running as the lab recorded it"));
        // The real virtlogd is still found by the lab's own teardown (in the lab's namespace, by program path).
        await lab.StopAsync();
        Assert.That(decoy.Identity.IsAlive(), Is.True, "the process that reused the pid was ended");
    }

    [Test]
    public async Task DownAsync_RecordedLibvirtdPidNowAnotherProgramOfThatName_LeavesItAloneAndEndsTheRealOne()
    {
        var lab = await TestLabs.StartAsync("own", hosts: 1);
        var realLibvirtd = lab.OwnedProcesses.Single(p => p.Role == "libvirtd").Identity;
        await using var decoy = await StartNamedCopyOfSleepAsync("libvirtd");
        SimulatePidReuse(lab, "libvirtd", decoy.Pid);

        var report = await CloudletLab.DownAsync(lab.Name);
        await lab.DisposeAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(decoy.Identity.IsAlive(), Is.True, "a process named libvirtd that reused the recorded pid was ended");
            Assert.That(realLibvirtd.Exists(), Is.False, "the lab's real libvirtd survived");
            Assert.That(report.Leftovers, Is.Empty);
            Assert.That(CloudletLab.FindLeftovers(lab.Name), Is.Empty);
        }
    }

    /// <summary>Rewrites the host's pid file and the state's record of <paramref name="role"/> to another pid (start time kept): a pid reused after the daemon died.</summary>
    private static void SimulatePidReuse(CloudletLab lab, string role, int pid)
    {
        File.WriteAllText(Path.Combine(lab.Hosts[0].Folder, "run", role + ".pid"), pid + "\n");
        var state = Paths.TryReadState(lab.Name)!;
        Paths.WriteState(state with { Processes = [.. state.Processes.Select(p => p.Role == role ? p with { Pid = pid } : p)] });
    }

    private static async Task<NamedSleep> StartNamedCopyOfSleepAsync(string programName)
    {
        var folder = Directory.CreateTempSubdirectory("reuse-").FullName;
        var program = Path.Combine(folder, programName);
        File.Copy("/usr/bin/sleep", program);
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(program, "600") { UseShellExecute = false })!;
        ProcessIdentity? identity = null;
        for (var i = 0; i < 100 && identity is null; i++)
        {
            identity = ProcessIdentity.Capture(process.Id);
            await Task.Delay(10);
        }

        return new NamedSleep(process, identity!, folder);
    }

    private sealed record NamedSleep(System.Diagnostics.Process Process, ProcessIdentity Identity, string Folder) : IAsyncDisposable
    {
        public int Pid => Process.Id;

        public async ValueTask DisposeAsync()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                await Process.WaitForExitAsync();
            }

            Process.Dispose();
            Directory.Delete(Folder, recursive: true);
        }
    }
}
