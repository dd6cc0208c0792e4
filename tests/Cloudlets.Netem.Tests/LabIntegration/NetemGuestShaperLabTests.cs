using System.Net;
using System.Text.Json;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab.Guests;
using Cloudlets.Netem.Ssh;
using Cloudlets.Probing.Commands;
using Cloudlets.Probing.Linux;
using Cloudlets.TestUtils;

namespace Cloudlets.Netem.Tests.LabIntegration;

/// <summary>
/// The tc-netem backend on the wire: a lab guest that is a real netem host (its kernel has netem, HTB, u32, IFB and
/// mirred; iproute2's tc; Dropbear), shaped through <see cref="SshCommandRunner"/> with the lab's key and pinned
/// host key, measured with fping from the edge namespace. One guest boot for the whole fixture.
/// </summary>
[TestFixture]
[Category("Lab")]
[NonParallelizable]
public sealed class NetemGuestShaperLabTests
{
    private const string Owner = "ng-wire";
    private const int Probes = 30;
    private NetemGuestLab lab = null!;
    private SshCommandRunner ssh = null!;
    private double baseline;
    private double secondBaseline;

    /// <summary>The guest's iproute2 programs: its busybox runs its own tc and ip applets ahead of PATH.</summary>
    private static TcNetemShaperOptions Programs => new() { TcPath = GuestImage.NetemTcPath, IpPath = GuestImage.NetemIpPath };

    [OneTimeSetUp]
    public async Task StartLab()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        lab = await NetemGuestLab.StartAsync("ngwire", timeout.Token);
        ssh = SshCommandRunner.Create(new SshCommandRunnerOptions
        {
            Host = lab.Guest.Address.ToString(), UserName = lab.Guest.SshUser, PrivateKeyFile = lab.Guest.SshKey, KnownHostsFile = lab.Guest.KnownHosts,
        });

        // The guest is reachable only inside the lab's namespaces: the SSH socket is made on a thread inside the
        // edge namespace (SSH.NET creates it synchronously when the address is literal) and keeps that namespace.
        NetworkNamespace.Run(lab.EdgeNamespace, () =>
        {
            ssh.ConnectAsync(timeout.Token).GetAwaiter().GetResult();
            return true;
        });
        baseline = await lab.MedianRttAsync(Probes);
        secondBaseline = await lab.MedianRttAsync(Probes, lab.SecondEdgeAddress);
        TestContext.Progress.WriteLine($"baseline {baseline:0.000} ms from {lab.EdgeAddress}, {secondBaseline:0.000} ms from {lab.SecondEdgeAddress}");
    }

    [OneTimeTearDown]
    public async Task StopLab()
    {
        ssh?.Dispose();
        if (lab is not null)
        {
            await lab.DisposeAsync();
        }
    }

    private Task<CommandResult> Tc(params string[] args) => ssh.RunCheckedAsync(CommandLine.Of(GuestImage.NetemTcPath, args));

    /// <summary>The guest's <c>tc -j qdisc show dev eth0</c>, as the kernel reports it.</summary>
    private async Task<JsonElement[]> QdiscsAsync()
    {
        var json = (await Tc("-j", "qdisc", "show", "dev", "eth0")).StandardOutput;
        TestContext.Progress.WriteLine("tc -j qdisc show dev eth0: " + json.Trim());
        using var doc = JsonDocument.Parse(json);
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    private static double[] NetemDelaysMs(IEnumerable<JsonElement> qdiscs) =>
        [.. qdiscs.Where(q => q.GetProperty("kind").GetString() == "netem").Select(q => q.GetProperty("options").GetProperty("delay").GetProperty("delay").GetDouble() * 1000).Order()];

    private TcNetemShaper NewShaper() => new(ssh, options: Programs);

    [Test]
    public async Task ApplyAsync_RootDelay300_EdgeSeesBaselinePlus300AndClearRestoresBaseline()
    {
        await using var shaper = NewShaper();
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]);
        try
        {
            var state = await shaper.ApplyAsync(plan);
            var qdiscs = await QdiscsAsync();
            var measured = await lab.MedianRttAsync(Probes);
            using (Assert.EnterMultipleScope())
            {
                NetemGuestLab.AssertDelay(measured, baseline, 300, "root netem delay 300 ms on the guest's eth0");
                Assert.That(NetemDelaysMs(qdiscs), Is.EqualTo(new[] { 300.0 }).Within(0.001), "the kernel holds one netem qdisc of 300 ms");
                Assert.That(qdiscs.Single(q => q.GetProperty("kind").GetString() == "netem").GetProperty("root").GetBoolean(), Is.True);
                Assert.That(state.Rules.Single().Impairment.Delay, Is.EqualTo(TimeSpan.FromMilliseconds(300)), "read back from tc -j");
                Assert.That(shaper.Plan(plan, await shaper.ShowAsync(Owner)).IsEmpty, Is.True, "the read-back state is the plan");
            }
        }
        finally
        {
            await shaper.ClearAsync(Owner);
        }

        var after = await lab.MedianRttAsync(Probes);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(NetemDelaysMs(await QdiscsAsync()), Is.Empty, "no netem qdisc is left");
            Assert.That((await shaper.ShowAsync(Owner)).IsEmpty, Is.True);
            NetemGuestLab.AssertDelay(after, baseline, 0, "after clear");
        }
    }

    [Test]
    public async Task ApplyAsync_PerDestination20And300_EachEdgeAddressSeesItsDelay()
    {
        await using var shaper = NewShaper();
        var plan = new ShapingPlan(Owner,
        [
            ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(lab.EdgeAddress)) with { Name = "near" },
            ShapingRule.Egress("eth0", Impairment.FromDelay(300), TrafficMatch.To(lab.SecondEdgeAddress)) with { Name = "far" },
        ]);
        try
        {
            var state = await shaper.ApplyAsync(plan);
            var qdiscs = await QdiscsAsync();
            TestContext.Progress.WriteLine("capture tc -j qdisc show: " + (await Tc("-j", "qdisc", "show")).StandardOutput.Trim());
            var root = qdiscs.Single(q => q.GetProperty("kind").GetString() == "htb").GetProperty("handle").GetString()!;
            TestContext.Progress.WriteLine("capture tc -j filter show dev eth0 parent " + root + ": " + (await Tc("-j", "filter", "show", "dev", "eth0", "parent", root)).StandardOutput.Trim());
            var near = await lab.MedianRttAsync(Probes);
            var far = await lab.MedianRttAsync(Probes, lab.SecondEdgeAddress);
            using (Assert.EnterMultipleScope())
            {
                NetemGuestLab.AssertDelay(near, baseline, 20, $"HTB + u32 to {lab.EdgeAddress}: 20 ms");
                NetemGuestLab.AssertDelay(far, secondBaseline, 300, $"HTB + u32 to {lab.SecondEdgeAddress}: 300 ms");
                Assert.That(qdiscs.Any(q => q.GetProperty("kind").GetString() == "htb" && q.GetProperty("root").GetBoolean()), Is.True, "an HTB root");
                Assert.That(NetemDelaysMs(qdiscs), Is.EqualTo(new[] { 20.0, 300.0 }).Within(0.001), "two netem leaves");
                Assert.That(state.Rules.Select(r => r.Impairment.Delay.TotalMilliseconds).Order(), Is.EqualTo(new[] { 20.0, 300.0 }), "read back from tc -j");
                Assert.That(shaper.Plan(plan, await shaper.ShowAsync(Owner)).IsEmpty, Is.True, "the read-back state is the plan");
            }
        }
        finally
        {
            await shaper.ClearAsync(Owner);
        }

        Assert.That(await QdiscsAsync(), Has.None.Matches<JsonElement>(q => q.GetProperty("kind").GetString() is "htb" or "netem"), "clear removes the tree");
    }

    [Test]
    public async Task ApplyAsync_ForeignRootQdisc_IsNeverTouched()
    {
        await Tc("qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb");
        try
        {
            var before = (await Tc("-j", "qdisc", "show", "dev", "eth0")).StandardOutput;
            await using var shaper = NewShaper();
            Assert.ThrowsAsync<ForeignQdiscException>(() => shaper.ApplyAsync(new ShapingPlan(Owner, [ShapingRule.Egress("eth0", Impairment.FromDelay(300))])));
            await shaper.ClearAsync(Owner);
            var after = (await Tc("-j", "qdisc", "show", "dev", "eth0")).StandardOutput;
            Assert.That(WithoutCounters(after), Is.EqualTo(WithoutCounters(before)), "the foreign HTB root is as it was, after apply and clear");
        }
        finally
        {
            await Tc("qdisc", "del", "dev", "eth0", "root");
        }
    }

    [Test]
    public async Task ApplyAsync_Ingress50ThroughIfb_EdgeSeesBaselinePlus50AndClearRemovesTheIfb()
    {
        await using var shaper = NewShaper();
        var plan = new ShapingPlan(Owner, [new ShapingRule("eth0", ShapingDirection.Ingress, TrafficMatch.All, Impairment.FromDelay(50)) { Name = "in" }]);
        try
        {
            await shaper.ApplyAsync(plan);
            var all = (await Tc("-j", "qdisc", "show")).StandardOutput;
            TestContext.Progress.WriteLine("capture tc -j qdisc show (ingress): " + all.Trim());
            var measured = await lab.MedianRttAsync(Probes);
            using (Assert.EnterMultipleScope())
            {
                NetemGuestLab.AssertDelay(measured, baseline, 50, "ingress netem 50 ms through IFB on the guest's eth0");
                Assert.That(all, Does.Contain("\"kind\":\"ingress\"").And.Contain("\"kind\":\"netem\""));
                Assert.That(shaper.Plan(plan, await shaper.ShowAsync(Owner)).IsEmpty, Is.True, "the read-back state is the plan");
            }
        }
        finally
        {
            await shaper.ClearAsync(Owner);
        }

        using var links = JsonDocument.Parse((await ssh.RunCheckedAsync(CommandLine.Of(GuestImage.NetemIpPath, "-j", "link", "show", "type", "ifb"))).StandardOutput);
        var ifbs = links.RootElement.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That((await Tc("-j", "qdisc", "show")).StandardOutput, Does.Not.Contain("\"kind\":\"ingress\"").And.Not.Contain("\"kind\":\"netem\""));
            Assert.That(ifbs, Is.SubsetOf(new[] { "ifb0", "ifb1" }), "the owner's IFB device is gone (the ifb module's own ifb0 and ifb1 stay)");
        }
    }

    [Test]
    public async Task ApplyAsync_Jitter20_SpreadsTheRttsAroundTheDelay()
    {
        await using var shaper = NewShaper();
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", new Impairment { Delay = TimeSpan.FromMilliseconds(100), Jitter = TimeSpan.FromMilliseconds(20) })]);
        List<double> rtts;
        try
        {
            await shaper.ApplyAsync(plan);
            rtts = [.. (await lab.PingAsync(200, intervalMs: 20)).Order()];
        }
        finally
        {
            await shaper.ClearAsync(Owner);
        }

        // Uniform jitter of ±20 ms (netem's default distribution) on 100 ms: median 100 ms, quartiles 90 and 110 ms.
        // Robust statistics: a loaded 2-core machine adds a tail of late replies (the emulated guest's vCPU waits
        // for the host's), which moves a mean and a standard deviation but hardly the quartiles.
        double At(double q) => rtts[(int)Math.Round(q * (rtts.Count - 1))] - baseline;
        var median = At(0.5);
        var iqr = At(0.75) - At(0.25);
        var standardError = 20 / Math.Sqrt(rtts.Count);   // of the median of a uniform distribution 40 ms wide
        TestContext.Progress.WriteLine($"jitter 20 ms on 100 ms: {rtts.Count} probes over baseline {baseline:0.000}: p5 {At(0.05):0.000}, p25 {At(0.25):0.000}, median {median:0.000}, p75 {At(0.75):0.000}, p95 {At(0.95):0.000} ms; quartile spread {iqr:0.000} ms (uniform: 20)");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rtts, Has.Count.GreaterThanOrEqualTo(195));
            Assert.That(median, Is.EqualTo(100).Within(1 + 2 + (3 * standardError)), "the median is the delay (1 ms + 2 %, and 3 standard errors)");
            Assert.That(iqr, Is.InRange(20 * 0.75, (20 * 1.25) + 2), "the quartiles of uniform ±20 ms jitter are 20 ms apart");
            Assert.That(At(0), Is.GreaterThanOrEqualTo(80 - 0.5 - baseline), "never earlier than delay - jitter");
        }
    }

    [Test]
    public async Task ApplyAsync_Loss20_LosesAFifthOfTheReplies()
    {
        const int Count = 400;
        await using var shaper = NewShaper();
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", new Impairment { LossPercent = 20 })]);
        int received;
        try
        {
            await shaper.ApplyAsync(plan);
            received = (await lab.PingAsync(Count, intervalMs: 10)).Count;
        }
        finally
        {
            await shaper.ClearAsync(Owner);
        }

        // Binomial(400, 0.2): 80 lost, standard deviation 8; 4 standard deviations either way.
        var lost = Count - received;
        TestContext.Progress.WriteLine($"loss 20 %: {lost} of {Count} replies lost ({100.0 * lost / Count:0.0} %; binomial 80 ± 8)");
        Assert.That(lost, Is.InRange(80 - 32, 80 + 32));
    }

    /// <summary>
    /// Passes commands to the guest until the <c>n</c>-th command that changes something, which it never runs: it
    /// throws instead, as if the shaping process died there (no rollback runs, the kernel keeps the half-built tree).
    /// </summary>
    private sealed class DyingRunner(ICommandRunner inner, int n) : ICommandRunner
    {
        private int mutations;

        public Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default)
        {
            var read = command.Arguments.Any(a => a is "show" or "list" or "-V") || command.Program == "find";
            if (!read && ++mutations >= n)
            {
                throw new IOException($"killed before {command}");
            }

            return inner.RunAsync(command, cancellationToken);
        }
    }

    private ShapingPlan TwoDestinations() => new(Owner,
    [
        ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(lab.EdgeAddress)) with { Name = "near" },
        ShapingRule.Egress("eth0", Impairment.FromDelay(300), TrafficMatch.To(lab.SecondEdgeAddress)) with { Name = "far" },
    ]);

    /// <summary>Applies <see cref="TwoDestinations"/> through a runner that dies at its 6th change (the handle recorded, the HTB root and a class made, no netem yet).</summary>
    private async Task KillMidApplyAsync()
    {
        await using var dying = new TcNetemShaper(new DyingRunner(ssh, 6), options: Programs);
        Assert.ThrowsAsync<IOException>(() => dying.ApplyAsync(TwoDestinations()));
        var half = await QdiscsAsync();
        Assert.That(half.Any(q => q.GetProperty("kind").GetString() == "htb"), Is.True, "the kill left a half-built tree");
        Assert.That(NetemDelaysMs(half), Is.Empty, "the kill came before any netem leaf");
    }

    [Test]
    public async Task ApplyAsync_AfterAShaperKilledMidApply_ConvergesToThePlan()
    {
        await KillMidApplyAsync();
        await using var shaper = NewShaper();
        try
        {
            await shaper.ApplyAsync(TwoDestinations());
            var qdiscs = await QdiscsAsync();
            var near = await lab.MedianRttAsync(Probes);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(NetemDelaysMs(qdiscs), Is.EqualTo(new[] { 20.0, 300.0 }).Within(0.001), "both leaves, once each");
                Assert.That(shaper.Plan(TwoDestinations(), await shaper.ShowAsync(Owner)).IsEmpty, Is.True, "the next apply converged");
                NetemGuestLab.AssertDelay(near, baseline, 20, "20 ms after the converging apply");
            }
        }
        finally
        {
            await shaper.ClearAsync(Owner);
        }
    }

    [Test]
    public async Task ClearAsync_AfterAShaperKilledMidApply_RemovesTheHalfBuiltTreeAndTheHandle()
    {
        await KillMidApplyAsync();
        await using var shaper = NewShaper();
        await shaper.ClearAsync(Owner);
        var records = await ssh.RunAsync(CommandLine.Of("find", Cloudlets.Netem.Tc.TcHandleRecord.DefaultDirectory, "-mindepth", "2", "-maxdepth", "2", "-type", "d"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await QdiscsAsync(), Has.None.Matches<JsonElement>(q => q.GetProperty("kind").GetString() is "htb" or "netem"), "nothing of the half-built tree is left");
            Assert.That((await shaper.ShowAsync(Owner)).IsEmpty, Is.True);
            Assert.That(records.StandardOutput, Does.Not.Contain(Owner), "the owner's handle record is given back");
        }
    }

    private static string WithoutCounters(string json) => System.Text.RegularExpressions.Regex.Replace(json, "\"(bytes|packets|drops|overlimits|requeues|backlog|qlen|direct_packets_stat)\":[0-9]+,?", "");
}
