using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tests.Lab;

/// <summary>The tc backend against this machine's kernel, in a throwaway namespace.</summary>
[TestFixture]
[Category("Lab")]
public sealed class TcNetemShaperLabTests
{
    private static readonly string Ns = "nt-tc-" + (Environment.ProcessId % 0xffff).ToString("x4", CultureInfo.InvariantCulture);

    [SetUp]
    public async Task SetUp()
    {
        NetemLabGuard.Require();
        await ShapingTopology.Run("ip", "netns", "add", Ns);
        await ShapingTopology.Run("ip", "-n", Ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1");
        await ShapingTopology.Run("ip", "-n", Ns, "link", "set", "eth0", "up");
        await ShapingTopology.Run("ip", "-n", Ns, "link", "set", "eth1", "up");
    }

    [TearDown]
    public async Task TearDown() => await NetemLabGuard.RunAsync("ip", "netns", "del", Ns);

    /// <summary>The qdiscs and IFB devices of the namespace, without packet counters (traffic moves them).</summary>
    private static async Task<(string Qdiscs, string Ifbs)> KernelState() =>
        (Regex.Replace((await ShapingTopology.Run("ip", "netns", "exec", Ns, "tc", "-j", "qdisc", "show")).StandardOutput, "\"direct_packets_stat\":[0-9]+", ""),
         (await ShapingTopology.Run("ip", "-n", Ns, "-j", "link", "show", "type", "ifb")).StandardOutput);

    private static async Task<bool> KernelHasNetem()
    {
        var r = await NetemLabGuard.RunAsync("ip", "netns", "exec", Ns, "tc", "qdisc", "add", "dev", "eth1", "root", "netem", "delay", "1ms");
        await NetemLabGuard.RunAsync("ip", "netns", "exec", Ns, "tc", "qdisc", "del", "dev", "eth1", "root");
        return r.Succeeded;
    }

    [Test]
    public async Task ApplyAsync_WholeInterfaceWithoutNetem_ThrowsAndLeavesNothing()
    {
        if (await KernelHasNetem())
        {
            Assert.Ignore("This kernel has netem; the negative test is for kernels without it.");
        }

        var before = await KernelState();
        await using var shaper = new TcNetemShaper();
        var ex = Assert.ThrowsAsync<NetemUnavailableException>(() => shaper.ApplyAsync(new ShapingPlan("nt-tc", [ShapingRule.Egress("eth0", Impairment.FromDelay(300)) with { NetworkNamespace = Ns }])));
        Assert.That(ex!.Message, Does.Contain("CONFIG_NET_SCH_NETEM"));
        Assert.That(await KernelState(), Is.EqualTo(before));
    }

    [Test]
    public async Task ApplyAsync_PerDestinationAndIngressWithoutNetem_ThrowsAndRemovesHtbIngressAndIfb()
    {
        if (await KernelHasNetem())
        {
            Assert.Ignore("This kernel has netem; the negative test is for kernels without it.");
        }

        var before = await KernelState();
        await using var shaper = new TcNetemShaper();
        var plan = new ShapingPlan("nt-tc",
        [
            new ShapingRule("eth0", ShapingDirection.Ingress, TrafficMatch.All, Impairment.FromDelay(50)) { NetworkNamespace = Ns, Name = "in" },
            ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(IPAddress.Parse("198.19.200.1"))) with { NetworkNamespace = Ns, Name = "out" },
        ]);
        var ex = Assert.ThrowsAsync<NetemUnavailableException>(() => shaper.ApplyAsync(plan));
        var after = await KernelState();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Message, Does.Contain("CONFIG_NET_SCH_NETEM"));
            Assert.That(after, Is.EqualTo(before), "no HTB root, ingress qdisc or IFB device is left");
            Assert.That((await shaper.ShowAsync("nt-tc")).IsEmpty, Is.True);
        }
    }

    [Test]
    public async Task ApplyAsync_RateOnly_BuildsAReadBackHtbTreeAndClearRemovesIt()
    {
        // HTB and u32 exist on this kernel, so a rate-only plan exercises the tree for real.
        await using var shaper = new TcNetemShaper();
        var plan = new ShapingPlan("nt-tc", [ShapingRule.Egress("eth0", new Impairment { RateBitsPerSecond = 1_000_000 }, TrafficMatch.To(IPAddress.Parse("198.19.200.1"))) with { NetworkNamespace = Ns }]);
        var before = await KernelState();
        await shaper.ApplyAsync(plan);
        var applied = await KernelState();
        var state = await shaper.ShowAsync("nt-tc");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(applied.Qdiscs, Does.Contain("\"kind\":\"htb\""));
            Assert.That(shaper.Plan(plan, state).Changes, Is.Empty, "read back from the kernel, nothing left to do");
        }

        await shaper.ApplyAsync(plan);
        Assert.That(await KernelState(), Is.EqualTo(applied), "apply twice: identical kernel state");
        await shaper.ClearAsync("nt-tc");
        Assert.That(await KernelState(), Is.EqualTo(before));
    }

    [Test]
    public async Task ApplyAsync_ForeignRootQdisc_IsNeverOverwritten()
    {
        await ShapingTopology.Run("ip", "netns", "exec", Ns, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb");
        var before = await KernelState();
        await using var shaper = new TcNetemShaper();
        Assert.ThrowsAsync<ForeignQdiscException>(() => shaper.ApplyAsync(new ShapingPlan("nt-tc", [ShapingRule.Egress("eth0", new Impairment { RateBitsPerSecond = 1_000_000 }) with { NetworkNamespace = Ns }])));
        Assert.That(await KernelState(), Is.EqualTo(before));
    }

    // own-126 and own-153 fell in the same one of 768 hash buckets of the old handle derivation.
    private const string CollidingA = "own-126";
    private const string CollidingB = "own-153";

    private static ShapingPlan RatePlan(string owner, string device, long rate) =>
        new(owner, [ShapingRule.Egress(device, new Impairment { RateBitsPerSecond = rate }, TrafficMatch.To(IPAddress.Parse("198.19.200.1"))) with { NetworkNamespace = Ns }]);

    private static async Task<string> DeviceQdiscs(string device) =>
        Regex.Replace((await ShapingTopology.Run("ip", "netns", "exec", Ns, "tc", "-j", "qdisc", "show", "dev", device)).StandardOutput, "\"direct_packets_stat\":[0-9]+", "");

    [Test]
    public async Task ApplyAsync_TwoOwnersWithCollidingHashes_NeitherTouchesTheOther()
    {
        await using var shaper = new TcNetemShaper();
        try
        {
            await shaper.ApplyAsync(RatePlan(CollidingA, "eth0", 1_000_000));
            var first = await DeviceQdiscs("eth0");
            await shaper.ApplyAsync(RatePlan(CollidingB, "eth1", 2_000_000));
            var afterSecondApply = await DeviceQdiscs("eth0");
            await shaper.ClearAsync(CollidingB);
            var afterSecondClear = await DeviceQdiscs("eth0");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(first, Does.Contain("\"kind\":\"htb\""));
                Assert.That(afterSecondApply, Is.EqualTo(first), "applying another owner leaves the first owner's tree alone");
                Assert.That(afterSecondClear, Is.EqualTo(first), "clearing another owner leaves the first owner's tree alone");
                Assert.That(shaper.Plan(RatePlan(CollidingA, "eth0", 1_000_000), await shaper.ShowAsync(CollidingA)).IsEmpty, Is.True, "the first owner still reads its tree back");
                Assert.That((await shaper.ShowAsync(CollidingB)).IsEmpty, Is.True);
            }
        }
        finally
        {
            await shaper.ClearAsync(CollidingA);
            await shaper.ClearAsync(CollidingB);
        }
    }

    [Test]
    public async Task ApplyAsync_SecondShaperOfTheSameOwner_FailsAndLeavesTheFirstsState()
    {
        await using var first = new TcNetemShaper();
        try
        {
            await first.ApplyAsync(RatePlan("nt-tc", "eth0", 1_000_000));
            var before = await KernelState();
            await using (var second = new TcNetemShaper())
            {
                var ex = Assert.ThrowsAsync<ShapingOwnerInUseException>(() => second.ApplyAsync(RatePlan("nt-tc", "eth0", 2_000_000)));
                var afterApply = await KernelState();
                var clear = Assert.ThrowsAsync<ShapingOwnerInUseException>(() => second.ClearAsync("nt-tc"));
                using (Assert.EnterMultipleScope())
                {
                    Assert.That(ex!.Owner, Is.EqualTo("nt-tc"));
                    Assert.That(clear!.Owner, Is.EqualTo("nt-tc"));
                    Assert.That(afterApply, Is.EqualTo(before));
                    Assert.That(await KernelState(), Is.EqualTo(before));
                }
            }
        }
        finally
        {
            await first.ClearAsync("nt-tc");
        }
    }
}
