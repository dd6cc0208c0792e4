using System.Text.RegularExpressions;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt;

/// <summary>How to reach one libvirt host. Validated once, when the host connects.</summary>
public sealed partial record LibvirtHostOptions
{
    /// <summary>The logical host name, unique within a fleet (for example <c>cloudlet-1</c>): 1 to 64 letters, digits, '-', '_' or '.'.</summary>
    public required string Name { get; init; }

    /// <summary>
    /// The libvirt connection URI: <c>qemu:///system</c>, <c>qemu+tcp://host/system</c>,
    /// <c>qemu+ssh://user@host/system?no_tty=1</c>, <c>qemu+tls://host/system</c>, or
    /// <c>test:///ABSOLUTE/PATH/node.xml</c> for the built-in test driver.
    /// </summary>
    public required Uri Uri { get; init; }

    /// <summary>
    /// How often a keepalive probe is sent when the connection is idle. The default is 5 seconds;
    /// valid range 1 to 3600 seconds (whole seconds). Zero turns keepalive off.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many probes may go unanswered before the connection is declared lost: a dead peer is
    /// detected after about <see cref="KeepAliveInterval"/> × (count + 1). The default is 3; valid range 0 to 100.
    /// </summary>
    public int KeepAliveCount { get; init; } = 3;

    /// <summary>The first delay before reconnecting after the connection is lost. The default is 500 ms.</summary>
    public TimeSpan ReconnectInitialDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest delay between reconnect attempts (the delay doubles up to it). The default is 30 seconds.</summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A named network namespace (<c>ip netns</c>) to open the connection from, or <see langword="null"/>
    /// for this process's own namespace. The default is <see langword="null"/>. Entering one needs root.
    /// </summary>
    public string? NetworkNamespace { get; init; }

    /// <summary>
    /// How long a finished migration waits for the source's job-completed event (which carries
    /// the downtime) before reporting the result without it. The default is 3 seconds.
    /// </summary>
    public TimeSpan JobCompletedWait { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// After a failed migration, how long to keep trying to reach a host whose connection was lost
    /// (it may be reconnecting) to learn where the VM is, before reporting it as unknown. The default is 10 seconds.
    /// </summary>
    public TimeSpan RecoveryCheckTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Throws a <see cref="HypervisorException"/> of kind <see cref="HypervisorErrorKind.InvalidArgument"/> that says what is wrong.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Name) || Name.Length > 64 || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw Invalid($"Host name '{Name}' is not valid: use 1 to 64 letters, digits, '-', '_' or '.'.");
        }

        ValidateUri(Uri);
        if (KeepAliveInterval < TimeSpan.Zero || KeepAliveInterval > TimeSpan.FromHours(1) || KeepAliveInterval.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            throw Invalid($"KeepAliveInterval {KeepAliveInterval} must be whole seconds between 0 and 3600.");
        }

        if (KeepAliveCount is < 0 or > 100)
        {
            throw Invalid($"KeepAliveCount {KeepAliveCount} must be between 0 and 100.");
        }

        if (ReconnectInitialDelay <= TimeSpan.Zero || ReconnectMaxDelay < ReconnectInitialDelay)
        {
            throw Invalid($"Reconnect delays must be positive and ReconnectMaxDelay ({ReconnectMaxDelay}) at least ReconnectInitialDelay ({ReconnectInitialDelay}).");
        }

        if (RecoveryCheckTimeout < TimeSpan.Zero)
        {
            throw Invalid($"RecoveryCheckTimeout {RecoveryCheckTimeout} must not be negative.");
        }

        if (JobCompletedWait < TimeSpan.Zero)
        {
            throw Invalid($"JobCompletedWait {JobCompletedWait} must not be negative.");
        }

        if (NetworkNamespace is not null && OperatingSystem.IsLinux())
        {
            try
            {
                Core.Linux.NetworkNamespace.ValidateName(NetworkNamespace);
            }
            catch (ArgumentException ex)
            {
                throw new HypervisorException(HypervisorErrorKind.InvalidArgument, ex.Message, ex);
            }
        }
    }

    /// <summary>Checks that <paramref name="uri"/> is a libvirt connection URI, without connecting.</summary>
    public static void ValidateUri(Uri? uri)
    {
        if (uri is null || !uri.IsAbsoluteUri)
        {
            throw Invalid($"'{uri}' is not an absolute libvirt URI (for example qemu+tcp://host/system).");
        }

        var match = SchemePattern().Match(uri.Scheme);
        if (!match.Success)
        {
            throw Invalid($"'{uri}' is not a libvirt URI: the scheme must be DRIVER or DRIVER+TRANSPORT (transport tcp, ssh, libssh, libssh2, tls, unix or ext).");
        }

        var driver = match.Groups["driver"].Value;
        if (driver is not ("qemu" or "test" or "lxc" or "xen" or "libxl" or "ch" or "vbox" or "vmware" or "esx" or "hyperv" or "bhyve" or "openvz" or "vz" or "remote"))
        {
            throw Invalid($"'{uri}' names no libvirt driver ('{driver}'); for KVM hosts use qemu or qemu+tcp/ssh/tls.");
        }

        var transport = match.Groups["transport"].Value;
        var remote = transport is "tcp" or "ssh" or "libssh" or "libssh2" or "tls" || (transport.Length == 0 && uri.Host.Length > 0);
        if (remote && uri.Host.Length == 0)
        {
            throw Invalid($"'{uri}' names a network transport but no host.");
        }

        if (driver == "test" && uri.Host.Length == 0 && !(uri.AbsolutePath == "/default" || uri.AbsolutePath.Length > 1))
        {
            throw Invalid($"'{uri}' is not a test driver URI: use test:///default or test:///ABSOLUTE/PATH/node.xml.");
        }

        if (driver is "qemu" or "lxc" or "ch" && uri.AbsolutePath is not ("/system" or "/session" or "/embed"))
        {
            throw Invalid($"'{uri}' must end in /system or /session.");
        }
    }

    private static HypervisorException Invalid(string message) => new(HypervisorErrorKind.InvalidArgument, message);

    [GeneratedRegex("^(?<driver>[a-z][a-z0-9]*)(\\+(?<transport>tcp|ssh|libssh|libssh2|tls|unix|ext))?$", RegexOptions.CultureInvariant)]
    private static partial Regex SchemePattern();
}
