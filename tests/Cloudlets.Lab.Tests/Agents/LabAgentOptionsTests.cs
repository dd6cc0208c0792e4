using Cloudlets.Lab.Agents;

namespace Cloudlets.Lab.Tests.Agents;

public class LabAgentOptionsTests
{
    private static string ExistingDll => typeof(LabAgentOptionsTests).Assembly.Location;

    [Test]
    public void Validate_Defaults_AreDocumentedValuesAndValid()
    {
        var options = new LabAgentOptions { AgentAssembly = ExistingDll };
        using (Assert.EnterMultipleScope())
        {
            Assert.That(options.Validate(), Is.Empty);
            Assert.That((options.Period, options.ProbeTimeout, options.BrokerPort, options.DotnetHost), Is.EqualTo((TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 1883, (string?)null)));
        }
    }

    [Test]
    public void Validate_EverySettingWrong_ListsEveryError()
    {
        var errors = new LabAgentOptions
        {
            AgentAssembly = "bin/cloudlets-agent.dll",
            DotnetHost = "dotnet",
            Period = TimeSpan.FromMilliseconds(10),
            ProbeTimeout = TimeSpan.Zero,
            BrokerPort = 70000,
        }.Validate();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(errors, Has.Count.EqualTo(5));
            Assert.That(errors[0], Does.Contain("absolute path"));
            Assert.That(errors[1], Does.Contain("dotnet host"));
            Assert.That(errors[2], Does.Contain("period"));
            Assert.That(errors[3], Does.Contain("timeout"));
            Assert.That(errors[4], Does.Contain("70000"));
        }
    }

    [Test]
    public void Validate_MissingAssembly_SaysToBuildTheAgent()
    {
        var errors = new LabAgentOptions { AgentAssembly = Path.Combine(Path.GetTempPath(), "no-such-folder-14", "cloudlets-agent.dll") }.Validate();
        Assert.That(errors, Has.One.Contains("does not exist"));
    }
}
