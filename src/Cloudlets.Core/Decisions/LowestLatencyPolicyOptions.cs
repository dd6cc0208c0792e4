using System.Globalization;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Decisions;

/// <summary>Which statistic of a vantage point's latency summary stands for that user's latency to a host.</summary>
public enum LatencyStatistic
{
    /// <summary>The median round-trip time (robust to single spikes).</summary>
    Median,
    /// <summary>The 95th percentile round-trip time (tail-sensitive).</summary>
    P95,
    /// <summary>The mean round-trip time.</summary>
    Mean,
}

/// <summary>
/// Options of <see cref="LowestLatencyPolicy"/>. Every option documents its default and its valid
/// range; the policy validates them once, when it is built, and keeps a copy.
/// </summary>
public sealed class LowestLatencyPolicyOptions : IValidatableOptions
{
    /// <summary>Which statistic of each user's latency summary is used. The default is <see cref="LatencyStatistic.Median"/>.</summary>
    public LatencyStatistic Statistic { get; set; } = LatencyStatistic.Median;

    /// <summary>
    /// The percentile, over the VM's users weighted by their weights, that makes the VM's score on a
    /// host: the smallest latency that at least this share of the users' weight sees or better.
    /// With one user it is that user's latency. Range (0, 1]. The default is 0.9.
    /// </summary>
    public double UserPercentile { get; set; } = 0.9;

    /// <summary>The smallest improvement in ms that justifies a move. Range [0, 10000]. The default is 10 ms.</summary>
    public double MinAbsoluteGainMs { get; set; } = 10;

    /// <summary>
    /// The smallest improvement relative to the current score that justifies a move (0.2 = 20 %).
    /// Both this and <see cref="MinAbsoluteGainMs"/> must hold. Range [0, 1). The default is 0.2.
    /// </summary>
    public double MinRelativeGain { get; set; } = 0.2;

    /// <summary>
    /// How many consecutive evaluation windows a qualifying gain must be seen before the move is made.
    /// Range [1, 1000]. The default is 3.
    /// </summary>
    public int ConfirmationWindows { get; set; } = 3;

    /// <summary>
    /// A move is decisive when its benefit over the expected stay is at least this many times its cost
    /// (<see cref="MigrationPenaltyMsSeconds"/> + the migration impact), the current score is finite, and
    /// even the target's pessimistic score (the weighted percentile of its users' 95th-percentile latency)
    /// beats the current score by <see cref="MinAbsoluteGainMs"/>. A decisive move needs only
    /// <see cref="DecisiveConfirmationWindows"/> windows: the confirmation guards against paying for a move
    /// on noise, and waiting costs the gain in every window, so a gain that would still pay if it were a
    /// third of what is measured is confirmed sooner. The rule applies only when a penalty is set (above
    /// 0): without one the cost is the small impact estimate alone, against which nearly every gain would
    /// be decisive. 0 turns the rule off. Range 0 or [1, 1e6]. The default is 3 (measured on the
    /// repository's trace set: 2 moves on noise where four users pull one VM, 3.6 no longer shortens the
    /// confirmation of a clean step).
    /// </summary>
    public double DecisiveBenefitFactor { get; set; } = 3;

    /// <summary>
    /// How many consecutive windows confirm a decisive move (<see cref="DecisiveBenefitFactor"/>); a
    /// value at or above <see cref="ConfirmationWindows"/> makes decisive moves wait as long as any.
    /// Range [1, 1000]. The default is 1.
    /// </summary>
    public int DecisiveConfirmationWindows { get; set; } = 1;

    /// <summary>How long a VM stays put after a move. Range [0, 1 day]. The default is 5 minutes.</summary>
    public TimeSpan Cooldown { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Scores this close to each other (in ms) are equal: a host no better than the current one by more
    /// than this keeps the VM (ties keep the VM). Range [0, 1000]. The default is 1 ms.
    /// </summary>
    public double TieToleranceMs { get; set; } = 1;

    /// <summary>Latency data whose newest sample is older than this is stale: no decision is made on it. Range (0, 1 day]. The default is 30 seconds.</summary>
    public TimeSpan MaxSampleAge { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A vantage point whose loss rate to a host is above this cannot reach it. Range [0, 1). The default is 0.5.</summary>
    public double MaxLossRate { get; set; } = 0.5;

    /// <summary>Memory a host must keep free beyond the VM's memory to be a candidate. Range [0, 1 TiB]. The default is 64 MiB.</summary>
    public long MemoryReserveBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// The bandwidth between two hosts, in bytes per second, when the snapshot does not give one.
    /// Range (0, 1e12]. The default is 125,000,000 (1 Gbit/s).
    /// </summary>
    public double DefaultBandwidthBytesPerSecond { get; set; } = 125_000_000;

    /// <summary>The VM's memory dirty rate in bytes per second when the snapshot does not give one. Range [0, 1e12]. The default is 0.</summary>
    public double DefaultDirtyRateBytesPerSecond { get; set; }

    /// <summary>
    /// How long a VM is expected to stay on its new host; the gain is counted over this time. Range (0, 30 days].
    /// The default is 20 minutes (measured on the repository's trace set: 10 minutes let commuters'
    /// VMs follow too late and skip a flash crowd that pays; 30 minutes start moving on noise).
    /// </summary>
    public TimeSpan ExpectedStay { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>
    /// The extra latency in ms users are assumed to suffer for every second a migration runs (dirty-page
    /// tracking, the hand-over pause). A move is made only when gain × expected stay exceeds this ×
    /// the estimated migration time (memory ÷ (bandwidth − dirty rate)). A migration whose dirty rate
    /// reaches the bandwidth never converges and is never proposed. Range [0, 1e6]. The default is 100 ms.
    /// </summary>
    public double MigrationImpactMs { get; set; } = 100;

    /// <summary>
    /// A fixed cost of every migration in ms·s (latency × time the users are worth sparing), added to the
    /// migration impact estimate: a move is made only when gain × <see cref="ExpectedStay"/> exceeds
    /// this plus <see cref="MigrationImpactMs"/> × the estimated migration time. Set it to the cost
    /// model's penalty when one is known (the replay tool does). Range [0, 1e12]. The default is 0.
    /// </summary>
    public double MigrationPenaltyMsSeconds { get; set; }

    /// <summary>
    /// How many of the nearest hosts of each vantage point the policy indexes at the start of every
    /// evaluation. A VM's best candidate is then searched in its users' lists of nearest hosts, stopping
    /// as soon as no host further down any list can score better (the threshold algorithm), so a tick
    /// costs about vantage points × hosts + VMs × users instead of VMs × hosts; when a VM's lists run
    /// out before that is certain (their hosts are full or the VM's own), its search falls back to every
    /// host. The decisions are the same as without the index. Above 0, an evaluation into a buffer that
    /// does not record candidates, of a snapshot without placement rules, also reuses each VM's search
    /// from the buffer's earlier evaluation while its users' rows, its host and size are unchanged and no
    /// host's room grew (the same decisions again; a tick then costs the rows written × hosts + the VMs
    /// whose inputs changed × users, plus a pass over the VMs). 0 turns the index and the reuse off (every
    /// VM scans every host every time: the naive baseline); a fleet with fewer hosts than 8 × this is
    /// scanned, with reuse. Range [0, 1024]. The default is 16.
    /// </summary>
    public int CandidateIndexDepth { get; set; } = 16;

    /// <summary>
    /// How many threads an evaluation of a large fleet (65,536 VMs or more) may use to bring the VMs'
    /// reused searches up to date, the step before the decisions (the decisions themselves run in VM order
    /// on the calling thread: a move reserves room that later VMs see). 0 for the processor count, 1 for
    /// the calling thread only; the other threads are the policy's lane threads (process-wide, at most one
    /// fewer than the processors, started when first needed and kept for the life of the process, so that a
    /// tick allocates nothing), and when none is free the calling thread does their share. The decisions are the same either way. Range [0, 64]. The default is 0.
    /// </summary>
    public int MaxDegreeOfParallelism { get; set; }

    /// <summary>Returns a copy, so a built policy cannot be changed through the caller's instance.</summary>
    public LowestLatencyPolicyOptions Clone() => (LowestLatencyPolicyOptions)MemberwiseClone();

    /// <summary>Adds every violated range to <paramref name="errors"/> (the policy calls this once, when it is built).</summary>
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.Defined(nameof(Statistic), Statistic);
        Exclusive(errors, nameof(UserPercentile), UserPercentile, 0, 1, minExclusive: true);
        errors.InRange(nameof(MinAbsoluteGainMs), MinAbsoluteGainMs, 0, 10_000);
        Exclusive(errors, nameof(MinRelativeGain), MinRelativeGain, 0, 1, maxExclusive: true);
        errors.InRange(nameof(ConfirmationWindows), ConfirmationWindows, 1, 1000);
        errors.Require(DecisiveBenefitFactor == 0 || (DecisiveBenefitFactor >= 1 && DecisiveBenefitFactor <= 1e6), nameof(DecisiveBenefitFactor), Format($"is {DecisiveBenefitFactor}; the range is 0 (off) or [1, 1000000]."));
        errors.InRange(nameof(DecisiveConfirmationWindows), DecisiveConfirmationWindows, 1, 1000);
        errors.InRange(nameof(Cooldown), Cooldown, TimeSpan.Zero, TimeSpan.FromDays(1));
        errors.InRange(nameof(TieToleranceMs), TieToleranceMs, 0, 1000);
        errors.Require(MaxSampleAge > TimeSpan.Zero && MaxSampleAge <= TimeSpan.FromDays(1), nameof(MaxSampleAge), Format($"is {MaxSampleAge}; the range is (00:00:00, 1.00:00:00]."));
        Exclusive(errors, nameof(MaxLossRate), MaxLossRate, 0, 1, maxExclusive: true);
        errors.InRange(nameof(MemoryReserveBytes), MemoryReserveBytes, 0, 1L << 40);
        Exclusive(errors, nameof(DefaultBandwidthBytesPerSecond), DefaultBandwidthBytesPerSecond, 0, 1e12, minExclusive: true);
        errors.InRange(nameof(DefaultDirtyRateBytesPerSecond), DefaultDirtyRateBytesPerSecond, 0, 1e12);
        errors.Require(ExpectedStay > TimeSpan.Zero && ExpectedStay <= TimeSpan.FromDays(30), nameof(ExpectedStay), Format($"is {ExpectedStay}; the range is (00:00:00, 30.00:00:00]."));
        errors.InRange(nameof(MigrationImpactMs), MigrationImpactMs, 0, 1e6);
        errors.InRange(nameof(MigrationPenaltyMsSeconds), MigrationPenaltyMsSeconds, 0, 1e12);
        errors.InRange(nameof(CandidateIndexDepth), CandidateIndexDepth, 0, 1024);
        errors.InRange(nameof(MaxDegreeOfParallelism), MaxDegreeOfParallelism, 0, 64);
    }

    private static void Exclusive(OptionsErrors errors, string name, double value, double min, double max, bool minExclusive = false, bool maxExclusive = false)
    {
        var ok = double.IsFinite(value)
            && (minExclusive ? value > min : value >= min)
            && (maxExclusive ? value < max : value <= max);
        errors.Require(ok, name, Format($"is {value}; the range is {(minExclusive ? "(" : "[")}{min}, {max}{(maxExclusive ? ")" : "]")}."));
    }

    private static string Format(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
