namespace Cloudlets.Lab;

/// <summary>The configuration files of a lab host's daemons (bind-mounted over /etc/libvirt inside the host).</summary>
internal static class LabHostConfiguration
{
    /// <summary>Creates the host's folders and writes libvirtd.conf, qemu.conf and virtlogd.conf.</summary>
    public static void Write(LabHost host, LabStateHost state)
    {
        foreach (var sub in new[] { "etc", "lib", "log", "log/qemu", "run" })
        {
            Directory.CreateDirectory(Path.Combine(host.Folder, sub));
        }

        File.WriteAllText(Path.Combine(host.Folder, "etc", "libvirtd.conf"), Libvirtd(host.Transport, state.HostUuid));
        // No cgroups: the hosts share the machine's cgroup tree, where two libvirtds would pick the same names.
        File.WriteAllText(Path.Combine(host.Folder, "etc", "qemu.conf"), """
            user = "root"
            group = "root"
            security_driver = "none"
            dynamic_ownership = 0
            remember_owner = 0
            cgroup_controllers = [ ]
            """ + "\n" + (LabSasl.UsesTls(host.Transport)
            ? $"migrate_tls_x509_cert_dir = \"{LabPki.QemuFolderInHost}\"\nmigrate_tls_x509_verify = 1\n"
            : ""));
        File.WriteAllText(Path.Combine(host.Folder, "etc", "virtlogd.conf"), "log_outputs = \"3:file:/var/log/libvirt/virtlogd.log\"\n");
    }

    /// <summary>libvirtd.conf for a transport.</summary>
    public static string Libvirtd(LabTransport transport, string hostUuid) => transport switch
    {
        // TCP without authentication is acceptable only because the address lives inside the lab's own namespaces.
        LabTransport.Tcp => $"""
            listen_tls = 0
            listen_tcp = 1
            auth_tcp = "none"
            host_uuid = "{hostUuid}"
            log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
            """ + "\n",
        // TLS only: no TCP listener. Clients must present a certificate of the lab's CA (the default
        // tls_no_verify_certificate = 0); the certificate is the authentication, so no SASL on top.
        LabTransport.Tls => $"""
            listen_tls = 1
            listen_tcp = 0
            auth_tls = "none"
            key_file = "{LabPki.ServerFolderInHost}/serverkey.pem"
            cert_file = "{LabPki.ServerFolderInHost}/servercert.pem"
            ca_file = "{LabPki.ServerFolderInHost}/cacert.pem"
            host_uuid = "{hostUuid}"
            log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
            """ + "\n",
        // TLS as above, and SASL on top: the certificate admits the client, SCRAM then logs it in as a sasldb user.
        // libvirtd finds its SASL configuration (libvirt.conf) through SASL_CONF_PATH, set by lab-host.sh.
        LabTransport.TlsSasl => $"""
            listen_tls = 1
            listen_tcp = 0
            auth_tls = "sasl"
            key_file = "{LabPki.ServerFolderInHost}/serverkey.pem"
            cert_file = "{LabPki.ServerFolderInHost}/servercert.pem"
            ca_file = "{LabPki.ServerFolderInHost}/cacert.pem"
            host_uuid = "{hostUuid}"
            log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
            """ + "\n",
        // SSH: no network listener at all; the host's SSH server hands each client to the unix socket (virt-ssh-helper).
        // Peer-to-peer migration needs none either: the source daemon reaches the destination over SSH, and QEMU's
        // migration stream goes to the destination QEMU's own port (the migration URI).
        LabTransport.Ssh => $"""
            listen_tls = 0
            listen_tcp = 0
            host_uuid = "{hostUuid}"
            log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
            """ + "\n",
        _ => throw new ArgumentOutOfRangeException(nameof(transport), transport, "not a lab transport"),
    };
}
