using System.Globalization;
using System.Net;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Netem.Tests.Lab;

/// <summary>
/// A small topology of network namespaces for shaping tests, all on 198.19.200.0/24: an edge
/// (198.19.200.1) and clouds c1…cN (198.19.200.11…) hang on one Linux bridge that lives in its own
/// namespace (ports p-e, p-c1, …). Names start with <c>nt-</c> and a per-process tag, so parallel labs
/// of other tests never collide. Everything is deleted on dispose.
/// </summary>
internal sealed class ShapingTopology : IAsyncDisposable
{
    private readonly List<string> namespaces = [];

    private ShapingTopology(string prefix, int clouds)
    {
        Prefix = prefix;
        Clouds = clouds;
    }

    public string Prefix { get; }

    public int Clouds { get; }

    public string Edge => Prefix + "-e";

    public string Bridge => Prefix + "-b";

    public static IPAddress EdgeAddress { get; } = IPAddress.Parse("198.19.200.1");

    public string Cloud(int i) => Prefix + "-c" + i.ToString(CultureInfo.InvariantCulture);

    /// <summary>The edge's IPv6 address (a unique local address inside the test's own namespaces).</summary>
    public static IPAddress EdgeAddress6 { get; } = IPAddress.Parse("fd00:5eed:c8::1");

    public static IPAddress CloudAddress6(int i) => IPAddress.Parse("fd00:5eed:c8::" + (0x10 + i).ToString("x", CultureInfo.InvariantCulture));

    public static IPAddress CloudAddress(int i) => IPAddress.Parse("198.19.200." + (10 + i).ToString(CultureInfo.InvariantCulture));

    public static string Port(string host) => "p-" + host;

    public static async Task<ShapingTopology> CreateAsync(string tag, int clouds)
    {
        var t = new ShapingTopology($"nt-{tag}", clouds);
        try
        {
            await t.BuildAsync();
            return t;
        }
        catch
        {
            await t.DisposeAsync();
            throw;
        }
    }

    private async Task BuildAsync()
    {
        await AddNamespaceAsync(Bridge);
        await Run("ip", "-n", Bridge, "link", "add", "br0", "type", "bridge");
        await Run("ip", "-n", Bridge, "link", "set", "br0", "up");
        var hosts = new List<(string Name, string Ns, IPAddress Address, IPAddress Address6)> { ("e", Edge, EdgeAddress, EdgeAddress6) };
        for (var i = 1; i <= Clouds; i++)
        {
            hosts.Add(("c" + i.ToString(CultureInfo.InvariantCulture), Cloud(i), CloudAddress(i), CloudAddress6(i)));
        }

        foreach (var (name, ns, address, address6) in hosts)
        {
            await AddNamespaceAsync(ns);
            await Run("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", Port(name), "netns", Bridge);
            await Run("ip", "-n", Bridge, "link", "set", Port(name), "master", "br0");
            await Run("ip", "-n", Bridge, "link", "set", Port(name), "up");
            await Run("ip", "-n", ns, "addr", "add", address + "/24", "dev", "eth0");
            await Run("ip", "-n", ns, "addr", "add", address6 + "/64", "dev", "eth0", "nodad");
            await Run("ip", "-n", ns, "link", "set", "eth0", "up");
        }
    }

    private async Task AddNamespaceAsync(string ns)
    {
        await Run("ip", "netns", "add", ns);
        namespaces.Add(ns);
        await Run("ip", "-n", ns, "link", "set", "lo", "up");
    }

    public static async Task<CommandResult> Run(params string[] argv)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of(argv[0], argv[1..]));
        if (!r.Succeeded)
        {
            throw new CommandException(r);
        }

        return r;
    }

    /// <summary>Pings <paramref name="target"/> from <paramref name="ns"/> with fping (bounded count); returns the RTTs in ms, in order (lost probes left out).</summary>
    public static async Task<List<double>> PingAsync(string ns, IPAddress target, int count, double intervalSeconds = 0.2)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("fping", "-C", count.ToString(CultureInfo.InvariantCulture),
            "-p", ((int)(intervalSeconds * 1000)).ToString(CultureInfo.InvariantCulture), "-q", "-t", "2000", target.ToString()).InNamespace(ns));

        // fping -C -q prints "ADDRESS : t1 t2 - t4 …" on stderr ("-" for a lost probe).
        var line = r.StandardError.Split('\n').FirstOrDefault(l => l.StartsWith(target + " ", StringComparison.Ordinal)) ?? "";
        var colon = line.IndexOf(" : ", StringComparison.Ordinal);
        return colon < 0 ? [] : [.. line[(colon + 3)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(t => t != "-").Select(t => double.Parse(t, CultureInfo.InvariantCulture))];
    }

    /// <summary>The median RTT of a ping run, after dropping the first (warm-up, ARP) sample.</summary>
    public static async Task<double> MedianRttAsync(string ns, IPAddress target, int count = 8)
    {
        var rtts = await PingAsync(ns, target, count + 1);
        Assert.That(rtts, Has.Count.GreaterThanOrEqualTo(count - 1), $"ping {target} from {ns} lost packets");
        return Median(rtts.Skip(1).ToList());
    }

    public static double Median(IReadOnlyList<double> values)
    {
        var s = values.Order().ToList();
        return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var ns in Enumerable.Reverse(namespaces))
        {
            await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("ip", "netns", "del", ns));
        }
    }
}
