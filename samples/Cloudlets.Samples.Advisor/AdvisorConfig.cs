using Cloudlets.Core.Options;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Libvirt;

namespace Cloudlets.Samples.Advisor;

/// <summary>The configuration file is not valid; <see cref="Errors"/> says every thing that is wrong, each with its place.</summary>
internal sealed class AdvisorConfigException : Exception
{
    public AdvisorConfigException(string source, IReadOnlyList<string> errors)
        : base($"{source} is not a valid advisor configuration:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors))
    {
        Errors = errors;
    }

    public AdvisorConfigException()
        : this("the configuration", ["(no details)"])
    {
    }

    public AdvisorConfigException(string message)
        : this("the configuration", [message])
    {
    }

    public AdvisorConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [message];
    }

    /// <summary>Each error, prefixed with where it is (for example <c>hosts[1].uri</c>).</summary>
    public IReadOnlyList<string> Errors { get; } = [];
}

/// <summary>Where probes run from: this machine, optionally inside a named network namespace.</summary>
internal sealed record VantagePointConfig(string Name, string? NetworkNamespace);

/// <summary>What to probe: an address, by ICMP echo, or by TCP connect when a port is given.</summary>
internal sealed record ProbeConfig(IPAddress Address, int? Port);

/// <summary>A KVM host: its libvirt URI, an optional namespace to connect from, what to probe, and an optional migration data URI.</summary>
internal sealed record HostConfig(string Name, Uri Uri, string? NetworkNamespace, ProbeConfig Probe, Uri? MigrationUri);

/// <summary>A VM (libvirt domain name), its weighted users, and optionally its own address to probe.</summary>
internal sealed record VmConfig(string Name, IReadOnlyList<VmUser> Users, ProbeConfig? Probe);

/// <summary>A validated advisor configuration.</summary>
internal sealed record AdvisorConfig(
    IReadOnlyList<VantagePointConfig> VantagePoints,
    IReadOnlyList<HostConfig> Hosts,
    IReadOnlyList<VmConfig> Vms,
    TimeSpan ProbePeriod,
    TimeSpan ProbeTimeout,
    MigrationPipelineOptions Pipeline,
    LowestLatencyPolicyOptions Policy)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false) },
    };

    /// <summary>Reads and validates a configuration file.</summary>
    /// <exception cref="AdvisorConfigException">The file cannot be read or is not valid.</exception>
    public static AdvisorConfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new AdvisorConfigException(path, [$"cannot be read: {ex.Message}"]);
        }

        return Parse(text, path);
    }

    /// <summary>Parses and validates a configuration; every error is reported at once.</summary>
    /// <exception cref="AdvisorConfigException">The text is not valid JSON or not a valid configuration.</exception>
    public static AdvisorConfig Parse(string json, string source = "the configuration")
    {
        ArgumentNullException.ThrowIfNull(json);
        ConfigFile? file;
        try
        {
            file = JsonSerializer.Deserialize<ConfigFile>(json, Json);
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is { } line ? $"line {(line + 1).ToString(CultureInfo.InvariantCulture)}" : "";
            var path = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "" : ex.Path[2..];
            throw new AdvisorConfigException(source, [$"{path}{(path.Length > 0 && where.Length > 0 ? " (" + where + ")" : where)}: {FirstSentence(ex.Message)}"]);
        }

        if (file is null)
        {
            throw new AdvisorConfigException(source, ["the file holds null, not an object"]);
        }

        var errors = new List<string>();
        var vantagePoints = ValidateVantagePoints(file.VantagePoints, errors);
        var hosts = ValidateHosts(file.Hosts, errors);
        var vms = ValidateVms(file.Vms, vantagePoints, errors);

        var probing = file.Probing ?? new ProbingFile();
        var period = Seconds(probing.PeriodSeconds, 1, "probing.periodSeconds", 0.05, 3600, errors);
        var timeout = Seconds(probing.TimeoutSeconds, 2, "probing.timeoutSeconds", 0.01, 120, errors);

        var pipeline = new MigrationPipelineOptions();
        if (file.Pipeline is { } p)
        {
            pipeline.EvaluationInterval = Seconds(p.EvaluationIntervalSeconds, pipeline.EvaluationInterval.TotalSeconds, "pipeline.evaluationIntervalSeconds", 0, double.MaxValue, errors);
            pipeline.PlacementRefreshInterval = Seconds(p.PlacementRefreshIntervalSeconds, pipeline.PlacementRefreshInterval.TotalSeconds, "pipeline.placementRefreshIntervalSeconds", 0, double.MaxValue, errors);
            pipeline.HostTimeout = Seconds(p.HostTimeoutSeconds, pipeline.HostTimeout.TotalSeconds, "pipeline.hostTimeoutSeconds", 0, double.MaxValue, errors);
            pipeline.SampleWindow = p.SampleWindow ?? pipeline.SampleWindow;
        }

        var pipelineErrors = new Cloudlets.Core.Options.OptionsErrors();
        pipeline.Validate(pipelineErrors);
        errors.AddRange(pipelineErrors.Errors.Select(e => "pipeline: " + e));

        var policy = new LowestLatencyPolicyOptions();
        if (file.Policy is { } o)
        {
            policy.Statistic = o.Statistic ?? policy.Statistic;
            policy.UserPercentile = o.UserPercentile ?? policy.UserPercentile;
            policy.MinAbsoluteGainMs = o.MinAbsoluteGainMs ?? policy.MinAbsoluteGainMs;
            policy.MinRelativeGain = o.MinRelativeGain ?? policy.MinRelativeGain;
            policy.ConfirmationWindows = o.ConfirmationWindows ?? policy.ConfirmationWindows;
            policy.Cooldown = Seconds(o.CooldownSeconds, policy.Cooldown.TotalSeconds, "policy.cooldownSeconds", -1, double.MaxValue, errors);
            policy.MaxSampleAge = Seconds(o.MaxSampleAgeSeconds, policy.MaxSampleAge.TotalSeconds, "policy.maxSampleAgeSeconds", 0, double.MaxValue, errors);
            policy.MaxLossRate = o.MaxLossRate ?? policy.MaxLossRate;
        }

        var policyErrors = new OptionsErrors();
        policy.Validate(policyErrors);
        errors.AddRange(policyErrors.Errors.Select(e => "policy: " + e));

        if (errors.Count > 0)
        {
            throw new AdvisorConfigException(source, errors);
        }

        return new AdvisorConfig(vantagePoints, hosts, vms, period, timeout, pipeline, policy);
    }

    /// <summary>The probe target name that stands for a host.</summary>
    public static string HostTarget(string host) => "host:" + host;

    /// <summary>The probe target name that stands for a VM's own address.</summary>
    public static string VmTarget(string vm) => "vm:" + vm;

    private static List<VantagePointConfig> ValidateVantagePoints(List<VantagePointFile?>? items, List<string> errors)
    {
        var result = new List<VantagePointConfig>();
        if (items is null || items.Count == 0)
        {
            errors.Add("vantagePoints: at least one vantage point is needed (where the probes run from)");
            return result;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var at = $"vantagePoints[{i.ToString(CultureInfo.InvariantCulture)}]";
            if (items[i] is not { } item)
            {
                errors.Add($"{at}: is null");
                continue;
            }

            var ok = CheckName(item.Name, at + ".name", names, errors);
            ok &= CheckNamespace(item.NetworkNamespace, at + ".networkNamespace", errors);
            if (ok)
            {
                result.Add(new VantagePointConfig(item.Name!, item.NetworkNamespace));
            }
        }

        return result;
    }

    private static List<HostConfig> ValidateHosts(List<HostFile?>? items, List<string> errors)
    {
        var result = new List<HostConfig>();
        if (items is null || items.Count == 0)
        {
            errors.Add("hosts: at least one host is needed");
            return result;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var at = $"hosts[{i.ToString(CultureInfo.InvariantCulture)}]";
            if (items[i] is not { } item)
            {
                errors.Add($"{at}: is null");
                continue;
            }

            var ok = CheckName(item.Name, at + ".name", names, errors);
            ok &= CheckNamespace(item.NetworkNamespace, at + ".networkNamespace", errors);
            Uri? uri = null;
            var uriProblems = LibvirtUri.Problems(item.Uri);
            if (uriProblems.Count > 0)
            {
                errors.AddRange(uriProblems.Select(p => $"{at}.uri: {p}"));
                ok = false;
            }
            else
            {
                uri = new Uri(item.Uri!, UriKind.Absolute);
            }

            Uri? migrationUri = null;
            if (item.MigrationUri is not null && !Uri.TryCreate(item.MigrationUri, UriKind.Absolute, out migrationUri))
            {
                errors.Add($"{at}.migrationUri: '{item.MigrationUri}' is not an absolute URI (for example tcp://192.0.2.11)");
                ok = false;
            }

            var probe = CheckProbe(item.Probe, at + ".probe", required: true, errors);
            if (ok && probe is not null)
            {
                result.Add(new HostConfig(item.Name!, uri!, item.NetworkNamespace, probe, migrationUri));
            }
        }

        return result;
    }

    private static List<VmConfig> ValidateVms(List<VmFile?>? items, List<VantagePointConfig> vantagePoints, List<string> errors)
    {
        var result = new List<VmConfig>();
        if (items is null || items.Count == 0)
        {
            errors.Add("vms: at least one VM is needed");
            return result;
        }

        var known = vantagePoints.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            var at = $"vms[{i.ToString(CultureInfo.InvariantCulture)}]";
            if (items[i] is not { } item)
            {
                errors.Add($"{at}: is null");
                continue;
            }

            var ok = CheckName(item.Name, at + ".name", names, errors);
            var users = new List<VmUser>();
            if (item.Users is null || item.Users.Count == 0)
            {
                errors.Add($"{at}.users: at least one user (a vantage point and a weight) is needed");
                ok = false;
            }
            else
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                for (var u = 0; u < item.Users.Count; u++)
                {
                    var uat = $"{at}.users[{u.ToString(CultureInfo.InvariantCulture)}]";
                    var user = item.Users[u];
                    if (user is null || string.IsNullOrEmpty(user.VantagePoint))
                    {
                        errors.Add($"{uat}.vantagePoint: is missing");
                        ok = false;
                        continue;
                    }

                    if (!known.Contains(user.VantagePoint))
                    {
                        errors.Add($"{uat}.vantagePoint: '{user.VantagePoint}' is not one of vantagePoints ({string.Join(", ", known.Order(StringComparer.Ordinal))})");
                        ok = false;
                    }
                    else if (!seen.Add(user.VantagePoint))
                    {
                        errors.Add($"{uat}.vantagePoint: '{user.VantagePoint}' is listed twice for this VM");
                        ok = false;
                    }

                    var weight = user.Weight ?? 1.0;
                    if (!double.IsFinite(weight) || weight <= 0 || weight > 1e6)
                    {
                        errors.Add($"{uat}.weight: {weight.ToString(CultureInfo.InvariantCulture)} is not a weight above 0 and at most 1000000");
                        ok = false;
                    }

                    users.Add(new VmUser(user.VantagePoint, weight));
                }
            }

            var probe = CheckProbe(item.Probe, at + ".probe", required: false, errors);
            if (item.Probe is not null && probe is null)
            {
                ok = false;
            }

            if (ok)
            {
                result.Add(new VmConfig(item.Name!, users, probe));
            }
        }

        return result;
    }

    private static bool CheckName(string? name, string at, HashSet<string> names, List<string> errors)
    {
        if (string.IsNullOrEmpty(name))
        {
            errors.Add($"{at}: is missing");
            return false;
        }

        if (name.Length > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            errors.Add($"{at}: '{name}' is not a valid name (1 to 64 letters, digits, '-', '_' or '.')");
            return false;
        }

        if (!names.Add(name))
        {
            errors.Add($"{at}: '{name}' is used twice");
            return false;
        }

        return true;
    }

    private static bool CheckNamespace(string? name, string at, List<string> errors)
    {
        if (name is null)
        {
            return true;
        }

        try
        {
            Probing.Linux.NetworkNamespace.ValidateName(name);
            return true;
        }
        catch (ArgumentException)
        {
            errors.Add($"{at}: '{name}' is not a valid network namespace name (1 to 64 letters, digits, '-', '_' or '.')");
            return false;
        }
    }

    private static ProbeConfig? CheckProbe(ProbeFile? probe, string at, bool required, List<string> errors)
    {
        if (probe is null)
        {
            if (required)
            {
                errors.Add($"{at}: is missing (an address, and a port to probe by TCP connect)");
            }

            return null;
        }

        var ok = true;
        IPAddress? address = null;
        if (string.IsNullOrEmpty(probe.Address))
        {
            errors.Add($"{at}.address: is missing");
            ok = false;
        }
        else if (!IPAddress.TryParse(probe.Address, out address))
        {
            errors.Add($"{at}.address: '{probe.Address}' is not an IP address");
            ok = false;
        }

        if (probe.Port is { } port && port is < 1 or > 65535)
        {
            errors.Add($"{at}.port: {port.ToString(CultureInfo.InvariantCulture)} is not a TCP port (1 to 65535)");
            ok = false;
        }

        return ok ? new ProbeConfig(address!, probe.Port) : null;
    }

    private static TimeSpan Seconds(double? value, double fallback, string at, double min, double max, List<string> errors)
    {
        var seconds = value ?? fallback;
        if (!double.IsFinite(seconds) || seconds <= min || seconds > max || seconds > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            errors.Add($"{at}: {seconds.ToString(CultureInfo.InvariantCulture)} is out of range ({(min < 0 ? "at least 0" : "above " + min.ToString(CultureInfo.InvariantCulture))}{(max < double.MaxValue ? " and at most " + max.ToString(CultureInfo.InvariantCulture) : "")} seconds)");
            return TimeSpan.FromSeconds(fallback);
        }

        return TimeSpan.FromSeconds(seconds);
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end > 0 ? message[..(end + 1)] : message;
    }

    // The file as written: everything optional here, so validation can say what is missing.
    private sealed class ConfigFile
    {
        public List<VantagePointFile?>? VantagePoints { get; set; }
        public List<HostFile?>? Hosts { get; set; }
        public List<VmFile?>? Vms { get; set; }
        public ProbingFile? Probing { get; set; }
        public PipelineFile? Pipeline { get; set; }
        public PolicyFile? Policy { get; set; }
    }

    private sealed class VantagePointFile
    {
        public string? Name { get; set; }
        public string? NetworkNamespace { get; set; }
    }

    private sealed class ProbeFile
    {
        public string? Address { get; set; }
        public int? Port { get; set; }
    }

    private sealed class HostFile
    {
        public string? Name { get; set; }
        public string? Uri { get; set; }
        public string? NetworkNamespace { get; set; }
        public ProbeFile? Probe { get; set; }
        public string? MigrationUri { get; set; }
    }

    private sealed class UserFile
    {
        public string? VantagePoint { get; set; }
        public double? Weight { get; set; }
    }

    private sealed class VmFile
    {
        public string? Name { get; set; }
        public List<UserFile?>? Users { get; set; }
        public ProbeFile? Probe { get; set; }
    }

    private sealed class ProbingFile
    {
        public double? PeriodSeconds { get; set; }
        public double? TimeoutSeconds { get; set; }
    }

    private sealed class PipelineFile
    {
        public double? EvaluationIntervalSeconds { get; set; }
        public double? PlacementRefreshIntervalSeconds { get; set; }
        public double? HostTimeoutSeconds { get; set; }
        public int? SampleWindow { get; set; }
    }

    private sealed class PolicyFile
    {
        public LatencyStatistic? Statistic { get; set; }
        public double? UserPercentile { get; set; }
        public double? MinAbsoluteGainMs { get; set; }
        public double? MinRelativeGain { get; set; }
        public int? ConfirmationWindows { get; set; }
        public double? CooldownSeconds { get; set; }
        public double? MaxSampleAgeSeconds { get; set; }
        public double? MaxLossRate { get; set; }
    }
}
