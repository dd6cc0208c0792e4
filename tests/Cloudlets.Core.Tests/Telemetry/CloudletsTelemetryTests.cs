using System.Diagnostics;
using System.Diagnostics.Metrics;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Telemetry;
using Cloudlets.Core.Tests.Pipeline;

namespace Cloudlets.Core.Tests.Telemetry;

[NonParallelizable] // The meter and the activity source are process-wide.
public class CloudletsTelemetryTests
{
    [Test]
    public void Names_MeterAndActivitySource_AreTheLibraryName()
    {
        Assert.That((CloudletsTelemetry.Meter.Name, CloudletsTelemetry.ActivitySource.Name), Is.EqualTo(("Cloudlets.Core", "Cloudlets.Core")));
    }

    [Test]
    public async Task Instruments_PipelineRun_RecordsDecisionsMigrationsDurationAndGain()
    {
        var measurements = new List<(string Instrument, double Value, string? Tag)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == CloudletsTelemetry.Meter)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? tag = null;
            foreach (var t in tags)
            {
                if (t.Key is CloudletsTelemetry.Tags.DecisionReason or CloudletsTelemetry.Tags.Outcome)
                {
                    tag = t.Value?.ToString();
                }
            }

            lock (measurements)
            {
                measurements.Add((instrument.Name, value, tag));
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        var activities = new List<string>();
        using var activityListener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == CloudletsTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = a => { lock (activities) { activities.Add(a.OperationName); } },
        };
        ActivitySource.AddActivityListener(activityListener);

        await using (var fleet = TraceFleet.Start(PipelineMode.Automatic, p => p.ConfirmationWindows = 1))
        {
            fleet.Replay(TimeSpan.FromSeconds(40), (t, host) => host == "a" ? 300 : 20);
        }

        listener.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(measurements, Has.Some.EqualTo(("cloudlets.decisions", 1.0, "Move")));
            Assert.That(measurements, Has.Some.EqualTo(("cloudlets.migrations", 1.0, "Succeeded")));
            Assert.That(measurements.Any(m => m.Instrument == "cloudlets.migration.duration"), Is.True);
            Assert.That(measurements.Where(m => m.Instrument == "cloudlets.latency.gain").Select(m => m.Value), Has.Some.EqualTo(280));
            Assert.That(activities, Does.Contain("cloudlets.evaluate").And.Contain("cloudlets.migrate"));
        }
    }
}
