using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt;

/// <summary>One step the schedule says is due: what to do, why, and the downtime to set.</summary>
/// <param name="Action">What to do.</param>
/// <param name="Cause">Why it is due.</param>
/// <param name="MaxDowntime">The allowed downtime to set (for <see cref="MigrationEscalationAction.RaisedMaxDowntime"/>).</param>
internal sealed record ConvergenceStep(MigrationEscalationAction Action, MigrationEscalationCause Cause, TimeSpan? MaxDowntime);

/// <summary>
/// Which convergence step is due, given the time since the migration started and the data still to send:
/// pure logic, fed one sample at a time (not thread-safe; one migration's watch loop owns it). Progress is a new
/// minimum of the remaining data: during the first pass any sample, in later passes the first sample of each pass
/// (the dirty set the last sync found).
/// Downtime rises linearly from its first value to <see cref="LibvirtConvergenceOptions.FinalMaxDowntime"/>,
/// one step per <see cref="LibvirtConvergenceOptions.DowntimeStepDelay"/> after the previous one; a stall
/// (no new minimum for <see cref="LibvirtConvergenceOptions.StallTimeout"/> since the later
/// of the last minimum and the last step) takes the next step at once, or the completion action when none is
/// left; the completion timeout takes the completion action. After the completion action nothing more is due.
/// </summary>
internal sealed class ConvergenceSchedule
{
    /// <summary>How far below the last minimum the remaining data must fall to count as progress (noise is not progress).</summary>
    internal const long StallProgressBytes = 1 << 20;

    private readonly LibvirtConvergenceOptions _options;
    private readonly IReadOnlyList<TimeSpan> _downtimes;
    private int _next = 1;
    private TimeSpan _lastStepAt;
    private long? _minimum;
    private TimeSpan _minimumAt;
    private bool _finished;
    private int? _iteration;

    /// <summary>Creates the schedule for validated options.</summary>
    /// <param name="options">The convergence options.</param>
    /// <param name="startDowntime">The migration's own max downtime (the first step), or <see langword="null"/> for the final value divided by the step count.</param>
    public ConvergenceSchedule(LibvirtConvergenceOptions options, TimeSpan? startDowntime)
    {
        _options = options;
        _downtimes = options.FinalMaxDowntime is { } final ? Downtimes(startDowntime, final, options.DowntimeSteps) : [];
    }

    /// <summary>The allowed downtime to set before the migration starts, or <see langword="null"/> when there are no downtime steps.</summary>
    public TimeSpan? InitialDowntime => _downtimes.Count > 0 ? _downtimes[0] : null;

    /// <summary>Whether the completion action was taken (nothing more is due).</summary>
    public bool Finished => _finished;

    /// <summary>
    /// The allowed downtime at each step, first to last (<paramref name="steps"/> + 1 values), as Nova computes it:
    /// from <paramref name="start"/> (or <paramref name="final"/> / <paramref name="steps"/>) linearly to <paramref name="final"/>.
    /// </summary>
    public static IReadOnlyList<TimeSpan> Downtimes(TimeSpan? start, TimeSpan final, int steps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        var first = start ?? final / steps;
        var values = new TimeSpan[steps + 1];
        for (var i = 0; i <= steps; i++)
        {
            // Whole milliseconds: that is what libvirt takes.
            values[i] = TimeSpan.FromMilliseconds(Math.Ceiling((first + ((final - first) * i / steps)).TotalMilliseconds));
        }

        return values;
    }

    /// <summary>The step due now, or <see langword="null"/>; a returned step counts as taken.</summary>
    /// <param name="elapsed">Time since the migration started.</param>
    /// <param name="remainingBytes">The data still to send, or <see langword="null"/> when the sample did not say.</param>
    /// <param name="iteration">The pass over memory the sample is in, or <see langword="null"/> when the sample did not say.</param>
    public ConvergenceStep? Next(TimeSpan elapsed, long? remainingBytes, int? iteration = null)
    {
        if (_finished)
        {
            return null;
        }

        // Within a later pass the remaining data falls to near zero every time (the pass sends what the last
        // sync found), so only the figure just after a sync says whether the dirty set shrinks; the first pass
        // (the bulk copy) makes progress all along.
        var counts = iteration is not { } pass || pass <= 1 || pass != _iteration;
        _iteration = iteration;
        if (counts && remainingBytes is { } remaining && (_minimum is not { } min || remaining <= min - StallProgressBytes))
        {
            _minimum = remaining;
            _minimumAt = elapsed;
        }

        if (_options.CompletionTimeout is { } timeout && elapsed >= timeout)
        {
            return Complete(MigrationEscalationCause.CompletionTimeout);
        }

        var stepsLeft = _next < _downtimes.Count;
        var quietSince = _minimumAt > _lastStepAt ? _minimumAt : _lastStepAt;
        if (_options.StallTimeout is { } stall && elapsed - quietSince >= stall)
        {
            return stepsLeft ? Step(elapsed, MigrationEscalationCause.Stalled) : Complete(MigrationEscalationCause.Stalled);
        }

        return stepsLeft && elapsed - _lastStepAt >= _options.DowntimeStepDelay ? Step(elapsed, MigrationEscalationCause.Schedule) : null;
    }

    private ConvergenceStep Step(TimeSpan elapsed, MigrationEscalationCause cause)
    {
        _lastStepAt = elapsed;
        return new ConvergenceStep(MigrationEscalationAction.RaisedMaxDowntime, cause, _downtimes[_next++]);
    }

    private ConvergenceStep Complete(MigrationEscalationCause cause)
    {
        _finished = true;
        var action = _options.CompletionAction == LibvirtCompletionAction.PostCopy ? MigrationEscalationAction.SwitchedToPostCopy : MigrationEscalationAction.Aborted;
        return new ConvergenceStep(action, cause, null);
    }
}
