using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cloudlets.Lab;

namespace Cloudlets.Samples.Demo;

/// <summary>A fleet scenario file that is not valid; <see cref="Field"/> names the member at fault.</summary>
internal sealed class FleetScenarioException(string source, string field, string problem)
    : FormatException($"The fleet scenario '{source}': {field}: {problem}")
{
    /// <summary>The JSON path of the wrong member, for example <c>acts[1].delaysMs.site-2</c>.</summary>
    public string Field { get; } = field;
}

/// <summary>
/// The fleet scenario (<c>"kind": "fleet"</c>): a lab of <see cref="Hosts"/> cloudlets and <see cref="Sites"/> user
/// sites, one VM per entry of <see cref="Vms"/> (the lab's guest-1, guest-2, … in that order) with its users, and acts,
/// each a complete latency matrix (one-way delay in ms per site and host, a row per site in host order) that holds until
/// the VMs have settled on the act's best feasible hosts (or the act's time is up).
/// </summary>
internal sealed record FleetScenario
{
    public const string Kind = "fleet";

    [JsonPropertyName("kind")]
    public string? KindName { get; init; }

    public string? Description { get; init; }

    public int Hosts { get; init; }

    public int Sites { get; init; }

    /// <summary>The pipeline's vCPU overcommit: a host fits floor(CPUs × this) vCPUs of VMs.</summary>
    public double VCpuOvercommit { get; init; } = 1;

    public IReadOnlyList<FleetVm> Vms { get; init; } = [];

    public IReadOnlyList<FleetAct> Acts { get; init; } = [];

    /// <summary>How long an act holds after the VMs reached its best feasible hosts and nothing moved.</summary>
    public double SettleSeconds { get; init; } = 8;

    /// <summary>The longest an act may take before the next one starts anyway (and the run ends with exit code 4).</summary>
    public double ActMaxSeconds { get; init; } = 90;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Whether the file is a JSON object whose <c>kind</c> is <c>"fleet"</c> (a single-VM scenario has no kind).</summary>
    public static bool IsFleet(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return document.RootElement.ValueKind == JsonValueKind.Object &&
                   document.RootElement.TryGetProperty("kind", out var kind) && kind.ValueKind == JsonValueKind.String && kind.GetString() == Kind;
        }
        catch (JsonException)
        {
            return false; // the single-VM loader reports the syntax error
        }
    }

    /// <exception cref="FleetScenarioException">The file is not a valid fleet scenario.</exception>
    public static FleetScenario Load(string path) => Parse(File.ReadAllText(path), path);

    /// <exception cref="FleetScenarioException">The text is not a valid fleet scenario.</exception>
    public static FleetScenario Parse(string json, string source)
    {
        FleetScenario? scenario;
        try
        {
            scenario = JsonSerializer.Deserialize<FleetScenario>(json, Json);
        }
        catch (JsonException ex)
        {
            throw new FleetScenarioException(source, ex.Path ?? "file", $"not valid: {ex.Message}");
        }

        return (scenario ?? throw new FleetScenarioException(source, "file", "empty.")).Validated(source);
    }

    private FleetScenario Validated(string source)
    {
        FleetScenarioException Error(string field, string problem) => new(source, field, problem);
        if (KindName != Kind)
        {
            throw Error("kind", $"must be \"{Kind}\".");
        }

        if (Hosts < 1 || Hosts > LabNaming.MaxHosts)
        {
            throw Error("hosts", string.Create(CultureInfo.InvariantCulture, $"{Hosts}; give 1 to {LabNaming.MaxHosts}."));
        }

        if (Sites < 1 || Sites > LabNaming.MaxSites)
        {
            throw Error("sites", string.Create(CultureInfo.InvariantCulture, $"{Sites}; give 1 to {LabNaming.MaxSites}."));
        }

        if (!double.IsFinite(VCpuOvercommit) || VCpuOvercommit <= 0 || VCpuOvercommit > 64)
        {
            throw Error("vCpuOvercommit", "must be in (0, 64].");
        }

        if (Vms.Count is 0 or > FleetAssignment.MaxVms)
        {
            throw Error("vms", string.Create(CultureInfo.InvariantCulture, $"{Vms.Count} VMs; give 1 to {FleetAssignment.MaxVms}."));
        }

        for (var v = 0; v < Vms.Count; v++)
        {
            var vm = Vms[v];
            var field = string.Create(CultureInfo.InvariantCulture, $"vms[{v}]");
            if (!IsHost(vm.InitialHost))
            {
                throw Error(field + ".initialHost", $"'{vm.InitialHost}' is not one of cloudlet-1 … cloudlet-{Hosts}.");
            }

            if (vm.Users.Count == 0)
            {
                throw Error(field + ".users", "a VM needs at least one user.");
            }

            for (var u = 0; u < vm.Users.Count; u++)
            {
                var user = vm.Users[u];
                var userField = string.Create(CultureInfo.InvariantCulture, $"{field}.users[{u}]");
                if (!IsSite(user.Site))
                {
                    throw Error(userField + ".site", $"'{user.Site}' is not one of site-1 … site-{Sites}.");
                }

                if (!double.IsFinite(user.Weight) || user.Weight <= 0)
                {
                    throw Error(userField + ".weight", "must be a number greater than 0.");
                }
            }

            if (vm.Users.Select(u => u.Site).Distinct(StringComparer.Ordinal).Count() != vm.Users.Count)
            {
                throw Error(field + ".users", "a site is listed twice.");
            }
        }

        if (Acts.Count == 0)
        {
            throw Error("acts", "give at least one act.");
        }

        for (var a = 0; a < Acts.Count; a++)
        {
            var act = Acts[a];
            var field = string.Create(CultureInfo.InvariantCulture, $"acts[{a}].delaysMs");
            for (var s = 1; s <= Sites; s++)
            {
                var site = LabNaming.SiteName(s);
                if (!act.DelaysMs.TryGetValue(site, out var row))
                {
                    throw Error(field, $"no row for {site} (the matrix is complete: a row per site, a delay per host).");
                }

                if (row.Count != Hosts)
                {
                    throw Error(field + "." + site, string.Create(CultureInfo.InvariantCulture, $"{row.Count} delays; give one per host ({Hosts})."));
                }

                if (row.Any(ms => !double.IsFinite(ms) || ms < 0 || ms > 10_000))
                {
                    throw Error(field + "." + site, "every delay is a number of milliseconds from 0 to 10000.");
                }
            }

            if (act.DelaysMs.Keys.FirstOrDefault(k => !IsSite(k)) is { } unknown)
            {
                throw Error(field + "." + unknown, $"not one of site-1 … site-{Sites}.");
            }
        }

        if (SettleSeconds is < 0 or > 3600 || ActMaxSeconds is <= 0 or > 3600)
        {
            throw Error("settleSeconds", "settleSeconds must be 0–3600 and actMaxSeconds 1–3600.");
        }

        return this;
    }

    private bool IsHost(string name) => LabNaming.TryParseHostName(name, out var i) && i <= Hosts;

    private bool IsSite(string name) => LabNaming.TryParseSiteName(name, out var i) && i <= Sites;

    /// <summary>The act's delay from <paramref name="site"/> to host index <paramref name="host"/> (0-based).</summary>
    public static double Delay(FleetAct act, string site, int host) => act.DelaysMs[site][host];
}

internal sealed record FleetVm
{
    public string InitialHost { get; init; } = "";

    public IReadOnlyList<FleetUser> Users { get; init; } = [];
}

internal sealed record FleetUser
{
    public string Site { get; init; } = "";

    public double Weight { get; init; } = 1;
}

internal sealed record FleetAct
{
    public string Label { get; init; } = "";

    /// <summary>Per site, the one-way delay in ms to each host (cloudlet-1 first).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<double>> DelaysMs { get; init; } = new Dictionary<string, IReadOnlyList<double>>();
}
