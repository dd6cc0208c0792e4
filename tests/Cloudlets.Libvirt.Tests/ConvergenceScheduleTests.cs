using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

public class ConvergenceScheduleTests
{
    private const long MiB = 1 << 20;

    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static TimeSpan Ms(double milliseconds) => TimeSpan.FromMilliseconds(milliseconds);

    [Test]
    public void Downtimes_NoStart_RiseFromFinalOverStepsToFinalAsNovaDoes()
    {
        // Nova's defaults: 500 ms in 10 steps: 50, 95, 140, ... 500.
        var values = ConvergenceSchedule.Downtimes(null, Ms(500), 10);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(values, Has.Count.EqualTo(11));
            Assert.That(values[0], Is.EqualTo(Ms(50)));
            Assert.That(values[1], Is.EqualTo(Ms(95)));
            Assert.That(values[^1], Is.EqualTo(Ms(500)));
            Assert.That(values, Is.Ordered.Ascending);
        }
    }

    [Test]
    public void Downtimes_WithStart_StartThereAndEndAtFinal()
    {
        Assert.That(ConvergenceSchedule.Downtimes(Ms(100), Ms(400), 3), Is.EqualTo(new[] { Ms(100), Ms(200), Ms(300), Ms(400) }));
    }

    [Test]
    public void Next_DowntimeSteps_OnePerDelayThenNothing()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { FinalMaxDowntime = Ms(400), DowntimeSteps = 2, DowntimeStepDelay = S(5) }, null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.InitialDowntime, Is.EqualTo(Ms(200)));
            Assert.That(schedule.Next(S(4.9), 100 * MiB), Is.Null);
            Assert.That(schedule.Next(S(5), 90 * MiB), Is.EqualTo(new ConvergenceStep(MigrationEscalationAction.RaisedMaxDowntime, MigrationEscalationCause.Schedule, Ms(300))));
            Assert.That(schedule.Next(S(9.9), 80 * MiB), Is.Null, "the delay counts from the previous step");
            Assert.That(schedule.Next(S(10), 70 * MiB)?.MaxDowntime, Is.EqualTo(Ms(400)));
            Assert.That(schedule.Next(S(100), 60 * MiB), Is.Null, "no steps left, no timeout: nothing more");
            Assert.That(schedule.Finished, Is.False);
        }
    }

    [Test]
    public void Next_CompletionTimeout_TakesTheCompletionActionOnce()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { CompletionTimeout = S(30) }, null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.InitialDowntime, Is.Null);
            Assert.That(schedule.Next(S(29.9), 10 * MiB), Is.Null);
            Assert.That(schedule.Next(S(30), 10 * MiB), Is.EqualTo(new ConvergenceStep(MigrationEscalationAction.Aborted, MigrationEscalationCause.CompletionTimeout, null)));
            Assert.That(schedule.Finished, Is.True);
            Assert.That(schedule.Next(S(31), 10 * MiB), Is.Null, "nothing after the completion action");
        }
    }

    [Test]
    public void Next_CompletionTimeoutWithPostCopy_SwitchesToPostCopy()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { CompletionTimeout = S(30), CompletionAction = LibvirtCompletionAction.PostCopy }, null);

        Assert.That(schedule.Next(S(30), null)?.Action, Is.EqualTo(MigrationEscalationAction.SwitchedToPostCopy));
    }

    [Test]
    public void Next_CompletionTimeoutBeforeStepsRunOut_WinsOverTheNextStep()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { FinalMaxDowntime = Ms(500), DowntimeStepDelay = S(10), CompletionTimeout = S(10) }, null);

        Assert.That(schedule.Next(S(10), 10 * MiB)?.Cause, Is.EqualTo(MigrationEscalationCause.CompletionTimeout));
    }

    [Test]
    public void Next_RemainingKeepsFalling_NoStall()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { StallTimeout = S(5) }, null);

        for (var t = 0; t <= 60; t++)
        {
            Assert.That(schedule.Next(S(t), (100 - t) * MiB), Is.Null, $"at {t} s");
        }
    }

    [Test]
    public void Next_NoNewMinimumForStallTimeout_TakesTheCompletionActionWhenNoStepIsLeft()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { StallTimeout = S(5) }, null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.Next(S(1), 50 * MiB), Is.Null);
            Assert.That(schedule.Next(S(3), 60 * MiB), Is.Null, "a rise is no progress");
            Assert.That(schedule.Next(S(5), 50 * MiB - 1), Is.Null, "less than 1 MiB below the minimum is noise, not progress");
            Assert.That(schedule.Next(S(6), 55 * MiB), Is.EqualTo(new ConvergenceStep(MigrationEscalationAction.Aborted, MigrationEscalationCause.Stalled, null)));
        }
    }

    [Test]
    public void Next_NewMinimum_RestartsTheStallClock()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { StallTimeout = S(5) }, null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.Next(S(1), 50 * MiB), Is.Null);
            Assert.That(schedule.Next(S(4), 48 * MiB), Is.Null);
            Assert.That(schedule.Next(S(8.9), 60 * MiB), Is.Null, "5 s since the minimum at 4 s have not passed");
            Assert.That(schedule.Next(S(9), 60 * MiB)?.Cause, Is.EqualTo(MigrationEscalationCause.Stalled));
        }
    }

    [Test]
    public void Next_StallWithStepsLeft_TakesTheNextStepNowAndWaitsAgain()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { FinalMaxDowntime = Ms(300), DowntimeSteps = 2, DowntimeStepDelay = S(60), StallTimeout = S(5) }, null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.Next(S(0), 40 * MiB), Is.Null);
            Assert.That(schedule.Next(S(5), 40 * MiB), Is.EqualTo(new ConvergenceStep(MigrationEscalationAction.RaisedMaxDowntime, MigrationEscalationCause.Stalled, Ms(225))), "150 ms first, then 225, 300");
            Assert.That(schedule.Next(S(9.9), 40 * MiB), Is.Null, "a step restarts the stall clock");
            Assert.That(schedule.Next(S(10), 40 * MiB)?.MaxDowntime, Is.EqualTo(Ms(300)));
            Assert.That(schedule.Next(S(15), 40 * MiB)?.Action, Is.EqualTo(MigrationEscalationAction.Aborted), "no step left: the completion action");
        }
    }

    [Test]
    public void Next_NoRemainingFigures_StallsFromTheStart()
    {
        // A job that never reports remaining data makes no visible progress.
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { StallTimeout = S(5) }, null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.Next(S(4), null), Is.Null);
            Assert.That(schedule.Next(S(5), null)?.Cause, Is.EqualTo(MigrationEscalationCause.Stalled));
        }
    }

    [Test]
    public void Next_LaterPassesFallToZeroEachTime_OnlyEachPassStartCounts()
    {
        // The sawtooth of a pass that never converges: 20 MiB after each sync, sent down to 0 before the next.
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { StallTimeout = S(5) }, null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.Next(S(0), 200 * MiB, 1), Is.Null);
            Assert.That(schedule.Next(S(3), 20 * MiB, 1), Is.Null, "the first pass makes progress all along");
            Assert.That(schedule.Next(S(4), 20 * MiB, 2), Is.Null);
            Assert.That(schedule.Next(S(6), 0, 2), Is.Null, "zero at the end of a pass is not progress");
            Assert.That(schedule.Next(S(7), 20 * MiB, 3), Is.Null);
            Assert.That(schedule.Next(S(8), 0, 3)?.Cause, Is.EqualTo(MigrationEscalationCause.Stalled), "no smaller dirty set since 3 s");
        }
    }

    [Test]
    public void Next_DirtySetShrinksPassByPass_NoStall()
    {
        var schedule = new ConvergenceSchedule(new LibvirtConvergenceOptions { StallTimeout = S(5) }, null);

        for (var pass = 2; pass < 20; pass++)
        {
            Assert.That(schedule.Next(S(pass * 3), (40 - pass) * MiB, pass), Is.Null, $"start of pass {pass}");
            Assert.That(schedule.Next(S((pass * 3) + 2), 0, pass), Is.Null, $"end of pass {pass}");
        }
    }
}
