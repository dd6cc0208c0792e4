using Cloudlets.Simulation;

namespace Cloudlets.Simulation.Tests;

public class FleetJsonTests
{
    private const string Valid = """
        {
          "version": 1,
          "hosts": [ { "name": "a", "memoryMiB": 8192, "vcpus": 8 }, { "name": "b", "memoryMiB": 4096, "vcpus": 4 } ],
          "vms": [ { "name": "vm1", "memoryMiB": 1024, "vcpus": 1, "host": "a", "users": [ { "vantagePoint": "u", "weight": 2 }, { "vantagePoint": "v" } ] } ],
          "migration": { "fixedSeconds": 2, "bandwidthMiBps": 100, "downtimeMs": 200 },
          "cost": { "migrationPenaltyMsSeconds": 20000 }
        }
        """;

    [Test]
    public void Parse_ValidFile_ReadsEveryField()
    {
        var fleet = FleetJson.Parse(Valid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fleet.Hosts, Is.EqualTo(new[] { new SimulatedHost("a", 8192, 8), new SimulatedHost("b", 4096, 4) }));
            Assert.That((fleet.Vms[0].Name, fleet.Vms[0].MemoryMiB, fleet.Vms[0].Host), Is.EqualTo(("vm1", 1024L, "a")));
            Assert.That(fleet.Vms[0].Users.Select(u => (u.VantagePoint, u.Weight)), Is.EqualTo(new[] { ("u", 2.0), ("v", 1.0) }));
            Assert.That(fleet.Migration, Is.EqualTo(new MigrationModel(2, 100, 200)));
            Assert.That(fleet.Cost, Is.EqualTo(new CostModel(20000, 1000)));
            Assert.That(fleet.Migration.DurationSeconds(1024), Is.EqualTo(12.24));
        }
    }

    [Test]
    public void WriteThenParse_RoundTrips()
    {
        var fleet = FleetJson.Parse(Valid);
        var again = FleetJson.Parse(FleetJson.Write(fleet));
        Assert.That((again.Hosts, again.Migration, again.Cost, again.Vms[0].Users), Is.EqualTo((fleet.Hosts, fleet.Migration, fleet.Cost, fleet.Vms[0].Users)));
    }

    [Test]
    public void Parse_SeveralProblems_ListsEveryOneWithItsPath()
    {
        var bad = Valid
            .Replace("\"memoryMiB\": 4096", "\"memoryMiB\": 0", StringComparison.Ordinal)
            .Replace("\"host\": \"a\"", "\"host\": \"z\"", StringComparison.Ordinal)
            .Replace("\"weight\": 2", "\"weight\": -1", StringComparison.Ordinal)
            .Replace("\"bandwidthMiBps\": 100", "\"bandwidthMiBps\": \"fast\"", StringComparison.Ordinal);
        var ex = Assert.Throws<FleetFormatException>(() => FleetJson.Parse(bad, "f.json"));
        Assert.That(ex.Errors.Select(e => e.Path), Is.EqualTo(new[] { "hosts[1].memoryMiB", "vms[0].host", "vms[0].users[0].weight", "migration.bandwidthMiBps" }));
    }

    [TestCase("""{ "version": 2, "hosts": [], "vms": [], "migration": { "fixedSeconds": 1, "bandwidthMiBps": 1, "downtimeMs": 0 }, "cost": { "migrationPenaltyMsSeconds": 0 } }""", "version")]
    [TestCase("""{ "vms": [], "migration": { "fixedSeconds": 1, "bandwidthMiBps": 1, "downtimeMs": 0 }, "cost": { "migrationPenaltyMsSeconds": 0 } }""", "hosts")]
    [TestCase("""{ "hosts": [], "vms": [], "cost": { "migrationPenaltyMsSeconds": 0 } }""", "migration")]
    [TestCase("""{ "hosts": [{ "name": "a", "memoryMiB": 1, "vcpus": 1 }, { "name": "a", "memoryMiB": 1, "vcpus": 1 }], "vms": [], "migration": { "fixedSeconds": 1, "bandwidthMiBps": 1, "downtimeMs": 0 }, "cost": { "migrationPenaltyMsSeconds": 0 } }""", "hosts[1].name")]
    [TestCase("""{ "hosts": [{ "name": "a", "memoryMiB": 1, "vcpus": 1 }], "vms": [{ "name": "v", "memoryMiB": 1, "vcpus": 1, "host": "a", "users": [] }], "migration": { "fixedSeconds": 1, "bandwidthMiBps": 1, "downtimeMs": 0 }, "cost": { "migrationPenaltyMsSeconds": 0 } }""", "vms[0].users")]
    public void Parse_BadFile_NamesThePath(string json, string path)
    {
        var ex = Assert.Throws<FleetFormatException>(() => FleetJson.Parse(json));
        Assert.That(ex.Errors.Select(e => e.Path), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void Parse_MalformedJson_GivesTheLine()
    {
        var ex = Assert.Throws<FleetFormatException>(() => FleetJson.Parse("{\n  \"hosts\": [\n  }\n"));
        Assert.That(ex.Errors[0].Line, Is.EqualTo(3));
    }
}
