using Cloudlets.Core.Options;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Netem.Tests.Tc;

public sealed class TcNetemShaperOptionsTests
{
    private static readonly TcNetemShaperOptions Guest = new() { TcPath = "/usr/sbin/tc", IpPath = "/usr/sbin/ip" };

    [Test]
    public void Resolve_TcAndIp_BecomeTheConfiguredPrograms()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Guest.Resolve(CommandLine.Of("tc", "-j", "qdisc", "show")), Is.EqualTo(CommandLine.Of("/usr/sbin/tc", "-j", "qdisc", "show")));
            Assert.That(Guest.Resolve(CommandLine.Of("ip", "-j", "link", "show")), Is.EqualTo(CommandLine.Of("/usr/sbin/ip", "-j", "link", "show")));
            Assert.That(Guest.Resolve(CommandLine.Of("mkdir", "-p", "/run/x")), Is.EqualTo(CommandLine.Of("mkdir", "-p", "/run/x")), "other programs stay");
        }
    }

    [Test]
    public void Resolve_InNamespace_ReplacesTheOuterIpAndTheProgramItRuns()
    {
        var command = CommandLine.Of("tc", "qdisc", "show").InNamespace("ns1");
        Assert.That(Guest.Resolve(command), Is.EqualTo(CommandLine.Of("/usr/sbin/ip", "netns", "exec", "ns1", "/usr/sbin/tc", "qdisc", "show")));
    }

    [Test]
    public void Resolve_Defaults_ChangeNothing() =>
        Assert.That(new TcNetemShaperOptions().Resolve(CommandLine.Of("tc", "qdisc", "show").InNamespace("ns1")), Is.EqualTo(CommandLine.Of("ip", "netns", "exec", "ns1", "tc", "qdisc", "show")));

    [Category("BadInput")]
    [TestCase("")]
    [TestCase("usr/sbin/tc")]
    [TestCase("/usr/../sbin/tc")]
    [TestCase("/usr/sbin/")]
    [TestCase("tc -V")]
    public void Validate_BadTcPath_IsAnError(string path)
    {
        var errors = new OptionsErrors();
        new TcNetemShaperOptions { TcPath = path }.Validate(errors);
        Assert.That(errors.Errors.Select(e => e.Path), Does.Contain(nameof(TcNetemShaperOptions.TcPath)));
    }

    [Test]
    public async Task FindIproute2Async_BusyboxFirstOnPath_PicksTheFirstProgramThatSaysIproute2()
    {
        // As on the lab's netem-host guest: "tc" and "ip" are busybox applets, iproute2's live in /usr/sbin.
        var runner = new RecordingRunner(c => c.Program is "/usr/sbin/tc" or "/usr/sbin/ip"
            ? RecordingRunner.Ok(c, c.Program[^2..] + " utility, iproute2-6.1.0, libbpf 1.1.2\n")
            : RecordingRunner.Fail(c, "BusyBox v1.35.0 multi-call binary.\n"));
        var options = new TcNetemShaperOptions();
        await options.FindIproute2Async(runner);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(options.TcPath, Is.EqualTo("/usr/sbin/tc"));
            Assert.That(options.IpPath, Is.EqualTo("/usr/sbin/ip"));
            Assert.That(runner.Commands[0], Is.EqualTo(CommandLine.Of("tc", "-V")), "the configured name is tried first");
        }
    }

    [Test]
    public async Task FindIproute2Async_NoneFound_KeepsTheValues()
    {
        var runner = new RecordingRunner(c => RecordingRunner.Fail(c, "not found"));
        var options = new TcNetemShaperOptions { TcPath = "/opt/tc" };
        await options.FindIproute2Async(runner);
        Assert.That((options.TcPath, options.IpPath), Is.EqualTo(("/opt/tc", "ip")));
    }
}
