using System.Net;
using System.Net.Sockets;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.Probing.Tcp;
using Cloudlets.TestUtils;

namespace Cloudlets.Probing.Tests;

/// <summary>
/// The probe-target part of the bad-input suite (issue 11): every bad target, target list, timeout
/// or schedule given to the ICMP or the TCP prober is an <see cref="ArgumentException"/> (or one of its
/// subtypes) thrown before anything is sent: no sample is delivered, no ICMP reply is seen, and a TCP
/// listener on loopback accepts no connection.
/// </summary>
[Category("BadInput")]
[NonParallelizable]
public sealed class ProbeTargetBadInputTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(500);
    private static readonly ProbeSchedule Schedule = new(1, TimeSpan.FromMilliseconds(10), TimeSpan.Zero, Timeout);

    /// <summary>Targets neither prober takes, by what is wrong with them (the TCP cases add a port).</summary>
    private static readonly (string What, IPAddress? Address)[] BadAddresses =
    [
        ("NoAddress", null),
        ("UnspecifiedIPv4", IPAddress.Any),
        ("UnspecifiedIPv6", IPAddress.IPv6Any),
        ("BroadcastIPv4", IPAddress.Broadcast),
        ("MulticastIPv4", IPAddress.Parse("224.0.0.1")),
        ("MulticastIPv4High", IPAddress.Parse("239.255.255.250")),
        ("MulticastIPv6", IPAddress.Parse("ff02::1")),
    ];

    private TcpListener? _listener;
    private int _accepted;
    private CancellationTokenSource? _stopAccepting;
    private Task? _accepting;

    private int ListenerPort => ((IPEndPoint)_listener!.LocalEndpoint).Port;

    public static IEnumerable<TestCaseData> IcmpCases()
    {
        foreach (var (what, address) in BadAddresses)
        {
            yield return new TestCaseData(what, new ProbeTarget(what, address!)).SetName($"Icmp_{what}_ArgumentExceptionNothingSent");
        }

        yield return new TestCaseData("IPv4MappedIPv6", new ProbeTarget("mapped", IPAddress.Parse("::ffff:127.0.0.1"))).SetName("Icmp_IPv4MappedIPv6_ArgumentExceptionNothingSent");
        yield return new TestCaseData("IPv6WithIPv6Off", new ProbeTarget("v6", IPAddress.IPv6Loopback)).SetName("Icmp_IPv6WhileIPv6IsOff_ArgumentExceptionNothingSent");
    }

    public static IEnumerable<TestCaseData> TcpCases()
    {
        foreach (var (what, address) in BadAddresses)
        {
            yield return new TestCaseData(new ProbeTarget(what, address!, 7)).SetName($"Tcp_{what}_ArgumentExceptionNothingSent");
        }

        yield return new TestCaseData(new ProbeTarget("no-port", IPAddress.Loopback)).SetName("Tcp_NoPort_ArgumentExceptionNothingSent");
        yield return new TestCaseData(new ProbeTarget("port-0", IPAddress.Loopback, 0)).SetName("Tcp_PortZero_ArgumentExceptionNothingSent");
        yield return new TestCaseData(new ProbeTarget("port-neg", IPAddress.Loopback, -1)).SetName("Tcp_NegativePort_ArgumentExceptionNothingSent");
        yield return new TestCaseData(new ProbeTarget("port-big", IPAddress.Loopback, 65536)).SetName("Tcp_PortAbove65535_ArgumentExceptionNothingSent");
    }

    /// <summary>Bad timeouts and schedules, for both probers: a name and the call that must be refused.</summary>
    public static IEnumerable<TestCaseData> CallCases()
    {
        static TestCaseData Case(string what, Func<IMultiTargetLatencyProbe, ProbeTarget, Task> call) => new TestCaseData(what, call).SetArgDisplayNames(what);

        yield return Case("NullTarget", (p, _) => p.ProbeAsync(null!, Timeout).AsTask());
        yield return Case("ZeroTimeout", (p, t) => p.ProbeAsync(t, TimeSpan.Zero).AsTask());
        yield return Case("NegativeTimeout", (p, t) => p.ProbeAsync(t, TimeSpan.FromSeconds(-1)).AsTask());
        yield return Case("TimeoutAboveOneHour", (p, t) => p.ProbeAsync(t, ProbeLimits.MaxTimeout + TimeSpan.FromTicks(1)).AsTask());
        yield return Case("InfiniteTimeout", (p, t) => p.ProbeAsync(t, System.Threading.Timeout.InfiniteTimeSpan).AsTask());
        yield return Case("MaxValueTimeout", (p, t) => p.ProbeAsync(t, TimeSpan.MaxValue).AsTask());
        yield return Case("RunNullTargets", (p, _) => p.RunAsync(null!, Schedule, _ => { }));
        yield return Case("RunNoTargets", (p, _) => p.RunAsync([], Schedule, _ => { }));
        yield return Case("RunNullTargetInList", (p, t) => p.RunAsync([t, null!], Schedule, _ => { }));
        yield return Case("RunBadTargetAfterGoodOnes", (p, t) => p.RunAsync([t, t with { Name = "any", Address = IPAddress.Any }], Schedule, _ => { }));
        yield return Case("RunNullSchedule", (p, t) => p.RunAsync([t], null!, _ => { }));
        yield return Case("RunNullCallback", (p, t) => p.RunAsync([t], Schedule, null!));
        yield return Case("RunScheduleTimeoutAboveOneHour", (p, t) => p.RunAsync([t], new ProbeSchedule(1, TimeSpan.FromMilliseconds(10), TimeSpan.Zero, TimeSpan.FromHours(2)), _ => { }));
        yield return Case("RunSchedulePeriodAboveOneDay", (p, t) => p.RunAsync([t], new ProbeSchedule(2, TimeSpan.FromDays(2), TimeSpan.Zero, Timeout), _ => { }));
        yield return Case("RunScheduleIntervalAboveOneDay", (p, t) => p.RunAsync([t], new ProbeSchedule(2, TimeSpan.FromSeconds(1), TimeSpan.FromDays(2), Timeout), _ => { }));
        yield return Case("ScheduleZeroCount", (p, t) => p.RunAsync([t], new ProbeSchedule(0, TimeSpan.FromSeconds(1), TimeSpan.Zero, Timeout), _ => { }));
        yield return Case("ScheduleZeroPeriod", (p, t) => p.RunAsync([t], new ProbeSchedule(1, TimeSpan.Zero, TimeSpan.Zero, Timeout), _ => { }));
        yield return Case("ScheduleNegativeInterval", (p, t) => p.RunAsync([t], new ProbeSchedule(1, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(-1), Timeout), _ => { }));
        yield return Case("ScheduleZeroTimeout", (p, t) => p.RunAsync([t], new ProbeSchedule(1, TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.Zero), _ => { }));
    }

    [OneTimeSetUp]
    public void StartListener()
    {
        // Every TCP case that got through would connect here (or to port 7, closed: a refusal, which is
        // a sample); the listener counts what it accepts.
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _stopAccepting = new CancellationTokenSource();
        _accepting = Task.Run(async () =>
        {
            while (!_stopAccepting.IsCancellationRequested)
            {
                try
                {
                    using var client = await _listener.AcceptTcpClientAsync(_stopAccepting.Token);
                    Interlocked.Increment(ref _accepted);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });
    }

    [OneTimeTearDown]
    public async Task StopListenerAsync()
    {
        await _stopAccepting!.CancelAsync();
        _listener!.Stop();
        await _accepting!;
        _listener.Dispose();
        _stopAccepting.Dispose();
    }

    [TestCaseSource(nameof(IcmpCases))]
    public async Task Icmp_BadTarget_ArgumentExceptionNothingSent(string what, ProbeTarget target)
    {
        RequireRoot();
        await using var prober = IcmpProber.Create(new IcmpProberOptions { EnableIPv6 = what != "IPv6WithIPv6Off" });
        var samples = 0;

        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => prober.ProbeAsync(target, Timeout).AsTask());
        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => prober.RunAsync([target], Schedule, _ => Interlocked.Increment(ref samples)));

        await AssertNothingSentAsync(prober, () => samples);
    }

    [TestCaseSource(nameof(TcpCases))]
    public async Task Tcp_BadTarget_ArgumentExceptionNothingSent(ProbeTarget target)
    {
        await using var prober = new TcpConnectProber(new TcpConnectProberOptions());
        var samples = 0;

        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => prober.ProbeAsync(target, Timeout).AsTask());
        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => prober.RunAsync([target], Schedule, _ => Interlocked.Increment(ref samples)));

        await Task.Delay(100);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(samples, Is.Zero, "no sample delivered");
            Assert.That(Volatile.Read(ref _accepted), Is.Zero, "no connection made");
        }
    }

    [TestCaseSource(nameof(CallCases))]
    public async Task Call_BadArgumentToTheTcpProber_ArgumentExceptionNothingSent(string what, Func<IMultiTargetLatencyProbe, ProbeTarget, Task> call)
    {
        await using var tcp = new TcpConnectProber(new TcpConnectProberOptions());

        // The good target these calls start from is the counting listener: anything sent would be counted.
        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => call(tcp, new ProbeTarget("listener", IPAddress.Loopback, ListenerPort)), what);

        await Task.Delay(100);
        Assert.That(Volatile.Read(ref _accepted), Is.Zero, "no connection made");
    }

    [TestCaseSource(nameof(CallCases))]
    public async Task Call_BadArgumentToTheIcmpProber_ArgumentExceptionNothingSent(string what, Func<IMultiTargetLatencyProbe, ProbeTarget, Task> call)
    {
        RequireRoot();
        await using var icmp = IcmpProber.Create(new IcmpProberOptions());

        Assert.ThrowsAsync(Is.InstanceOf<ArgumentException>(), () => call(icmp, new ProbeTarget("lo", IPAddress.Loopback)), what);

        await AssertNothingSentAsync(icmp, () => 0);
    }

    [Test]
    public async Task Tcp_TheGoodTargetTheCasesStartFrom_IsMeasuredAndCounted()
    {
        // The control: the listener sees a probe that is allowed through, so the zero counts above mean something.
        await using var prober = new TcpConnectProber(new TcpConnectProberOptions());
        var before = Volatile.Read(ref _accepted);

        var sample = await prober.ProbeAsync(new ProbeTarget("listener", IPAddress.Loopback, ListenerPort), TimeSpan.FromSeconds(5));
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Volatile.Read(ref _accepted) == before && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sample.Status, Is.EqualTo(ProbeStatus.Ok));
            Assert.That(Volatile.Read(ref _accepted), Is.EqualTo(before + 1));
        }

        Interlocked.Exchange(ref _accepted, 0);
    }

    private static async Task AssertNothingSentAsync(IcmpProber prober, Func<int> samples)
    {
        // A probe that had left would be answered by loopback (Matched) or counted as a timeout.
        await Task.Delay(100);
        var c = prober.Counters;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(samples(), Is.Zero, "no sample delivered");
            Assert.That(c.Matched + c.TimedOut + c.Unreachable + c.Late + c.Unmatched, Is.Zero, "no probe went out");
        }
    }

    private static void RequireRoot()
    {
        if (OperatingSystem.IsLinux())
        {
            LabGate.RequireRoot("Raw ICMP sockets");
        }
        else
        {
            Assert.Ignore("The ICMP prober needs Linux.");
        }
    }
}
