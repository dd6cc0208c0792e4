using System.Globalization;
using System.Xml.Linq;
using Cloudlets.Samples.Demo;

namespace Cloudlets.Samples.Tests.Demo;

public sealed class SvgPlotTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static XDocument Render(Recorder recorder, double end = 20) =>
        XDocument.Parse(SvgPlot.Render(recorder, ["cloudlet-1", "cloudlet-2", "cloudlet-3"], "guest-1", end));

    [Test]
    public void Render_AnyRun_SetsTheViewBoxToTheDrawing()
    {
        var root = Render(new Recorder()).Root!;
        Assert.That(root.Attribute("viewBox")?.Value, Is.EqualTo(string.Create(CultureInfo.InvariantCulture, $"0 0 {SvgPlot.Width} {SvgPlot.Height}")));
    }

    [Test]
    public void Render_NoVmAndATitle_DrawsOnlyTheNamedSeriesUnderThatTitle()
    {
        var recorder = new Recorder();
        foreach (var t in new[] { 1.0, 1.5, 2.0 })
        {
            recorder.AddRtt(t, "guest-1", 40);
            recorder.AddRtt(t, "guest-2", 80);
        }

        var svg = XDocument.Parse(SvgPlot.Render(recorder, ["guest-1", "guest-2"], vmName: null, 3, "Each VM's users"));
        var texts = svg.Descendants(Svg + "text").Select(e => e.Value).ToList();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(texts[0], Is.EqualTo("Each VM's users"));
            Assert.That(texts, Does.Contain("guest-1").And.Contain("guest-2"));
            Assert.That(texts.Any(t => t.StartsWith("VM ", StringComparison.Ordinal)), Is.False, "no VM band in the legend");
            Assert.That(svg.Descendants(Svg + "polyline").Count(), Is.EqualTo(2), "a line per series");
        }
    }

    [Test]
    public void Render_LostProbe_BreaksTheLineAndMarksTheGap()
    {
        var recorder = new Recorder();
        for (var t = 0.0; t < 10; t += 0.5)
        {
            recorder.AddRtt(t, "cloudlet-1", t is 4 or 4.5 ? null : 300);
        }

        var svg = Render(recorder);
        var lines = svg.Descendants(Svg + "polyline").Where(e => e.Attribute("stroke")?.Value == SvgPlot.HostStyle(0).Color).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Has.Count.EqualTo(2), "the lost probes leave a gap between two lines");
            Assert.That(XOf(lines[0]).Max(), Is.LessThan(XOf(lines[1]).Min()), "the gap lies between them");
            Assert.That(svg.Descendants(Svg + "text").Count(e => e.Value == "×"), Is.EqualTo(2), "each lost probe is marked");
        }
    }

    [Test]
    public void Render_SilenceLongerThanTheGapBound_BreaksTheLine()
    {
        var recorder = new Recorder();
        recorder.AddRtt(1, "cloudlet-2", 20);
        recorder.AddRtt(2, "cloudlet-2", 20);
        recorder.AddRtt(2 + SvgPlot.MaxGapSeconds + 1, "cloudlet-2", 20);
        recorder.AddRtt(3 + SvgPlot.MaxGapSeconds + 1, "cloudlet-2", 20);

        var lines = Render(recorder).Descendants(Svg + "polyline").Count(e => e.Attribute("stroke")?.Value == SvgPlot.HostStyle(1).Color);
        Assert.That(lines, Is.EqualTo(2));
    }

    [Test]
    public void Render_OneAnswerBetweenLosses_IsADot()
    {
        var recorder = new Recorder();
        recorder.AddRtt(1, "vm", null);
        recorder.AddRtt(1.5, "vm", 21);
        recorder.AddRtt(2, "vm", null);

        Assert.That(Render(recorder).Descendants(Svg + "circle").Count(), Is.EqualTo(1));
    }

    [Test]
    public void HostStyle_EachHost_DiffersInColourAndDashFromTheOthersAndFromTheVm()
    {
        var styles = Enumerable.Range(0, 3).Select(SvgPlot.HostStyle).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(styles.Select(s => s.Color).Distinct().Count(), Is.EqualTo(3));
            Assert.That(styles.Select(s => s.Dash).Distinct().Count(), Is.EqualTo(3), "hosts at the same RTT (20 and 20 ms) stay apart by their dashes");
            Assert.That(SvgPlot.VmStyle.Width, Is.GreaterThan(styles.Max(s => s.Width)), "the VM's band is wider than the host line it covers");
            Assert.That(SvgPlot.VmStyle.Opacity, Is.LessThan(1), "and pale, so the host line shows through");
        }
    }

    [Test]
    public void Render_Series_DrawsTheVmBeforeTheHosts()
    {
        var recorder = new Recorder();
        foreach (var series in new[] { "cloudlet-1", "cloudlet-2", "vm" })
        {
            recorder.AddRtt(1, series, 20);
            recorder.AddRtt(2, series, 20);
        }

        var strokes = Render(recorder).Descendants(Svg + "polyline").Select(e => e.Attribute("stroke")!.Value).ToList();
        Assert.That(strokes, Is.EqualTo(new[] { SvgPlot.VmStyle.Color, SvgPlot.HostStyle(0).Color, SvgPlot.HostStyle(1).Color }));
    }

    [Test]
    public void LayOutLabels_CloseMarkers_PutsTheLabelsInDifferentRows()
    {
        var placed = SvgPlot.LayOutLabels([(100, "act 1: 300 / 20 / 20 ms", "#666"), (110, "migration cloudlet-1 → cloudlet-2 (succeeded)", "#d62728"), (120, "act 2", "#666")], 64, 770, 60);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(placed.Select(p => p.Y).Distinct().Count(), Is.EqualTo(3), "three overlapping labels, three rows");
            Assert.That(placed.Min(p => p.Y), Is.EqualTo(60));
            AssertNoTwoOverlap(placed);
        }
    }

    [Test]
    public void LayOutLabels_FarApartMarkers_ShareTheFirstRow()
    {
        var placed = SvgPlot.LayOutLabels([(100, "act 1", "#666"), (400, "act 2", "#666")], 64, 770, 60);
        Assert.That(placed.Select(p => p.Y), Is.EqualTo(new[] { 60.0, 60.0 }));
    }

    [Test]
    public void LayOutLabels_MarkerNearTheRightEdge_EndsTheLabelLeftOfIt()
    {
        var label = SvgPlot.LayOutLabels([(760, "migration cloudlet-2 → cloudlet-3 (succeeded)", "#d62728")], 64, 770, 60).Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(label.Anchor, Is.EqualTo("end"));
            Assert.That(label.To, Is.LessThanOrEqualTo(770));
            Assert.That(label.From, Is.GreaterThanOrEqualTo(64));
        }
    }

    [Test]
    public void Render_ManyCloseLabels_NoTwoLabelsOverlap()
    {
        var recorder = new Recorder();
        recorder.AddStep(0.5, "act 1: 300 / 20 / 20 ms");
        recorder.AddMigration(new MigrationRecord("cloudlet-1", "cloudlet-2", 6, 10, 4000, 200, "succeeded", null, 0));
        recorder.AddStep(11, "act 2: cloudlet-2 300 ms");
        recorder.AddMigration(new MigrationRecord("cloudlet-2", "cloudlet-3", 14, 19, 4000, 200, "succeeded", null, 0));

        var labels = Render(recorder).Descendants(Svg + "text")
            .Where(e => e.Value.StartsWith("act", StringComparison.Ordinal) || e.Value.StartsWith("migration", StringComparison.Ordinal))
            .Select(e => (Y: double.Parse(e.Attribute("y")!.Value, CultureInfo.InvariantCulture), Text: e.Value))
            .ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(labels, Has.Count.EqualTo(4));
            Assert.That(labels.Select(l => l.Y).Distinct().Count(), Is.GreaterThan(1), "labels 0.5 to 19 s apart on a 20 s axis cannot share one row");
        }
    }

    private static void AssertNoTwoOverlap(IReadOnlyList<SvgPlot.PlacedLabel> placed)
    {
        for (var i = 0; i < placed.Count; i++)
        {
            for (var j = i + 1; j < placed.Count; j++)
            {
                var (a, b) = (placed[i], placed[j]);
                var apart = a.Y != b.Y || a.To <= b.From || b.To <= a.From;
                Assert.That(apart, Is.True, $"'{a.Text}' and '{b.Text}' overlap");
            }
        }
    }

    private static IEnumerable<double> XOf(XElement polyline) =>
        polyline.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => double.Parse(p.Split(',')[0], CultureInfo.InvariantCulture));
}
