using System.Net;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tests.NfQueue;

public sealed class NfQueueShaperTests
{
    [TestCase("eth0 ")]
    [TestCase("$(reboot)")]
    [TestCase("a/b")]
    public async Task ApplyAsync_InvalidInterface_RunsNothing(string iface)
    {
        var runner = new RecordingRunner();
        await using var shaper = new NfQueueShaper(runner: runner);
        Assert.ThrowsAsync<ShapingValidationException>(() => shaper.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress(iface, Impairment.FromDelay(20))])));
        Assert.That(runner.Commands, Is.Empty);
    }

    [Test]
    public async Task ApplyAsync_Duplicate_IsUnsupportedAndRunsNothing()
    {
        var runner = new RecordingRunner();
        await using var shaper = new NfQueueShaper(runner: runner);
        var ex = Assert.ThrowsAsync<UnsupportedImpairmentException>(() => shaper.ApplyAsync(new ShapingPlan("demo",
            [ShapingRule.Egress("eth0", new Impairment { Delay = TimeSpan.FromMilliseconds(5), DuplicatePercent = 1 })])));
        Assert.That(ex!.Missing, Is.EqualTo(ShapingFeatures.Duplicate));
        Assert.That(runner.Commands, Is.Empty);
    }

    [Test]
    public async Task ApplyAsync_UnknownNamespace_ThrowsBeforeAnyCommand()
    {
        var runner = new RecordingRunner();
        await using var shaper = new NfQueueShaper(runner: runner);
        var rule = ShapingRule.Egress("eth0", Impairment.FromDelay(5), TrafficMatch.To(IPAddress.Loopback)) with { NetworkNamespace = "nt-does-not-exist-4711" };
        Assert.ThrowsAsync<ShapingValidationException>(() => shaper.ApplyAsync(new ShapingPlan("demo", [rule])));
        Assert.That(runner.Commands, Is.Empty);
    }

    [Test]
    public void Capabilities_SayNfQueueWithoutDuplicateCorruptReorderRate()
    {
        var caps = new NfQueueShaper(runner: new RecordingRunner()).Capabilities;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(caps.Backend, Is.EqualTo("nfqueue"));
            Assert.That(caps.Supports(ShapingFeatures.Delay | ShapingFeatures.Jitter | ShapingFeatures.Loss | ShapingFeatures.BridgePorts), Is.True);
            Assert.That(caps.Features & (ShapingFeatures.Duplicate | ShapingFeatures.Corrupt | ShapingFeatures.Reorder | ShapingFeatures.Rate), Is.EqualTo(ShapingFeatures.None));
        }
    }
}
