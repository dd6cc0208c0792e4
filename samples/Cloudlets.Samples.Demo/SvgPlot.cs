using System.Globalization;
using System.Security;
using System.Text;

namespace Cloudlets.Samples.Demo;

/// <summary>
/// Writes the run as an SVG chart: the RTT from the edge to each host and to the VM over time, the scenario's delay
/// changes and the migrations marked. Plain SVG with a <c>viewBox</c>, so any browser shows it and scales it.
/// Readable at a glance: series that lie on top of each other stay visible (the VM's line is a wide pale band drawn
/// first, each host's line has its own colour and dash pattern, solid first, dashed on top); a lost probe, or no
/// probe for longer than <see cref="MaxGapSeconds"/>, leaves a gap, with a mark at the top; labels are laid out in
/// rows so that none covers another, and none runs out of the plot.
/// </summary>
internal static class SvgPlot
{
    /// <summary>A series with no sample for longer than this (seconds) is broken there, as a lost probe breaks it.</summary>
    public const double MaxGapSeconds = 3;

    public const double Width = 960;
    public const double Height = 480;
    public const double Left = 64;
    public const double Right = 190;
    public const double Top = 40;
    public const double Bottom = 48;

    /// <summary>The height of a row of labels, and the space kept between two labels of a row.</summary>
    public const double LabelRowHeight = 14;

    private const double LabelGap = 6;

    /// <summary>An upper bound of the average glyph width of the 12 px sans-serif labels, so estimated widths never fall short.</summary>
    private const double CharWidth = 7;

    private static readonly string[] Palette = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
    private static readonly string?[] Dashes = [null, "8,4", "2,3", "12,3,3,3", "5,5"];

    /// <param name="recorder">The points, steps and migrations.</param>
    /// <param name="hosts">The series drawn as thin lines, in legend order (the hosts; for a fleet, its VMs).</param>
    /// <param name="vmName">The VM whose "vm" series is drawn as a band, or <see langword="null"/> for none.</param>
    /// <param name="endSeconds">The end of the time axis.</param>
    /// <param name="title">The title; the default names the edge, the cloudlets and the VM.</param>
    public static string Render(Recorder recorder, IReadOnlyList<string> hosts, string? vmName, double endSeconds, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentNullException.ThrowIfNull(hosts);
        var points = recorder.Points;
        var maxRtt = points.Where(p => p.RttMs is not null).Select(p => p.RttMs!.Value).DefaultIfEmpty(10).Max();
        var yMax = NiceCeiling(maxRtt * 1.1);
        var xMax = Math.Max(1, endSeconds);
        double X(double s) => Left + (s / xMax * (Width - Left - Right));
        double Y(double ms) => Top + ((1 - (ms / yMax)) * (Height - Top - Bottom));

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {F(Width)} {F(Height)}\" width=\"{F(Width)}\" height=\"{F(Height)}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(Left)}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{Escape(title ?? $"RTT from the edge to each cloudlet and to the VM '{vmName}'")}</text>\n");

        // Axes and grid.
        for (var i = 0; i <= 5; i++)
        {
            var ms = yMax * i / 5;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(Left)}\" x2=\"{F(Width - Right)}\" y1=\"{F(Y(ms))}\" y2=\"{F(Y(ms))}\" stroke=\"#ddd\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(Left - 6)}\" y=\"{F(Y(ms) + 4)}\" text-anchor=\"end\">{F(ms)}</text>\n");
        }

        var xStep = NiceCeiling(xMax / 8);
        for (var s = 0.0; s <= xMax + 0.001; s += xStep)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(X(s))}\" y=\"{F(Height - Bottom + 16)}\" text-anchor=\"middle\">{F(s)}</text>");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F((Left + Width - Right) / 2)}\" y=\"{F(Height - 10)}\" text-anchor=\"middle\">seconds</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"16\" y=\"{F((Top + Height - Bottom) / 2)}\" transform=\"rotate(-90 16 {F((Top + Height - Bottom) / 2)})\" text-anchor=\"middle\">RTT (ms)</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(Left)}\" y=\"{F(Top)}\" width=\"{F(Width - Left - Right)}\" height=\"{F(Height - Top - Bottom)}\" fill=\"none\" stroke=\"#333\"/>\n");

        // Scenario steps (grey, dotted) and migrations (red bands), as vertical markers; their labels laid out below.
        var labels = new List<(double X, string Text, string Color)>();
        foreach (var (at, label) in recorder.Steps)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(X(at))}\" x2=\"{F(X(at))}\" y1=\"{F(Top)}\" y2=\"{F(Height - Bottom)}\" stroke=\"#999\" stroke-dasharray=\"2,3\"/>\n");
            labels.Add((X(at), label, "#666"));
        }

        foreach (var m in recorder.Migrations)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(X(m.StartedAtSeconds))}\" y=\"{F(Top)}\" width=\"{F(Math.Max(2, X(m.EndedAtSeconds) - X(m.StartedAtSeconds)))}\" height=\"{F(Height - Top - Bottom)}\" fill=\"#d62728\" fill-opacity=\"0.15\"/>\n");
            labels.Add((X(m.EndedAtSeconds), $"migration {m.From} → {m.To} ({m.Outcome})", "#d62728"));
        }

        // Lost-probe marks sit in the top band; the labels start below it.
        foreach (var label in LayOutLabels(labels, Left, Width - Right, Top + 12 + LabelRowHeight))
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(label.X)}\" y=\"{F(label.Y)}\" text-anchor=\"{label.Anchor}\" fill=\"{label.Color}\">{Escape(label.Text)}</text>\n");
        }

        // The VM first, so that the hosts' lines are drawn over its band; then the hosts, the solid one first.
        var series = hosts.Select((h, i) => (Name: h, Style: HostStyle(i), Label: h)).ToList();
        if (vmName is not null)
        {
            series.Insert(0, ("vm", VmStyle, "VM " + vmName));
        }

        for (var i = 0; i < series.Count; i++)
        {
            var (name, style, label) = series[i];
            var attributes = string.Create(CultureInfo.InvariantCulture,
                $"fill=\"none\" stroke=\"{style.Color}\" stroke-width=\"{F(style.Width)}\" stroke-opacity=\"{F(style.Opacity)}\" stroke-linejoin=\"round\"{(style.Dash is { } d ? $" stroke-dasharray=\"{d}\"" : "")}");
            foreach (var segment in Segments(points.Where(p => p.Series == name), MaxGapSeconds))
            {
                if (segment.Count == 1)
                {
                    // An answer between two losses: a dot, since a one-point line would not show.
                    svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{F(X(segment[0].AtSeconds))}\" cy=\"{F(Y(Math.Min(segment[0].RttMs!.Value, yMax)))}\" r=\"{F(Math.Max(1.5, style.Width / 2))}\" fill=\"{style.Color}\" fill-opacity=\"{F(style.Opacity)}\"/>\n");
                    continue;
                }

                svg.Append("<polyline ").Append(attributes).Append(" points=\"");
                foreach (var p in segment)
                {
                    svg.Append(CultureInfo.InvariantCulture, $"{F(X(p.AtSeconds))},{F(Y(Math.Min(p.RttMs!.Value, yMax)))} ");
                }

                svg.Append("\"/>\n");
            }

            foreach (var lost in points.Where(p => p.Series == name && p.RttMs is null))
            {
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(X(lost.AtSeconds))}\" y=\"{F(Top + 9)}\" fill=\"{style.Color}\" text-anchor=\"middle\" font-size=\"9\">×</text>");
            }

            var legendY = Top + 10 + (20 * i);
            svg.Append(CultureInfo.InvariantCulture, $"\n<line x1=\"{F(Width - Right + 12)}\" x2=\"{F(Width - Right + 40)}\" y1=\"{F(legendY)}\" y2=\"{F(legendY)}\" {attributes}/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(Width - Right + 46)}\" y=\"{F(legendY + 4)}\">{Escape(label)}</text>\n");
        }

        var legendNote = Top + 10 + (20 * series.Count);
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(Width - Right + 12)}\" y=\"{F(legendNote + 4)}\" font-size=\"10\" fill=\"#666\">× lost probe (a gap)</text>\n");
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>How one series is drawn.</summary>
    internal sealed record SeriesStyle(string Color, double Width, string? Dash, double Opacity);

    /// <summary>The VM: a wide, pale band, so the host it runs on shows through it.</summary>
    internal static readonly SeriesStyle VmStyle = new("#000", 6, null, 0.3);

    /// <summary>Host <paramref name="index"/>'s style: its own colour and dash pattern, so hosts with the same RTT stay apart.</summary>
    internal static SeriesStyle HostStyle(int index) => new(Palette[index % Palette.Length], 1.8, Dashes[index % Dashes.Length], 1);

    /// <summary>
    /// The runs of answered probes of one series, in time order: a lost probe ends a run, and so does a silence longer
    /// than <paramref name="maxGapSeconds"/>, so neither is drawn as if the RTT had been measured across it.
    /// </summary>
    internal static IReadOnlyList<IReadOnlyList<RttPoint>> Segments(IEnumerable<RttPoint> points, double maxGapSeconds)
    {
        var segments = new List<IReadOnlyList<RttPoint>>();
        var current = new List<RttPoint>();
        double? last = null;
        foreach (var p in points.OrderBy(p => p.AtSeconds))
        {
            if (p.RttMs is null || (last is { } l && p.AtSeconds - l > maxGapSeconds))
            {
                if (current.Count > 0)
                {
                    segments.Add(current);
                    current = [];
                }
            }

            if (p.RttMs is not null)
            {
                current.Add(p);
            }

            last = p.AtSeconds;
        }

        if (current.Count > 0)
        {
            segments.Add(current);
        }

        return segments;
    }

    /// <summary>A label where it is drawn.</summary>
    internal sealed record PlacedLabel(double X, double Y, string Anchor, string Text, string Color, double From, double To);

    /// <summary>
    /// Places labels of vertical markers: each starts just right of its marker, or ends just left of it when it would
    /// leave the plot; it goes in the first row (from <paramref name="firstRowY"/> down) where it overlaps no other
    /// label, with a gap. Widths are estimated generously from the text's length.
    /// </summary>
    internal static IReadOnlyList<PlacedLabel> LayOutLabels(IEnumerable<(double X, string Text, string Color)> labels, double left, double right, double firstRowY)
    {
        var rows = new List<List<(double From, double To)>>();
        var placed = new List<PlacedLabel>();
        foreach (var (x, text, color) in labels.OrderBy(l => l.X))
        {
            var width = text.Length * CharWidth;
            var (from, to, anchor, at) = x + 3 + width <= right
                ? (x + 3, x + 3 + width, "start", x + 3)
                : (Math.Max(left, x - 3 - width), x - 3, "end", x - 3);
            var row = rows.FindIndex(r => r.All(o => from >= o.To + LabelGap || to <= o.From - LabelGap));
            if (row < 0)
            {
                rows.Add([]);
                row = rows.Count - 1;
            }

            rows[row].Add((from, to));
            placed.Add(new PlacedLabel(at, firstRowY + (row * LabelRowHeight), anchor, text, color, from, to));
        }

        return placed;
    }

    private static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);

    private static double NiceCeiling(double value)
    {
        if (value <= 0)
        {
            return 1;
        }

        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var step in new[] { 1, 2, 2.5, 5, 10 })
        {
            if (step * magnitude >= value)
            {
                return step * magnitude;
            }
        }

        return 10 * magnitude;
    }

    private static string Escape(string text) => SecurityElement.Escape(text) ?? "";
}
