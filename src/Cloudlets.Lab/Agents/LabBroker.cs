using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Cloudlets.Lab.Agents;

/// <summary>
/// The lab's MQTT broker (mosquitto): it listens only on the edge's address inside the edge namespace, takes no
/// anonymous client, and its ACL lets each site's user publish only <c>cloudlets/v1/samples/SITE</c> and the
/// controller user only subscribe to <c>cloudlets/v1/samples/#</c>.
/// </summary>
/// <param name="Url">The broker's address, <c>mqtt://198.18.K.1:PORT</c>, reachable from the lab's namespaces only.</param>
/// <param name="Namespace">The namespace it listens in (the edge's); a client elsewhere makes its socket there.</param>
/// <param name="Username">The controller's user name, <see cref="LabBroker.ControllerUser"/>.</param>
/// <param name="CredentialsFile">The controller's password file (its first line is the password; root-only, 0600).</param>
/// <param name="Folder">The broker's folder (configuration, ACL, password files, logs).</param>
public sealed record LabBroker(Uri Url, string Namespace, string Username, string CredentialsFile, string Folder)
{
    /// <summary>The user name of the controller (subscribe only).</summary>
    public const string ControllerUser = "controller";

    /// <summary>The password file of a site's agent (the site's name is its user name and vantage point).</summary>
    public string CredentialsFileFor(string siteName) => MosquittoFiles.PasswordFile(Folder, siteName);

    /// <summary>The log file of a site's agent (its standard output and error).</summary>
    public string AgentLogFor(string siteName) => Path.Combine(Folder, "agent-" + siteName + ".log");

    /// <summary>The broker's own log (its standard error).</summary>
    public string Log => Path.Combine(Folder, "mosquitto.log");
}

/// <summary>A running agent of the lab, as recorded.</summary>
/// <param name="Site">Its site (also its vantage point and broker user).</param>
/// <param name="Pid">Its process id.</param>
public sealed record LabAgent(string Site, int Pid);

/// <summary>The broker's files: mosquitto.conf, the ACL, the password file (mosquitto's PBKDF2 format) and the plain passwords.</summary>
internal static class MosquittoFiles
{
    /// <summary>mosquitto's <c>$7$</c> format: PBKDF2-HMAC-SHA512, 101 iterations (mosquitto_passwd's default), a 12-byte salt, a 64-byte hash.</summary>
    private const int Iterations = 101;

    public static string ConfigFile(string folder) => Path.Combine(folder, "mosquitto.conf");

    public static string TargetsFile(string folder) => Path.Combine(folder, "targets.json");

    public static string PasswordFile(string folder, string user) => Path.Combine(folder, "users", user + ".password");

    /// <summary>Writes every file for a broker on <paramref name="address"/>:<paramref name="port"/> with the given sites and hosts.</summary>
    public static void Write(string folder, IPAddress address, int port, IEnumerable<string> sites, IEnumerable<LabHost> hosts)
    {
        var users = Path.Combine(folder, "users");
        Directory.CreateDirectory(users, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var passwd = new StringBuilder();
        var acl = new StringBuilder("# Written by Cloudlets.Lab: each agent publishes only its own vantage point; the controller only subscribes.\n");
        acl.Append("user ").Append(LabBroker.ControllerUser).Append('\n').Append("topic read cloudlets/v1/samples/#\n");
        passwd.Append(HashedLine(LabBroker.ControllerUser, WritePassword(folder, LabBroker.ControllerUser)));
        foreach (var site in sites)
        {
            acl.Append("\nuser ").Append(site).Append('\n').Append("topic write cloudlets/v1/samples/").Append(site).Append('\n');
            passwd.Append(HashedLine(site, WritePassword(folder, site)));
        }

        WritePrivate(Path.Combine(folder, "passwd"), passwd.ToString());
        WritePrivate(Path.Combine(folder, "acl"), acl.ToString());
        WritePrivate(ConfigFile(folder), string.Create(CultureInfo.InvariantCulture, $"""
            # Written by Cloudlets.Lab. The broker listens only on the lab edge's address, inside the edge namespace.
            # It stays root (user root): it runs only inside the lab, and its files are root's alone.
            user root
            per_listener_settings false
            allow_anonymous false
            password_file {Path.Combine(folder, "passwd")}
            acl_file {Path.Combine(folder, "acl")}
            persistence false
            # A subscriber that falls behind keeps up to this many QoS 1 messages queued (mosquitto's default is 1000).
            max_queued_messages 10000
            log_dest stderr
            log_type error
            log_type warning
            log_type notice
            log_type information
            connection_messages true
            log_timestamp_format %Y-%m-%dT%H:%M:%S
            listener {port} {address}

            """));
        var targets = new StringBuilder("{\"targets\":[");
        targets.AppendJoin(',', hosts.Select(h => $"{{\"name\":\"{h.Name}\",\"address\":\"{h.Address}\"}}"));
        targets.Append("]}\n");
        WritePrivate(TargetsFile(folder), targets.ToString());
    }

    /// <summary>One line of mosquitto's password file for <paramref name="user"/>.</summary>
    internal static string HashedLine(string user, string password)
    {
        var salt = RandomNumberGenerator.GetBytes(12);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, Iterations, HashAlgorithmName.SHA512, 64);
        return string.Create(CultureInfo.InvariantCulture, $"{user}:$7${Iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}\n");
    }

    private static string WritePassword(string folder, string user)
    {
        // 24 random bytes, URL-safe base64: no character the password file or a command line could mistake.
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
        WritePrivate(PasswordFile(folder, user), password + "\n");
        return password;
    }

    private static void WritePrivate(string path, string text)
    {
        using var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        stream.Write(Encoding.UTF8.GetBytes(text));
    }
}
