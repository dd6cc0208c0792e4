using System.Globalization;
using System.Runtime.Versioning;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.TestUtils;

namespace Cloudlets.Integration.Tests;

/// <summary>
/// The fault cases of the decision issue, through the real pipeline in automatic mode on a lab of
/// two cloudlets: the guest starts on cloudlet-1, which the shaper puts 300 ms away from the edge,
/// and cloudlet-2 is 20 ms away, so the policy wants to move the guest. Then the destination dies
/// mid-move, or its libvirtd is down when the move is due. The VM must never be lost.
/// </summary>
[Category("Lab")]
[NonParallelizable]
[SupportedOSPlatform("linux")]
public sealed class MigrationPipelineFaultLabTests : LabFixture
{
    private const string Far = "cloudlet-1";
    private const string Near = "cloudlet-2";
    private static readonly TimeSpan FarDelay = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan NearDelay = TimeSpan.FromMilliseconds(20);

    private INetemShaper? _shaper;
    private string? _bootId;

    protected override string LabPrefix => "itfault";

    protected override int LabHosts => 2;

    protected override IReadOnlyList<string> LabGuestsOn => [Far];

    private LabGuest Guest => Lab.Guests[0];

    private INetemShaper Shaper => _shaper ?? throw new InvalidOperationException("No shaper.");

    [OneTimeSetUp]
    public async Task CreateShaperAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        _shaper = await NetemShaperFactory.CreateAsync(cancellationToken: timeout.Token);
        TestContext.Progress.WriteLine($"shaping with {_shaper.Capabilities.Backend}");
    }

    [OneTimeTearDown]
    public async Task DisposeShaperAsync()
    {
        if (_shaper is not null)
        {
            await Lab.ClearShapingAsync(_shaper);
            await _shaper.DisposeAsync();
            _shaper = null;
        }
    }

    [SetUp]
    public async Task GuestOnFarHostAsync()
    {
        // Every test starts with both daemons up, no shaping, and the guest on cloudlet-1 only.
        foreach (var host in Lab.Hosts)
        {
            if (!(await LocalCommandRunner.Instance.RunAsync(Lab.Virsh(host, "version"))).Succeeded)
            {
                await Lab.RestartLibvirtdAsync(host.Name);
            }
        }

        await Lab.ClearShapingAsync(Shaper);
        if ((await RunningCopiesAsync()).SequenceEqual([Near]))
        {
            await Lab.MigrateWithVirshAsync(Guest, Near, Far);
        }

        Assert.That(await RunningCopiesAsync(), Is.EqualTo(new[] { Far }), "precondition: the guest runs on cloudlet-1 only");
        _bootId ??= (await Lab.CreateGuestClient(Guest).WaitForAnswerAsync(TimeSpan.FromSeconds(30))).BootId;
    }

    [TearDown]
    public async Task ClearShapingAsync()
    {
        if (_shaper is not null)
        {
            await Lab.ClearShapingAsync(_shaper);
        }
    }

    [Test]
    public Task Pipeline_DestinationQemuKilledMidMove_FailedOutcomeGuestStaysOnSourceAndDecisionsGoOn() =>
        DestinationDiesMidMoveAsync(restartDaemon: false);

    [Test]
    public Task Pipeline_DestinationLibvirtdKilledMidMove_FailedOutcomeGuestStaysOnSourceAndDecisionsGoOn() =>
        DestinationDiesMidMoveAsync(restartDaemon: true);

    /// <summary>
    /// The move to cloudlet-2 runs slowly (1 MiB/s for 256 MiB); at its first progress with data
    /// sent, the destination's QEMU is killed, or its libvirtd (and a supervisor starts it again).
    /// </summary>
    private async Task DestinationDiesMidMoveAsync(bool restartDaemon)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var before = await Lab.CreateGuestClient(Guest).ReadAsync(TimeSpan.FromSeconds(5), timeout.Token);
        await Lab.ShapeAsync(Shaper, [(Far, FarDelay), (Near, NearDelay)], timeout.Token);

        await using var run = new LabPipelineRun(Lab, Guest);
        var killed = 0;
        double? killedAt = null;
        var fault = Task.CompletedTask;
        var progressSeen = 0;
        run.OnProgress = (vm, p) =>
        {
            Interlocked.Increment(ref progressSeen);
            if (vm == Guest.Name && p.DataProcessedBytes > 0 && Interlocked.Exchange(ref killed, 1) == 0)
            {
                killedAt = run.Now;
                fault = restartDaemon
                    ? Task.Run(async () =>
                    {
                        await Lab.KillLibvirtdAsync(Near);
                        await Lab.RestartLibvirtdAsync(Near);
                    })
                    : Task.Run(() => Lab.KillQemuAsync(Near, Guest.Name));
            }
        };
        await run.ConnectHostsAsync(timeout.Token);
        run.Start(DemoPolicy(), o =>
        {
            o.Executor.Migration = new MigrationOptions { BandwidthMiBps = 1, ProgressInterval = TimeSpan.FromMilliseconds(200) };
            // A failed destination stays backed off for the rest of the test: no retry to assert around.
            o.Executor.BackoffBase = TimeSpan.FromMinutes(5);
            o.Executor.BackoffMax = TimeSpan.FromMinutes(5);
        });

        var ended = await LabPipelineRun.WaitUntilAsync(() => run.Outcomes.Count > 0, TimeSpan.FromSeconds(75), timeout.Token);
        await fault;
        var outcomeAt = ended ? run.Outcomes[0].At : double.PositiveInfinity;

        // The loop must keep deciding after the failure: three more windows.
        var goesOn = ended && await LabPipelineRun.WaitUntilAsync(
            () => run.Decisions.Count(d => d.At > outcomeAt) >= 3, TimeSpan.FromSeconds(10), timeout.Token);
        var after = await Lab.CreateGuestClient(Guest).WaitForAnswerAsync(TimeSpan.FromSeconds(20), timeout.Token);
        var copies = await RunningCopiesAsync();
        var onNear = await DomStateAsync(Near);
        run.Dump();

        Assert.That(ended, Is.True, "the migration ended with an outcome within 75 s");
        var outcome = run.Outcomes[0].Outcome;
        var later = run.Decisions.Where(d => d.At > outcomeAt).Select(d => d.Decision).ToList();
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"killed at t={killedAt:0.0}s, outcome at t={outcomeAt:0.0}s: {outcome.Kind}; guest counter {before.Counter} -> {after.Counter}"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(killed, Is.EqualTo(1), $"the destination was killed while the migration ran ({progressSeen} progress reports, none with data sent; the outcome: {outcome.Kind} {outcome.Error?.Message})");
            Assert.That(run.Outcomes, Has.Count.EqualTo(1), "one migration, not retried");
            Assert.That(outcome.Kind, Is.AnyOf(MigrationOutcomeKind.Failed, MigrationOutcomeKind.Aborted));
            Assert.That((outcome.Source, outcome.Destination), Is.EqualTo((Far, Near)));
            Assert.That(outcome.Error, Is.Not.Null, "a failure carries its error");
            Assert.That((outcome.Error as MigrationException)?.VmRunningOnSource, Is.True, "the error says the VM runs on the source: " + outcome.Error);
            Assert.That((outcome.Error as MigrationException)?.DestinationCopy, Is.AnyOf(DestinationCopyAction.None, DestinationCopyAction.Removed), "the destination was checked for a copy");
            Assert.That(copies, Is.EqualTo(new[] { Far }), "exactly one running copy, on the source");
            Assert.That(onNear, Is.Null.Or.EqualTo("shut off"), "no paused copy left on the destination");
            Assert.That(after.BootId, Is.EqualTo(_bootId), "the same guest answers from the edge (no reboot)");
            Assert.That(after.Counter, Is.GreaterThan(before.Counter), "the guest kept counting");
            Assert.That(goesOn, Is.True, "the pipeline keeps deciding after the failure");
            Assert.That(later, Has.None.Matches<MigrationDecision>(d => d.IsMove), "no move while the only better host is backed off");
            Assert.That(later, Has.Some.Matches<MigrationDecision>(d => d.CurrentHost == Far && d.Candidates.Any(c => c.Host == Near && c.Status == CandidateStatus.BackedOff)),
                "the decisions see the guest on the source and the failed destination backed off");
        }
    }

    /// <summary>
    /// cloudlet-2 is a candidate while the paths are unshaped (the guest stays: no gain). Its libvirtd
    /// is killed: it leaves the candidates. Then the shaper makes it the fastest host by far: still
    /// no move, because it is down. When the daemon is back, it is a candidate again and the guest
    /// moves to it.
    /// </summary>
    [Test]
    public async Task Pipeline_FastestHostLibvirtdStopped_LeavesCandidatesAndReturnsWhenRestarted()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await using var run = new LabPipelineRun(Lab, Guest);
        await run.ConnectHostsAsync(timeout.Token);
        run.Start(DemoPolicy(), _ => { });
        static bool Scored(MigrationDecision d) => d.Candidates.Any(c => c.Host == Far && c.ScoreMs is not null);
        static bool NearIs(MigrationDecision d, CandidateStatus status) => d.Candidates.Any(c => c.Host == Near && c.Status == status);

        // Up: cloudlet-2 is a candidate (nothing to gain yet, so the guest stays).
        var sawUp = await LabPipelineRun.WaitUntilAsync(() => run.Decisions.Any(d => Scored(d.Decision) && NearIs(d.Decision, CandidateStatus.Eligible)), TimeSpan.FromSeconds(30), timeout.Token);

        // Down: it leaves the candidates; then it becomes the fastest host, for long enough that a
        // move (three confirmation windows) would have happened twice over.
        var killedAt = run.Now;
        await Lab.KillLibvirtdAsync(Near, timeout.Token);
        var sawDown = await LabPipelineRun.WaitUntilAsync(() => run.Decisions.Any(d => d.At > killedAt && NearIs(d.Decision, CandidateStatus.HostDown)), TimeSpan.FromSeconds(20), timeout.Token);
        var downAt = run.Decisions.Where(d => d.At > killedAt && NearIs(d.Decision, CandidateStatus.HostDown)).Select(d => d.At).DefaultIfEmpty(double.NaN).First();
        await Lab.ShapeAsync(Shaper, [(Far, FarDelay), (Near, NearDelay)], timeout.Token);
        var shapedAt = run.Now;
        var heldLongEnough = await LabPipelineRun.WaitUntilAsync(() => run.Decisions.Count(d => d.At > shapedAt + 4 && Scored(d.Decision)) >= 6, TimeSpan.FromSeconds(30), timeout.Token);
        var downEnd = run.Now;
        var whileDown = run.Decisions.Where(d => d.At >= downAt).Select(d => d.Decision).ToList();
        var nearRtt = run.MedianRttMs(Near, shapedAt + 4, downEnd);
        var farRtt = run.MedianRttMs(Far, shapedAt + 4, downEnd);
        var outcomesWhileDown = run.Outcomes.Count;

        // Back: a supervisor starts the daemon again.
        await Lab.RestartLibvirtdAsync(Near, timeout.Token);
        var restartedAt = run.Now;
        var moved = await LabPipelineRun.WaitUntilAsync(() => run.Outcomes.Count > 0, TimeSpan.FromSeconds(60), timeout.Token);
        var reading = await Lab.CreateGuestClient(Guest).WaitForAnswerAsync(TimeSpan.FromSeconds(20), timeout.Token);
        var copies = await RunningCopiesAsync();
        run.Dump();

        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"killed at t={killedAt:0.0}s, seen down at t={downAt:0.0}s, shaped at t={shapedAt:0.0}s; measured from the edge while down: {Near} {nearRtt:0.0} ms, {Far} {farRtt:0.0} ms; restarted at t={restartedAt:0.0}s"));
        var scoredWhileDown = whileDown.Where(Scored).ToList();
        var afterRestart = run.Decisions.Where(d => d.At > restartedAt).Select(d => d.Decision).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sawUp, Is.True, "cloudlet-2 was a candidate before its daemon stopped");
            Assert.That(sawDown, Is.True, "cloudlet-2 was seen down within 20 s of the kill");
            Assert.That(heldLongEnough, Is.True, "six scored windows while cloudlet-2 was down and the fastest");
            Assert.That(nearRtt, Is.LessThan(farRtt / 2), "cloudlet-2 is the fastest host by measurement");
            Assert.That(outcomesWhileDown, Is.Zero, "no migration while the fastest host's daemon is down");
            Assert.That(whileDown, Has.None.Matches<MigrationDecision>(d => d.IsMove), "no move while down");
            Assert.That(scoredWhileDown, Has.All.Matches<MigrationDecision>(d => NearIs(d, CandidateStatus.HostDown)), "every scored window lists cloudlet-2 as down");
            Assert.That(scoredWhileDown, Has.All.Matches<MigrationDecision>(d => d.Reason == DecisionReason.NoCandidates), "and says there is no candidate");
            Assert.That(afterRestart, Has.Some.Matches<MigrationDecision>(d => NearIs(d, CandidateStatus.Eligible)), "cloudlet-2 is a candidate again once its daemon is back");
            Assert.That(moved, Is.True, "a migration ran within 60 s of the restart");
            Assert.That(run.Outcomes.Select(o => (o.Outcome.Destination, o.Outcome.Kind)), Is.EqualTo(new[] { (Near, MigrationOutcomeKind.Succeeded) }),
                "one successful move; the outcomes: " + string.Join("; ", run.Outcomes.Select(o => $"{o.Outcome.Kind} {o.Outcome.Error?.Message}")));
            Assert.That(copies, Is.EqualTo(new[] { Near }), "the guest runs on cloudlet-2 only");
            Assert.That(reading.BootId, Is.EqualTo(_bootId), "the same guest answers from the edge");
        }
    }

    /// <summary>The demonstration's timing: three one-second confirmation windows, a short cooldown, samples at most 5 s old.</summary>
    private static LowestLatencyPolicyOptions DemoPolicy() => new()
    {
        ConfirmationWindows = 3,
        Cooldown = TimeSpan.FromSeconds(20),
        MaxSampleAge = TimeSpan.FromSeconds(5),
    };

    private async Task<string[]> RunningCopiesAsync()
    {
        var running = new List<string>();
        foreach (var host in Lab.Hosts)
        {
            if (await DomStateAsync(host.Name) == "running")
            {
                running.Add(host.Name);
            }
        }

        return [.. running];
    }

    private async Task<string?> DomStateAsync(string hostName)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(Lab.Virsh(Lab.GetHost(hostName), "domstate", Guest.Name));
        return r.Succeeded ? r.StandardOutput.Trim() : null;
    }
}
