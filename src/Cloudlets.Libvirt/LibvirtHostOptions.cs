using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt;

/// <summary>
/// How to reach one libvirt host. A settable options object: every property documents its default
/// and range; <see cref="LibvirtHypervisorHost.ConnectAsync"/> validates it once (listing every
/// error in one <see cref="OptionsValidationException"/>) and keeps its own copy.
/// </summary>
public sealed class LibvirtHostOptions : IValidatableOptions
{
    /// <summary>The logical host name, unique within a fleet (for example <c>cloudlet-1</c>): 1 to 64 letters, digits, '-', '_' or '.'. Required.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>
    /// The libvirt connection URI (required; see <see cref="LibvirtUri"/> for what is allowed):
    /// <c>qemu:///system</c>, <c>qemu+tcp://host/system</c>, <c>qemu+ssh://user@host/system?no_tty=1&amp;keyfile=/path</c>,
    /// <c>qemu+tls://host/system</c>, or <c>test:///ABSOLUTE/PATH/node.xml</c> for the built-in test driver.
    /// </summary>
    public Uri? Uri { get; set; }

    /// <summary>
    /// How often a keepalive probe is sent when the connection is idle. The default is 5 seconds;
    /// range 1 to 3600 seconds (whole seconds). Zero turns keepalive off.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many probes may go unanswered before the connection is declared lost: a dead peer is
    /// detected after about <see cref="KeepAliveInterval"/> × (count + 1). The default is 3; range 0 to 100.
    /// </summary>
    public int KeepAliveCount { get; set; } = 3;

    /// <summary>The first delay before reconnecting after the connection is lost. The default is 500 ms; range 1 ms to 1 hour.</summary>
    public TimeSpan ReconnectInitialDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest delay between reconnect attempts (the delay doubles up to it). The default is 30 seconds; range <see cref="ReconnectInitialDelay"/> to 1 hour.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A named network namespace (<c>ip netns</c>) to open connections from (this host's, and the
    /// ones a migration opens to its destination), or <see langword="null"/> for this process's own
    /// namespace. The default is <see langword="null"/>. Entering one needs root.
    /// </summary>
    public string? NetworkNamespace { get; set; }

    /// <summary>
    /// How long a finished migration waits for the source's job-completed event (which carries
    /// the downtime) before reading the completed job's statistics itself. The default is 3 seconds; range 0 to 1 minute.
    /// </summary>
    public TimeSpan JobCompletedWait { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// After a failed migration, how long to keep trying to learn where the VM is (a host whose
    /// connection was lost may be reconnecting; a source daemon may still be finishing the job)
    /// before reporting it as unknown. The default is 10 seconds; range 0 to 10 minutes.
    /// </summary>
    public TimeSpan RecoveryCheckTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The libvirt domain type of VMs defined on this host: <c>kvm</c> (hardware virtualization),
    /// <c>qemu</c> (software emulation, TCG) or <c>test</c>. The default, <see langword="null"/>, means
    /// <c>test</c> on the test driver and <c>kvm</c> otherwise.
    /// </summary>
    public string? DomainType { get; set; }

    /// <summary>
    /// Answers SASL's prompts (user name and password) when a daemon requires SASL
    /// (<c>auth_tls = "sasl"</c> or <c>auth_tcp = "sasl"</c>): for this host's connection and for the
    /// connections a client-managed migration opens to its destination (each is asked with its own URI).
    /// The default, <see langword="null"/>, answers nothing, so such a daemon refuses the connection with
    /// <see cref="Core.Hypervisors.HypervisorErrorKind.AuthenticationFailed"/>. Peer-to-peer migrations are
    /// authenticated by the source daemon itself (its own <c>/etc/libvirt/auth.conf</c>), not by this provider.
    /// The copy the host keeps shares the provider (it is not cloned). Credentials are never logged.
    /// </summary>
    public ILibvirtCredentialProvider? Credentials { get; set; }

    /// <summary>The libvirt choices of migrations started from this host, when a call passes none. The default is <see cref="LibvirtMigrationOptions"/>'s defaults.</summary>
    public LibvirtMigrationOptions Migration { get; set; } = new();

    /// <summary>The domain type in effect (see <see cref="DomainType"/>).</summary>
    internal string EffectiveDomainType => DomainType ?? (Uri?.Scheme == "test" ? "test" : "kvm");

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (string.IsNullOrEmpty(Name) || Name.Length > 64 || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            errors.Add(nameof(Name), $"'{Name}' is not valid: use 1 to 64 letters, digits, '-', '_' or '.'.");
        }

        LibvirtUri.Check(errors, nameof(Uri), Uri);
        errors.InRange(nameof(KeepAliveInterval), KeepAliveInterval, TimeSpan.Zero, TimeSpan.FromHours(1));
        errors.Require(KeepAliveInterval.Ticks % TimeSpan.TicksPerSecond == 0, nameof(KeepAliveInterval), $"is {KeepAliveInterval}; libvirt takes whole seconds.");
        errors.InRange(nameof(KeepAliveCount), KeepAliveCount, 0, 100);
        errors.InRange(nameof(ReconnectInitialDelay), ReconnectInitialDelay, TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1));
        errors.InRange(nameof(ReconnectMaxDelay), ReconnectMaxDelay, ReconnectInitialDelay < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : ReconnectInitialDelay, TimeSpan.FromHours(1));
        errors.InRange(nameof(JobCompletedWait), JobCompletedWait, TimeSpan.Zero, TimeSpan.FromMinutes(1));
        errors.InRange(nameof(RecoveryCheckTimeout), RecoveryCheckTimeout, TimeSpan.Zero, TimeSpan.FromMinutes(10));
        if (DomainType is not null && DomainType is not ("kvm" or "qemu" or "test"))
        {
            errors.Add(nameof(DomainType), $"is '{DomainType}'; use kvm, qemu or test.");
        }

        if (NetworkNamespace is not null && !IsNamespaceName(NetworkNamespace))
        {
            errors.Add(nameof(NetworkNamespace), $"'{NetworkNamespace}' is not a network namespace name (1 to 64 letters, digits, '-', '_' or '.', not starting with '.').");
        }

        errors.Nested(nameof(Migration), Migration);
    }

    /// <summary>A deep copy (the host keeps one, so later changes to these options do not reach it).</summary>
    public LibvirtHostOptions Clone()
    {
        var copy = (LibvirtHostOptions)MemberwiseClone();
        copy.Migration = Migration?.Clone()!;
        return copy;
    }

    // The same rule as ip-netns names (a file name under /run/netns), kept here so options
    // validate on any OS without the Linux helpers.
    private static bool IsNamespaceName(string name) =>
        name.Length is > 0 and <= 64 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
