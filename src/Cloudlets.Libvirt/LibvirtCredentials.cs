namespace Cloudlets.Libvirt;

/// <summary>
/// A user name and password for a libvirt daemon that requires SASL (<c>auth_tls = "sasl"</c> or
/// <c>auth_tcp = "sasl"</c>). <see cref="ToString"/> never shows the password, so a credential that
/// reaches a log or a debugger display shows only the user.
/// </summary>
public sealed class LibvirtCredential
{
    /// <summary>Creates a credential.</summary>
    /// <param name="userName">The SASL user (libvirt's <c>VIR_CRED_AUTHNAME</c>), not empty.</param>
    /// <param name="password">The password (libvirt's <c>VIR_CRED_PASSPHRASE</c>), not empty.</param>
    /// <exception cref="ArgumentException">Either is empty.</exception>
    public LibvirtCredential(string userName, string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(userName);
        // The parameter name only: the value must never reach an exception message.
        if (string.IsNullOrEmpty(password))
        {
            throw new ArgumentException("The password is empty.", nameof(password));
        }

        UserName = userName;
        Password = password;
    }

    /// <summary>The SASL user name.</summary>
    public string UserName { get; }

    /// <summary>The password. Never logged and never part of an exception message by this library.</summary>
    public string Password { get; }

    /// <summary>The user name only.</summary>
    public override string ToString() => $"{UserName} (password not shown)";
}

/// <summary>
/// Answers libvirt's SASL prompts for a connection URI. The library asks it once per connection
/// attempt (the first connect, each reconnect, and each connection a migration opens to its
/// destination), on the thread that opens the connection, so it must answer promptly and must not
/// block on asynchronous work; a provider that reads a rotated secret from a file is asked again on
/// the next attempt.
/// </summary>
public interface ILibvirtCredentialProvider
{
    /// <summary>The credential for <paramref name="uri"/>, or <see langword="null"/> when there is none (the connection then fails with <see cref="Core.Hypervisors.HypervisorErrorKind.AuthenticationFailed"/>).</summary>
    LibvirtCredential? GetCredential(Uri uri);
}

/// <summary>The same credential for every URI: the simple case of one SASL user for a fleet.</summary>
public sealed class StaticLibvirtCredentialProvider : ILibvirtCredentialProvider
{
    private readonly LibvirtCredential _credential;

    /// <summary>Creates a provider that answers <paramref name="credential"/>.</summary>
    public StaticLibvirtCredentialProvider(LibvirtCredential credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        _credential = credential;
    }

    /// <summary>Creates a provider that answers one user name and password.</summary>
    public StaticLibvirtCredentialProvider(string userName, string password)
        : this(new LibvirtCredential(userName, password))
    {
    }

    /// <inheritdoc />
    public LibvirtCredential? GetCredential(Uri uri) => _credential;

    /// <summary>The user name only.</summary>
    public override string ToString() => _credential.ToString();
}
