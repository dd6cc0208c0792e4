namespace Cloudlets.Libvirt.Tests;

public class AbortLoopTests
{
    // Before: the loop gave up after 50 attempts and MigrateAsync then waited for the migration call without bound.
    [Test]
    public async Task Start_AbortRefusedSixtyTimes_KeepsTryingUntilAccepted()
    {
        var migration = new TaskCompletionSource();
        var calls = 0;
        var loop = new AbortLoop(() => Interlocked.Increment(ref calls) > 60, migration.Task, TimeProvider.System, TimeSpan.FromMilliseconds(1));

        loop.Start(TimeSpan.FromMinutes(5));
        await loop.Running.WaitAsync(TimeSpan.FromSeconds(60));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(calls, Is.EqualTo(61));
            Assert.That(loop.GaveUp.IsCompleted, Is.False);
        }
    }

    [Test]
    public async Task Start_MigrationReturns_StopsTrying()
    {
        var migration = new TaskCompletionSource();
        var calls = 0;
        var loop = new AbortLoop(
            () =>
            {
                if (Interlocked.Increment(ref calls) == 3)
                {
                    migration.TrySetResult();
                }

                return false;
            },
            migration.Task,
            TimeProvider.System,
            TimeSpan.FromMilliseconds(1));

        loop.Start(TimeSpan.FromMinutes(5));
        await loop.Running.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.That(calls, Is.EqualTo(3));
    }

    [Test]
    public async Task GaveUp_CallNeverReturns_CompletesAfterTheTimeout()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var never = new TaskCompletionSource();
        var loop = new AbortLoop(() => true, never.Task, time);

        loop.Start(TimeSpan.FromSeconds(30));
        await loop.Running.WaitAsync(TimeSpan.FromSeconds(60));
        var before = loop.GaveUp.IsCompleted;
        time.Advance(TimeSpan.FromSeconds(31));
        await loop.GaveUp.WaitAsync(TimeSpan.FromSeconds(60));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(before, Is.False);
            Assert.That(loop.GaveUp.IsCompleted, Is.True);
            Assert.That(loop.Attempts, Is.EqualTo(1));
        }
    }

    [Test]
    public void Start_Twice_RunsOnce()
    {
        var loop = new AbortLoop(() => true, new TaskCompletionSource().Task, TimeProvider.System);

        loop.Start(TimeSpan.FromSeconds(5));
        var first = loop.Running;
        loop.Start(TimeSpan.FromSeconds(5));

        Assert.That(loop.Running, Is.SameAs(first));
    }
}
