using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.Probing.Tcp;

namespace Cloudlets.Samples.Probe;

/// <summary>The command line of the sample.</summary>
public static class ProbeCommand
{
    internal const string Description = """
        cloudlets-probe: measures the round-trip time to each TARGET (an IPv4 or IPv6 address, or a host name) by ICMP
        echo, or by timing the TCP handshake with --tcp, and prints every probe and each target's figures, as fping -C
        does (or one JSON object with --json).

        Needs root for ICMP unless net.ipv4.ping_group_range covers the user (then it uses datagram ICMP sockets),
        and for --netns. TCP probes need no privilege.

        Exit codes:
          0  every target answered at least once (also --help and --version)
          1  a target never answered
          2  bad command line, or a target that does not resolve (nothing was sent)
          3  probing is impossible here (no ICMP socket allowed, or not Linux for --netns)
        """;

    private const string Synopsis = "usage: cloudlets-probe [--count N] [--period MS] [--interval MS] [--timeout MS] [--tcp PORT] [--json] [--netns NAME] TARGET...";

    /// <summary>Parses, validates, probes and prints; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var commands = new ProbeCommands();
        commands.Root.SetAction((result, _) => RunParsedAsync(commands, result));
        return await SampleCommandLine.InvokeAsync(commands.Root, "cloudlets-probe", args, Synopsis);
    }

    private static async Task<int> RunParsedAsync(ProbeCommands commands, ParseResult result)
    {
        ProbeCommandLine line;
        try
        {
            line = ProbeCommandLine.From(commands, result);
        }
        catch (FormatException ex)
        {
            await SampleCommandLine.WriteUsageErrorAsync(Console.Error, "cloudlets-probe", [ex.Message], Synopsis);
            return SampleCommandLine.UsageError;
        }

        ProbeTarget[] targets;
        try
        {
            targets = await ResolveAsync(line);
        }
        catch (FormatException ex)
        {
            await Console.Error.WriteLineAsync($"cloudlets-probe: {ex.Message}");
            return 2;
        }

        var stopwatch = Stopwatch.StartNew();
        var statistics = new RollingLatencyStatistics[targets.Length];
        var index = new Dictionary<ProbeTarget, int>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < targets.Length; i++)
        {
            statistics[i] = new RollingLatencyStatistics(line.Count);
            index[targets[i]] = i;
        }

        // Every sample, for the fping-like listing (not needed for --json).
        var listing = line.Json ? null : new List<LatencySample>[targets.Length];
        if (listing is not null)
        {
            for (var i = 0; i < listing.Length; i++)
            {
                listing[i] = new List<LatencySample>(line.Count);
            }
        }

        var schedule = new ProbeSchedule(line.Count, TimeSpan.FromMilliseconds(line.PeriodMs), TimeSpan.FromMilliseconds(line.IntervalMs), TimeSpan.FromMilliseconds(line.TimeoutMs));
        try
        {
            await using IMultiTargetLatencyProbe probe = line.TcpPort is null
                ? IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = line.NetworkNamespace, EnableIPv6 = targets.Any(t => t.Address.AddressFamily == AddressFamily.InterNetworkV6) })
                : new TcpConnectProber(new TcpConnectProberOptions { NetworkNamespace = line.NetworkNamespace });
            await probe.RunAsync(targets, schedule, sample =>
            {
                var i = index[sample.Target];
                statistics[i].Add(sample);
                listing?[i].Add(sample);
            });
        }
        catch (Exception ex) when (ex is IcmpUnavailableException or IOException or PlatformNotSupportedException)
        {
            await Console.Error.WriteLineAsync($"cloudlets-probe: {ex.Message}");
            return 3;
        }

        var elapsed = stopwatch.Elapsed;
        var summaries = statistics.Select(s => s.Summarize()).ToArray();
        if (line.Json)
        {
            WriteJson(targets, summaries, elapsed);
        }
        else
        {
            WriteListing(targets, listing!, summaries, elapsed);
        }

        return summaries.All(s => s.Received > 0) ? 0 : 1;
    }

    private static async Task<ProbeTarget[]> ResolveAsync(ProbeCommandLine line)
    {
        var targets = new ProbeTarget[line.Targets.Count];
        for (var i = 0; i < targets.Length; i++)
        {
            var text = line.Targets[i];
            IPAddress address;
            if (IPAddress.TryParse(text, out var parsed) && LooksLikeAddress(text))
            {
                address = parsed.IsIPv4MappedToIPv6 ? parsed.MapToIPv4() : parsed;
            }
            else if (LooksLikeAddress(text))
            {
                throw new FormatException($"'{text}' is not a valid IPv4 or IPv6 address.");
            }
            else
            {
                try
                {
                    var found = await Dns.GetHostAddressesAsync(text);
                    address = found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                        ?? found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetworkV6)
                        ?? throw new FormatException($"'{text}' does not resolve to an IPv4 or IPv6 address.");
                }
                catch (SocketException ex)
                {
                    throw new FormatException($"'{text}' does not resolve: {ex.Message}.");
                }
                catch (ArgumentException ex)
                {
                    throw new FormatException($"'{text}' is not a valid host name: {ex.Message}");
                }
            }

            targets[i] = new ProbeTarget(text, address, line.TcpPort);
        }

        return targets;
    }

    // Digits and dots only (IPv4) or any colon (IPv6): meant as an address, never looked up as a name.
    private static bool LooksLikeAddress(string text)
        => text.Contains(':', StringComparison.Ordinal) || (text.Length > 0 && text.All(c => char.IsAsciiDigit(c) || c == '.'));

    private static void WriteJson(ProbeTarget[] targets, LatencySummary[] summaries, TimeSpan elapsed)
    {
        using var stdout = Console.OpenStandardOutput();
        using var json = new Utf8JsonWriter(stdout);
        json.WriteStartObject();
        json.WriteNumber("elapsedMs", Math.Round(elapsed.TotalMilliseconds, 3));
        json.WriteStartArray("targets");
        for (var i = 0; i < targets.Length; i++)
        {
            var s = summaries[i];
            json.WriteStartObject();
            json.WriteString("target", targets[i].Name);
            json.WriteNumber("sent", s.Sent);
            json.WriteNumber("received", s.Received);
            json.WriteNumber("lossPercent", Math.Round(s.LossRate * 100, 3));
            WriteMs(json, "minMs", s.Min);
            WriteMs(json, "medianMs", s.Median);
            WriteMs(json, "p95Ms", s.P95);
            WriteMs(json, "maxMs", s.Max);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
        json.Flush();
        stdout.WriteByte((byte)'\n');
    }

    private static void WriteMs(Utf8JsonWriter json, string name, TimeSpan? value)
    {
        if (value is { } v)
        {
            json.WriteNumber(name, Math.Round(v.TotalMilliseconds, 4));
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static void WriteListing(ProbeTarget[] targets, List<LatencySample>[] listing, LatencySummary[] summaries, TimeSpan elapsed)
    {
        var width = targets.Max(t => t.Name.Length);
        var output = new System.Text.StringBuilder();
        for (var i = 0; i < targets.Length; i++)
        {
            output.Append(targets[i].Name.PadRight(width)).Append(" :");
            foreach (var sample in listing[i].OrderBy(s => s.SentAt))
            {
                output.Append(' ').Append(sample.RoundTripTime is { } rtt ? rtt.TotalMilliseconds.ToString("0.000", CultureInfo.InvariantCulture) : "-");
            }

            var s = summaries[i];
            output.Append(CultureInfo.InvariantCulture, $"   ({s.Received}/{s.Sent}, {s.LossRate * 100:0.#}% loss");
            if (s.Median is { } median)
            {
                output.Append(CultureInfo.InvariantCulture, $", min/median/p95/max {s.Min!.Value.TotalMilliseconds:0.000}/{median.TotalMilliseconds:0.000}/{s.P95!.Value.TotalMilliseconds:0.000}/{s.Max!.Value.TotalMilliseconds:0.000} ms");
            }

            output.AppendLine(")");
        }

        output.AppendLine(CultureInfo.InvariantCulture, $"elapsed {elapsed.TotalMilliseconds:0.0} ms");
        Console.Out.Write(output.ToString());
    }
}

/// <summary>The parsed command line; <see cref="Parse"/> throws <see cref="FormatException"/> saying what is wrong.</summary>
public sealed record ProbeCommandLine(
    int Count, int PeriodMs, int IntervalMs, int TimeoutMs, int? TcpPort, bool Json, string? NetworkNamespace, IReadOnlyList<string> Targets)
{
    /// <summary>Parses and validates the arguments; nothing is resolved or sent here.</summary>
    public static ProbeCommandLine Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var commands = new ProbeCommands();
        return From(commands, SampleCommandLine.ParseOrThrow(commands.Root, args));
    }

    /// <summary>Reads and checks a parse of <see cref="ProbeCommands"/> that had no syntax errors; nothing is resolved or sent here.</summary>
    public static ProbeCommandLine From(ProbeCommands commands, ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(commands);
        ArgumentNullException.ThrowIfNull(result);
        var targets = result.GetValue(commands.Targets) ?? [];

        // No address or host name starts with '-': such a token is an option this tool does not have.
        if (targets.FirstOrDefault(t => t.StartsWith('-')) is { } unknown)
        {
            throw new FormatException($"unknown option '{unknown}'.");
        }

        if (targets.Length == 0)
        {
            throw new FormatException("no target given.");
        }

        var count = result.GetValue(commands.Count);
        if ((long)count * targets.Length > 100_000_000)
        {
            throw new FormatException($"{count} probes to each of {targets.Length} targets is more than 100,000,000 probes.");
        }

        var netns = result.GetValue(commands.NetworkNamespace);
        if (netns is not null && OperatingSystem.IsLinux())
        {
            try
            {
                Cloudlets.Probing.Linux.NetworkNamespace.ValidateName(netns);
            }
            catch (ArgumentException ex)
            {
                throw new FormatException(ex.Message, ex);
            }
        }

        return new ProbeCommandLine(
            count, result.GetValue(commands.Period), result.GetValue(commands.Interval), result.GetValue(commands.Timeout),
            result.GetValue(commands.TcpPort), result.GetValue(commands.Json), netns, targets);
    }
}

/// <summary>The command tree of <c>cloudlets-probe</c> (System.CommandLine); <see cref="ProbeCommandLine.From"/> reads a parse.</summary>
public sealed class ProbeCommands
{
    /// <summary>Builds the tree (no action set).</summary>
    public ProbeCommands()
    {
        Count = Number("--count", "N", "Probes per target.", 1, 1, int.MaxValue);
        Period = Number("--period", "MS", "Least time between two probes to one target, in milliseconds.", 1000, 1, 3_600_000);
        Interval = Number("--interval", "MS", "Least time between any two probes sent, in milliseconds; 0 = no pause.", 10, 0, 3_600_000);
        Timeout = Number("--timeout", "MS", "How long a probe waits for its reply, in milliseconds.", 500, 1, 3_600_000);
        TcpPort = new Option<int?>("--tcp") { Description = "Time the TCP handshake to PORT instead of ICMP echo.", HelpName = "PORT" };
        TcpPort.Validators.Add(r => CheckRange(r, "--tcp", 1, 65535));
        Json = new Option<bool>("--json") { Description = "Print one JSON object with per-target figures." };
        NetworkNamespace = new Option<string?>("--netns") { Description = "Send from the named network namespace.", HelpName = "NAME" };
        Targets = new Argument<string[]>("TARGET") { Description = "An IPv4 or IPv6 address, or a host name (resolved once, IPv4 first).", Arity = ArgumentArity.ZeroOrMore };
        Root = new RootCommand(ProbeCommand.Description) { Count, Period, Interval, Timeout, TcpPort, Json, NetworkNamespace, Targets };
    }

    /// <summary>The root command (<c>--help</c>, <c>--version</c>, the options and the targets).</summary>
    public RootCommand Root { get; }

    /// <summary><c>--count</c>.</summary>
    public Option<int> Count { get; }

    /// <summary><c>--period</c>.</summary>
    public Option<int> Period { get; }

    /// <summary><c>--interval</c>.</summary>
    public Option<int> Interval { get; }

    /// <summary><c>--timeout</c>.</summary>
    public Option<int> Timeout { get; }

    /// <summary><c>--tcp</c>.</summary>
    public Option<int?> TcpPort { get; }

    /// <summary><c>--json</c>.</summary>
    public Option<bool> Json { get; }

    /// <summary><c>--netns</c>.</summary>
    public Option<string?> NetworkNamespace { get; }

    /// <summary>The targets.</summary>
    public Argument<string[]> Targets { get; }

    private static Option<int> Number(string name, string helpName, string description, int defaultValue, int min, int max)
    {
        var option = new Option<int>(name) { Description = description, HelpName = helpName, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(r => CheckRange(r, name, min, max));
        return option;
    }

    private static void CheckRange(System.CommandLine.Parsing.OptionResult result, string name, int min, int max)
    {
        // Absent (the default holds), or not a whole number (System.CommandLine reports that): nothing to check.
        if (result.Tokens.Count == 0 || !long.TryParse(result.Tokens[^1].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return;
        }

        if (value < min || value > max)
        {
            result.AddError($"{name} must be from {min} to {max}, not {value}.");
        }
    }
}
