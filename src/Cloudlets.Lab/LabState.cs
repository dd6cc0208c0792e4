using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cloudlets.Lab.Ownership;

namespace Cloudlets.Lab;

/// <summary>What a lab recorded about itself in its state file, so a later process can find, show or remove it.</summary>
public sealed record LabState
{
    /// <summary>The state file format version.</summary>
    public const int CurrentVersion = 2;

    /// <summary>The format version.</summary>
    public int Version { get; init; } = CurrentVersion;

    /// <summary>The lab name.</summary>
    public required string Name { get; init; }

    /// <summary>The subnet index K.</summary>
    public required int Subnet { get; init; }

    /// <summary><c>starting</c>, <c>ready</c> or <c>stopping</c>.</summary>
    public string Phase { get; init; } = "starting";

    /// <summary>
    /// Whether the lab is meant to end with the process that started it (it was not built with
    /// <see cref="CloudletLabOptions.KeepRunningOnDispose"/>). A transient lab whose owner is gone
    /// is an orphan (its test process was killed), and the next lab start removes it.
    /// </summary>
    public bool Transient { get; init; }

    /// <summary>The pid of the process that started the lab.</summary>
    public int Owner { get; init; }

    /// <summary>The owner's start time (field 22 of /proc/PID/stat), so a reused pid is not taken for the owner.</summary>
    public ulong OwnerStartTime { get; init; }

    /// <summary>The hosts.</summary>
    public IReadOnlyList<LabStateHost> Hosts { get; init; } = [];

    /// <summary>
    /// The sites, <c>site-1</c> (the edge) first, with their namespace and address. Empty in a state file
    /// written before there were sites: that lab has the edge alone.
    /// </summary>
    public IReadOnlyList<LabStateSite> Sites { get; init; } = [];

    /// <summary>
    /// How the hosts' daemons are reached: <c>tcp</c> (the default, also for state files written before
    /// there was a choice, which read back as null), <c>tls</c> or <c>ssh</c>.
    /// </summary>
    public string? Transport { get; init; } = "tcp";

    /// <summary><see cref="Transport"/> as the enum (the state file is checked when it is parsed).</summary>
    [JsonIgnore]
    public LabTransport TransportKind => Transport switch
    {
        "tls" => LabTransport.Tls,
        "ssh" => LabTransport.Ssh,
        "tls-sasl" => LabTransport.TlsSasl,
        _ => LabTransport.Tcp,
    };

    /// <summary>The state file's name of a transport.</summary>
    public static string TransportName(LabTransport transport) => transport switch
    {
        LabTransport.Tls => "tls",
        LabTransport.Ssh => "ssh",
        LabTransport.TlsSasl => "tls-sasl",
        _ => "tcp",
    };

    /// <summary>The guests that were started.</summary>
    public IReadOnlyList<LabStateGuest> Guests { get; init; } = [];

    /// <summary>The network namespaces this lab created (the teardown removes these and no other).</summary>
    public IReadOnlyList<LabOwnedNamespace> Namespaces { get; init; } = [];

    /// <summary>The processes this lab started and recorded (the teardown ends these, and lab daemons inside its own namespaces).</summary>
    public IReadOnlyList<LabOwnedProcess> Processes { get; init; } = [];

    /// <summary>The broker and the agents' settings, when the lab runs them (see <see cref="CloudletLabOptions.Agents"/>); null otherwise.</summary>
    public LabStateBroker? Broker { get; init; }

    /// <summary>Serializes to indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, LabJsonContext.Default.LabState);

    /// <summary>Parses a state file's text; throws <see cref="LabException"/> when it is not a valid state.</summary>
    public static LabState Parse(string json)
    {
        LabState? state;
        try
        {
            state = JsonSerializer.Deserialize(json, LabJsonContext.Default.LabState);
        }
        catch (JsonException ex)
        {
            throw new LabException($"The lab state file is not valid JSON: {ex.Message}", ex);
        }

        // A JSON null for a list arrives as null despite the non-nullable type.
        if (state is null || state.Hosts is null || state.Guests is null || state.Namespaces is null || state.Processes is null ||
            !LabNaming.IsValidLabName(state.Name) || state.Subnet is < LabNaming.MinSubnet or > LabNaming.MaxSubnet ||
            state.Version != CurrentVersion || state.Transport is not (null or "tcp" or "tls" or "ssh" or "tls-sasl") || state.Hosts.Any(h => h.Index is < 1 or > LabNaming.MaxHosts) ||
            state.Guests.Any(g => g.Index is < 1 or > LabNaming.MaxGuests))
        {
            throw new LabException("The lab state file does not describe a valid lab (name, subnet, version, transport or indexes out of range).");
        }

        // A state file written before there were sites has none (it reads back as null): the edge alone.
        state = state.Sites is null ? state with { Sites = [] } : state;

        // A site is derived from its index: a record that says otherwise was not written by the lab.
        var plan = new LabAddressPlan(state.Subnet);
        if (state.Sites.Count > LabNaming.MaxSites || state.Sites.Select((site, i) => (site, i)).Any(p =>
                p.site is null || p.site.Index != p.i + 1 || p.site.Name != LabNaming.SiteName(p.site.Index) ||
                p.site.Namespace != LabNaming.SiteNamespace(state.Name, p.site.Index) || p.site.Address != plan.Site(p.site.Index).ToString()))
        {
            throw new LabException($"The lab state file lists sites that are not the lab's (site-1 .. site-{LabNaming.MaxSites} in order, each with its own namespace and address).");
        }

        // What the teardown will remove must be the lab's own kind of object: its own namespace names, and processes by absolute path.
        var names = LabNaming.AllNamespaces(state.Name);
        if (state.Namespaces.Any(n => n is null || !names.Contains(n.Name)) ||
            state.Processes.Any(p => p is null || p.Pid <= 0 || p.Host is < 0 or > LabNaming.MaxHosts || string.IsNullOrEmpty(p.Executable) || !Path.IsPathFullyQualified(p.Executable)))
        {
            throw new LabException("The lab state file records a namespace or a process that cannot be the lab's (a foreign name, a pid or a program path out of range).");
        }

        if (state.Broker is { } broker && (broker.Port is < 1 or > 65535 || string.IsNullOrEmpty(broker.AgentAssembly) || !Path.IsPathFullyQualified(broker.AgentAssembly) ||
                                           (broker.DotnetHost is not null && !Path.IsPathFullyQualified(broker.DotnetHost)) || broker.PeriodMs <= 0 || broker.ProbeTimeoutMs <= 0))
        {
            throw new LabException("The lab state file records a broker that cannot be the lab's (a port, a program path or a period out of range).");
        }

        return state;
    }
}

/// <summary>A host in the state file.</summary>
/// <param name="Index">N.</param>
/// <param name="HostUuid">The host_uuid written to its libvirtd.conf.</param>
public sealed record LabStateHost(int Index, string HostUuid);

/// <summary>A site in the state file.</summary>
/// <param name="Index">S.</param>
/// <param name="Name">Its name, <c>site-S</c>.</param>
/// <param name="Namespace">Its network namespace (see <see cref="LabNaming.SiteNamespace"/>).</param>
/// <param name="Address">Its address (see <see cref="LabAddressPlan.Site"/>).</param>
public sealed record LabStateSite(int Index, string Name, string Namespace, string Address);

/// <summary>The broker and the agents' settings in the state file.</summary>
/// <param name="Port">The broker's port on the edge's address.</param>
/// <param name="AgentAssembly">The cloudlets-agent.dll the agents run.</param>
/// <param name="DotnetHost">The dotnet host that runs it.</param>
/// <param name="PeriodMs">The agents' probe period in milliseconds.</param>
/// <param name="ProbeTimeoutMs">The agents' probe timeout in milliseconds.</param>
public sealed record LabStateBroker(int Port, string AgentAssembly, string? DotnetHost, int PeriodMs, int ProbeTimeoutMs);

/// <summary>A guest in the state file.</summary>
/// <param name="Index">I.</param>
/// <param name="InitialHost">The host it was started on.</param>
public sealed record LabStateGuest(int Index, string InitialHost)
{
    /// <summary>Whether it is a netem host. The default is false.</summary>
    public bool NetemHost { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(LabState))]
internal sealed partial class LabJsonContext : JsonSerializerContext;

/// <summary>
/// The lab's folders under the state root (the default is <c>/run/cloudlets-lab</c>, a tmpfs: a
/// reboot removes namespaces and processes, and with them the state that described them).
/// </summary>
/// <param name="Root">The state root.</param>
public sealed record LabPaths(string Root)
{
    /// <summary>The default state root.</summary>
    public const string DefaultRoot = "/run/cloudlets-lab";

    /// <summary>The folder of one lab.</summary>
    public string LabFolder(string lab) => Path.Combine(Root, "labs", lab);

    /// <summary>The state file of one lab.</summary>
    public string StateFile(string lab) => Path.Combine(LabFolder(lab), "state.json");

    /// <summary>The folder of host N of a lab.</summary>
    public string HostFolder(string lab, int index) => Path.Combine(LabFolder(lab), "h" + index.ToString(CultureInfo.InvariantCulture));

    /// <summary>The folder of a lab's certificates (<see cref="LabTransport.Tls"/>): the CA's key stays here, and nowhere else.</summary>
    public string PkiFolder(string lab) => Path.Combine(LabFolder(lab), "pki");

    /// <summary>The folder of a lab's client credentials (<c>cacert.pem</c>, <c>clientcert.pem</c>, <c>clientkey.pem</c>): the <c>pkipath</c> of its TLS URIs.</summary>
    public string ClientPkiFolder(string lab) => Path.Combine(PkiFolder(lab), "client");

    /// <summary>
    /// The folder of a lab's SSH client credentials (<see cref="LabTransport.Ssh"/>): the client key <c>id_ed25519</c>
    /// and the <c>known_hosts</c> file that pins every host's key, the <c>keyfile</c> and <c>known_hosts</c> of its URIs.
    /// </summary>
    public string SshFolder(string lab) => Path.Combine(LabFolder(lab), "ssh");

    /// <summary>The netem-host guests' SSH client key and known_hosts file of a lab.</summary>
    public string NetemSshFolder(string lab) => Path.Combine(LabFolder(lab), "netem-ssh");

    /// <summary>The folder of subnet claims.</summary>
    public string SubnetFolder => Path.Combine(Root, "subnets");

    /// <summary>The claim file of subnet K (holds the lab name).</summary>
    public string SubnetClaim(int subnet) => Path.Combine(SubnetFolder, subnet.ToString(CultureInfo.InvariantCulture));

    /// <summary>Reads a lab's state, or null when it has none (or an unreadable one).</summary>
    public LabState? TryReadState(string lab)
    {
        var file = StateFile(lab);
        try
        {
            return File.Exists(file) ? LabState.Parse(File.ReadAllText(file)) : null;
        }
        catch (Exception ex) when (ex is LabException or IOException)
        {
            return null;
        }
    }

    /// <summary>Writes a lab's state atomically (write, then rename).</summary>
    public void WriteState(LabState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var file = StateFile(state.Name);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var temp = file + ".new";
        File.WriteAllText(temp, state.ToJson(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        File.Move(temp, file, overwrite: true);
    }

    /// <summary>
    /// Claims a free subnet index for a lab atomically (an exclusive create of its claim file), so
    /// several labs can start at once. A claim the lab already holds is returned again.
    /// </summary>
    public int ClaimSubnet(string lab)
    {
        Directory.CreateDirectory(SubnetFolder);
        var held = SubnetsClaimedBy(lab);
        if (held.Count > 0)
        {
            return held[0];
        }

        for (var k = LabNaming.MinSubnet; k <= LabNaming.MaxSubnet; k++)
        {
            try
            {
                using var stream = new FileStream(SubnetClaim(k), FileMode.CreateNew, FileAccess.Write);
                stream.Write(Encoding.UTF8.GetBytes(lab));
                return k;
            }
            catch (IOException) when (File.Exists(SubnetClaim(k)))
            {
                // Taken by another lab: try the next one.
            }
        }

        throw new LabException($"No free lab subnet: all of 198.18.{LabNaming.MinSubnet}-{LabNaming.MaxSubnet}.0/24 are claimed (see {SubnetFolder}).");
    }

    /// <summary>The subnet indexes whose claim file names this lab.</summary>
    public IReadOnlyList<int> SubnetsClaimedBy(string lab)
    {
        if (!Directory.Exists(SubnetFolder))
        {
            return [];
        }

        var result = new List<int>();
        foreach (var file in Directory.EnumerateFiles(SubnetFolder))
        {
            if (int.TryParse(Path.GetFileName(file), NumberStyles.None, CultureInfo.InvariantCulture, out var k))
            {
                try
                {
                    if (File.ReadAllText(file).Trim() == lab)
                    {
                        result.Add(k);
                    }
                }
                catch (IOException)
                {
                    // Released meanwhile.
                }
            }
        }

        result.Sort();
        return result;
    }

    /// <summary>The names of labs that have a folder under the state root.</summary>
    public IReadOnlyList<string> KnownLabs() =>
        Directory.Exists(Path.Combine(Root, "labs"))
            ? [.. Directory.EnumerateDirectories(Path.Combine(Root, "labs")).Select(Path.GetFileName).OfType<string>().Where(LabNaming.IsValidLabName).Order(StringComparer.Ordinal)]
            : [];
}
