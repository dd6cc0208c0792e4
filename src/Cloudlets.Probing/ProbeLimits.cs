using Cloudlets.Core.Probing;

namespace Cloudlets.Probing;

/// <summary>
/// The timeouts and periods the probers of this package accept: what their clocks and timers can
/// represent without overflow, with room to spare. Checked before anything is sent.
/// </summary>
public static class ProbeLimits
{
    /// <summary>The longest probe timeout: 1 hour.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromHours(1);

    /// <summary>The longest period or interval of a <see cref="ProbeSchedule"/>: 1 day.</summary>
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(1);

    /// <summary>Throws unless <paramref name="timeout"/> is more than zero and at most <see cref="MaxTimeout"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is out of range.</exception>
    public static void CheckTimeout(TimeSpan timeout, string parameterName)
    {
        if (timeout <= TimeSpan.Zero || timeout > MaxTimeout)
        {
            throw new ArgumentOutOfRangeException(parameterName, timeout, $"A probe timeout must be more than zero and at most {MaxTimeout}.");
        }
    }

    /// <summary>Throws unless the schedule's timeout, period and interval are within these limits.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public static void CheckSchedule(ProbeSchedule schedule, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(schedule, parameterName);
        CheckTimeout(schedule.Timeout, parameterName + ".Timeout");
        if (schedule.Period > MaxPeriod)
        {
            throw new ArgumentOutOfRangeException(parameterName + ".Period", schedule.Period, $"A probe period must be at most {MaxPeriod}.");
        }

        if (schedule.Interval > MaxPeriod)
        {
            throw new ArgumentOutOfRangeException(parameterName + ".Interval", schedule.Interval, $"A probe interval must be at most {MaxPeriod}.");
        }
    }
}
