using System.Globalization;
using System.Text.Json;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Lab.Shaping;

/// <summary>
/// The latency-matrix file of <c>cloudlets-lab shape --matrix FILE</c>: one JSON object with a list of
/// (site, host, one-way delay in milliseconds) entries.
/// </summary>
/// <remarks>
/// <code>
/// {"delays": [
///   {"site": "site-1", "host": "cloudlet-1", "delayMs": 20},
///   {"site": "site-1", "host": "cloudlet-2", "delayMs": 300},
///   {"site": "site-2", "host": "cloudlet-1", "delayMs": 300},
///   {"site": "site-2", "host": "cloudlet-2", "delayMs": 20}
/// ]}
/// </code>
/// Every entry has exactly these three members; <c>delayMs</c> is a number from 0 (unshaped) to
/// 60000. A pair not listed stays unshaped. The file is checked whole (syntax, members, names, values,
/// repeated pairs) before anything is applied; whether the sites and hosts exist in a lab is checked
/// by <see cref="LabShapingPlans.BuildMatrix"/>.
/// </remarks>
public static class LabLatencyMatrix
{
    /// <summary>The most entries a file may hold (8 sites × 8 hosts).</summary>
    public const int MaxEntries = LabNaming.MaxSites * LabNaming.MaxHosts;

    /// <summary>Parses a matrix file's text.</summary>
    /// <exception cref="ShapingValidationException">
    /// The text is not such a file; <see cref="ShapingValidationException.Field"/> names the wrong member
    /// (for example <c>delays[2].delayMs</c>).
    /// </exception>
    public static IReadOnlyList<LabSiteDelay> Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new ShapingValidationException("file", $"not valid JSON ({ex.Message})");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ShapingValidationException("file", "the file must hold one JSON object {\"delays\": [...]}.");
            }

            JsonElement? list = null;
            foreach (var member in root.EnumerateObject())
            {
                list = member.Name == "delays" ? member.Value : throw new ShapingValidationException(member.Name, "unknown member (the file has only \"delays\").");
            }

            if (list is not { ValueKind: JsonValueKind.Array } delays)
            {
                throw new ShapingValidationException("delays", "missing, or not a list of {\"site\", \"host\", \"delayMs\"} entries.");
            }

            var count = delays.GetArrayLength();
            if (count is 0 or > MaxEntries)
            {
                throw new ShapingValidationException("delays", $"{count.ToString(CultureInfo.InvariantCulture)} entries; give 1 to {MaxEntries.ToString(CultureInfo.InvariantCulture)}.");
            }

            var result = new List<LabSiteDelay>(count);
            var seen = new HashSet<(string, string)>();
            var i = 0;
            foreach (var entry in delays.EnumerateArray())
            {
                var field = string.Create(CultureInfo.InvariantCulture, $"delays[{i}]");
                var parsed = ParseEntry(entry, field);
                if (!seen.Add((parsed.Site, parsed.Host)))
                {
                    throw new ShapingValidationException(field, $"the pair ({parsed.Site}, {parsed.Host}) is listed twice.");
                }

                result.Add(parsed);
                i++;
            }

            return result;
        }
    }

    private static LabSiteDelay ParseEntry(JsonElement entry, string field)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw new ShapingValidationException(field, "not an object {\"site\", \"host\", \"delayMs\"}.");
        }

        string? site = null, host = null;
        double? delayMs = null;
        foreach (var member in entry.EnumerateObject())
        {
            var name = field + "." + member.Name;
            switch (member.Name)
            {
                case "site":
                    site = member.Value.ValueKind == JsonValueKind.String && LabNaming.TryParseSiteName(member.Value.GetString(), out var s) && s <= LabNaming.MaxSites
                        ? member.Value.GetString()
                        : throw new ShapingValidationException(name, $"{member.Value.GetRawText()} is not a site (site-1 … site-{LabNaming.MaxSites.ToString(CultureInfo.InvariantCulture)}).");
                    break;
                case "host":
                    host = member.Value.ValueKind == JsonValueKind.String && LabNaming.TryParseHostName(member.Value.GetString(), out var h) && h <= LabNaming.MaxHosts
                        ? member.Value.GetString()
                        : throw new ShapingValidationException(name, $"{member.Value.GetRawText()} is not a host (cloudlet-1 … cloudlet-{LabNaming.MaxHosts.ToString(CultureInfo.InvariantCulture)}).");
                    break;
                case "delayMs":
                    delayMs = member.Value.ValueKind == JsonValueKind.Number && member.Value.TryGetDouble(out var ms) && double.IsFinite(ms) && ms >= 0 && ms <= Impairment.MaxDelay.TotalMilliseconds
                        ? ms
                        : throw new ShapingValidationException(name, $"{member.Value.GetRawText()} is not a delay: a number of milliseconds from 0 to {Impairment.MaxDelay.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}.");
                    break;
                default:
                    throw new ShapingValidationException(name, "unknown member (an entry has \"site\", \"host\" and \"delayMs\").");
            }
        }

        return new LabSiteDelay(
            site ?? throw new ShapingValidationException(field + ".site", "missing."),
            host ?? throw new ShapingValidationException(field + ".host", "missing."),
            TimeSpan.FromMilliseconds(delayMs ?? throw new ShapingValidationException(field + ".delayMs", "missing.")));
    }
}
