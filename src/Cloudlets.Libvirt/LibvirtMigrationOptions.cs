using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt;

/// <summary>Who drives a libvirt migration.</summary>
public enum LibvirtMigrationMode
{
    /// <summary>The source host's daemon talks to the destination's itself (libvirt <c>PEER2PEER</c>); this process only waits.</summary>
    PeerToPeer,

    /// <summary>This process connects to both daemons and drives the hand-over (<c>virDomainMigrate3</c>).</summary>
    ClientManaged,
}

/// <summary>
/// The libvirt-only choices of a migration, next to the backend-neutral
/// <see cref="Core.Hypervisors.MigrationOptions"/>. A host's defaults are
/// <see cref="LibvirtHostOptions.Migration"/>; a call can pass its own. Every property documents its default.
/// </summary>
public sealed class LibvirtMigrationOptions : IValidatableOptions
{
    /// <summary>Who drives the migration. The default is <see cref="LibvirtMigrationMode.PeerToPeer"/>.</summary>
    public LibvirtMigrationMode Mode { get; set; } = LibvirtMigrationMode.PeerToPeer;

    /// <summary>Define the VM persistently on the destination (<c>PERSIST_DEST</c>). The default is <see langword="true"/>.</summary>
    public bool PersistOnDestination { get; set; } = true;

    /// <summary>Remove the VM's definition from the source after success (<c>UNDEFINE_SOURCE</c>). The default is <see langword="true"/>.</summary>
    public bool UndefineSource { get; set; } = true;

    /// <summary>Throttle the VM's CPUs when memory does not converge (<c>AUTO_CONVERGE</c>). The default is <see langword="false"/>.</summary>
    public bool AutoConverge { get; set; }

    /// <summary>
    /// The CPU throttle auto-converge starts at, in percent (<c>auto_converge.initial</c>; needs <see cref="AutoConverge"/>),
    /// or <see langword="null"/> for QEMU's default (20). The default is <see langword="null"/>; range 1 to 99.
    /// </summary>
    public int? AutoConvergeInitialPercent { get; set; }

    /// <summary>
    /// How much auto-converge adds to the throttle each time memory still does not converge, in percent
    /// (<c>auto_converge.increment</c>; needs <see cref="AutoConverge"/>), or <see langword="null"/> for QEMU's
    /// default (10). The default is <see langword="null"/>; range 1 to 99.
    /// </summary>
    public int? AutoConvergeIncrementPercent { get; set; }

    /// <summary>
    /// Send memory over this many parallel connections (multifd: <c>PARALLEL</c> and <c>parallel.connections</c>),
    /// or <see langword="null"/> for one. Helps when one connection cannot fill the path (encryption, one core per
    /// stream). QEMU 7.2 (Debian 12) accepts it with <see cref="AllowPostCopy"/> (a lab test shows both on); a QEMU that
    /// refuses the pair fails the migration before it starts, with the VM on its source. The default is
    /// <see langword="null"/>; range 1 to 255.
    /// </summary>
    public int? ParallelConnections { get; set; }

    /// <summary>
    /// Allow switching to post-copy (<c>POSTCOPY</c>; the switch itself is
    /// <see cref="LibvirtHypervisorHost.StartPostCopyAsync"/>). Opt-in: a failure of either host after
    /// the switch loses the VM. The default is <see langword="false"/>.
    /// </summary>
    public bool AllowPostCopy { get; set; }

    /// <summary>Compress migration data with XBZRLE (<c>COMPRESSED</c>). The default is <see langword="false"/>.</summary>
    public bool Compressed { get; set; }

    /// <summary>
    /// Encrypt QEMU's own migration stream (the VM's memory) with TLS (<c>TLS</c>), not only the daemons'
    /// connection: both hosts' QEMU need certificates in qemu.conf's <c>migrate_tls_x509_cert_dir</c>
    /// (<c>ca-cert.pem</c>, <c>server-cert.pem</c> and <c>server-key.pem</c> with the host's address, and
    /// <c>client-cert.pem</c>, <c>client-key.pem</c>), or the migration fails before it starts and the VM
    /// stays on its source. The default is <see langword="false"/>.
    /// </summary>
    public bool Tls { get; set; }

    /// <summary>
    /// The destination's connection URI as the source daemon reaches it (peer-to-peer only), or
    /// <see langword="null"/> for <see cref="Core.Hypervisors.MigrationDestination.ManagementUri"/>. The default is <see langword="null"/>.
    /// </summary>
    public Uri? PeerUri { get; set; }

    /// <summary>
    /// Convergence control driven by this library while the migration runs: downtime steps, a completion
    /// timeout, a stall detector and what is done when they run out. The default is off (see
    /// <see cref="LibvirtConvergenceOptions"/>).
    /// </summary>
    public LibvirtConvergenceOptions Convergence { get; set; } = new();

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.Defined(nameof(Mode), Mode);
        if (PeerUri is not null)
        {
            if (Mode != LibvirtMigrationMode.PeerToPeer)
            {
                errors.Add(nameof(PeerUri), "applies to peer-to-peer migrations only.");
            }

            LibvirtUri.Check(errors, nameof(PeerUri), PeerUri);
        }

        CheckPercent(errors, nameof(AutoConvergeInitialPercent), AutoConvergeInitialPercent);
        CheckPercent(errors, nameof(AutoConvergeIncrementPercent), AutoConvergeIncrementPercent);
        if (ParallelConnections is { } parallel)
        {
            errors.InRange(nameof(ParallelConnections), parallel, 1, 255);
        }

        errors.Nested(nameof(Convergence), Convergence);
        if (Convergence is { CompletionAction: LibvirtCompletionAction.PostCopy } && !AllowPostCopy)
        {
            errors.Add(nameof(Convergence) + "." + nameof(LibvirtConvergenceOptions.CompletionAction), "PostCopy needs AllowPostCopy = true.");
        }

        void CheckPercent(OptionsErrors e, string name, int? percent)
        {
            if (percent is { } p)
            {
                e.InRange(name, p, 1, 99);
                if (!AutoConverge)
                {
                    e.Add(name, "needs AutoConverge = true.");
                }
            }
        }
    }

    /// <summary>A copy of these options (and of their <see cref="Convergence"/>).</summary>
    public LibvirtMigrationOptions Clone()
    {
        var copy = (LibvirtMigrationOptions)MemberwiseClone();
        copy.Convergence = Convergence?.Clone()!;
        return copy;
    }
}
