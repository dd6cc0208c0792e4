using Cloudlets.Samples.Advisor;

namespace Cloudlets.Samples.Tests.Advisor;

public sealed class AdvisorCommandLineTests
{
    [Test]
    public void Parse_FileOnly_AdvisesUntilCancelled()
    {
        var parsed = AdvisorCommandLine.Parse(["hosts.json"]);
        Assert.That(parsed, Is.EqualTo(new AdvisorCommandLine("hosts.json", null, Apply: false, ValidateOnly: false)));
    }

    [Test]
    public void Parse_EveryOption_IsRead()
    {
        var parsed = AdvisorCommandLine.Parse(["--duration", "90.5", "hosts.json", "--apply", "--validate"]);
        Assert.That(parsed, Is.EqualTo(new AdvisorCommandLine("hosts.json", TimeSpan.FromSeconds(90.5), Apply: true, ValidateOnly: true)));
    }

    [Category("BadInput")]
    [TestCase(new string[0], "no configuration file")]
    [TestCase(new[] { "a.json", "b.json" }, "'b.json' is extra")]
    [TestCase(new[] { "a.json", "--migrate" }, "unknown option '--migrate'")]
    [TestCase(new[] { "a.json", "--duration" }, "Required argument missing for option: '--duration'")]
    [TestCase(new[] { "a.json", "--duration", "0" }, "--duration takes")]
    [TestCase(new[] { "a.json", "--duration", "-5" }, "--duration takes")]
    [TestCase(new[] { "a.json", "--duration", "NaN" }, "--duration takes")]
    [TestCase(new[] { "a.json", "--duration", "604801" }, "--duration takes")]
    public void Parse_BadArguments_ThrowFormatException(string[] args, string message)
    {
        Assert.That(() => AdvisorCommandLine.Parse(args), Throws.TypeOf<FormatException>().With.Message.Contains(message));
    }
}
