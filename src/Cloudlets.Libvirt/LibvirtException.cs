using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

/// <summary>
/// A failed libvirt call: libvirt's own error (code, domain, level, message and extra fields),
/// the API that failed, and the <see cref="HypervisorErrorKind"/> it maps to.
/// </summary>
public sealed class LibvirtException : HypervisorException
{
    /// <summary>Creates an exception.</summary>
    public LibvirtException()
        : this("libvirt", "A libvirt call failed.")
    {
    }

    /// <summary>Creates an exception.</summary>
    public LibvirtException(string message)
        : this("libvirt", message)
    {
    }

    /// <summary>Creates an exception.</summary>
    public LibvirtException(string message, Exception innerException)
        : this("libvirt", message, innerException)
    {
    }

    /// <summary>Creates an exception that carries no libvirt error record (for example, the library is missing).</summary>
    /// <param name="api">The libvirt function that failed.</param>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The cause, or <see langword="null"/>.</param>
    public LibvirtException(string api, string message, Exception? innerException = null)
        : base(HypervisorErrorKind.Other, message, innerException)
    {
        Api = api;
        LibvirtMessage = message;
    }

    /// <summary>Creates an exception from libvirt's error fields.</summary>
    /// <param name="api">The libvirt function that failed.</param>
    /// <param name="code">libvirt's error code (<c>virErrorNumber</c>).</param>
    /// <param name="errorDomain">libvirt's error domain (<c>virErrorDomain</c>): which part of libvirt raised it.</param>
    /// <param name="level">1 warning, 2 error.</param>
    /// <param name="libvirtMessage">libvirt's message.</param>
    /// <param name="str1">Extra string 1.</param>
    /// <param name="str2">Extra string 2.</param>
    /// <param name="str3">Extra string 3.</param>
    /// <param name="int1">Extra number 1.</param>
    /// <param name="int2">Extra number 2.</param>
    public LibvirtException(
        string api,
        int code,
        int errorDomain,
        int level,
        string? libvirtMessage,
        string? str1 = null,
        string? str2 = null,
        string? str3 = null,
        int int1 = 0,
        int int2 = 0)
        : base(Classify(code, errorDomain, libvirtMessage), Describe(api, code, errorDomain, libvirtMessage))
    {
        Api = api;
        Code = code;
        ErrorDomain = errorDomain;
        Level = level;
        LibvirtMessage = libvirtMessage;
        Str1 = str1;
        Str2 = str2;
        Str3 = str3;
        Int1 = int1;
        Int2 = int2;
    }

    /// <summary>The libvirt function that failed (for example <c>virDomainLookupByName</c>).</summary>
    public string Api { get; }

    /// <summary>libvirt's error code (<c>virErrorNumber</c>, for example 42 for "domain not found"); 0 when none was recorded.</summary>
    public int Code { get; }

    /// <summary>libvirt's error domain (<c>virErrorDomain</c>, for example 7 RPC, 10 QEMU, 12 test driver).</summary>
    public int ErrorDomain { get; }

    /// <summary>libvirt's error level (1 warning, 2 error).</summary>
    public int Level { get; }

    /// <summary>libvirt's message, or <see langword="null"/>.</summary>
    public string? LibvirtMessage { get; }

    /// <summary>libvirt's extra string 1.</summary>
    public string? Str1 { get; }

    /// <summary>libvirt's extra string 2.</summary>
    public string? Str2 { get; }

    /// <summary>libvirt's extra string 3.</summary>
    public string? Str3 { get; }

    /// <summary>libvirt's extra number 1.</summary>
    public int Int1 { get; }

    /// <summary>libvirt's extra number 2.</summary>
    public int Int2 { get; }

    /// <inheritdoc />
    public override bool IsTransient =>
        Code == Vir.ErrResourceBusy || (Kind is HypervisorErrorKind.ConnectionLost or HypervisorErrorKind.Timeout && Code != Vir.ErrUnknownHost);

    /// <summary>
    /// Captures the calling thread's last libvirt error. Call it right after the failing call, on the
    /// same thread, before any other libvirt call (each one resets the error).
    /// </summary>
    internal static unsafe LibvirtException FromLastError(string api)
    {
        var e = LibvirtNative.virGetLastError();
        if (e is null || e->Code == 0)
        {
            return new LibvirtException(api, 0, 0, 2, $"{api} failed without a libvirt error record.");
        }

        var ex = new LibvirtException(
            api,
            e->Code,
            e->Domain,
            e->Level,
            LibvirtRuntime.Borrowed(e->Message),
            LibvirtRuntime.Borrowed(e->Str1),
            LibvirtRuntime.Borrowed(e->Str2),
            LibvirtRuntime.Borrowed(e->Str3),
            e->Int1,
            e->Int2);
        LibvirtNative.virResetLastError();
        return ex;
    }

    /// <summary>Maps a libvirt error to a kind.</summary>
    internal static HypervisorErrorKind Classify(int code, int errorDomain, string? message) => code switch
    {
        Vir.ErrNoDomain or Vir.ErrNoName => HypervisorErrorKind.NotFound,
        Vir.ErrDomExist => HypervisorErrorKind.AlreadyExists,
        Vir.ErrNoSupport or Vir.ErrArgumentUnsupported or Vir.ErrOperationUnsupported or Vir.ErrConfigUnsupported => HypervisorErrorKind.NotSupported,
        Vir.ErrOperationAborted => HypervisorErrorKind.Aborted,
        Vir.ErrOperationTimeout or Vir.ErrAgentUnresponsive => HypervisorErrorKind.Timeout,
        Vir.ErrInvalidArg or Vir.ErrXml or Vir.ErrXmlDetail or 44 or 92 => HypervisorErrorKind.InvalidArgument,
        Vir.ErrUnknownHost or Vir.ErrNoConnect or Vir.ErrRpc => HypervisorErrorKind.ConnectionLost,
        Vir.ErrSystem or Vir.ErrInternal when errorDomain is Vir.FromRpc or Vir.FromRemote => HypervisorErrorKind.ConnectionLost,
        Vir.ErrInternal when message is not null && message.Contains("client socket is closed", StringComparison.Ordinal) => HypervisorErrorKind.ConnectionLost,
        Vir.ErrInvalidConn => HypervisorErrorKind.ConnectionLost,
        // A changed SSH host key and a refused key arrive as authentication failures; a host key that cannot be
        // verified (no known_hosts entry) as an SSH transport error that names it.
        Vir.ErrAuthFailed or Vir.ErrAuthCancelled or Vir.ErrAuthUnavailable => HypervisorErrorKind.AuthenticationFailed,
        Vir.ErrSsh or Vir.ErrLibssh when message is not null && (message.Contains("host key", StringComparison.OrdinalIgnoreCase) ||
            message.Contains("authenticat", StringComparison.OrdinalIgnoreCase)) => HypervisorErrorKind.AuthenticationFailed,
        0 => HypervisorErrorKind.Other,
        _ => HypervisorErrorKind.OperationFailed,
    };

    private static string Describe(string api, int code, int errorDomain, string? message) =>
        $"{api} failed: {message ?? "no message"} (libvirt error {code}, domain {errorDomain}).";
}
