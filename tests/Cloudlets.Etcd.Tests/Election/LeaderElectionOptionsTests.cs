using Cloudlets.Core.Election;
using Cloudlets.Core.Options;

namespace Cloudlets.Etcd.Tests.Election;

public sealed class LeaderElectionOptionsTests
{
    [Test]
    public void Validate_Defaults_OnlyTheElectionIsMissing()
    {
        var errors = new OptionsErrors();
        new LeaderElectionOptions().Validate(errors);
        Assert.That(errors.Errors.Select(e => e.Path), Is.EqualTo(new[] { "Election" }));
    }

    [Category("BadInput")]
    [Test]
    public void Validate_EveryBadValue_ListsEveryError()
    {
        var options = new LeaderElectionOptions
        {
            Election = "EU West",
            CandidateId = "has space",
            LeaseTtl = TimeSpan.FromMilliseconds(2500),
            KeepAliveInterval = TimeSpan.FromSeconds(5),
            RetryInitialBackoff = TimeSpan.FromSeconds(2),
            RetryMaxBackoff = TimeSpan.FromSeconds(1),
        };
        var e = Assert.Throws<OptionsValidationException>(() => OptionsErrors.ValidateAndThrow(options))!;
        Assert.That(e.Errors.Select(x => x.Path), Is.EquivalentTo(new[] { "Election", "CandidateId", "LeaseTtl", "KeepAliveInterval", "RetryMaxBackoff" }));
    }

    [TestCase("eu-west", true)]
    [TestCase("r1", true)]
    [TestCase("-eu", false)]
    [TestCase("eu-", false)]
    [TestCase("eu_west", false)]
    [TestCase("", false)]
    public void IsValidElection_Name_Expected(string name, bool valid) =>
        Assert.That(LeaderElectionOptions.IsValidElection(name), Is.EqualTo(valid));

    [Test]
    public void EffectiveKeepAliveInterval_NotSet_IsAThirdOfTheTtl() =>
        Assert.That(new LeaderElectionOptions { LeaseTtl = TimeSpan.FromSeconds(9) }.EffectiveKeepAliveInterval, Is.EqualTo(TimeSpan.FromSeconds(3)));
}
