using System.Runtime.InteropServices;

namespace Cloudlets.Libvirt.Native;

/// <summary>A <c>virConnectPtr</c>; releasing it calls <c>virConnectClose</c>.</summary>
internal sealed class ConnectHandle : SafeHandle
{
    /// <summary>Required by the interop generator.</summary>
    public ConnectHandle()
        : base(0, ownsHandle: true)
    {
    }

    /// <inheritdoc />
    public override bool IsInvalid => handle == 0;

    /// <summary>
    /// What <c>virConnectClose</c> returned when the handle was released: the number of references
    /// libvirt still held (0 means the connection is really closed), or -1 on error;
    /// <see langword="null"/> while the handle is alive.
    /// </summary>
    public int? CloseResult { get; private set; }

    /// <inheritdoc />
    protected override bool ReleaseHandle()
    {
        var rc = LibvirtNative.virConnectClose(handle);
        CloseResult = rc;
        return rc >= 0;
    }
}

/// <summary>A <c>virDomainPtr</c>; releasing it calls <c>virDomainFree</c>.</summary>
internal sealed class DomainHandle : SafeHandle
{
    /// <summary>Required by the interop generator.</summary>
    public DomainHandle()
        : base(0, ownsHandle: true)
    {
    }

    /// <inheritdoc />
    public override bool IsInvalid => handle == 0;

    /// <summary>Wraps a pointer this process owns (for example an element of a domain list).</summary>
    public static DomainHandle FromOwned(nint pointer)
    {
        var h = new DomainHandle();
        h.SetHandle(pointer);
        return h;
    }

    /// <inheritdoc />
    protected override bool ReleaseHandle() => LibvirtNative.virDomainFree(handle) == 0;
}
