using System.Net;
using Cloudlets.Core.Shaping;
using Cloudlets.Samples.Netem;

namespace Cloudlets.Samples.Tests.Netem;

public sealed class NetemCommandLineTests
{
    [Test]
    public void Parse_SetWithEveryOption_IsRead()
    {
        var line = NetemCommandLine.Parse(["set", "veth1", "--delay", "300ms", "--jitter", "5ms", "--loss", "1%", "--to", "198.18.1.0/24", "--to", "198.18.2.7", "--netns", "edge"]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(line.Verb, Is.EqualTo("set"));
            Assert.That(line.Device, Is.EqualTo("veth1"));
            Assert.That(line.NetworkNamespace, Is.EqualTo("edge"));
            Assert.That(line.Impairment, Is.EqualTo(new Impairment { Delay = TimeSpan.FromMilliseconds(300), Jitter = TimeSpan.FromMilliseconds(5), LossPercent = 1 }));
            Assert.That(line.Destinations, Is.EqualTo(new[] { IPNetwork.Parse("198.18.1.0/24"), IPNetwork.Parse("198.18.2.7/32") }));
            Assert.That(line.Ssh, Is.Null);
            Assert.That(line.Json, Is.False);
        }
    }

    [Test]
    public void Parse_ShowOverSsh_ReadsTheTargetAndDefaultsThePortAndKnownHosts()
    {
        var line = NetemCommandLine.Parse(["show", "eth0", "--json", "--ssh", "root@192.0.2.9", "--key", "/k/id"]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(line.Json, Is.True);
            Assert.That(line.Ssh?.User, Is.EqualTo("root"));
            Assert.That(line.Ssh?.Host, Is.EqualTo("192.0.2.9"));
            Assert.That(line.Ssh?.Port, Is.EqualTo(22));
            Assert.That(line.Ssh?.KeyFile, Is.EqualTo("/k/id"));
            Assert.That(line.Ssh?.KnownHostsFile, Does.EndWith("/.ssh/known_hosts"));
            Assert.That(line.Impairment, Is.Null);
        }
    }

    [TestCase("300ms", 300_000)]
    [TestCase("300", 300_000)]
    [TestCase("0.3s", 300_000)]
    [TestCase("250us", 250)]
    [TestCase("20.5", 20_500)]
    [TestCase("60s", 60_000_000)]
    [TestCase("0", 0)]
    public void ParseTime_Units_GiveMicroseconds(string text, long microseconds)
    {
        Assert.That(NetemCommandLine.ParseTime(text, "--delay"), Is.EqualTo(TimeSpan.FromMicroseconds(microseconds)));
    }

    [TestCase("1%", 1)]
    [TestCase("0.5", 0.5)]
    [TestCase("100%", 100)]
    public void ParsePercent_Valid_IsRead(string text, double percent)
    {
        Assert.That(NetemCommandLine.ParsePercent(text, "--loss"), Is.EqualTo(percent));
    }

    [Category("BadInput")]
    [TestCase(new[] { "set", "eth0", "--delay", "x" }, "--delay 'x' is not a time")]
    [TestCase(new[] { "set", "eth0", "--delay", "ms" }, "--delay 'ms' is not a time")]
    [TestCase(new[] { "set", "eth0", "--delay", "-5ms" }, "--delay '-5ms' is negative")]
    [TestCase(new[] { "set", "eth0", "--delay", "61s" }, "above the largest delay")]
    [TestCase(new[] { "set", "eth0", "--delay", "NaN" }, "is not a time")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--jitter", "20ms" }, "--jitter 20 ms is above the delay")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--loss", "101%" }, "--loss '101%' is not a percentage")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--loss", "-1" }, "--loss '-1' is not a percentage")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--loss", "lots" }, "--loss 'lots' is not a percentage")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--to", "198.18.1.1/24" }, "has host bits set; the network is 198.18.1.0/24")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--to", "198.18.1" }, "is not a network")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--to", "300.1.1.1" }, "is not a network")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--to", "example.org" }, "is not a network")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--to", "198.18.1.0/33" }, "prefix length must be a number from 0 to 32")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--to", "198.18.1.0/x" }, "prefix length")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--to", "198.18.1.0/24", "--to", "198.18.1.0/24" }, "is given twice")]
    [TestCase(new[] { "set", "eth0" }, "Option '--delay' is required")]
    [TestCase(new[] { "set", "--delay", "10ms" }, "Required argument missing")]
    [TestCase(new[] { "set", "eth0;reboot", "--delay", "10ms" }, "is not a valid Linux interface name")]
    [TestCase(new[] { "set", "averyveryverylongname", "--delay", "10ms" }, "is not a valid Linux interface name")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--netns", "a/b" }, "--netns")]
    [TestCase(new[] { "set", "eth0", "--delay", "10ms", "--frobnicate" }, "'--frobnicate'")]
    [TestCase(new[] { "show", "eth0", "--delay", "10ms" }, "'--delay'")]
    [TestCase(new[] { "del", "eth0", "--json" }, "'--json'")]
    [TestCase(new[] { "show", "--frobnicate" }, "unknown option '--frobnicate'")]
    [TestCase(new[] { "show", "eth0", "--key", "/k" }, "need --ssh USER@HOST")]
    [TestCase(new[] { "show", "eth0", "--ssh", "root@h" }, "--ssh needs --key FILE")]
    [TestCase(new[] { "show", "eth0", "--ssh", "h", "--key", "/k" }, "is not USER@HOST")]
    [TestCase(new[] { "show", "eth0", "--ssh", "a@b@c", "--key", "/k" }, "is not USER@HOST")]
    [TestCase(new[] { "show", "eth0", "--ssh", "root@h", "--key", "/k", "--port", "0" }, "--port must be from 1 to 65535")]
    [TestCase(new string[0], "Required command was not provided")]
    public void Parse_BadArguments_ThrowFormatExceptionSayingWhat(string[] args, string message)
    {
        Assert.That(() => NetemCommandLine.Parse(args), Throws.TypeOf<FormatException>().With.Message.Contains(message));
    }

    [Test]
    public void OwnerFor_SameDevice_IsStableValidAndDiffersPerNamespace()
    {
        var a = NetemCommandLine.OwnerFor(null, "eth0");
        var b = NetemCommandLine.OwnerFor("edge", "eth0");
        var c = NetemCommandLine.OwnerFor(null, "eth1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(NetemCommandLine.OwnerFor(null, "eth0"), Is.EqualTo(a));
            Assert.That(new[] { a, b, c }, Is.Unique);
            Assert.That(a, Does.StartWith("cnt-").And.EndWith("-eth0"));
            Assert.That(() => ShapingPlanValidator.ValidateOwner(a), Throws.Nothing);
            Assert.That(() => ShapingPlanValidator.ValidateOwner(NetemCommandLine.OwnerFor("ns.with_dots", "br-lan.100")), Throws.Nothing);
            Assert.That(NetemCommandLine.OwnerFor("x", "abcdefghijklmno"), Has.Length.LessThanOrEqualTo(ShapingPlanValidator.MaxOwnerLength));
        }
    }

    [Test]
    public void Plan_NoDestination_IsOneRuleForTheWholeDevice()
    {
        var plan = NetemCommandLine.Parse(["set", "eth0", "--delay", "300ms", "--netns", "edge"]).Plan();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Owner, Is.EqualTo(NetemCommandLine.OwnerFor("edge", "eth0")));
            Assert.That(plan.Rules, Has.Count.EqualTo(1));
            Assert.That(plan.Rules[0].Match.IsAll, Is.True);
            Assert.That(plan.Rules[0].Direction, Is.EqualTo(ShapingDirection.Egress));
            Assert.That(plan.Rules[0].NetworkNamespace, Is.EqualTo("edge"));
            Assert.That(() => ShapingPlanValidator.Validate(plan), Throws.Nothing);
        }
    }

    [Test]
    public void Plan_TwoDestinations_IsOneRuleEachWithTheSameImpairment()
    {
        var plan = NetemCommandLine.Parse(["set", "eth0", "--delay", "300ms", "--loss", "2", "--to", "198.18.1.0/24", "--to", "fd00::/64"]).Plan();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Rules.Select(r => r.Match.Destination), Is.EqualTo(new IPNetwork?[] { IPNetwork.Parse("198.18.1.0/24"), IPNetwork.Parse("fd00::/64") }));
            Assert.That(plan.Rules.Select(r => r.Name), Is.EqualTo(new[] { "to1", "to2" }));
            Assert.That(plan.Rules.Select(r => r.Impairment.LossPercent), Is.All.EqualTo(2));
            Assert.That(() => ShapingPlanValidator.Validate(plan), Throws.Nothing);
        }
    }
}
