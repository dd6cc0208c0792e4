using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class LabPrerequisitesTests
{
    [Test]
    public void Describe_Missing_NamesEachItemAndItsFix()
    {
        var message = LabPrerequisites.Describe([new("program virsh", "apt-get install libvirt-clients"), new("root", "Run as root.")]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(message, Does.Contain("program virsh: apt-get install libvirt-clients"));
            Assert.That(message, Does.Contain("root: Run as root."));
        }
    }

    [Test]
    public void FindMissing_CacheFolderWithoutKernel_ReportsTheKernelPackageAndHowToGetIt()
    {
        var empty = Path.Combine(Path.GetTempPath(), "cloudlets-lab-empty-" + Guid.NewGuid().ToString("N"));
        var missing = LabPrerequisites.FindMissing(empty);
        Assert.That(missing.Select(m => m.What + " " + m.Fix), Has.Some.Contains(empty).And.Contains("linux-image-cloud-amd64"));
    }

    [Test]
    public void PrerequisiteException_Missing_CarriesListAndMessage()
    {
        var ex = new LabPrerequisiteException([new LabPrerequisite("program ip", "apt-get install iproute2")]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Missing, Has.Count.EqualTo(1));
            Assert.That(ex.Message, Does.Contain("apt-get install iproute2"));
        }
    }

    [Test]
    public void FindProgram_Sh_IsFound() => Assert.That(LabPrerequisites.FindProgram("sh"), Is.Not.Null);

    [Test]
    public void FindProgram_Absent_IsNull() => Assert.That(LabPrerequisites.FindProgram("no-such-program-" + Guid.NewGuid().ToString("N")), Is.Null);
}
