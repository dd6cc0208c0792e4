using System.Globalization;

namespace Cloudlets.Lab.Guests;

/// <summary>
/// How a lab guest behaves besides booting and serving its state line. Every property documents its
/// default and range; <see cref="Validate"/> lists every error.
/// </summary>
public sealed record LabGuestOptions
{
    /// <summary>The highest dirty rate: the rewritten file lives in the guest's 256 MiB of RAM, beside its kernel and initramfs.</summary>
    public const int MaxDirtyRateMiBps = 128;

    /// <summary>The defaults: a guest that dirties no memory on purpose.</summary>
    public static LabGuestOptions Default { get; } = new();

    /// <summary>
    /// MiB of guest memory the guest rewrites every second: an <c>N</c> MiB file in a tmpfs, rewritten in place
    /// once a second (so a migration sees about <c>N</c> MiB/s dirtied over a working set of <c>N</c> MiB).
    /// The default is 0 (off); range 0 to <see cref="MaxDirtyRateMiBps"/>.
    /// </summary>
    public int DirtyRateMiBps { get; init; }

    /// <summary>
    /// Whether the guest is a real netem host: its image also carries the kernel package's netem, HTB, ingress,
    /// u32, IFB and mirred modules (loaded at boot), iproute2's <c>tc</c> and <c>ip</c> at
    /// <see cref="GuestImage.NetemTcPath"/> and <see cref="GuestImage.NetemIpPath"/>, and Dropbear on port 22,
    /// key-only, with a host key the lab makes and pins in a known_hosts file and the lab's client key in
    /// root's authorized_keys (see <see cref="CloudletLab.NetemGuests"/>). The default is false.
    /// </summary>
    public bool NetemHost { get; init; }

    /// <summary>Every problem with these options (empty when they are valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (DirtyRateMiBps is < 0 or > MaxDirtyRateMiBps)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{nameof(DirtyRateMiBps)} is {DirtyRateMiBps}; it must be 0 to {MaxDirtyRateMiBps} MiB/s (the guest has {GuestDomain.MemoryMiB} MiB)."));
        }

        return errors;
    }

    /// <summary>Throws <see cref="LabConfigurationException"/> naming every problem, before anything is created.</summary>
    internal void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new LabConfigurationException("Invalid guest options: " + string.Join(" ", errors));
        }
    }
}
