using System.Runtime.InteropServices;

namespace Cloudlets.Libvirt.Native;

#pragma warning disable SA1300, IDE1006, CA1707 // Native names are kept as libvirt spells them.

/// <summary>
/// The libvirt C API this library uses (libvirt 9.0.0 headers). Ownership: strings returned as
/// <see cref="string"/> are caller-frees <c>char*</c> (the generated stub frees them);
/// borrowed <c>const char*</c> are declared as <see cref="nint"/> and never freed.
/// </summary>
internal static unsafe partial class LibvirtNative
{
    internal const string Lib = "libvirt.so.0";

    // library and errors
    [LibraryImport(Lib)] internal static partial int virInitialize();
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virGetVersion(out CULong libVer, string? type, out CULong typeVer);
    [LibraryImport(Lib)] internal static partial void virSetErrorFunc(nint userData, delegate* unmanaged<nint, VirError*, void> handler);
    [LibraryImport(Lib)] internal static partial VirError* virGetLastError();
    [LibraryImport(Lib)] internal static partial void virResetLastError();

    // event loop
    [LibraryImport(Lib)] internal static partial int virEventRegisterDefaultImpl();
    [LibraryImport(Lib)] internal static partial int virEventRunDefaultImpl();
    [LibraryImport(Lib)] internal static partial int virEventAddTimeout(int ms, delegate* unmanaged<int, nint, void> cb, nint opaque, delegate* unmanaged<nint, void> ff);
    [LibraryImport(Lib)] internal static partial int virEventRemoveTimeout(int timer);

    // connection and node
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial ConnectHandle virConnectOpenAuth(string? name, VirConnectAuth* auth, uint flags);
    [LibraryImport(Lib)] internal static partial int virConnectClose(nint conn);
    [LibraryImport(Lib)] internal static partial int virConnectSetKeepAlive(ConnectHandle conn, int interval, uint count);
    [LibraryImport(Lib)] internal static partial int virConnectIsAlive(ConnectHandle conn);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial string? virConnectGetURI(ConnectHandle conn);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial string? virConnectGetHostname(ConnectHandle conn);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial string? virConnectGetCapabilities(ConnectHandle conn);
    [LibraryImport(Lib)] internal static partial int virConnectRegisterCloseCallback(ConnectHandle conn, delegate* unmanaged<nint, int, nint, void> cb, nint opaque, delegate* unmanaged<nint, void> freecb);
    [LibraryImport(Lib)] internal static partial int virConnectUnregisterCloseCallback(ConnectHandle conn, delegate* unmanaged<nint, int, nint, void> cb);
    [LibraryImport(Lib)] internal static partial int virNodeGetInfo(ConnectHandle conn, out VirNodeInfo info);
    [LibraryImport(Lib)] internal static partial ulong virNodeGetFreeMemory(ConnectHandle conn);

    // domains
    [LibraryImport(Lib)] internal static partial int virConnectListAllDomains(ConnectHandle conn, out nint domains, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainLookupByName(ConnectHandle conn, string name);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainDefineXMLFlags(ConnectHandle conn, string xml, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainCreateXML(ConnectHandle conn, string xml, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainCreateWithFlags(DomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainDestroyFlags(DomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainSuspend(DomainHandle dom);
    [LibraryImport(Lib)] internal static partial int virDomainResume(DomainHandle dom);
    [LibraryImport(Lib)] internal static partial int virDomainUndefineFlags(DomainHandle dom, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainFree(nint dom);
    [LibraryImport(Lib)] internal static partial int virDomainRef(nint dom);
    [LibraryImport(Lib)] internal static partial nint virDomainGetName(DomainHandle dom);
    [LibraryImport(Lib, EntryPoint = "virDomainGetName")] internal static partial nint virDomainGetNameRaw(nint dom);
    [LibraryImport(Lib)] internal static partial int virDomainGetUUIDString(DomainHandle dom, byte* buf37);
    [LibraryImport(Lib)] internal static partial int virDomainGetInfo(DomainHandle dom, out VirDomainInfo info);
    [LibraryImport(Lib)] internal static partial int virDomainGetState(DomainHandle dom, out int state, out int reason, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainIsActive(DomainHandle dom);
    [LibraryImport(Lib)] internal static partial int virDomainIsPersistent(DomainHandle dom);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial string? virDomainGetXMLDesc(DomainHandle dom, uint flags);

    // migration and jobs
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainMigrateToURI3(DomainHandle dom, string? dconnuri, VirTypedParameter* p, uint n, uint flags);
    [LibraryImport(Lib)] internal static partial DomainHandle virDomainMigrate3(DomainHandle dom, ConnectHandle dconn, VirTypedParameter* p, uint n, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainGetJobStats(DomainHandle dom, out int type, out VirTypedParameter* p, out int n, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainAbortJob(DomainHandle dom);
    [LibraryImport(Lib)] internal static partial int virDomainMigrateSetMaxDowntime(DomainHandle dom, ulong ms, uint flags);
    [LibraryImport(Lib)] internal static partial int virDomainMigrateStartPostCopy(DomainHandle dom, uint flags);

    // typed parameters
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddString(ref VirTypedParameter* p, ref int n, ref int max, string name, string value);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddULLong(ref VirTypedParameter* p, ref int n, ref int max, string name, ulong value);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsAddInt(ref VirTypedParameter* p, ref int n, ref int max, string name, int value);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virTypedParamsGetULLong(VirTypedParameter* p, int n, string name, out ulong value);
    [LibraryImport(Lib)] internal static partial void virTypedParamsFree(VirTypedParameter* p, int n);

    // events (cb is cast to void*, as the C macro VIR_DOMAIN_EVENT_CALLBACK does)
    [LibraryImport(Lib)]
    internal static partial int virConnectDomainEventRegisterAny(ConnectHandle conn, nint dom, int eventId, void* cb, nint opaque, delegate* unmanaged<nint, void> freecb);
    [LibraryImport(Lib)] internal static partial int virConnectDomainEventDeregisterAny(ConnectHandle conn, int callbackId);
}

/// <summary>libvirt constants used here (libvirt-domain.h, libvirt-host.h, virterror.h).</summary>
internal static class Vir
{
    // virDomainState
    internal const int StateRunning = 1, StatePaused = 3, StateShutoff = 5;

    // virConnectListAllDomains flags
    internal const uint ListActive = 1, ListInactive = 2;

    // event ids
    internal const int EventIdLifecycle = 0, EventIdJobCompleted = 21;

    // migrate flags
    internal const uint MigrateLive = 1 << 0, MigratePeer2Peer = 1 << 1, MigratePersistDest = 1 << 3,
        MigrateUndefineSource = 1 << 4, MigrateCompressed = 1 << 11, MigrateAbortOnError = 1 << 12,
        MigrateAutoConverge = 1 << 13, MigratePostCopy = 1 << 15, MigrateTls = 1 << 16,
        MigrateParallel = 1 << 17;

    // job stats: flags, virDomainJobType (active kinds), virDomainJobOperation
    internal const uint JobStatsCompleted = 1;
    internal const int JobBounded = 1, JobUnbounded = 2;
    internal const long JobOperationMigrationIn = 4, JobOperationMigrationOut = 5;

    // typed parameter types
    internal const int ParamInt = 1, ParamUInt = 2, ParamLLong = 3, ParamULLong = 4, ParamDouble = 5, ParamBoolean = 6, ParamString = 7;

    // error codes and domains
    internal const int ErrInternal = 1, ErrNoSupport = 3, ErrNoConnect = 5, ErrInvalidConn = 6, ErrInvalidDomain = 7,
        ErrInvalidArg = 8, ErrOperationFailed = 9, ErrXml = 27, ErrDomExist = 28, ErrOperationDenied = 29,
        ErrSystem = 38, ErrRpc = 39, ErrNoDomain = 42, ErrAuthFailed = 45, ErrOperationInvalid = 55,
        ErrConfigUnsupported = 67, ErrOperationTimeout = 68, ErrArgumentUnsupported = 74, ErrOperationAborted = 78,
        ErrAuthCancelled = 79, ErrMigrateUnsafe = 81, ErrOperationUnsupported = 84, ErrAgentUnresponsive = 86,
        ErrAuthUnavailable = 94, ErrXmlDetail = 35, ErrNoName = 21, ErrUnknownHost = 4, ErrResourceBusy = 87, ErrMigrateFinishOk = 93,
        ErrSsh = 85, ErrLibssh = 98;

    internal const int FromRpc = 7, FromRemote = 13;
}
