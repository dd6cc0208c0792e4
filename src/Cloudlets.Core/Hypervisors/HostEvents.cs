namespace Cloudlets.Core.Hypervisors;

/// <summary>Something that happened on a host.</summary>
/// <param name="Host">The logical host name.</param>
/// <param name="Timestamp">When this process saw it.</param>
public abstract record HostEvent(string Host, DateTimeOffset Timestamp);

/// <summary>What happened to a VM.</summary>
public enum VmLifecycle
{
    /// <summary>Defined.</summary>
    Defined,
    /// <summary>Undefined.</summary>
    Undefined,
    /// <summary>Started (detail says whether by a migration).</summary>
    Started,
    /// <summary>Suspended (paused).</summary>
    Suspended,
    /// <summary>Resumed.</summary>
    Resumed,
    /// <summary>Stopped (detail says whether by a migration, a failure or a destroy).</summary>
    Stopped,
    /// <summary>Shut down by the guest.</summary>
    Shutdown,
    /// <summary>Suspended by guest power management.</summary>
    PowerManagementSuspended,
    /// <summary>Crashed.</summary>
    Crashed,
    /// <summary>Anything else.</summary>
    Other,
}

/// <summary>A VM lifecycle change.</summary>
/// <param name="Host">The logical host name.</param>
/// <param name="Timestamp">When this process saw it.</param>
/// <param name="VmName">The VM.</param>
/// <param name="Lifecycle">What happened.</param>
/// <param name="Detail">The hypervisor's detail code for it (for libvirt, the event detail).</param>
/// <param name="ByMigration">Whether a migration caused it.</param>
public sealed record VmLifecycleEvent(
    string Host,
    DateTimeOffset Timestamp,
    string VmName,
    VmLifecycle Lifecycle,
    int Detail,
    bool ByMigration) : HostEvent(Host, Timestamp);

/// <summary>The host's connection state changed.</summary>
/// <param name="Host">The logical host name.</param>
/// <param name="Timestamp">When this process saw it.</param>
/// <param name="State">The new state.</param>
/// <param name="Reason">Why, in words.</param>
public sealed record HostConnectionEvent(
    string Host,
    DateTimeOffset Timestamp,
    HostConnectionState State,
    string Reason) : HostEvent(Host, Timestamp);
