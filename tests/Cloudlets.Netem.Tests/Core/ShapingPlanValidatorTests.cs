using System.Net;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tests.Core;

public sealed class ShapingPlanValidatorTests
{
    private static ShapingPlan Plan(ShapingRule rule, string owner = "demo") => new(owner, [rule]);

    private static ShapingRule Rule(string iface = "eth0", Impairment? im = null, TrafficMatch? match = null) =>
        ShapingRule.Egress(iface, im ?? Impairment.FromDelay(20), match);

    [Test]
    public void Validate_TypicalPlan_Passes() =>
        Assert.DoesNotThrow(() => ShapingPlanValidator.Validate(Plan(Rule(match: TrafficMatch.To(IPAddress.Parse("198.19.200.1"))))));

    [TestCase("")]
    [TestCase("eth 0")]
    [TestCase("eth0;reboot")]
    [TestCase("$(reboot)")]
    [TestCase("a/b")]
    [TestCase("'eth0'")]
    [TestCase("\"eth0\"")]
    [TestCase("eth0`id`")]
    [TestCase("sixteen-chars-xx")]
    [TestCase(".")]
    [TestCase("..")]
    [TestCase("eth0\n")]
    public void Validate_BadInterfaceName_ThrowsNamingTheField(string name)
    {
        var ex = Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(name))));
        Assert.That(ex!.Field, Is.EqualTo("Rules[0].Interface"));
    }

    [TestCase("eth0")]
    [TestCase("br-lan.100")]
    [TestCase("fifteen-chars-x")]
    public void Validate_GoodInterfaceName_Passes(string name) =>
        Assert.DoesNotThrow(() => ShapingPlanValidator.Validate(Plan(Rule(name))));

    [Test]
    public void Validate_NegativeDelay_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(im: new Impairment { Delay = TimeSpan.FromMilliseconds(-1) }))));

    [TestCase(double.NaN)]
    [TestCase(double.PositiveInfinity)]
    [TestCase(-5.0)]
    [TestCase(60_001.0)]
    public void FromDelay_NotAValidNumber_Throws(double ms) =>
        Assert.Throws<ShapingValidationException>(() => Impairment.FromDelay(ms));

    [TestCase(100.5)]
    [TestCase(-0.1)]
    [TestCase(double.NaN)]
    public void Validate_LossOutOfRange_Throws(double loss) =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(im: new Impairment { Delay = TimeSpan.FromMilliseconds(10), LossPercent = loss }))));

    [Test]
    public void Validate_JitterAboveDelay_Throws()
    {
        var ex = Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(im: new Impairment { Delay = TimeSpan.FromMilliseconds(10), Jitter = TimeSpan.FromMilliseconds(11) }))));
        Assert.That(ex!.Field, Is.EqualTo("Rules[0].Impairment.Jitter"));
    }

    [Test]
    public void Validate_ReorderWithoutDelay_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(im: new Impairment { ReorderPercent = 5 }))));

    [Test]
    public void Validate_PortWithoutProtocol_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(match: new TrafficMatch { DestinationPort = 53 }))));

    [Test]
    public void Validate_MixedFamilies_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(match: new TrafficMatch
        {
            Destination = IPNetwork.Parse("198.19.200.0/24"),
            Source = IPNetwork.Parse("fd00::/64"),
        }))));

    [TestCase("")]
    [TestCase("has space")]
    [TestCase("nineteen-characters")]
    [TestCase("a;b")]
    public void Validate_BadOwner_Throws(string owner) =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(), owner)));

    [Test]
    public void Validate_BadNamespace_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule() with { NetworkNamespace = "../etc" })));

    [Test]
    public void Validate_SameTrafficTwice_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(new ShapingPlan("demo", [Rule() with { Name = "a" }, Rule() with { Name = "b" }])));

    [Test]
    public void Validate_DuplicateNames_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(new ShapingPlan("demo",
            [Rule() with { Name = "a" }, Rule("eth1") with { Name = "a" }])));

    [Test]
    public void Validate_LimitZero_Throws() =>
        Assert.Throws<ShapingValidationException>(() => ShapingPlanValidator.Validate(Plan(Rule(im: new Impairment { Delay = TimeSpan.FromMilliseconds(1), Limit = 0 }))));

    [Test]
    public void RequiredFeatures_DelayJitterNormalLoss_ListsEach()
    {
        var im = new Impairment { Delay = TimeSpan.FromMilliseconds(10), Jitter = TimeSpan.FromMilliseconds(1), Distribution = DelayDistribution.Normal, LossPercent = 1 };
        Assert.That(im.RequiredFeatures, Is.EqualTo(ShapingFeatures.Delay | ShapingFeatures.Jitter | ShapingFeatures.NormalDistribution | ShapingFeatures.Loss));
    }
}
