namespace Cloudlets.Core.Hypervisors;

/// <summary>Who drives a migration.</summary>
public enum MigrationMode
{
    /// <summary>The source host's daemon talks to the destination itself (libvirt <c>PEER2PEER</c>).</summary>
    PeerToPeer,
    /// <summary>This process talks to both hosts and drives the hand-over.</summary>
    ClientManaged,
}

/// <summary>How a VM is migrated. Every property documents its default.</summary>
public sealed record MigrationOptions
{
    /// <summary>Live (the VM keeps running while memory is copied). The default is <see langword="true"/>.</summary>
    public bool Live { get; init; } = true;

    /// <summary>Who drives the migration. The default is <see cref="MigrationMode.PeerToPeer"/>.</summary>
    public MigrationMode Mode { get; init; } = MigrationMode.PeerToPeer;

    /// <summary>Define the VM persistently on the destination. The default is <see langword="true"/>.</summary>
    public bool PersistOnDestination { get; init; } = true;

    /// <summary>Remove the VM's definition from the source after success. The default is <see langword="true"/>.</summary>
    public bool UndefineSource { get; init; } = true;

    /// <summary>Bandwidth limit in MiB/s, or <see langword="null"/> for the hypervisor's default. Must not be negative.</summary>
    public long? BandwidthMiBps { get; init; }

    /// <summary>The longest pause the VM may see at hand-over, or <see langword="null"/> for the hypervisor's default.</summary>
    public TimeSpan? MaxDowntime { get; init; }

    /// <summary>
    /// The data-channel URI the destination listens on (for example <c>tcp://198.18.0.12</c>), or
    /// <see langword="null"/> to let the destination choose by its hostname.
    /// </summary>
    public Uri? MigrationUri { get; init; }

    /// <summary>
    /// The destination's management URI as seen from the source host (peer-to-peer only), or
    /// <see langword="null"/> for the destination's own <see cref="IHypervisorHost.Uri"/>.
    /// </summary>
    public Uri? DestinationUri { get; init; }

    /// <summary>Throttle the VM's CPUs when memory does not converge. The default is <see langword="false"/>.</summary>
    public bool AutoConverge { get; init; }

    /// <summary>Allow switching to post-copy (opt-in: a failure after the switch loses the VM). The default is <see langword="false"/>.</summary>
    public bool AllowPostCopy { get; init; }

    /// <summary>Compress migration data (opt-in). The default is <see langword="false"/>.</summary>
    public bool Compressed { get; init; }

    /// <summary>How often progress is sampled. The default is 250 ms.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(250);
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
    long? BandwidthBytesPerSecond);

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
    long? DataTransferredBytes);
