using Cloudlets.Controller.Configuration;
using Cloudlets.Core.Options;
using Cloudlets.Core.Pipeline;
using Microsoft.Extensions.Configuration;

namespace Cloudlets.Controller.Tests.Configuration;

public sealed class ControllerConfigurationTests
{
    private static IConfiguration Json(string json) =>
        new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build();

    private const string Valid = """
        { "Controller": {
            "VantagePoints": [ { "Name": "edge" } ],
            "Hosts": [ { "Name": "c1", "Uri": "qemu+tcp://192.0.2.11/system", "Probe": { "Address": "192.0.2.11" } },
                       { "Name": "c2", "Uri": "qemu+tcp://192.0.2.12/system", "Probe": { "Address": "192.0.2.12", "Port": 22 }, "MigrationUri": "tcp://192.0.2.12" } ],
            "Vms": [ { "Name": "web", "Users": [ { "VantagePoint": "edge", "Weight": 2 } ] } ],
            "Pipeline": { "Mode": "automatic", "EvaluationInterval": "00:00:02", "Executor": { "MaxConcurrentPerHost": 2 } },
            "Policy": { "Cooldown": "00:01:00" } } }
        """;

    [Test]
    public void Load_ValidConfiguration_BindsEverySection()
    {
        var options = ControllerConfiguration.Load(Json(Valid));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(options.Hosts.Select(h => h.Name), Is.EqualTo(new[] { "c1", "c2" }));
            Assert.That(options.Hosts[1].Probe!.Port, Is.EqualTo(22));
            Assert.That(options.Vms[0].ToDefinition().Users[0].Weight, Is.EqualTo(2));
            Assert.That(options.Pipeline.Mode, Is.EqualTo(PipelineMode.Automatic), "enum names bind case-insensitively");
            Assert.That(options.Pipeline.EvaluationInterval, Is.EqualTo(TimeSpan.FromSeconds(2)));
            Assert.That(options.Pipeline.Executor.MaxConcurrentPerHost, Is.EqualTo(2));
            Assert.That(options.Policy.Cooldown, Is.EqualTo(TimeSpan.FromMinutes(1)));
            Assert.That(options.Http.Urls, Is.EqualTo(HttpEndpointOptions.DefaultUrls), "loopback by default");
        }
    }

    [Test]
    public void Load_NoModeGiven_IsAdvisory()
    {
        var options = ControllerConfiguration.Load(Json(Valid.Replace("\"Mode\": \"automatic\", ", "", StringComparison.Ordinal)));
        Assert.That(options.Pipeline.Mode, Is.EqualTo(PipelineMode.Advisory));
    }

    [Test]
    public void TryLoad_ManyMistakes_ListsEveryErrorWithItsPath()
    {
        const string bad = """
            { "Controller": {
                "Hosts": [ { "Name": "a b", "Uri": "qemu+ext://x/system", "Probe": { "Address": "1.2.3" } },
                           { "Name": "c2", "Uri": "qemu+tcp://192.0.2.2/system", "Probe": { "Address": "192.0.2.2", "Port": 70000 }, "Bogus": 1 },
                           { "Name": "c2", "Uri": "qemu+tcp://192.0.2.3/system", "Probe": { "Address": "192.0.2.3" }, "KeepAliveCount": "many" } ],
                "Vms": [ { "Name": "g", "Users": [ { "VantagePoint": "nowhere", "Weight": -1 } ] } ],
                "Http": { "Token": "short" },
                "Pipeline": { "Mode": "Fast", "EvaluationInterval": "abc", "Executor": { "MaxConcurrentPerHost": 0 } } } }
            """;
        var errors = new OptionsErrors();
        ControllerConfiguration.TryLoad(Json(bad), errors);
        var paths = errors.Errors.Select(e => e.Path).ToList();
        Assert.That(paths, Is.EquivalentTo(new[]
        {
            "Hosts[1].Bogus", "Hosts[2].KeepAliveCount", "Pipeline.EvaluationInterval", "Pipeline.Mode",
            "VantagePoints", "Hosts[0].Uri", "Hosts[0].Name", "Hosts[0].Probe.Address", "Hosts[1].Probe.Port", "Hosts[2].Name",
            "Vms[0].Users[0].Weight", "Vms[0].Users[0].VantagePoint", "Http.Token", "Pipeline.Executor.MaxConcurrentPerHost",
        }), string.Join("\n", errors.Errors));
    }

    [Test]
    public void TryLoad_NoControllerSection_SaysSo()
    {
        var errors = new OptionsErrors();
        Assert.That(ControllerConfiguration.TryLoad(Json("""{ "Other": 1 }"""), errors), Is.Null);
        Assert.That(errors.Errors.Single().Path, Is.EqualTo("Controller"));
    }

    [Test]
    public void Load_ObjectWhereValueExpected_IsAnErrorWithPath()
    {
        var json = Valid.Replace("\"Cooldown\": \"00:01:00\"", "\"Cooldown\": { \"Minutes\": 1 }", StringComparison.Ordinal);
        var ex = Assert.Throws<OptionsValidationException>(() => ControllerConfiguration.Load(Json(json)));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "Policy.Cooldown" }));
    }

    [Test]
    public void Load_MqttWithoutVantagePoints_IsValid()
    {
        var json = Valid.Replace("\"VantagePoints\": [ { \"Name\": \"edge\" } ],", "\"Mqtt\": { \"Broker\": \"mqtt://127.0.0.1:1883\" },", StringComparison.Ordinal);
        var options = ControllerConfiguration.Load(Json(json));
        Assert.That(options.Mqtt!.Broker, Is.EqualTo(new Uri("mqtt://127.0.0.1:1883")));
    }

    [Test]
    public void Load_TokenFileMissing_NamesIt()
    {
        var json = Valid.Replace("\"Policy\"", "\"Http\": { \"TokenFile\": \"/nonexistent/token\" }, \"Policy\"", StringComparison.Ordinal);
        var ex = Assert.Throws<OptionsValidationException>(() => ControllerConfiguration.Load(Json(json)));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "Http.TokenFile" }));
    }

    [Test]
    public void Load_RulesNamingUnknownHostsAndVms_ListsThemUnderRules()
    {
        var json = Valid.Replace("\"Policy\"", """
            "Rules": { "DrainedHosts": [ "c9" ], "PinnedVms": [ "web" ], "AntiAffinityGroups": [ { "Name": "spread", "Vms": [ "web", "db" ] } ] }, "Policy"
            """, StringComparison.Ordinal);
        var ex = Assert.Throws<OptionsValidationException>(() => ControllerConfiguration.Load(Json(json)));
        var paths = ex!.Errors.Select(e => e.Path).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(paths, Has.Count.EqualTo(2), string.Join("\n", ex.Errors));
            Assert.That(paths, Has.All.StartWith("Rules."), string.Join("\n", ex.Errors));
            Assert.That(string.Join("\n", ex.Errors), Does.Contain("c9").And.Contain("db"));
        }
    }

    [Test]
    public void Load_ValidRules_BindsEveryRuleKind()
    {
        var json = Valid.Replace("\"Vms\": [ { \"Name\": \"web\", \"Users\": [ { \"VantagePoint\": \"edge\", \"Weight\": 2 } ] } ]",
            "\"Vms\": [ { \"Name\": \"web\", \"Users\": [ { \"VantagePoint\": \"edge\" } ] }, { \"Name\": \"db\", \"Users\": [ { \"VantagePoint\": \"edge\" } ] } ]", StringComparison.Ordinal)
            .Replace("\"Policy\"", """
            "Rules": { "DrainedHosts": [ "c1" ], "PinnedVms": [ "db" ], "AntiAffinityGroups": [ { "Name": "spread", "Vms": [ "web", "db" ] } ], "ExcludedHosts": { "web": [ "c2" ] } }, "Policy"
            """, StringComparison.Ordinal);
        var rules = ControllerConfiguration.Load(Json(json)).Rules;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rules.IsDrained("c1"), Is.True);
            Assert.That(rules.IsPinned("db"), Is.True);
            Assert.That(rules.AntiAffinityGroups.Single().Vms, Is.EqualTo(new[] { "web", "db" }));
            Assert.That(rules.IsExcluded("web", "c2"), Is.True);
        }
    }
}
