namespace Cloudlets.Core.Probing;

/// <summary>
/// How a many-target run sends its probes, the way <c>fping -C</c> does: <see cref="Count"/> rounds,
/// targets in turn, <see cref="Period"/> between two probes to one target and <see cref="Interval"/>
/// between any two probes sent.
/// </summary>
/// <remarks>
/// Like fping, the next probe is planned from the previous probe's planned time, so small wake-up
/// delays do not add up over many rounds; after a stall longer than a period the plan restarts from
/// the actual send time, so a prober never sends a burst to catch up.
/// </remarks>
public sealed record ProbeSchedule
{
    /// <summary>Builds a schedule and validates it.</summary>
    /// <param name="count">Probes per target; at least 1.</param>
    /// <param name="period">Time between two probes to the same target; more than zero.</param>
    /// <param name="interval">Time between any two probes sent; zero or more (zero means no pause).</param>
    /// <param name="timeout">How long a probe waits for its reply; more than zero.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of its range.</exception>
    public ProbeSchedule(int count, TimeSpan period, TimeSpan interval, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        Count = count;
        Period = period;
        Interval = interval;
        Timeout = timeout;
    }

    /// <summary>Probes per target (rounds).</summary>
    public int Count { get; }

    /// <summary>The least time between two probes to one target.</summary>
    public TimeSpan Period { get; }

    /// <summary>The least time between any two probes sent; <see cref="TimeSpan.Zero"/> means none.</summary>
    public TimeSpan Interval { get; }

    /// <summary>How long each probe waits for its reply before it becomes a <see cref="ProbeStatus.Timeout"/> sample.</summary>
    public TimeSpan Timeout { get; }
}

/// <summary>A prober that serves many targets at once on a schedule.</summary>
public interface IMultiTargetLatencyProbe : ILatencyProbe
{
    /// <summary>
    /// Sends <see cref="ProbeSchedule.Count"/> probes to each target and calls <paramref name="onSample"/>
    /// once per probe (answered, timed out, unreachable or failed). The task completes when every probe
    /// has its sample. <paramref name="onSample"/> runs on the prober's own thread, one call at a time:
    /// keep it short and never block it.
    /// </summary>
    /// <exception cref="ArgumentException">A target cannot be probed by this prober (checked before anything is sent).</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled; no sample is delivered afterwards.</exception>
    Task RunAsync(IReadOnlyList<ProbeTarget> targets, ProbeSchedule schedule, Action<LatencySample> onSample, CancellationToken cancellationToken = default);
}
