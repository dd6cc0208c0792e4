namespace Cloudlets.Core.Hypervisors;

/// <summary>Whether a host's management connection is usable.</summary>
public enum HostConnectionState
{
    /// <summary>Not connected yet, or disposed.</summary>
    Disconnected,
    /// <summary>Connected and answering.</summary>
    Connected,
    /// <summary>The connection was lost; the host reconnects with backoff.</summary>
    Reconnecting,
}

/// <summary>A host's identity and capacity.</summary>
/// <param name="Name">The logical host name.</param>
/// <param name="Uri">The management URI.</param>
/// <param name="Hostname">The hostname the host reports for itself.</param>
/// <param name="CpuModel">The CPU model (architecture) the host reports.</param>
/// <param name="Cpus">Active logical CPUs.</param>
/// <param name="CpuMhz">CPU frequency in MHz.</param>
/// <param name="MemoryBytes">Installed memory in bytes.</param>
/// <param name="FreeMemoryBytes">Free memory in bytes.</param>
public sealed record HostInfo(
    string Name,
    Uri Uri,
    string Hostname,
    string CpuModel,
    int Cpus,
    int CpuMhz,
    long MemoryBytes,
    long FreeMemoryBytes);

/// <summary>The run state of a VM.</summary>
public enum VmState
{
    /// <summary>The state could not be read.</summary>
    Unknown,
    /// <summary>Running.</summary>
    Running,
    /// <summary>Blocked on a resource.</summary>
    Blocked,
    /// <summary>Paused (also: an incoming migration not yet handed over).</summary>
    Paused,
    /// <summary>Being shut down.</summary>
    ShuttingDown,
    /// <summary>Shut off (defined, not running).</summary>
    ShutOff,
    /// <summary>Crashed.</summary>
    Crashed,
    /// <summary>Suspended by guest power management.</summary>
    PowerManagementSuspended,
}

/// <summary>A VM as a host sees it.</summary>
/// <param name="Name">The VM name.</param>
/// <param name="Uuid">The VM UUID.</param>
/// <param name="State">The run state.</param>
/// <param name="MemoryBytes">Current memory in bytes.</param>
/// <param name="MaxMemoryBytes">Maximum memory in bytes.</param>
/// <param name="VCpus">Virtual CPUs.</param>
/// <param name="IsPersistent">Whether the host keeps a definition after the VM stops.</param>
public sealed record VmInfo(
    string Name,
    Guid Uuid,
    VmState State,
    long MemoryBytes,
    long MaxMemoryBytes,
    int VCpus,
    bool IsPersistent)
{
    /// <summary>
    /// The VM's outgoing live migration under way on this host, with its latest progress, whoever started
    /// it (this process, another controller, an operator): hypervisors keep a migration's job on its source,
    /// where any connection can read it. <see langword="null"/> when none runs, or when the host cannot
    /// tell (a backend without job state); then only placement (a paused copy on another host) shows it.
    /// </summary>
    public MigrationProgress? OutgoingMigration { get; init; }
}
