using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

/// <summary>The fleet run's live view: the act's sites × hosts matrix, and each host's VMs against its capacity.</summary>
public sealed class FleetRunViewTests
{
    [Test]
    public void MatrixView_TwoSitesThreeHosts_ARowPerSiteAColumnPerHost()
    {
        var act = new FleetAct
        {
            DelaysMs = new Dictionary<string, IReadOnlyList<double>> { ["site-2"] = [300, 20, 150.5], ["site-1"] = [20, 300, 150] },
        };

        var lines = FleetRun.MatrixView(act, 3).Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Has.Length.EqualTo(3));
            Assert.That(lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "delay", "ms", "cloudlet-1", "cloudlet-2", "cloudlet-3" }));
            Assert.That(lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "site-1", "20", "300", "150" }), "sites in order");
            Assert.That(lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "site-2", "300", "20", "150.5" }));
        }
    }

    [Test]
    public void PlacementView_VmsOnHostsAndOneNowhere_CountsAgainstCapacityAndNamesTheMissing()
    {
        var placement = new Dictionary<string, string?> { ["guest-2"] = "cloudlet-1", ["guest-1"] = "cloudlet-1", ["guest-3"] = "cloudlet-3", ["guest-4"] = null };

        var lines = FleetRun.PlacementView(placement, 3, 2).Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).ToArray();

        Assert.That(lines, Is.EqualTo(new[]
        {
            "cloudlet-1  2/2 guest-1 guest-2",
            "cloudlet-2  0/2",
            "cloudlet-3  1/2 guest-3",
            "not on exactly one host: guest-4",
        }));
    }
}
