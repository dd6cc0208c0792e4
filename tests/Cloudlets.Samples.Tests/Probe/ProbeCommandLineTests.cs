using Cloudlets.Samples.Probe;

namespace Cloudlets.Samples.Tests.Probe;

public sealed class ProbeCommandLineTests
{
    [Test]
    public void Parse_TargetOnly_UsesTheDefaults()
    {
        var parsed = ProbeCommandLine.Parse(["192.0.2.1"]);
        Assert.That(parsed, Is.EqualTo(new ProbeCommandLine(1, 1000, 10, 500, null, false, null, ["192.0.2.1"])).Using<ProbeCommandLine>(SameLine));
    }

    [Test]
    public void Parse_EveryOption_IsRead()
    {
        var parsed = ProbeCommandLine.Parse(["--count", "5", "--period", "200", "--interval", "0", "--timeout", "300", "--tcp", "22", "--json", "--netns", "edge1", "a.example", "192.0.2.2"]);
        Assert.That(parsed, Is.EqualTo(new ProbeCommandLine(5, 200, 0, 300, 22, true, "edge1", ["a.example", "192.0.2.2"])).Using<ProbeCommandLine>(SameLine));
    }

    [Test]
    public void Parse_TargetsAfterDoubleDash_AreTakenAsTargets()
    {
        var parsed = ProbeCommandLine.Parse(["--count", "2", "--", "192.0.2.1"]);
        Assert.That(parsed.Targets, Is.EqualTo(new[] { "192.0.2.1" }));
    }

    [Category("BadInput")]
    [TestCase(new string[0], "no target given")]
    [TestCase(new[] { "--count", "0", "192.0.2.1" }, "--count must be from 1")]
    [TestCase(new[] { "--count", "x", "192.0.2.1" }, "'x'")]
    [TestCase(new[] { "--count" }, "'--count'")]
    [TestCase(new[] { "--period", "0", "192.0.2.1" }, "--period must be from 1")]
    [TestCase(new[] { "--interval", "-1", "192.0.2.1" }, "--interval must be from 0")]
    [TestCase(new[] { "--timeout", "3600001", "192.0.2.1" }, "--timeout must be from 1")]
    [TestCase(new[] { "--tcp", "0", "192.0.2.1" }, "--tcp must be from 1 to 65535")]
    [TestCase(new[] { "--tcp", "65536", "192.0.2.1" }, "--tcp must be from 1 to 65535")]
    [TestCase(new[] { "--frobnicate", "192.0.2.1" }, "unknown option '--frobnicate'")]
    [TestCase(new[] { "--netns", "a/b", "192.0.2.1" }, "a/b")]
    [TestCase(new[] { "--count", "2000000000", "192.0.2.1", "192.0.2.2" }, "more than 100,000,000 probes")]
    public void Parse_BadArguments_ThrowFormatException(string[] args, string message)
    {
        Assert.That(() => ProbeCommandLine.Parse(args), Throws.TypeOf<FormatException>().With.Message.Contains(message));
    }

    // The record holds a list; compare it by its items.
    private static bool SameLine(ProbeCommandLine a, ProbeCommandLine b) =>
        a with { Targets = [] } == b with { Targets = [] } && a.Targets.SequenceEqual(b.Targets);
}
