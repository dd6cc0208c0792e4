using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Tests.Probing;

public class ProbeScheduleTests
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    [Test]
    public void Constructor_ValidValues_KeepsThem()
    {
        var schedule = new ProbeSchedule(3, Ms, TimeSpan.Zero, 5 * Ms);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(schedule.Count, Is.EqualTo(3));
            Assert.That(schedule.Period, Is.EqualTo(Ms));
            Assert.That(schedule.Interval, Is.EqualTo(TimeSpan.Zero));
            Assert.That(schedule.Timeout, Is.EqualTo(5 * Ms));
        }
    }

    [TestCase(0, 1, 0, 1, TestName = "Constructor_ZeroCount_Throws")]
    [TestCase(-1, 1, 0, 1, TestName = "Constructor_NegativeCount_Throws")]
    [TestCase(1, 0, 0, 1, TestName = "Constructor_ZeroPeriod_Throws")]
    [TestCase(1, -1, 0, 1, TestName = "Constructor_NegativePeriod_Throws")]
    [TestCase(1, 1, -1, 1, TestName = "Constructor_NegativeInterval_Throws")]
    [TestCase(1, 1, 0, 0, TestName = "Constructor_ZeroTimeout_Throws")]
    [TestCase(1, 1, 0, -5, TestName = "Constructor_NegativeTimeout_Throws")]
    public void Constructor_OutOfRange_Throws(int count, int periodMs, int intervalMs, int timeoutMs)
        => Assert.That(() => new ProbeSchedule(count, periodMs * Ms, intervalMs * Ms, timeoutMs * Ms), Throws.InstanceOf<ArgumentOutOfRangeException>());
}
