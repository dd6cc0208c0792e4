using System.Net;
using Cloudlets.Samples.Agent;

namespace Cloudlets.Mqtt.Tests;

public sealed class TargetsFileTests
{
    [Test]
    public void Parse_IcmpAndTcpTargets_GivesProbeTargets()
    {
        var targets = TargetsFile.Parse("""{ "targets": [ { "name": "a", "address": "198.18.0.11" }, { "name": "b", "address": "::1", "port": 7070 } ] }""", "t.json");

        Assert.That(targets, Is.EqualTo(new[]
        {
            new Cloudlets.Core.Probing.ProbeTarget("a", IPAddress.Parse("198.18.0.11")),
            new Cloudlets.Core.Probing.ProbeTarget("b", IPAddress.IPv6Loopback, 7070),
        }));
    }

    [TestCase("not json", "not valid JSON")]
    [TestCase("""{ "hosts": [] }""", "\"targets\" array")]
    [TestCase("""{ "targets": [] }""", "empty")]
    [TestCase("""{ "targets": [ { "address": "127.0.0.1" } ] }""", "targets[0].name")]
    [TestCase("""{ "targets": [ { "name": "a", "address": "1" } ] }""", "targets[0].address")]
    public void Parse_BadFile_SaysWhereAndWhy(string json, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => TargetsFile.Parse(json, "t.json"));

        Assert.That(ex!.Message, Does.StartWith("t.json").And.Contain(expected));
    }
}
