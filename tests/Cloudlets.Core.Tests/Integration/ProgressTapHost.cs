using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Core.Tests.Integration;

/// <summary>
/// Forwards every call to a real host and lets a lab test see the progress of migrations the
/// pipeline's executor starts from it (to inject a fault while a migration really runs).
/// </summary>
internal sealed class ProgressTapHost : IHypervisorHost
{
    private readonly Action<string, MigrationProgress> _onProgress;
    private int _migrations;

    public ProgressTapHost(IHypervisorHost inner, Action<string, MigrationProgress> onProgress)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _onProgress = onProgress ?? throw new ArgumentNullException(nameof(onProgress));
    }

    /// <summary>The real host.</summary>
    public IHypervisorHost Inner { get; }

    /// <summary>How many migrations were started from this host.</summary>
    public int MigrationsStarted => Volatile.Read(ref _migrations);

    public string Name => Inner.Name;

    public Uri Uri => Inner.Uri;

    public HostConnectionState ConnectionState => Inner.ConnectionState;

    public IObservable<HostEvent> Events => Inner.Events;

    public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) => Inner.GetInfoAsync(cancellationToken);

    public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) => Inner.ListVmsAsync(cancellationToken);

    public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.TryGetVmAsync(vmName, cancellationToken);

    public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => Inner.DefineVmAsync(spec, cancellationToken);

    public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.StartVmAsync(vmName, cancellationToken);

    public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.DestroyVmAsync(vmName, cancellationToken);

    public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.UndefineVmAsync(vmName, cancellationToken);

    public Task<MigrationResult> MigrateAsync(
        string vmName,
        IHypervisorHost destination,
        MigrationOptions options,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _migrations);

        // The libvirt host checks its peer's identity (same host, client-managed hand-over), so it
        // must be given the real destination, not this wrapper.
        var peer = destination is ProgressTapHost tap ? tap.Inner : destination;
        return Inner.MigrateAsync(vmName, peer, options, new Forward(vmName, progress, _onProgress), cancellationToken);
    }

    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    /// <summary>Shows each sample to the test first, then to the executor's watchdog, on the reporting thread.</summary>
    private sealed class Forward(string vmName, IProgress<MigrationProgress>? next, Action<string, MigrationProgress> show) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value)
        {
            show(vmName, value);
            next?.Report(value);
        }
    }
}
