using System.Net;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tests.Core;

/// <summary>
/// The bad-input suite for shaping plans: every case goes through both backends' <c>ApplyAsync</c> and
/// must end in a typed error (<see cref="ShapingValidationException"/>, or
/// <see cref="UnsupportedImpairmentException"/> for what a backend cannot do) with no command run.
/// </summary>
[Category("BadInput")]
public sealed class ShapingBadInputTests
{
    private static ShapingRule Rule(string iface = "eth0", Impairment? im = null, TrafficMatch? match = null) =>
        ShapingRule.Egress(iface, im ?? Impairment.FromDelay(20), match);

    private static ShapingPlan One(ShapingRule rule, string owner = "demo") => new(owner, [rule]);

    private static Impairment Delay(Func<Impairment, Impairment> change) => change(Impairment.FromDelay(20));

    /// <summary>Plans every backend must refuse.</summary>
    public static IEnumerable<TestCaseData> BadPlans()
    {
        TestCaseData Case(string name, Func<ShapingPlan> plan) => new TestCaseData(plan).SetArgDisplayNames(name);

        yield return Case("owner empty", () => One(Rule(), ""));
        yield return Case("owner with a space", () => One(Rule(), "has space"));
        yield return Case("owner of 19 characters", () => One(Rule(), "nineteen-characters"));
        yield return Case("owner with ';'", () => One(Rule(), "a;b"));
        yield return Case("owner with '_'", () => One(Rule(), "a_b"));
        yield return Case("owner with '/'", () => One(Rule(), "../x"));
        yield return Case("interface empty", () => One(Rule("")));
        yield return Case("interface with a space", () => One(Rule("eth 0")));
        yield return Case("interface 'eth0;reboot'", () => One(Rule("eth0;reboot")));
        yield return Case("interface '$(reboot)'", () => One(Rule("$(reboot)")));
        yield return Case("interface with '/'", () => One(Rule("a/b")));
        yield return Case("interface of 16 characters", () => One(Rule("sixteen-chars-xx")));
        yield return Case("interface '.'", () => One(Rule(".")));
        yield return Case("interface '..'", () => One(Rule("..")));
        yield return Case("interface with a newline", () => One(Rule("eth0\n")));
        yield return Case("negative delay", () => One(Rule(im: new Impairment { Delay = TimeSpan.FromMilliseconds(-1) })));
        yield return Case("delay above 60 s", () => One(Rule(im: new Impairment { Delay = TimeSpan.FromSeconds(61) })));
        yield return Case("jitter above the delay", () => One(Rule(im: Delay(i => i with { Jitter = TimeSpan.FromMilliseconds(21) }))));
        yield return Case("negative jitter", () => One(Rule(im: Delay(i => i with { Jitter = TimeSpan.FromMilliseconds(-1) }))));
        yield return Case("loss 100.5 %", () => One(Rule(im: Delay(i => i with { LossPercent = 100.5 }))));
        yield return Case("loss NaN", () => One(Rule(im: Delay(i => i with { LossPercent = double.NaN }))));
        yield return Case("loss negative", () => One(Rule(im: Delay(i => i with { LossPercent = -0.1 }))));
        yield return Case("loss infinite", () => One(Rule(im: Delay(i => i with { LossPercent = double.PositiveInfinity }))));
        yield return Case("delay correlation 101 %", () => One(Rule(im: Delay(i => i with { DelayCorrelationPercent = 101 }))));
        yield return Case("duplicate negative", () => One(Rule(im: Delay(i => i with { DuplicatePercent = -1 }))));
        yield return Case("corrupt above 100 %", () => One(Rule(im: Delay(i => i with { CorruptPercent = 200 }))));
        yield return Case("reorder without delay", () => One(Rule(im: new Impairment { ReorderPercent = 5 })));
        yield return Case("rate 0 bit/s", () => One(Rule(im: Delay(i => i with { RateBitsPerSecond = 0 }))));
        yield return Case("rate above 100 Gbit/s", () => One(Rule(im: Delay(i => i with { RateBitsPerSecond = 100_000_000_001 }))));
        yield return Case("limit 0", () => One(Rule(im: Delay(i => i with { Limit = 0 }))));
        yield return Case("limit above 1,000,000", () => One(Rule(im: Delay(i => i with { Limit = 1_000_001 }))));
        yield return Case("unknown distribution", () => One(Rule(im: Delay(i => i with { Jitter = TimeSpan.FromMilliseconds(1), Distribution = (DelayDistribution)9 }))));
        yield return Case("port 0", () => One(Rule(match: new TrafficMatch { Protocol = TrafficProtocol.Tcp, DestinationPort = 0 })));
        yield return Case("port 65536", () => One(Rule(match: new TrafficMatch { Protocol = TrafficProtocol.Udp, SourcePort = 65536 })));
        yield return Case("port without a protocol", () => One(Rule(match: new TrafficMatch { DestinationPort = 53 })));
        yield return Case("port with ICMP", () => One(Rule(match: new TrafficMatch { Protocol = TrafficProtocol.Icmp, DestinationPort = 53 })));
        yield return Case("unknown protocol", () => One(Rule(match: new TrafficMatch { Protocol = (TrafficProtocol)42 })));
        yield return Case("source and destination of different families", () => One(Rule(match: new TrafficMatch { Destination = IPNetwork.Parse("198.19.200.0/24"), Source = IPNetwork.Parse("fd00::/64") })));
        yield return Case("unknown direction", () => One(new ShapingRule("eth0", (ShapingDirection)7, TrafficMatch.All, Impairment.FromDelay(20))));
        yield return Case("namespace '../etc'", () => One(Rule() with { NetworkNamespace = "../etc" }));
        yield return Case("namespace empty", () => One(Rule() with { NetworkNamespace = "" }));
        yield return Case("namespace with a space", () => One(Rule() with { NetworkNamespace = "a b" }));
        yield return Case("rule name with a space", () => One(Rule() with { Name = "a b" }));
        yield return Case("rule name of 33 characters", () => One(Rule() with { Name = new string('r', 33) }));
        yield return Case("two rules with one name", () => new ShapingPlan("demo", [Rule() with { Name = "a" }, Rule("eth1") with { Name = "a" }]));
        yield return Case("the same traffic twice", () => new ShapingPlan("demo", [Rule() with { Name = "a" }, Rule() with { Name = "b" }]));
        yield return Case("65 rules", () => new ShapingPlan("demo", [.. Enumerable.Range(0, 65).Select(i => Rule("eth" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)))]));
        yield return Case("a null rule", () => new ShapingPlan("demo", [null!]));
        yield return Case("a null rule list", () => new ShapingPlan("demo", null!));
        yield return Case("a null match", () => One(new ShapingRule("eth0", ShapingDirection.Egress, null!, Impairment.FromDelay(20))));
        yield return Case("a null impairment", () => One(new ShapingRule("eth0", ShapingDirection.Egress, TrafficMatch.All, null!)));
    }

    private static async Task AssertRefusedAsync(INetemShaper shaper, RecordingRunner runner, ShapingPlan plan)
    {
        await using (shaper)
        {
            Assert.ThrowsAsync(Is.InstanceOf<ShapingValidationException>().Or.InstanceOf<UnsupportedImpairmentException>(), () => shaper.ApplyAsync(plan));
            Assert.That(runner.Commands, Is.Empty, "nothing ran, so nothing changed");
        }
    }

    private string lockDirectory = null!;

    [SetUp]
    public void SetUp() => lockDirectory = Directory.CreateTempSubdirectory("netem-locks-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(lockDirectory, recursive: true);

    [TestCaseSource(nameof(BadPlans))]
    public async Task TcNetemShaperApplyAsync_BadPlan_TypedErrorAndNothingRuns(Func<ShapingPlan> plan)
    {
        var runner = new RecordingRunner();
        await AssertRefusedAsync(new TcNetemShaper(runner, options: new TcNetemShaperOptions { OwnerLockDirectory = lockDirectory }), runner, plan());
    }

    [TestCaseSource(nameof(BadPlans))]
    public async Task NfQueueShaperApplyAsync_BadPlan_TypedErrorAndNothingRuns(Func<ShapingPlan> plan)
    {
        var runner = new RecordingRunner();
        await AssertRefusedAsync(new NfQueueShaper(new NfQueueShaperOptions { OwnerLockDirectory = lockDirectory }, runner), runner, plan());
    }

    [Test]
    public async Task TcNetemShaperApplyAsync_Ipv6Match_UnsupportedAndNothingRuns()
    {
        var runner = new RecordingRunner();
        await AssertRefusedAsync(new TcNetemShaper(runner, options: new TcNetemShaperOptions { OwnerLockDirectory = lockDirectory }), runner, One(Rule(match: TrafficMatch.To(IPAddress.Parse("fd00::1")))));
    }

    [TestCase(ShapingFeatures.Duplicate)]
    [TestCase(ShapingFeatures.Corrupt)]
    [TestCase(ShapingFeatures.Reorder)]
    [TestCase(ShapingFeatures.Rate)]
    public async Task NfQueueShaperApplyAsync_FeatureItLacks_UnsupportedAndNothingRuns(ShapingFeatures feature)
    {
        var im = feature switch
        {
            ShapingFeatures.Duplicate => Delay(i => i with { DuplicatePercent = 1 }),
            ShapingFeatures.Corrupt => Delay(i => i with { CorruptPercent = 1 }),
            ShapingFeatures.Reorder => Delay(i => i with { ReorderPercent = 1 }),
            _ => Delay(i => i with { RateBitsPerSecond = 1_000_000 }),
        };
        var runner = new RecordingRunner();
        await AssertRefusedAsync(new NfQueueShaper(new NfQueueShaperOptions { OwnerLockDirectory = lockDirectory }, runner), runner, One(Rule(im: im)));
    }

    [Test]
    public void NfQueueShaperOptions_EveryOptionWrong_ListsEveryError()
    {
        var ex = Assert.Throws<Cloudlets.Core.Options.OptionsValidationException>(() => _ = new NfQueueShaper(new NfQueueShaperOptions
        {
            ExpectedPacketsPerSecond = 0,
            ReceiveBufferBytes = 1,
            RealtimePriority = 100,
            TimeProvider = null!,
            OwnerLockDirectory = "relative",
        }, new RecordingRunner()));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "ExpectedPacketsPerSecond", "ReceiveBufferBytes", "RealtimePriority", "TimeProvider", "OwnerLockDirectory" }));
    }
}
