using System.Net;
using System.Text;
using System.Text.Json;
using Cloudlets.Core.Probing;

namespace Cloudlets.Samples.Agent;

/// <summary>
/// The agent's targets file: <c>{"targets":[{"name":"cloudlet-1","address":"198.18.0.11"},{"name":"web","address":"198.18.0.21","port":7070}]}</c>.
/// A target with a port is probed by TCP connect, one without by ICMP echo.
/// </summary>
public static class TargetsFile
{
    /// <summary>Reads and checks the file; every problem is listed in one <see cref="FormatException"/>.</summary>
    public static IReadOnlyList<ProbeTarget> Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"{path}: cannot be read: {ex.Message}");
        }

        return Parse(text, path);
    }

    /// <summary>Parses the file's text (see <see cref="Load"/>).</summary>
    public static IReadOnlyList<ProbeTarget> Parse(string json, string origin)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{origin}: not valid JSON: {ex.Message}");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("targets", out var list)
                || list.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException($"{origin}: expected an object with a \"targets\" array.");
            }

            var errors = new List<string>();
            var targets = new List<ProbeTarget>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            var i = -1;
            foreach (var item in list.EnumerateArray())
            {
                i++;
                var at = $"targets[{i}]";
                if (item.ValueKind != JsonValueKind.Object)
                {
                    errors.Add($"{at}: expected an object.");
                    continue;
                }

                var name = item.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                var addressText = item.TryGetProperty("address", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
                int? port = null;
                if (item.TryGetProperty("port", out var p))
                {
                    if (p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out var value) && value is >= 1 and <= 65535)
                    {
                        port = value;
                    }
                    else
                    {
                        errors.Add($"{at}.port: must be a number from 1 to 65535.");
                    }
                }

                if (string.IsNullOrWhiteSpace(name) || Encoding.UTF8.GetByteCount(name) > 255)
                {
                    errors.Add($"{at}.name: must be a non-empty string of at most 255 bytes.");
                }
                else if (!names.Add(name))
                {
                    errors.Add($"{at}.name: '{name}' is listed twice.");
                }

                if (addressText is null || !IPAddress.TryParse(addressText, out var address) || !(addressText.Contains('.', StringComparison.Ordinal) || addressText.Contains(':', StringComparison.Ordinal)))
                {
                    errors.Add($"{at}.address: '{addressText}' is not an IPv4 or IPv6 address.");
                    continue;
                }

                if (name is not null && errors.Count == 0)
                {
                    targets.Add(new ProbeTarget(name, address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, port));
                }
            }

            if (i < 0)
            {
                errors.Add("targets: the list is empty.");
            }
            else if (i >= 65535)
            {
                errors.Add("targets: at most 65,535 targets.");
            }

            if (errors.Count > 0)
            {
                throw new FormatException($"{origin}: {errors.Count} error{(errors.Count == 1 ? "" : "s")}:\n  " + string.Join("\n  ", errors));
            }

            return targets;
        }
    }
}
