using System.Globalization;
using System.Net;
using System.Text.Json;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Commands;
using Cloudlets.Probing.Icmp;
using Cloudlets.TestUtils;

namespace Cloudlets.Samples.Tests.Netem;

/// <summary>
/// <c>cloudlets-netem</c> run as a child process, as root, on a veth pair between two network namespaces the
/// fixture creates (a: <c>va</c> 198.18.254.1; b: <c>vb</c> 198.18.254.2 and .3), measured with the library's ICMP
/// prober from a. This kernel has no netem, so the tool runs the NFQUEUE delay line and holds it in the foreground.
/// </summary>
[TestFixture]
[Category("Lab")]
[NonParallelizable]
public sealed class NetemToolLabTests
{
    private const string Device = "va";
    private const double DelayMs = 300;
    private static readonly string Tag = (Environment.ProcessId % 0xffff).ToString("x4", CultureInfo.InvariantCulture);
    private static readonly IPAddress Near = IPAddress.Parse("198.18.254.2");
    private static readonly IPAddress Other = IPAddress.Parse("198.18.254.3");
    private static readonly TimeSpan HoldBound = TimeSpan.FromSeconds(60);
    private readonly string a = $"cnt{Tag}-a";
    private readonly string b = $"cnt{Tag}-b";
    private readonly List<string> made = [];
    private IcmpProber prober = null!;
    private double baselineNear;
    private double baselineOther;

    [OneTimeSetUp]
    public async Task BuildTopology()
    {
        LabGate.RequireRoot("cloudlets-netem lab tests", "ip", "tc", "iptables", "iptables-save", "ip6tables-save", "kill");
        foreach (var ns in new[] { a, b })
        {
            await NetemToolProcess.RunCheckedAsync("ip", "netns", "add", ns);
            made.Add(ns);
            await NetemToolProcess.RunCheckedAsync("ip", "-n", ns, "link", "set", "lo", "up");
        }

        await NetemToolProcess.RunCheckedAsync("ip", "link", "add", Device, "netns", a, "type", "veth", "peer", "name", "vb", "netns", b);
        await NetemToolProcess.RunCheckedAsync("ip", "-n", a, "addr", "add", "198.18.254.1/24", "dev", Device);
        await NetemToolProcess.RunCheckedAsync("ip", "-n", b, "addr", "add", Near + "/24", "dev", "vb");
        await NetemToolProcess.RunCheckedAsync("ip", "-n", b, "addr", "add", Other + "/24", "dev", "vb");
        await NetemToolProcess.RunCheckedAsync("ip", "-n", a, "link", "set", Device, "up");
        await NetemToolProcess.RunCheckedAsync("ip", "-n", b, "link", "set", "vb", "up");
        prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = a, NetworkNamespace = a, EnableIPv6 = false });
        baselineNear = await MedianRttAsync(Near);
        baselineOther = await MedianRttAsync(Other);
        await TestContext.Progress.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"baseline RTT a -> {Near}: {baselineNear:0.000} ms, -> {Other}: {baselineOther:0.000} ms"));
    }

    [OneTimeTearDown]
    public async Task RemoveTopology()
    {
        if (prober is not null)
        {
            await prober.DisposeAsync();
        }

        foreach (var ns in Enumerable.Reverse(made))
        {
            await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("ip", "netns", "del", ns));
        }
    }

    [Test]
    public async Task Set_Delay300Held_ProbesShowItShowReportsItAndSigtermClearsToBaseline()
    {
        var before = await KernelStateAsync();
        await using var tool = NetemToolProcess.Start("set", Device, "--delay", "300ms", "--netns", a);
        await tool.WaitForErrorLineAsync("holding the delay", HoldBound);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(tool.Error, Does.Contain("backend nfqueue"), "the backend is named on stderr");
            Assert.That(tool.Output, Does.Contain("delay 300 ms"), "set prints what the kernel holds");
        }

        var shaped = await MedianRttAsync(Near);
        DelayAssert.AppliedOnce(shaped, baselineNear, DelayMs, $"cloudlets-netem set {Device} --delay 300ms: a -> {Near}");
        await TestContext.Progress.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"within 1 ms + 2 % of 300 ms + baseline ({1 + (0.02 * DelayMs):0.0} ms): {Math.Abs(shaped - baselineNear - DelayMs) <= 1 + (0.02 * DelayMs)}"));

        // show reads the kernel (iptables-save and the queue's listener), from another process.
        var (code, output, error) = await NetemToolProcess.RunAsync("show", Device, "--json", "--netns", a);
        Assert.That(code, Is.Zero, error);
        using (var json = JsonDocument.Parse(output))
        {
            var root = json.RootElement;
            var rule = root.GetProperty("rules").EnumerateArray().Single();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(root.GetProperty("applied").GetBoolean(), Is.True);
                Assert.That(root.GetProperty("backend").GetString(), Is.EqualTo("nfqueue"));
                Assert.That(root.GetProperty("device").GetString(), Is.EqualTo(Device));
                Assert.That(rule.GetProperty("delayMs").GetDouble(), Is.EqualTo(DelayMs));
                Assert.That(rule.GetProperty("destination").ValueKind, Is.EqualTo(JsonValueKind.Null));
                Assert.That(rule.GetProperty("queue").GetProperty("listening").GetBoolean(), Is.True, "the holding set is the queue's listener");
            }
        }

        await tool.SignalAsync("TERM");
        var exit = await tool.WaitForExitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit, Is.Zero, tool.Error);
            Assert.That(tool.Error, Does.Contain("cleared"));
            Assert.That(await KernelStateAsync(), Is.EqualTo(before), "SIGTERM leaves the namespace as it was");
        }

        var after = await MedianRttAsync(Near);
        await TestContext.Progress.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"after SIGTERM: a -> {Near} {after:0.000} ms (baseline {baselineNear:0.000} ms)"));
        Assert.That(after, Is.LessThan(baselineNear + DelayAssert.Slack(0)), "the RTT is back at baseline");
    }

    [Test]
    public async Task Set_ToOneAddress_DelaysOnlyThatDestination()
    {
        await using var tool = NetemToolProcess.Start("set", Device, "--delay", "300ms", "--to", Near + "/32", "--netns", a);
        await tool.WaitForErrorLineAsync("holding the delay", HoldBound);
        var near = await MedianRttAsync(Near);
        var other = await MedianRttAsync(Other);
        var (code, output, error) = await NetemToolProcess.RunAsync("show", Device, "--json", "--netns", a);
        await tool.SignalAsync("INT");
        var exit = await tool.WaitForExitAsync(TimeSpan.FromSeconds(30));
        using (Assert.EnterMultipleScope())
        {
            DelayAssert.AppliedOnce(near, baselineNear, DelayMs, $"--to {Near}/32: a -> {Near}");
            DelayAssert.AppliedOnce(other, baselineOther, 0, $"--to {Near}/32: a -> {Other} (not shaped)");
            Assert.That(code, Is.Zero, error);
            Assert.That(output, Does.Contain($"\"destination\":\"{Near}/32\""));
            Assert.That(exit, Is.Zero, "SIGINT clears the same way: " + tool.Error);
        }
    }

    [Test]
    public async Task Del_AfterSigkillLeftRules_RemovesOnlyTheToolsRules()
    {
        await using var tool = NetemToolProcess.Start("set", Device, "--delay", "50ms", "--netns", a);
        await tool.WaitForErrorLineAsync("holding the delay", HoldBound);
        await tool.SignalAsync("KILL");
        await tool.WaitForExitAsync(TimeSpan.FromSeconds(30));

        // Somebody else's rule on another device, made after the tool's: del must leave it.
        await NetemToolProcess.RunCheckedAsync("ip", "netns", "exec", a, "iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", "lo", "-j", "MARK", "--set-mark", "7");
        try
        {
            var (showCode, shown, _) = await NetemToolProcess.RunAsync("show", Device, "--netns", a);
            var (code, output, error) = await NetemToolProcess.RunAsync("del", Device, "--netns", a);
            var mangle = (await NetemToolProcess.RunCheckedAsync("ip", "netns", "exec", a, "iptables-save", "-t", "mangle")).StandardOutput;
            var (againCode, again, _) = await NetemToolProcess.RunAsync("del", Device, "--netns", a);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(showCode, Is.Zero);
                Assert.That(shown, Does.Contain("no listener: packets pass undelayed"), "show tells a killed holder's leftovers");
                Assert.That(code, Is.Zero, error);
                Assert.That(output, Does.Contain("deleted 1 rule(s)"));
                Assert.That(mangle, Does.Not.Contain("NETEM_").And.Not.Contain("NFQUEUE"));
                Assert.That(mangle, Does.Contain("-A POSTROUTING -o lo -j MARK"), "the foreign rule is left alone");
                Assert.That(againCode, Is.Zero);
                Assert.That(again, Does.Contain("nothing to delete"));
            }
        }
        finally
        {
            await NetemToolProcess.RunCheckedAsync("ip", "netns", "exec", a, "iptables", "-w", "-t", "mangle", "-D", "POSTROUTING", "-o", "lo", "-j", "MARK", "--set-mark", "7");
        }
    }

    [Test]
    public async Task ShowAndDel_NothingApplied_SayNothing()
    {
        var (showCode, shown, showError) = await NetemToolProcess.RunAsync("show", Device, "--netns", a);
        var (delCode, deleted, delError) = await NetemToolProcess.RunAsync("del", Device, "--netns", a);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(showCode, Is.Zero, showError);
            Assert.That(shown, Does.Contain("nothing applied by cloudlets-netem"));
            Assert.That(delCode, Is.Zero, delError);
            Assert.That(deleted, Does.Contain("nothing to delete"));
        }
    }

    [Test]
    public async Task Set_WhileAnotherSetHolds_ExitsFourAndTheHolderKeepsItsDelay()
    {
        await using var tool = NetemToolProcess.Start("set", Device, "--delay", "300ms", "--netns", a);
        await tool.WaitForErrorLineAsync("holding the delay", HoldBound);
        var held = await KernelStateAsync();
        var (code, _, error) = await NetemToolProcess.RunAsync("set", Device, "--delay", "20ms", "--netns", a);
        var (delCode, _, delError) = await NetemToolProcess.RunAsync("del", Device, "--netns", a);
        var state = await KernelStateAsync();
        await tool.SignalAsync("TERM");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(4), error);
            Assert.That(error, Does.Contain("is held by another shaper"));
            Assert.That(delCode, Is.EqualTo(4), delError);
            Assert.That(state, Is.EqualTo(held), "the holder's rules are untouched");
            Assert.That(await tool.WaitForExitAsync(TimeSpan.FromSeconds(30)), Is.Zero, tool.Error);
        }
    }

    [Category("BadInput")]
    [TestCase("set", Device, "--delay", "3x")]
    [TestCase("set", Device, "--delay", "-300ms")]
    [TestCase("set", Device, "--delay", "300ms", "--loss", "150%")]
    [TestCase("set", Device, "--delay", "300ms", "--to", "198.18.254.2/24")]
    [TestCase("set", Device, "--delay", "300ms", "--to", "not-a-cidr")]
    [TestCase("set", Device, "--delay", "300ms", "--frobnicate")]
    [TestCase("set", "nosuchdev", "--delay", "300ms")]
    [TestCase("set", Device, "--delay", "300ms", "--netns", "cnt-no-such-ns")]
    [TestCase("show", "nosuchdev")]
    [TestCase("del", "nosuchdev")]
    public async Task BadInput_ExitsTwoAndTheNamespaceIsUnchanged(params string[] args)
    {
        // The namespace is the fixture's unless the case names another one (which does not exist).
        string[] full = args.Contains("--netns") ? args : [.. args, "--netns", a];
        var before = await KernelStateAsync();
        var (code, output, error) = await NetemToolProcess.RunAsync(full);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2), $"{string.Join(' ', full)}: {output}{error}");
            Assert.That(error, Does.Contain("cloudlets-netem: ").And.Contain("usage: cloudlets-netem"));
            Assert.That(await KernelStateAsync(), Is.EqualTo(before), "nothing was applied");
        }
    }

    [Category("BadInput")]
    [TestCase("qdisc")]
    [TestCase("iptables")]
    public async Task Set_ForeignObjectOnTheDevice_ExitsTwoNamingItAndAppliesNothing(string kind)
    {
        string[] add = kind == "qdisc"
            ? ["ip", "netns", "exec", a, "tc", "qdisc", "add", "dev", Device, "root", "handle", "1:", "pfifo"]
            : ["ip", "netns", "exec", a, "iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", Device, "-j", "MARK", "--set-mark", "9"];
        string[] remove = kind == "qdisc"
            ? ["ip", "netns", "exec", a, "tc", "qdisc", "del", "dev", Device, "root"]
            : ["ip", "netns", "exec", a, "iptables", "-w", "-t", "mangle", "-D", "POSTROUTING", "-o", Device, "-j", "MARK", "--set-mark", "9"];
        await NetemToolProcess.RunCheckedAsync(add);
        try
        {
            var before = await KernelStateAsync();
            var (code, _, error) = await NetemToolProcess.RunAsync("set", Device, "--delay", "300ms", "--netns", a);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(code, Is.EqualTo(2), error);
                Assert.That(error, Does.Contain("carries what cloudlets-netem did not make").And.Contain(kind == "qdisc" ? "root qdisc pfifo handle 1:" : "--set-xmark 0x9"));
                Assert.That(await KernelStateAsync(), Is.EqualTo(before), "nothing was applied");
            }
        }
        finally
        {
            await NetemToolProcess.RunCheckedAsync(remove);
        }
    }

    /// <summary>The namespace's mangle tables (IPv4 and IPv6, without the dump's time stamps and counters) and qdiscs.</summary>
    private async Task<string> KernelStateAsync()
    {
        var parts = new List<string>();
        foreach (var save in new[] { "iptables-save", "ip6tables-save" })
        {
            var dump = await NetemToolProcess.RunCheckedAsync("ip", "netns", "exec", a, save, "-t", "mangle");
            parts.Add(string.Join('\n', dump.StandardOutput.Split('\n').Where(l => !l.StartsWith('#')).Select(l => l.StartsWith(':') ? l.Split(' ')[0] : l)));
        }

        parts.Add((await NetemToolProcess.RunCheckedAsync("ip", "netns", "exec", a, "tc", "qdisc", "show")).StandardOutput);
        return string.Join("\n--\n", parts);
    }

    /// <summary>The median of 9 ICMP round trips from a, one at a time, after one warm-up probe (ARP).</summary>
    private async Task<double> MedianRttAsync(IPAddress target)
    {
        var probeTarget = new ProbeTarget(target.ToString(), target);
        await prober.ProbeAsync(probeTarget, TimeSpan.FromSeconds(3));
        var rtts = new List<double>();
        for (var i = 0; i < 9; i++)
        {
            var sample = await prober.ProbeAsync(probeTarget, TimeSpan.FromSeconds(3));
            if (sample.Status == ProbeStatus.Ok && sample.RoundTripTime is { } rtt)
            {
                rtts.Add(rtt.TotalMilliseconds);
            }
        }

        Assert.That(rtts, Has.Count.GreaterThanOrEqualTo(7), $"probes to {target} from {a} were lost");
        rtts.Sort();
        return rtts[rtts.Count / 2];
    }
}
