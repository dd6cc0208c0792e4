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
    private const string Usage =
        "usage: cloudlets-probe [--count N] [--period MS] [--interval MS] [--timeout MS] [--tcp PORT] [--json] [--netns NAME] TARGET...\n" +
        "  --count N      probes per target (default 1)\n" +
        "  --period MS    least time between two probes to one target (default 1000)\n" +
        "  --interval MS  least time between any two probes sent, 0 = no pause (default 10)\n" +
        "  --timeout MS   how long a probe waits for its reply (default 500)\n" +
        "  --tcp PORT     time the TCP handshake to PORT instead of ICMP echo\n" +
        "  --json         print one JSON object with per-target figures\n" +
        "  --netns NAME   send from the named network namespace";

    /// <summary>Parses, validates, probes and prints; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ProbeCommandLine line;
        try
        {
            line = ProbeCommandLine.Parse(args);
        }
        catch (FormatException ex)
        {
            await Console.Error.WriteLineAsync($"cloudlets-probe: {ex.Message}\n{Usage}");
            return 2;
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
        int count = 1, period = 1000, interval = 10, timeout = 500;
        int? port = null;
        var json = false;
        string? netns = null;
        var targets = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            switch (arg)
            {
                case "--count": count = Number(args, ref i, arg, 1, int.MaxValue); break;
                case "--period": period = Number(args, ref i, arg, 1, 3_600_000); break;
                case "--interval": interval = Number(args, ref i, arg, 0, 3_600_000); break;
                case "--timeout": timeout = Number(args, ref i, arg, 1, 3_600_000); break;
                case "--tcp": port = Number(args, ref i, arg, 1, 65535); break;
                case "--json": json = true; break;
                case "--netns":
                    netns = Value(args, ref i, arg);
                    if (OperatingSystem.IsLinux())
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

                    break;
                case "--":
                    targets.AddRange(args.Skip(i + 1));
                    i = args.Count;
                    break;
                default:
                    if (arg.StartsWith('-'))
                    {
                        throw new FormatException($"unknown option '{arg}'.");
                    }

                    targets.Add(arg);
                    break;
            }
        }

        if (targets.Count == 0)
        {
            throw new FormatException("no target given.");
        }

        if ((long)count * targets.Count > 100_000_000)
        {
            throw new FormatException($"{count} probes to each of {targets.Count} targets is more than 100,000,000 probes.");
        }

        return new ProbeCommandLine(count, period, interval, timeout, port, json, netns, targets);
    }

    private static string Value(IReadOnlyList<string> args, ref int i, string option)
    {
        if (i + 1 >= args.Count)
        {
            throw new FormatException($"{option} needs a value.");
        }

        return args[++i];
    }

    private static int Number(IReadOnlyList<string> args, ref int i, string option, int min, int max)
    {
        var text = Value(args, ref i, option);
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            throw new FormatException($"{option} needs a whole number, not '{text}'.");
        }

        if (value < min || value > max)
        {
            throw new FormatException($"{option} must be from {min} to {max}, not {value}.");
        }

        return (int)value;
    }
}
