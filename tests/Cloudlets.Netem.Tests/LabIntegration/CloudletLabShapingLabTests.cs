using System.Globalization;
using Cloudlets.Lab;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem.Tests.Lab;
using Cloudlets.TestUtils;

namespace Cloudlets.Netem.Tests.LabIntegration;

/// <summary>The demonstration's delays on a real cloudlet lab, measured from the edge namespace.</summary>
[TestFixture]
[Category("Lab")]
[NonParallelizable]
public sealed class CloudletLabShapingLabTests
{
    [Test]
    public async Task ShapeAsync_DemoDelays_EdgeSeesEachHostAtItsDelayAndHostsSeeEachOtherUnshaped()
    {
        await using var lab = await TestLabs.StartAsync("ntshape", hosts: 3);
        var edge = lab.Edge.Namespace;
        var baseline = new Dictionary<string, double>();
        foreach (var h in lab.Hosts)
        {
            baseline[h.Name] = await ShapingTopology.MedianRttAsync(edge, h.Address, 6);
        }

        var peerBaseline = await ShapingTopology.MedianRttAsync(lab.GetHost("cloudlet-1").Namespace, lab.GetHost("cloudlet-2").Address, 6);
        await using var shaper = await NetemShaperFactory.CreateAsync();
        try
        {
            var delays = new Dictionary<string, double> { ["cloudlet-1"] = 300, ["cloudlet-2"] = 20, ["cloudlet-3"] = 20 };
            await lab.ShapeAsync(shaper, [.. delays.Select(kv => (kv.Key, TimeSpan.FromMilliseconds(kv.Value)))]);
            var shaped = await Task.WhenAll(lab.Hosts.Select(h => ShapingTopology.MedianRttAsync(edge, h.Address, 10)));
            var peer = await ShapingTopology.MedianRttAsync(lab.GetHost("cloudlet-1").Namespace, lab.GetHost("cloudlet-2").Address, 6);
            using (Assert.EnterMultipleScope())
            {
                for (var i = 0; i < lab.Hosts.Count; i++)
                {
                    var h = lab.Hosts[i];
                    DelayAssert.AppliedOnce(shaped[i], baseline[h.Name], delays[h.Name], "lab edge -> " + h.Name);
                }

                TestContext.Progress.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cloudlet-1 -> cloudlet-2: baseline {peerBaseline:0.000} ms, while shaped {peer:0.000} ms"));
                DelayAssert.AppliedOnce(peer, peerBaseline, 0, "host-to-host (migration) path is not shaped: cloudlet-1 -> cloudlet-2");
                Assert.That((await lab.ShowShapingAsync(shaper)).Rules, Has.Count.EqualTo(3));
            }

            await lab.ClearShapingAsync(shaper);
            var cleared = await Task.WhenAll(lab.Hosts.Select(h => ShapingTopology.MedianRttAsync(edge, h.Address, 6)));
            for (var i = 0; i < lab.Hosts.Count; i++)
            {
                DelayAssert.AppliedOnce(cleared[i], baseline[lab.Hosts[i].Name], 0, "after clear: lab edge -> " + lab.Hosts[i].Name);
            }

            // What a sample's "shape" command does: hold the delays until cancelled, then clear.
            using var hold = new CancellationTokenSource();
            var applied = new TaskCompletionSource();
            var holding = lab.HoldShapingAsync(shaper, [("cloudlet-2", TimeSpan.FromMilliseconds(40))], _ => applied.TrySetResult(), hold.Token);
            await applied.Task.WaitAsync(TimeSpan.FromSeconds(30));
            var held = await ShapingTopology.MedianRttAsync(edge, lab.GetHost("cloudlet-2").Address, 6);
            await hold.CancelAsync();
            await holding;
            var released = await ShapingTopology.MedianRttAsync(edge, lab.GetHost("cloudlet-2").Address, 6);
            using (Assert.EnterMultipleScope())
            {
                DelayAssert.AppliedOnce(held, baseline["cloudlet-2"], 40, "while held: lab edge -> cloudlet-2");
                DelayAssert.AppliedOnce(released, baseline["cloudlet-2"], 0, "after the hold ends: lab edge -> cloudlet-2");
                Assert.That((await lab.ShowShapingAsync(shaper)).IsEmpty, Is.True);
            }
        }
        finally
        {
            await lab.ClearShapingAsync(shaper);
        }
    }
}
