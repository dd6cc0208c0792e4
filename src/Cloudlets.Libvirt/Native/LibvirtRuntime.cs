using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Cloudlets.Libvirt.Native;

/// <summary>
/// Process-wide libvirt set-up, done once and first: <c>virInitialize</c>, a silent error
/// handler, the default event implementation, and one background thread that runs the event loop
/// for the life of the process (libvirt cannot stop or replace it).
/// </summary>
internal static unsafe class LibvirtRuntime
{
    /// <summary>The name of the event-loop thread; callbacks run on it.</summary>
    internal const string EventLoopThreadName = "libvirt-event-loop";

    private static readonly Lazy<Thread> EventLoop = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The managed id of the event-loop thread (callbacks can check they run on it).</summary>
    internal static int EventLoopThreadId => EventLoop.Value.ManagedThreadId;

    /// <summary>The libvirt library version (for example 9000000 for 9.0.0).</summary>
    internal static long LibraryVersion { get; private set; }

    /// <summary>Initialises libvirt once per process. Throws <see cref="LibvirtException"/> when libvirt.so.0 cannot be used.</summary>
    internal static void EnsureInitialized() => _ = EventLoop.Value;

    /// <summary>Whether the calling thread is the event-loop thread (blocking libvirt calls must never run there).</summary>
    internal static bool IsOnEventLoop => EventLoop.IsValueCreated && Environment.CurrentManagedThreadId == EventLoop.Value.ManagedThreadId;

    private static Thread Start()
    {
        try
        {
            if (LibvirtNative.virInitialize() < 0)
            {
                throw LibvirtException.FromLastError("virInitialize");
            }
        }
        catch (DllNotFoundException ex)
        {
            throw new LibvirtException(
                "virInitialize",
                "libvirt.so.0 cannot be loaded: install the libvirt0 package (Debian/Ubuntu) or libvirt-libs (Fedora).",
                ex);
        }

        LibvirtNative.virSetErrorFunc(0, &SilentErrorHandler);
        _ = LibvirtNative.virGetVersion(out var version, null, out _);
        LibraryVersion = (long)version.Value;
        if (LibvirtNative.virEventRegisterDefaultImpl() < 0)
        {
            throw LibvirtException.FromLastError("virEventRegisterDefaultImpl");
        }

        var thread = new Thread(RunEventLoop) { IsBackground = true, Name = EventLoopThreadName };
        thread.Start();
        return thread;
    }

    private static void RunEventLoop()
    {
        // Never stopped: libvirt keeps callbacks and keepalive timers on this loop after close.
        while (true)
        {
            if (LibvirtNative.virEventRunDefaultImpl() < 0)
            {
                // A failed iteration (rare) must not spin a core.
                Thread.Sleep(10);
            }
        }
    }

    [UnmanagedCallersOnly]
    private static void SilentErrorHandler(nint userData, VirError* error)
    {
        // Errors are read per call through virGetLastError; libvirt must not print them to stderr.
    }

    /// <summary>Reads a borrowed (libvirt-owned) UTF-8 string without freeing it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static string? Borrowed(nint p) => p == 0 ? null : Marshal.PtrToStringUTF8(p);
}
