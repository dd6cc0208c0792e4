using Cloudlets.Core.Election;
using Cloudlets.Core.Options;

namespace Cloudlets.Etcd.Tests;

public sealed class EtcdLeaderElectionOptionsTests
{
    [Test]
    public void Key_Default_NamesTheRegion() =>
        Assert.That(new EtcdLeaderElectionOptions { Election = new LeaderElectionOptions { Election = "eu-west" } }.Key, Is.EqualTo("/cloudlets/v1/elections/eu-west"));

    [Category("BadInput")]
    [Test]
    public void Create_EveryBadValue_ThrowsListingEveryErrorBeforeConnecting()
    {
        var options = new EtcdLeaderElectionOptions
        {
            Endpoints = ["http://127.0.0.1:2379", "ftp://x:1", "127.0.0.1:2379"],
            KeyPrefix = "cloudlets",
            Election = new LeaderElectionOptions { Election = "", LeaseTtl = TimeSpan.FromSeconds(2) },
            Username = "root",
            RequestTimeout = TimeSpan.FromSeconds(3),
            Tls = new EtcdTlsOptions { CaCertificateFile = "/nonexistent/ca.pem", ClientCertificateFile = "/nonexistent/c.pem" },
        };
        var e = Assert.Throws<OptionsValidationException>(() => EtcdLeaderElection.Create(options))!;
        Assert.That(e.Errors.Select(x => x.Path), Is.EquivalentTo(new[]
        {
            "Endpoints[1]", "Endpoints[2]", "KeyPrefix", "Election.Election", "Username", "RequestTimeout",
            "Tls.CaCertificateFile", "Tls.ClientCertificateFile", "Tls.ClientCertificateFile", "Tls",
        }));
    }

    [Category("BadInput")]
    [Test]
    public void Create_NoEndpoints_Throws()
    {
        var options = new EtcdLeaderElectionOptions { Endpoints = [], Election = new LeaderElectionOptions { Election = "r1" } };
        var e = Assert.Throws<OptionsValidationException>(() => EtcdLeaderElection.Create(options))!;
        Assert.That(e.Errors.Single().Path, Is.EqualTo("Endpoints"));
    }

    [Test]
    public async Task Create_ValidOptions_CopiesThemAndStartsAsFollower()
    {
        var options = new EtcdLeaderElectionOptions { Election = new LeaderElectionOptions { Election = "r1", CandidateId = "c1" } };
        await using var election = EtcdLeaderElection.Create(options);
        options.Election.Election = "changed";
        Assert.Multiple(() =>
        {
            Assert.That(election.Key, Is.EqualTo("/cloudlets/v1/elections/r1"));
            Assert.That(election.Current.Role, Is.EqualTo(LeadershipRole.Follower));
            Assert.That(election.CandidateId, Is.EqualTo("c1"));
        });
        Assert.That(await election.ConfirmLeadershipAsync(), Is.False);
    }
}
