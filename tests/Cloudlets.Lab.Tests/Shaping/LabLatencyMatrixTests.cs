using Cloudlets.Core.Shaping;
using Cloudlets.Lab.Shaping;

namespace Cloudlets.Lab.Tests.Shaping;

/// <summary>The latency-matrix file format of <c>shape --matrix</c>: what it reads, and the member each bad file is refused for.</summary>
public sealed class LabLatencyMatrixTests
{
    [Test]
    public void Parse_DocumentedExample_ReadsEveryEntryInOrder()
    {
        const string json = """
            {"delays": [
              {"site": "site-1", "host": "cloudlet-1", "delayMs": 20},
              {"site": "site-1", "host": "cloudlet-2", "delayMs": 300},
              {"site": "site-2", "host": "cloudlet-1", "delayMs": 300.5},
              {"site": "site-2", "host": "cloudlet-2", "delayMs": 0}
            ]}
            """;
        Assert.That(LabLatencyMatrix.Parse(json), Is.EqualTo(new[]
        {
            new LabSiteDelay("site-1", "cloudlet-1", TimeSpan.FromMilliseconds(20)),
            new LabSiteDelay("site-1", "cloudlet-2", TimeSpan.FromMilliseconds(300)),
            new LabSiteDelay("site-2", "cloudlet-1", TimeSpan.FromMilliseconds(300.5)),
            new LabSiteDelay("site-2", "cloudlet-2", TimeSpan.Zero),
        }));
    }

    [Category("BadInput")]
    [TestCase("not json", "file")]
    [TestCase("[]", "file")]
    [TestCase("{}", "delays")]
    [TestCase("""{"delays": {}}""", "delays")]
    [TestCase("""{"delays": []}""", "delays")]
    [TestCase("""{"delays": [], "extra": 1}""", "extra")]
    [TestCase("""{"delays": [1]}""", "delays[0]")]
    [TestCase("""{"delays": [{"host": "cloudlet-1", "delayMs": 5}]}""", "delays[0].site")]
    [TestCase("""{"delays": [{"site": "site-1", "delayMs": 5}]}""", "delays[0].host")]
    [TestCase("""{"delays": [{"site": "site-1", "host": "cloudlet-1"}]}""", "delays[0].delayMs")]
    [TestCase("""{"delays": [{"site": "site-9", "host": "cloudlet-1", "delayMs": 5}]}""", "delays[0].site")]
    [TestCase("""{"delays": [{"site": 1, "host": "cloudlet-1", "delayMs": 5}]}""", "delays[0].site")]
    [TestCase("""{"delays": [{"site": "site-1", "host": "cloudlet-0", "delayMs": 5}]}""", "delays[0].host")]
    [TestCase("""{"delays": [{"site": "site-1", "host": "cloudlet-1", "delayMs": -1}]}""", "delays[0].delayMs")]
    [TestCase("""{"delays": [{"site": "site-1", "host": "cloudlet-1", "delayMs": 60001}]}""", "delays[0].delayMs")]
    [TestCase("""{"delays": [{"site": "site-1", "host": "cloudlet-1", "delayMs": "5"}]}""", "delays[0].delayMs")]
    [TestCase("""{"delays": [{"site": "site-1", "host": "cloudlet-1", "delayMs": 5, "jitterMs": 1}]}""", "delays[0].jitterMs")]
    [TestCase("""{"delays": [{"site": "site-1", "host": "cloudlet-1", "delayMs": 5}, {"site": "site-1", "host": "cloudlet-1", "delayMs": 6}]}""", "delays[1]")]
    public void Parse_BadFile_ThrowsNamingTheMember(string json, string field)
    {
        var ex = Assert.Throws<ShapingValidationException>(() => LabLatencyMatrix.Parse(json));
        Assert.That(ex!.Field, Is.EqualTo(field), ex.Message);
    }

    [Category("BadInput")]
    [Test]
    public void Parse_TooManyEntries_Throws()
    {
        var entries = string.Join(',', Enumerable.Range(0, LabLatencyMatrix.MaxEntries + 1).Select(i => $$"""{"site":"site-1","host":"cloudlet-1","delayMs":{{i}}}"""));
        var ex = Assert.Throws<ShapingValidationException>(() => LabLatencyMatrix.Parse("{\"delays\":[" + entries + "]}"));
        Assert.That(ex!.Field, Is.EqualTo("delays"));
    }
}
