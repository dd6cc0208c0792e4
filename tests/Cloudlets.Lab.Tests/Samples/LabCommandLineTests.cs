using Cloudlets.Lab;
using Cloudlets.Samples.Lab;

namespace Cloudlets.Lab.Tests.Samples;

/// <summary>The <c>cloudlets-lab</c> sample's argument parsing, <c>shape</c> and <c>clear</c> in particular.</summary>
public sealed class LabCommandLineTests
{
    [Test]
    public void Parse_ShapeWithPairs_KeepsHostsAndDelaysInOrder()
    {
        var parsed = LabCommandLine.Parse(["shape", "cloudlet-1", "300", "cloudlet-2", "20ms", "cloudlet-3", "0.02s", "--name", "adv1"]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(parsed.Verb, Is.EqualTo("shape"));
            Assert.That(parsed.Name, Is.EqualTo("adv1"));
            Assert.That(parsed.Delays, Is.EqualTo(new[]
            {
                ("cloudlet-1", TimeSpan.FromMilliseconds(300)),
                ("cloudlet-2", TimeSpan.FromMilliseconds(20)),
                ("cloudlet-3", TimeSpan.FromMilliseconds(20)),
            }));
            Assert.That(parsed.HoldFor, Is.Null);
        }
    }

    [Test]
    public void Parse_CapWithRateOrOff_KeepsTheRateOrNull()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabCommandLine.Parse(["cap", "8", "--name", "adv1"]).LinkCapMiBps, Is.EqualTo(8));
            Assert.That(LabCommandLine.Parse(["cap", "off", "--name", "adv1"]).LinkCapMiBps, Is.Null);
        }
    }

    [Test]
    public void Parse_UpWithNetemGuest_SetsItAndTheDefaultIsOff()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabCommandLine.Parse(["up", "--hosts", "1", "--netem-guest", "--name", "ng1"]).NetemGuest, Is.True);
            Assert.That(LabCommandLine.Parse(["up", "--name", "ng1"]).NetemGuest, Is.False);
        }
    }

    [Test]
    public void Parse_UpWithDirtyRate_KeepsItAndTheDefaultIsZero()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabCommandLine.Parse(["up", "--guest-on", "cloudlet-1", "--dirty-rate", "24", "--name", "adv1"]).DirtyRate, Is.EqualTo(24));
            Assert.That(LabCommandLine.Parse(["up", "--name", "adv1"]).DirtyRate, Is.Zero);
        }
    }

    [Test]
    public void Parse_ShapeWithFor_HoldsForThatLong()
    {
        var parsed = LabCommandLine.Parse(["shape", "--for", "12.5", "cloudlet-2", "20"]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(parsed.HoldFor, Is.EqualTo(TimeSpan.FromSeconds(12.5)));
            Assert.That(parsed.Name, Is.EqualTo("cloudlets"));
            Assert.That(parsed.Delays, Has.Count.EqualTo(1));
        }
    }

    [Test]
    public void Parse_ShapeWithZeroDelay_IsAccepted()
    {
        var parsed = LabCommandLine.Parse(["shape", "cloudlet-1", "0"]);
        Assert.That(parsed.Delays.Single().Delay, Is.EqualTo(TimeSpan.Zero));
    }

    [TestCase("-5")]
    [TestCase("-0.1ms")]
    [TestCase("NaN")]
    [TestCase("Infinity")]
    [TestCase("1e3")]
    [TestCase("fast")]
    [TestCase("")]
    [TestCase("ms")]
    [TestCase("61s")]
    [TestCase("300;ls")]
    public void Parse_ShapeWithBadDelay_ThrowsFormatException(string delay)
    {
        Assert.That(() => LabCommandLine.Parse(["shape", "cloudlet-1", delay]), Throws.TypeOf<FormatException>());
    }

    [TestCase("cloudlet-0")]
    [TestCase("cloudlet-x")]
    [TestCase("host-1")]
    [TestCase("cloudlet-1;reboot")]
    [TestCase("Cloudlet-1")]
    public void Parse_ShapeWithUnknownHostName_ThrowsFormatException(string host)
    {
        Assert.That(() => LabCommandLine.Parse(["shape", host, "20"]), Throws.TypeOf<FormatException>().With.Message.Contains(host));
    }

    [Test]
    public void Parse_ShapeWithHostTwice_ThrowsFormatException()
    {
        Assert.That(() => LabCommandLine.Parse(["shape", "cloudlet-1", "20", "cloudlet-1", "30"]),
            Throws.TypeOf<FormatException>().With.Message.Contains("twice"));
    }

    [Test]
    public void Parse_ShapeWithoutPairs_ThrowsFormatException()
    {
        Assert.That(() => LabCommandLine.Parse(["shape"]), Throws.TypeOf<FormatException>());
    }

    [Test]
    public void Parse_ShapeWithUnpairedHost_ThrowsFormatException()
    {
        Assert.That(() => LabCommandLine.Parse(["shape", "cloudlet-1", "300", "cloudlet-2"]),
            Throws.TypeOf<FormatException>().With.Message.Contains("cloudlet-2"));
    }

    [TestCase("0")]
    [TestCase("-1")]
    [TestCase("NaN")]
    [TestCase("86401")]
    [TestCase("soon")]
    public void Parse_ShapeWithBadFor_ThrowsFormatException(string seconds)
    {
        Assert.That(() => LabCommandLine.Parse(["shape", "cloudlet-1", "20", "--for", seconds]), Throws.TypeOf<FormatException>());
    }

    [TestCase("bad name")]
    [TestCase("a;b")]
    [TestCase("../x")]
    public void Parse_ShapeWithBadLabName_ThrowsLabConfigurationException(string name)
    {
        Assert.That(() => LabCommandLine.Parse(["shape", "cloudlet-1", "20", "--name", name]), Throws.TypeOf<LabConfigurationException>());
    }

    [Test]
    public void Parse_Clear_TakesOnlyName()
    {
        var parsed = LabCommandLine.Parse(["clear", "--name", "lab2"]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(parsed.Verb, Is.EqualTo("clear"));
            Assert.That(parsed.Name, Is.EqualTo("lab2"));
            Assert.That(parsed.Delays, Is.Empty);
        }
    }

    [TestCase("cloudlet-1")]
    [TestCase("--for")]
    [TestCase("--hosts")]
    public void Parse_ClearWithExtraArgument_ThrowsFormatException(string extra)
    {
        Assert.That(() => LabCommandLine.Parse(["clear", extra, "5"]), Throws.TypeOf<FormatException>());
    }

    [TestCase(new string[0], LabTransport.Tcp)]
    [TestCase(new[] { "--transport", "tcp" }, LabTransport.Tcp)]
    [TestCase(new[] { "--transport", "tls" }, LabTransport.Tls)]
    [TestCase(new[] { "--transport", "ssh" }, LabTransport.Ssh)]
    [TestCase(new[] { "--transport", "tls-sasl" }, LabTransport.TlsSasl)]
    public void Parse_UpTransport_IsTheLabTransport(string[] transport, LabTransport expected) =>
        Assert.That(LabCommandLine.Parse(["up", "--hosts", "2", .. transport]).Transport, Is.EqualTo(expected));

    [Test]
    public void Parse_ForOnOtherVerb_ThrowsFormatException()
    {
        Assert.That(() => LabCommandLine.Parse(["up", "--for", "5"]), Throws.TypeOf<FormatException>());
    }

    [TestCase("300", 300.0)]
    [TestCase("20.5", 20.5)]
    [TestCase("300ms", 300.0)]
    [TestCase("300MS", 300.0)]
    [TestCase("0.3s", 300.0)]
    [TestCase("60s", 60_000.0)]
    public void ParseDelay_ValidText_GivesMilliseconds(string text, double ms)
    {
        Assert.That(LabCommandLine.ParseDelay(text).TotalMilliseconds, Is.EqualTo(ms).Within(1e-6));
    }

    [Test]
    public void Parse_UpWithAgents_RunsTheAgentBuiltNextToTheTool()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabCommandLine.Parse(["up", "--agents"]).AgentAssembly, Is.EqualTo(Path.Combine(AppContext.BaseDirectory, "cloudlets-agent.dll")));
            Assert.That(LabCommandLine.Parse(["up", "--agents", "--agent", "/opt/a/cloudlets-agent.dll"]).AgentAssembly, Is.EqualTo("/opt/a/cloudlets-agent.dll"));
            Assert.That(LabCommandLine.Parse(["up"]).AgentAssembly, Is.Null, "no broker and no agents unless asked");
        }
    }

    [Test]
    public void Parse_UpWithRelativeAgent_ThrowsFormatException() =>
        Assert.That(() => LabCommandLine.Parse(["up", "--agents", "--agent", "cloudlets-agent.dll"]), Throws.TypeOf<FormatException>().With.Message.Contains("absolute path"));

    [Test]
    public void Parse_UpWithAgentButNoAgents_ThrowsFormatException() =>
        Assert.That(() => LabCommandLine.Parse(["up", "--agent", "/opt/a/cloudlets-agent.dll"]), Throws.TypeOf<FormatException>().With.Message.Contains("without --agents"));
}
