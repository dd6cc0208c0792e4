using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt.Tests.Native;

public class LibvirtConnectionTests
{
    [Test]
    public void Open_TestFile_IsAliveAndClosesWithNoReferences()
    {
        using var node = TestNode.Create();
        var c = LibvirtConnection.Open(node.Uri.OriginalString, null);

        var alive = c.IsAlive;
        var uri = LibvirtNative.virConnectGetURI(c.Handle);
        c.Dispose();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(alive, Is.True);
            Assert.That(uri, Is.EqualTo(node.Uri.OriginalString));
            Assert.That(c.CloseResult, Is.Zero);
        }
    }

    [Test]
    public void SetKeepAlive_LocalTestDriver_ReturnsFalse()
    {
        using var node = TestNode.Create();
        using var c = LibvirtConnection.Open(node.Uri.OriginalString, null);

        Assert.That(c.SetKeepAlive(5, 3), Is.False);
    }

    [Test]
    public void Open_MissingNodeFile_ThrowsLibvirtExceptionWithLibvirtFields()
    {
        var ex = Assert.Throws<LibvirtException>(() => LibvirtConnection.Open("test:///no/such/folder/node.xml", null));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Api, Is.EqualTo("virConnectOpenAuth"));
            Assert.That(ex.Code, Is.Not.Zero);
            Assert.That(ex.LibvirtMessage, Is.Not.Empty);
        }
    }

    [Test]
    public void Open_MissingNetworkNamespace_ThrowsInvalidArgument()
    {
        using var node = TestNode.Create();

        var ex = Assert.Throws<HypervisorException>(() => LibvirtConnection.Open(node.Uri.OriginalString, "cloudlets-no-such-ns"));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }

    [Test]
    public void FromLastError_FailureOnAnotherThread_IsNotVisibleHere()
    {
        using var node = TestNode.Create();
        using var c = LibvirtConnection.Open(node.Uri.OriginalString, null);
        LibvirtException? captured = null;

        var t = new Thread(() =>
        {
            using var d = LibvirtNative.virDomainLookupByName(c.Handle, "missing");
            captured = LibvirtException.FromLastError("virDomainLookupByName");
        });
        t.Start();
        t.Join();
        var here = LibvirtException.FromLastError("nothing");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(captured!.Code, Is.EqualTo(42));
            Assert.That(captured.ErrorDomain, Is.EqualTo(12));
            Assert.That(captured.Kind, Is.EqualTo(HypervisorErrorKind.NotFound));
            Assert.That(captured.LibvirtMessage, Does.Contain("Domain not found"));
            Assert.That(here.Code, Is.Zero);
        }
    }

    [Test]
    public void RegisterDomainEvents_ThenDispose_FreesEveryCallbackAndCloses()
    {
        using var node = TestNode.Create();
        var c = LibvirtConnection.Open(node.Uri.OriginalString, null);
        c.RegisterDomainEvents(_ => { });
        var sinks = c.Sinks;

        c.Dispose();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sinks, Has.Count.EqualTo(2));
            Assert.That(sinks.All(s => s.IsFreed), Is.True);
            Assert.That(c.CloseResult, Is.Zero);
        }
    }

    [Test]
    public void Dispose_WhileADomainHandleLives_ReportsTheReferenceAndLaterFreesSafely()
    {
        using var node = TestNode.Create();
        var c = LibvirtConnection.Open(node.Uri.OriginalString, null);
        var d = LibvirtNative.virDomainLookupByName(c.Handle, "vm-run");

        c.Dispose();
        var afterClose = c.CloseResult;
        d.Dispose();

        Assert.That(afterClose, Is.GreaterThan(0));
    }

    [Test]
    public void Finalizers_AbandonedConnectionAndDomainHandles_ReleaseWithoutCrashing()
    {
        using var node = TestNode.Create();
        Abandon(node.Uri.OriginalString);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        using var again = LibvirtConnection.Open(node.Uri.OriginalString, null);
        Assert.That(again.IsAlive, Is.True);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void Abandon(string uri)
    {
        var c = LibvirtConnection.Open(uri, null);
        _ = LibvirtNative.virDomainLookupByName(c.Handle, "vm-run");
    }

    [Test]
    public void RegisterDomainEvents_LifecycleChange_CallbackRunsOnTheEventLoopThread()
    {
        using var node = TestNode.Create();
        using var c = LibvirtConnection.Open(node.Uri.OriginalString, null);
        var seen = new System.Collections.Concurrent.BlockingCollection<NativeEvent>();
        c.RegisterDomainEvents(seen.Add);

        using (var d = LibvirtNative.virDomainLookupByName(c.Handle, "vm-run"))
        {
            Assert.That(LibvirtNative.virDomainSuspend(d), Is.Zero);
        }

        var got = seen.TryTake(out var e, TimeSpan.FromSeconds(5));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(got, Is.True);
            Assert.That(e, Is.TypeOf<NativeLifecycleEvent>());
            Assert.That(((NativeLifecycleEvent)e!).VmName, Is.EqualTo("vm-run"));
            Assert.That(((NativeLifecycleEvent)e).Event, Is.EqualTo(3), "suspended");
            Assert.That(e.ThreadId, Is.EqualTo(LibvirtRuntime.EventLoopThreadId));
        }
    }
}
