using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Samples.Netem;

/// <summary>Where the shaped device is: this machine, or a host reached over SSH.</summary>
/// <param name="User">The user to log in as.</param>
/// <param name="Host">The host name or address.</param>
/// <param name="Port">The SSH port.</param>
/// <param name="KeyFile">The private key file.</param>
/// <param name="KnownHostsFile">The known_hosts file.</param>
internal sealed record SshTarget(string User, string Host, int Port, string KeyFile, string KnownHostsFile);

/// <summary>The parsed and checked command line of <c>cloudlets-netem</c>; nothing on the machine is looked at here.</summary>
/// <param name="Verb">set, show or del.</param>
/// <param name="Device">The device.</param>
/// <param name="NetworkNamespace">The device's named network namespace, or null for the caller's.</param>
/// <param name="Impairment">For <c>set</c>: what is done to the packets.</param>
/// <param name="Destinations">For <c>set</c>: the networks whose packets are delayed; empty for every packet.</param>
/// <param name="Json">For <c>show</c>: print JSON.</param>
/// <param name="Ssh">The remote host, or null for this machine.</param>
internal sealed record NetemCommandLine(
    string Verb,
    string Device,
    string? NetworkNamespace,
    Impairment? Impairment,
    IReadOnlyList<IPNetwork> Destinations,
    bool Json,
    SshTarget? Ssh)
{
    /// <summary>The verbs.</summary>
    public static readonly IReadOnlyList<string> Verbs = ["set", "show", "del"];

    /// <summary>The owner tag of this device: one per (namespace, device), so two devices never share rules.</summary>
    public string Owner => OwnerFor(NetworkNamespace, Device);

    /// <summary>
    /// The plan <c>set</c> applies: one egress rule for the whole device, or one per destination, all with the
    /// same impairment, named <c>all</c> or <c>to1</c>, <c>to2</c>, …
    /// </summary>
    public ShapingPlan Plan()
    {
        var impairment = Impairment ?? throw new InvalidOperationException("Only 'set' has a plan.");
        if (Destinations.Count == 0)
        {
            return new ShapingPlan(Owner, [ShapingRule.Egress(Device, impairment) with { NetworkNamespace = NetworkNamespace, Name = "all" }]);
        }

        return new ShapingPlan(Owner, [.. Destinations.Select((d, i) =>
            ShapingRule.Egress(Device, impairment, TrafficMatch.To(d)) with { NetworkNamespace = NetworkNamespace, Name = "to" + (i + 1).ToString(CultureInfo.InvariantCulture) })]);
    }

    /// <summary>
    /// The owner tag for a device: <c>cnt-</c>, 8 hex digits of a SHA-256 of the namespace and the device, <c>-</c>
    /// and up to 5 characters of the device (for people reading <c>iptables -S</c>); at most 18 characters.
    /// </summary>
    public static string OwnerFor(string? networkNamespace, string device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes((networkNamespace ?? "") + "\0" + device));
        var readable = new string([.. device.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').Take(5)]);
        return "cnt-" + Convert.ToHexStringLower(hash, 0, 4) + "-" + readable;
    }

    /// <summary>Parses the arguments; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static NetemCommandLine Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var commands = new NetemCommands();
        return From(commands, SampleCommandLine.ParseOrThrow(commands.Root, args));
    }

    /// <summary>Reads and checks a parse of <see cref="NetemCommands"/> that had no syntax errors; throws as <see cref="Parse"/> does.</summary>
    public static NetemCommandLine From(NetemCommands commands, ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(commands);
        ArgumentNullException.ThrowIfNull(result);
        var verb = result.CommandResult.Command.Name;
        if (!Verbs.Contains(verb))
        {
            throw new FormatException($"no command given (commands: {string.Join(", ", Verbs)})");
        }

        var device = result.GetValue(commands.Device) ?? "";
        if (device.StartsWith('-'))
        {
            throw new FormatException($"unknown option '{device}' for '{verb}'");
        }

        try
        {
            ShapingPlanValidator.ValidateInterfaceName(device, "DEV");
        }
        catch (ShapingValidationException ex)
        {
            throw new FormatException(ex.Message, ex);
        }

        var netns = result.GetValue(commands.Namespace);
        if (netns is not null)
        {
            try
            {
                Cloudlets.Probing.Linux.NetworkNamespace.ValidateName(netns);
            }
            catch (ArgumentException ex)
            {
                throw new FormatException("--netns: " + ex.Message, ex);
            }
        }

        Impairment? impairment = null;
        List<IPNetwork> destinations = [];
        if (verb == "set")
        {
            var delay = ParseTime(result.GetValue(commands.Delay) ?? "", "--delay");
            var jitter = result.GetValue(commands.Jitter) is { } j ? ParseTime(j, "--jitter") : TimeSpan.Zero;
            if (jitter > delay)
            {
                throw new FormatException(string.Create(CultureInfo.InvariantCulture,
                    $"--jitter {jitter.TotalMilliseconds:0.###} ms is above the delay ({delay.TotalMilliseconds:0.###} ms): a packet would leave before it arrived"));
            }

            var loss = result.GetValue(commands.Loss) is { } l ? ParsePercent(l, "--loss") : 0;
            impairment = new Impairment { Delay = delay, Jitter = jitter, LossPercent = loss };
            foreach (var to in result.GetValue(commands.To) ?? [])
            {
                var network = ParseNetwork(to);
                if (destinations.Contains(network))
                {
                    throw new FormatException($"--to {to} is given twice");
                }

                destinations.Add(network);
            }

            if (destinations.Count >= 16)
            {
                throw new FormatException($"{destinations.Count} --to networks; at most 15 are allowed per device");
            }
        }

        return new NetemCommandLine(verb, device, netns, impairment, destinations, verb == "show" && result.GetValue(commands.Json), ParseSsh(commands, result));
    }

    /// <summary>
    /// Parses a time: a number with the unit <c>us</c>, <c>ms</c> or <c>s</c> (<c>300ms</c>, <c>0.3s</c>, <c>250us</c>), or a
    /// bare number of milliseconds. Negative, NaN, infinite or above <see cref="Impairment.MaxDelay"/> is refused.
    /// </summary>
    public static TimeSpan ParseTime(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var (number, scale) = t.EndsWith("us", StringComparison.OrdinalIgnoreCase) ? (t[..^2], 0.001)
            : t.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? (t[..^2], 1.0)
            : t.EndsWith('s') || t.EndsWith('S') ? (t[..^1], 1000.0)
            : (t, 1.0);
        if (number.Length == 0 || !double.TryParse(number, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ||
            !double.IsFinite(value))
        {
            throw new FormatException($"{option} '{text}' is not a time: give 300ms, 0.3s, 250us or a number of milliseconds");
        }

        var ms = value * scale;
        if (ms < 0)
        {
            throw new FormatException($"{option} '{text}' is negative");
        }

        if (ms > Impairment.MaxDelay.TotalMilliseconds)
        {
            throw new FormatException($"{option} '{text}' is above the largest delay, {Impairment.MaxDelay.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }

        return TimeSpan.FromMicroseconds(Math.Round(ms * 1000));
    }

    /// <summary>Parses a percentage: <c>1%</c>, <c>0.5</c>; 0 to 100.</summary>
    public static double ParsePercent(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var number = t.EndsWith('%') ? t[..^1] : t;
        if (number.Length == 0 || !double.TryParse(number, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ||
            !double.IsFinite(value) || value < 0 || value > 100)
        {
            throw new FormatException($"{option} '{text}' is not a percentage from 0 to 100 (1%, 0.5)");
        }

        return value;
    }

    /// <summary>Parses a destination: a network in CIDR notation (host bits clear) or one IPv4 or IPv6 address.</summary>
    public static IPNetwork ParseNetwork(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];

        // Digits and dots (IPv4) or hex digits and colons (IPv6): IPAddress.TryParse alone also takes "1" or "0x1".
        var looksLikeAddress = addressText.Length > 0 &&
            (addressText.All(c => char.IsAsciiDigit(c) || c == '.') && addressText.Count(c => c == '.') == 3 ||
             addressText.Contains(':', StringComparison.Ordinal) && addressText.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.'));
        if (!looksLikeAddress || !IPAddress.TryParse(addressText, out var address))
        {
            throw new FormatException($"--to '{text}' is not a network (198.18.1.0/24) or an IPv4 or IPv6 address");
        }

        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = max;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max))
        {
            throw new FormatException($"--to '{text}': the prefix length must be a number from 0 to {max.ToString(CultureInfo.InvariantCulture)}");
        }

        var network = new IPNetwork(Masked(address, prefix), prefix);
        if (!network.BaseAddress.Equals(address))
        {
            throw new FormatException($"--to '{text}' has host bits set; the network is {network}");
        }

        return network;
    }

    private static IPAddress Masked(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }

        return new IPAddress(bytes);
    }

    private static SshTarget? ParseSsh(NetemCommands commands, ParseResult result)
    {
        var destination = result.GetValue(commands.Ssh);
        var key = result.GetValue(commands.Key);
        var knownHosts = result.GetValue(commands.KnownHosts);
        var port = result.GetValue(commands.Port);
        if (destination is null)
        {
            if (key is not null || knownHosts is not null || port is not null)
            {
                throw new FormatException("--key, --known-hosts and --port need --ssh USER@HOST");
            }

            return null;
        }

        var at = destination.IndexOf('@', StringComparison.Ordinal);
        var user = at > 0 ? destination[..at] : "";
        var host = at > 0 ? destination[(at + 1)..] : "";
        if (user.Length == 0 || host.Length == 0 || host.Contains('@', StringComparison.Ordinal) ||
            destination.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '/' or '\'' or '"' or ';'))
        {
            throw new FormatException($"--ssh '{destination}' is not USER@HOST");
        }

        if (key is null)
        {
            throw new FormatException("--ssh needs --key FILE (only key logins are supported)");
        }

        if (port is < 1 or > 65535)
        {
            throw new FormatException($"--port must be from 1 to 65535, not {port}");
        }

        knownHosts ??= Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts");
        return new SshTarget(user, host, port ?? 22, key, knownHosts);
    }
}
