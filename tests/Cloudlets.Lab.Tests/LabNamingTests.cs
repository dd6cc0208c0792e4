using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class LabNamingTests
{
    [TestCase("t1")]
    [TestCase("lab")]
    [TestCase("a-b-c9")]
    [TestCase("abcdefghijklmnopqrstuvwx")]
    public void IsValidLabName_ValidName_True(string name) => Assert.That(LabNaming.IsValidLabName(name), Is.True);

    [TestCase("")]
    [TestCase(null)]
    [TestCase("1lab")]
    [TestCase("Lab")]
    [TestCase("lab-")]
    [TestCase("-lab")]
    [TestCase("la b")]
    [TestCase("lab;rm")]
    [TestCase("lab/x")]
    [TestCase("abcdefghijklmnopqrstuvwxy")]
    public void IsValidLabName_InvalidName_False(string? name) => Assert.That(LabNaming.IsValidLabName(name), Is.False);

    [Category("BadInput")]
    [Test]
    public void ValidateLabName_InvalidName_ThrowsConfigurationException() =>
        Assert.That(() => LabNaming.ValidateLabName("Bad Name"), Throws.TypeOf<LabConfigurationException>().With.Message.Contains("Bad Name"));

    [Test]
    public void Namespaces_ForLab_FollowTheConvention()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabNaming.SwitchNamespace("t1"), Is.EqualTo("t1-sw"));
            Assert.That(LabNaming.EdgeNamespace("t1"), Is.EqualTo("t1-edge"));
            Assert.That(LabNaming.HostNamespace("t1", 3), Is.EqualTo("t1-h3"));
            Assert.That(LabNaming.HostName(2), Is.EqualTo("cloudlet-2"));
            Assert.That(LabNaming.GuestName(1), Is.EqualTo("guest-1"));
        }
    }

    [Test]
    public void AllNamespaces_ForLab_HostsThenSitesThenEdgeThenSwitch()
    {
        var all = LabNaming.AllNamespaces("t1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(all, Has.Count.EqualTo(LabNaming.MaxHosts + (LabNaming.MaxSites - 1) + 2));
            Assert.That(all[0], Is.EqualTo("t1-h1"));
            Assert.That(all[LabNaming.MaxHosts], Is.EqualTo("t1-s2"));
            Assert.That(all[^3], Is.EqualTo("t1-s8"));
            Assert.That(all, Is.Unique);
            Assert.That(all[^2], Is.EqualTo("t1-edge"));
            Assert.That(all[^1], Is.EqualTo("t1-sw"));
        }
    }

    [Test]
    public void SiteNamespace_FirstSite_IsTheEdgeAndOthersHaveTheirOwn()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabNaming.SiteNamespace("t1", 1), Is.EqualTo(LabNaming.EdgeNamespace("t1")));
            Assert.That(LabNaming.SiteNamespace("t1", 2), Is.EqualTo("t1-s2"));
            Assert.That(LabNaming.SwitchPortForSite(1), Is.EqualTo(LabNaming.SwitchPortForEdge));
            Assert.That(LabNaming.SwitchPortForSite(8), Is.EqualTo("s8"));
            Assert.That(LabNaming.SiteName(3), Is.EqualTo("site-3"));
        }
    }

    [TestCase("site-1", 1)]
    [TestCase("site-8", 8)]
    [TestCase("site-12", 12)]
    public void TryParseSiteName_SiteName_ReturnsIndex(string name, int expected)
    {
        Assert.That(LabNaming.TryParseSiteName(name, out var index), Is.True);
        Assert.That(index, Is.EqualTo(expected));
    }

    [TestCase("site-")]
    [TestCase("site-0")]
    [TestCase("site-01")]
    [TestCase("site-x")]
    [TestCase("edge")]
    [TestCase("cloudlet-1")]
    [TestCase(null)]
    public void TryParseSiteName_NotASiteName_ReturnsFalse(string? name)
    {
        Assert.That(LabNaming.TryParseSiteName(name, out _), Is.False);
    }

    [TestCase("cloudlet-1", 1)]
    [TestCase("cloudlet-8", 8)]
    [TestCase("cloudlet-12", 12)]
    public void TryParseHostName_HostName_ReturnsIndex(string name, int expected)
    {
        Assert.That(LabNaming.TryParseHostName(name, out var index), Is.True);
        Assert.That(index, Is.EqualTo(expected));
    }

    [TestCase("cloudlet-")]
    [TestCase("cloudlet-0")]
    [TestCase("cloudlet-01")]
    [TestCase("cloudlet-x")]
    [TestCase("host-1")]
    [TestCase(null)]
    public void TryParseHostName_NotAHostName_False(string? name) => Assert.That(LabNaming.TryParseHostName(name, out _), Is.False);
}
