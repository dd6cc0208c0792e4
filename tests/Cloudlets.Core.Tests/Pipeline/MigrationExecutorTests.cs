using Microsoft.Extensions.Time.Testing;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Options;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

public partial class MigrationExecutorTests
{
    private FakeTimeProvider _clock = null!;
    private List<MigrationOutcome> _outcomes = null!;

    [SetUp]
    public void SetUp()
    {
        _clock = VirtualClock.Create();
        _outcomes = [];
    }

    private MigrationExecutor Executor(Action<MigrationExecutorOptions>? configure = null, Func<ImprovementCheckArguments, ValueTask<ImprovementCheck>>? check = null)
    {
        var o = new MigrationExecutorOptions();
        configure?.Invoke(o);
        var executor = new MigrationExecutor(o, _clock, improvementCheck: check);
        executor.Outcomes.Subscribe(_outcomes.Add);
        return executor;
    }

    private static FakeHypervisorHost Manual(string name, params string[] vms)
    {
        var host = new FakeHypervisorHost(name) { MigrationMode = FakeMigrationMode.Manual };
        foreach (var vm in vms)
        {
            host.AddVm(vm);
        }

        return host;
    }

    [Test]
    public async Task TryStart_SameVmTwice_SecondRejected()
    {
        await using var executor = Executor();
        var (a, b, c) = (Manual("a", "vm"), Manual("b"), Manual("c"));
        Assert.That(executor.TryStart(new MigrationRequest("vm", a, b), out _), Is.Not.Null);
        Assert.That(executor.TryStart(new MigrationRequest("vm", a, c), out var why), Is.Null);
        Assert.That(why, Does.Contain("already being migrated"));
    }

    [Test]
    public async Task TryStart_PerHostAndTotalLimits_Rejected()
    {
        await using var executor = Executor(o =>
        {
            o.MaxConcurrentPerHost = 1;
            o.MaxConcurrentMigrations = 2;
        });
        var (a, b, c, d, e, f) = (Manual("a", "vm1"), Manual("b"), Manual("c", "vm2", "vm3"), Manual("d"), Manual("e", "vm4"), Manual("f"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(executor.TryStart(new MigrationRequest("vm1", a, b), out _), Is.Not.Null);
            Assert.That(executor.TryStart(new MigrationRequest("vm2", c, b), out var perHost), Is.Null);
            Assert.That(perHost, Does.Contain("host 'b'"));
            Assert.That(executor.TryStart(new MigrationRequest("vm3", c, d), out _), Is.Not.Null);
            Assert.That(executor.TryStart(new MigrationRequest("vm4", e, f), out var total), Is.Null);
            Assert.That(total, Does.Contain("limit in total is 2"));
            Assert.That(executor.ActiveCount, Is.EqualTo(2));
        }

        a.Pending[0].Succeed();
        Assert.That(executor.TryStart(new MigrationRequest("vm4", e, f), out _), Is.Not.Null, "a slot is free again");
    }

    [Test]
    public async Task TryStart_SameSourceAndDestination_Throws()
    {
        await using var executor = Executor();
        var a = Manual("a", "vm");
        Assert.That(() => executor.TryStart(new MigrationRequest("vm", a, a), out _), Throws.ArgumentException);
    }

    [Test]
    public async Task Run_NoProgress_AbortedAfterProgressTimeout()
    {
        await using var executor = Executor(o => o.ProgressTimeout = TimeSpan.FromSeconds(30));
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        executor.TryStart(new MigrationRequest("vm", a, b), out _);
        _clock.Step(TimeSpan.FromSeconds(29));
        Assert.That(_outcomes, Is.Empty);
        _clock.Step(TimeSpan.FromSeconds(1));

        Assert.That(_outcomes, Has.Count.EqualTo(1));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.Pending[0].WasCancelled, Is.True, "the migration call was cancelled (= aborted on the source)");
            Assert.That(_outcomes[0].Kind, Is.EqualTo(MigrationOutcomeKind.Aborted));
            Assert.That(_outcomes[0].AbortCause, Is.EqualTo(MigrationAbortCause.ProgressTimeout));
            Assert.That(_outcomes[0].Error, Is.InstanceOf<HypervisorException>());
            Assert.That(_outcomes[0].Duration, Is.EqualTo(TimeSpan.FromSeconds(30)));
            Assert.That(a.Vms.Select(v => v.Name), Does.Contain("vm"), "the VM stays on the source");
            Assert.That(executor.IsMigrating("vm"), Is.False);
        }
    }

    [Test]
    public async Task Run_ProgressReported_NotAbortedAndSucceeds()
    {
        await using var executor = Executor(o => o.ProgressTimeout = TimeSpan.FromSeconds(30));
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        executor.TryStart(new MigrationRequest("vm", a, b), out _);
        for (var i = 1; i <= 6; i++)
        {
            _clock.Step(TimeSpan.FromSeconds(20));
            a.Pending[0].ReportProcessed(i * 1000);
        }

        a.Pending[0].Succeed();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.Pending[0].WasCancelled, Is.False);
            Assert.That(_outcomes.Single().Kind, Is.EqualTo(MigrationOutcomeKind.Succeeded));
            Assert.That(_outcomes.Single().Result, Is.Not.Null);
            Assert.That(b.Vms.Select(v => v.Name), Does.Contain("vm"));
        }
    }

    [Test]
    public async Task Run_RepeatedReportWithoutNewData_AbortedAfterProgressTimeout()
    {
        await using var executor = Executor(o => o.ProgressTimeout = TimeSpan.FromSeconds(30));
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        executor.TryStart(new MigrationRequest("vm", a, b), out _);
        a.Pending[0].ReportProcessed(1000);
        for (var i = 0; i < 4; i++)
        {
            _clock.Step(TimeSpan.FromSeconds(10));
            a.Pending[0].ReportProcessed(1000); // stuck: the same count again
        }

        Assert.That(_outcomes.Select(o => o.AbortCause), Is.EqualTo(new List<MigrationAbortCause> { MigrationAbortCause.ProgressTimeout }));
    }

    [Test]
    public async Task Run_ProgressingButTooLong_AbortedAtCompletionTimeout()
    {
        await using var executor = Executor(o =>
        {
            o.ProgressTimeout = TimeSpan.FromSeconds(30);
            o.CompletionTimeout = TimeSpan.FromSeconds(45);
        });
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        executor.TryStart(new MigrationRequest("vm", a, b), out _);
        for (var i = 1; i <= 10; i++)
        {
            _clock.Step(TimeSpan.FromSeconds(10));
            a.Pending[0].ReportProcessed(i * 1000);
        }

        Assert.That(_outcomes, Has.Count.EqualTo(1));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_outcomes[0].Kind, Is.EqualTo(MigrationOutcomeKind.Aborted));
            Assert.That(_outcomes[0].AbortCause, Is.EqualTo(MigrationAbortCause.CompletionTimeout));
            Assert.That(_outcomes[0].Duration, Is.EqualTo(TimeSpan.FromSeconds(45)));
            Assert.That(a.Pending[0].WasCancelled, Is.True);
        }
    }

    [Test]
    public async Task Run_Failures_DestinationBackedOffExponentiallyAndCapped()
    {
        await using var executor = Executor(o =>
        {
            o.BackoffBase = TimeSpan.FromSeconds(30);
            o.BackoffMax = TimeSpan.FromSeconds(90);
        });
        var a = new FakeHypervisorHost("a") { MigrationMode = FakeMigrationMode.Fail };
        a.AddVm("vm");
        var b = new FakeHypervisorHost("b");
        var backoffs = new List<TimeSpan>();
        for (var i = 0; i < 4; i++)
        {
            Assert.That(executor.TryStart(new MigrationRequest("vm", a, b), out var why), Is.Not.Null, why);
            var until = executor.BackedOffUntil("b");
            Assert.That(until, Is.Not.Null);
            backoffs.Add(until!.Value - _clock.GetUtcNow());
            Assert.That(executor.TryStart(new MigrationRequest("vm", a, b), out var rejected), Is.Null, "no retry in a tight loop");
            Assert.That(rejected, Does.Contain("backed off"));
            _clock.Step(backoffs[^1]);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(backoffs, Is.EqualTo(new List<TimeSpan> { TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(90) }));
            Assert.That(_outcomes.Select(o => o.Kind), Has.All.EqualTo(MigrationOutcomeKind.Failed));
            Assert.That(_outcomes.Select(o => o.AbortCause), Has.All.EqualTo(MigrationAbortCause.None));
            Assert.That(_outcomes.Select(o => o.Error?.Message), Has.All.Contains("fake: migration of vm failed"));
            Assert.That(a.Vms.Select(v => v.Name), Does.Contain("vm"));
        }
    }

    [Test]
    public async Task Run_SuccessAfterFailure_ClearsBackoff()
    {
        await using var executor = Executor();
        var a = new FakeHypervisorHost("a") { MigrationMode = FakeMigrationMode.Fail };
        a.AddVm("vm");
        var b = new FakeHypervisorHost("b");
        executor.TryStart(new MigrationRequest("vm", a, b), out _);
        _clock.Step(TimeSpan.FromSeconds(30));
        a.MigrationMode = FakeMigrationMode.Succeed;
        executor.TryStart(new MigrationRequest("vm", a, b), out _);
        Assert.That(executor.BackedOffUntil("b"), Is.Null);
    }

    [Test]
    public async Task Run_Success_OutcomeCarriesImprovementCheckAfterDelay()
    {
        ImprovementCheckArguments? seen = null;
        await using var executor = Executor(
            o => o.ImprovementCheckDelay = TimeSpan.FromSeconds(15),
            args =>
            {
                seen = args;
                return ValueTask.FromResult(new ImprovementCheck(ImprovementVerdict.NotImproved, 20, 25));
            });
        var (a, b) = (new FakeHypervisorHost("a"), new FakeHypervisorHost("b"));
        a.AddVm("vm");
        executor.TryStart(new MigrationRequest("vm", a, b, ScoreBeforeMs: 20), out _);
        _clock.Step(TimeSpan.FromSeconds(14));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(seen, Is.Null, "not checked before the delay");
            Assert.That(_outcomes, Is.Empty);
            Assert.That(executor.IsMigrating("vm"), Is.True, "the VM stays locked until its outcome is out");
            Assert.That(executor.TryStart(new MigrationRequest("vm2", a, b), out _), Is.Not.Null, "the hosts are free once the call returned");
        }

        _clock.Step(TimeSpan.FromSeconds(1));
        var outcome = _outcomes.First(o => o.VmName == "vm");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(seen!.Value.CompletedAt, Is.EqualTo(VirtualClock.Epoch));
            Assert.That(outcome.Kind, Is.EqualTo(MigrationOutcomeKind.Succeeded));
            Assert.That(outcome.Improvement.Verdict, Is.EqualTo(ImprovementVerdict.NotImproved));
            Assert.That(outcome.Improvement.GainMs, Is.EqualTo(-5));
        }
    }

    [Test]
    public async Task DisposeAsync_RunningMigration_AbortedAsShutdown()
    {
        var executor = Executor();
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        executor.TryStart(new MigrationRequest("vm", a, b), out _);
        var completed = false;
        executor.Outcomes.Subscribe(_ => { }, () => completed = true);
        await executor.DisposeAsync();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_outcomes.Single().AbortCause, Is.EqualTo(MigrationAbortCause.Shutdown));
            Assert.That(completed, Is.True);
            Assert.That(() => executor.TryStart(new MigrationRequest("vm", a, b), out _), Throws.InstanceOf<ObjectDisposedException>());
        }
    }

    private static IEnumerable<TestCaseData> InvalidOptions()
    {
        yield return new TestCaseData((Action<MigrationExecutorOptions>)(o => o.MaxConcurrentMigrations = 0)).SetName("Ctor_ZeroTotal_Throws");
        yield return new TestCaseData((Action<MigrationExecutorOptions>)(o => o.MaxConcurrentPerHost = 0)).SetName("Ctor_ZeroPerHost_Throws");
        yield return new TestCaseData((Action<MigrationExecutorOptions>)(o => o.ProgressTimeout = TimeSpan.Zero)).SetName("Ctor_ZeroProgressTimeout_Throws");
        yield return new TestCaseData((Action<MigrationExecutorOptions>)(o => o.CompletionTimeout = TimeSpan.FromDays(2))).SetName("Ctor_HugeCompletionTimeout_Throws");
        yield return new TestCaseData((Action<MigrationExecutorOptions>)(o => o.BackoffMax = TimeSpan.FromSeconds(1))).SetName("Ctor_BackoffMaxBelowBase_Throws");
        yield return new TestCaseData((Action<MigrationExecutorOptions>)(o => o.ImprovementCheckDelay = TimeSpan.FromSeconds(-1))).SetName("Ctor_NegativeCheckDelay_Throws");
        yield return new TestCaseData((Action<MigrationExecutorOptions>)(o => o.Migration = null!)).SetName("Ctor_NullMigrationOptions_Throws");
    }

    [TestCaseSource(nameof(InvalidOptions))]
    public void Ctor_InvalidOption_Throws(Action<MigrationExecutorOptions> spoil)
    {
        var o = new MigrationExecutorOptions();
        spoil(o);
        Assert.That(() => new MigrationExecutor(o, _clock), Throws.TypeOf<OptionsValidationException>().With.Property(nameof(OptionsValidationException.Errors)).Count.EqualTo(1));
    }

    [Test]
    public async Task TryStart_Started_HandleCarriesThePublishedOutcome()
    {
        await using var executor = Executor();
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        var handle = executor.TryStart(new MigrationRequest("vm", a, b), out var why);
        Assert.That(handle, Is.Not.Null, why);
        Assert.That(handle!.Outcome.IsCompleted, Is.False);

        a.Pending[0].Succeed();
        var outcome = await handle.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(handle.VmName, Is.EqualTo("vm"));
            Assert.That(outcome.Kind, Is.EqualTo(MigrationOutcomeKind.Succeeded));
            Assert.That(_outcomes, Is.EqualTo(new[] { outcome }));
            Assert.That(b.Vms.Select(v => v.Name), Is.EqualTo(new[] { "vm" }));
        }
    }

    [Test]
    public async Task Abort_OneOfTwoMigrations_OnlyThatOneAbortedAndItsVmStays()
    {
        await using var executor = Executor();
        var (a, b, c, d) = (Manual("a", "vm1"), Manual("b"), Manual("c", "vm2"), Manual("d"));
        var first = executor.TryStart(new MigrationRequest("vm1", a, b), out _)!;
        var second = executor.TryStart(new MigrationRequest("vm2", c, d), out _)!;

        Assert.That(first.Abort(), Is.True);
        var aborted = await first.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((aborted.Kind, aborted.AbortCause), Is.EqualTo((MigrationOutcomeKind.Aborted, MigrationAbortCause.Requested)));
            Assert.That(a.Pending[0].WasCancelled, Is.True);
            Assert.That(a.Vms.Select(v => v.Name), Is.EqualTo(new[] { "vm1" }), "the VM stays on its source");
            Assert.That(c.Pending[0].WasCancelled, Is.False, "the other migration runs on");
            Assert.That(second.Outcome.IsCompleted, Is.False);
            Assert.That(first.Abort(), Is.False, "an ended migration cannot be aborted again");
        }

        c.Pending[0].Succeed();
        Assert.That((await second.Outcome.WaitAsync(TimeSpan.FromSeconds(30))).Kind, Is.EqualTo(MigrationOutcomeKind.Succeeded));
    }

    [Test]
    public async Task StopAsync_MigrationRunning_NoNewStartAndTheRunningOneFinishes()
    {
        await using var executor = Executor();
        var (a, b, c, d) = (Manual("a", "vm1"), Manual("b"), Manual("c", "vm2"), Manual("d"));
        var running = executor.TryStart(new MigrationRequest("vm1", a, b), out _)!;

        var stop = executor.StopAsync(TimeSpan.FromMinutes(1));
        _clock.Step(TimeSpan.FromSeconds(5));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(stop.IsCompleted, Is.False, "the stop waits for the running migration");
            Assert.That(executor.TryStart(new MigrationRequest("vm2", c, d), out var why), Is.Null);
            Assert.That(why, Does.Contain("stopping"));
            Assert.That(c.Migrations, Is.Empty);
        }

        a.Pending[0].Succeed();
        await stop.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((await running.Outcome).Kind, Is.EqualTo(MigrationOutcomeKind.Succeeded));
            Assert.That(a.Pending[0].WasCancelled, Is.False);
            Assert.That(b.Vms.Select(v => v.Name), Is.EqualTo(new[] { "vm1" }));
        }
    }

    [Test]
    public async Task StopAsync_DrainTimeoutPasses_RemainingMigrationAbortedVmStays()
    {
        await using var executor = Executor();
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        var running = executor.TryStart(new MigrationRequest("vm", a, b), out _)!;

        var stop = executor.StopAsync(TimeSpan.FromSeconds(10));
        _clock.Step(TimeSpan.FromSeconds(9));
        Assert.That(stop.IsCompleted, Is.False);
        _clock.Step(TimeSpan.FromSeconds(1));
        await stop.WaitAsync(TimeSpan.FromSeconds(30));
        var outcome = await running.Outcome;
        using (Assert.EnterMultipleScope())
        {
            Assert.That((outcome.Kind, outcome.AbortCause), Is.EqualTo((MigrationOutcomeKind.Aborted, MigrationAbortCause.Shutdown)));
            Assert.That(a.Pending[0].WasCancelled, Is.True);
            Assert.That(a.Vms.Select(v => v.Name), Is.EqualTo(new[] { "vm" }));
        }
    }

    [Test]
    public async Task StopAsync_Cancelled_AbortsAtOnce()
    {
        await using var executor = Executor();
        var (a, b) = (Manual("a", "vm"), Manual("b"));
        var running = executor.TryStart(new MigrationRequest("vm", a, b), out _)!;
        using var cts = new CancellationTokenSource();

        var stop = executor.StopAsync(TimeSpan.FromMinutes(10), cts.Token);
        await cts.CancelAsync();
        await stop.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That((await running.Outcome).AbortCause, Is.EqualTo(MigrationAbortCause.Shutdown));
    }
}
