using System.Text.Json;
using System.Text.Json.Serialization;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;

namespace Cloudlets.Samples.Replay;

/// <summary>
/// The <c>--policy</c> file: the default policy's options as JSON, with the property names of
/// <see cref="LowestLatencyPolicyOptions"/> (camelCase; durations as <c>"00:05:00"</c>), plus
/// <c>sampleWindow</c> for the replay. Unknown properties are errors.
/// </summary>
internal sealed class PolicyFile
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        Converters = { new JsonStringEnumConverter() },
    };

    public int? SampleWindow { get; set; }

    public LowestLatencyPolicyOptions Policy { get; set; } = new();

    /// <summary>Reads and validates a policy file; every problem is an <see cref="InvalidDataException"/> naming the file and the field.</summary>
    public static PolicyFile Read(string path)
    {
        PolicyFile? file;
        try
        {
            file = JsonSerializer.Deserialize<PolicyFile>(File.ReadAllText(path), Json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}, line {(ex.LineNumber ?? 0) + 1}, {ex.Path}: {ex.Message}", ex);
        }

        if (file?.Policy is null)
        {
            throw new InvalidDataException($"{path}: the file is empty or 'policy' is null.");
        }

        var errors = new OptionsErrors();
        errors.Nested("policy", file.Policy);
        if (file.SampleWindow is { } w)
        {
            errors.InRange("sampleWindow", w, 1, 10_000);
        }

        if (errors.HasErrors)
        {
            throw new InvalidDataException($"{path}: " + string.Join("; ", errors.Errors));
        }

        return file;
    }
}
