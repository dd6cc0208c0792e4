using System.CommandLine;
using System.Globalization;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Shaping;

namespace Cloudlets.Samples.Lab;

/// <summary>The parsed command line of <c>cloudlets-lab</c>.</summary>
/// <param name="Verb">up, status, down, shape or clear.</param>
/// <param name="Name">The lab's name. The default is <c>cloudlets</c>.</param>
/// <param name="Hosts">For <c>up</c>: how many hosts. The default is 3.</param>
/// <param name="GuestsOn">For <c>up</c>: the hosts that get a guest.</param>
/// <param name="Json">For <c>status</c>: print JSON.</param>
/// <param name="CacheFolder">For <c>up</c>: the guest image cache, or null for the default.</param>
/// <param name="Delays">For <c>shape</c>: each host's one-way delay toward the edge, in the order given.</param>
/// <param name="HoldFor">For <c>shape</c>: how long to hold the delays, or null for until Ctrl+C.</param>
internal sealed record LabCommandLine(
    string Verb,
    string Name,
    int Hosts,
    IReadOnlyList<string> GuestsOn,
    bool Json,
    string? CacheFolder,
    IReadOnlyList<(string Host, TimeSpan Delay)> Delays,
    TimeSpan? HoldFor)
{
    /// <summary>The verbs.</summary>
    public static readonly IReadOnlyList<string> Verbs = ["up", "status", "down", "shape", "clear", "migrate", "cap"];

    /// <summary>The largest <c>--bandwidth</c>, in MiB/s.</summary>
    public const int MaxBandwidth = 100_000;

    /// <summary>For <c>migrate</c>: the guest (<c>guest-I</c>).</summary>
    public string? Guest { get; init; }

    /// <summary>For <c>migrate</c>: the destination host (<c>cloudlet-N</c>).</summary>
    public string? To { get; init; }

    /// <summary>For <c>cap</c>: the host-to-host cap in MiB/s, or <see langword="null"/> for <c>off</c>.</summary>
    public int? LinkCapMiBps { get; init; }

    /// <summary>For <c>migrate</c>: the bandwidth limit in MiB/s, 0 for none.</summary>
    public int Bandwidth { get; init; }

    /// <summary>For <c>up</c>: how many sites. The default is 1 (the edge alone).</summary>
    public int Sites { get; init; } = 1;

    /// <summary>For <c>shape --matrix FILE</c>: the latency matrix read from the file (checked), or null when HOST DELAY pairs were given.</summary>
    public IReadOnlyList<LabSiteDelay>? Matrix { get; init; }

    /// <summary>For <c>up</c>: the cloudlets-agent.dll to run a broker and an agent per site with, or null for none (<c>--agents</c>, <c>--agent DLL</c>).</summary>
    public string? AgentAssembly { get; init; }
    /// <summary>For <c>up</c>: MiB/s each guest it starts rewrites of its memory (0 to <see cref="LabGuestOptions.MaxDirtyRateMiBps"/>). The default is 0.</summary>
    public int DirtyRate { get; init; }

    /// <summary>For <c>up</c>: whether the guests it starts are netem hosts (<c>--netem-guest</c>; one on cloudlet-1 when no <c>--guest-on</c>).</summary>
    public bool NetemGuest { get; init; }

    /// <summary>For <c>up</c>: how the hosts' libvirtd is reached. The default is TCP.</summary>
    public LabTransport Transport { get; init; }

    /// <summary>The longest <c>--for</c>: one day.</summary>
    public static readonly TimeSpan MaxHold = TimeSpan.FromDays(1);

    /// <summary>The short usage printed after a usage error (the whole story is in <c>--help</c>).</summary>
    public const string Synopsis = """
        usage: cloudlets-lab up --hosts N [--sites M] [--guest-on HOST]... [--name NAME] [--cache FOLDER] [--transport tcp|tls|ssh|tls-sasl] [--dirty-rate MIBPS] [--netem-guest] [--agents [--agent DLL]]
               cloudlets-lab status [--json] [--name NAME]
               cloudlets-lab down [--name NAME]
               cloudlets-lab shape HOST DELAY [HOST DELAY]... [--for SECONDS] [--name NAME]
               cloudlets-lab shape --matrix FILE [--for SECONDS] [--name NAME]
               cloudlets-lab clear [--name NAME]
               cloudlets-lab migrate GUEST HOST [--bandwidth MIBS] [--name NAME]
               cloudlets-lab cap MIBPS|off [--name NAME]
        """;

    /// <summary>Parses the arguments; throws <see cref="FormatException"/> (or the lab's naming exception) on bad input.</summary>
    public static LabCommandLine Parse(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var commands = new LabCommands();
        return From(commands, SampleCommandLine.ParseOrThrow(commands.Root, args));
    }

    /// <summary>Reads and checks a parse of <see cref="LabCommands"/> that had no syntax errors; throws as <see cref="Parse"/> does.</summary>
    public static LabCommandLine From(LabCommands commands, ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(commands);
        ArgumentNullException.ThrowIfNull(result);
        var verb = result.CommandResult.Command.Name;
        if (!Verbs.Contains(verb))
        {
            throw new FormatException($"no command given (commands: {string.Join(", ", Verbs)})");
        }

        var name = result.GetValue(commands.Name) ?? "cloudlets";
        LabNaming.ValidateLabName(name);
        var holdFor = verb == "shape" && result.GetValue(commands.For) is { } hold ? ParseHold(hold) : (TimeSpan?)null;
        var bandwidth = 0;
        if (verb == "migrate" && result.GetValue(commands.Bandwidth) is { } mibs)
        {
            bandwidth = int.TryParse(mibs, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b is >= 1 and <= MaxBandwidth
                ? b
                : throw new FormatException($"--bandwidth takes MiB/s from 1 to {MaxBandwidth.ToString(CultureInfo.InvariantCulture)}, not '{mibs}'");
        }

        int? linkCap = null;
        if (verb == "cap")
        {
            var text = result.GetValue(commands.LinkRate) ?? string.Empty;
            linkCap = text == "off" ? null
                : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var cap) && cap is >= 1 and <= CloudletLab.MaxHostLinkMiBps ? cap
                : throw new FormatException($"cap takes MiB/s from 1 to {CloudletLab.MaxHostLinkMiBps.ToString(CultureInfo.InvariantCulture)} or off, not '{text}'");
        }

        var dirtyRate = verb == "up" ? result.GetValue(commands.DirtyRate) : 0;
        if (dirtyRate is < 0 or > LabGuestOptions.MaxDirtyRateMiBps)
        {
            throw new FormatException($"--dirty-rate takes MiB/s from 0 to {LabGuestOptions.MaxDirtyRateMiBps.ToString(CultureInfo.InvariantCulture)}, not {dirtyRate.ToString(CultureInfo.InvariantCulture)}");
        }

        List<(string Host, TimeSpan Delay)> delays = [];
        IReadOnlyList<LabSiteDelay>? matrix = null;
        if (verb == "shape")
        {
            var pairs = result.GetValue(commands.Pairs) ?? [];
            var matrixFile = result.GetValue(commands.Matrix);

            // HOST DELAY pairs take any token, so that a negative delay such as "-5" is refused as a delay, not
            // as an option; an option the command does not have still lands here and is named as one.
            if (pairs.FirstOrDefault(p => p.StartsWith("--", StringComparison.Ordinal)) is { } unknown)
            {
                throw new FormatException($"unknown option '{unknown}' for 'shape'");
            }

            if (matrixFile is not null)
            {
                matrix = pairs.Length == 0
                    ? ReadMatrix(matrixFile)
                    : throw new FormatException("shape takes HOST DELAY pairs or --matrix FILE, not both");
            }
            else
            {
                delays = ParseDelays([.. pairs]);
            }
        }

        string? agentAssembly = null;
        if (verb == "up" && result.GetValue(commands.Agent) is { } agentDll)
        {
            agentAssembly = result.GetValue(commands.Agents) && Path.IsPathFullyQualified(agentDll)
                ? agentDll
                : throw new FormatException(result.GetValue(commands.Agents) ? $"--agent takes the absolute path of cloudlets-agent.dll, not '{agentDll}'" : "--agent is given without --agents");
        }
        else if (verb == "up" && result.GetValue(commands.Agents))
        {
            agentAssembly = Path.Combine(AppContext.BaseDirectory, "cloudlets-agent.dll");
        }

        string? guest = null, to = null;
        if (verb == "migrate")
        {
            (guest, to) = (result.GetRequiredValue(commands.Guest), result.GetRequiredValue(commands.To));
            if (!guest.StartsWith("guest-", StringComparison.Ordinal) || !int.TryParse(guest.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out var gi) || gi is < 1 or > LabNaming.MaxGuests || guest[6] == '0')
            {
                throw new FormatException($"'{guest}' is not a lab guest (guest-1, guest-2, …)");
            }

            if (!LabNaming.TryParseHostName(to, out _))
            {
                throw new FormatException($"'{to}' is not a lab host (cloudlet-1, cloudlet-2, …)");
            }
        }

        return new LabCommandLine(
            verb,
            name,
            verb == "up" ? result.GetValue(commands.Hosts) : 3,
            verb == "up" ? result.GetValue(commands.GuestOn) ?? [] : [],
            verb == "status" && result.GetValue(commands.Json),
            verb == "up" ? result.GetValue(commands.Cache) : null,
            delays,
            holdFor)
        {
            Guest = guest,
            To = to,
            Bandwidth = bandwidth,
            LinkCapMiBps = linkCap,
            Sites = verb == "up" ? result.GetValue(commands.Sites) : 1,
            Matrix = matrix,
            AgentAssembly = agentAssembly,
            DirtyRate = dirtyRate,
            NetemGuest = verb == "up" && result.GetValue(commands.NetemGuest),
            Transport = verb != "up" ? LabTransport.Tcp : result.GetValue(commands.Transport) switch
            {
                "tls" => LabTransport.Tls,
                "ssh" => LabTransport.Ssh,
                "tls-sasl" => LabTransport.TlsSasl,
                _ => LabTransport.Tcp,
            },
        };
    }

    /// <summary>
    /// Parses a delay: a number of milliseconds (<c>300</c>, <c>20.5</c>, <c>300ms</c>) or of seconds
    /// (<c>0.3s</c>). Zero means unshaped; negative, NaN, infinite or above
    /// <see cref="Impairment.MaxDelay"/> is refused.
    /// </summary>
    public static TimeSpan ParseDelay(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (number, scale) = text.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? (text[..^2], 1.0)
            : text.EndsWith('s') || text.EndsWith('S') ? (text[..^1], 1000.0)
            : (text, 1.0);
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ||
            !double.IsFinite(value))
        {
            throw new FormatException($"'{text}' is not a delay: give milliseconds (300, 20.5, 300ms) or seconds (0.3s)");
        }

        var ms = value * scale;
        if (ms < 0)
        {
            throw new FormatException($"the delay '{text}' is negative");
        }

        if (ms > Impairment.MaxDelay.TotalMilliseconds)
        {
            throw new FormatException($"the delay '{text}' is above the largest delay, {Impairment.MaxDelay.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }

        return TimeSpan.FromMilliseconds(ms);
    }

    private static List<(string Host, TimeSpan Delay)> ParseDelays(List<string> positional)
    {
        if (positional.Count == 0)
        {
            throw new FormatException("shape needs at least one HOST DELAY pair, for example: shape cloudlet-1 300 cloudlet-2 20");
        }

        if (positional.Count % 2 != 0)
        {
            throw new FormatException($"shape takes HOST DELAY pairs; '{positional[^1]}' has no partner");
        }

        var delays = new List<(string, TimeSpan)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < positional.Count; i += 2)
        {
            var host = positional[i];
            if (!LabNaming.TryParseHostName(host, out _))
            {
                throw new FormatException($"'{host}' is not a lab host (cloudlet-1, cloudlet-2, …)");
            }

            if (!seen.Add(host))
            {
                throw new FormatException($"'{host}' is given twice");
            }

            delays.Add((host, ParseDelay(positional[i + 1])));
        }

        return delays;
    }

    /// <summary>Reads and checks a latency-matrix file (see <see cref="LabLatencyMatrix"/>); throws <see cref="FormatException"/> naming the file and the member.</summary>
    public static IReadOnlyList<LabSiteDelay> ReadMatrix(string file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string text;
        try
        {
            // A matrix is a few lines: a larger file is not one (and is not read whole).
            var info = new FileInfo(file);
            text = info.Length <= MaxMatrixBytes
                ? File.ReadAllText(file)
                : throw new FormatException($"--matrix {file}: {info.Length.ToString(CultureInfo.InvariantCulture)} bytes is too large for a latency matrix (at most {MaxMatrixBytes / 1024} KiB)");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new FormatException($"--matrix {file}: cannot read it ({ex.Message})", ex);
        }

        try
        {
            return LabLatencyMatrix.Parse(text);
        }
        catch (ShapingValidationException ex)
        {
            throw new FormatException($"--matrix {file}: {ex.Message}", ex);
        }
    }

    /// <summary>The largest latency-matrix file read.</summary>
    public const int MaxMatrixBytes = 64 * 1024;

    private static TimeSpan ParseHold(string text)
    {
        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) ||
            !double.IsFinite(seconds) || seconds <= 0 || seconds > MaxHold.TotalSeconds)
        {
            throw new FormatException($"--for takes a number of seconds above 0 and at most {MaxHold.TotalSeconds.ToString(CultureInfo.InvariantCulture)}, not '{text}'");
        }

        return TimeSpan.FromSeconds(seconds);
    }
}
