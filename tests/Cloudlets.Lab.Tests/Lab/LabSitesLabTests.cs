using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Cloudlets.Core.Probing;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.Probing.Commands;
using Cloudlets.Probing.Icmp;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>
/// A real lab of 2 hosts and 2 sites (issue 14, users in many places): each site is its own namespace
/// and subnet on the lab switch and reaches every host and the guest; a latency matrix gives each (site, host) pair
/// its own delay, measured with the library's ICMP prober from each site's namespace, while host-to-host
/// traffic stays unshaped; the teardown removes the site namespaces and leaves a foreign namespace with
/// a site's name alone.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class LabSitesLabTests
{
    private const int WarmUp = 5;

    // Odd, so the median is one sample.
    private const int Measured = 25;

    private CloudletLab? _lab;
    private INetemShaper? _shaper;
    private ForeignObjects? _decoy;
    private bool _stopped;

    private CloudletLab Lab => _lab ?? throw new InvalidOperationException("no lab");

    private INetemShaper Shaper => _shaper ?? throw new InvalidOperationException("no shaper");

    [OneTimeSetUp]
    public async Task StartLabAsync()
    {
        LabGate.Require();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var name = TestLabs.UniqueName("sites");
        // A namespace with the name a third site would have, made by somebody else before the lab starts.
        _decoy = await ForeignObjects.CreateAsync(LabNaming.SiteNamespace(name, 3));
        _lab = new CloudletLabBuilder().WithName(name).WithHosts(2).WithSites(2).WithGuestOn("cloudlet-1").Build();
        try
        {
            await _lab.StartAsync(timeout.Token);
        }
        catch
        {
            await _lab.DisposeAsync();
            _lab = null;
            throw;
        }

        _shaper = await NetemShaperFactory.CreateAsync(cancellationToken: timeout.Token);
    }

    [OneTimeTearDown]
    public async Task StopLabAsync()
    {
        if (_shaper is not null)
        {
            if (_lab is not null && !_stopped)
            {
                await _lab.ClearShapingAsync(_shaper);
            }

            await _shaper.DisposeAsync();
        }

        if (_lab is not null)
        {
            await _lab.DisposeAsync();
        }

        if (_decoy is not null)
        {
            await _decoy.DisposeAsync();
        }
    }

    [Test]
    [Order(1)]
    public async Task Start_TwoSites_StatusAndStateListEachSiteWithItsNamespaceAndAddress()
    {
        var k = Lab.Plan.Subnet;
        var status = await Lab.GetStatusAsync();
        using var json = JsonDocument.Parse(status.ToJson());
        var sites = json.RootElement.GetProperty("sites").EnumerateArray()
            .Select(s => (s.GetProperty("name").GetString(), s.GetProperty("namespace").GetString(), s.GetProperty("address").GetString()))
            .ToList();
        var state = new LabPaths(LabPaths.DefaultRoot).TryReadState(Lab.Name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sites, Is.EqualTo(new[]
            {
                ("site-1", Lab.Name + "-edge", $"198.18.{k}.1"),
                ("site-2", Lab.Name + "-s2", $"198.19.{k}.17"),
            }));
            Assert.That(state?.Sites.Select(s => (s.Name, s.Namespace, s.Address)), Is.EqualTo(new[]
            {
                ("site-1", Lab.Name + "-edge", $"198.18.{k}.1"),
                ("site-2", Lab.Name + "-s2", $"198.19.{k}.17"),
            }));
            Assert.That(Lab.OwnedNamespaces.Select(n => n.Name), Does.Contain(Lab.Name + "-s2").And.Not.Contain(Lab.Name + "-s3"));
        }
    }

    [Test]
    [Order(2)]
    public async Task ShapeMatrix_TwoSitesTwoHosts_EachPairHasItsDelayAndHostToHostIsUnshaped()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        int[,] delays = { { 20, 300 }, { 300, 20 } };   // [site, host]
        var matrix = new List<LabSiteDelay>();
        for (var s = 0; s < 2; s++)
        {
            for (var h = 0; h < 2; h++)
            {
                matrix.Add(new LabSiteDelay(Lab.Sites[s].Name, Lab.Hosts[h].Name, TimeSpan.FromMilliseconds(delays[s, h])));
            }
        }

        var hosts = Lab.Hosts.Select(h => new ProbeTarget(h.Name, h.Address)).ToArray();
        var peer = new[] { new ProbeTarget("cloudlet-2 from cloudlet-1", Lab.Hosts[1].Address) };
        await Lab.ClearShapingAsync(Shaper, timeout.Token);
        var baseline = new Dictionary<string, Dictionary<string, double>>();
        foreach (var site in Lab.Sites)
        {
            baseline[site.Name] = await MeasureAsync(site.Namespace, hosts, timeout.Token);
        }

        var basePeer = await MeasureAsync(Lab.Hosts[0].Namespace, peer, timeout.Token);

        var state = await Lab.ShapeMatrixAsync(Shaper, matrix, timeout.Token);
        var shaped = new Dictionary<string, Dictionary<string, double>>();
        foreach (var site in Lab.Sites)
        {
            shaped[site.Name] = await MeasureAsync(site.Namespace, hosts, timeout.Token);
        }

        var shapedPeer = await MeasureAsync(Lab.Hosts[0].Namespace, peer, timeout.Token);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(state.Rules.Select(r => r.Name), Is.EquivalentTo(new[] { "site-1_cloudlet-1", "site-1_cloudlet-2", "site-2_cloudlet-1", "site-2_cloudlet-2" }));
            for (var s = 0; s < 2; s++)
            {
                for (var h = 0; h < 2; h++)
                {
                    var (site, host, delay) = (Lab.Sites[s].Name, Lab.Hosts[h].Name, delays[s, h]);
                    var expected = baseline[site][host] + delay;
                    var tolerance = 1 + (0.02 * delay);
                    TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{site} -> {host}: delay {delay} ms, baseline median {baseline[site][host]:0.000} ms, shaped median {shaped[site][host]:0.000} ms, error {shaped[site][host] - expected:+0.000;-0.000} ms (tolerance {tolerance:0.00})"));
                    Assert.That(shaped[site][host], Is.EqualTo(expected).Within(tolerance), $"{site} -> {host}: median RTT = baseline + {delay} ms within 1 ms + 2 %");
                }
            }

            var peerName = peer[0].Name;
            TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{peerName}: baseline median {basePeer[peerName]:0.000} ms, shaped median {shapedPeer[peerName]:0.000} ms"));
            Assert.That(shapedPeer[peerName], Is.EqualTo(basePeer[peerName]).Within(1.0), "host-to-host traffic is not shaped by the matrix");
        }
    }

    [Test]
    [Order(3)]
    public async Task Guest_TwoSites_AnswersFromEverySiteWithItsHostsDelay()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var guest = Lab.Guests[0];
        var target = new[] { new ProbeTarget(guest.Name, guest.Address) };
        await Lab.ClearShapingAsync(Shaper, timeout.Token);
        var baseline = new Dictionary<string, double>();
        foreach (var site in Lab.Sites)
        {
            baseline[site.Name] = (await MeasureAsync(site.Namespace, target, timeout.Token))[guest.Name];
        }

        // The guest runs on cloudlet-1: near site-1, far from site-2.
        await Lab.ShapeMatrixAsync(Shaper, [new LabSiteDelay("site-1", "cloudlet-1", TimeSpan.FromMilliseconds(20)), new LabSiteDelay("site-2", "cloudlet-1", TimeSpan.FromMilliseconds(300))], timeout.Token);
        var shaped = new Dictionary<string, double>();
        foreach (var site in Lab.Sites)
        {
            // site-2 has its own subnet: the guest answers through its on-link route to the sites' subnets.
            shaped[site.Name] = (await MeasureAsync(site.Namespace, target, timeout.Token))[guest.Name];
        }

        using (Assert.EnterMultipleScope())
        {
            foreach (var (site, delay) in new[] { ("site-1", 20), ("site-2", 300) })
            {
                // The guest is emulated (QEMU TCG): its replies come late now and then, hence the wider slack of DelayAssert.
                DelayAssert.AppliedOnce(shaped[site], baseline[site], delay, $"{site} -> {guest.Name} on cloudlet-1");
            }
        }
    }

    [Test]
    [Order(4)]
    public async Task ShapeMatrix_UnknownSite_ThrowsBeforeAnythingIsApplied()
    {
        await Lab.ClearShapingAsync(Shaper);
        var ex = Assert.ThrowsAsync<ShapingValidationException>(() => Lab.ShapeMatrixAsync(Shaper, [
            new LabSiteDelay("site-1", "cloudlet-1", TimeSpan.FromMilliseconds(50)),
            new LabSiteDelay("site-3", "cloudlet-1", TimeSpan.FromMilliseconds(50)),
        ]));
        var state = await Lab.ShowShapingAsync(Shaper);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Field, Is.EqualTo("Site"));
            Assert.That(state.Rules, Is.Empty, "nothing was applied");
        }
    }

    [Test]
    [Order(5)]
    public async Task SampleShapeMatrix_ForSeconds_MeasuresEachPairFromItsSiteThenClears()
    {
        var file = Path.Combine(Path.GetTempPath(), Lab.Name + "-matrix.json");
        await File.WriteAllTextAsync(file, """
            {"delays": [
              {"site": "site-1", "host": "cloudlet-1", "delayMs": 20},
              {"site": "site-1", "host": "cloudlet-2", "delayMs": 300},
              {"site": "site-2", "host": "cloudlet-1", "delayMs": 300},
              {"site": "site-2", "host": "cloudlet-2", "delayMs": 20}
            ]}
            """);
        try
        {
            await Lab.ClearShapingAsync(Shaper);
            // One round of the sample's measurements (5 probes per pair, one at a time) takes about 3.5 s here.
            var result = await LabSample.RunAsync("shape", "--matrix", file, "--for", "6", "--name", Lab.Name);
            var after = await Lab.ShowShapingAsync(Shaper);
            TestContext.Out.WriteLine(result.StandardOutput);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(result.ExitCode, Is.Zero, result.StandardError);
                foreach (var (site, host, delay) in new[] { ("site-1", "cloudlet-1", 20), ("site-1", "cloudlet-2", 300), ("site-2", "cloudlet-1", 300), ("site-2", "cloudlet-2", 20) })
                {
                    var rtt = MeasuredRtt(result.StandardOutput, site, host);
                    // The sample prints the RTT, not the baseline: an unshaped lab path is well under 1 ms.
                    DelayAssert.AppliedOnce(rtt, 1, delay, $"{site} -> {host} through cloudlet-lab shape --matrix");
                }

                Assert.That(result.StandardOutput, Does.Contain("shaping cleared"));
                Assert.That(after.Rules, Is.Empty, "the hold ended and cleared the matrix");
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    [Order(6)]
    public async Task SampleShapeMatrix_SiteTheLabDoesNotHave_ExitsTwoAndAppliesNothing()
    {
        var file = Path.Combine(Path.GetTempPath(), Lab.Name + "-matrix-bad.json");
        await File.WriteAllTextAsync(file, """{"delays": [{"site": "site-1", "host": "cloudlet-1", "delayMs": 50}, {"site": "site-3", "host": "cloudlet-2", "delayMs": 50}]}""");
        try
        {
            await Lab.ClearShapingAsync(Shaper);
            var result = await LabSample.RunAsync("shape", "--matrix", file, "--for", "3", "--name", Lab.Name);
            var after = await Lab.ShowShapingAsync(Shaper);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(result.ExitCode, Is.EqualTo(2), result.StandardError);
                Assert.That(result.StandardError, Does.Contain("Site: 'site-3' is not a site of lab"));
                Assert.That(after.Rules, Is.Empty, "nothing was applied");
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The RTT the sample printed for a (site, host) pair: <c>site-1  -> cloudlet-1 198.18.K.11 injected 20 ms measured RTT 20.12 ms</c>.</summary>
    private static double MeasuredRtt(string output, string site, string host)
    {
        var line = output.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith(site + " ", StringComparison.Ordinal) && l.Contains("-> " + host + " ", StringComparison.Ordinal) && l.Contains("measured RTT", StringComparison.Ordinal));
        var text = line?.Split("measured RTT")[1].Trim().Replace(" ms", "", StringComparison.Ordinal);
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) ? ms : double.NaN;
    }

    [Test]
    [Order(100)]
    public async Task Stop_TwoSites_RemovesTheSiteNamespacesAndLeavesTheForeignOneAlone()
    {
        await Lab.ClearShapingAsync(Shaper);
        _stopped = true;
        await Lab.StopAsync();
        var leftovers = CloudletLab.FindLeftovers(Lab.Name);
        var changed = await _decoy!.ChangedAsync();
        using (Assert.EnterMultipleScope())
        {
            // The foreign namespace has a lab name, so the read-only check lists it (and the mounts of its name); nothing else is left.
            Assert.That(leftovers, Does.Contain("network namespace " + _decoy.Namespace));
            Assert.That(leftovers.Where(l => !l.Contains(_decoy.Namespace + " ", StringComparison.Ordinal) && !l.EndsWith(_decoy.Namespace, StringComparison.Ordinal)), Is.Empty, "nothing of the lab is left");
            Assert.That(Ownership.LabOwnership.NamespaceInode(Lab.Name + "-s2"), Is.Zero, "site-2's namespace is gone");
            Assert.That(changed, Is.Empty, "the foreign namespace and what is in it were not touched");
        }
    }

    /// <summary>The median RTT per target of <see cref="Measured"/> ICMP probes sent from a namespace (after <see cref="WarmUp"/>); every probe must answer.</summary>
    private static async Task<Dictionary<string, double>> MeasureAsync(string networkNamespace, ProbeTarget[] targets, CancellationToken cancellationToken)
    {
        await using var prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = networkNamespace, NetworkNamespace = networkNamespace });
        var samples = new ConcurrentQueue<LatencySample>();
        var schedule = new ProbeSchedule(WarmUp + Measured, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(2));
        await prober.RunAsync(targets, schedule, samples.Enqueue, cancellationToken);
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var target in targets)
        {
            var rtts = samples.Where(s => s.Target.Name == target.Name).OrderBy(s => s.SentAt).Skip(WarmUp)
                .Where(s => s.Status == ProbeStatus.Ok).Select(s => s.RoundTripTime!.Value.TotalMilliseconds).Order().ToArray();
            Assert.That(rtts, Has.Length.EqualTo(Measured), $"every probe from {networkNamespace} to {target} answered");
            result[target.Name] = rtts.Length == 0 ? double.NaN : rtts[rtts.Length / 2];
        }

        return result;
    }
}
