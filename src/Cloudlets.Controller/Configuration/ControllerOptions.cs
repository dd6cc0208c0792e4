using System.Globalization;
using System.Net;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;
using Cloudlets.Core.Pipeline;
using Cloudlets.Libvirt;

namespace Cloudlets.Controller.Configuration;

/// <summary>
/// Everything <c>cloudlets-controller</c> runs on, bound from the <c>Controller</c> section of the
/// configuration (a JSON file, environment variables <c>CLOUDLETS_Controller__…</c>, the command line).
/// Validated once, before anything connects; every error is listed with its path
/// (<c>Hosts[1].Probe.Address</c>). The pipeline's mode (<see cref="MigrationPipelineOptions.Mode"/>)
/// is advisory by default.
/// </summary>
public sealed class ControllerOptions : IValidatableOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string SectionName = "Controller";

    /// <summary>Where the controller's own probes run from (this machine, optionally inside a network namespace). Required unless <see cref="Mqtt"/> brings the samples.</summary>
    public IList<VantagePointOptions> VantagePoints { get; set; } = [];

    /// <summary>The KVM hosts. At least one is required.</summary>
    public IList<ControllerHostOptions> Hosts { get; set; } = [];

    /// <summary>The VMs the controller manages (libvirt domain names) and their users. At least one is required.</summary>
    public IList<ControllerVmOptions> Vms { get; set; } = [];

    /// <summary>How the controller's own probes run. The default is one probe per target per second, 2 s timeout.</summary>
    public ProbingOptions Probing { get; set; } = new();

    /// <summary>Samples from <c>cloudlets-agent</c>s through an MQTT broker, in addition to (or instead of) the controller's own probes. The default is none.</summary>
    public ControllerMqttOptions? Mqtt { get; set; }

    /// <summary>Leader election on etcd among the region's controllers (only the leader migrates), or <see langword="null"/> to act alone. The default is <see langword="null"/>.</summary>
    public ControllerElectionOptions? Election { get; set; }

    /// <summary>The HTTP endpoint (metrics, health, operator API). The default listens on loopback port 9464.</summary>
    public HttpEndpointOptions Http { get; set; } = new();

    /// <summary>The audit log. The default writes none.</summary>
    public AuditLogOptions Audit { get; set; } = new();

    /// <summary>What the health checks consider fresh. The defaults suit one-second probing.</summary>
    public HealthOptions Health { get; set; } = new();

    /// <summary>The lowest-latency policy's options. The default is <see cref="LowestLatencyPolicyOptions"/>'s defaults.</summary>
    public LowestLatencyPolicyOptions Policy { get; set; } = new();

    /// <summary>The pipeline's options, its mode (advisory by default) and the executor's limits. The default is <see cref="MigrationPipelineOptions"/>'s defaults.</summary>
    public MigrationPipelineOptions Pipeline { get; set; } = new();

    /// <summary>
    /// The placement rules at start: drained hosts, pinned VMs, affinity and anti-affinity groups, hosts
    /// excluded per VM. Operator calls change them at run time; a configuration reload replaces them.
    /// The default is none.
    /// </summary>
    public PlacementRules Rules { get; set; } = new();

    /// <summary>The probe target name that stands for a host in the samples (host names are unique).</summary>
    public static string HostTarget(string hostName) => "host:" + hostName;

    /// <summary>The probe target name that stands for a VM's own address.</summary>
    public static string VmTarget(string vmName) => "vm:" + vmName;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if ((VantagePoints is null || VantagePoints.Count == 0) && Mqtt is null)
        {
            errors.Add(nameof(VantagePoints), "at least one vantage point is needed (where the probes run from), unless Mqtt brings the samples.");
        }

        errors.Each<VantagePointOptions>(nameof(VantagePoints), VantagePoints is null ? null : [.. VantagePoints]);
        Unique(errors, nameof(VantagePoints), VantagePoints?.Select(v => v?.Name));

        if (Hosts is null || Hosts.Count == 0)
        {
            errors.Add(nameof(Hosts), "at least one host is needed.");
        }
        else
        {
            errors.Each<ControllerHostOptions>(nameof(Hosts), [.. Hosts]);
            Unique(errors, nameof(Hosts), Hosts.Select(h => h?.Name));
        }

        if (Vms is null || Vms.Count == 0)
        {
            errors.Add(nameof(Vms), "at least one VM is needed.");
        }
        else
        {
            errors.Each<ControllerVmOptions>(nameof(Vms), [.. Vms]);
            Unique(errors, nameof(Vms), Vms.Select(v => v?.Name));
            if (Mqtt is null || Mqtt.VantagePoints is { Count: > 0 })
            {
                // Users must name a vantage point that sends samples; with MQTT and no allow-list any name may arrive.
                var known = new HashSet<string>(
                    (VantagePoints ?? []).Where(v => v is not null).Select(v => v.Name).Concat(Mqtt?.VantagePoints ?? []),
                    StringComparer.Ordinal);
                for (var v = 0; v < Vms.Count; v++)
                {
                    for (var u = 0; u < (Vms[v]?.Users?.Count ?? 0); u++)
                    {
                        var vp = Vms[v].Users[u]?.VantagePoint;
                        if (!string.IsNullOrEmpty(vp) && !known.Contains(vp))
                        {
                            errors.Add(Path($"Vms[{v}].Users[{u}].VantagePoint"), known.Count == 0
                                ? $"'{vp}' is not a configured vantage point (none is configured)."
                                : $"'{vp}' is not a configured vantage point ({string.Join(", ", known.Order(StringComparer.Ordinal))}).");
                        }
                    }
                }
            }
        }

        errors.Nested(nameof(Probing), Probing);
        errors.Nested(nameof(Mqtt), Mqtt, required: false);
        errors.Nested(nameof(Election), Election, required: false);
        errors.Nested(nameof(Http), Http);
        errors.Nested(nameof(Audit), Audit);
        errors.Nested(nameof(Health), Health);
        errors.Nested(nameof(Policy), Policy);
        errors.Nested(nameof(Pipeline), Pipeline);
        if (Rules is not null)
        {
            // The rules' own checks plus the names: every host and VM they name must be configured.
            errors.Nested(nameof(Rules), new RulesAgainstNames(
                Rules,
                [.. (Hosts ?? []).Where(h => h is not null).Select(h => h.Name)],
                [.. (Vms ?? []).Where(v => v is not null).Select(v => v.Name)]));
        }
    }

    private sealed class RulesAgainstNames(PlacementRules rules, IReadOnlyCollection<string> hosts, IReadOnlyCollection<string> vms) : IValidatableOptions
    {
        public void Validate(OptionsErrors errors) => rules.Validate(errors, hosts, vms);
    }

    internal static string Path(FormattableString path) => path.ToString(CultureInfo.InvariantCulture);

    private static void Unique(OptionsErrors errors, string list, IEnumerable<string?>? names)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var name in names ?? [])
        {
            if (!string.IsNullOrEmpty(name) && !seen.Add(name))
            {
                errors.Add(Path($"{list}[{i}].Name"), $"'{name}' is used twice; names must be unique.");
            }

            i++;
        }
    }

    internal static bool IsName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    internal static void CheckName(OptionsErrors errors, string property, string? name)
    {
        if (!IsName(name))
        {
            errors.Add(property, $"'{name}' is not a name: use 1 to 64 letters, digits, '-', '_' or '.'.");
        }
    }

    internal static void CheckNamespace(OptionsErrors errors, string property, string? name)
    {
        if (name is not null && (!IsName(name) || name[0] == '.'))
        {
            errors.Add(property, $"'{name}' is not a network namespace name (1 to 64 letters, digits, '-', '_' or '.', not starting with '.').");
        }
    }
}

/// <summary>Where probes run from: this machine, optionally inside a named network namespace.</summary>
public sealed class VantagePointOptions : IValidatableOptions
{
    /// <summary>The vantage point's name, stamped on its samples and named by VM users. Required.</summary>
    public string Name { get; set; } = "";

    /// <summary>A named network namespace (<c>ip netns</c>) to probe from (needs root), or <see langword="null"/> for this process's own. The default is <see langword="null"/>.</summary>
    public string? NetworkNamespace { get; set; }

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ControllerOptions.CheckName(errors, nameof(Name), Name);
        ControllerOptions.CheckNamespace(errors, nameof(NetworkNamespace), NetworkNamespace);
    }
}

/// <summary>What to probe: an address, by ICMP echo, or by TCP connect when a port is given.</summary>
public sealed class ProbeOptions : IValidatableOptions
{
    /// <summary>The IPv4 or IPv6 address. Required.</summary>
    public string Address { get; set; } = "";

    /// <summary>A TCP port to probe by connect instead of ICMP echo, 1 to 65535, or <see langword="null"/> for ICMP. The default is <see langword="null"/>.</summary>
    public int? Port { get; set; }

    /// <summary>The parsed address (valid options only).</summary>
    public IPAddress ParsedAddress => IPAddress.Parse(Address);

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        // IPAddress.TryParse also takes legacy forms such as "1.2.3"; a dotted IPv4 address needs its four parts.
        if (!IPAddress.TryParse(Address, out var parsed) || (parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && Address.Count(c => c == '.') != 3))
        {
            errors.Add(nameof(Address), $"'{Address}' is not an IP address (for example 192.0.2.11).");
        }

        if (Port is { } port)
        {
            errors.InRange(nameof(Port), port, 1, 65535);
        }
    }
}

/// <summary>A KVM host: its libvirt URI, an optional namespace to connect from, what to probe, and an optional migration data URI.</summary>
public sealed class ControllerHostOptions : IValidatableOptions
{
    /// <summary>The logical host name (1 to 64 letters, digits, '-', '_' or '.'). Required.</summary>
    public string Name { get; set; } = "";

    /// <summary>The libvirt URI (<c>qemu+tcp://…/system</c>, <c>qemu+ssh://…</c>, <c>qemu+tls://…</c>). Required.</summary>
    public string Uri { get; set; } = "";

    /// <summary>A named network namespace to open the connection from (needs root), or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? NetworkNamespace { get; set; }

    /// <summary>The data-channel URI migrations to this host use (for example <c>tcp://192.0.2.12</c>), or <see langword="null"/> for libvirt's choice. The default is <see langword="null"/>.</summary>
    public string? MigrationUri { get; set; }

    /// <summary>What the users' latency to this host is measured against. Required.</summary>
    public ProbeOptions? Probe { get; set; }

    /// <summary>libvirt keepalive interval, whole seconds (0 turns it off). The default is 5 seconds.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Unanswered keepalives before the connection counts as lost, 0 to 100. The default is 3.</summary>
    public int KeepAliveCount { get; set; } = 3;

    /// <summary>The libvirt host options these stand for (valid options only).</summary>
    public LibvirtHostOptions ToLibvirtOptions() => new()
    {
        Name = Name,
        Uri = new Uri(Uri, UriKind.Absolute),
        NetworkNamespace = NetworkNamespace,
        KeepAliveInterval = KeepAliveInterval,
        KeepAliveCount = KeepAliveCount,
    };

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var uriProblems = LibvirtUri.Problems(Uri);
        foreach (var problem in uriProblems)
        {
            errors.Add(nameof(Uri), problem);
        }

        // The rest of libvirt's own rules (name, namespace, keepalive), with a placeholder URI when it is bad (already reported).
        var libvirt = new LibvirtHostOptions
        {
            Name = Name,
            Uri = uriProblems.Count == 0 ? new Uri(Uri, UriKind.Absolute) : new Uri("qemu:///system"),
            NetworkNamespace = NetworkNamespace,
            KeepAliveInterval = KeepAliveInterval,
            KeepAliveCount = KeepAliveCount,
        };
        libvirt.Validate(errors);

        if (MigrationUri is not null && !System.Uri.TryCreate(MigrationUri, UriKind.Absolute, out _))
        {
            errors.Add(nameof(MigrationUri), $"'{MigrationUri}' is not an absolute URI (for example tcp://192.0.2.12).");
        }

        errors.Nested(nameof(Probe), Probe);
    }
}

/// <summary>A weighted user of a VM: a vantage point whose latency counts.</summary>
public sealed class VmUserOptions : IValidatableOptions
{
    /// <summary>The vantage point's name. Required.</summary>
    public string VantagePoint { get; set; } = "";

    /// <summary>The user's weight, above 0 and at most 1,000,000. The default is 1.</summary>
    public double Weight { get; set; } = 1;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.NotEmpty(nameof(VantagePoint), VantagePoint);
        errors.Require(double.IsFinite(Weight) && Weight > 0 && Weight <= 1_000_000, nameof(Weight), FormattableString.Invariant($"is {Weight}; the range is (0, 1000000]."));
    }
}

/// <summary>A VM (libvirt domain name), its weighted users, and optionally its own address to probe.</summary>
public sealed class ControllerVmOptions : IValidatableOptions
{
    /// <summary>The libvirt domain name. Required.</summary>
    public string Name { get; set; } = "";

    /// <summary>The VM's users; at least one.</summary>
    public IList<VmUserOptions> Users { get; set; } = [];

    /// <summary>The VM's own address, probed too (its samples show the users' latency to the VM itself), or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public ProbeOptions? Probe { get; set; }

    /// <summary>The pipeline's definition of this VM.</summary>
    public VmDefinition ToDefinition() => new(Name, [.. Users.Select(u => new VmUser(u.VantagePoint, u.Weight))]);

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ControllerOptions.CheckName(errors, nameof(Name), Name);
        if (Users is null || Users.Count == 0)
        {
            errors.Add(nameof(Users), "at least one user (a vantage point and a weight) is needed.");
        }
        else
        {
            errors.Each<VmUserOptions>(nameof(Users), [.. Users]);
        }

        errors.Nested(nameof(Probe), Probe, required: false);
    }
}

/// <summary>How the controller's own probes run.</summary>
public sealed class ProbingOptions : IValidatableOptions
{
    /// <summary>Time between two probes of one target. Range [50 ms, 1 hour]. The default is 1 second.</summary>
    public TimeSpan Period { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a probe waits for its answer. Range [10 ms, 2 minutes]. The default is 2 seconds.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.InRange(nameof(Period), Period, TimeSpan.FromMilliseconds(50), TimeSpan.FromHours(1));
        errors.InRange(nameof(Timeout), Timeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(2));
    }
}

/// <summary>Samples from <c>cloudlets-agent</c>s through an MQTT v5 broker (topic <c>cloudlets/v1/samples/+</c>).</summary>
public sealed class ControllerMqttOptions : IValidatableOptions
{
    /// <summary>The broker: <c>mqtt://HOST[:PORT]</c> or <c>mqtts://HOST[:PORT]</c>. Required.</summary>
    public Uri? Broker { get; set; }

    /// <summary>The broker user name, or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? Username { get; set; }

    /// <summary>A file whose first line is the broker password (never in the configuration itself), or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? PasswordFile { get; set; }

    /// <summary>A PEM file with the CA of the broker's certificate, or <see langword="null"/> for the system's trust store. The default is <see langword="null"/>.</summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>The vantage points accepted; others are dropped (counted). The default, none, accepts every vantage point the broker lets publish.</summary>
    public IList<string> VantagePoints { get; set; } = [];

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (Broker is null || !Broker.IsAbsoluteUri || Broker.Scheme is not ("mqtt" or "mqtts"))
        {
            errors.Add(nameof(Broker), $"is '{Broker}'; use mqtt://HOST[:PORT] or mqtts://HOST[:PORT].");
        }

        if (!string.IsNullOrEmpty(PasswordFile) && !File.Exists(PasswordFile))
        {
            errors.Add(nameof(PasswordFile), $"'{PasswordFile}' does not exist.");
        }

        if (!string.IsNullOrEmpty(CaCertificateFile) && !File.Exists(CaCertificateFile))
        {
            errors.Add(nameof(CaCertificateFile), $"'{CaCertificateFile}' does not exist.");
        }

        for (var i = 0; i < (VantagePoints?.Count ?? 0); i++)
        {
            ControllerOptions.CheckName(errors, ControllerOptions.Path($"VantagePoints[{i}]"), VantagePoints![i]);
        }
    }
}

/// <summary>The HTTP endpoint: <c>/metrics</c>, <c>/healthz</c>, <c>/readyz</c> and the operator API under <c>/api/v1</c>.</summary>
public sealed class HttpEndpointOptions : IValidatableOptions
{
    /// <summary>The default address: loopback only.</summary>
    public const string DefaultUrls = "http://127.0.0.1:9464";

    /// <summary>Where to listen, separated by ';' (Kestrel's URL syntax, http only). The default is <c>http://127.0.0.1:9464</c>: loopback only.</summary>
    public string Urls { get; set; } = DefaultUrls;

    /// <summary>
    /// The bearer token the state-changing operator calls require, at least 16 characters, or
    /// <see langword="null"/>. Prefer <see cref="TokenFile"/>, which keeps it out of the configuration.
    /// With neither, state-changing calls are refused (403). The default is <see langword="null"/>.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>A file whose first line is the bearer token (see <see cref="Token"/>), or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? TokenFile { get; set; }

    /// <summary>The token in effect: <see cref="Token"/>, else the first line of <see cref="TokenFile"/>, else <see langword="null"/>.</summary>
    public string? ResolveToken() =>
        !string.IsNullOrEmpty(Token) ? Token
        : !string.IsNullOrEmpty(TokenFile) ? File.ReadLines(TokenFile).FirstOrDefault()?.Trim()
        : null;

    /// <summary>The URLs as a list.</summary>
    public IReadOnlyList<string> UrlList => [.. (Urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (UrlList.Count == 0)
        {
            errors.Add(nameof(Urls), "is empty; give at least one URL such as http://127.0.0.1:9464.");
        }

        foreach (var url in UrlList)
        {
            if (!System.Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.AbsolutePath != "/" || uri.Port is < 0 or > 65535)
            {
                errors.Add(nameof(Urls), $"'{url}' is not an http://ADDRESS:PORT URL.");
            }
        }

        if (!string.IsNullOrEmpty(Token) && Token.Length < 16)
        {
            errors.Add(nameof(Token), $"is {Token.Length} characters; a token needs at least 16.");
        }

        if (!string.IsNullOrEmpty(Token) && !string.IsNullOrEmpty(TokenFile))
        {
            errors.Add(nameof(TokenFile), "and Token are both set; set one.");
        }

        if (!string.IsNullOrEmpty(TokenFile))
        {
            string? line = null;
            try
            {
                line = File.ReadLines(TokenFile).FirstOrDefault()?.Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                errors.Add(nameof(TokenFile), $"'{TokenFile}' cannot be read: {ex.Message}");
            }

            if (line is { Length: < 16 })
            {
                errors.Add(nameof(TokenFile), $"'{TokenFile}' holds a token of {line.Length} characters; a token needs at least 16.");
            }
        }
    }
}

/// <summary>The audit log: JSON lines of every decision change, migration, operator action and configuration reload.</summary>
public sealed class AuditLogOptions : IValidatableOptions
{
    /// <summary>The file, or <see langword="null"/> (or empty) for no audit log. Rotated files are <c>PATH.1</c> (newest) to <c>PATH.N</c>. The default is <see langword="null"/>.</summary>
    public string? Path { get; set; }

    /// <summary>The size at which the file is rotated. Range [4 KiB, 1 GiB]. The default is 10 MiB.</summary>
    public long MaxFileBytes { get; set; } = 10L * 1024 * 1024;

    /// <summary>Rotated files kept besides the current one. Range [1, 100]. The default is 5.</summary>
    public int MaxFiles { get; set; } = 5;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (!string.IsNullOrEmpty(Path))
        {
            var full = System.IO.Path.GetFullPath(Path);
            var folder = System.IO.Path.GetDirectoryName(full);
            if (string.IsNullOrEmpty(System.IO.Path.GetFileName(full)) || folder is null || !Directory.Exists(folder))
            {
                errors.Add(nameof(Path), $"'{Path}' is not a file in an existing folder.");
            }
        }

        errors.InRange(nameof(MaxFileBytes), MaxFileBytes, 4096, 1L << 30);
        errors.InRange(nameof(MaxFiles), MaxFiles, 1, 100);
    }
}

/// <summary>What the health checks consider fresh.</summary>
public sealed class HealthOptions : IValidatableOptions
{
    /// <summary>A vantage point's samples of a host older than this are stale. Range [1 s, 1 hour]. The default is 10 seconds.</summary>
    public TimeSpan MaxSampleAge { get; set; } = TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.InRange(nameof(MaxSampleAge), MaxSampleAge, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
    }
}
