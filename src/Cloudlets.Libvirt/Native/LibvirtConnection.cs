using Cloudlets.Probing.Linux;

namespace Cloudlets.Libvirt.Native;

/// <summary>
/// One open libvirt connection with its registrations: the close callback and the domain event
/// callbacks. Disposal undoes them in the order libvirt needs (deregister events, unregister the
/// close callback, then close), so no registration keeps the connection alive.
/// </summary>
internal sealed unsafe class LibvirtConnection : IDisposable
{
    private readonly List<(int Id, CallbackSink Sink)> _domainCallbacks = [];
    private readonly Lock _gate = new();
    private CallbackSink? _closeSink;
    private bool _disposed;

    private LibvirtConnection(ConnectHandle handle, string uri)
    {
        Handle = handle;
        Uri = uri;
    }

    /// <summary>The native handle. Calls pass it to libvirt, which keeps it alive for the call.</summary>
    public ConnectHandle Handle { get; }

    /// <summary>The URI it was opened with.</summary>
    public string Uri { get; }

    /// <summary>Every sink this connection registered (tests check they are all freed).</summary>
    public IReadOnlyList<CallbackSink> Sinks
    {
        get
        {
            lock (_gate)
            {
                var all = _domainCallbacks.Select(c => c.Sink).ToList();
                if (_closeSink is not null)
                {
                    all.Add(_closeSink);
                }

                return all;
            }
        }
    }

    /// <summary>
    /// Opens a connection. With <paramref name="networkNamespace"/>, the socket is created on a
    /// thread inside that named network namespace (it stays there afterwards). With
    /// <paramref name="credentials"/>, libvirt's SASL prompts are answered from it (one attempt:
    /// a wrong password fails this open, it is not tried again here); without, a daemon that
    /// requires SASL refuses the open with an authentication error.
    /// </summary>
    public static LibvirtConnection Open(string uri, string? networkNamespace, ILibvirtCredentialProvider? credentials = null)
    {
        LibvirtRuntime.EnsureInitialized();
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("libvirt hosts are supported on Linux only.");
        }

        if (networkNamespace is not null && !NetworkNamespace.Exists(networkNamespace))
        {
            throw new Core.Hypervisors.HypervisorException(
                Core.Hypervisors.HypervisorErrorKind.InvalidArgument,
                $"Network namespace '{networkNamespace}' does not exist (no {NetworkNamespace.NamedNamespaceFolder}/{networkNamespace}).");
        }

        var handle = NetworkNamespace.Run(networkNamespace, () =>
        {
            ConnectHandle h;
            if (credentials is null)
            {
                h = LibvirtNative.virConnectOpenAuth(uri, null, 0);
            }
            else
            {
                using var auth = new ConnectAuth(credentials, new Uri(uri));
                var native = auth.Native;
                h = LibvirtNative.virConnectOpenAuth(uri, &native, 0);
            }

            if (h.IsInvalid)
            {
                var ex = LibvirtException.FromLastError("virConnectOpenAuth");
                h.Dispose();
                throw ex;
            }

            return h;
        });
        return new LibvirtConnection(handle, uri);
    }

    /// <summary>Turns on keepalive; returns <see langword="false"/> when the driver has none (local drivers such as test:///).</summary>
    public bool SetKeepAlive(int intervalSeconds, uint count)
    {
        var rc = LibvirtNative.virConnectSetKeepAlive(Handle, intervalSeconds, count);
        if (rc < 0)
        {
            var ex = LibvirtException.FromLastError("virConnectSetKeepAlive");
            if (ex.Code == Vir.ErrNoSupport)
            {
                return false;
            }

            throw ex;
        }

        return rc == 0;
    }

    /// <summary>Registers the close callback; returns <see langword="false"/> when the driver has none.</summary>
    public bool RegisterClose(Action<NativeEvent> post)
    {
        var sink = new CallbackSink(post);
        var opaque = sink.Alloc();
        if (LibvirtNative.virConnectRegisterCloseCallback(Handle, NativeCallbacks.Close, opaque, NativeCallbacks.Free) < 0)
        {
            var ex = LibvirtException.FromLastError("virConnectRegisterCloseCallback");
            System.Runtime.InteropServices.GCHandle.FromIntPtr(opaque).Free();
            if (ex.Code == Vir.ErrNoSupport)
            {
                return false;
            }

            throw ex;
        }

        lock (_gate)
        {
            _closeSink = sink;
        }

        return true;
    }

    /// <summary>Registers lifecycle and job-completed callbacks for every domain of this connection.</summary>
    public void RegisterDomainEvents(Action<NativeEvent> post)
    {
        Register(Vir.EventIdLifecycle, NativeCallbacks.Lifecycle, post);
        Register(Vir.EventIdJobCompleted, NativeCallbacks.JobCompleted, post);
    }

    /// <summary>Whether libvirt says the connection is alive.</summary>
    public bool IsAlive => LibvirtNative.virConnectIsAlive(Handle) == 1;

    /// <summary>What <c>virConnectClose</c> returned (0 = no live references remained), once disposed.</summary>
    public int? CloseResult => Handle.CloseResult;

    public void Dispose()
    {
        List<(int Id, CallbackSink Sink)> callbacks;
        CallbackSink? closeSink;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            callbacks = [.. _domainCallbacks];
            closeSink = _closeSink;
        }

        foreach (var (id, _) in callbacks)
        {
            // On a dead remote connection this may fail; libvirt then frees the callback with the connection.
            if (LibvirtNative.virConnectDomainEventDeregisterAny(Handle, id) < 0)
            {
                LibvirtNative.virResetLastError();
            }
        }

        if (closeSink is not null && LibvirtNative.virConnectUnregisterCloseCallback(Handle, NativeCallbacks.Close) < 0)
        {
            LibvirtNative.virResetLastError();
        }

        Handle.Dispose();
    }

    private void Register(int eventId, void* callback, Action<NativeEvent> post)
    {
        var sink = new CallbackSink(post);
        var opaque = sink.Alloc();
        var id = LibvirtNative.virConnectDomainEventRegisterAny(Handle, 0, eventId, callback, opaque, NativeCallbacks.Free);
        if (id < 0)
        {
            var ex = LibvirtException.FromLastError("virConnectDomainEventRegisterAny");
            System.Runtime.InteropServices.GCHandle.FromIntPtr(opaque).Free();
            throw ex;
        }

        lock (_gate)
        {
            _domainCallbacks.Add((id, sink));
        }
    }
}
