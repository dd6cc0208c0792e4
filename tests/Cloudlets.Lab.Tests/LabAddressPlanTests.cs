using System.Net;
using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class LabAddressPlanTests
{
    [Test]
    public void Addresses_Subnet7_FollowThePlan()
    {
        var plan = new LabAddressPlan(7);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Network, Is.EqualTo(IPAddress.Parse("198.18.7.0")));
            Assert.That(plan.Edge, Is.EqualTo(IPAddress.Parse("198.18.7.1")));
            Assert.That(plan.Host(1), Is.EqualTo(IPAddress.Parse("198.18.7.11")));
            Assert.That(plan.Host(LabNaming.MaxHosts), Is.EqualTo(IPAddress.Parse("198.18.7.18")));
            Assert.That(plan.Guest(1), Is.EqualTo(IPAddress.Parse("198.18.7.101")));
            Assert.That(plan.GuestMac(1), Is.EqualTo("52:54:00:12:07:01"));
            Assert.That(new LabAddressPlan(200).GuestMac(12), Is.EqualTo("52:54:00:12:c8:0c"));
            Assert.That(LabAddressPlan.WithPrefix(plan.Edge), Is.EqualTo("198.18.7.1/24"));
            Assert.That(plan.HostBridgeMac(1), Is.EqualTo("02:54:00:13:07:01"));
            Assert.That(new LabAddressPlan(200).HostBridgeMac(LabNaming.MaxHosts), Is.EqualTo("02:54:00:13:c8:08"));
        }
    }

    [Test]
    public void HostBridgeMac_EveryHost_IsBelowEveryGuestTapMacAndUnique()
    {
        // libvirt gives a guest's tap the guest MAC with the first byte fe; a bridge with a kernel-chosen
        // address would take the lowest port MAC, so the fixed one must stay below every tap's anyway.
        var plan = new LabAddressPlan(LabNaming.MaxSubnet);
        var bridges = Enumerable.Range(1, LabNaming.MaxHosts).Select(plan.HostBridgeMac).ToList();
        var taps = Enumerable.Range(1, LabNaming.MaxGuests).Select(i => "fe" + plan.GuestMac(i)[2..]).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bridges, Is.Unique);
            Assert.That(bridges, Has.All.Matches<string>(b => taps.All(t => string.CompareOrdinal(b, t) < 0)));
            Assert.That(bridges, Has.All.StartWith("02:"), "locally administered, unicast");
        }
    }

    [Test]
    public void Site_Subnet7_FirstIsTheEdgeAndOthersHaveTheirOwnSlash28()
    {
        var plan = new LabAddressPlan(7);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Site(1), Is.EqualTo(plan.Edge));
            Assert.That(plan.SiteWithPrefix(1), Is.EqualTo("198.18.7.1/24"));
            Assert.That(plan.Site(2), Is.EqualTo(IPAddress.Parse("198.19.7.17")));
            Assert.That(plan.SiteWithPrefix(2), Is.EqualTo("198.19.7.17/28"));
            Assert.That(plan.Site(LabNaming.MaxSites), Is.EqualTo(IPAddress.Parse("198.19.7.113")));
            Assert.That(plan.HostsNetwork, Is.EqualTo("198.18.7.0/24"));
            Assert.That(plan.SitesNetwork, Is.EqualTo("198.19.7.0/24"));
        }
    }

    [Test]
    public void Site_AllSitesOfTwoLabs_AreDistinctEachInItsOwnSlash28()
    {
        var sites = new[] { new LabAddressPlan(1), new LabAddressPlan(LabNaming.MaxSubnet) }
            .SelectMany(p => Enumerable.Range(2, LabNaming.MaxSites - 1).Select(p.Site))
            .ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sites, Is.Unique);
            Assert.That(sites.Select(a => a.GetAddressBytes()[0..2]), Has.All.EqualTo(new byte[] { 198, 19 }));
            // One address per /28 block: no two sites share a subnet.
            Assert.That(sites.Select(a => (a.GetAddressBytes()[2], a.GetAddressBytes()[3] / 16)), Is.Unique);
        }
    }

    [TestCase(0)]
    [TestCase(LabNaming.MaxSites + 1)]
    public void Site_IndexOutOfRange_Throws(int index) =>
        Assert.That(() => new LabAddressPlan(3).Site(index), Throws.TypeOf<ArgumentOutOfRangeException>());

    [Test]
    public void Addresses_AllHostsAndGuests_AreDistinctAndInsideTheBenchmarkRange()
    {
        var plan = new LabAddressPlan(LabNaming.MaxSubnet);
        var all = Enumerable.Range(1, LabNaming.MaxHosts).Select(plan.Host)
            .Concat(Enumerable.Range(1, LabNaming.MaxGuests).Select(plan.Guest))
            .Append(plan.Edge)
            .ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(all, Is.Unique);
            Assert.That(all.Select(a => a.GetAddressBytes()[0..3]), Has.All.EqualTo(new byte[] { 198, 18, LabNaming.MaxSubnet }));
        }
    }

    [TestCase(0)]
    [TestCase(255)]
    [TestCase(-1)]
    public void Constructor_SubnetOutOfRange_Throws(int subnet) =>
        Assert.That(() => new LabAddressPlan(subnet), Throws.TypeOf<ArgumentOutOfRangeException>());

    [Test]
    public void Host_IndexOutOfRange_Throws()
    {
        var plan = new LabAddressPlan(1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => plan.Host(0), Throws.TypeOf<ArgumentOutOfRangeException>());
            Assert.That(() => plan.Host(LabNaming.MaxHosts + 1), Throws.TypeOf<ArgumentOutOfRangeException>());
            Assert.That(() => plan.Guest(LabNaming.MaxGuests + 1), Throws.TypeOf<ArgumentOutOfRangeException>());
        }
    }
}
