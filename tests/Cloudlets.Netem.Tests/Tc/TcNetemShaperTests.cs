using Cloudlets.Core.Commands;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tests.Tc;

public sealed class TcNetemShaperTests
{
    private static CommandResult? Kernel(CommandLine c, bool netem, string qdiscs = "[]")
    {
        var argv = string.Join(' ', [c.Program, .. c.Arguments]);
        if (argv == "ip -j netns list") { return RecordingRunner.Ok(c, ""); }
        if (argv == "tc -j qdisc show") { return RecordingRunner.Ok(c, qdiscs); }
        if (argv.StartsWith("ip -j link show", StringComparison.Ordinal)) { return RecordingRunner.Ok(c, "[]"); }
        if (!netem && c.Arguments.Contains("netem")) { return RecordingRunner.Fail(c, "Error: Specified qdisc kind is unknown.\n"); }
        return null;
    }

    [Test]
    public async Task ApplyAsync_KernelWithoutNetem_ThrowsNamingTheOptionAndRemovesWhatItBuilt()
    {
        var runner = new RecordingRunner(c => Kernel(c, netem: false));
        await using var shaper = new TcNetemShaper(runner);
        var plan = new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(System.Net.IPAddress.Parse("198.19.200.1")))]);

        var ex = Assert.ThrowsAsync<NetemUnavailableException>(() => shaper.ApplyAsync(plan));
        Assert.That(ex!.Message, Does.Contain("CONFIG_NET_SCH_NETEM"));
        var mutations = runner.Mutations.Select(c => string.Join(' ', c.Arguments)).ToList();
        Assert.That(mutations[0], Does.StartWith("qdisc replace dev eth0 root handle"), "the HTB root went in first");
        Assert.That(mutations, Has.Some.Contains("netem"));
    }

    [Test]
    public void ApplyAsync_InvalidInterface_RunsNothing()
    {
        var runner = new RecordingRunner(c => Kernel(c, netem: true));
        var shaper = new TcNetemShaper(runner);
        Assert.ThrowsAsync<ShapingValidationException>(() => shaper.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0;reboot", Impairment.FromDelay(20))])));
        Assert.That(runner.Commands, Is.Empty);
    }

    [Test]
    public void ApplyAsync_Ipv6Match_IsUnsupportedAndRunsNothing()
    {
        var runner = new RecordingRunner(c => Kernel(c, netem: true));
        var shaper = new TcNetemShaper(runner);
        var ex = Assert.ThrowsAsync<UnsupportedImpairmentException>(() => shaper.ApplyAsync(new ShapingPlan("demo",
            [ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(System.Net.IPAddress.Parse("fd00::1")))])));
        Assert.That(ex!.Missing, Is.EqualTo(ShapingFeatures.Ipv6));
        Assert.That(runner.Commands, Is.Empty);
    }

    [Test]
    public void ApplyAsync_ForeignRoot_RunsNoMutation()
    {
        var runner = new RecordingRunner(c => Kernel(c, netem: true, qdiscs: """[{"kind":"tbf","handle":"1:","dev":"eth0","root":true,"options":{}}]"""));
        var shaper = new TcNetemShaper(runner);
        Assert.ThrowsAsync<ForeignQdiscException>(() => shaper.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(20))])));
        Assert.That(runner.Mutations, Is.Empty);
    }

    [Test]
    public async Task ApplyAsync_WithNetem_RunsTheRootNetem()
    {
        var runner = new RecordingRunner(c => Kernel(c, netem: true));
        await using var shaper = new TcNetemShaper(runner);
        await shaper.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]));
        Assert.That(runner.Mutations.Select(c => string.Join(' ', c.Arguments)), Is.EqualTo(new[]
        {
            $"qdisc replace dev eth0 root handle {OwnerNames.Hex(OwnerNames.HandleBase("demo"))}: netem limit 1000 delay 300ms",
        }));
    }
}
