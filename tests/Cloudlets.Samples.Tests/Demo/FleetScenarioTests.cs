using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

public sealed class FleetScenarioTests
{
    private const string Valid = """
        {"kind":"fleet","hosts":2,"sites":1,
         "vms":[{"initialHost":"cloudlet-1","users":[{"site":"site-1","weight":1}]}],
         "acts":[{"label":"a","delaysMs":{"site-1":[20,200]}}]}
        """;

    private static string Bundled => Path.Combine(AppContext.BaseDirectory, "scenarios", "fleet.json");

    [Test]
    public void Load_BundledFleet_FiveHostsThreeSitesFourVmsOneWithTwoWeightedUsers()
    {
        var scenario = FleetScenario.Load(Bundled);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(FleetScenario.IsFleet(Bundled), Is.True);
            Assert.That((scenario.Hosts, scenario.Sites, scenario.Vms.Count), Is.EqualTo((5, 3, 5)));
            Assert.That(scenario.VCpuOvercommit, Is.EqualTo(1));
            Assert.That(scenario.Vms.Count(v => v.Users.Count == 2), Is.EqualTo(1));
            Assert.That(scenario.Acts, Has.Count.GreaterThanOrEqualTo(2));
        }
    }

    [Test]
    public void Load_BundledFleet_EveryActHasAUniqueBestFeasibleAssignmentWithinTwoVmsPerHost()
    {
        var scenario = FleetScenario.Load(Bundled);

        foreach (var act in scenario.Acts)
        {
            var (hosts, _, optima) = FleetAssignment.Best(scenario.Vms, act, scenario.Hosts, capacityVms: 2);
            Assert.That(optima, Is.EqualTo(1), $"'{act.Label}' has one optimum, so finalHost == bestFeasibleHost is well defined");
            Assert.That(hosts.GroupBy(h => h).Max(g => g.Count()), Is.LessThanOrEqualTo(2));
        }
    }

    [TestCase("static.json")]
    [TestCase("two-acts.json")]
    public void IsFleet_SingleVmScenario_False(string file) =>
        Assert.That(FleetScenario.IsFleet(Path.Combine(AppContext.BaseDirectory, "scenarios", file)), Is.False);

    [TestCase("""{"kind":"fleet","hosts":9,"sites":1,"vms":[],"acts":[]}""", "hosts")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[],"acts":[]}""", "vms")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[{"initialHost":"cloudlet-3","users":[{"site":"site-1"}]}],"acts":[]}""", "vms[0].initialHost")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[{"initialHost":"cloudlet-1","users":[{"site":"site-2"}]}],"acts":[]}""", "vms[0].users[0].site")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[{"initialHost":"cloudlet-1","users":[{"site":"site-1","weight":0}]}],"acts":[]}""", "vms[0].users[0].weight")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[{"initialHost":"cloudlet-1","users":[{"site":"site-1"}]}],"acts":[]}""", "acts")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[{"initialHost":"cloudlet-1","users":[{"site":"site-1"}]}],"acts":[{"delaysMs":{"site-1":[20]}}]}""", "acts[0].delaysMs.site-1")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[{"initialHost":"cloudlet-1","users":[{"site":"site-1"}]}],"acts":[{"delaysMs":{}}]}""", "acts[0].delaysMs")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"vms":[{"initialHost":"cloudlet-1","users":[{"site":"site-1"}]}],"acts":[{"delaysMs":{"site-1":[20,-1]}}]}""", "acts[0].delaysMs.site-1")]
    [TestCase("""{"kind":"fleet","hosts":2,"sites":1,"extra":1}""", "$")]
    public void Parse_Invalid_ThrowsNamingTheField(string json, string field)
    {
        var ex = Assert.Throws<FleetScenarioException>(() => FleetScenario.Parse(json, "test"));
        Assert.That(ex!.Field, Does.StartWith(field));
    }

    [Test]
    public void Parse_Valid_Accepted() => Assert.That(FleetScenario.Parse(Valid, "test").Acts, Has.Count.EqualTo(1));
}
