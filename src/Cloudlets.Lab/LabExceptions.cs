namespace Cloudlets.Lab;

/// <summary>A lab operation failed (a command, a daemon that did not answer, a guest that did not boot).</summary>
public class LabException : Exception
{
    /// <summary>Creates an exception.</summary>
    public LabException() : base("A lab operation failed.") { }

    /// <summary>Creates an exception.</summary>
    public LabException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public LabException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The lab was configured wrongly (host count, names, a guest on an unknown host). Thrown before anything is created.</summary>
public sealed class LabConfigurationException : LabException
{
    /// <summary>Creates an exception.</summary>
    public LabConfigurationException() : base("The lab configuration is invalid.") { }

    /// <summary>Creates an exception.</summary>
    public LabConfigurationException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public LabConfigurationException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The machine lacks something the lab needs (root, a program, a user, a kernel feature, the guest kernel). Thrown before anything is created.</summary>
public sealed class LabPrerequisiteException : LabException
{
    /// <summary>Creates an exception.</summary>
    public LabPrerequisiteException() : base("Lab prerequisites are missing.") { }

    /// <summary>Creates an exception.</summary>
    public LabPrerequisiteException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public LabPrerequisiteException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception listing what is missing.</summary>
    public LabPrerequisiteException(IReadOnlyList<LabPrerequisite> missing)
        : base(LabPrerequisites.Describe(missing ?? []))
    {
        Missing = missing ?? [];
    }

    /// <summary>Everything that is missing.</summary>
    public IReadOnlyList<LabPrerequisite> Missing { get; } = [];
}

/// <summary>
/// The lab cannot start because something already holds its name: a lab of that name that is
/// running or whose owner process is alive, or a network namespace with one of its names that it
/// did not create. Thrown before anything is changed.
/// </summary>
public sealed class LabConflictException : LabException
{
    /// <summary>Creates an exception.</summary>
    public LabConflictException() : base("Something already holds the lab's name.") { }

    /// <summary>Creates an exception.</summary>
    public LabConflictException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public LabConflictException(string message, Exception innerException) : base(message, innerException) { }
}
