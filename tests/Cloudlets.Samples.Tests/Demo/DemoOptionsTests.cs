using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

public sealed class DemoOptionsTests
{
    [Test]
    public void Parse_AllOptions_AreRead()
    {
        var options = DemoOptions.Parse(["--scenario", "s.json", "--json", "out.json", "--plot", "rtt.svg", "--csv", "rtt.csv", "--journal", "run.jsonl", "--keep", "--name", "lab2", "--plain"]);

        Assert.That(options, Is.EqualTo(new DemoOptions { ScenarioPath = "s.json", JsonPath = "out.json", PlotPath = "rtt.svg", CsvPath = "rtt.csv", JournalPath = "run.jsonl", Keep = true, Name = "lab2", Plain = true }));
    }

    [Test]
    public void Parse_Nothing_UsesDefaults()
    {
        var options = DemoOptions.Parse([]);

        Assert.That(options, Is.EqualTo(new DemoOptions { Name = "demo" }));
    }

    [TestCase(new[] { "--json" }, "Required argument missing for option: '--json'")]
    [TestCase(new[] { "--bogus" }, "Unrecognized command or argument '--bogus'")]
    [TestCase(new[] { "--plot", "chart.png" }, "SVG")]
    [TestCase(new[] { "--name", "Bad Name" }, "not a valid lab name")]
    public void Parse_BadInput_ThrowsFormatException(string[] args, string expected)
    {
        Assert.That(() => DemoOptions.Parse(args), Throws.TypeOf<FormatException>().With.Message.Contains(expected));
    }
}
