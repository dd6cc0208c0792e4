using System.Net;
using System.Text;
using System.Text.Json;

namespace Cloudlets.Lab;

/// <summary>A guest in a <see cref="LabStatus"/>.</summary>
/// <param name="Name">The domain name.</param>
/// <param name="Host">The host that runs it now (asked of every libvirtd), or null when none does.</param>
/// <param name="Address">Its address.</param>
public sealed record LabGuestStatus(string Name, string? Host, IPAddress Address);

/// <summary>What a lab consists of now: the edge and the other sites, the hosts, and where each guest runs.</summary>
/// <param name="Name">The lab name.</param>
/// <param name="Edge">The edge.</param>
/// <param name="Hosts">The hosts.</param>
/// <param name="Guests">The guests.</param>
public sealed record LabStatus(string Name, LabEdge Edge, IReadOnlyList<LabHost> Hosts, IReadOnlyList<LabGuestStatus> Guests)
{
    /// <summary>The sites, site-1 (the edge) first. The default (empty) means the edge alone.</summary>
    public IReadOnlyList<LabSite> Sites { get; init; } = [];

    /// <summary>The broker, when the lab runs one (see <see cref="CloudletLabOptions.Agents"/>). The default is none.</summary>
    public Agents.LabBroker? Broker { get; init; }

    /// <summary>The guests that are real netem hosts, and their SSH credentials. The default is none.</summary>
    public IReadOnlyList<LabNetemGuest> NetemGuests { get; init; } = [];

    /// <summary>The agents running now, by site. The default is none.</summary>
    public IReadOnlyList<Agents.LabAgent> Agents { get; init; } = [];

    /// <summary>The sites, or the edge alone as <c>site-1</c> when <see cref="Sites"/> is empty.</summary>
    private IReadOnlyList<LabSite> AllSites => Sites.Count > 0 ? Sites : [new LabSite(LabNaming.SiteName(1), 1, Edge.Namespace, Edge.Address, LabNaming.SwitchPortForEdge)];

    /// <summary>
    /// One JSON object: <c>{"edge":{"namespace":…,"address":…},"sites":[{"name":"site-1",…,"namespace":…,"address":…,"switchPort":…}],"hosts":[{"name":…,"address":…,"uri":…,"transport":"tcp"|"tls"|"ssh","pkiPath":… (tls only),"sshUser":…,"sshKey":…,"knownHosts":… (ssh only),"namespace":…}],"guests":[{"name":…,"host":…,"address":…}],"netemGuests":[{"name":…,"address":…,"sshUser":…,"sshKey":…,"knownHosts":…}]}</c>.
    /// </summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject("edge");
            json.WriteString("namespace", Edge.Namespace);
            json.WriteString("address", Edge.Address.ToString());
            json.WriteEndObject();
            json.WriteStartArray("sites");
            foreach (var site in AllSites)
            {
                json.WriteStartObject();
                json.WriteString("name", site.Name);
                json.WriteString("namespace", site.Namespace);
                json.WriteString("address", site.Address.ToString());
                json.WriteString("switchPort", site.SwitchPort);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("hosts");
            foreach (var host in Hosts)
            {
                json.WriteStartObject();
                json.WriteString("name", host.Name);
                json.WriteString("address", host.Address.ToString());
                json.WriteString("uri", host.Uri.ToString());
                json.WriteString("transport", LabState.TransportName(host.Transport));
                if (host.ClientPkiFolder is { } pki)
                {
                    // Where the credentials are: the client certificate, its key and the lab's CA.
                    json.WriteString("pkiPath", pki);
                }

                if (host.SshKeyFile is { } key)
                {
                    // Where the credentials are: the client key, and the known_hosts file that pins the host keys.
                    json.WriteString("sshUser", LabHost.SshUser);
                    json.WriteString("sshKey", key);
                    json.WriteString("knownHosts", host.SshKnownHostsFile);
                }

                if (host.SaslAuthFile is { } auth)
                {
                    // Where the credentials are, never the password itself: the auth.conf and the password file (both 0600).
                    json.WriteString("saslUser", LabHost.SaslUser);
                    json.WriteString("saslAuthFile", auth);
                    json.WriteString("saslPasswordFile", host.SaslPasswordFile);
                }

                json.WriteString("namespace", host.Namespace);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("guests");
            foreach (var guest in Guests)
            {
                json.WriteStartObject();
                json.WriteString("name", guest.Name);
                if (guest.Host is null)
                {
                    json.WriteNull("host");
                }
                else
                {
                    json.WriteString("host", guest.Host);
                }

                json.WriteString("address", guest.Address.ToString());
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("netemGuests");
            foreach (var guest in NetemGuests)
            {
                json.WriteStartObject();
                json.WriteString("name", guest.Name);
                json.WriteString("address", guest.Address.ToString());
                json.WriteString("sshUser", guest.SshUser);
                json.WriteString("sshKey", guest.SshKey);
                json.WriteString("knownHosts", guest.KnownHosts);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            if (Broker is { } broker)
            {
                json.WriteStartObject("broker");
                json.WriteString("url", broker.Url.ToString().TrimEnd('/'));
                json.WriteString("namespace", broker.Namespace);
                json.WriteString("username", broker.Username);
                json.WriteString("credentialsFile", broker.CredentialsFile);
                json.WriteEndObject();
                json.WriteStartArray("agents");
                foreach (var agent in Agents)
                {
                    json.WriteStartObject();
                    json.WriteString("site", agent.Site);
                    json.WriteNumber("pid", agent.Pid);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>A few lines for people.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("lab ").Append(Name).Append(": edge ").Append(Edge.Address).Append(" (netns ").Append(Edge.Namespace).AppendLine(")");
        if (Sites.Count > 1)
        {
            foreach (var site in Sites)
            {
                sb.Append("  ").Append(site.Name).Append(' ').Append(site.Address).Append(" (netns ").Append(site.Namespace).Append(", switch port ").Append(site.SwitchPort).AppendLine(")");
            }
        }

        foreach (var host in Hosts)
        {
            sb.Append("  ").Append(host.Name).Append(' ').Append(host.Address).Append(' ').Append(host.Uri).Append(" (netns ").Append(host.Namespace).AppendLine(")");
        }

        foreach (var guest in Guests)
        {
            sb.Append("  ").Append(guest.Name).Append(' ').Append(guest.Address).Append(" on ").AppendLine(guest.Host ?? "(no host runs it)");
        }

        foreach (var guest in NetemGuests)
        {
            sb.Append("  netem host ").Append(guest.Name).Append(": ssh -i ").Append(guest.SshKey).Append(" -o UserKnownHostsFile=").Append(guest.KnownHosts)
                .Append(' ').Append(guest.SshUser).Append('@').Append(guest.Address).AppendLine(" (from the edge)");
        }

        if (Broker is { } b)
        {
            sb.Append("  broker ").Append(b.Url.ToString().TrimEnd('/')).Append(" (netns ").Append(b.Namespace).Append(", user ").Append(b.Username).Append(", password in ").Append(b.CredentialsFile).AppendLine(")");
            foreach (var agent in Agents)
            {
                sb.Append("  agent ").Append(agent.Site).Append(" pid ").Append(agent.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)).AppendLine();
            }
        }

        return sb.ToString().TrimEnd();
    }
}
