namespace Cloudlets.Core.Hypervisors;

/// <summary>What happened to a copy of the VM on the destination after a failed migration.</summary>
public enum DestinationCopyAction
{
    /// <summary>The destination had no copy of the VM.</summary>
    None,
    /// <summary>A paused incoming copy was removed, after the source was confirmed to run the VM.</summary>
    Removed,
    /// <summary>
    /// A copy was left untouched, because the source did not (or could not be shown to) run the VM:
    /// that copy may be the only one.
    /// </summary>
    LeftUntouched,
    /// <summary>The destination could not be checked (for example its connection was lost).</summary>
    Unknown,
    /// <summary>
    /// Alarm: the VM runs on both hosts. Nothing was touched and nothing is retried automatically;
    /// an operator must decide which copy to keep.
    /// </summary>
    BothRunning,
}

/// <summary>
/// A migration that did not complete, with where the VM is afterwards. The inner exception is the
/// hypervisor's own error; <see cref="HypervisorException.Kind"/> is copied from it.
/// </summary>
public sealed class MigrationException : HypervisorException
{
    /// <summary>Creates an exception.</summary>
    public MigrationException()
        : this("A migration failed.")
    {
    }

    /// <summary>Creates an exception.</summary>
    public MigrationException(string message)
        : base(HypervisorErrorKind.OperationFailed, message)
    {
        VmName = SourceHost = DestinationHost = string.Empty;
    }

    /// <summary>Creates an exception.</summary>
    public MigrationException(string message, Exception innerException)
        : base(HypervisorErrorKind.OperationFailed, message, innerException)
    {
        VmName = SourceHost = DestinationHost = string.Empty;
    }

    /// <summary>Creates an exception that reports where the VM is.</summary>
    /// <param name="kind">What kind of failure it was.</param>
    /// <param name="message">What happened.</param>
    /// <param name="vmName">The VM.</param>
    /// <param name="source">The source host name.</param>
    /// <param name="destination">The destination host name.</param>
    /// <param name="vmRunningOnSource">Whether the source was confirmed to run the VM afterwards.</param>
    /// <param name="destinationCopy">What was done with a copy on the destination.</param>
    /// <param name="innerException">The hypervisor's error.</param>
    public MigrationException(
        HypervisorErrorKind kind,
        string message,
        string vmName,
        string source,
        string destination,
        bool vmRunningOnSource,
        DestinationCopyAction destinationCopy,
        Exception? innerException)
        : base(kind, message, innerException)
    {
        VmName = vmName;
        SourceHost = source;
        DestinationHost = destination;
        VmRunningOnSource = vmRunningOnSource;
        DestinationCopy = destinationCopy;
    }

    /// <summary>The VM.</summary>
    public string VmName { get; }

    /// <summary>The source host name.</summary>
    public string SourceHost { get; }

    /// <summary>The destination host name.</summary>
    public string DestinationHost { get; }

    /// <summary>Whether the source was confirmed to run the VM after the failure (the VM was not lost).</summary>
    public bool VmRunningOnSource { get; }

    /// <summary>What was done with a copy of the VM on the destination.</summary>
    public DestinationCopyAction DestinationCopy { get; }

    /// <inheritdoc />
    public override bool IsTransient =>
        VmRunningOnSource &&
        DestinationCopy is DestinationCopyAction.None or DestinationCopyAction.Removed &&
        (InnerException as HypervisorException)?.IsTransient == true;
}
