using Cloudlets.Simulation;

namespace Cloudlets.Simulation.Tests;

public class TraceCsvTests
{
    private static LatencyTrace Read(string text) => TraceCsv.Read(new StringReader(text), "t.csv");

    [Test]
    public void Read_VersionHeaderAndLostProbe_ReadsEverySample()
    {
        var trace = Read("# cloudlets-trace v1\nt,vantagePoint,host,rttMs\n0,u,a,12.5\n0,u,b,\n\n5,u,a,13\n");
        Assert.That(trace.Samples, Is.EqualTo(new[]
        {
            new TraceSample(0, "u", "a", 12.5),
            new TraceSample(0, "u", "b", null),
            new TraceSample(5, "u", "a", 13),
        }));
    }

    [Test]
    public void WriteThenRead_RoundTrips()
    {
        var trace = new LatencyTrace([new TraceSample(0, "u", "a", 1.25), new TraceSample(2.5, "v", "b", null)]);
        var text = new StringWriter();
        TraceCsv.Write(text, trace);
        Assert.That(Read(text.ToString()).Samples, Is.EqualTo(trace.Samples));
    }

    [TestCase("t,vp,host,rtt\n", 1, "header")]
    [TestCase("# cloudlets-trace v2\nt,vantagePoint,host,rttMs\n", 1, "version")]
    [TestCase("t,vantagePoint,host,rttMs\n0,u,a,1\nx,u,a,1\n", 3, "t")]
    [TestCase("t,vantagePoint,host,rttMs\n-1,u,a,1\n", 2, "t")]
    [TestCase("t,vantagePoint,host,rttMs\n5,u,a,1\n4,u,a,1\n", 3, "t")]
    [TestCase("t,vantagePoint,host,rttMs\n0,,a,1\n", 2, "vantagePoint")]
    [TestCase("t,vantagePoint,host,rttMs\n0,u,,1\n", 2, "host")]
    [TestCase("t,vantagePoint,host,rttMs\n0,u,a,fast\n", 2, "rttMs")]
    [TestCase("t,vantagePoint,host,rttMs\n0,u,a,-3\n", 2, "rttMs")]
    [TestCase("t,vantagePoint,host,rttMs\n0,u,a\n", 2, "rttMs")]
    [TestCase("t,vantagePoint,host,rttMs\n0,u,a,1,2\n", 2, "rttMs")]
    [TestCase("", 1, "header")]
    public void Read_BadInput_ThrowsWithLineAndField(string text, int line, string field)
    {
        var ex = Assert.Throws<TraceFormatException>(() => Read(text));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((ex.Line, ex.Field), Is.EqualTo(((long)line, field)));
            Assert.That(ex.Message, Does.StartWith($"t.csv, line {line}, field {field}: "));
        }
    }

    [Test]
    public void Timeline_HostNotInFleet_ThrowsNamingTheLine()
    {
        var trace = new LatencyTrace([new TraceSample(0, "u", "a", 1), new TraceSample(0, "u", "nowhere", 1)]);
        var ex = Assert.Throws<TraceFormatException>(() => new TraceTimeline(Fleets.TwoHosts(), trace));
        Assert.That((ex.Line, ex.Field), Is.EqualTo((4L, "host")));
    }

    [Test]
    public void WriteSample_NameWithComma_Throws() =>
        Assert.That(() => TraceCsv.WriteSample(new StringWriter(), new TraceSample(0, "u,1", "a", 1)), Throws.ArgumentException);
}

public class TraceRecorderTests
{
    [Test]
    public void Flush_SamplesOutOfOrder_WritesATraceInTimeOrderThatReadsBack()
    {
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var a = new Cloudlets.Core.Probing.ProbeTarget("a", System.Net.IPAddress.Loopback);
        var text = new StringWriter();
        using (var recorder = new TraceRecorder(text, start))
        {
            recorder.OnNext(new("e", a, start.AddSeconds(2), TimeSpan.FromMilliseconds(20.5), Cloudlets.Core.Probing.ProbeStatus.Ok));
            recorder.OnNext(new("e", a, start.AddSeconds(1), null, Cloudlets.Core.Probing.ProbeStatus.Timeout));
            recorder.OnNext(new("e", a, start.AddSeconds(-1), TimeSpan.FromMilliseconds(1), Cloudlets.Core.Probing.ProbeStatus.Ok));
        }

        Assert.That(TraceCsv.Read(new StringReader(text.ToString())).Samples, Is.EqualTo(new[]
        {
            new TraceSample(1, "e", "a", null),
            new TraceSample(2, "e", "a", 20.5),
        }));
    }
}
