using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cloudlets.Samples.Demo;

/// <summary>
/// A timed list of delay changes. A step fires at <see cref="ScenarioStep.AtSeconds"/> after the
/// start, or <see cref="ScenarioStep.AfterSeconds"/> after the VM's <see cref="ScenarioStep.AfterMigrations"/>-th
/// successful migration. The run ends <see cref="SettleSeconds"/> after the expected number of
/// migrations completed, or at <see cref="MaxSeconds"/>.
/// </summary>
internal sealed record Scenario
{
    public string? Description { get; init; }

    public string GuestOn { get; init; } = "cloudlet-1";

    public IReadOnlyList<ScenarioStep> Steps { get; init; } = [];

    /// <summary>Migrations the scenario expects; the default is one per step.</summary>
    public int? ExpectMigrations { get; init; }

    public double SettleSeconds { get; init; } = 20;

    public double MaxSeconds { get; init; } = 240;

    public int ExpectedMigrations => ExpectMigrations ?? Steps.Count;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static Scenario Load(string path)
    {
        Scenario? scenario;
        try
        {
            scenario = JsonSerializer.Deserialize<Scenario>(File.ReadAllText(path), Json);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"The scenario '{path}' is not valid JSON: {ex.Message}", ex);
        }

        return (scenario ?? throw new FormatException($"The scenario '{path}' is empty.")).Validated(path);
    }

    /// <summary>Checks the scenario against the lab's host names before anything is created.</summary>
    public Scenario Validated(string source)
    {
        if (Steps.Count == 0)
        {
            throw new FormatException($"The scenario '{source}' has no steps.");
        }

        if (SettleSeconds is < 0 or > 3600 || MaxSeconds is <= 0 or > 24 * 3600)
        {
            throw new FormatException($"The scenario '{source}': settleSeconds must be 0–3600 and maxSeconds 1–86400.");
        }

        foreach (var step in Steps)
        {
            if (step.DelaysMs.Count == 0)
            {
                throw new FormatException($"The scenario '{source}': step '{step.Label}' sets no delay.");
            }

            if ((step.AtSeconds is null) == (step.AfterMigrations is null))
            {
                throw new FormatException($"The scenario '{source}': step '{step.Label}' needs exactly one of atSeconds and afterMigrations.");
            }

            foreach (var (host, ms) in step.DelaysMs)
            {
                if (!double.IsFinite(ms) || ms < 0 || ms > 10_000)
                {
                    throw new FormatException($"The scenario '{source}': delay {ms} ms for '{host}' is not between 0 and 10000 ms.");
                }
            }
        }

        return this;
    }

    /// <summary>The host names the scenario mentions.</summary>
    public IEnumerable<string> HostNames => Steps.SelectMany(s => s.DelaysMs.Keys).Append(GuestOn).Distinct(StringComparer.Ordinal);
}

internal sealed record ScenarioStep
{
    public string Label { get; init; } = "";

    public double? AtSeconds { get; init; }

    public int? AfterMigrations { get; init; }

    public double AfterSeconds { get; init; }

    [JsonPropertyName("delaysMs")]
    public IReadOnlyDictionary<string, double> DelaysMs { get; init; } = new Dictionary<string, double>();
}
