using System.Globalization;
using System.Security;
using System.Text;

namespace Cloudlets.Samples.Demo;

/// <summary>
/// Writes the run as an SVG chart: the RTT from the edge to each host and to the VM over time, the
/// scenario's delay changes and the migrations marked. Plain SVG, so any browser shows it.
/// </summary>
internal static class SvgPlot
{
    private static readonly string[] Palette = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];

    public static string Render(Recorder recorder, IReadOnlyList<string> hosts, string vmName, double endSeconds)
    {
        const double width = 960, height = 480, left = 64, right = 180, top = 40, bottom = 48;
        var points = recorder.Points;
        var maxRtt = points.Where(p => p.RttMs is not null).Select(p => p.RttMs!.Value).DefaultIfEmpty(10).Max();
        var yMax = NiceCeiling(maxRtt * 1.1);
        var xMax = Math.Max(1, endSeconds);
        double X(double s) => left + (s / xMax * (width - left - right));
        double Y(double ms) => top + ((1 - (ms / yMax)) * (height - top - bottom));
        static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">RTT from the edge to each cloudlet and to the VM '{Escape(vmName)}'</text>\n");

        // Axes and grid.
        for (var i = 0; i <= 5; i++)
        {
            var ms = yMax * i / 5;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" x2=\"{F(width - right)}\" y1=\"{F(Y(ms))}\" y2=\"{F(Y(ms))}\" stroke=\"#ddd\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{F(Y(ms) + 4)}\" text-anchor=\"end\">{F(ms)}</text>\n");
        }

        var xStep = NiceCeiling(xMax / 8);
        for (var s = 0.0; s <= xMax + 0.001; s += xStep)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(X(s))}\" y=\"{F(height - bottom + 16)}\" text-anchor=\"middle\">{F(s)}</text>");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F((left + width - right) / 2)}\" y=\"{F(height - 10)}\" text-anchor=\"middle\">seconds</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"16\" y=\"{F((top + height - bottom) / 2)}\" transform=\"rotate(-90 16 {F((top + height - bottom) / 2)})\" text-anchor=\"middle\">RTT (ms)</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{left}\" y=\"{top}\" width=\"{F(width - left - right)}\" height=\"{F(height - top - bottom)}\" fill=\"none\" stroke=\"#333\"/>\n");

        // Scenario steps (grey) and migrations (red), as vertical markers.
        foreach (var (at, label) in recorder.Steps)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(X(at))}\" x2=\"{F(X(at))}\" y1=\"{top}\" y2=\"{F(height - bottom)}\" stroke=\"#999\" stroke-dasharray=\"2,3\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(X(at) + 3)}\" y=\"{top + 12}\" fill=\"#666\">{Escape(label)}</text>\n");
        }

        var row = 0;
        foreach (var m in recorder.Migrations)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(X(m.StartedAtSeconds))}\" y=\"{top}\" width=\"{F(Math.Max(2, X(m.EndedAtSeconds) - X(m.StartedAtSeconds)))}\" height=\"{F(height - top - bottom)}\" fill=\"#d62728\" fill-opacity=\"0.15\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(X(m.EndedAtSeconds) + 3)}\" y=\"{top + 28 + (14 * row++)}\" fill=\"#d62728\">migration {Escape(m.From)} → {Escape(m.To)} ({Escape(m.Outcome)})</text>\n");
        }

        // One polyline per series; a lost probe breaks the line.
        var series = hosts.Append("vm").ToList();
        for (var i = 0; i < series.Count; i++)
        {
            var name = series[i];
            var color = name == "vm" ? "#000" : Palette[i % Palette.Length];
            var strokeWidth = name == "vm" ? 2.5 : 1.5;
            var segment = new StringBuilder();
            void Flush()
            {
                if (segment.Length > 0)
                {
                    svg.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{F(strokeWidth)}\" points=\"{segment}\"/>\n");
                    segment.Clear();
                }
            }

            foreach (var p in points.Where(p => p.Series == name).OrderBy(p => p.AtSeconds))
            {
                if (p.RttMs is { } ms)
                {
                    segment.Append(CultureInfo.InvariantCulture, $"{F(X(p.AtSeconds))},{F(Y(Math.Min(ms, yMax)))} ");
                }
                else
                {
                    Flush();
                    svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(X(p.AtSeconds))}\" y=\"{top + 8}\" fill=\"{color}\" text-anchor=\"middle\" font-size=\"9\">×</text>");
                }
            }

            Flush();
            var legendY = top + 10 + (20 * i);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(width - right + 12)}\" x2=\"{F(width - right + 36)}\" y1=\"{legendY}\" y2=\"{legendY}\" stroke=\"{color}\" stroke-width=\"{F(strokeWidth)}\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(width - right + 42)}\" y=\"{legendY + 4}\">{Escape(name == "vm" ? "VM " + vmName : name)}</text>\n");
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }

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
