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
    public void Capture_OwnProcess_HasItsStartTimeAndCanonicalProgramPath()
    {
        var self = ProcessIdentity.Capture(Environment.ProcessId);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(self, Is.Not.Null);
            Assert.That(self!.StartTime, Is.EqualTo(LabProcess.StartTime(Environment.ProcessId)));
            Assert.That(Path.IsPathFullyQualified(self.Executable), Is.True, self.Executable);
            Assert.That(self.IsAlive(), Is.True);
            Assert.That((self with { StartTime = self.StartTime + 1 }).IsAlive(), Is.False, "a reused pid (another start time) was taken for this process");
            Assert.That((self with { Executable = "/usr/sbin/libvirtd" }).IsAlive(), Is.False, "another program was taken for this process");
            Assert.That(ProcessIdentity.Capture(0), Is.Null);
        }
    }

    [Test]
    public async Task EndAsync_SamePidAndProgramNameButAnotherStartTime_LeavesItAlone()
    {
        // A recorded process whose pid now belongs to another process of the same program: nothing is sent.
        using var child = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        var now = ProcessIdentity.Capture(child.Id)!;
        try
        {
            var ended = await LabProcess.EndAsync(now with { StartTime = now.StartTime - 1 }, TimeSpan.FromSeconds(1), killAtOnce: true, CancellationToken.None);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(ended, Is.True, "the recorded process is gone");
                Assert.That(now.IsAlive(), Is.True, "the process that reused the pid was signalled");
            }
        }
        finally
        {
            child.Kill();
        }
    }

    [Test]
    public async Task EndAsync_RecordedChild_EndsIt()
    {
        using var child = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        var identity = ProcessIdentity.Capture(child.Id);
        Assert.That(identity, Is.Not.Null);

        var ended = await LabProcess.EndAsync(identity!, TimeSpan.FromSeconds(5), killAtOnce: false, CancellationToken.None);

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
