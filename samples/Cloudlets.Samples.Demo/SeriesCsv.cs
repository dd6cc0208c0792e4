using System.Globalization;

namespace Cloudlets.Samples.Demo;

/// <summary>
/// Writes the recorded series as CSV (<c>--csv</c>): one row per probe, <c>seconds,series,rtt_ms</c>, in time order;
/// the RTT is empty when the probe was lost (never 0). The series are the host names and <c>vm</c>.
/// </summary>
internal static class SeriesCsv
{
    public const string Header = "seconds,series,rtt_ms";

    public static void Write(TextWriter writer, IEnumerable<RttPoint> points)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(points);
        writer.Write(Header + "\n");
        foreach (var p in points.OrderBy(p => p.AtSeconds).ThenBy(p => p.Series, StringComparer.Ordinal))
        {
            writer.Write(string.Create(CultureInfo.InvariantCulture, $"{p.AtSeconds:0.000},{Field(p.Series)},{(p.RttMs is { } ms ? ms.ToString("0.###", CultureInfo.InvariantCulture) : "")}\n"));
        }
    }

    // RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled (lab names have none).
    private static string Field(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text;
}
