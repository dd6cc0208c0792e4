namespace Cloudlets.Lab;

// The credentials of an SSH lab (see LabSsh): made before the hosts' daemons start, as LabPki's are.
public sealed partial class CloudletLab
{
    private async Task CreateSshCredentialsAsync(CancellationToken cancellationToken)
    {
        var folder = _paths.SshFolder(Name);
        LabPki.CreatePrivateFolder(folder);
        var key = LabSsh.KeyFile(_paths, Name);
        await RunCheckedAsync(LabSsh.KeyGen(key, $"cloudlets-lab {Name} client"), cancellationToken).ConfigureAwait(false);
        var clientPublicKey = await File.ReadAllTextAsync(key + ".pub", cancellationToken).ConfigureAwait(false);
        var knownHosts = new System.Text.StringBuilder();
        foreach (var host in _hosts)
        {
            var server = LabSsh.ServerFolder(host);
            LabPki.CreatePrivateFolder(server);
            var hostKey = Path.Combine(server, "ssh_host_ed25519_key");
            await RunCheckedAsync(LabSsh.KeyGen(hostKey, $"cloudlets-lab {Name} {host.Name}"), cancellationToken).ConfigureAwait(false);
            knownHosts.Append(LabSsh.KnownHostsLine(host.Address, await File.ReadAllTextAsync(hostKey + ".pub", cancellationToken).ConfigureAwait(false)));
            LabPki.WriteFile(Path.Combine(server, "authorized_keys"), clientPublicKey, secret: false);
            LabPki.WriteFile(Path.Combine(server, "sshd_config"), LabSsh.Config(host), secret: false);
        }

        LabPki.WriteFile(LabSsh.KnownHostsFile(_paths, Name), knownHosts.ToString(), secret: false);
        var privateKey = await File.ReadAllTextAsync(key, cancellationToken).ConfigureAwait(false);
        foreach (var host in _hosts)
        {
            // The hosts' libvirtds open the same keyfile and known_hosts paths when they migrate peer to peer.
            if (LabPki.HiddenInHost(host.Folder, folder) is { } copy)
            {
                LabPki.CreatePrivateFolder(copy);
                LabPki.WriteFile(Path.Combine(copy, LabSsh.KeyFileName), privateKey, secret: true);
                LabPki.WriteFile(Path.Combine(copy, LabSsh.KnownHostsFileName), knownHosts.ToString(), secret: false);
            }
        }
    }
}
