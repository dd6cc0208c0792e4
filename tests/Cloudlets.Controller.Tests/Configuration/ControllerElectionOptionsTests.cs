using Cloudlets.Controller.Configuration;
using Cloudlets.Core.Options;
using Microsoft.Extensions.Configuration;

namespace Cloudlets.Controller.Tests.Configuration;

/// <summary>Controller:Election and the --election shorthand: parsed and checked before anything connects.</summary>
public sealed class ControllerElectionOptionsTests
{
    private static Dictionary<string, string?> Base() => new()
    {
        ["Controller:VantagePoints:0:Name"] = "edge",
        ["Controller:Hosts:0:Name"] = "c1",
        ["Controller:Hosts:0:Uri"] = "qemu+tcp://192.0.2.11/system",
        ["Controller:Hosts:0:Probe:Address"] = "192.0.2.11",
        ["Controller:Vms:0:Name"] = "web",
        ["Controller:Vms:0:Users:0:VantagePoint"] = "edge",
    };

    private static (ControllerOptions? Options, OptionsErrors Errors) Load(Dictionary<string, string?> values)
    {
        var errors = new OptionsErrors();
        var options = ControllerConfiguration.TryLoad(new ConfigurationBuilder().AddInMemoryCollection(values).Build(), errors);
        return (options, errors);
    }

    private static OptionsErrors Collect(IValidatableOptions options)
    {
        var errors = new OptionsErrors();
        options.Validate(errors);
        return errors;
    }

    [Test]
    public void ParseShorthand_TwoEndpointsAndRegion_SetsEndpointsAndRegion()
    {
        var keys = ControllerElectionOptions.ParseShorthand("etcd://127.0.0.1:2379,[::1]:22379/eu-west", out var error);
        Assert.That(error, Is.Null);
        Assert.That(keys, Is.EqualTo(new KeyValuePair<string, string?>[]
        {
            new("Controller:Election:Endpoints:0", "http://127.0.0.1:2379"),
            new("Controller:Election:Endpoints:1", "http://[::1]:22379"),
            new("Controller:Election:Region", "eu-west"),
        }));
    }

    [Test]
    public void ParseShorthand_Etcds_UsesHttpsAndKeepsTheRegionUnset()
    {
        var keys = ControllerElectionOptions.ParseShorthand("etcds://etcd-1.example:2379", out var error);
        Assert.That(error, Is.Null);
        Assert.That(keys, Is.EqualTo(new KeyValuePair<string, string?>[] { new("Controller:Election:Endpoints:0", "https://etcd-1.example:2379") }));
    }

    [TestCase("http://127.0.0.1:2379", "must start with etcd://")]
    [TestCase("etcd://root:secret@127.0.0.1:2379", "holds a user or password")]
    [TestCase("etcd://127.0.0.1", "'127.0.0.1' is not HOST:PORT")]
    [TestCase("etcd://127.0.0.1:2379,", "'' is not HOST:PORT")]
    [TestCase("etcd://127.0.0.1:2379/EU_West", "the region 'EU_West'")]
    [TestCase("etcd://127.0.0.1:notaport", "is not HOST:PORT")]
    [Category("BadInput")]
    public void ParseShorthand_Bad_RefusedWithReason(string value, string reason)
    {
        var keys = ControllerElectionOptions.ParseShorthand(value, out var error);
        Assert.That(keys, Is.Null);
        Assert.That(error, Does.Contain(reason));
    }

    [Test]
    public void TryLoad_ValidElection_BindsAndBuildsEtcdOptions()
    {
        var values = Base();
        values["Controller:Election:Endpoints:0"] = "http://127.0.0.1:2379";
        values["Controller:Election:Region"] = "eu-west";
        values["Controller:Election:CandidateId"] = "ctl-a";
        values["Controller:Election:LeaseTtl"] = "00:00:05";
        var (options, errors) = Load(values);
        Assert.That(errors.HasErrors, Is.False, string.Join("; ", errors.Errors));
        var etcd = options!.Election!.ToEtcdOptions();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(etcd.Endpoints, Is.EqualTo(new[] { "http://127.0.0.1:2379" }));
            Assert.That(etcd.Election.Election, Is.EqualTo("eu-west"));
            Assert.That(etcd.Election.CandidateId, Is.EqualTo("ctl-a"));
            Assert.That(etcd.Election.LeaseTtl, Is.EqualTo(TimeSpan.FromSeconds(5)));
            Assert.That(etcd.Key, Is.EqualTo("/cloudlets/v1/elections/eu-west"));
            Assert.That(Collect(etcd).HasErrors, Is.False);
        }
    }

    [Test]
    public void ToEtcdOptions_PasswordFile_ReadsFirstLineAsPassword()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "s3cret\r\nignored\n");
            var options = new ControllerElectionOptions { Endpoints = ["http://127.0.0.1:2379"], Username = "root", PasswordFile = file };
            Assert.That(Collect(options).HasErrors, Is.False);
            var etcd = options.ToEtcdOptions();
            Assert.That((etcd.Username, etcd.Password), Is.EqualTo(("root", "s3cret")));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    [Category("BadInput")]
    public void TryLoad_EveryElectionErrorAtOnce_ListsEachWithItsPath()
    {
        var values = Base();
        values["Controller:Election:Endpoints:0"] = "http://root:secret@127.0.0.1:2379";
        values["Controller:Election:Endpoints:1"] = "grpc://127.0.0.1:2379";
        values["Controller:Election:Endpoints:2"] = "http://127.0.0.1";
        values["Controller:Election:Region"] = "EU West";
        values["Controller:Election:LeaseTtl"] = "00:00:02.500";
        values["Controller:Election:RequestTimeout"] = "00:00:05";
        values["Controller:Election:Username"] = "root";
        values["Controller:Election:ClientCertificateFile"] = "/nonexistent/client.pem";
        var (_, errors) = Load(values);
        var text = string.Join("\n", errors.Errors);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(text, Does.Contain("Election.Endpoints[0]").And.Contain("holds a user or password"));
            Assert.That(text, Does.Contain("Election.Endpoints[1]").And.Contain("http://HOST:PORT or https://HOST:PORT"));
            Assert.That(text, Does.Contain("Election.Endpoints[2]").And.Contain("with the port"));
            Assert.That(text, Does.Contain("Election.Region"));
            Assert.That(text, Does.Contain("Election.LeaseTtl").And.Contain("whole seconds"));
            Assert.That(text, Does.Contain("Election.RequestTimeout").And.Contain("less than LeaseTtl"));
            Assert.That(text, Does.Contain("Election.Username").And.Contain("PasswordFile must be set together"));
            Assert.That(text, Does.Contain("Election.ClientCertificateFile").And.Contain("does not exist"));
            Assert.That(errors.Errors, Has.Count.GreaterThanOrEqualTo(9));
        }
    }

    [Test]
    [Category("BadInput")]
    public void TryLoad_UnknownElectionSetting_NamedWithItsPath()
    {
        var values = Base();
        values["Controller:Election:Endpoints:0"] = "http://127.0.0.1:2379";
        values["Controller:Election:Password"] = "in-the-config";
        var (_, errors) = Load(values);
        Assert.That(string.Join("\n", errors.Errors), Does.Contain("Election.Password").And.Contain("is not a setting of Election"));
    }
}
