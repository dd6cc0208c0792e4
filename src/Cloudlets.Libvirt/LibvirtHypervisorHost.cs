using System.Collections.Concurrent;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Threading.Channels;
using System.Xml.Linq;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Libvirt;

/// <summary>
/// An <see cref="IHypervisorHost"/> over a libvirt connection (any libvirt URI). It keeps the
/// connection alive (keepalive), detects its loss (close callback), reconnects with backoff and
/// re-registers its event callbacks; blocking libvirt calls run on the thread pool (the migration
/// on a dedicated thread), never on libvirt's event-loop thread.
/// </summary>
public sealed partial class LibvirtHypervisorHost : IHypervisorHost
{
    private readonly LibvirtHostOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Subject<HostEvent> _events = new();
    private readonly Lock _publishGate = new();
    private readonly Lock _stateGate = new();
    private readonly Channel<(LibvirtConnection Connection, NativeEvent Event)> _native =
        Channel.CreateUnbounded<(LibvirtConnection, NativeEvent)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _lifetime = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource<IReadOnlyDictionary<string, object>>> _jobWaiters = new(StringComparer.Ordinal);
    private readonly List<LibvirtConnection> _closedConnections = [];
    private readonly Task _pump;
    private LibvirtConnection? _connection;
    private HostConnectionState _state = HostConnectionState.Disconnected;
    private Task _reconnect = Task.CompletedTask;
    private string? _hostUuid;
    private int _disposed;

    private LibvirtHypervisorHost(LibvirtHostOptions options, ILogger? logger, TimeProvider? timeProvider)
    {
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        Uri = options.Uri!;
        _pump = Task.Run(PumpAsync);
    }

    /// <inheritdoc />
    public string Name => _options.Name;

    /// <inheritdoc />
    public Uri Uri { get; }

    /// <summary>A copy of the options this host was built with (changing it changes nothing).</summary>
    public LibvirtHostOptions Options => _options.Clone();

    /// <inheritdoc />
    public HostConnectionState ConnectionState
    {
        get
        {
            lock (_stateGate)
            {
                return _state;
            }
        }
    }

    /// <inheritdoc />
    public IObservable<HostEvent> Events => Observable.Create<HostEvent>(observer => _events.Subscribe(
        e =>
        {
            // Isolate subscribers: one that throws must not keep the event from the others.
            try
            {
                observer.OnNext(e);
            }
#pragma warning disable CA1031 // A subscriber's bug is logged, never propagated into the event pump.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.SubscriberFailed(_logger, Name, ex);
            }
        },
        observer.OnError,
        observer.OnCompleted));

    /// <summary>The connection in use (tests look at its registrations).</summary>
    internal LibvirtConnection? CurrentConnection => Volatile.Read(ref _connection);

    /// <summary>Every connection this host has closed, in order (tests check they held no references).</summary>
    internal IReadOnlyList<LibvirtConnection> ClosedConnections
    {
        get
        {
            lock (_stateGate)
            {
                return [.. _closedConnections];
            }
        }
    }

    /// <summary>
    /// Validates <paramref name="options"/> (and keeps a copy), connects, turns on keepalive (where
    /// the driver has it) and registers for events. Throws <see cref="Core.Options.OptionsValidationException"/>
    /// listing every bad option before anything connects, or <see cref="LibvirtException"/> when the
    /// host cannot be reached.
    /// </summary>
    public static async Task<LibvirtHypervisorHost> ConnectAsync(
        LibvirtHostOptions options,
        ILogger<LibvirtHypervisorHost>? logger = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var own = options.Clone();
        Core.Options.OptionsErrors.ValidateAndThrow(own);
        cancellationToken.ThrowIfCancellationRequested();
        var host = new LibvirtHypervisorHost(own, logger, timeProvider);
        try
        {
            await Task.Run(host.OpenAndInstall, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return host;
    }

    /// <inheritdoc />
    public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) =>
        RunAsync(
            c =>
            {
                var h = c.Handle;
                var hostname = LibvirtNative.virConnectGetHostname(h) ?? throw LibvirtException.FromLastError("virConnectGetHostname");
                if (LibvirtNative.virNodeGetInfo(h, out var node) < 0)
                {
                    throw LibvirtException.FromLastError("virNodeGetInfo");
                }

                var free = LibvirtNative.virNodeGetFreeMemory(h);
                if (free == 0 && LibvirtException.FromLastError("virNodeGetFreeMemory") is { Kind: HypervisorErrorKind.ConnectionLost } error)
                {
                    // Otherwise 0 means the driver cannot tell (the test driver without NUMA cells).
                    throw error;
                }

                string model;
                unsafe
                {
                    model = new string((sbyte*)node.Model, 0, StrLen(node.Model, 32), System.Text.Encoding.ASCII);
                }

                return new HostInfo(Name, Uri, hostname, model, (int)node.Cpus, (int)node.Mhz, (long)node.Memory.Value * 1024, (long)free);
            },
            cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) =>
        RunAsync<IReadOnlyList<VmInfo>>(
            c =>
            {
                var n = LibvirtNative.virConnectListAllDomains(c.Handle, out var array, 0);
                if (n < 0)
                {
                    throw LibvirtException.FromLastError("virConnectListAllDomains");
                }

                var handles = new List<DomainHandle>(n);
                unsafe
                {
                    try
                    {
                        for (var i = 0; i < n; i++)
                        {
                            handles.Add(DomainHandle.FromOwned(((nint*)array)[i]));
                        }
                    }
                    finally
                    {
                        System.Runtime.InteropServices.NativeMemory.Free((void*)array);
                    }
                }

                try
                {
                    return [.. handles.Select(ReadVm).OrderBy(v => v.Name, StringComparer.Ordinal)];
                }
                finally
                {
                    foreach (var d in handles)
                    {
                        d.Dispose();
                    }
                }
            },
            cancellationToken);

    /// <inheritdoc />
    public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default)
    {
        DomainXml.ValidateVmName(vmName);
        return RunAsync(c => TryReadVm(c, vmName), cancellationToken);
    }

    /// <inheritdoc />
    public async Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default)
    {
        var xml = DomainXml.Build(spec, _options.EffectiveDomainType);
        return await RunAsync(
            c =>
            {
                if (TryReadVm(c, spec.Name) is { } existing)
                {
                    throw new HypervisorException(HypervisorErrorKind.AlreadyExists, $"Host {Name} already has a VM named '{spec.Name}' ({existing.State}).");
                }

                using var d = LibvirtNative.virDomainDefineXMLFlags(c.Handle, xml, 0);
                if (d.IsInvalid)
                {
                    throw LibvirtException.FromLastError("virDomainDefineXMLFlags");
                }

                Log.VmAction(_logger, Name, "defined", spec.Name);
                return ReadVm(d);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) =>
        OnDomainAsync(vmName, "started", "virDomainCreateWithFlags", d => LibvirtNative.virDomainCreateWithFlags(d, 0), cancellationToken);

    /// <inheritdoc />
    public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) =>
        OnDomainAsync(vmName, "destroyed", "virDomainDestroyFlags", d => LibvirtNative.virDomainDestroyFlags(d, 0), cancellationToken);

    /// <inheritdoc />
    public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) =>
        OnDomainAsync(
            vmName,
            "undefined",
            "virDomainUndefineFlags",
            d =>
            {
                var active = LibvirtNative.virDomainIsActive(d);
                if (active < 0)
                {
                    throw LibvirtException.FromLastError("virDomainIsActive");
                }

                if (active == 1)
                {
                    throw new HypervisorException(HypervisorErrorKind.InvalidArgument, $"VM '{vmName}' on {Name} is running: destroy it before undefining it.");
                }

                return LibvirtNative.virDomainUndefineFlags(d, 0);
            },
            cancellationToken);

    /// <summary>Pauses a running VM (for tests and maintenance).</summary>
    public Task SuspendVmAsync(string vmName, CancellationToken cancellationToken = default) =>
        OnDomainAsync(vmName, "suspended", "virDomainSuspend", LibvirtNative.virDomainSuspend, cancellationToken);

    /// <summary>Resumes a paused VM.</summary>
    public Task ResumeVmAsync(string vmName, CancellationToken cancellationToken = default) =>
        OnDomainAsync(vmName, "resumed", "virDomainResume", LibvirtNative.virDomainResume, cancellationToken);

    /// <summary>The domain XML of a VM as the host has it.</summary>
    public Task<string> GetVmXmlAsync(string vmName, CancellationToken cancellationToken = default)
    {
        DomainXml.ValidateVmName(vmName);
        return RunAsync(
            c =>
            {
                using var d = Lookup(c, vmName);
                return LibvirtNative.virDomainGetXMLDesc(d, 0) ?? throw LibvirtException.FromLastError("virDomainGetXMLDesc");
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        try
        {
            await _reconnect.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Disposal must go on; the loop logged its own failures.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        LibvirtConnection? connection;
        lock (_stateGate)
        {
            connection = _connection;
            _connection = null;
            _state = HostConnectionState.Disconnected;
        }

        if (connection is not null)
        {
            await Task.Run(() => Close(connection)).ConfigureAwait(false);
        }

        _native.Writer.TryComplete();
        try
        {
            await _pump.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        foreach (var waiter in _jobWaiters.Values)
        {
            waiter.TrySetCanceled();
        }

        Publish(new HostConnectionEvent(Name, _time.GetUtcNow(), HostConnectionState.Disconnected, "disposed"));
        lock (_publishGate)
        {
            _events.OnCompleted();
            _events.Dispose();
        }

        _lifetime.Dispose();
    }

    // ---- connection management -------------------------------------------------------------

    private void OpenAndInstall()
    {
        var connection = LibvirtConnection.Open(Uri.OriginalString, _options.NetworkNamespace);
        bool keepAlive;
        try
        {
            void Post(NativeEvent e) => _native.Writer.TryWrite((connection, e));
            keepAlive = _options.KeepAliveInterval > TimeSpan.Zero &&
                connection.SetKeepAlive((int)_options.KeepAliveInterval.TotalSeconds, (uint)_options.KeepAliveCount);
            if (!IsInProcessDriver(Uri))
            {
                // In-process drivers (test:///) cannot lose their connection, and libvirt keeps no
                // close callback for them (so it would never free one).
                connection.RegisterClose(Post);
            }

            connection.RegisterDomainEvents(Post);
            _hostUuid ??= ReadHostUuid(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        lock (_stateGate)
        {
            if (_disposed == 1)
            {
                Close(connection);
                throw new ObjectDisposedException(nameof(LibvirtHypervisorHost));
            }

            _connection = connection;
            _state = HostConnectionState.Connected;
        }

        Log.Connected(_logger, Name, LibvirtUri.Redact(Uri), keepAlive);
        Publish(new HostConnectionEvent(Name, _time.GetUtcNow(), HostConnectionState.Connected, keepAlive ? "connected (keepalive on)" : "connected"));
    }

    private static bool IsInProcessDriver(Uri uri) => uri.Scheme == "test" && uri.Host.Length == 0;

    private void Close(LibvirtConnection connection)
    {
        connection.Dispose();
        lock (_stateGate)
        {
            _closedConnections.Add(connection);
        }

        if (connection.CloseResult is > 0 and var refs)
        {
            Log.LeakedReferences(_logger, Name, refs);
        }
    }

    private void OnConnectionLost(LibvirtConnection dead, string reason)
    {
        lock (_stateGate)
        {
            if (_disposed == 1 || !ReferenceEquals(_connection, dead))
            {
                return;
            }

            _connection = null;
            _state = HostConnectionState.Reconnecting;
            _reconnect = Task.Run(() => ReconnectAsync(dead));
        }

        Log.ConnectionLost(_logger, Name, reason);
        Publish(new HostConnectionEvent(Name, _time.GetUtcNow(), HostConnectionState.Reconnecting, reason));
    }

    private async Task ReconnectAsync(LibvirtConnection dead)
    {
        Close(dead);
        var delay = _options.ReconnectInitialDelay;
        for (var attempt = 1; !_lifetime.IsCancellationRequested; attempt++)
        {
            try
            {
                await Task.Delay(delay, _time, _lifetime.Token).ConfigureAwait(false);
                OpenAndInstall();
                Log.Reconnected(_logger, Name, attempt);
                return;
            }
            catch (OperationCanceledException) when (_lifetime.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
#pragma warning disable CA1031 // Every failure is retried with backoff until the host is disposed.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                var next = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.ReconnectMaxDelay.Ticks));
                Log.ReconnectFailed(_logger, Name, attempt, next, ex);
                delay = next;
            }
        }
    }

    private async Task PumpAsync()
    {
        await foreach (var (connection, e) in _native.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            switch (e)
            {
                case NativeLifecycleEvent l:
                    Publish(ToHostEvent(l));
                    break;
                case NativeJobCompletedEvent j:
                    if (_jobWaiters.TryGetValue(j.VmName, out var waiter))
                    {
                        waiter.TrySetResult(j.Stats);
                    }

                    break;
                case NativeCloseEvent c:
                    OnConnectionLost(connection, c.Reason switch
                    {
                        0 => "connection error",
                        1 => "end of file (the daemon closed the connection)",
                        2 => "keepalive timeout",
                        3 => "closed by client",
                        _ => $"close reason {c.Reason}",
                    });
                    break;
            }
        }
    }

    private void Publish(HostEvent e)
    {
        lock (_publishGate)
        {
            if (_events.IsDisposed)
            {
                return;
            }

            try
            {
                _events.OnNext(e);
            }
#pragma warning disable CA1031 // One faulty subscriber must not stop events for everyone else.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.SubscriberFailed(_logger, Name, ex);
            }
        }
    }

    private VmLifecycleEvent ToHostEvent(NativeLifecycleEvent l)
    {
        var lifecycle = l.Event switch
        {
            0 => VmLifecycle.Defined,
            1 => VmLifecycle.Undefined,
            2 => VmLifecycle.Started,
            3 => VmLifecycle.Suspended,
            4 => VmLifecycle.Resumed,
            5 => VmLifecycle.Stopped,
            6 => VmLifecycle.Shutdown,
            7 => VmLifecycle.PowerManagementSuspended,
            8 => VmLifecycle.Crashed,
            _ => VmLifecycle.Other,
        };
        var byMigration = (lifecycle, l.Detail) switch
        {
            (VmLifecycle.Started, 1) => true,
            (VmLifecycle.Suspended, 1 or 7) => true,
            (VmLifecycle.Resumed, 1 or 3) => true,
            (VmLifecycle.Stopped, 3) => true,
            _ => false,
        };
        return new VmLifecycleEvent(Name, _time.GetUtcNow(), l.VmName, lifecycle, l.Detail, byMigration);
    }

    private static string? ReadHostUuid(LibvirtConnection connection)
    {
        var caps = LibvirtNative.virConnectGetCapabilities(connection.Handle);
        if (caps is null)
        {
            LibvirtNative.virResetLastError();
            return null;
        }

        try
        {
            return XDocument.Parse(caps).Root?.Element("host")?.Element("uuid")?.Value;
        }
        catch (System.Xml.XmlException)
        {
            return null;
        }
    }

    // ---- calls -------------------------------------------------------------------------------

    private LibvirtConnection RequireConnection()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        lock (_stateGate)
        {
            return _connection ?? throw new HypervisorException(
                HypervisorErrorKind.ConnectionLost,
                $"Host {Name} ({LibvirtUri.Redact(Uri)}) is not connected ({_state}); a retry after reconnection may succeed.");
        }
    }

    private Task<T> RunAsync<T>(Func<LibvirtConnection, T> work, CancellationToken cancellationToken)
    {
        var connection = RequireConnection();
        return Task.Run(
            () =>
            {
                try
                {
                    return work(connection);
                }
                catch (LibvirtException ex) when (ex.Kind == HypervisorErrorKind.ConnectionLost)
                {
                    // A call can notice the loss before the close callback does.
                    if (!connection.IsAlive)
                    {
                        OnConnectionLost(connection, ex.LibvirtMessage ?? "connection lost");
                    }

                    throw;
                }
                catch (ObjectDisposedException ex) when (Volatile.Read(ref _disposed) == 0)
                {
                    // The connection was replaced (lost and being re-opened) while this call started.
                    throw new HypervisorException(
                        HypervisorErrorKind.ConnectionLost,
                        $"Host {Name} ({LibvirtUri.Redact(Uri)}) lost its connection during the call; a retry after reconnection may succeed.",
                        ex);
                }
            },
            cancellationToken);
    }

    private Task<bool> OnDomainAsync(string vmName, string action, string api, Func<DomainHandle, int> call, CancellationToken cancellationToken)
    {
        DomainXml.ValidateVmName(vmName);
        return RunAsync(
            c =>
            {
                using var d = Lookup(c, vmName);
                if (call(d) < 0)
                {
                    throw LibvirtException.FromLastError(api);
                }

                Log.VmAction(_logger, Name, action, vmName);
                return true;
            },
            cancellationToken);
    }

    private static DomainHandle Lookup(LibvirtConnection c, string vmName)
    {
        var d = LibvirtNative.virDomainLookupByName(c.Handle, vmName);
        if (d.IsInvalid)
        {
            var ex = LibvirtException.FromLastError("virDomainLookupByName");
            d.Dispose();
            throw ex;
        }

        return d;
    }

    private static DomainHandle? TryLookup(LibvirtConnection c, string vmName)
    {
        var d = LibvirtNative.virDomainLookupByName(c.Handle, vmName);
        if (d.IsInvalid)
        {
            var ex = LibvirtException.FromLastError("virDomainLookupByName");
            d.Dispose();
            if (ex.Kind == HypervisorErrorKind.NotFound)
            {
                return null;
            }

            throw ex;
        }

        return d;
    }

    private static VmInfo? TryReadVm(LibvirtConnection c, string vmName)
    {
        using var d = TryLookup(c, vmName);
        return d is null ? null : ReadVm(d);
    }

    private static unsafe VmInfo ReadVm(DomainHandle d)
    {
        var name = LibvirtRuntime.Borrowed(LibvirtNative.virDomainGetName(d)) ?? throw LibvirtException.FromLastError("virDomainGetName");
        var buffer = stackalloc byte[37];
        if (LibvirtNative.virDomainGetUUIDString(d, buffer) < 0)
        {
            throw LibvirtException.FromLastError("virDomainGetUUIDString");
        }

        var uuid = Guid.Parse(new string((sbyte*)buffer, 0, 36, System.Text.Encoding.ASCII));
        if (LibvirtNative.virDomainGetInfo(d, out var info) < 0)
        {
            throw LibvirtException.FromLastError("virDomainGetInfo");
        }

        var persistent = LibvirtNative.virDomainIsPersistent(d);
        if (persistent < 0)
        {
            throw LibvirtException.FromLastError("virDomainIsPersistent");
        }

        return new VmInfo(name, uuid, ToVmState(info.State), (long)info.Memory.Value * 1024, (long)info.MaxMem.Value * 1024, info.NrVirtCpu, persistent == 1);
    }

    private static VmState ToVmState(int state) => state switch
    {
        1 => VmState.Running,
        2 => VmState.Blocked,
        3 => VmState.Paused,
        4 => VmState.ShuttingDown,
        5 => VmState.ShutOff,
        6 => VmState.Crashed,
        7 => VmState.PowerManagementSuspended,
        _ => VmState.Unknown,
    };

    private static unsafe int StrLen(byte* s, int max)
    {
        var i = 0;
        while (i < max && s[i] != 0)
        {
            i++;
        }

        return i;
    }
}
