using System.Collections.Concurrent;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Threading.Channels;
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
}
