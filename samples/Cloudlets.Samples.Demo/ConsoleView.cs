using System.Globalization;
using System.Text;
using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Samples.Demo;

/// <summary>What the live view shows at one moment.</summary>
internal sealed record ViewState(
    double Seconds,
    string VmName,
    string? CurrentHost,
    IReadOnlyList<(string Host, double InjectedMs, double? MeasuredMs)> Hosts,
    double? VmRttMs,
    IReadOnlyList<string> Decisions,
    (string From, string To, MigrationProgress Progress)? Migration,
    string? Step);

/// <summary>
/// The live console view: a redrawn screen on a terminal, one line a second when the output is
/// redirected or <c>--plain</c> is given (logs and CI stay readable).
/// </summary>
internal sealed class ConsoleView(bool plain)
{
    private readonly bool _plain = plain || Console.IsOutputRedirected;

    public void Render(ViewState state)
    {
        if (_plain)
        {
            Console.WriteLine(Line(state));
            return;
        }

        var s = new StringBuilder();
        s.Append("\u001b[H\u001b[2J");
        s.Append(CultureInfo.InvariantCulture, $"Cloudlets demo — t = {state.Seconds:0} s   {state.Step}\n\n");
        s.Append(CultureInfo.InvariantCulture, $"  {"host",-12} {"injected",9} {"measured RTT",13}\n");
        foreach (var (host, injected, measured) in state.Hosts)
        {
            var here = host == state.CurrentHost ? $"  ◀ {state.VmName}" : "";
            s.Append(CultureInfo.InvariantCulture, $"  {host,-12} {injected,6:0} ms {Ms(measured),13}{here}\n");
        }

        s.Append(CultureInfo.InvariantCulture, $"\n  VM {state.VmName} on {state.CurrentHost ?? "?"}: RTT from the edge {Ms(state.VmRttMs)}\n");
        if (state.Migration is { } m)
        {
            var p = m.Progress;
            var fraction = p.DataTotalBytes is > 0 && p.DataProcessedBytes is { } done ? Math.Clamp((double)done / p.DataTotalBytes.Value, 0, 1) : 0;
            var bar = new string('█', (int)(fraction * 30)).PadRight(30, '·');
            s.Append(CultureInfo.InvariantCulture, $"\n  migrating {m.From} → {m.To}  [{bar}] {fraction * 100,3:0} %  {p.Elapsed.TotalSeconds:0.0} s  iteration {p.Iteration?.ToString(CultureInfo.InvariantCulture) ?? "-"}\n");
        }

        s.Append("\n  decisions:\n");
        foreach (var d in state.Decisions)
        {
            s.Append("    ").Append(d).Append('\n');
        }

        Console.Write(s.ToString());
    }

    /// <summary>
    /// A decision or a migration's outcome. The redrawn screen shows the latest few with each frame; in
    /// plain mode each is printed once, as it happens, so a log keeps the whole story of a run.
    /// </summary>
    public void Event(string text)
    {
        if (_plain)
        {
            Console.WriteLine("  " + text);
        }
    }

    private static string Line(ViewState state)
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"t={state.Seconds,4:0}s vm@{state.CurrentHost ?? "?"} vm-rtt={Ms(state.VmRttMs)}");
        foreach (var (host, injected, measured) in state.Hosts)
        {
            s.Append(CultureInfo.InvariantCulture, $" | {host} +{injected:0}ms rtt={Ms(measured)}");
        }

        if (state.Migration is { } m)
        {
            var p = m.Progress;
            var pct = p.DataTotalBytes is > 0 && p.DataProcessedBytes is { } done ? 100.0 * done / p.DataTotalBytes.Value : 0;
            s.Append(CultureInfo.InvariantCulture, $" | migrating {m.From}->{m.To} {pct:0}%");
        }

        return s.ToString();
    }

    private static string Ms(double? value) => value is { } v ? v.ToString("0.0", CultureInfo.InvariantCulture) + " ms" : "lost";
}
