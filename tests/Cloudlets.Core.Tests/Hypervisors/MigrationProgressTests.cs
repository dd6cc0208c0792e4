using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Core.Tests.Hypervisors;

public class MigrationProgressTests
{
    private static MigrationProgress Sample(long? processed, long? remaining, long? total) =>
        new(TimeSpan.FromSeconds(1), processed, remaining, total, 0, 1, null, null);

    // Figures of a real capped migration of the lab's idle 256 MiB guest (the library's job statistics):
    // about a third of its memory is sent, the rest are zero pages QEMU skips.
    [Test]
    public void CompletedFraction_ZeroPagesSkipped_CountsWhatNoLongerRemainsNotOnlyWhatWasSent()
    {
        var sample = Sample(processed: 87_497_865, remaining: 32_542_720, total: 269_090_816);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sample.CompletedFraction, Is.EqualTo(0.879).Within(0.001), "88 % of the memory needs sending no more");
            Assert.That((double)sample.DataProcessedBytes! / sample.DataTotalBytes!.Value, Is.LessThan(0.35), "while processed over total says a third");
        }
    }

    [TestCase(null, null, null)]
    [TestCase(0L, 0L, 0L)]
    [TestCase(5L, null, 100L)]
    public void CompletedFraction_TotalOrRemainingNotReported_Null(long? processed, long? remaining, long? total) =>
        Assert.That(Sample(processed, remaining, total).CompletedFraction, Is.Null, "nothing to show until the hypervisor reports a total and what remains");

    [TestCase(100L, 100L, 0.0)]
    [TestCase(0L, 100L, 1.0)]
    [TestCase(200L, 150L, 0.0)]
    public void CompletedFraction_Bounds_StaysWithinZeroAndOne(long remaining, long total, double expected) =>
        Assert.That(Sample(0, remaining, total).CompletedFraction, Is.EqualTo(expected), "a fraction from 0 to 1, also when more remains than the total (memory dirtied again)");
}
