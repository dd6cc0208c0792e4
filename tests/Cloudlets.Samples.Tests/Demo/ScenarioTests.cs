using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

public sealed class ScenarioTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("cloudlets-scenario-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    private string Write(string json)
    {
        var path = Path.Combine(_folder, "scenario.json");
        File.WriteAllText(path, json);
        return path;
    }

    [TestCase("static.json", 1)]
    [TestCase("two-acts.json", 2)]
    public void Load_BundledScenario_IsValidForThreeHosts(string file, int expectedMigrations)
    {
        var scenario = Scenario.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", file));

        Assert.DoesNotThrow(() => DemoRun.ValidateHosts(scenario, DemoRun.HostCount));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(scenario.ExpectedMigrations, Is.EqualTo(expectedMigrations));
            Assert.That(scenario.GuestOn, Is.EqualTo("cloudlet-1"));
            Assert.That(scenario.Steps[0].DelaysMs, Is.EquivalentTo(new Dictionary<string, double> { ["cloudlet-1"] = 300, ["cloudlet-2"] = 20, ["cloudlet-3"] = 20 }));
        }
    }

    [TestCase("""{"steps":[]}""", "no steps")]
    [TestCase("""{"steps":[{"label":"a","delaysMs":{}}]}""", "sets no delay")]
    [TestCase("""{"steps":[{"label":"a","delaysMs":{"cloudlet-1":20}}]}""", "exactly one of atSeconds and afterMigrations")]
    [TestCase("""{"steps":[{"label":"a","atSeconds":0,"afterMigrations":1,"delaysMs":{"cloudlet-1":20}}]}""", "exactly one of atSeconds and afterMigrations")]
    [TestCase("""{"steps":[{"label":"a","atSeconds":0,"delaysMs":{"cloudlet-1":-5}}]}""", "not between 0 and 10000 ms")]
    [TestCase("""{"settleSeconds":-1,"steps":[{"label":"a","atSeconds":0,"delaysMs":{"cloudlet-1":5}}]}""", "settleSeconds")]
    [TestCase("""{"steps":[""", "not valid JSON")]
    public void Load_InvalidScenario_ThrowsFormatExceptionSayingWhy(string json, string expected)
    {
        var path = Write(json);

        Assert.That(() => Scenario.Load(path), Throws.TypeOf<FormatException>().With.Message.Contains(expected));
    }

    [TestCase("cloudlet-4")]
    [TestCase("edge")]
    public void ValidateHosts_UnknownHost_ThrowsBeforeAnythingStarts(string host)
    {
        var scenario = Scenario.Load(Write($$$"""{"steps":[{"label":"a","atSeconds":0,"delaysMs":{"{{{host}}}":20}}]}"""));

        Assert.That(() => DemoRun.ValidateHosts(scenario, DemoRun.HostCount), Throws.TypeOf<FormatException>().With.Message.Contains(host));
    }
}
