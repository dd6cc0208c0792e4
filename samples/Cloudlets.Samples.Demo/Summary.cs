using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cloudlets.Samples.Demo;

/// <summary>The summary written by <c>--json</c>.</summary>
internal sealed record Summary(
    string Vm,
    string InitialHost,
    string? FinalHost,
    IReadOnlyList<SummaryHost> Hosts,
    IReadOnlyList<SummaryMigration> Migrations,
    SummaryServiceRtt ServiceRttMs)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}

internal sealed record SummaryHost(string Name, double InjectedDelayMs, double? MeasuredRttMs);

/// <summary>One migration in the summary; <paramref name="ProgressValues"/> counts the distinct intermediate fractions its progress bar showed.</summary>
internal sealed record SummaryMigration(string From, string To, double? TotalMs, double? DowntimeMs, string Outcome, string? Error, int ProgressValues);

/// <summary>The RTT from the edge to the VM's own address before the first migration and at the end of the run.</summary>
internal sealed record SummaryServiceRtt(double? Before, double? After);
