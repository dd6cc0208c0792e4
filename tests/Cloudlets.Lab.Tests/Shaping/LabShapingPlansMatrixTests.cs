using System.Net;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab.Shaping;

namespace Cloudlets.Lab.Tests.Shaping;

/// <summary>
/// <see cref="LabShapingPlans.BuildMatrix"/>: one rule per (host port, site address) pair, on the
/// host's switch port, ingress, matching only traffic to that site; bad entries are refused by field.
/// </summary>
public sealed class LabShapingPlansMatrixTests
{
    private static readonly LabAddressPlan Plan = new(5);

    private static IReadOnlyList<LabSite> Sites(int count) =>
        [.. Enumerable.Range(1, count).Select(s => new LabSite(LabNaming.SiteName(s), s, LabNaming.SiteNamespace("lab", s), Plan.Site(s), LabNaming.SwitchPortForSite(s)))];

    private static LabSiteDelay D(string site, string host, double ms) => new(site, host, TimeSpan.FromMilliseconds(ms));

    [Test]
    public void BuildMatrix_TwoSitesTwoHosts_OneRulePerPairOnTheHostPortToTheSite()
    {
        var plan = LabShapingPlans.BuildMatrix("lab", 2, Sites(2), [D("site-1", "cloudlet-1", 20), D("site-1", "cloudlet-2", 300), D("site-2", "cloudlet-1", 300), D("site-2", "cloudlet-2", 20)]);
        var rules = plan.Rules.Select(r => (r.Name, r.Interface, r.Direction, r.Match.Destination?.ToString(), r.Impairment.Delay.TotalMilliseconds, r.NetworkNamespace, r.BridgePort)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Owner, Is.EqualTo(LabShapingPlans.OwnerFor("lab")));
            Assert.That(rules, Is.EqualTo(new[]
            {
                ("site-1_cloudlet-1", "h1", ShapingDirection.Ingress, "198.18.5.1/32", 20.0, "lab-sw", true),
                ("site-1_cloudlet-2", "h2", ShapingDirection.Ingress, "198.18.5.1/32", 300.0, "lab-sw", true),
                ("site-2_cloudlet-1", "h1", ShapingDirection.Ingress, "198.19.5.17/32", 300.0, "lab-sw", true),
                ("site-2_cloudlet-2", "h2", ShapingDirection.Ingress, "198.19.5.17/32", 20.0, "lab-sw", true),
            }));
        }
    }

    [Test]
    public void BuildMatrix_ZeroDelay_LeavesThePairUnshaped()
    {
        var plan = LabShapingPlans.BuildMatrix("lab", 2, Sites(2), [D("site-1", "cloudlet-1", 0), D("site-2", "cloudlet-1", 40)]);
        Assert.That(plan.Rules.Select(r => r.Name), Is.EqualTo(new[] { "site-2_cloudlet-1" }));
    }

    [Test]
    public void BuildMatrix_EightSitesEightHosts_FitsOnePlan()
    {
        var entries = Enumerable.Range(1, LabNaming.MaxSites).SelectMany(s => Enumerable.Range(1, LabNaming.MaxHosts).Select(h => D(LabNaming.SiteName(s), LabNaming.HostName(h), s + h))).ToList();
        Assert.That(LabShapingPlans.BuildMatrix("lab", LabNaming.MaxHosts, Sites(LabNaming.MaxSites), entries).Rules, Has.Count.EqualTo(64));
    }

    [Category("BadInput")]
    [TestCase("site-3", "cloudlet-1", 10, "Site")]
    [TestCase("edge", "cloudlet-1", 10, "Site")]
    [TestCase("site-1", "cloudlet-3", 10, "Host")]
    [TestCase("site-1", "host-1", 10, "Host")]
    [TestCase("site-1", "cloudlet-1", -1, "Delay")]
    [TestCase("site-1", "cloudlet-1", 60_001, "Delay")]
    public void BuildMatrix_BadEntry_ThrowsNamingTheField(string site, string host, double ms, string field)
    {
        var ex = Assert.Throws<ShapingValidationException>(() => LabShapingPlans.BuildMatrix("lab", 2, Sites(2), [D("site-2", "cloudlet-2", 5), D(site, host, ms)]));
        Assert.That(ex!.Field, Is.EqualTo(field));
    }

    [Category("BadInput")]
    [Test]
    public void BuildMatrix_RepeatedPair_Throws()
    {
        var ex = Assert.Throws<ShapingValidationException>(() => LabShapingPlans.BuildMatrix("lab", 2, Sites(2), [D("site-2", "cloudlet-1", 5), D("site-2", "cloudlet-1", 9)]));
        Assert.That(ex!.Message, Does.Contain("(site-2, cloudlet-1) is listed twice"));
    }

    [Test]
    public void BuildMatrix_OneSite_MatchesWhatPerHostShapingDoes()
    {
        var matrix = LabShapingPlans.BuildMatrix("lab", 2, Sites(1), [D("site-1", "cloudlet-2", 70)]).Rules.Single();
        var perHost = LabShapingPlans.Build("lab", 2, IPAddress.Parse("198.18.5.1"), [("cloudlet-2", TimeSpan.FromMilliseconds(70))]).Rules.Single();
        Assert.That((matrix.Interface, matrix.Direction, matrix.Match, matrix.Impairment, matrix.NetworkNamespace, matrix.BridgePort),
            Is.EqualTo((perHost.Interface, perHost.Direction, perHost.Match, perHost.Impairment, perHost.NetworkNamespace, perHost.BridgePort)));
    }
}
