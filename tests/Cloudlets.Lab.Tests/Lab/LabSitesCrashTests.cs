using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>
/// <c>cloudlets-lab up --sites 3</c> killed (SIGKILL) while it creates the sites: the state file has
/// recorded the site namespaces made so far, and the next command removes exactly them (and then
/// nothing of the lab is left); the next <c>up</c> of the same shape works.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class LabSitesCrashTests
{
    private string _name = "";

    [SetUp]
    public void NameTheLab()
    {
        LabGate.Require();
        _name = TestLabs.UniqueName("sitecrash");
    }

    [TearDown]
    public async Task DownAsync() => _ = await LabSample.RunAsync("down", "--name", _name);

    [Test]
    public async Task Up_KilledAtSite3_StateRecordsTheSiteNamespacesAndDownLeavesNothing()
    {
        await LabSample.KillAtPhaseAsync(LabPhases.Site(3), "up", "--hosts", "1", "--sites", "3", "--name", _name);
        var state = new LabPaths(LabPaths.DefaultRoot).TryReadState(_name);
        Assert.That(state?.Namespaces.Select(n => n.Name), Is.SupersetOf(new[] { _name + "-sw", _name + "-edge", _name + "-s2", _name + "-s3" }));
        Assert.That(state!.Namespaces.Where(n => n.Name.EndsWith("-s2", StringComparison.Ordinal) || n.Name.EndsWith("-s3", StringComparison.Ordinal)).Select(n => n.Inode), Has.All.Not.Zero);

        var down = await LabSample.RunAsync("down", "--name", _name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(CloudletLab.FindLeftovers(_name), Is.Empty);
        }
    }

    [Test]
    public async Task Up_KilledAtSite2_NextUpBringsTheLabUpWithItsSites()
    {
        await LabSample.KillAtPhaseAsync(LabPhases.Site(2), "up", "--hosts", "1", "--sites", "3", "--name", _name);
        var up = await LabSample.RunAsync("up", "--hosts", "1", "--sites", "3", "--name", _name);
        Assert.That(up.ExitCode, Is.Zero, up.StandardError);
        await using (var lab = CloudletLab.Attach(_name)!)
        {
            using (Assert.EnterMultipleScope())
            {
                Assert.That(await lab.IsHealthyAsync(), Is.True);
                Assert.That(lab.Sites.Select(s => s.Namespace), Is.EqualTo(new[] { _name + "-edge", _name + "-s2", _name + "-s3" }));
                Assert.That(up.StandardOutput, Does.Contain("site-3 198.19."));
            }
        }

        var down = await LabSample.RunAsync("down", "--name", _name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(CloudletLab.FindLeftovers(_name), Is.Empty);
        }
    }
}
