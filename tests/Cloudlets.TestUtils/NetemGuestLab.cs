using System.Globalization;
using System.Net;
using Cloudlets.Lab;
using Cloudlets.Lab.Guests;
using Cloudlets.Probing.Commands;

namespace Cloudlets.TestUtils;

/// <summary>
/// A one-host lab whose one guest is a real netem host (<see cref="LabGuestOptions.NetemHost"/>), with a second
/// address on the edge's interface (198.18.K.2, unused by the lab's plan) so two destinations can be shaped
/// differently. Measurements are ping runs from the edge namespace, so the guest's eth0 egress (the replies)
/// carries the delay. Start it once per fixture (OneTimeSetUp): a boot costs about ten seconds.
/// </summary>
public sealed class NetemGuestLab : IAsyncDisposable
{
    private NetemGuestLab(CloudletLab lab, LabNetemGuest guest, IPAddress secondEdgeAddress)
    {
        Lab = lab;
        Guest = guest;
        SecondEdgeAddress = secondEdgeAddress;
    }

    /// <summary>The lab.</summary>
    public CloudletLab Lab { get; }

    /// <summary>The netem-host guest and its SSH credentials.</summary>
    public LabNetemGuest Guest { get; }

    /// <summary>The edge's own address (198.18.K.1).</summary>
    public IPAddress EdgeAddress => Lab.Edge.Address;

    /// <summary>The edge's second address (198.18.K.2).</summary>
    public IPAddress SecondEdgeAddress { get; }

    /// <summary>The edge namespace.</summary>
    public string EdgeNamespace => Lab.Edge.Namespace;

    /// <summary>Checks the gate (the lab's prerequisites, and Dropbear for the guest), then starts the lab.</summary>
    public static async Task<NetemGuestLab> StartAsync(string prefix, CancellationToken cancellationToken = default)
    {
        LabGate.Require();
        LabGate.RequireRoot("The netem-host guest's tests (Dropbear: dropbear-bin, which eng/install-deps.sh installs)", "dropbearkey", "dropbear");

        var lab = new CloudletLabBuilder().WithName(TestLabs.UniqueName(prefix)).WithHosts(1).WithGuestOn("cloudlet-1")
            .WithGuestOptions(new LabGuestOptions { NetemHost = true }).Build();
        try
        {
            await lab.StartAsync(cancellationToken).ConfigureAwait(false);
            var bytes = lab.Edge.Address.GetAddressBytes();
            bytes[3] = 2;
            var second = new IPAddress(bytes);
            await LocalCommandRunner.Instance.RunCheckedAsync(CommandLine.Of("ip", "-n", lab.Edge.Namespace, "addr", "add", second + "/" + LabAddressPlan.PrefixLength.ToString(CultureInfo.InvariantCulture), "dev", LabNaming.EdgeInterface), cancellationToken).ConfigureAwait(false);
            return new NetemGuestLab(lab, lab.NetemGuests.Single(), second);
        }
        catch
        {
            await lab.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// RTTs in ms of <paramref name="count"/> ICMP probes from the edge to the guest, every <paramref name="intervalMs"/>,
    /// from <paramref name="source"/> (null: the edge's own address); lost probes are left out. Busybox ping, because it
    /// prints every RTT to the microsecond (fping and iputils round a 300 ms RTT to whole milliseconds).
    /// </summary>
    public async Task<List<double>> PingAsync(int count, IPAddress? source = null, int intervalMs = 100, CancellationToken cancellationToken = default)
    {
        IEnumerable<string> from = source is null ? [] : ["-I", source.ToString()];
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of(GuestImage.BusyboxPath, ["ping", "-c", count.ToString(CultureInfo.InvariantCulture),
            "-i", (intervalMs / 1000.0).ToString("0.###", CultureInfo.InvariantCulture), "-W", "3", .. from, Guest.Address.ToString()]).InNamespace(EdgeNamespace), cancellationToken).ConfigureAwait(false);

        // "64 bytes from A: seq=N ttl=64 time=300.123 ms"
        return [.. r.StandardOutput.Split('\n')
            .Select(l => l.IndexOf(" time=", StringComparison.Ordinal) is var i and >= 0 ? l[(i + 6)..].Split(' ')[0] : null)
            .OfType<string>()
            .Select(t => double.Parse(t, CultureInfo.InvariantCulture))];
    }

    /// <summary>The median RTT of <paramref name="count"/> probes after one warm-up probe (ARP); fails when more than one is lost.</summary>
    public async Task<double> MedianRttAsync(int count, IPAddress? source = null, CancellationToken cancellationToken = default)
    {
        var rtts = await PingAsync(count + 1, source, cancellationToken: cancellationToken).ConfigureAwait(false);
        Assert.That(rtts, Has.Count.GreaterThanOrEqualTo(count), $"ping {Guest.Address} from {source?.ToString() ?? "the edge"} lost probes");
        var kept = rtts.Skip(1).Order().ToList();
        TestContext.Progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {kept.Count} probes from {source?.ToString() ?? EdgeAddress.ToString()}: min {kept[0]:0.000}, p25 {kept[kept.Count / 4]:0.000}, median {Median(kept):0.000}, p75 {kept[3 * kept.Count / 4]:0.000}, max {kept[^1]:0.000} ms"));
        return Median(kept);
    }

    /// <summary>The median of a list.</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var s = values.Order().ToList();
        return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>
    /// The issue's precision bound: the median RTT is the injected delay plus the unshaped baseline, within
    /// 1 ms + 2 % of that sum. Prints the figures (the README's table takes them from here).
    /// </summary>
    public static void AssertDelay(double measuredMs, double baselineMs, double delayMs, string what)
    {
        var expected = baselineMs + delayMs;
        var bound = 1 + (0.02 * expected);
        TestContext.Progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what}: median {measuredMs:0.000} ms, baseline {baselineMs:0.000} + delay {delayMs:0.###} = {expected:0.000} ms, error {measuredMs - expected:+0.000;-0.000} ms (bound ±{bound:0.000})"));
        Assert.That(measuredMs, Is.EqualTo(expected).Within(bound), $"{what}: baseline + {delayMs} ms within 1 ms + 2 %");
    }

    /// <summary>Tears the lab down.</summary>
    public ValueTask DisposeAsync() => Lab.DisposeAsync();
}
