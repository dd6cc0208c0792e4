using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab;

/// <summary>
/// The files of a <see cref="LabTransport.TlsSasl"/> lab, made the way an operator makes them on a real host:
/// per host a SASL configuration for libvirt (<c>libvirt.conf</c>: <c>mech_list: scram-sha-256</c> and the
/// sasldb's path) and a sasldb holding the lab's user, made by <c>saslpasswd2 -a libvirt</c> with the password
/// on standard input; per host an <c>auth.conf</c> in its /etc/libvirt with which that host's libvirtd
/// authenticates to the others when it migrates peer to peer; and for the lab's own clients (virsh, tests) an
/// <c>auth.conf</c> and the password alone, each mode 0600 in <see cref="Folder"/>. The password is random per lab
/// and never on a command line, in the state file or in <c>status</c> (which names the files).
/// </summary>
internal static class LabSasl
{
    /// <summary>The SASL user of every lab.</summary>
    public const string User = "cloudlets";

    /// <summary>The folder of a host's SASL files, inside the host (its etc folder is its /etc/libvirt); libvirtd's <c>SASL_CONF_PATH</c>.</summary>
    public const string ConfigFolderInHost = "/etc/libvirt/sasl2";

    /// <summary>The sasldb of a host, inside the host.</summary>
    public const string DatabaseInHost = ConfigFolderInHost + "/passwd.db";

    /// <summary>The name of the auth.conf credentials section the lab writes.</summary>
    public const string CredentialsName = "cloudlets-lab";

    /// <summary>Whether a transport runs over TLS (and so needs the lab's certificates).</summary>
    public static bool UsesTls(LabTransport transport) => transport is LabTransport.Tls or LabTransport.TlsSasl;

    /// <summary>The folder of a lab's SASL client files.</summary>
    public static string Folder(LabPaths paths, string lab) => Path.Combine(paths.LabFolder(lab), "sasl");

    /// <summary>The client auth.conf of a lab (<c>LIBVIRT_AUTH_FILE</c> for virsh).</summary>
    public static string AuthFile(LabPaths paths, string lab) => Path.Combine(Folder(paths, lab), "auth.conf");

    /// <summary>The file holding the lab's SASL password alone (mode 0600).</summary>
    public static string PasswordFile(LabPaths paths, string lab) => Path.Combine(Folder(paths, lab), "password");

    /// <summary>The SASL configuration for libvirt (<c>/etc/sasl2/libvirt.conf</c> on a real host).</summary>
    public static string Config(string databasePath) => $"""
        # SCRAM-SHA-256 against a sasldb (cyrus-sasl's libscram, package libsasl2-modules).
        mech_list: scram-sha-256
        sasldb_path: {databasePath}
        """ + "\n";

    /// <summary>A libvirt auth.conf that answers the lab's user and password for each host address.</summary>
    public static string AuthConf(IEnumerable<LabHost> hosts, string password)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"[credentials-{CredentialsName}]\nauthname={User}\npassword={password}\n");
        foreach (var host in hosts)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n[auth-libvirt-{host.Address}]\ncredentials={CredentialsName}\n");
        }

        return text.ToString();
    }

    /// <summary>A new random password (24 URL-safe characters; no character auth.conf would need quoted).</summary>
    public static string NewPassword() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', 'x').Replace('/', 'y');

    /// <summary>
    /// <c>saslpasswd2 -c -a libvirt -u REALM -f DATABASE -p cloudlets</c> with the password on standard input
    /// (the lab's command runner gives programs no input, so this one is started here). The realm is the
    /// host's name: libvirtd's SASL server takes its realm from the hostname, which is the host's UTS name.
    /// </summary>
    /// <exception cref="LabException">saslpasswd2 failed (its message, which never holds the password).</exception>
    public static async Task CreateDatabaseAsync(string database, string realm, string password, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(CommandPath.Resolve("saslpasswd2"))
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-c", "-a", "libvirt", "-u", realm, "-f", database, "-p", User })
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment["LC_ALL"] = "C";
        using var process = Process.Start(psi) ?? throw new LabException("saslpasswd2 did not start.");
        await process.StandardInput.WriteAsync(password.AsMemory(), cancellationToken).ConfigureAwait(false);
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        _ = await process.StandardOutput.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new LabException($"saslpasswd2 failed (exit {process.ExitCode}): {(await error.ConfigureAwait(false)).Trim()}");
        }

        File.SetUnixFileMode(database, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
