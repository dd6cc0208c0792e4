using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt.Tests.Native;

public class LibvirtRuntimeTests
{
    [Test]
    public void EnsureInitialized_LoadsLibvirt_ReportsVersion9OrLater()
    {
        LibvirtRuntime.EnsureInitialized();

        Assert.That(LibvirtRuntime.LibraryVersion, Is.GreaterThanOrEqualTo(9_000_000));
    }

    [Test]
    public void EnsureInitialized_CalledFromManyThreads_StartsOneEventLoopThread()
    {
        var ids = new int[8];
        Parallel.For(0, ids.Length, i =>
        {
            LibvirtRuntime.EnsureInitialized();
            ids[i] = LibvirtRuntime.EventLoopThreadId;
        });

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ids.Distinct().Count(), Is.EqualTo(1));
            Assert.That(ids[0], Is.Not.EqualTo(Environment.CurrentManagedThreadId));
            Assert.That(LibvirtRuntime.IsOnEventLoop, Is.False);
        }
    }
}
