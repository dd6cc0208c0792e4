using Cloudlets.Core.Options;

namespace Cloudlets.Core.Hypervisors;

/// <summary>
/// Where a VM goes, as a value any backend can read: the destination's logical name and the
/// endpoints a backend needs to reach it. It carries no host object, so a source never needs to
/// know (or unwrap) the destination's implementation type.
/// </summary>
public sealed record MigrationDestination
{
    /// <summary>Creates a destination.</summary>
    /// <param name="name">The destination's logical host name (its <see cref="IHypervisorHost.Name"/>).</param>
    /// <param name="managementUri">The destination's management endpoint as this process reaches it (its <see cref="IHypervisorHost.Uri"/>; for libvirt, its connection URI).</param>
    /// <param name="dataUri">The address the destination receives migration data on (for example <c>tcp://198.18.0.12</c>), or <see langword="null"/> to let the destination choose by its hostname.</param>
    public MigrationDestination(string name, Uri managementUri, Uri? dataUri = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(managementUri);
        Name = name;
        ManagementUri = managementUri;
        DataUri = dataUri;
    }

    /// <summary>The destination's logical host name.</summary>
    public string Name { get; }

    /// <summary>The destination's management endpoint as this process reaches it.</summary>
    public Uri ManagementUri { get; }

    /// <summary>The address the destination receives migration data on, or <see langword="null"/> for the destination's choice.</summary>
    public Uri? DataUri { get; }

    /// <summary>The destination that <paramref name="host"/> is (its name and URI), with an optional data-channel address.</summary>
    public static MigrationDestination Of(IHypervisorHost host, Uri? dataUri = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        return new MigrationDestination(host.Name, host.Uri, dataUri);
    }

    /// <inheritdoc />
    public override string ToString() => DataUri is null ? Name : $"{Name} (data {DataUri})";
}

/// <summary>
/// How a VM is migrated, in terms every hypervisor has. Backend-only choices (for libvirt:
/// peer-to-peer or client-managed, persistence, compression, post-copy) are the backend's own
/// options. Every property documents its default and range; <see cref="Validate"/> lists every error.
/// </summary>
public sealed class MigrationOptions : IValidatableOptions
{
    /// <summary>The shortest progress interval: below it, sampling would compete with the migration itself.</summary>
    public static readonly TimeSpan MinProgressInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>The longest progress interval.</summary>
    public static readonly TimeSpan MaxProgressInterval = TimeSpan.FromMinutes(10);

    /// <summary>Live (the VM keeps running while memory is copied). The default is <see langword="true"/>.</summary>
    public bool Live { get; set; } = true;

    /// <summary>Bandwidth limit in MiB/s, or <see langword="null"/> for the hypervisor's default. Range 1 to 1,048,576 (1 TiB/s).</summary>
    public long? BandwidthMiBps { get; set; }

    /// <summary>The longest pause the VM may see at hand-over, or <see langword="null"/> for the hypervisor's default. Range 1 ms to 1 hour.</summary>
    public TimeSpan? MaxDowntime { get; set; }

    /// <summary>How often progress is sampled while a caller listens. The default is 250 ms; range 10 ms to 10 minutes.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// After a cancellation, how long the call waits for the hypervisor to confirm the abort (the
    /// migration call to return) before it gives up waiting and reports the VM's place as unknown.
    /// The default is 60 seconds; range 1 second to 1 hour.
    /// </summary>
    public TimeSpan AbortTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (BandwidthMiBps is { } bandwidth)
        {
            errors.InRange(nameof(BandwidthMiBps), bandwidth, 1, 1L << 20);
        }

        if (MaxDowntime is { } downtime)
        {
            errors.InRange(nameof(MaxDowntime), downtime, TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1));
        }

        errors.InRange(nameof(ProgressInterval), ProgressInterval, MinProgressInterval, MaxProgressInterval);
        errors.InRange(nameof(AbortTimeout), AbortTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
    }

    /// <summary>A copy of these options (callers keep the copy they validated).</summary>
    public MigrationOptions Clone() => (MigrationOptions)MemberwiseClone();
}

/// <summary>A progress sample of a running migration. Counters that the hypervisor did not report are <see langword="null"/>.</summary>
/// <param name="Elapsed">Time since the migration started.</param>
/// <param name="DataProcessedBytes">Bytes sent so far.</param>
/// <param name="DataRemainingBytes">Bytes still to send.</param>
/// <param name="DataTotalBytes">Bytes in all.</param>
/// <param name="DirtyRatePagesPerSecond">Guest memory dirty rate.</param>
/// <param name="Iteration">The pre-copy iteration (pass over memory).</param>
/// <param name="ExpectedDowntime">The downtime expected at hand-over.</param>
/// <param name="BandwidthBytesPerSecond">The current transfer rate.</param>
public sealed record MigrationProgress(
    TimeSpan Elapsed,
    long? DataProcessedBytes,
    long? DataRemainingBytes,
    long? DataTotalBytes,
    long? DirtyRatePagesPerSecond,
    int? Iteration,
    TimeSpan? ExpectedDowntime,
    long? BandwidthBytesPerSecond)
{
    /// <summary>
    /// How much of the migration is done, from 0 to 1: the share of <see cref="DataTotalBytes"/> no longer
    /// remaining, or <see langword="null"/> until the hypervisor reports both. Memory that need not be sent
    /// (QEMU skips zero pages) counts as done, which <see cref="DataProcessedBytes"/> alone would not show:
    /// an idle 256 MiB guest sends about a third of its memory, so processed over total stops near 35 % and
    /// then jumps. It can fall back in later passes, while the guest dirties memory again.
    /// </summary>
    public double? CompletedFraction =>
        DataTotalBytes is { } total and > 0 && DataRemainingBytes is { } remaining
            ? Math.Clamp((double)(total - remaining) / total, 0, 1)
            : null;

    /// <summary>The convergence steps the backend took so far, oldest first (empty when it took none or has no convergence control).</summary>
    public IReadOnlyList<MigrationEscalation> Escalations { get; init; } = [];

    /// <summary>How much the hypervisor throttles the VM's CPUs to make memory converge (QEMU's auto-converge), in percent, or <see langword="null"/> when it does not say.</summary>
    public int? CpuThrottlePercent { get; init; }
}

/// <summary>What a convergence step did to a migration that was not converging.</summary>
public enum MigrationEscalationAction
{
    /// <summary>Raised the allowed downtime at hand-over (to <see cref="MigrationEscalation.MaxDowntime"/>).</summary>
    RaisedMaxDowntime,

    /// <summary>Switched to post-copy: the VM runs on the destination and pulls the rest of its memory.</summary>
    SwitchedToPostCopy,

    /// <summary>Aborted the migration; the VM stays on its source.</summary>
    Aborted,
}

/// <summary>Why a convergence step was taken.</summary>
public enum MigrationEscalationCause
{
    /// <summary>Its time in the schedule came (a downtime step's delay passed).</summary>
    Schedule,

    /// <summary>The remaining data made no new minimum for the stall timeout.</summary>
    Stalled,

    /// <summary>The completion timeout passed.</summary>
    CompletionTimeout,
}

/// <summary>One convergence step a backend took while a migration ran.</summary>
/// <param name="Elapsed">Time since the migration started.</param>
/// <param name="Action">What was done.</param>
/// <param name="Cause">Why.</param>
/// <param name="MaxDowntime">The allowed downtime set (for <see cref="MigrationEscalationAction.RaisedMaxDowntime"/>), or <see langword="null"/>.</param>
/// <param name="DataRemainingBytes">The data still to send at the last sample before the step, or <see langword="null"/>.</param>
public sealed record MigrationEscalation(
    TimeSpan Elapsed,
    MigrationEscalationAction Action,
    MigrationEscalationCause Cause,
    TimeSpan? MaxDowntime,
    long? DataRemainingBytes)
{
    /// <inheritdoc />
    public override string ToString() =>
        string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"{Elapsed.TotalSeconds:0.0} s: {Action}{(MaxDowntime is { } d ? $" to {d.TotalMilliseconds:0} ms" : "")} ({Cause}{(DataRemainingBytes is { } r ? $", {r / 1048576.0:0.0} MiB remaining" : "")})");
}

/// <summary>The outcome of a successful migration.</summary>
/// <param name="VmName">The VM that moved.</param>
/// <param name="Source">The source host name.</param>
/// <param name="Destination">The destination host name.</param>
/// <param name="TotalTime">Wall time of the whole migration, as this process measured it.</param>
/// <param name="Downtime">The pause the VM saw at hand-over, as the hypervisor measured it, or <see langword="null"/>.</param>
/// <param name="DataTransferredBytes">Bytes transferred, or <see langword="null"/>.</param>
public sealed record MigrationResult(
    string VmName,
    string Source,
    string Destination,
    TimeSpan TotalTime,
    TimeSpan? Downtime,
    long? DataTransferredBytes)
{
    /// <summary>The convergence steps the backend took, oldest first (empty when it took none).</summary>
    public IReadOnlyList<MigrationEscalation> Escalations { get; init; } = [];
}
