using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class LabPathsTests
{
    private string _root = null!;

    [SetUp]
    public void CreateRoot() => _root = Path.Combine(Path.GetTempPath(), "cloudlets-lab-paths-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void DeleteRoot()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Test]
    public void Folders_ForLab_DeriveFromRootAndName()
    {
        var paths = new LabPaths("/run/cloudlets-lab");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(paths.LabFolder("t1"), Is.EqualTo("/run/cloudlets-lab/labs/t1"));
            Assert.That(paths.StateFile("t1"), Is.EqualTo("/run/cloudlets-lab/labs/t1/state.json"));
            Assert.That(paths.HostFolder("t1", 2), Is.EqualTo("/run/cloudlets-lab/labs/t1/h2"));
            Assert.That(paths.SubnetClaim(5), Is.EqualTo("/run/cloudlets-lab/subnets/5"));
        }
    }

    [Test]
    public void ClaimSubnet_TwoLabs_GetDifferentSubnetsAndTheSameLabGetsItsOwnAgain()
    {
        var paths = new LabPaths(_root);
        var a = paths.ClaimSubnet("lab-a");
        var b = paths.ClaimSubnet("lab-b");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b, Is.Not.EqualTo(a));
            Assert.That(paths.ClaimSubnet("lab-a"), Is.EqualTo(a));
            Assert.That(paths.SubnetsClaimedBy("lab-b"), Is.EqualTo(new[] { b }));
        }
    }

    [Test]
    public void ClaimSubnet_ManyLabsAtOnce_NoSubnetIsClaimedTwice()
    {
        var paths = new LabPaths(_root);
        var claims = Enumerable.Range(0, 40).AsParallel().Select(i => paths.ClaimSubnet("lab" + i)).ToList();
        Assert.That(claims, Is.Unique);
    }

    [Test]
    public void ClaimSubnet_AllTaken_ThrowsLabException()
    {
        var paths = new LabPaths(_root);
        Directory.CreateDirectory(paths.SubnetFolder);
        for (var k = LabNaming.MinSubnet; k <= LabNaming.MaxSubnet; k++)
        {
            File.WriteAllText(paths.SubnetClaim(k), "other");
        }

        Assert.That(() => paths.ClaimSubnet("lab-a"), Throws.TypeOf<LabException>().With.Message.Contains("No free lab subnet"));
    }

    [Test]
    public void WriteState_ThenTryReadState_ReturnsIt()
    {
        var paths = new LabPaths(_root);
        paths.WriteState(new LabState { Name = "t1", Subnet = 4, Phase = "ready" });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(paths.TryReadState("t1")?.Subnet, Is.EqualTo(4));
            Assert.That(paths.TryReadState("t2"), Is.Null);
            Assert.That(paths.KnownLabs(), Is.EqualTo(new[] { "t1" }));
        }
    }

    [Test]
    public void TryReadState_CorruptFile_ReturnsNull()
    {
        var paths = new LabPaths(_root);
        Directory.CreateDirectory(paths.LabFolder("t1"));
        File.WriteAllText(paths.StateFile("t1"), "{ half");
        Assert.That(paths.TryReadState("t1"), Is.Null);
    }
}
