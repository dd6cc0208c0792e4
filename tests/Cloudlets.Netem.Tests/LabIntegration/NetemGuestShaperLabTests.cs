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
    private const int Probes = 20;
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

    private static string WithoutCounters(string json) => System.Text.RegularExpressions.Regex.Replace(json, "\"(bytes|packets|drops|overlimits|requeues|backlog|qlen|direct_packets_stat)\":[0-9]+,?", "");
}
