using Cloudlets.Lab.Guests;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab;

// Guests that are real netem hosts (LabGuestOptions.NetemHost): their SSH credentials and their per-guest initramfs.
public sealed partial class CloudletLab
{
    /// <summary>The user a netem-host guest is logged in as (tc needs root).</summary>
    public const string NetemGuestSshUser = "root";

    /// <summary>The folder under a host's folder (its /var/lib/libvirt) that holds the per-guest initramfs of its netem-host guests.</summary>
    private const string NetemInitrdFolder = "netem-guests";

    /// <summary>The lab's guests that are netem hosts, with how to reach them over SSH from the edge.</summary>
    public IReadOnlyList<LabNetemGuest> NetemGuests =>
        [.. _guests.Where(g => g.NetemHost).Select(g => new LabNetemGuest(g.Name, g.Address, NetemGuestSshUser, NetemKeyFile, NetemKnownHostsFile))];

    private string NetemKeyFile => Path.Combine(_paths.NetemSshFolder(Name), LabSsh.KeyFileName);

    private string NetemKnownHostsFile => Path.Combine(_paths.NetemSshFolder(Name), LabSsh.KnownHostsFileName);

    /// <summary>
    /// Makes the guest's Dropbear host key (and, for the lab's first netem guest, the lab's client key), pins
    /// the host key to the guest's address in the known_hosts file, and writes the guest's initramfs: the
    /// cached netem-host image followed by an archive of the host key and authorized_keys. Returns the
    /// kernel and that initramfs as the guest's host sees them.
    /// </summary>
    private async Task<GuestImageFiles> NetemGuestImageAsync(LabGuest guest, LabHost host, GuestImageFiles image, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var folder = _paths.NetemSshFolder(Name);
            if (!File.Exists(NetemKeyFile))
            {
                LabPki.CreatePrivateFolder(folder);
                await RunCheckedAsync(LabSsh.KeyGen(NetemKeyFile, $"cloudlets-lab {Name} netem client"), cancellationToken).ConfigureAwait(false);
            }

            var hostKey = Path.Combine(folder, guest.Name + "_dropbear_ed25519_host_key");
            File.Delete(hostKey);   // dropbearkey refuses to overwrite a key left by an earlier attempt
            await RunCheckedAsync(CommandLine.Of("dropbearkey", "-t", "ed25519", "-f", hostKey), cancellationToken).ConfigureAwait(false);
            var printed = await _runner.RunCheckedAsync(CommandLine.Of("dropbearkey", "-y", "-f", hostKey), cancellationToken).ConfigureAwait(false);
            var publicLine = printed.StandardOutput.Split('\n').FirstOrDefault(l => l.StartsWith("ssh-", StringComparison.Ordinal))
                ?? throw new LabException($"dropbearkey -y printed no public key line for {hostKey}.");
            var known = File.Exists(NetemKnownHostsFile) ? await File.ReadAllTextAsync(NetemKnownHostsFile, cancellationToken).ConfigureAwait(false) : "";
            known = string.Concat(known.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith(guest.Address + " ", StringComparison.Ordinal)).Select(l => l + "\n"))
                + LabSsh.KnownHostsLine(guest.Address, publicLine);
            LabPki.WriteFile(NetemKnownHostsFile, known, secret: false);

            var initrd = Path.Combine(host.Folder, "lib", NetemInitrdFolder, guest.Name + "-initrd.cpio.gz");
            Directory.CreateDirectory(Path.GetDirectoryName(initrd)!);
            await using (var output = File.Create(initrd))
            {
                await using (var cached = File.OpenRead(image.InitrdPath))
                {
                    await cached.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                }

                GuestImage.WriteNetemCredentials(output, await File.ReadAllBytesAsync(hostKey, cancellationToken).ConfigureAwait(false),
                    await File.ReadAllTextAsync(NetemKeyFile + ".pub", cancellationToken).ConfigureAwait(false));
            }

            // The host's QEMU runs in the host's mount namespace, where the host's lib folder is /var/lib/libvirt.
            return image with { InitrdPath = "/var/lib/libvirt/" + NetemInitrdFolder + "/" + Path.GetFileName(initrd) };
        }
        finally
        {
            _gate.Release();
        }
    }
}
