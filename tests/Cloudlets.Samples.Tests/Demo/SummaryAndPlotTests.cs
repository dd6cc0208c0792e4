using System.Text.Json;
using System.Xml.Linq;
using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

public sealed class SummaryAndPlotTests
{
    [Test]
    public void ToJson_Summary_HasTheDocumentedShape()
    {
        var summary = new Summary("guest-1", "cloudlet-1", "cloudlet-2",
            [new SummaryHost("cloudlet-1", 300, 300.2), new SummaryHost("cloudlet-2", 20, null)],
            [new SummaryMigration("cloudlet-1", "cloudlet-2", 4986.4, 245, "succeeded", null, 7)],
            new SummaryServiceRtt(301.4, 21.0));

        using var json = JsonDocument.Parse(summary.ToJson());
        var root = json.RootElement;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "vm", "initialHost", "finalHost", "hosts", "migrations", "serviceRttMs" }));
            Assert.That(root.GetProperty("hosts")[0].EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "injectedDelayMs", "measuredRttMs" }));
            Assert.That(root.GetProperty("hosts")[1].GetProperty("measuredRttMs").ValueKind, Is.EqualTo(JsonValueKind.Null), "a host that never answered has no RTT, not 0");
            Assert.That(root.GetProperty("migrations")[0].EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "from", "to", "totalMs", "downtimeMs", "outcome", "error", "progressValues" }));
            Assert.That(root.GetProperty("serviceRttMs").GetProperty("before").GetDouble(), Is.EqualTo(301.4));
            Assert.That(root.GetProperty("serviceRttMs").GetProperty("after").GetDouble(), Is.EqualTo(21.0));
        }
    }

    [Test]
    public void Render_RecordedRun_IsWellFormedSvgWithSeriesAndMarkers()
    {
        var recorder = new Recorder();
        for (var t = 0; t < 20; t++)
        {
            recorder.AddRtt(t, "cloudlet-1", 300 + (t % 2));
            recorder.AddRtt(t, "cloudlet-2", 20);
            recorder.AddRtt(t, "vm", t < 10 ? 301 : 21);
        }

        recorder.AddRtt(9.5, "vm", null);
        recorder.AddStep(0.5, "300 / 20 ms");
        recorder.AddMigration(new MigrationRecord("cloudlet-1", "cloudlet-2", 6, 10, 4000, 200, "succeeded", null, 0));

        var svg = XDocument.Parse(SvgPlot.Render(recorder, ["cloudlet-1", "cloudlet-2"], "guest-1", 20));
        XNamespace ns = "http://www.w3.org/2000/svg";
        var texts = svg.Descendants(ns + "text").Select(e => e.Value).ToList();
        using (Assert.EnterMultipleScope())
        {
            // Two hosts, and the VM's line broken once by the lost probe.
            Assert.That(svg.Descendants(ns + "polyline").Count(), Is.EqualTo(4));
            Assert.That(texts, Has.Some.Contains("migration cloudlet-1 → cloudlet-2 (succeeded)"));
            Assert.That(texts, Has.Some.EqualTo("300 / 20 ms"));
            Assert.That(texts, Has.Some.EqualTo("VM guest-1"));
        }
    }

    [Test]
    public void MedianRtt_IgnoresLostProbesAndOtherSeries()
    {
        var recorder = new Recorder();
        recorder.AddRtt(1, "vm", 10);
        recorder.AddRtt(2, "vm", null);
        recorder.AddRtt(3, "vm", 30);
        recorder.AddRtt(4, "vm", 20);
        recorder.AddRtt(4, "cloudlet-1", 1000);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(recorder.MedianRtt("vm", 0, 10), Is.EqualTo(20));
            Assert.That(recorder.MedianRtt("vm", 1, 3.5), Is.EqualTo(20), "10 and 30: the mean of the middle two");
            Assert.That(recorder.MedianRtt("vm", 5, 10), Is.Null, "no answer is no RTT, not 0");
        }
    }
}
