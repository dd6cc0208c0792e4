using System.Xml.Linq;
using Cloudlets.Lab.Guests;

namespace Cloudlets.Lab.Tests.Guests;

public class LabGuestOptionsTests
{
    [Test]
    public void Default_DirtiesNothingAndIsValid()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabGuestOptions.Default.DirtyRateMiBps, Is.Zero);
            Assert.That(LabGuestOptions.Default.Validate(), Is.Empty);
        }
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(LabGuestOptions.MaxDirtyRateMiBps)]
    public void Validate_RateInRange_NoErrors(int rate)
    {
        Assert.That(new LabGuestOptions { DirtyRateMiBps = rate }.Validate(), Is.Empty);
    }

    [TestCase(-1)]
    [TestCase(LabGuestOptions.MaxDirtyRateMiBps + 1)]
    public void Validate_RateOutOfRange_NamesTheRangeAndTheGuestMemory(int rate)
    {
        var errors = new LabGuestOptions { DirtyRateMiBps = rate }.Validate();

        Assert.That(errors, Has.Count.EqualTo(1).And.One.Contains("DirtyRateMiBps").And.Contains("0 to 128").And.Contains("256 MiB"));
    }

    [Test]
    public async Task StartGuestAsync_BadRate_ThrowsBeforeCreatingAnything()
    {
        var root = Path.Combine(Path.GetTempPath(), "cloudlets-lab-test-" + Guid.NewGuid().ToString("N"));
        var lab = new CloudletLabBuilder().WithName("never-started").WithStateRoot(root).Build();
        try
        {
            var ex = Assert.ThrowsAsync<LabConfigurationException>(() => lab.StartGuestAsync("cloudlet-1", new LabGuestOptions { DirtyRateMiBps = 500 }));

            using (Assert.EnterMultipleScope())
            {
                Assert.That(ex.Message, Does.Contain("DirtyRateMiBps is 500"));
                Assert.That(lab.Guests, Is.Empty);
                Assert.That(Directory.Exists(root), Is.False, "nothing was written");
            }
        }
        finally
        {
            await lab.DisposeAsync();
        }
    }

    [Test]
    public void Xml_DirtyRate_OnTheKernelCommandLineOnlyWhenSet()
    {
        static string Cmdline(int rate) =>
            XElement.Parse(GuestDomain.Xml("guest-1", new GuestImageFiles("/k", "/i"), "198.18.3.101/24", "52:54:00:12:03:01", "br0", 7070, dirtyRateMiBps: rate)).Element("os")!.Element("cmdline")!.Value;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Cmdline(24), Does.Contain(" cloudlets.dirty=24"));
            Assert.That(Cmdline(0), Does.Not.Contain("cloudlets.dirty"));
        }
    }

    [Test]
    public void InitScript_ReadsTheDirtyRateAndRewritesNonZeroBytes()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(GuestImage.InitScript, Does.Contain("cloudlets.dirty=*) dirty="));
            Assert.That(GuestImage.InitScript, Does.Contain("conv=notrunc"));
            Assert.That(GuestImage.InitScript, Does.Not.Contain("if=/dev/zero"), "QEMU sends zero pages as markers: zeros would not load the migration");
        }
    }
}
