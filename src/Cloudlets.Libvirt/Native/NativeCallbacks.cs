using System.Runtime.InteropServices;

namespace Cloudlets.Libvirt.Native;

/// <summary>Something libvirt reported through a callback, copied out of native memory.</summary>
internal abstract record NativeEvent(int ThreadId);

/// <summary>A domain lifecycle event (<c>VIR_DOMAIN_EVENT_ID_LIFECYCLE</c>).</summary>
internal sealed record NativeLifecycleEvent(int ThreadId, string VmName, int Event, int Detail) : NativeEvent(ThreadId);

/// <summary>A finished job's statistics (<c>VIR_DOMAIN_EVENT_ID_JOB_COMPLETED</c>).</summary>
internal sealed record NativeJobCompletedEvent(int ThreadId, string VmName, IReadOnlyDictionary<string, object> Stats) : NativeEvent(ThreadId);

/// <summary>The connection was closed (reason 0 error, 1 end of file, 2 keepalive, 3 client).</summary>
internal sealed record NativeCloseEvent(int ThreadId, int Reason) : NativeEvent(ThreadId);

/// <summary>
/// The managed state behind one native registration. libvirt gets a <see cref="GCHandle"/> to it as
/// <c>opaque</c>, and frees that handle through <see cref="NativeCallbacks.FreeOpaque"/>.
/// </summary>
internal sealed class CallbackSink
{
    private readonly Action<NativeEvent> _post;
    private int _freed;

    /// <param name="post">Receives each event on the event-loop thread; must not block (for example a channel write).</param>
    public CallbackSink(Action<NativeEvent> post) => _post = post;

    /// <summary>Whether libvirt has released this registration (its free callback ran).</summary>
    public bool IsFreed => Volatile.Read(ref _freed) == 1;

    /// <summary>How many events the posting action threw on (they are dropped, never propagated into libvirt).</summary>
    public int Faults { get; private set; }

    public void Post(NativeEvent e)
    {
        try
        {
            _post(e);
        }
#pragma warning disable CA1031 // An exception must never cross back into libvirt's event loop.
        catch (Exception)
#pragma warning restore CA1031
        {
            Faults++;
        }
    }

    internal void MarkFreed() => Volatile.Write(ref _freed, 1);

    /// <summary>Allocates the opaque pointer handed to libvirt.</summary>
    public nint Alloc() => GCHandle.ToIntPtr(GCHandle.Alloc(this));
}

/// <summary>
/// The native entry points libvirt calls on the event-loop thread. Each copies what it needs,
/// posts it, and returns; nothing may throw into native code.
/// </summary>
internal static unsafe class NativeCallbacks
{
    public static delegate* unmanaged<nint, nint, int, int, nint, int> Lifecycle => &OnLifecycle;

    public static delegate* unmanaged<nint, nint, VirTypedParameter*, int, nint, void> JobCompleted => &OnJobCompleted;

    public static delegate* unmanaged<nint, int, nint, void> Close => &OnClose;

    public static delegate* unmanaged<nint, void> Free => &FreeOpaque;

    [UnmanagedCallersOnly]
    private static int OnLifecycle(nint conn, nint dom, int evt, int detail, nint opaque)
    {
        try
        {
            var name = LibvirtRuntime.Borrowed(LibvirtNative.virDomainGetNameRaw(dom)) ?? string.Empty;
            Sink(opaque)?.Post(new NativeLifecycleEvent(Environment.CurrentManagedThreadId, name, evt, detail));
        }
#pragma warning disable CA1031 // see CallbackSink.Post
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        return 0;
    }

    [UnmanagedCallersOnly]
    private static void OnJobCompleted(nint conn, nint dom, VirTypedParameter* p, int n, nint opaque)
    {
        try
        {
            // The parameters belong to libvirt: copy them, never free them.
            var name = LibvirtRuntime.Borrowed(LibvirtNative.virDomainGetNameRaw(dom)) ?? string.Empty;
            var stats = TypedParams.Read(p, n);
            Sink(opaque)?.Post(new NativeJobCompletedEvent(Environment.CurrentManagedThreadId, name, stats));
        }
#pragma warning disable CA1031 // see CallbackSink.Post
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    [UnmanagedCallersOnly]
    private static void OnClose(nint conn, int reason, nint opaque)
    {
        try
        {
            Sink(opaque)?.Post(new NativeCloseEvent(Environment.CurrentManagedThreadId, reason));
        }
#pragma warning disable CA1031 // see CallbackSink.Post
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    [UnmanagedCallersOnly]
    private static void FreeOpaque(nint opaque)
    {
        // Runs inside Deregister (local drivers) or later on the event loop (remote): only free.
        try
        {
            var handle = GCHandle.FromIntPtr(opaque);
            (handle.Target as CallbackSink)?.MarkFreed();
            handle.Free();
        }
#pragma warning disable CA1031 // see CallbackSink.Post
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private static CallbackSink? Sink(nint opaque) => opaque == 0 ? null : GCHandle.FromIntPtr(opaque).Target as CallbackSink;
}
