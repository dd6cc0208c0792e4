using System.Diagnostics;
using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Ownership;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>
/// Fault injection (issue 11): the controlling process (<c>cloudlets-lab</c> as a child) is killed
/// with SIGKILL at each phase of lab start, shaping and migration (it holds at the phase through
/// <c>CLOUDLETS_LAB_HOLD_AT</c>, or the phase is seen in the kernel). Then: the guest runs exactly
/// once and answers, and the next <c>up</c>/<c>down</c>/<c>clear</c> leaves no namespace, process,
/// mount, rule or qdisc of the lab, and nothing of anybody else's: decoys with the lab's naming (a
/// namespace <c>NAME-h7</c> holding a process called libvirtd, an iptables chain and a qdisc, and
/// an iptables chain in the root namespace) must be exactly as they were.
/// </summary>
/// <remarks>
/// One lab name for the whole fixture (so the decoy namespace matches it). Start phases without a
/// guest use a 2-host lab with no guest; only the guest phases, shaping and migration boot a guest.
/// Start cases alternate the next command: even phases are followed by <c>down</c>, odd ones by
/// <c>up</c> (then <c>down</c>).
/// </remarks>
[Category("Lab")]
[NonParallelizable]
public class LabFaultInjectionTests
{
    private static readonly string[] StartPhasesWithoutGuest =
    [
        LabPhases.Claimed, LabPhases.Switch, LabPhases.Edge, LabPhases.HostNamespace(1), LabPhases.HostDaemons(1),
        LabPhases.HostNamespace(2), LabPhases.HostDaemons(2), LabPhases.DaemonsReady,
    ];

    private static readonly string[] StartPhasesWithGuest = [LabPhases.GuestDefined(1), LabPhases.GuestStarted(1), LabPhases.GuestAnswering(1), LabPhases.Ready];

    private static readonly string[] ShapePhases = ["shape-applying", MidApply, "shape-applied"];

    private static readonly string[] MigratePhases = ["migrate-started", "migrate-running"];

    private const string MidApply = "shape-mid-apply (seen in the kernel)";

    private static readonly LabPaths Paths = new(LabPaths.DefaultRoot);

    private string _name = "";
    private ForeignObjects? _decoys;
    private bool _sharedLabUp;

    [OneTimeSetUp]
    public async Task CreateDecoysAsync()
    {
        LabGate.Require();
        _name = TestLabs.UniqueName("fault");
        _decoys = await ForeignObjects.CreateAsync(LabNaming.HostNamespace(_name, 7));
    }

    [OneTimeTearDown]
    public async Task RemoveAsync()
    {
        if (_name.Length > 0)
        {
            _ = await LabSample.RunAsync("down", "--name", _name);
        }

        if (_decoys is not null)
        {
            await _decoys.DisposeAsync();
        }
    }

    [Test]
    [Order(1)]
    [TestCaseSource(nameof(StartPhasesWithoutGuest))]
    public async Task Up_KilledAtPhase_NextCommandLeavesNothingOfTheLabAndTouchesNoDecoy(string phase)
    {
        var killed = await KillAtPhaseAsync(phase, "up", "--hosts", "2", "--name", _name);

        if (Array.IndexOf(StartPhasesWithoutGuest, phase) % 2 == 1)
        {
            var up = await LabSample.RunAsync("up", "--hosts", "2", "--name", _name);
            Assert.That(up.ExitCode, Is.Zero, up.StandardError);
            await using var lab = CloudletLab.Attach(_name)!;
            Assert.That(await lab.IsHealthyAsync(), Is.True, "the next up did not bring a working lab");
        }

        await DownAndAssertNothingLeftAsync(killed);
    }

    [Test]
    [Order(2)]
    [TestCaseSource(nameof(StartPhasesWithGuest))]
    public async Task UpWithGuest_KilledAtPhase_NextUpRunsTheGuestOnceAndDownLeavesNothing(string phase)
    {
        var killed = await KillAtPhaseAsync(phase, "up", "--hosts", "2", "--guest-on", "cloudlet-1", "--name", _name);

        var up = await LabSample.RunAsync("up", "--hosts", "2", "--guest-on", "cloudlet-1", "--name", _name);
        Assert.That(up.ExitCode, Is.Zero, up.StandardError);
        await AssertGuestRunsOnceAndAnswersAsync(bootId: null);

        await DownAndAssertNothingLeftAsync(killed);
    }

    [Test]
    [Order(3)]
    [TestCaseSource(nameof(ShapePhases))]
    public async Task Shape_KilledAtPhase_GuestAnswersOnceAndClearLeavesNoRule(string phase)
    {
        await EnsureSharedLabAsync();
        var before = await AssertGuestRunsOnceAndAnswersAsync(bootId: null);
        if (phase == MidApply)
        {
            await KillWhenTheKernelShowsShapingAsync();
        }
        else
        {
            _ = await KillAtPhaseAsync(phase, "shape", "cloudlet-1", "300", "cloudlet-2", "20", "--name", _name);
        }

        await AssertGuestRunsOnceAndAnswersAsync(before);
        var clear = await LabSample.RunAsync("clear", "--name", _name);
        await using var shaper = await NetemShaperFactory.CreateAsync();
        await using var lab = CloudletLab.Attach(_name)!;
        var left = await lab.ShowShapingAsync(shaper);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(clear.ExitCode, Is.Zero, clear.StandardError);
            Assert.That(left.IsEmpty, Is.True, "clear left shaping: " + string.Join("; ", left.Objects.Select(o => $"{o.NetworkNamespace} {o.Kind} {o.Location}")));
            Assert.That(await _decoys!.ChangedAsync(), Is.Empty, "a foreign object was touched");
        }
    }

    [Test]
    [Order(4)]
    [TestCaseSource(nameof(MigratePhases))]
    public async Task Migrate_KilledAtPhase_GuestRunsOnceAndAnswersWithItsBoot(string phase)
    {
        await EnsureSharedLabAsync();
        var before = await AssertGuestRunsOnceAndAnswersAsync(bootId: null);
        await using var lab = CloudletLab.Attach(_name)!;
        var guest = lab.GetGuest("guest-1");
        var from = (await lab.FindGuestHostAsync(guest))!;
        var to = lab.Hosts.First(h => h != from);

        // A bandwidth limit keeps the migration running for a few seconds, long enough to be killed in it.
        _ = await KillAtPhaseAsync(phase, "migrate", "guest-1", to.Name, "--bandwidth", "20", "--name", _name);
        await WaitUntilNoMigrationJobAsync(lab, guest);

        await AssertGuestRunsOnceAndAnswersAsync(before);
        Assert.That(await _decoys!.ChangedAsync(), Is.Empty, "a foreign object was touched");
    }

    [Test]
    [Order(5)]
    public async Task Down_AfterTheShapingAndMigrationFaults_LeavesNothingAndTouchesNoDecoy()
    {
        await EnsureSharedLabAsync();
        var state = Paths.TryReadState(_name)!;
        await DownAndAssertNothingLeftAsync(state);
    }

    /// <summary>Runs the sample, waits until it holds at <paramref name="phase"/>, kills it (SIGKILL) and returns the lab's state as the killed run left it.</summary>
    private async Task<LabState?> KillAtPhaseAsync(string phase, params string[] arguments)
    {
        await LabSample.KillAtPhaseAsync(phase, arguments);
        TestContext.Out.WriteLine($"killed at {phase}: cloudlets-lab {string.Join(' ', arguments)}");
        return Paths.TryReadState(_name);
    }

    /// <summary>Runs <c>shape</c> and kills it as soon as the first of its rules shows in the switch namespace (the apply is under way).</summary>
    private async Task KillWhenTheKernelShowsShapingAsync()
    {
        using var child = Process.Start(LabSample.StartInfo(["shape", "cloudlet-1", "300", "cloudlet-2", "20", "--name", _name]))!;
        _ = child.StandardOutput.ReadToEndAsync();
        _ = child.StandardError.ReadToEndAsync();
        var owner = LabShapingPlans.OwnerFor(_name);
        var seen = false;
        var clock = Stopwatch.StartNew();
        while (!child.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            var rules = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("iptables-save", "-t", "mangle").InNamespace(LabNaming.SwitchNamespace(_name)));
            if (rules.StandardOutput.Contains(owner, StringComparison.Ordinal))
            {
                seen = true;
                break;
            }
        }

        Assert.That(child.HasExited, Is.False, "shape ended before it could be killed");
        child.Kill();
        await child.WaitForExitAsync();
        Assert.That(seen, Is.True, "the shaping never showed in the kernel");
    }

    private async Task EnsureSharedLabAsync()
    {
        if (_sharedLabUp)
        {
            return;
        }

        var up = await LabSample.RunAsync("up", "--hosts", "2", "--guest-on", "cloudlet-1", "--name", _name);
        Assert.That(up.ExitCode, Is.Zero, up.StandardError);
        _sharedLabUp = true;
    }

    /// <summary>Asserts that guest-1 runs on exactly one host and answers from the edge (with <paramref name="bootId"/>'s boot id, when given: it did not reboot).</summary>
    private async Task<Cloudlets.Lab.Guests.GuestReading> AssertGuestRunsOnceAndAnswersAsync(Cloudlets.Lab.Guests.GuestReading? bootId)
    {
        await using var lab = CloudletLab.Attach(_name)!;
        var guest = lab.GetGuest("guest-1");
        var reading = await lab.CreateGuestClient(guest).WaitForAnswerAsync(TimeSpan.FromSeconds(60));
        var copies = await lab.FindGuestCopiesAsync(guest);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(copies, Has.Count.EqualTo(1), "guest-1 runs on " + string.Join(", ", copies.Select(h => h.Name)));
            if (bootId is not null)
            {
                Assert.That(reading.BootId, Is.EqualTo(bootId.BootId), "the guest rebooted (it was lost and started again)");
                Assert.That(reading.Counter, Is.GreaterThanOrEqualTo(bootId.Counter));
            }
        }

        return reading;
    }

    private static async Task WaitUntilNoMigrationJobAsync(CloudletLab lab, LabGuest guest)
    {
        // The migration goes on in the daemons after its client was killed: wait (bounded) until no host has a job and one copy runs.
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            var busy = false;
            foreach (var host in lab.Hosts)
            {
                var job = await LocalCommandRunner.Instance.RunAsync(lab.Virsh(host, "domjobinfo", guest.Name));
                busy |= job.Succeeded && !job.StandardOutput.Contains("None", StringComparison.Ordinal);
            }

            if (!busy && (await lab.FindGuestCopiesAsync(guest)).Count == 1)
            {
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail("the migration did not settle within 2 minutes");
    }

    /// <summary>Runs <c>down</c>, then checks that nothing of the lab is left (also nothing the killed run recorded) and every decoy is as it was.</summary>
    private async Task DownAndAssertNothingLeftAsync(LabState? killed)
    {
        var down = await LabSample.RunAsync("down", "--name", _name);
        _sharedLabUp = false;
        var decoyNamespace = _decoys!.Namespace;
        var inodes = killed?.Namespaces.Select(n => n.Inode).Where(i => i != 0).ToHashSet() ?? [];
        var survivors = Cloudlets.Lab.Processes.LabProcess.EnumerateProcesses().Where(pid => inodes.Contains(Cloudlets.Lab.Processes.LabProcess.NetNamespaceInode(pid))).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(CloudletLab.FindLeftovers(_name).Where(l => !l.Contains(decoyNamespace + " ", StringComparison.Ordinal) && !l.EndsWith(decoyNamespace, StringComparison.Ordinal)), Is.Empty, "leftovers of the lab");
            Assert.That(killed?.Processes.Where(p => p.Identity.Exists()).Select(p => p.Identity.ToString()) ?? [], Is.Empty, "processes the killed run recorded");
            Assert.That(survivors, Is.Empty, "processes still inside the killed run's namespaces");
            Assert.That(killed?.Namespaces.Where(n => n.Inode != 0 && LabOwnership.NamespaceInode(n.Name) == n.Inode).Select(n => n.Name) ?? [], Is.Empty, "namespaces of the killed run");
            Assert.That(await _decoys.ChangedAsync(), Is.Empty, "a foreign object was touched");
        }
    }
}
