using System.Net;

namespace Cloudlets.Lab;

/// <summary>How the lab's libvirt daemons are reached (<c>cloudlets-lab up --transport</c>).</summary>
public enum LabTransport
{
    /// <summary>Plain TCP without authentication (port 16509), as in the original demonstration; acceptable only inside the lab's own namespaces.</summary>
    Tcp,

    /// <summary>
    /// TLS with X.509 certificates on both sides (port 16514, no TCP listener): the lab makes a CA, a
    /// server certificate per host (its address in the subject alternative name) and a client certificate.
    /// </summary>
    Tls,

    /// <summary>
    /// SSH with keys only: an OpenSSH server per host inside the host's namespaces (reaching its libvirtd's unix
    /// socket; libvirtd has no network listener), host keys and a client key made by the lab, the host keys
    /// pinned in a known_hosts file the lab writes. The URIs use libvirt's <c>libssh2</c> transport: libvirt 9.0's
    /// <c>ssh</c> transport runs /usr/bin/ssh, which ignores the URI's <c>known_hosts</c> (it reads the user's own),
    /// and its <c>libssh</c> transport stalls on every large reply until the next keepalive (5 s per connect, measured).
    /// </summary>
    Ssh,

    /// <summary>
    /// TLS as <see cref="Tls"/>, and SASL on top (<c>auth_tls = "sasl"</c>): clients also log in as the lab's user
    /// with SCRAM-SHA-256 against a sasldb per host. The URIs are the TLS ones; the password is in a file the lab
    /// writes (mode 0600), and each host's libvirtd finds it in its own /etc/libvirt/auth.conf for peer-to-peer migration.
    /// </summary>
    TlsSasl,
}

/// <summary>The lab's edge device: a network namespace on the lab switch, where users and management live.</summary>
/// <param name="Namespace">The network namespace name (<c>NAME-edge</c>).</param>
/// <param name="Address">Its address on the lab network (<c>198.18.K.1</c>).</param>
public sealed record LabEdge(string Namespace, IPAddress Address);

/// <summary>A site of the lab: a network namespace on the lab switch where users are (<c>site-1</c> is the edge).</summary>
/// <param name="Name">The site name, <c>site-S</c>.</param>
/// <param name="Index">S, from 1.</param>
/// <param name="Namespace">The network namespace name (<c>NAME-edge</c> for site-1, <c>NAME-sS</c> otherwise).</param>
/// <param name="Address">Its address (<c>198.18.K.1</c> for site-1, <c>198.19.K.(16(S−1)+1)</c> otherwise; see <see cref="LabNaming"/>).</param>
/// <param name="SwitchPort">Its port on the lab switch (<c>edge</c> for site-1, <c>sS</c> otherwise).</param>
public sealed record LabSite(string Name, int Index, string Namespace, IPAddress Address, string SwitchPort);

/// <summary>One cloudlet host of the lab: its own network, mount and UTS namespaces with virtlogd and libvirtd.</summary>
/// <param name="Name">The host name, <c>cloudlet-N</c> (also its UTS hostname).</param>
/// <param name="Index">N, from 1.</param>
/// <param name="Address">The host's address on its bridge (<c>198.18.K.(10+N)</c>).</param>
/// <param name="Namespace">The network namespace name (<c>NAME-hN</c>).</param>
/// <param name="Bridge">The bridge inside the namespace that holds the uplink and the guests' taps.</param>
/// <param name="Folder">The per-host folder whose subfolders are bind-mounted over /run, /var/lib/libvirt, /var/log/libvirt and /etc/libvirt.</param>
public sealed record LabHost(string Name, int Index, IPAddress Address, string Namespace, string Bridge, string Folder)
{
    /// <summary>How clients and the other hosts' daemons reach this host's libvirtd. The default is <see cref="LabTransport.Tcp"/>.</summary>
    public LabTransport Transport { get; init; } = LabTransport.Tcp;

    /// <summary>
    /// With <see cref="LabTransport.Tls"/>: the folder of the lab's client credentials (<c>cacert.pem</c>,
    /// <c>clientcert.pem</c>, <c>clientkey.pem</c>), the <c>pkipath</c> of <see cref="Uri"/>; null otherwise.
    /// </summary>
    public string? ClientPkiFolder { get; init; }

    /// <summary>With <see cref="LabTransport.Ssh"/>: the lab's client private key (the <c>keyfile</c> of <see cref="Uri"/>); null otherwise.</summary>
    public string? SshKeyFile { get; init; }

    /// <summary>
    /// With <see cref="LabTransport.Ssh"/>: the known_hosts file that pins every host's address to its host key
    /// (the <c>known_hosts</c> of <see cref="Uri"/>); null otherwise.
    /// </summary>
    public string? SshKnownHostsFile { get; init; }

    /// <summary>
    /// With <see cref="LabTransport.TlsSasl"/>: a libvirt auth.conf answering the lab's SASL user and password
    /// for every host (mode 0600; <c>LIBVIRT_AUTH_FILE</c> for virsh); null otherwise.
    /// </summary>
    public string? SaslAuthFile { get; init; }

    /// <summary>With <see cref="LabTransport.TlsSasl"/>: the file holding the SASL password alone (mode 0600); null otherwise.</summary>
    public string? SaslPasswordFile { get; init; }

    /// <summary>The SASL user of a <see cref="LabTransport.TlsSasl"/> lab.</summary>
    public const string SaslUser = LabSasl.User;

    /// <summary>The user the lab's SSH clients log in as (<see cref="LabTransport.Ssh"/>).</summary>
    public const string SshUser = "root";

    /// <summary>
    /// The libvirt URI (reachable from the edge namespace and from the other hosts): <c>qemu+tcp://ADDRESS/system</c>,
    /// <c>qemu+tls://ADDRESS/system?pkipath=FOLDER</c> with <see cref="LabTransport.Tls"/>, or
    /// <c>qemu+libssh2://root@ADDRESS/system?keyfile=KEY&amp;known_hosts=FILE&amp;known_hosts_verify=normal&amp;sshauth=privkey</c>
    /// with <see cref="LabTransport.Ssh"/>.
    /// </summary>
    public Uri Uri => Transport switch
    {
        LabTransport.Tls or LabTransport.TlsSasl => new($"qemu+tls://{Address}/system?pkipath={ClientPkiFolder}"),
        // The key alone (no agent, no password prompt), and a host key that is not the pinned one refused.
        LabTransport.Ssh => new($"qemu+libssh2://{SshUser}@{Address}/system?keyfile={SshKeyFile}&known_hosts={SshKnownHostsFile}&known_hosts_verify=normal&sshauth=privkey"),
        _ => new($"qemu+tcp://{Address}/system"),
    };

    /// <summary>The migration URI for this host as a destination, <c>tcp://ADDRESS</c>.</summary>
    public Uri MigrationUri => new($"tcp://{Address}");
}

/// <summary>A guest VM of the lab: a busybox guest with a fixed address and MAC, bridged on its host's <c>br0</c>.</summary>
/// <param name="Name">The libvirt domain name, <c>guest-I</c>.</param>
/// <param name="Index">I, from 1.</param>
/// <param name="InitialHost">The host it was started on (it may have migrated since; see <see cref="CloudletLab.FindGuestHostAsync"/>).</param>
/// <param name="Address">Its address (<c>198.18.K.(100+I)</c>), kept across migrations.</param>
/// <param name="Mac">Its MAC address.</param>
/// <param name="ServicePort">The TCP port of its state service (see <see cref="Guests.GuestImage.ServicePort"/>).</param>
public sealed record LabGuest(string Name, int Index, string InitialHost, IPAddress Address, string Mac, int ServicePort)
{
    /// <summary>Whether it was started as a netem host (<see cref="Guests.LabGuestOptions.NetemHost"/>). The default is false.</summary>
    public bool NetemHost { get; init; }
}

/// <summary>
/// A guest that is a real netem host (<see cref="Guests.LabGuestOptions.NetemHost"/>), and how to reach it over
/// SSH from the edge namespace: <c>ip netns exec EDGE ssh -i SSHKEY -o UserKnownHostsFile=KNOWNHOSTS SSHUSER@ADDRESS</c>.
/// Its iproute2 programs are at <see cref="Guests.GuestImage.NetemTcPath"/> and <see cref="Guests.GuestImage.NetemIpPath"/>.
/// </summary>
/// <param name="Name">The domain name.</param>
/// <param name="Address">Its address (the SSH server listens there, port 22).</param>
/// <param name="SshUser">The user to log in as (<c>root</c>).</param>
/// <param name="SshKey">The lab's client private key (OpenSSH format).</param>
/// <param name="KnownHosts">The known_hosts file that pins the guest's host key to its address.</param>
public sealed record LabNetemGuest(string Name, IPAddress Address, string SshUser, string SshKey, string KnownHosts);

/// <summary>The process ids recorded for a host (from the daemons' pid files); 0 when none is recorded.</summary>
/// <param name="Virtlogd">virtlogd's pid.</param>
/// <param name="Libvirtd">libvirtd's pid.</param>
/// <param name="Qemu">QEMU pids by domain name, for the domains running on this host.</param>
public sealed record LabHostProcesses(int Virtlogd, int Libvirtd, IReadOnlyDictionary<string, int> Qemu)
{
    /// <summary>The SSH server's pid (<see cref="LabTransport.Ssh"/>); 0 when none is recorded.</summary>
    public int Sshd { get; init; }
}

/// <summary>How long the lab took to start, and its guests to boot (for people; never asserted).</summary>
/// <param name="Startup">From the start of <see cref="CloudletLab.StartAsync"/> until every libvirtd answered.</param>
/// <param name="GuestBoots">Per guest: from <c>virsh start</c> until its service answered from the edge.</param>
public sealed record LabTimings(TimeSpan Startup, IReadOnlyDictionary<string, TimeSpan> GuestBoots);
