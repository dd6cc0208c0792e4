namespace Cloudlets.Core.Shaping;

/// <summary>A shaping operation failed.</summary>
public class ShapingException : Exception
{
    /// <summary>Creates an exception.</summary>
    public ShapingException() : base("A shaping operation failed.") { }

    /// <summary>Creates an exception.</summary>
    public ShapingException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public ShapingException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A plan or rule is invalid. Thrown before any command runs.</summary>
public sealed class ShapingValidationException : ShapingException
{
    /// <summary>Creates an exception.</summary>
    public ShapingValidationException() : base("The shaping plan is invalid.") { }

    /// <summary>Creates an exception.</summary>
    public ShapingValidationException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public ShapingValidationException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception naming the field that is wrong.</summary>
    public ShapingValidationException(string field, string message) : base($"{field}: {message}")
    {
        Field = field;
    }

    /// <summary>The field that is wrong (for example <c>rules[1].Interface</c>), if known.</summary>
    public string? Field { get; }
}

/// <summary>The backend cannot do what a rule asks (for example duplication on the NFQUEUE backend). Thrown before any command runs.</summary>
public sealed class UnsupportedImpairmentException : ShapingException
{
    /// <summary>Creates an exception.</summary>
    public UnsupportedImpairmentException() : base("The backend does not support this impairment.") { }

    /// <summary>Creates an exception.</summary>
    public UnsupportedImpairmentException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public UnsupportedImpairmentException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception naming the unsupported features.</summary>
    public UnsupportedImpairmentException(string backend, ShapingFeatures missing)
        : base($"The {backend} backend does not support: {missing}.")
    {
        Missing = missing;
    }

    /// <summary>The features that are missing.</summary>
    public ShapingFeatures Missing { get; }
}

/// <summary>The kernel has no netem qdisc (<c>CONFIG_NET_SCH_NETEM</c> is not set).</summary>
public sealed class NetemUnavailableException : ShapingException
{
    /// <summary>The kernel option that is missing.</summary>
    public const string KernelOption = "CONFIG_NET_SCH_NETEM";

    /// <summary>Creates an exception.</summary>
    public NetemUnavailableException()
        : base($"The kernel has no netem qdisc ({KernelOption} is not set): 'Specified qdisc kind is unknown'. Use the NFQUEUE backend.") { }

    /// <summary>Creates an exception.</summary>
    public NetemUnavailableException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public NetemUnavailableException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A root qdisc that another owner put on an interface is in the way; it is never overwritten.</summary>
public sealed class ForeignQdiscException : ShapingException
{
    /// <summary>Creates an exception.</summary>
    public ForeignQdiscException() : base("A foreign root qdisc is in the way.") { }

    /// <summary>Creates an exception.</summary>
    public ForeignQdiscException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public ForeignQdiscException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// Another shaper holds the owner: it applied the owner's plan and has not cleared it (in this process or
/// another one). Thrown before anything is read or changed, so the other shaper's state is untouched.
/// </summary>
public sealed class ShapingOwnerInUseException : ShapingException
{
    /// <summary>Creates an exception.</summary>
    public ShapingOwnerInUseException() : base("The owner is held by another shaper.") { }

    /// <summary>Creates an exception.</summary>
    public ShapingOwnerInUseException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public ShapingOwnerInUseException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception naming the owner and who holds it.</summary>
    /// <param name="owner">The owner.</param>
    /// <param name="holder">Who holds it (for example a process id), if known.</param>
    /// <param name="innerException">What the lock attempt reported.</param>
    public ShapingOwnerInUseException(string owner, string? holder, Exception? innerException)
        : base($"The shaping owner '{owner}' is held by another shaper{(holder is null ? "" : " (" + holder + ")")}; it is left as it is. Clear it from that shaper, or use another owner.", innerException!)
    {
        Owner = owner;
        Holder = holder;
    }

    /// <summary>The owner, if known.</summary>
    public string? Owner { get; }

    /// <summary>Who holds the owner (for example <c>pid 1234</c>), if known.</summary>
    public string? Holder { get; }
}
