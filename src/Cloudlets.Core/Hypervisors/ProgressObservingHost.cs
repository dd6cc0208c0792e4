namespace Cloudlets.Core.Hypervisors;

/// <summary>
/// A host that forwards every call to a real one and also shows the progress of each migration
/// started from it to an observer — for a live view or a test that acts while a migration really
/// runs — without changing who else receives that progress (the caller's <see cref="IProgress{T}"/>,
/// for example the executor's watchdog).
/// </summary>
public sealed class ProgressObservingHost : IHypervisorHost
{
    private readonly Action<string, MigrationProgress> _onProgress;
    private int _migrations;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The real host.</param>
    /// <param name="onProgress">Called with the VM name and each progress sample, on the reporting thread, before the caller's progress; keep it short.</param>
    public ProgressObservingHost(IHypervisorHost inner, Action<string, MigrationProgress> onProgress)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _onProgress = onProgress ?? throw new ArgumentNullException(nameof(onProgress));
    }

    /// <summary>The real host.</summary>
    public IHypervisorHost Inner { get; }

    /// <summary>How many migrations were started from this host.</summary>
    public int MigrationsStarted => Volatile.Read(ref _migrations);

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public Uri Uri => Inner.Uri;

    /// <inheritdoc />
    public HostConnectionState ConnectionState => Inner.ConnectionState;

    /// <inheritdoc />
    public IObservable<HostEvent> Events => Inner.Events;

    /// <inheritdoc />
    public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) => Inner.GetInfoAsync(cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) => Inner.ListVmsAsync(cancellationToken);

    /// <inheritdoc />
    public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.TryGetVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => Inner.DefineVmAsync(spec, cancellationToken);

    /// <inheritdoc />
    public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.StartVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.DestroyVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.UndefineVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    public Task<MigrationResult> MigrateAsync(
        string vmName,
        MigrationDestination destination,
        MigrationOptions options,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _migrations);
        return Inner.MigrateAsync(vmName, destination, options, new Forward(vmName, progress, _onProgress), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    private sealed class Forward(string vmName, IProgress<MigrationProgress>? next, Action<string, MigrationProgress> show) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value)
        {
            show(vmName, value);
            next?.Report(value);
        }
    }
}
