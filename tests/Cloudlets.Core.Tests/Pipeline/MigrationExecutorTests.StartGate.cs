using Cloudlets.Core.Election;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

// Issue 17: a move refused before it starts (start gate, fenced host) is skipped, never a failure.
public partial class MigrationExecutorTests
{
    private MigrationExecutor GatedExecutor(IMigrationStartGate gate)
    {
        var executor = new MigrationExecutor(new MigrationExecutorOptions(), _clock, startGate: gate);
        executor.Outcomes.Subscribe(_outcomes.Add);
        return executor;
    }

    [Test]
    public async Task Run_StartGateRefuses_SkippedHostNotCalledNoBackoff()
    {
        var gate = new FixedGate(allow: false);
        await using var executor = GatedExecutor(gate);
        var a = new FakeHypervisorHost("a");
        a.AddVm("vm");
        var b = new FakeHypervisorHost("b");
        var handle = executor.TryStart(new MigrationRequest("vm", a, b), out var why);
        Assert.That(handle, Is.Not.Null, why);
        var outcome = await handle!.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(outcome.Kind, Is.EqualTo(MigrationOutcomeKind.Skipped));
            Assert.That(outcome.Error, Is.InstanceOf<MigrationNotStartedException>());
            Assert.That(outcome.Error!.Message, Does.Contain("not leading here"));
            Assert.That(await handle.Started, Is.False);
            Assert.That(a.Migrations, Is.Empty, "the host was never asked");
            Assert.That(executor.BackedOffUntil("b"), Is.Null, "a skipped move says nothing about the destination");
            Assert.That(executor.IsMigrating("vm"), Is.False);
            Assert.That(gate.Calls, Is.EqualTo(1));
        }

        // The next attempt is admitted at once (no backoff), and runs when the gate allows.
        gate.Allow = true;
        var again = executor.TryStart(new MigrationRequest("vm", a, b), out why);
        Assert.That(again, Is.Not.Null, why);
        Assert.That((await again!.Outcome.WaitAsync(TimeSpan.FromSeconds(30))).Kind, Is.EqualTo(MigrationOutcomeKind.Succeeded));
        Assert.That(await again.Started, Is.True);
    }

    [Test]
    public async Task Run_StartGateThrows_SkippedAsRefused()
    {
        await using var executor = GatedExecutor(new FixedGate(allow: true) { Throw = true });
        var a = new FakeHypervisorHost("a");
        a.AddVm("vm");
        var handle = executor.TryStart(new MigrationRequest("vm", a, new FakeHypervisorHost("b")), out _);
        var outcome = await handle!.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That((outcome.Kind, a.Migrations.Count), Is.EqualTo((MigrationOutcomeKind.Skipped, 0)));
        Assert.That(outcome.Error!.Message, Does.Contain("the start gate failed"));
    }

    [Test]
    public async Task Run_FencedHostRefuses_SkippedNotFailedNoBackoff()
    {
        // A LeadershipFencedHost whose election does not lead: it throws LeadershipLostException before
        // touching the host. Before the start gate existed this counted as Failed and backed b off.
        var store = new InMemoryElectionStore(_clock);
        await using var election = new InMemoryLeaderElection(store, new LeaderElectionOptions { Election = "r1", CandidateId = "me" });
        var inner = new FakeHypervisorHost("a");
        inner.AddVm("vm");
        await using var a = new LeadershipFencedHost(inner, election);
        await using var executor = Executor();
        var handle = executor.TryStart(new MigrationRequest("vm", a, new FakeHypervisorHost("b")), out var why);
        Assert.That(handle, Is.Not.Null, why);
        var outcome = await handle!.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(outcome.Kind, Is.EqualTo(MigrationOutcomeKind.Skipped));
            Assert.That(outcome.Error, Is.InstanceOf<LeadershipLostException>());
            Assert.That(executor.BackedOffUntil("b"), Is.Null);
            Assert.That((inner.Migrations.Count, a.MigrationsRefused), Is.EqualTo((0, 1)));
        }
    }

    [Test]
    public async Task Run_LeadershipStartGateNotLeading_SkippedBeforeTheHost()
    {
        var store = new InMemoryElectionStore(_clock);
        await using var election = new InMemoryLeaderElection(store, new LeaderElectionOptions { Election = "r1", CandidateId = "me" });
        await using var executor = GatedExecutor(new LeadershipStartGate(election));
        var a = new FakeHypervisorHost("a");
        a.AddVm("vm");
        var outcome = await executor.TryStart(new MigrationRequest("vm", a, new FakeHypervisorHost("b")), out _)!.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(outcome.Kind, Is.EqualTo(MigrationOutcomeKind.Skipped));
            Assert.That(outcome.Error!.Message, Does.Contain("candidate 'me' does not lead election 'r1'"));
            Assert.That(a.Migrations, Is.Empty);
        }
    }

    [Test]
    public async Task Run_RealFailureWithGate_StillFailedAndBackedOff()
    {
        await using var executor = GatedExecutor(new FixedGate(allow: true));
        var a = new FakeHypervisorHost("a") { MigrationMode = FakeMigrationMode.Fail };
        a.AddVm("vm");
        var handle = executor.TryStart(new MigrationRequest("vm", a, new FakeHypervisorHost("b")), out _);
        var outcome = await handle!.Outcome.WaitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(outcome.Kind, Is.EqualTo(MigrationOutcomeKind.Failed));
            Assert.That(await handle.Started, Is.True);
            Assert.That(executor.BackedOffUntil("b"), Is.Not.Null);
        }
    }

    private sealed class FixedGate(bool allow) : IMigrationStartGate
    {
        public bool Allow { get; set; } = allow;

        public bool Throw { get; init; }

        public int Calls { get; private set; }

        public ValueTask<MigrationStartVerdict> CheckAsync(MigrationRequest request, CancellationToken cancellationToken)
        {
            Calls++;
            if (Throw)
            {
                throw new InvalidOperationException("the store is gone");
            }

            return ValueTask.FromResult(Allow ? MigrationStartVerdict.Allow : MigrationStartVerdict.Refuse("not leading here"));
        }
    }
}
