using System.Globalization;
using System.Text;

namespace Cloudlets.Simulation;

/// <summary>One probe of a trace: at <paramref name="T"/> seconds from the start, a vantage point measured a host.</summary>
/// <param name="T">Seconds from the start of the trace (≥ 0).</param>
/// <param name="VantagePoint">The vantage point (a user of some VM).</param>
/// <param name="Host">The host probed.</param>
/// <param name="RttMs">The round-trip time in ms, or <see langword="null"/> for a lost probe.</param>
public readonly record struct TraceSample(double T, string VantagePoint, string Host, double? RttMs);

/// <summary>A latency trace: probes in time order (the trace CSV file, see <see cref="TraceCsv"/>).</summary>
public sealed class LatencyTrace
{
    /// <summary>Creates a trace from samples, which must be in non-decreasing time order.</summary>
    /// <exception cref="ArgumentException">A sample is out of order or invalid.</exception>
    public LatencyTrace(IReadOnlyList<TraceSample> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        for (var i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            if (!double.IsFinite(s.T) || s.T < 0 || (i > 0 && s.T < samples[i - 1].T))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Sample {i} at t={s.T} is out of order or negative."), nameof(samples));
            }

            if (string.IsNullOrEmpty(s.VantagePoint) || string.IsNullOrEmpty(s.Host) || (s.RttMs is { } r && (!double.IsFinite(r) || r < 0)))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Sample {i} has an empty name or an invalid RTT."), nameof(samples));
            }
        }

        Samples = samples;
    }

    /// <summary>The samples, in time order.</summary>
    public IReadOnlyList<TraceSample> Samples { get; }
}

/// <summary>A trace file is malformed: <see cref="Line"/> and <see cref="Field"/> say where.</summary>
public sealed class TraceFormatException : FormatException
{
    /// <summary>Creates the exception for a line and field of a file.</summary>
    public TraceFormatException(string source, long line, string field, string problem)
        : base(string.Create(CultureInfo.InvariantCulture, $"{source}, line {line}, field {field}: {problem}"))
    {
        FileName = source;
        Line = line;
        Field = field;
        Problem = problem;
    }

    /// <summary>Creates the exception without a location.</summary>
    public TraceFormatException()
        : this("trace", 0, "", "invalid")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public TraceFormatException(string message)
        : base(message)
    {
        FileName = "trace";
        Field = "";
        Problem = message;
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public TraceFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        FileName = "trace";
        Field = "";
        Problem = message;
    }

    /// <summary>The file (or source name) that was read.</summary>
    public string FileName { get; }

    /// <summary>The 1-based line.</summary>
    public long Line { get; }

    /// <summary>The field: <c>t</c>, <c>vantagePoint</c>, <c>host</c>, <c>rttMs</c>, or <c>header</c>/<c>version</c>.</summary>
    public string Field { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }
}

/// <summary>
/// Reads and writes the trace file, format version 1: CSV, UTF-8, an optional first line
/// <c># cloudlets-trace v1</c>, then the header <c>t,vantagePoint,host,rttMs</c>, then one probe per
/// line: <c>t</c> in seconds from the start (invariant culture, non-decreasing), the vantage point,
/// the host, and <c>rttMs</c> (empty for a lost probe). Blank lines and lines starting with <c>#</c>
/// after the header are ignored. Names may not contain commas or quotes.
/// </summary>
public static class TraceCsv
{
    /// <summary>The version line the writer writes and the reader accepts.</summary>
    public const string VersionLine = "# cloudlets-trace v1";

    /// <summary>The header line.</summary>
    public const string Header = "t,vantagePoint,host,rttMs";

    /// <summary>Reads a trace file.</summary>
    /// <exception cref="TraceFormatException">A line is malformed (the exception says which line and field).</exception>
    public static LatencyTrace Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var reader = new StreamReader(path, Encoding.UTF8);
        return Read(reader, path);
    }

    /// <summary>Reads a trace from text; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="TraceFormatException">A line is malformed (the exception says which line and field).</exception>
    public static LatencyTrace Read(TextReader reader, string source = "trace")
    {
        ArgumentNullException.ThrowIfNull(reader);
        var samples = new List<TraceSample>();
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        long number = 0;
        var headerSeen = false;
        var previous = 0.0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            var text = line.Trim();
            if (!headerSeen)
            {
                if (text.Length == 0)
                {
                    continue;
                }

                if (text.StartsWith('#'))
                {
                    if (text.StartsWith("# cloudlets-trace", StringComparison.Ordinal) && text != VersionLine)
                    {
                        throw new TraceFormatException(source, number, "version", $"'{text}' is not a version this reader understands (expected '{VersionLine}').");
                    }

                    continue;
                }

                if (text != Header)
                {
                    throw new TraceFormatException(source, number, "header", $"expected '{Header}', found '{text}'.");
                }

                headerSeen = true;
                continue;
            }

            if (text.Length == 0 || text.StartsWith('#'))
            {
                continue;
            }

            var fields = text.Split(',');
            if (fields.Length != 4)
            {
                throw new TraceFormatException(source, number, fields.Length < 4 ? FieldName(fields.Length) : "rttMs", string.Create(CultureInfo.InvariantCulture, $"expected 4 fields, found {fields.Length}."));
            }

            if (!double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var t) || !double.IsFinite(t) || t < 0)
            {
                throw new TraceFormatException(source, number, "t", $"'{fields[0]}' is not a number of seconds ≥ 0.");
            }

            if (t < previous)
            {
                throw new TraceFormatException(source, number, "t", string.Create(CultureInfo.InvariantCulture, $"{t} is earlier than the line before ({previous}); samples must be in time order."));
            }

            var vantage = fields[1].Trim();
            var host = fields[2].Trim();
            if (vantage.Length == 0)
            {
                throw new TraceFormatException(source, number, "vantagePoint", "is empty.");
            }

            if (host.Length == 0)
            {
                throw new TraceFormatException(source, number, "host", "is empty.");
            }

            double? rtt = null;
            var rttText = fields[3].Trim();
            if (rttText.Length > 0)
            {
                if (!double.TryParse(rttText, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) || !double.IsFinite(r) || r < 0)
                {
                    throw new TraceFormatException(source, number, "rttMs", $"'{rttText}' is neither empty (lost) nor a number of ms ≥ 0.");
                }

                rtt = r;
            }

            previous = t;
            samples.Add(new TraceSample(t, Intern(names, vantage), Intern(names, host), rtt));
        }

        if (!headerSeen)
        {
            throw new TraceFormatException(source, number + 1, "header", $"the file ends before the header '{Header}'.");
        }

        return new LatencyTrace(samples);
    }

    /// <summary>Writes a trace as version-1 CSV.</summary>
    public static void Write(TextWriter writer, LatencyTrace trace)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(trace);
        writer.Write(VersionLine + "\n" + Header + "\n");
        foreach (var s in trace.Samples)
        {
            WriteSample(writer, s);
        }
    }

    /// <summary>Writes one sample line (after <see cref="VersionLine"/> and <see cref="Header"/>).</summary>
    /// <exception cref="ArgumentException">A name contains a comma, a quote or a line break.</exception>
    public static void WriteSample(TextWriter writer, in TraceSample sample)
    {
        ArgumentNullException.ThrowIfNull(writer);
        CheckName(sample.VantagePoint);
        CheckName(sample.Host);
        var c = CultureInfo.InvariantCulture;
        writer.Write(sample.T.ToString("0.###", c));
        writer.Write(',');
        writer.Write(sample.VantagePoint);
        writer.Write(',');
        writer.Write(sample.Host);
        writer.Write(',');
        if (sample.RttMs is { } r)
        {
            writer.Write(r.ToString("0.###", c));
        }

        writer.Write('\n');
    }

    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.AsSpan().IndexOfAny(",\"\r\n") >= 0)
        {
            throw new ArgumentException($"'{name}' cannot be written to a trace: names are non-empty and hold no comma, quote or line break.", nameof(name));
        }
    }

    private static string FieldName(int index) => index switch { 0 => "t", 1 => "vantagePoint", 2 => "host", _ => "rttMs" };

    private static string Intern(Dictionary<string, string> names, string name)
    {
        if (!names.TryGetValue(name, out var known))
        {
            names.Add(name, name);
            known = name;
        }

        return known;
    }
}
