using System.Globalization;
using System.Text;
using System.Text.Json;
using Cloudlets.Core.Decisions;

namespace Cloudlets.Simulation;

/// <summary>One problem in a fleet file: where (a JSON path such as <c>vms[2].users[0].weight</c>, and a line when known) and what.</summary>
/// <param name="Path">The JSON path of the offending field.</param>
/// <param name="Message">What is wrong and what is allowed.</param>
/// <param name="Line">The 1-based line, when the JSON itself is malformed; otherwise <see langword="null"/>.</param>
public sealed record FleetFormatError(string Path, string Message, long? Line = null)
{
    /// <inheritdoc />
    public override string ToString() => (Line is { } l ? string.Create(CultureInfo.InvariantCulture, $"line {l}: ") : "") + Path + ": " + Message;
}

/// <summary>A fleet file is malformed or inconsistent; <see cref="Errors"/> lists every problem found.</summary>
public sealed class FleetFormatException : FormatException
{
    /// <summary>Creates the exception for a file and its errors.</summary>
    public FleetFormatException(string source, IReadOnlyList<FleetFormatError> errors)
        : base(Describe(source, errors))
    {
        FileName = source;
        Errors = errors;
    }

    /// <summary>Creates the exception without listed errors.</summary>
    public FleetFormatException()
        : this("fleet", [])
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FleetFormatException(string message)
        : base(message)
    {
        FileName = "fleet";
        Errors = [];
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public FleetFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        FileName = "fleet";
        Errors = [];
    }

    /// <summary>The file (or source name) that was read.</summary>
    public string FileName { get; }

    /// <summary>Every problem, in document order.</summary>
    public IReadOnlyList<FleetFormatError> Errors { get; }

    private static string Describe(string source, IReadOnlyList<FleetFormatError> errors)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{source} is not a valid fleet file ({errors.Count} error{(errors.Count == 1 ? "" : "s")}):");
        foreach (var e in errors)
        {
            text.Append("\n  ").Append(e);
        }

        return text.ToString();
    }
}

/// <summary>
/// Reads and writes the fleet file, format version 1:
/// <code>
/// {
///   "version": 1,
///   "hosts": [ { "name": "a", "memoryMiB": 8192, "vcpus": 8 } ],
///   "vms": [ { "name": "vm1", "memoryMiB": 1024, "vcpus": 1, "host": "a",
///              "users": [ { "vantagePoint": "edge-1", "weight": 1 } ] } ],
///   "migration": { "fixedSeconds": 2, "bandwidthMiBps": 100, "downtimeMs": 200 },
///   "cost": { "migrationPenaltyMsSeconds": 20000, "unreachableRttMs": 1000 }
/// }
/// </code>
/// <c>version</c> may be omitted (1); <c>weight</c> defaults to 1, <c>unreachableRttMs</c> to 1000.
/// Every error is collected with its path before anything is returned.
/// </summary>
public static class FleetJson
{
    /// <summary>The format version this reader understands and the writer writes.</summary>
    public const int Version = 1;

    private static readonly JsonDocumentOptions DocumentOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>Reads a fleet file.</summary>
    /// <exception cref="FleetFormatException">The file is malformed or inconsistent (every problem listed).</exception>
    public static Fleet Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses fleet JSON text; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="FleetFormatException">The text is malformed or inconsistent (every problem listed).</exception>
    public static Fleet Parse(string json, string source = "fleet")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, DocumentOptions);
        }
        catch (JsonException ex)
        {
            throw new FleetFormatException(source, [new FleetFormatError(ex.Path ?? "$", "is not valid JSON: " + ex.Message, (ex.LineNumber ?? 0) + 1)]);
        }

        using (document)
        {
            var errors = new List<FleetFormatError>();
            var fleet = Bind(document.RootElement, errors);
            if (errors.Count > 0)
            {
                throw new FleetFormatException(source, errors);
            }

            return fleet!;
        }
    }

    /// <summary>Writes a fleet as version-1 JSON (indented).</summary>
    public static string Write(Fleet fleet)
    {
        ArgumentNullException.ThrowIfNull(fleet);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", Version);
            w.WriteStartArray("hosts");
            foreach (var h in fleet.Hosts)
            {
                w.WriteStartObject();
                w.WriteString("name", h.Name);
                w.WriteNumber("memoryMiB", h.MemoryMiB);
                w.WriteNumber("vcpus", h.VCpus);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("vms");
            foreach (var v in fleet.Vms)
            {
                w.WriteStartObject();
                w.WriteString("name", v.Name);
                w.WriteNumber("memoryMiB", v.MemoryMiB);
                w.WriteNumber("vcpus", v.VCpus);
                w.WriteString("host", v.Host);
                w.WriteStartArray("users");
                foreach (var u in v.Users)
                {
                    w.WriteStartObject();
                    w.WriteString("vantagePoint", u.VantagePoint);
                    w.WriteNumber("weight", u.Weight);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("migration");
            w.WriteNumber("fixedSeconds", fleet.Migration.FixedSeconds);
            w.WriteNumber("bandwidthMiBps", fleet.Migration.BandwidthMiBps);
            w.WriteNumber("downtimeMs", fleet.Migration.DowntimeMs);
            w.WriteEndObject();
            w.WriteStartObject("cost");
            w.WriteNumber("migrationPenaltyMsSeconds", fleet.Cost.MigrationPenaltyMsSeconds);
            w.WriteNumber("unreachableRttMs", fleet.Cost.UnreachableRttMs);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static Fleet? Bind(JsonElement root, List<FleetFormatError> errors)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new FleetFormatError("$", "must be a JSON object."));
            return null;
        }

        if (root.TryGetProperty("version", out var version) && (version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out var v) || v != Version))
        {
            errors.Add(new FleetFormatError("version", string.Create(CultureInfo.InvariantCulture, $"is {version}; this reader understands version {Version}.")));
        }

        var hosts = new List<SimulatedHost>();
        var hostNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (item, path) in Items(root, "hosts", errors, required: true))
        {
            var name = String(item, path, "name", errors);
            var memory = Integer(item, path, "memoryMiB", errors, 1, 1L << 40);
            var vcpus = (int)Integer(item, path, "vcpus", errors, 1, 1 << 20);
            if (name is not null && !hostNames.Add(name))
            {
                errors.Add(new FleetFormatError(path + ".name", $"'{name}' appears twice."));
            }

            hosts.Add(new SimulatedHost(name ?? "", memory, vcpus));
        }

        var vms = new List<SimulatedVm>();
        var vmNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (item, path) in Items(root, "vms", errors, required: true))
        {
            var name = String(item, path, "name", errors);
            var memory = Integer(item, path, "memoryMiB", errors, 1, 1L << 40);
            var vcpus = (int)Integer(item, path, "vcpus", errors, 1, 1 << 20);
            var host = String(item, path, "host", errors);
            if (name is not null && !vmNames.Add(name))
            {
                errors.Add(new FleetFormatError(path + ".name", $"'{name}' appears twice."));
            }

            if (host is not null && !hostNames.Contains(host))
            {
                errors.Add(new FleetFormatError(path + ".host", $"'{host}' is not one of the hosts."));
            }

            var users = new List<VmUser>();
            var vantage = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (user, userPath) in Items(item, "users", errors, required: true, prefix: path + "."))
            {
                var point = String(user, userPath, "vantagePoint", errors);
                var weight = user.TryGetProperty("weight", out _) ? Number(user, userPath, "weight", errors, double.Epsilon, 1e9) : 1.0;
                if (point is not null && !vantage.Add(point))
                {
                    errors.Add(new FleetFormatError(userPath + ".vantagePoint", $"'{point}' appears twice for this VM."));
                }

                users.Add(new VmUser(point ?? "", weight));
            }

            if (users.Count == 0 && item.TryGetProperty("users", out var u) && u.ValueKind == JsonValueKind.Array)
            {
                errors.Add(new FleetFormatError(path + ".users", "must name at least one user."));
            }

            vms.Add(new SimulatedVm(name ?? "", memory, vcpus, host ?? "", users));
        }

        MigrationModel migration = new(0, 1, 0);
        if (Object(root, "migration", errors) is { } m)
        {
            migration = new MigrationModel(
                Number(m, "migration", "fixedSeconds", errors, 0, 86_400),
                Number(m, "migration", "bandwidthMiBps", errors, 1e-3, 1e9),
                Number(m, "migration", "downtimeMs", errors, 0, 3_600_000));
        }

        CostModel cost = new(0);
        if (Object(root, "cost", errors) is { } c)
        {
            cost = new CostModel(
                Number(c, "cost", "migrationPenaltyMsSeconds", errors, 0, 1e12),
                c.TryGetProperty("unreachableRttMs", out _) ? Number(c, "cost", "unreachableRttMs", errors, 1e-3, 1e9) : 1000);
        }

        return new Fleet(hosts, vms, migration, cost);
    }

    private static IEnumerable<(JsonElement Item, string Path)> Items(JsonElement parent, string name, List<FleetFormatError> errors, bool required, string prefix = "")
    {
        if (!parent.TryGetProperty(name, out var array))
        {
            if (required)
            {
                errors.Add(new FleetFormatError(prefix + name, "is required."));
            }

            yield break;
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            errors.Add(new FleetFormatError(prefix + name, "must be an array."));
            yield break;
        }

        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            var path = string.Create(CultureInfo.InvariantCulture, $"{prefix}{name}[{i++}]");
            if (item.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new FleetFormatError(path, "must be an object."));
                continue;
            }

            yield return (item, path);
        }
    }

    private static JsonElement? Object(JsonElement parent, string name, List<FleetFormatError> errors)
    {
        if (!parent.TryGetProperty(name, out var value))
        {
            errors.Add(new FleetFormatError(name, "is required."));
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new FleetFormatError(name, "must be an object."));
            return null;
        }

        return value;
    }

    private static string? String(JsonElement item, string path, string name, List<FleetFormatError> errors)
    {
        if (!item.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
        {
            errors.Add(new FleetFormatError(path + "." + name, "is required: a non-empty string."));
            return null;
        }

        return value.GetString();
    }

    private static long Integer(JsonElement item, string path, string name, List<FleetFormatError> errors, long min, long max)
    {
        if (!item.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n) || n < min || n > max)
        {
            errors.Add(new FleetFormatError(path + "." + name, string.Create(CultureInfo.InvariantCulture, $"is required: an integer in [{min}, {max}].")));
            return min;
        }

        return n;
    }

    private static double Number(JsonElement item, string path, string name, List<FleetFormatError> errors, double min, double max)
    {
        if (!item.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var n) || !double.IsFinite(n) || n < min || n > max)
        {
            errors.Add(new FleetFormatError(path + "." + name, string.Create(CultureInfo.InvariantCulture, $"is required: a number in [{min}, {max}].")));
            return min;
        }

        return n;
    }
}
