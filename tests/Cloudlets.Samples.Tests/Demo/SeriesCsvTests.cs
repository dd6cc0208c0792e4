using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

public sealed class SeriesCsvTests
{
    [Test]
    public void Write_Points_OneRowEachInTimeOrderWithLostProbesEmpty()
    {
        var recorder = new Recorder();
        recorder.AddRtt(1.5, "vm", 301.25);
        recorder.AddRtt(0.5, "cloudlet-1", 300.4);
        recorder.AddRtt(1.5, "cloudlet-2", null);

        using var writer = new StringWriter();
        SeriesCsv.Write(writer, recorder.Points);
        Assert.That(writer.ToString(), Is.EqualTo("seconds,series,rtt_ms\n0.500,cloudlet-1,300.4\n1.500,cloudlet-2,\n1.500,vm,301.25\n"));
    }

    [Test]
    public void Write_NameWithComma_IsQuoted()
    {
        using var writer = new StringWriter();
        SeriesCsv.Write(writer, [new RttPoint(1, "a,\"b\"", 2)]);
        Assert.That(writer.ToString().Split('\n')[1], Is.EqualTo("1.000,\"a,\"\"b\"\"\",2"));
    }

    [Test]
    public void Write_NoPoints_IsTheHeaderOnly()
    {
        using var writer = new StringWriter();
        SeriesCsv.Write(writer, []);
        Assert.That(writer.ToString(), Is.EqualTo(SeriesCsv.Header + "\n"));
    }
}
