namespace Cloudlets.Lab;

// The credentials of a SASL-over-TLS lab (see LabSasl): made after the certificates, before the hosts' daemons start.
public sealed partial class CloudletLab
{
    private async Task CreateSaslCredentialsAsync(CancellationToken cancellationToken)
    {
        var folder = LabSasl.Folder(_paths, Name);
        LabPki.CreatePrivateFolder(folder);
        var password = LabSasl.NewPassword();
        var authConf = LabSasl.AuthConf(_hosts, password);
        LabPki.WriteFile(LabSasl.PasswordFile(_paths, Name), password, secret: true);
        LabPki.WriteFile(LabSasl.AuthFile(_paths, Name), authConf, secret: true);
        foreach (var host in _hosts)
        {
            var etc = Path.Combine(host.Folder, "etc");
            var sasl = Path.Combine(etc, "sasl2");
            LabPki.CreatePrivateFolder(sasl);
            LabPki.WriteFile(Path.Combine(sasl, "libvirt.conf"), LabSasl.Config(LabSasl.DatabaseInHost), secret: false);
            await LabSasl.CreateDatabaseAsync(Path.Combine(sasl, "passwd.db"), host.Name, password, cancellationToken).ConfigureAwait(false);
            // The host's /etc/libvirt/auth.conf: its libvirtd, as a peer-to-peer migration client, reads it.
            LabPki.WriteFile(Path.Combine(etc, "auth.conf"), authConf, secret: true);
        }
    }

    /// <summary>
    /// With <see cref="LabTransport.TlsSasl"/>: the lab's SASL user and password (read from the lab's 0600
    /// password file), for clients such as a <c>LibvirtHostOptions.Credentials</c>; null with other transports.
    /// </summary>
    public (string User, string Password)? ReadSaslCredential() =>
        _options.Transport == LabTransport.TlsSasl && File.Exists(LabSasl.PasswordFile(_paths, Name))
            ? (LabSasl.User, File.ReadAllText(LabSasl.PasswordFile(_paths, Name)))
            : null;
}
