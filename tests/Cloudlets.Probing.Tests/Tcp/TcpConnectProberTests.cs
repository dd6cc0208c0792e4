// Expected values written inline read better than hoisted fields in tests.
#pragma warning disable CA1861

using System.Net;
using System.Net.Sockets;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Tcp;

namespace Cloudlets.Probing.Tests.Tcp;

public class TcpConnectProberTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    [Test]
    public async Task ProbeAsync_ListeningLoopbackPort_ReturnsOk()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var prober = new TcpConnectProber(new TcpConnectProberOptions { VantagePoint = "test" });

        var sample = await prober.ProbeAsync(new ProbeTarget("lo", IPAddress.Loopback, port), Timeout);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sample.Status, Is.EqualTo(ProbeStatus.Ok));
            Assert.That(sample.RoundTripTime, Is.GreaterThan(TimeSpan.Zero).And.LessThan(Timeout));
        }
    }

    [Test]
    public async Task ProbeAsync_ClosedLoopbackPort_ReturnsUnreachable()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
        }

        await using var prober = new TcpConnectProber();

        var sample = await prober.ProbeAsync(new ProbeTarget("closed", IPAddress.Loopback, port), Timeout);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sample.Status, Is.EqualTo(ProbeStatus.Unreachable));
            Assert.That(sample.RoundTripTime, Is.Null);
        }
    }

    [Category("BadInput")]
    [TestCase(null)]
    [TestCase(0)]
    [TestCase(65536)]
    public async Task ProbeAsync_PortMissingOrOutOfRange_Throws(int? port)
    {
        await using var prober = new TcpConnectProber();

        Assert.That(async () => await prober.ProbeAsync(new ProbeTarget("x", IPAddress.Loopback, port), Timeout), Throws.ArgumentException);
    }

    [Test]
    public async Task RunAsync_Schedule_DeliversCountSamplesPerTarget()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(512);
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var prober = new TcpConnectProber();
        var samples = new List<LatencySample>();
        ProbeTarget[] targets = [new("a", IPAddress.Loopback, port), new("b", IPAddress.Loopback, port)];

        await prober.RunAsync(targets, new ProbeSchedule(3, TimeSpan.FromMilliseconds(5), TimeSpan.Zero, Timeout), samples.Add);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(samples, Has.Count.EqualTo(6));
            Assert.That(samples.Select(s => s.Status), Is.All.EqualTo(ProbeStatus.Ok));
            Assert.That(samples.Count(s => s.Target.Name == "a"), Is.EqualTo(3));
        }
    }

    [Category("BadInput")]
    [Test]
    public void Constructor_MaxInFlightZero_Throws()
        => Assert.That(() => new TcpConnectProber(new TcpConnectProberOptions { MaxInFlight = 0 }), Throws.TypeOf<OptionsValidationException>().With.Property("Errors").One.Property("Path").EqualTo("MaxInFlight"));

    [Category("BadInput")]
    [Test]
    public void ProbeAsync_TimeoutAboveTheLimit_ThrowsBeforeConnecting()
    {
        var prober = new TcpConnectProber();

        Assert.That(async () => await prober.ProbeAsync(new ProbeTarget("x", IPAddress.Loopback, 7), ProbeLimits.MaxTimeout + TimeSpan.FromTicks(1)),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("timeout"));
    }

    [Category("BadInput")]
    [Test]
    public void RunAsync_PeriodAboveTheLimit_ThrowsBeforeConnecting()
    {
        var prober = new TcpConnectProber();
        var schedule = new ProbeSchedule(1, TimeSpan.FromDays(2), TimeSpan.Zero, TimeSpan.FromSeconds(1));

        Assert.That(() => prober.RunAsync([new ProbeTarget("x", IPAddress.Loopback, 7)], schedule, _ => { }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("schedule.Period"));
    }
}
