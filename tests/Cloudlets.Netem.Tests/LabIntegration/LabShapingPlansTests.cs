using System.Net;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab.Shaping;

namespace Cloudlets.Netem.Tests.LabIntegration;

public sealed class LabShapingPlansTests
{
    private static readonly IPAddress Edge = IPAddress.Parse("198.18.7.1");

    [Test]
    public void Build_DemoDelays_ShapesEachHostsSwitchPortTowardTheEdgeOnce()
    {
        var plan = LabShapingPlans.Build("demo", 3, Edge,
            [("cloudlet-1", TimeSpan.FromMilliseconds(300)), ("cloudlet-2", TimeSpan.FromMilliseconds(20)), ("cloudlet-3", TimeSpan.FromMilliseconds(20))]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Owner, Is.EqualTo(LabShapingPlans.OwnerFor("demo")));
            Assert.That(plan.Rules.Select(r => (r.Name, r.Interface, r.Direction, r.BridgePort, r.NetworkNamespace, r.Impairment.Delay.TotalMilliseconds)), Is.EqualTo(new[]
            {
                ((string?)"cloudlet-1", "h1", ShapingDirection.Ingress, true, (string?)"demo-sw", 300.0),
                ("cloudlet-2", "h2", ShapingDirection.Ingress, true, "demo-sw", 20.0),
                ("cloudlet-3", "h3", ShapingDirection.Ingress, true, "demo-sw", 20.0),
            }));
            Assert.That(plan.Rules.Select(r => r.Match.Destination), Has.All.EqualTo(new IPNetwork(Edge, 32)), "toward the users only: host-to-host traffic stays fast");
        }
    }

    [TestCase("cloudlet-4")]
    [TestCase("cloudlet-0")]
    [TestCase("host-1")]
    [TestCase("cloudlet-1; reboot")]
    public void Build_UnknownHost_ThrowsBeforeAnything(string host) =>
        Assert.Throws<ShapingValidationException>(() => LabShapingPlans.Build("demo", 3, Edge, [(host, TimeSpan.FromMilliseconds(20))]));

    [Test]
    public void Build_NegativeDelay_Throws() =>
        Assert.Throws<ShapingValidationException>(() => LabShapingPlans.Build("demo", 3, Edge, [("cloudlet-1", TimeSpan.FromMilliseconds(-1))]));

    [Test]
    public void Build_HostTwice_Throws() =>
        Assert.Throws<ShapingValidationException>(() => LabShapingPlans.Build("demo", 3, Edge, [("cloudlet-1", TimeSpan.FromMilliseconds(1)), ("cloudlet-1", TimeSpan.FromMilliseconds(2))]));
}
