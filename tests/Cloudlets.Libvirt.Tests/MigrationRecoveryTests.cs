using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

/// <summary>
/// Every row of the recovery state table (src/Cloudlets.Libvirt/README.md), as the pure decision
/// over what both hosts showed. The races that lead to these states (a source daemon still
/// finishing a peer-to-peer migration after the client's connection dropped; a destination that
/// resumed just before its daemon died) are scripted here as the observations they produce.
/// </summary>
public class MigrationRecoveryTests
{
    private const int User = 1;
    private const int IoError = 5;
    private const int PostCopyFailed = 13;
    private const int Booted = 1;

    private static DomainObservation Running(bool job = false) => new(true, true, VmState.Running, Booted, job);

    private static DomainObservation Paused(int reason, bool job = false) => new(true, true, VmState.Paused, reason, job);

    private static DomainObservation ShutOff() => new(true, true, VmState.ShutOff, 4, false);

    private static readonly DomainObservation Absent = DomainObservation.Absent;
    private static readonly DomainObservation Unreachable = DomainObservation.Unreachable;
    private static readonly DomainObservation Incoming = Paused(MigrationRecovery.PausedByMigration, job: true);

    private static IEnumerable<TestCaseData> Table()
    {
        TestCaseData Row(string rule, DomainObservation source, DomainObservation destination, RecoveryAction action, DestinationCopyAction copy, bool runningOnSource) =>
            new TestCaseData(source, destination, action, copy, runningOnSource).SetName($"Decide_{rule}_{source}_{destination}".Replace(' ', '_').Replace(",", "").Replace("(", "").Replace(")", "").Replace("/", ""));

        // S1: the source cannot be asked: nothing is touched, whatever the destination shows.
        yield return Row("S1", Unreachable, Incoming, RecoveryAction.Report, DestinationCopyAction.LeftUntouched, false);
        yield return Row("S1", Unreachable, Absent, RecoveryAction.Report, DestinationCopyAction.None, false);
        yield return Row("S1", Unreachable, Unreachable, RecoveryAction.Report, DestinationCopyAction.Unknown, false);

        // S2: the client's call failed but the source daemon still migrates (the connection dropped, the daemon did not).
        yield return Row("S2", Running(job: true), Incoming, RecoveryAction.WaitForSourceJob, DestinationCopyAction.LeftUntouched, true);
        yield return Row("S2", Paused(MigrationRecovery.PausedByMigration, job: true), Incoming, RecoveryAction.WaitForSourceJob, DestinationCopyAction.LeftUntouched, false);

        // R1: both running: alarm.
        yield return Row("R1", Running(), Running(), RecoveryAction.Alarm, DestinationCopyAction.BothRunning, true);

        // R2-R5: the source runs with no job.
        yield return Row("R2", Running(), Unreachable, RecoveryAction.Report, DestinationCopyAction.Unknown, true);
        yield return Row("R3", Running(), Absent, RecoveryAction.Report, DestinationCopyAction.None, true);
        yield return Row("R3", Running(), ShutOff(), RecoveryAction.Report, DestinationCopyAction.None, true);
        yield return Row("R4", Running(), Incoming, RecoveryAction.DestroyDestinationCopy, DestinationCopyAction.Removed, true);
        yield return Row("R4", Running(), Paused(MigrationRecovery.PausedByMigration), RecoveryAction.DestroyDestinationCopy, DestinationCopyAction.Removed, true);
        yield return Row("R5", Running(), Paused(User), RecoveryAction.Report, DestinationCopyAction.LeftUntouched, true);
        yield return Row("R5", Running(), Paused(PostCopyFailed), RecoveryAction.Report, DestinationCopyAction.LeftUntouched, true);

        // P1-P3: the source is paused.
        yield return Row("P1", Paused(MigrationRecovery.PausedByMigration), Absent, RecoveryAction.ResumeSource, DestinationCopyAction.None, false);
        yield return Row("P2", Paused(MigrationRecovery.PausedByMigration), Incoming, RecoveryAction.Report, DestinationCopyAction.LeftUntouched, false);
        yield return Row("P2", Paused(MigrationRecovery.PausedByMigration), Running(), RecoveryAction.Report, DestinationCopyAction.LeftUntouched, false);
        yield return Row("P2", Paused(MigrationRecovery.PausedByMigration), Unreachable, RecoveryAction.Report, DestinationCopyAction.Unknown, false);
        yield return Row("P3", Paused(User), Absent, RecoveryAction.Report, DestinationCopyAction.None, false);
        yield return Row("P3", Paused(IoError), Absent, RecoveryAction.Report, DestinationCopyAction.None, false);
        yield return Row("P3", Paused(PostCopyFailed), Paused(PostCopyFailed), RecoveryAction.Report, DestinationCopyAction.LeftUntouched, false);

        // G1: the source no longer has the VM running (it handed over): the destination's copy may be the only one.
        yield return Row("G1", Absent, Incoming, RecoveryAction.Report, DestinationCopyAction.LeftUntouched, false);
        yield return Row("G1", ShutOff(), Running(), RecoveryAction.Report, DestinationCopyAction.LeftUntouched, false);
        yield return Row("G1", Absent, Absent, RecoveryAction.Report, DestinationCopyAction.None, false);
        yield return Row("G1", ShutOff(), Unreachable, RecoveryAction.Report, DestinationCopyAction.Unknown, false);
    }

    [TestCaseSource(nameof(Table))]
    public void Decide_Row(object source, object destination, object action, DestinationCopyAction copy, bool runningOnSource)
    {
        // object: the observation types are internal to the package.
        var decision = MigrationRecovery.Decide((DomainObservation)source, (DomainObservation)destination);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(decision.Action, Is.EqualTo((RecoveryAction)action), decision.Rule);
            Assert.That(decision.Copy, Is.EqualTo(copy), decision.Rule);
            Assert.That(decision.VmRunningOnSource, Is.EqualTo(runningOnSource), decision.Rule);
        }
    }

    [Test]
    public void Decide_EveryCombination_DestroysOnlyAnIncomingCopyWhileTheSourceRunsWithoutAJob()
    {
        DomainObservation[] sides =
        [
            Unreachable, Absent, ShutOff(), Running(), Running(job: true),
            .. Enumerable.Range(0, 15).SelectMany(r => new[] { Paused(r), Paused(r, job: true) }),
        ];

        foreach (var source in sides)
        {
            foreach (var destination in sides)
            {
                var decision = MigrationRecovery.Decide(source, destination);
                var mayDestroy = source.Runs && !source.MigrationJob && destination.PausedByMigration;
                Assert.That(decision.Action == RecoveryAction.DestroyDestinationCopy, Is.EqualTo(mayDestroy), $"{source} / {destination}: {decision.Rule}");
                if (decision.Action == RecoveryAction.ResumeSource)
                {
                    Assert.That(source.PausedByMigration && destination.Gone && !source.MigrationJob, Is.True, $"{source} / {destination}");
                }
            }
        }
    }

    [Test]
    public void MigrationException_BothRunning_IsNeverTransient()
    {
        var inner = new HypervisorException(HypervisorErrorKind.ConnectionLost, "dropped");
        var alarm = new MigrationException(HypervisorErrorKind.ConnectionLost, "m", "vm", "a", "b", vmRunningOnSource: true, DestinationCopyAction.BothRunning, inner);
        var clean = new MigrationException(HypervisorErrorKind.ConnectionLost, "m", "vm", "a", "b", vmRunningOnSource: true, DestinationCopyAction.None, inner);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(inner.IsTransient, Is.True);
            Assert.That(alarm.IsTransient, Is.False);
            Assert.That(clean.IsTransient, Is.True);
        }
    }
}
