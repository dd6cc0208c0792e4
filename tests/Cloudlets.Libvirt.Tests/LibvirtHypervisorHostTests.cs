using System.Collections.Concurrent;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt.Tests;

[Parallelizable(ParallelScope.All)]
public class LibvirtHypervisorHostTests
{
    private static readonly string[] NodeVms = ["vm-off", "vm-run"];

    private static VmSpec TestSpec(string name, int memoryMiB = 128) => new()
    {
        Name = name,
        MemoryMiB = memoryMiB,
        Boot = new KernelBoot("/boot/vmlinuz", "/boot/initrd.img", "console=ttyS0"),
    };

    [Test]
    public async Task ConnectAsync_TestNode_IsConnectedAndPublishesNothingBeforeSubscribing()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options("alpha"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.ConnectionState, Is.EqualTo(HostConnectionState.Connected));
            Assert.That(host.Name, Is.EqualTo("alpha"));
            Assert.That(host.Uri, Is.EqualTo(node.Uri));
        }
    }

    [Test]
    public async Task GetInfoAsync_CustomNode_ReportsItsCpusAndMemory()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var info = await host.GetInfoAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(info.Cpus, Is.EqualTo(8));
            Assert.That(info.CpuMhz, Is.EqualTo(2400));
            Assert.That(info.CpuModel, Is.EqualTo("x86_64"));
            Assert.That(info.MemoryBytes, Is.EqualTo(16777216L * 1024));
            Assert.That(info.Hostname, Is.Not.Empty);
        }
    }

    [Test]
    public async Task GetInfoAsync_DefaultTestNode_ReportsFreeMemory()
    {
        // test:///default is shared within the process; this test only reads it.
        await using var host = await LibvirtHypervisorHost.ConnectAsync(new LibvirtHostOptions { Name = "default", Uri = new Uri("test:///default") });

        var info = await host.GetInfoAsync();

        using (Assert.EnterMultipleScope())
        {
            // virNodeGetFreeMemory answers bytes; the test driver returns its KiB figure unscaled.
            Assert.That(info.FreeMemoryBytes, Is.EqualTo(3145728L));
            Assert.That(info.Cpus, Is.EqualTo(16));
            Assert.That(info.CpuModel, Is.EqualTo("i686"));
        }
    }

    [Test]
    public async Task ListVmsAsync_CustomNode_ListsRunningAndDefinedVms()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var vms = await host.ListVmsAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(vms.Select(v => v.Name), Is.EqualTo(NodeVms));
            var run = vms.Single(v => v.Name == "vm-run");
            Assert.That(run.State, Is.EqualTo(VmState.Running));
            Assert.That(run.MaxMemoryBytes, Is.EqualTo(524288L * 1024));
            Assert.That(run.VCpus, Is.EqualTo(2));
            Assert.That(run.Uuid, Is.Not.EqualTo(Guid.Empty));
            Assert.That(vms.Single(v => v.Name == "vm-off").State, Is.EqualTo(VmState.ShutOff));
        }
    }

    [Test]
    public async Task TryGetVmAsync_UnknownVm_ReturnsNull()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        Assert.That(await host.TryGetVmAsync("nope"), Is.Null);
    }

    [Test]
    public async Task DefineStartDestroyUndefine_NewVm_StateFollowsEachStep()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var defined = await host.DefineVmAsync(TestSpec("fresh", 128));
        await host.StartVmAsync("fresh");
        var started = await host.TryGetVmAsync("fresh");
        await host.DestroyVmAsync("fresh");
        var stopped = await host.TryGetVmAsync("fresh");
        await host.UndefineVmAsync("fresh");
        var gone = await host.TryGetVmAsync("fresh");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(defined.State, Is.EqualTo(VmState.ShutOff));
            Assert.That(defined.IsPersistent, Is.True);
            Assert.That(defined.MaxMemoryBytes, Is.EqualTo(128L * 1024 * 1024));
            Assert.That(started!.State, Is.EqualTo(VmState.Running));
            Assert.That(stopped!.State, Is.EqualTo(VmState.ShutOff));
            Assert.That(gone, Is.Null);
        }
    }

    [Test]
    public async Task GetVmXmlAsync_DefinedVm_ContainsTheSpec()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());
        await host.DefineVmAsync(TestSpec("xmlvm"));

        var xml = await host.GetVmXmlAsync("xmlvm");

        Assert.That(xml, Does.Contain("<name>xmlvm</name>").And.Contain("console=ttyS0"));
    }

    [Test]
    public async Task DefineVmAsync_ZeroMemory_ThrowsInvalidArgumentAndDefinesNothing()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var ex = Assert.ThrowsAsync<HypervisorException>(() => host.DefineVmAsync(TestSpec("zero", 0)));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
            Assert.That(ex.Message, Does.Contain("memory"));
            Assert.That((await host.ListVmsAsync()).Select(v => v.Name), Is.EqualTo(NodeVms));
        }
    }

    [Test]
    public async Task DefineVmAsync_ExistingName_ThrowsAlreadyExists()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var ex = Assert.ThrowsAsync<HypervisorException>(() => host.DefineVmAsync(TestSpec("vm-run")));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.AlreadyExists));
    }

    [Test]
    public async Task StartVmAsync_UnknownVm_ThrowsNotFoundWithLibvirtFields()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var ex = Assert.ThrowsAsync<LibvirtException>(() => host.StartVmAsync("ghost"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.NotFound));
            Assert.That(ex.Code, Is.EqualTo(42));
            Assert.That(ex.ErrorDomain, Is.EqualTo(12));
            Assert.That(ex.Api, Is.EqualTo("virDomainLookupByName"));
            Assert.That(ex.IsTransient, Is.False);
        }
    }

    [Test]
    public async Task StartVmAsync_AlreadyRunning_ThrowsLibvirtException()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var ex = Assert.ThrowsAsync<LibvirtException>(() => host.StartVmAsync("vm-run"));

        Assert.That(ex.Api, Is.EqualTo("virDomainCreateWithFlags"));
    }

    [Test]
    public async Task UndefineVmAsync_RunningVm_ThrowsInvalidArgumentAndKeepsIt()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var ex = Assert.ThrowsAsync<HypervisorException>(() => host.UndefineVmAsync("vm-run"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
            Assert.That((await host.TryGetVmAsync("vm-run"))!.IsPersistent, Is.True);
        }
    }

    [Test]
    public async Task TryGetVmAsync_BadName_ThrowsInvalidArgument()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var ex = Assert.ThrowsAsync<HypervisorException>(() => host.TryGetVmAsync("a/b"));

        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.InvalidArgument));
    }

    [Test]
    public async Task Events_DefineToUndefine_DeliveredInOrderOffTheEventLoop()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());
        var seen = new BlockingCollection<(VmLifecycleEvent Event, int Thread)>();
        using var sub = host.Events.Subscribe(e =>
        {
            if (e is VmLifecycleEvent l)
            {
                seen.Add((l, Environment.CurrentManagedThreadId));
            }
        });

        await host.DefineVmAsync(TestSpec("ev"));
        await host.StartVmAsync("ev");
        await host.SuspendVmAsync("ev");
        await host.ResumeVmAsync("ev");
        await host.DestroyVmAsync("ev");
        await host.UndefineVmAsync("ev");
        var events = new List<(VmLifecycleEvent Event, int Thread)>();
        for (var i = 0; i < 6 && seen.TryTake(out var e, TimeSpan.FromSeconds(5)); i++)
        {
            events.Add(e);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(events.Select(e => e.Event.Lifecycle), Is.EqualTo(new[]
            {
                VmLifecycle.Defined, VmLifecycle.Started, VmLifecycle.Suspended, VmLifecycle.Resumed, VmLifecycle.Stopped, VmLifecycle.Undefined,
            }));
            Assert.That(events.All(e => e.Event.VmName == "ev" && e.Event.Host == "t1" && !e.Event.ByMigration), Is.True);
            Assert.That(events.Single(e => e.Event.Lifecycle == VmLifecycle.Stopped).Event.Detail, Is.EqualTo(1), "destroyed");
            Assert.That(events.Any(e => e.Thread == LibvirtRuntime.EventLoopThreadId), Is.False, "subscribers never run on the event loop");
        }
    }

    [Test]
    public async Task Events_SubscriberThrows_LaterEventsStillDelivered()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());
        var good = new BlockingCollection<VmLifecycle>();
        using var bad = host.Events.Subscribe(_ => throw new InvalidOperationException("subscriber bug"));
        using var ok = host.Events.Subscribe(e =>
        {
            if (e is VmLifecycleEvent l)
            {
                good.Add(l.Lifecycle);
            }
        });

        await host.DefineVmAsync(TestSpec("boom"));
        await host.UndefineVmAsync("boom");
        var first = good.TryTake(out var a, TimeSpan.FromSeconds(5));
        var second = good.TryTake(out var b, TimeSpan.FromSeconds(5));
        var stillUsable = await host.TryGetVmAsync("vm-run");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first && second, Is.True);
            Assert.That(new[] { a, b }, Is.EqualTo(new[] { VmLifecycle.Defined, VmLifecycle.Undefined }));
            Assert.That(stillUsable, Is.Not.Null);
        }
    }

    [Test]
    public async Task DisposeAsync_AfterUse_ClosesWithNoLiveReferencesAndFreesEveryCallback()
    {
        using var node = TestNode.Create();
        var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());
        var connection = host.CurrentConnection!;
        var sinks = connection.Sinks;
        await host.ListVmsAsync();
        await host.GetInfoAsync();
        await host.DefineVmAsync(TestSpec("leak"));
        await host.StartVmAsync("leak");
        var completed = false;
        using var sub = host.Events.Subscribe(_ => { }, () => completed = true);

        await host.DisposeAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.ClosedConnections, Is.EqualTo(new[] { connection }));
            Assert.That(connection.CloseResult, Is.Zero, "virConnectClose found no live references");
            Assert.That(sinks, Is.Not.Empty);
            Assert.That(sinks.All(s => s.IsFreed), Is.True, "every callback's GCHandle was freed");
            Assert.That(host.ConnectionState, Is.EqualTo(HostConnectionState.Disconnected));
            Assert.That(completed, Is.True, "Events completes on dispose");
        }
    }

    [Test]
    public async Task DisposeAsync_Twice_IsSafeAndCallsAfterwardThrow()
    {
        using var node = TestNode.Create();
        var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        await host.DisposeAsync();
        await host.DisposeAsync();

        Assert.ThrowsAsync<ObjectDisposedException>(() => host.ListVmsAsync());
    }

    [Test]
    public void ConnectAsync_MalformedUri_ThrowsOptionsValidationForTheUri()
    {
        var options = new LibvirtHostOptions { Name = "bad", Uri = new Uri("qemu+tcp:///system") };

        var ex = Assert.ThrowsAsync<Cloudlets.Core.Options.OptionsValidationException>(() => LibvirtHypervisorHost.ConnectAsync(options));

        Assert.That(ex.Errors.Select(e => e.Path), Is.EqualTo(new[] { "Uri" }));
    }

    [Test]
    public void ConnectAsync_NothingListening_ThrowsConnectionLost()
    {
        // Port 1 on loopback: nothing listens there, so the connect is refused at once.
        var options = new LibvirtHostOptions { Name = "down", Uri = new Uri("qemu+tcp://127.0.0.1:1/system") };

        var ex = Assert.ThrowsAsync<LibvirtException>(() => LibvirtHypervisorHost.ConnectAsync(options));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.ConnectionLost));
            Assert.That(ex.Api, Is.EqualTo("virConnectOpenAuth"));
        }
    }

    [Test]
    public void ConnectAsync_MissingNodeFile_ThrowsLibvirtException()
    {
        var options = new LibvirtHostOptions { Name = "nofile", Uri = new Uri("test:///no/such/node.xml") };

        Assert.ThrowsAsync<LibvirtException>(() => LibvirtHypervisorHost.ConnectAsync(options));
    }

    [Test]
    public async Task Concurrency_ManyCallsOnOneHost_AllSucceed()
    {
        using var node = TestNode.Create();
        await using var host = await LibvirtHypervisorHost.ConnectAsync(node.Options());

        var results = await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            var vms = await host.ListVmsAsync();
            var xml = await host.GetVmXmlAsync("vm-run");
            return vms.Count + (xml.Length > 0 ? 1 : 0);
        }));

        Assert.That(results, Is.All.EqualTo(3));
    }
}
