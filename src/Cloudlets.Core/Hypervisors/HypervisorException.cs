namespace Cloudlets.Core.Hypervisors;

/// <summary>What kind of failure a <see cref="HypervisorException"/> reports.</summary>
public enum HypervisorErrorKind
{
    /// <summary>Anything not listed.</summary>
    Other,
    /// <summary>The input was invalid; nothing was changed.</summary>
    InvalidArgument,
    /// <summary>The host, VM or object does not exist.</summary>
    NotFound,
    /// <summary>The object already exists.</summary>
    AlreadyExists,
    /// <summary>The host cannot be reached, or the connection was lost.</summary>
    ConnectionLost,
    /// <summary>The operation is not supported by this host or driver.</summary>
    NotSupported,
    /// <summary>The operation was aborted (for example a cancelled migration).</summary>
    Aborted,
    /// <summary>The operation failed on the host.</summary>
    OperationFailed,
    /// <summary>The operation timed out.</summary>
    Timeout,
    /// <summary>
    /// The host refused the credentials, or the client refused the host's identity (an SSH host key that is
    /// not the pinned one, a client key or certificate the host does not accept). A retry with the same
    /// credentials fails again. The message never carries a secret.
    /// </summary>
    AuthenticationFailed,
}

/// <summary>A typed failure of a hypervisor operation, saying what was wrong and whether a retry can help.</summary>
public class HypervisorException : Exception
{
    /// <summary>Creates an exception.</summary>
    public HypervisorException() : this(HypervisorErrorKind.Other, "A hypervisor operation failed.") { }

    /// <summary>Creates an exception.</summary>
    public HypervisorException(string message) : this(HypervisorErrorKind.Other, message) { }

    /// <summary>Creates an exception.</summary>
    public HypervisorException(string message, Exception innerException)
        : this(HypervisorErrorKind.Other, message, innerException) { }

    /// <summary>Creates an exception of a kind.</summary>
    public HypervisorException(HypervisorErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>What kind of failure this is.</summary>
    public HypervisorErrorKind Kind { get; }

    /// <summary>Whether retrying the same call later may succeed.</summary>
    public virtual bool IsTransient => Kind is HypervisorErrorKind.ConnectionLost or HypervisorErrorKind.Timeout;
}

/// <summary>
/// A migration was refused before anything happened on the hosts (a fence, a start gate): the VM stays
/// where it is. The executor reports such a move as <c>Skipped</c>, not as a failure, and backs no host off.
/// </summary>
public class MigrationNotStartedException : HypervisorException
{
    /// <summary>Creates the exception.</summary>
    public MigrationNotStartedException()
        : this("A migration was not started; the VM stays on its source.")
    {
    }

    /// <summary>Creates the exception.</summary>
    public MigrationNotStartedException(string message)
        : base(HypervisorErrorKind.Aborted, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MigrationNotStartedException(string message, Exception innerException)
        : base(HypervisorErrorKind.Aborted, message, innerException)
    {
    }
}
