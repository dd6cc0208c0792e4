using System.Net;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab;

/// <summary>
/// The files of a <see cref="LabTransport.Ssh"/> lab: per host an ed25519 host key, an sshd_config and the
/// authorized_keys file holding the lab's client key (all in the host's etc folder, its /etc/libvirt);
/// one client key and a known_hosts file that pins each host's address to its host key (in
/// <see cref="LabPaths.SshFolder"/>, and again wherever a host's mounts hide that path, so the same
/// <c>keyfile</c> and <c>known_hosts</c> work from the edge and from every host's libvirtd as a
/// peer-to-peer migration client). Keys are made by <c>ssh-keygen</c>, as an operator would make them.
/// </summary>
internal static class LabSsh
{
    /// <summary>The folder of a host's SSH server files, inside the host (its etc folder is its /etc/libvirt).</summary>
    public const string ServerFolderInHost = "/etc/libvirt/ssh";

    /// <summary>The SSH server's configuration, inside the host (<c>sshd -f</c>).</summary>
    public const string ConfigInHost = ServerFolderInHost + "/sshd_config";

    /// <summary>The client key's file name in <see cref="LabPaths.SshFolder"/>.</summary>
    public const string KeyFileName = "id_ed25519";

    /// <summary>The known_hosts file's name in <see cref="LabPaths.SshFolder"/>.</summary>
    public const string KnownHostsFileName = "known_hosts";

    /// <summary>The client key of a lab.</summary>
    public static string KeyFile(LabPaths paths, string lab) => Path.Combine(paths.SshFolder(lab), KeyFileName);

    /// <summary>The known_hosts file of a lab.</summary>
    public static string KnownHostsFile(LabPaths paths, string lab) => Path.Combine(paths.SshFolder(lab), KnownHostsFileName);

    /// <summary>The folder of a host's SSH server files as the edge sees it.</summary>
    public static string ServerFolder(LabHost host) => Path.Combine(host.Folder, "etc", "ssh");

    /// <summary><c>ssh-keygen</c> making a new ed25519 key without a passphrase at <paramref name="file"/> (and <c>FILE.pub</c>).</summary>
    public static CommandLine KeyGen(string file, string comment) =>
        CommandLine.Of("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file);

    /// <summary>One known_hosts line: the address, then the key type and key of an OpenSSH public key line (its comment dropped).</summary>
    /// <exception cref="LabException">The public key line is not <c>TYPE BASE64 [COMMENT]</c>.</exception>
    public static string KnownHostsLine(IPAddress address, string publicKeyLine)
    {
        ArgumentNullException.ThrowIfNull(address);
        var fields = publicKeyLine.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return fields.Length >= 2 && fields[0].StartsWith("ssh-", StringComparison.Ordinal)
            ? $"{address} {fields[0]} {fields[1]}\n"
            : throw new LabException("ssh-keygen wrote a public key that is not 'TYPE KEY [COMMENT]'.");
    }

    /// <summary>
    /// The host's sshd_config: keys only, root by key only, on the host's lab address alone, nothing
    /// forwarded; its pid file in the host's own /run so the lab records and ends exactly this server.
    /// </summary>
    public static string Config(LabHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return $"""
            # The cloudlet lab's SSH server of {host.Name}: it reaches this host's libvirtd through its unix socket.
            ListenAddress {host.Address}:22
            HostKey {ServerFolderInHost}/ssh_host_ed25519_key
            AuthorizedKeysFile {ServerFolderInHost}/authorized_keys
            PidFile /run/sshd.pid
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            UsePAM no
            AllowAgentForwarding no
            AllowTcpForwarding no
            AllowStreamLocalForwarding no
            X11Forwarding no
            PermitTunnel no
            PrintMotd no
            """ + "\n";
    }
}
