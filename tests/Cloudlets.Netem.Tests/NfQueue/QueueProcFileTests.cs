using Cloudlets.Core.Shaping;
using Cloudlets.Netem.NfQueue;

namespace Cloudlets.Netem.Tests.NfQueue;

public sealed class QueueProcFileTests
{
    [Test]
    public void Parse_TwoQueuesAndNoise_ReadsEachField()
    {
        const string content = "  2048  24949     3 1     0     7     2      1234  1\n 2049   100     0 1 0 0 0 5 1\n0\nnot a line\n";
        Assert.That(QueueProcFile.Parse(content), Is.EqualTo(new[]
        {
            new QueueHealth(2048, 24949, 3, 7, 2, 1234),
            new QueueHealth(2049, 100, 0, 0, 0, 5),
        }));
    }

    [Test]
    public void Parse_Empty_IsEmpty() => Assert.That(QueueProcFile.Parse(""), Is.Empty);
}
