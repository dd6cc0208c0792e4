using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class CloudletLabBuilderTests
{
    [Test]
    public void Build_ValidSettings_ReturnsUnstartedLab()
    {
        var lab = new CloudletLabBuilder().WithName("t1").WithHosts(3).WithGuestOn("cloudlet-1").WithGuestOn("cloudlet-3").Build();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lab.Name, Is.EqualTo("t1"));
            Assert.That(lab.Options.Hosts, Is.EqualTo(3));
            Assert.That(lab.Options.GuestsOn, Is.EqualTo(new[] { "cloudlet-1", "cloudlet-3" }));
            Assert.That(() => lab.Hosts, Throws.InvalidOperationException);
        }
    }

    [Test]
    public void Build_Defaults_AreDocumentedValues()
    {
        var options = new CloudletLabBuilder().Build().Options;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(options.Name, Is.EqualTo("cloudlets"));
            Assert.That(options.Hosts, Is.EqualTo(3));
            Assert.That(options.Sites, Is.EqualTo(1));
            Assert.That(options.StateRoot, Is.EqualTo("/run/cloudlets-lab"));
            Assert.That(options.CacheFolder, Is.EqualTo("/var/cache/cloudlets-lab"));
            Assert.That(options.KeepRunningOnDispose, Is.False);
        }
    }

    [Category("BadInput")]
    [TestCase(0)]
    [TestCase(-1)]
    [TestCase(LabNaming.MaxHosts + 1)]
    public void Build_HostCountOutOfRange_ThrowsConfigurationException(int hosts) =>
        Assert.That(() => new CloudletLabBuilder().WithHosts(hosts).Build(), Throws.TypeOf<LabConfigurationException>().With.Message.Contains(hosts.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    [Category("BadInput")]
    [TestCase(0)]
    [TestCase(-1)]
    [TestCase(LabNaming.MaxSites + 1)]
    public void Build_SiteCountOutOfRange_ThrowsConfigurationExceptionNamingTheRange(int sites) =>
        Assert.That(() => new CloudletLabBuilder().WithSites(sites).Build(),
            Throws.TypeOf<LabConfigurationException>().With.Message.EqualTo($"A lab has 1-{LabNaming.MaxSites} sites, not {sites}."));

    [TestCase(1)]
    [TestCase(LabNaming.MaxSites)]
    public void Build_SiteCountInRange_KeepsIt(int sites) =>
        Assert.That(new CloudletLabBuilder().WithSites(sites).Build().Options.Sites, Is.EqualTo(sites));

    [Category("BadInput")]
    [TestCase(-1)]
    [TestCase(Cloudlets.Lab.Guests.LabGuestOptions.MaxDirtyRateMiBps + 1)]
    public void Build_GuestDirtyRateOutOfRange_ThrowsConfigurationExceptionNamingIt(int rate) =>
        Assert.That(() => new CloudletLabBuilder().WithGuestOn("cloudlet-1").WithGuestOptions(new Cloudlets.Lab.Guests.LabGuestOptions { DirtyRateMiBps = rate }).Build(),
            Throws.TypeOf<LabConfigurationException>().With.Message.Contains("DirtyRateMiBps").And.Message.Contains(rate.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    [Test]
    public void Build_GuestOptions_KeptForTheGuestsStartedWithTheLab() =>
        Assert.That(new CloudletLabBuilder().WithGuestOn("cloudlet-1").WithGuestOptions(new Cloudlets.Lab.Guests.LabGuestOptions { DirtyRateMiBps = 24 }).Build().Options.GuestOptions.DirtyRateMiBps, Is.EqualTo(24));

    [Category("BadInput")]
    [TestCase("cloudlet-4")]
    [TestCase("cloudlet-0")]
    [TestCase("host-1")]
    [TestCase("")]
    public void Build_GuestOnUnknownHost_ThrowsConfigurationException(string host) =>
        Assert.That(() => new CloudletLabBuilder().WithHosts(3).WithGuestOn(host).Build(), Throws.TypeOf<LabConfigurationException>().With.Message.Contains("cloudlet-1 to cloudlet-3"));

    [Category("BadInput")]
    [TestCase("Bad")]
    [TestCase("x y")]
    [TestCase("")]
    public void Build_InvalidName_ThrowsConfigurationException(string name) =>
        Assert.That(() => new CloudletLabBuilder().WithName(name).Build(), Throws.TypeOf<LabConfigurationException>());

    [Category("BadInput")]
    [TestCase("relative/path")]
    [TestCase("/run/x;y")]
    [TestCase("/run/../etc")]
    public void Build_InvalidStateRoot_ThrowsConfigurationException(string root) =>
        Assert.That(() => new CloudletLabBuilder().WithStateRoot(root).Build(), Throws.TypeOf<LabConfigurationException>());

    [Category("BadInput")]
    [TestCase("/run/cache")]
    [TestCase("/run")]
    [TestCase("cache")]
    public void Build_CacheUnderRunOrRelative_ThrowsConfigurationException(string folder) =>
        Assert.That(() => new CloudletLabBuilder().WithCacheFolder(folder).Build(), Throws.TypeOf<LabConfigurationException>());

    [Category("BadInput")]
    [Test]
    public void Build_TooManyGuests_ThrowsConfigurationException()
    {
        var builder = new CloudletLabBuilder().WithHosts(1);
        for (var i = 0; i <= LabNaming.MaxGuests; i++)
        {
            builder.WithGuestOn("cloudlet-1");
        }

        Assert.That(builder.Build, Throws.TypeOf<LabConfigurationException>());
    }

    [Category("BadInput")]
    [Test]
    public void Build_NonPositiveTimeout_ThrowsConfigurationException() =>
        Assert.That(() => new CloudletLabBuilder().WithReadyTimeout(TimeSpan.Zero).Build(), Throws.TypeOf<LabConfigurationException>());

    [Test]
    public void Build_Twice_Throws()
    {
        var builder = new CloudletLabBuilder().WithName("t1");
        _ = builder.Build();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(builder.Build, Throws.InvalidOperationException);
            Assert.That(() => builder.WithHosts(2), Throws.InvalidOperationException);
        }
    }

    [Test]
    public async Task DisposeAsync_NeverStartedLabWithUnusedName_LeavesNothing()
    {
        var root = Path.Combine(Path.GetTempPath(), "cloudlets-lab-test-" + Guid.NewGuid().ToString("N"));
        var lab = new CloudletLabBuilder().WithName("never-started").WithStateRoot(root).Build();
        await lab.DisposeAsync();
        Assert.That(Directory.Exists(root), Is.False);
    }

    [Test]
    public void Build_InvalidAgents_ThrowsConfigurationExceptionBeforeAnythingIsCreated()
    {
        var builder = new CloudletLabBuilder().WithName("t1").WithAgents(new Cloudlets.Lab.Agents.LabAgentOptions { AgentAssembly = "relative.dll", BrokerPort = 0 });
        Assert.That(() => builder.Build(), Throws.TypeOf<LabConfigurationException>().With.Message.Contains("absolute path").And.Message.Contains("broker port"));
    }

    [Test]
    public void Build_ValidAgents_KeepsThemInTheOptions()
    {
        var agents = new Cloudlets.Lab.Agents.LabAgentOptions { AgentAssembly = typeof(CloudletLabBuilderTests).Assembly.Location, Period = TimeSpan.FromMilliseconds(500) };
        var lab = new CloudletLabBuilder().WithName("t1").WithSites(3).WithAgents(agents).Build();
        Assert.That(lab.Options.Agents, Is.EqualTo(agents));
    }
}
