using System.Diagnostics;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab.Tests.Processes;

public class LabProcessTests
{
    [Test]
    public void ReadPidFile_ContentVariants_PositiveNumberOrZero()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "1234\n");
            var good = LabProcess.ReadPidFile(file);
            File.WriteAllText(file, "x");
            var bad = LabProcess.ReadPidFile(file);
            File.WriteAllText(file, "-5");
            var negative = LabProcess.ReadPidFile(file);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(good, Is.EqualTo(1234));
                Assert.That(bad, Is.Zero);
                Assert.That(negative, Is.Zero);
                Assert.That(LabProcess.ReadPidFile(file + ".absent"), Is.Zero);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public void IsRunning_OwnProcess_TrueOnlyForItsOwnProgram()
    {
        var self = LabProcess.ExecutableName(Environment.ProcessId);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(self, Is.Not.Null.And.Not.Empty);
            Assert.That(LabProcess.IsRunning(Environment.ProcessId, self!), Is.True);
            Assert.That(LabProcess.IsRunning(Environment.ProcessId, "libvirtd"), Is.False);
            Assert.That(LabProcess.IsAlive(Environment.ProcessId), Is.True);
            Assert.That(LabProcess.IsAlive(0), Is.False);
        }
    }

    [Test]
    public async Task EndAsync_PidRunsAnotherProgram_LeavesItAlone()
    {
        // The recorded pid now belongs to this test process, not to a libvirtd: nothing is sent.
        var ended = await LabProcess.EndAsync(Environment.ProcessId, "libvirtd", TimeSpan.FromSeconds(1), killAtOnce: true, CancellationToken.None);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ended, Is.True);
            Assert.That(LabProcess.IsAlive(Environment.ProcessId), Is.True);
        }
    }

    [Test]
    public async Task EndAsync_RecordedChildOfThatProgram_EndsIt()
    {
        using var child = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        var program = LabProcess.ExecutableName(child.Id);
        Assert.That(program, Is.Not.Null);

        var ended = await LabProcess.EndAsync(child.Id, program!, TimeSpan.FromSeconds(5), killAtOnce: false, CancellationToken.None);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ended, Is.True);
            Assert.That(child.WaitForExit(5000), Is.True);
        }
    }

    [Test]
    public void IsSameProcessAlive_OwnPidWithOwnOrOtherStartTime_TellsReuseApart()
    {
        var start = LabProcess.StartTime(Environment.ProcessId);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(start, Is.GreaterThan(0UL));
            Assert.That(LabProcess.IsSameProcessAlive(Environment.ProcessId, start), Is.True);
            Assert.That(LabProcess.IsSameProcessAlive(Environment.ProcessId, start + 1), Is.False);
            Assert.That(LabProcess.StartTime(0), Is.Zero);
        }
    }
}
