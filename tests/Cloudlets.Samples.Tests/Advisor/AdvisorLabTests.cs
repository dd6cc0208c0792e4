using System.Text.Json;
using Cloudlets.Lab;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.Samples.Advisor;
using Cloudlets.TestUtils;

namespace Cloudlets.Samples.Tests.Advisor;

/// <summary>
/// The advisor against a real lab (in-process): two cloudlets, a guest on the far one (300 ms vs 20 ms
/// from the edge), the advisor in advisory mode for a bounded time. It must explain a move to the near
/// host and migrate nothing.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class AdvisorLabTests
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    [Test]
    public async Task RunAsync_AdvisoryAgainstShapedLab_ExplainsMoveAndMigratesNothing()
    {
        LabGate.Require();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await using var lab = await TestLabs.StartAsync("adv", hosts: 2, guestsOn: ["cloudlet-1"], cancellationToken: timeout.Token);
        var guest = lab.Guests[0];
        var folder = Directory.CreateTempSubdirectory("cloudlets-advisor-lab-").FullName;
        await using var shaper = await NetemShaperFactory.CreateAsync(cancellationToken: timeout.Token);
        try
        {
            await lab.ShapeAsync(shaper, [("cloudlet-1", TimeSpan.FromMilliseconds(300)), ("cloudlet-2", TimeSpan.FromMilliseconds(20))], timeout.Token);
            var path = Path.Combine(folder, "advisor.json");
            await File.WriteAllTextAsync(path, ConfigFor(lab, guest), timeout.Token);

            using var output = new StringWriter();
            using var error = new StringWriter();
            var code = await AdvisorProgram.RunAsync([path, "--duration", "12"], TextWriter.Synchronized(output), TextWriter.Synchronized(error), timeout.Token);
            var text = output.ToString();
            await TestContext.Out.WriteLineAsync(text);

            var placedOn = await lab.FindGuestHostAsync(guest, timeout.Token);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(code, Is.Zero, error.ToString());
                Assert.That(text, Does.Contain($"decision: MOVE {guest.Name} cloudlet-1 -> cloudlet-2 (gain "));
                Assert.That(text, Does.Match(@"Move from cloudlet-1 \(\d+\.\d ms\) to cloudlet-2 \(\d+\.\d ms\)"), "the move is explained with its figures");
                Assert.That(text, Does.Contain($"advice only: {guest.Name} is not migrated"));
                Assert.That(text, Does.Contain("moves advised, 0 migrations started (advisory mode: nothing was migrated)"));
                Assert.That(text, Does.Not.Contain("migration: "), "no migration outcome may be reported");
                Assert.That(placedOn?.Name, Is.EqualTo("cloudlet-1"), "the guest must stay where it was");
            }
        }
        finally
        {
            await lab.ClearShapingAsync(shaper, CancellationToken.None);
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string ConfigFor(CloudletLab lab, LabGuest guest)
    {
        // The lab's hosts are reachable only from inside the lab: probe and connect from the edge.
        var config = new
        {
            vantagePoints = new[] { new { name = "edge", networkNamespace = lab.Edge.Namespace } },
            hosts = lab.Hosts.Select(h => new
            {
                name = h.Name,
                uri = h.Uri.ToString(),
                networkNamespace = lab.Edge.Namespace,
                probe = new { address = h.Address.ToString() },
                migrationUri = h.MigrationUri.ToString(),
            }),
            vms = new[] { new { name = guest.Name, users = new[] { new { vantagePoint = "edge", weight = 1.0 } }, probe = new { address = guest.Address.ToString() } } },
            probing = new { periodSeconds = 0.5, timeoutSeconds = 1.5 },
            pipeline = new { evaluationIntervalSeconds = 1.0, placementRefreshIntervalSeconds = 2.0, sampleWindow = 6 },
            policy = new { confirmationWindows = 3, cooldownSeconds = 20.0, maxSampleAgeSeconds = 5.0 },
        };
        return JsonSerializer.Serialize(config, Indented);
    }
}
