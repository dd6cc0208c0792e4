namespace Cloudlets.Core.Hypervisors;

/// <summary>
/// One KVM host (a cloudlet): its identity and capacity, its VMs, and live migration of a VM to
/// another host. Implementations own native handles or connections and are disposed asynchronously.
/// </summary>
public interface IHypervisorHost : IAsyncDisposable
{
    /// <summary>The logical name of the host, unique within a fleet (for example <c>cloudlet-1</c>).</summary>
    string Name { get; }

    /// <summary>The address of the host's management endpoint (for libvirt, its connection URI).</summary>
    Uri Uri { get; }

    /// <summary>Whether the host currently answers. Changes are also published on <see cref="Events"/>.</summary>
    HostConnectionState ConnectionState { get; }

    /// <summary>Host and VM events: lifecycle changes, connection loss and recovery. Never completes while the host lives.</summary>
    IObservable<HostEvent> Events { get; }

    /// <summary>Reads the host's identity and capacity.</summary>
    Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default);

    /// <summary>Lists every VM the host knows, running or defined.</summary>
    Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default);

    /// <summary>Looks a VM up by name; <see langword="null"/> when the host has no such VM.</summary>
    Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default);

    /// <summary>Defines (persists) a VM from a spec without starting it.</summary>
    Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default);

    /// <summary>Starts a defined VM.</summary>
    Task StartVmAsync(string vmName, CancellationToken cancellationToken = default);

    /// <summary>Stops a VM at once (power off), keeping its definition.</summary>
    Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default);

    /// <summary>Removes a stopped VM's definition.</summary>
    Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default);

    /// <summary>
    /// Live-migrates <paramref name="vmName"/> from this host to <paramref name="destination"/>
    /// (a value: the destination's name and endpoints; use <see cref="MigrationDestination.Of"/> for a host you hold).
    /// Cancelling aborts the migration through this (the source) host's job; a failed or aborted
    /// migration leaves the VM running here. Invalid <paramref name="options"/> throw
    /// <see cref="Options.OptionsValidationException"/> before anything changes.
    /// </summary>
    Task<MigrationResult> MigrateAsync(
        string vmName,
        MigrationDestination destination,
        MigrationOptions options,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default);
}
