using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Cloudlets.Probing.Linux;

/// <summary>
/// Runs code inside a named Linux network namespace (<c>ip netns add NAME</c>, that is
/// <c>/run/netns/NAME</c>). A socket created inside keeps belonging to that namespace after the
/// call returns, so this is how a probe or a delayer gets a socket "in" a namespace.
/// </summary>
/// <remarks>
/// <c>setns(CLONE_NEWNET)</c> changes only the calling thread, so the code runs on a fresh
/// dedicated thread that ends afterwards: no pooled thread is ever left in another namespace.
/// </remarks>
[SupportedOSPlatform("linux")]
public static class NetworkNamespace
{
    /// <summary>The folder where <c>ip netns</c> keeps named namespaces.</summary>
    public const string NamedNamespaceFolder = "/run/netns";

    /// <summary>Whether a named network namespace exists.</summary>
    public static bool Exists(string name)
    {
        ValidateName(name);
        return File.Exists(Path.Combine(NamedNamespaceFolder, name));
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a new thread inside the named namespace, or in the current
    /// namespace when <paramref name="name"/> is <see langword="null"/>, and returns its result.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not a valid namespace name.</exception>
    /// <exception cref="IOException">The namespace does not exist or cannot be entered.</exception>
    public static T Run<T>(string? name, Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        if (name is null)
        {
            return action();
        }

        ValidateName(name);
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Enter(name);
                result = action();
            }
#pragma warning disable CA1031 // The failure is rethrown on the caller's thread below.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failure = ex;
            }
        })
        {
            IsBackground = true,
            Name = $"netns:{name}",
        };
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }

        return result;
    }

    /// <summary>
    /// Moves the <em>calling</em> thread into the named namespace. Only for threads the caller owns
    /// for their whole life (for example a dedicated I/O thread); never call it on a pooled thread.
    /// </summary>
    public static void Enter(string name)
    {
        ValidateName(name);
        var path = Path.Combine(NamedNamespaceFolder, name);
        var fd = Libc.Open(path, Libc.OpenReadOnly | Libc.OpenCloseOnExec);
        if (fd < 0)
        {
            throw new IOException($"Cannot open network namespace '{name}' ({path}): errno {Marshal.GetLastPInvokeError()}.");
        }

        try
        {
            if (Libc.SetNs(fd, Libc.CloneNewNet) != 0)
            {
                throw new IOException($"Cannot enter network namespace '{name}': errno {Marshal.GetLastPInvokeError()} (root is needed).");
            }
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }

    /// <summary>Throws unless <paramref name="name"/> is a plain file name usable as a namespace name.</summary>
    public static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Length > 64 || name is "." or ".." ||
            !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ArgumentException($"'{name}' is not a valid network namespace name (1-64 of letters, digits, '-', '_', '.').", nameof(name));
        }
    }
}
