using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Samples.Demo;

/// <summary>
/// A host that forwards everything to a real one and also shows migration progress to the live
/// view: the pipeline reports progress to the executor's watchdog, this taps the same stream.
/// </summary>
internal sealed class ObservedHost(IHypervisorHost inner, Action<string, MigrationProgress> onProgress) : IHypervisorHost
{
    public IHypervisorHost Inner { get; } = inner;

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
        // The real destination goes down, so the source's checks (same host, client-managed) see it.
        var realDestination = destination is ObservedHost observed ? observed.Inner : destination;
        var tap = new Tap(progress, p => onProgress(vmName, p));
        return Inner.MigrateAsync(vmName, realDestination, options, tap, cancellationToken);
    }

    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    private sealed class Tap(IProgress<MigrationProgress>? next, Action<MigrationProgress> show) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value)
        {
            show(value);
            next?.Report(value);
        }
    }
}
