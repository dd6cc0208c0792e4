using Cloudlets.Probing.Commands;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tests.Lab;

[TestFixture]
[Category("Lab")]
public sealed class NetemShaperFactoryLabTests
{
    [Test]
    public async Task CreateAsync_ThisKernel_PicksABackendAndSaysWhy()
    {
        NetemLabGuard.Require();
        var namespacesBefore = (await NetemLabGuard.RunAsync("ip", "netns", "list")).StandardOutput;
        var probe = await NetemShaperFactory.ProbeAsync(LocalCommandRunner.Instance, probeNfQueue: true);
        await using var shaper = await NetemShaperFactory.CreateAsync();
        TestContext.Progress.WriteLine($"probe: {probe}; chosen: {shaper.Capabilities.Backend}: {shaper.Capabilities.Reason}");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(shaper.Capabilities.Backend, Is.EqualTo(probe.Netem ? TcNetemShaper.BackendName : NfQueueShaper.BackendName));
            Assert.That(shaper.Capabilities.Reason, Does.Contain(probe.Netem ? "has netem" : "CONFIG_NET_SCH_NETEM"));
            Assert.That(probe.NfQueue, Is.True, "xt NFQUEUE and a netlink bind work on the kernels this project runs on");
            Assert.That((await NetemLabGuard.RunAsync("ip", "netns", "list")).StandardOutput.Split('\n').Where(l => l.StartsWith("cln-probe-", StringComparison.Ordinal)),
                Is.Empty, "the probe namespace is gone: " + namespacesBefore.Length);
        }
    }

    [Test]
    public void CreateAsync_RemoteRunnerForcedToNfQueue_Refuses() =>
        Assert.ThrowsAsync<ShapingException>(() => NetemShaperFactory.CreateAsync(new NetemShaperFactoryOptions { Backend = ShapingBackend.NfQueue, Runner = new RecordingRunner() }));
}
