using System.Collections.Concurrent;
using System.Reactive.Linq;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>How the fake answers a migration.</summary>
public enum FakeMigrationMode
{
    /// <summary>Succeeds at once and moves the VM to the destination fake.</summary>
    Succeed,
    /// <summary>Fails at once with an operation-failed error.</summary>
    Fail,
    /// <summary>Waits for the test to complete it (see <see cref="FakeHypervisorHost.Pending"/>); cancellation aborts it.</summary>
    Manual,
}

/// <summary>A unit-test double of <see cref="IHypervisorHost"/>: an in-memory host whose answers the test controls.</summary>
public sealed class FakeHypervisorHost : IHypervisorHost
{
    // A migration names its destination by value (name and URI); the fake finds the destination
    // fake by its URI, which is unique per instance, so parallel tests never meet.
    private static readonly ConcurrentDictionary<Uri, WeakReference<FakeHypervisorHost>> Registry = new();
    private readonly Lock _gate = new();
    private readonly List<VmInfo> _vms = [];
    private readonly System.Reactive.Subjects.Subject<HostEvent> _events = new();

    public FakeHypervisorHost(string name, int cpus = 4, long freeMemoryBytes = 8L << 30)
    {
        Name = name;
        Cpus = cpus;
        FreeMemoryBytes = freeMemoryBytes;
        Uri = new($"test:///{name}-{Guid.NewGuid():N}.xml");
        Registry[Uri] = new WeakReference<FakeHypervisorHost>(this);
    }

    public string Name { get; }
    public Uri Uri { get; }
    public HostConnectionState ConnectionState { get; set; } = HostConnectionState.Connected;
    public IObservable<HostEvent> Events => _events.AsObservable();

    /// <summary>Whether <see cref="DisposeAsync"/> was called.</summary>
    public bool Disposed { get; private set; }

    /// <summary>Publishes a lifecycle event, as libvirt's event loop would.</summary>
    public void Emit(HostEvent e) => VirtualClock.Inline(() => _events.OnNext(e));

    public int Cpus { get; set; }
    public long FreeMemoryBytes { get; set; }

    /// <summary>When false, every call fails with a lost connection.</summary>
    public bool Answering { get; set; } = true;

    /// <summary>When true, reads never complete (until cancelled): a host that hangs.</summary>
    public bool Hangs { get; set; }

    public FakeMigrationMode MigrationMode { get; set; } = FakeMigrationMode.Succeed;

    /// <summary>A progress report each migration from this host gives before it succeeds (succeed mode), as a job's statistics would.</summary>
    public MigrationProgress? ReportDuringMigration { get; set; }

    /// <summary>Migrations started from this host: VM and destination.</summary>
    public List<(string Vm, string Destination)> Migrations { get; } = [];

    /// <summary>The migrations waiting for the test (manual mode).</summary>
    public List<PendingMigration> Pending { get; } = [];

    public IReadOnlyList<VmInfo> Vms
    {
        get
        {
            lock (_gate)
            {
                return [.. _vms];
            }
        }
    }

    public VmInfo AddVm(string vmName, long memoryBytes = 256L << 20, int vcpus = 1)
    {
        var vm = new VmInfo(vmName, Guid.NewGuid(), VmState.Running, memoryBytes, memoryBytes, vcpus, true);
        Add(vm);
        return vm;
    }

    public void Add(VmInfo vm)
    {
        lock (_gate)
        {
            _vms.Add(vm);
        }
    }

    public bool Remove(string vmName)
    {
        lock (_gate)
        {
            return _vms.RemoveAll(v => v.Name == vmName) > 0;
        }
    }

    public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotAnswering();
        if (Hangs)
        {
            return Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith<HostInfo>(_ => throw new OperationCanceledException(cancellationToken), TaskScheduler.Default);
        }

        return Task.FromResult(new HostInfo(Name, Uri, Name, "x86_64", Cpus, 2000, 16L << 30, FreeMemoryBytes));
    }

    public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotAnswering();
        return Task.FromResult(Vms);
    }

    public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default)
    {
        ThrowIfNotAnswering();
        return Task.FromResult(Vms.FirstOrDefault(v => v.Name == vmName));
    }

    public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<MigrationResult> MigrateAsync(
        string vmName,
        MigrationDestination destination,
        MigrationOptions options,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ThrowIfNotAnswering();
        lock (_gate)
        {
            Migrations.Add((vmName, destination.Name));
        }

        switch (MigrationMode)
        {
            case FakeMigrationMode.Fail:
                return Task.FromException<MigrationResult>(new HypervisorException(HypervisorErrorKind.OperationFailed, $"fake: migration of {vmName} failed"));
            case FakeMigrationMode.Manual:
                var pending = new PendingMigration(this, vmName, destination, progress, cancellationToken);
                lock (_gate)
                {
                    Pending.Add(pending);
                }

                return pending.Task;
            default:
                if (ReportDuringMigration is { } report)
                {
                    progress?.Report(report);
                }

                return Task.FromResult(Complete(vmName, destination));
        }
    }

    internal MigrationResult Complete(string vmName, MigrationDestination destination)
    {
        VmInfo? vm;
        lock (_gate)
        {
            vm = _vms.FirstOrDefault(v => v.Name == vmName);
            _vms.RemoveAll(v => v.Name == vmName);
        }

        if (vm is not null && Registry.TryGetValue(destination.ManagementUri, out var peer) && peer.TryGetTarget(out var fake))
        {
            fake.Add(vm);
        }

        return new MigrationResult(vmName, Name, destination.Name, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(100), vm?.MemoryBytes);
    }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        _events.OnCompleted();
        return ValueTask.CompletedTask;
    }

    private void ThrowIfNotAnswering()
    {
        if (!Answering)
        {
            throw new HypervisorException(HypervisorErrorKind.ConnectionLost, $"fake host {Name} does not answer");
        }
    }
}

/// <summary>A migration the test completes, fails or lets time out.</summary>
public sealed class PendingMigration
{
    private readonly TaskCompletionSource<MigrationResult> _tcs = new();
    private readonly FakeHypervisorHost _source;

    internal PendingMigration(FakeHypervisorHost source, string vm, MigrationDestination destination, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        _source = source;
        Vm = vm;
        Destination = destination;
        Progress = progress;
        cancellationToken.Register(() =>
        {
            WasCancelled = true;
            _tcs.TrySetException(new HypervisorException(HypervisorErrorKind.Aborted, "fake: migration job aborted"));
        });
    }

    public string Vm { get; }
    public MigrationDestination Destination { get; }
    public IProgress<MigrationProgress>? Progress { get; }
    public bool WasCancelled { get; private set; }
    public Task<MigrationResult> Task => _tcs.Task;

    public void Succeed() => VirtualClock.Inline(() => _tcs.TrySetResult(_source.Complete(Vm, Destination)));

    public void Fail(Exception error) => VirtualClock.Inline(() => _tcs.TrySetException(error));

    public void ReportProcessed(long bytes) =>
        Progress?.Report(new MigrationProgress(TimeSpan.Zero, bytes, null, null, null, null, null, null));
}
