using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.Controller.Tests.Tool;
using Cloudlets.TestUtils;

namespace Cloudlets.Controller.Tests.Lab;

/// <summary>
/// cloudlets-controller as a child process, in automatic mode, against a real 3-host lab (libvirtd +
/// QEMU in namespaces) with two guests, the users' latency shaped to 300/20/60 ms; a real Prometheus
/// scrapes it. The first guest starts on cloudlet-1, the second (its partner) on cloudlet-3, and an
/// anti-affinity group keeps them apart: both want cloudlet-2, only one may have it. The partner starts
/// pinned (configuration), so the first guest takes cloudlet-2; which one would confirm its move first
/// is otherwise a race of the probes. One lab and one boot of each guest for the whole fixture; the tests
/// run in order on the same controller: the first guest's move to the nearest host, the partner unpinned
/// and held back by the rule, the scrape, drain (the first guest must go to the far cloudlet-1, as its
/// partner holds cloudlet-3), pin (the partner takes cloudlet-2 meanwhile; unpinned, the first guest goes
/// to cloudlet-3), SIGTERM during a migration, the audit log, and the pair's placement as the hosts showed
/// it, sampled over the whole run.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class ControllerLabTests : LabFixture
{
    private const string Token = "lab-operator-token-0123456789abcdef";
    private static readonly TimeSpan MoveBound = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan HoldWatch = TimeSpan.FromSeconds(10);

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    private const string AntiAffinityGroup = "spread";

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };
    private PlacementSampler? _sampler;
    private string _folder = "";
    private string _audit = "";
    private string _base = "";
    private INetemShaper? _shaper;
    private ControllerProcess? _controller;
    private PrometheusServer? _prometheus;

    protected override string LabPrefix => "ctl";

    protected override int LabHosts => 3;

    protected override IReadOnlyList<string> LabGuestsOn => ["cloudlet-1", "cloudlet-3"];

    /// <summary>The first guest (on cloudlet-1 at the start), which the tests move about.</summary>
    private LabGuest Guest => Lab.Guests[0];

    /// <summary>The other member of the anti-affinity pair (on cloudlet-3 at the start, pinned until the second test).</summary>
    private LabGuest Partner => Lab.Guests[1];

    private readonly StorySteps _story = new(nameof(ControllerLabTests));

    [OneTimeSetUp]
    public async Task StartControllerAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        _folder = Directory.CreateTempSubdirectory("cloudlets-controller-lab-").FullName;
        _audit = Path.Combine(_folder, "audit.jsonl");
        _shaper = await NetemShaperFactory.CreateAsync(cancellationToken: timeout.Token);
        await Lab.ShapeAsync(_shaper, [("cloudlet-1", TimeSpan.FromMilliseconds(300)), ("cloudlet-2", TimeSpan.FromMilliseconds(20)), ("cloudlet-3", TimeSpan.FromMilliseconds(60))], timeout.Token);

        var port = ControllerProcess.FreePort();
        _base = $"http://127.0.0.1:{port}";
        var config = Path.Combine(_folder, "controller.json");
        var rules = new { PinnedVms = new[] { Partner.Name }, AntiAffinityGroups = new[] { new { Name = AntiAffinityGroup, Vms = new[] { Guest.Name, Partner.Name } } } };
        await File.WriteAllTextAsync(config, ConfigFor(Lab, [Guest, Partner], port, _audit, rules: rules), timeout.Token);
        _sampler = await PlacementSampler.StartAsync(Lab, [Guest.Name, Partner.Name], timeout.Token);
        _controller = ControllerProcess.Start("--config", config);
        _prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{port}", timeout.Token);
    }

    [OneTimeTearDown]
    public async Task StopControllerAsync()
    {
        if (_sampler is not null)
        {
            await _sampler.DisposeAsync();
        }

        if (_controller is not null)
        {
            await TestContext.Out.WriteLineAsync(_controller.Output);
            await _controller.DisposeAsync();
        }

        if (_prometheus is not null)
        {
            await _prometheus.DisposeAsync();
        }

        if (File.Exists(_audit))
        {
            await TestContext.Out.WriteLineAsync(await File.ReadAllTextAsync(_audit));
        }

        if (_shaper is not null)
        {
            await Lab.ClearShapingAsync(_shaper, CancellationToken.None);
            await _shaper.DisposeAsync();
        }

        _http.Dispose();
        if (_folder.Length > 0)
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Test]
    [Order(1)]
    public async Task Controller_ShapedLab_HealthyAndMovesGuestToNearestHost()
    {
        _story.Enter(1);
        var (_, health) = await ControllerProcessTests.WaitForAsync(
            _http, _base + "/healthz", (s, b) => s == HttpStatusCode.OK && b.Contains("\"status\":\"Healthy\"", StringComparison.Ordinal), _controller!, TimeSpan.FromSeconds(90));
        await WaitGuestOnAsync(Guest, "cloudlet-2");
        Assert.That(JsonDocument.Parse(health).RootElement.GetProperty("checks").GetProperty("hosts").GetProperty("status").GetString(), Is.EqualTo("Healthy"));
    }

    [Test]
    [Order(2)]
    public async Task AntiAffinity_PartnerOnTheBestHost_HoldsTheOtherBackAndTheDecisionNamesTheRule()
    {
        _story.Enter(2);
        // Unpinned, the partner (on cloudlet-3, 60 ms) would gain 40 ms on cloudlet-2, where the first guest now runs.
        var (unpinned, unpinnedBody) = await PostAsync($"/api/v1/vms/{Partner.Name}/unpin", Token);
        Assert.That(unpinned, Is.EqualTo(HttpStatusCode.OK), $"unpin of {Partner.Name} failed: {unpinnedBody}");
        var unpinnedAt = AuditRecords().Last(r => Event(r) == "operator" && Str(r, "action") == "UnpinVm");
        var held = await WaitAuditAsync(
            r => Event(r) == "decision" && Time(r) >= Time(unpinnedAt) && Str(r, "vm") == Partner.Name && Str(r, "reason") == "HeldByRule" && Str(r, "rule") == "AntiAffinity",
            $"a decision for {Partner.Name} held back by the anti-affinity rule");
        var placements = await WatchPlacementAsync(Partner, HoldWatch);
        var vm = JsonDocument.Parse(await _http.GetStringAsync(new Uri($"{_base}/api/v1/vms/{Partner.Name}"))).RootElement;
        var decision = vm.GetProperty("decision");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Str(held, "kind"), Is.EqualTo("Stay"), held.ToString());
            Assert.That(Str(held, "host"), Is.EqualTo("cloudlet-3"), held.ToString());
            Assert.That(Str(held, "target"), Is.EqualTo("cloudlet-2"), $"the held-back move names the host it would have gone to: {held}");
            Assert.That(Str(held, "explanation"), Does.Contain("anti-affinity"), $"the explanation says what held it: {held}");
            Assert.That(placements, Is.All.EqualTo("cloudlet-3"), $"{Partner.Name} stays off cloudlet-2 while {Guest.Name} runs there");
            Assert.That(Str(decision, "reason"), Is.EqualTo("HeldByRule"), $"the API's latest decision for {Partner.Name}: {decision}");
            Assert.That(Str(decision, "heldBy"), Is.EqualTo("AntiAffinity"), $"the API's latest decision for {Partner.Name}: {decision}");
        }
    }

    [Test]
    [Order(3)]
    public async Task Prometheus_ScrapesMetrics_PromQlReturnsRttPerHostAndMigrationCount()
    {
        _story.Enter(3);
        IReadOnlyList<JsonElement> rtt = [];
        IReadOnlyList<JsonElement> migrations = [];
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < until)
        {
            rtt = await _prometheus!.QueryAsync("cloudlets_probe_rtt_milliseconds{cloudlets_vantage_point=\"edge\",cloudlets_host!=\"\"}", CancellationToken.None);
            migrations = await _prometheus.QueryAsync("sum(cloudlets_migrations_total{cloudlets_migration_outcome=\"Succeeded\"})", CancellationToken.None);
            if (rtt.Count == 3 && migrations.Count == 1)
            {
                break;
            }

            await Task.Delay(1000);
        }

        var byHost = rtt.ToDictionary(r => r.GetProperty("metric").GetProperty("cloudlets_host").GetString()!, r => double.Parse(r.GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(byHost.Keys, Is.EquivalentTo(new[] { "cloudlet-1", "cloudlet-2", "cloudlet-3" }), "one RTT series per host");

            // Generous bounds (the delay line adds the shaped delay; a loaded machine adds more): 300 ms is far above 20 ms.
            Assert.That(byHost.GetValueOrDefault("cloudlet-1"), Is.GreaterThan(200));
            Assert.That(byHost.GetValueOrDefault("cloudlet-2"), Is.InRange(15, 150));
            Assert.That(migrations, Has.Count.EqualTo(1));
            Assert.That(double.Parse(migrations[0].GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThanOrEqualTo(1));
        }
    }

    [Test]
    [Order(4)]
    public async Task Drain_GuestsHost_MovesItAwayNotOntoItsPartnerAndNotBackWhileDrained()
    {
        _story.Enter(4);
        var (noToken, noTokenBody) = await PostAsync("/api/v1/hosts/cloudlet-2/drain", token: null);
        var (wrongToken, wrongTokenBody) = await PostAsync("/api/v1/hosts/cloudlet-2/drain", token: "not-the-token-at-all-0000");
        var (drained, drainedBody) = await PostAsync("/api/v1/hosts/cloudlet-2/drain", Token);

        // cloudlet-3 (60 ms) would be nearer, but the partner runs there: the drain must take the guest to cloudlet-1 (300 ms).
        await WaitGuestOnAsync(Guest, "cloudlet-1");
        var (moveBack, moveBackBody) = await PostAsync($"/api/v1/vms/{Guest.Name}/move", Token, """{"host":"cloudlet-2"}""");
        var (moveToPartner, moveToPartnerBody) = await PostAsync($"/api/v1/vms/{Guest.Name}/move", Token, """{"host":"cloudlet-3"}""");
        var drainedAt = DateTimeOffset.UtcNow;
        var placements = await WatchPlacementAsync(Guest, HoldWatch);
        var partnerHost = (await Lab.FindGuestHostAsync(Partner))?.Name;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(moveToPartner, Is.EqualTo(HttpStatusCode.Conflict), $"an order onto the partner's host is refused: {moveToPartnerBody}");
            Assert.That(Refusal(moveToPartnerBody), Is.EqualTo("AntiAffinity"), moveToPartnerBody);
            Assert.That(partnerHost, Is.EqualTo("cloudlet-3"), $"{Partner.Name} stays on cloudlet-3 (cloudlet-2 is drained)");
            Assert.That(noToken, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(Refusal(noTokenBody), Is.EqualTo("MissingToken"));
            Assert.That(wrongToken, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(Refusal(wrongTokenBody), Is.EqualTo("InvalidToken"));
            Assert.That(drained, Is.EqualTo(HttpStatusCode.OK), drainedBody);
            Assert.That(moveBack, Is.EqualTo(HttpStatusCode.Conflict), "an order to a drained host is refused");
            Assert.That(Refusal(moveBackBody), Is.EqualTo("DestinationDrained"));
            Assert.That(placements, Is.All.EqualTo("cloudlet-1"), "no later decision moves it back while cloudlet-2 is drained, nor onto its partner's cloudlet-3");
            Assert.That(AuditRecords().Where(r => Event(r) == "migration.started" && Str(r, "destination") == "cloudlet-2" && Time(r) >= drainedAt), Is.Empty);
        }
    }

    [Test]
    [Order(5)]
    public async Task Pin_BetterHostUndrained_HoldsGuestUntilUnpinned()
    {
        _story.Enter(5);
        var (pinned, pinnedBody) = await PostAsync($"/api/v1/vms/{Guest.Name}/pin", Token);
        var (undrained, _) = await PostAsync("/api/v1/hosts/cloudlet-2/undrain", Token);

        // The partner takes the free cloudlet-2 (20 ms, from 60 ms); the pinned guest is watched all the while.
        var watch = WatchPlacementAsync(Guest, HoldWatch);
        await WaitGuestOnAsync(Partner, "cloudlet-2");
        var placements = await watch;
        placements.AddRange(await WatchPlacementAsync(Guest, HoldWatch));
        var vm = JsonDocument.Parse(await _http.GetStringAsync(new Uri($"{_base}/api/v1/vms/{Guest.Name}"))).RootElement;

        // Unpinned, the guest goes to the best host its partner leaves it: cloudlet-3 (60 ms), not cloudlet-2.
        var (unpinned, _) = await PostAsync($"/api/v1/vms/{Guest.Name}/unpin", Token);
        await WaitGuestOnAsync(Guest, "cloudlet-3");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pinned, Is.EqualTo(HttpStatusCode.OK), pinnedBody);
            Assert.That(undrained, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(placements, Is.All.EqualTo("cloudlet-1"), "the pin holds it against the better cloudlet-2 and cloudlet-3 (20 and 60 ms vs 300 ms)");
            Assert.That(vm.GetProperty("pinned").GetBoolean(), Is.True);
            Assert.That(vm.GetProperty("decision").GetProperty("reason").GetString(), Is.EqualTo("Pinned"));
            Assert.That(unpinned, Is.EqualTo(HttpStatusCode.OK));
        }
    }

    [Test]
    [Order(6)]
    public async Task Sigterm_DuringMigration_LetsItFinishAndExitsZero()
    {
        _story.Enter(6);
        var (moved, movedBody) = await PostAsync($"/api/v1/vms/{Guest.Name}/move", Token, """{"host":"cloudlet-1"}""");
        Assert.That(moved, Is.EqualTo(HttpStatusCode.Accepted), movedBody);
        _controller!.Terminate();
        var code = await _controller.WaitForExitAsync(TimeSpan.FromMinutes(3));
        var copies = await Lab.FindGuestCopiesAsync(Guest);
        var audit = AuditRecords();
        var stopping = audit.FindIndex(r => Event(r) == "controller.stopping");
        var finished = audit.FindLastIndex(r => Event(r) == "migration.finished" && Str(r, "vm") == Guest.Name && Str(r, "destination") == "cloudlet-1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, _controller.Output);
            Assert.That(copies.Select(h => h.Name), Is.EqualTo(new[] { "cloudlet-1" }), "one copy, on the destination");
            Assert.That(stopping, Is.GreaterThanOrEqualTo(0));
            Assert.That(finished, Is.GreaterThan(stopping), "the migration finished after the stop began");
            Assert.That(finished >= 0 ? Str(audit[finished], "outcome") : null, Is.EqualTo("Succeeded"));
            Assert.That(Event(audit[^1]), Is.EqualTo("controller.stopped"));
            Assert.That(audit[^1].GetProperty("exitCode").GetInt32(), Is.Zero);
        }
    }

    [Test]
    [Order(7)]
    public void AuditLog_AfterTheRun_HoldsEveryEventAsJsonLines()
    {
        _story.Enter(7);
        var audit = AuditRecords();
        var operatorActions = audit.Where(r => Event(r) == "operator").Select(r => Str(r, "action")).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(audit.Select(Event), Is.SupersetOf(new[] { "controller.started", "decision", "migration.started", "migration.finished", "operator", "controller.stopping", "controller.stopped" }));
            Assert.That(operatorActions, Is.SupersetOf(new[] { "DrainHost", "UndrainHost", "PinVm", "UnpinVm", "MoveNow" }));
            Assert.That(audit.Where(r => Event(r) == "operator" && r.GetProperty("accepted").GetBoolean() == false).Select(r => Str(r, "refusal")),
                Is.SupersetOf(new[] { "MissingToken", "InvalidToken", "DestinationDrained" }));
            Assert.That(audit.Where(r => Event(r) == "migration.started").Select(r => Str(r, "trigger")), Is.SupersetOf(new[] { "policy", "operator" }));
            Assert.That(audit.Where(r => Event(r) == "decision" && Str(r, "kind") == "Move"), Is.Not.Empty);
            Assert.That(audit.Where(r => Event(r) == "migration.finished").Select(r => Str(r, "outcome")), Is.All.EqualTo("Succeeded"));
        }
    }

    [Test]
    [Order(8)]
    public async Task AntiAffinityPair_WholeRun_NeverSharedAHost()
    {
        _story.Enter(8);
        // The controller has exited (SIGTERM above): nothing moves any more; stop sampling and read the run.
        await _sampler!.StopAsync();
        var samples = _sampler.Samples;
        var shared = samples.Where(p => p.Of(Guest.Name).Intersect(p.Of(Partner.Name)).Any()).ToList();
        var guestHosts = samples.SelectMany(p => p.Of(Guest.Name)).Distinct().Order().ToList();
        var partnerHosts = samples.SelectMany(p => p.Of(Partner.Name)).Distinct().Order().ToList();

        // From the audit log: where each member was (its decisions' host, its migrations' ends), and no
        // migration of one started toward the host where the other was or was going.
        var audit = AuditRecords();
        var members = new[] { Guest.Name, Partner.Name };
        var at = new Dictionary<string, string?> { [Guest.Name] = "cloudlet-1", [Partner.Name] = "cloudlet-3" };
        var going = new Dictionary<string, string?> { [Guest.Name] = null, [Partner.Name] = null };
        var breaches = new List<string>();
        var starts = 0;
        foreach (var r in audit.Where(r => Str(r, "vm") is { } v && members.Contains(v)))
        {
            var vm = Str(r, "vm")!;
            var other = vm == Guest.Name ? Partner.Name : Guest.Name;
            switch (Event(r))
            {
                case "decision" when Str(r, "host") is { } host:
                    at[vm] = host;
                    break;
                case "migration.started":
                    starts++;
                    var destination = Str(r, "destination");
                    if (destination == at[other] || destination == going[other])
                    {
                        breaches.Add($"{Time(r):O} {vm} started toward {destination} while {other} was on {at[other]} (going to {going[other] ?? "nowhere"})");
                    }

                    going[vm] = destination;
                    break;
                case "migration.finished":
                    if (Str(r, "outcome") == "Succeeded")
                    {
                        at[vm] = Str(r, "destination");
                    }

                    going[vm] = null;
                    break;
            }
        }

        await TestContext.Out.WriteLineAsync($"{samples.Count} samples of the pair's placement over {(samples.Count > 0 ? (samples[^1].At - samples[0].At).TotalSeconds : 0):0} s; {Guest.Name} on {string.Join(", ", guestHosts)}, {Partner.Name} on {string.Join(", ", partnerHosts)}; {starts} migrations of the pair started.");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(shared.Select(p => $"{p.At:O}: {Guest.Name} on [{string.Join(", ", p.Of(Guest.Name))}], {Partner.Name} on [{string.Join(", ", p.Of(Partner.Name))}]"), Is.Empty,
                "the anti-affinity pair had copies on one host (as the hosts showed it)");
            Assert.That(breaches, Is.Empty, "a migration of one member started toward the other's host (from the audit log)");

            // Not vacuous: the run sampled the whole time and both members moved among the hosts.
            Assert.That(samples, Has.Count.GreaterThan(20), "the pair's placement was sampled through the run");
            Assert.That(guestHosts, Is.EquivalentTo(new[] { "cloudlet-1", "cloudlet-2", "cloudlet-3" }), $"{Guest.Name} ran on every host during the run");
            Assert.That(partnerHosts, Is.EquivalentTo(new[] { "cloudlet-2", "cloudlet-3" }), $"{Partner.Name} moved from cloudlet-3 to cloudlet-2 during the run");
        }
    }

    /// <summary>The lab controller's configuration for <paramref name="guests"/>; <paramref name="election"/> adds a Controller:Election section, <paramref name="bandwidthMiBps"/> limits migrations, <paramref name="rules"/> is the Controller:Rules section, <paramref name="hosts"/> the hosts it knows (the default: all of the lab's).</summary>
    internal static string ConfigFor(CloudletLab lab, IReadOnlyList<LabGuest> guests, int port, string audit, object? election = null, long? bandwidthMiBps = null, object? rules = null, IReadOnlyList<LabHost>? hosts = null)
    {
        // The lab's hosts are reachable only from inside the lab: probe and connect from the edge.
        var config = new
        {
            Controller = new
            {
                VantagePoints = new[] { new { Name = "edge", NetworkNamespace = lab.Edge.Namespace } },
                Hosts = (hosts ?? lab.Hosts).Select(h => new
                {
                    h.Name,
                    Uri = h.Uri.ToString(),
                    NetworkNamespace = lab.Edge.Namespace,
                    Probe = new { Address = h.Address.ToString() },
                    MigrationUri = h.MigrationUri.ToString(),
                    KeepAliveInterval = "00:00:01",
                    KeepAliveCount = 2,
                }),
                Vms = guests.Select(g => new { g.Name, Users = new[] { new { VantagePoint = "edge" } }, Probe = new { Address = g.Address.ToString() } }),
                Probing = new { Period = "00:00:00.500", Timeout = "00:00:01.500" },
                Pipeline = new
                {
                    Mode = "Automatic",
                    EvaluationInterval = "00:00:01",
                    PlacementRefreshInterval = "00:00:01",
                    HostTimeout = "00:00:03",
                    SampleWindow = 6,
                    StopTimeout = "00:02:00",
                    Executor = new { ImprovementCheckDelay = "00:00:03", CompletionTimeout = "00:02:00", Migration = bandwidthMiBps is null ? null : new { BandwidthMiBps = bandwidthMiBps } },
                },
                Policy = new { ConfirmationWindows = 2, Cooldown = "00:00:05", MaxSampleAge = "00:00:05" },
                Http = new { Urls = $"http://127.0.0.1:{port}", Token },
                Audit = new { Path = audit },
                Health = new { MaxSampleAge = "00:00:05" },
                Election = election,
                Rules = rules,
            },
        };
        return JsonSerializer.Serialize(config, Indented);
    }

    /// <summary>Waits until the hosts show <paramref name="guest"/> on <paramref name="host"/> AND the controller's own view says so (a move-now order needs the controller to know where the VM runs).</summary>
    private async Task WaitGuestOnAsync(LabGuest guest, string host)
    {
        await WaitHostsShowAsync(guest, host);
        var until = DateTime.UtcNow + MoveBound;
        string? seen = null;
        while (DateTime.UtcNow < until && !_controller!.HasExited)
        {
            var vm = JsonDocument.Parse(await _http.GetStringAsync(new Uri($"{_base}/api/v1/vms/{guest.Name}"))).RootElement;
            seen = vm.GetProperty("host").GetString();
            // A migration's outcome (published after its latency check) ends it for the executor.
            var audit = AuditRecords();
            if (seen == host && audit.Count(r => Event(r) == "migration.started") == audit.Count(r => Event(r) == "migration.finished"))
            {
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"The controller did not see {guest.Name} on {host} within {MoveBound} (it said {seen ?? "unknown"}).");
    }

    private async Task WaitHostsShowAsync(LabGuest guest, string host)
    {
        var until = DateTime.UtcNow + MoveBound;
        string? last = null;
        while (DateTime.UtcNow < until && !_controller!.HasExited)
        {
            last = (await Lab.FindGuestHostAsync(guest))?.Name;
            if (last == host)
            {
                return;
            }

            await Task.Delay(500);
        }

        Assert.Fail($"{guest.Name} did not come to {host} within {MoveBound} (last seen on {last ?? "none"}).\n{_controller!.Output[^Math.Min(_controller.Output.Length, 6000)..]}");
    }

    /// <summary>Where <paramref name="guest"/> runs, read from the hosts every half second for <paramref name="duration"/>.</summary>
    private async Task<List<string?>> WatchPlacementAsync(LabGuest guest, TimeSpan duration)
    {
        var seen = new List<string?>();
        var until = DateTime.UtcNow + duration;
        while (DateTime.UtcNow < until)
        {
            seen.Add((await Lab.FindGuestHostAsync(guest))?.Name);
            await Task.Delay(500);
        }

        return seen;
    }

    /// <summary>The first audit record that matches, waited for (bounded).</summary>
    private async Task<JsonElement> WaitAuditAsync(Func<JsonElement, bool> match, string what)
    {
        var until = DateTime.UtcNow + MoveBound;
        while (DateTime.UtcNow < until && !_controller!.HasExited)
        {
            var found = AuditRecords().FirstOrDefault(match);
            if (found.ValueKind == JsonValueKind.Object)
            {
                return found;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"The audit log has no {what} after {MoveBound}; its decisions: {string.Join("\n", AuditRecords().Where(r => Event(r) == "decision").TakeLast(10))}");
        return default;
    }

    private async Task<(HttpStatusCode Status, string Body)> PostAsync(string path, string? token, string? json = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_base + path));
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The audit log's records; a line still being written (no closing brace yet) is left for the next read.</summary>
    private List<JsonElement> AuditRecords()
    {
        using var stream = new FileStream(_audit, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var records = new List<JsonElement>();
        while (reader.ReadLine() is { } line)
        {
            if (line.EndsWith('}'))
            {
                records.Add(JsonDocument.Parse(line).RootElement.Clone());
            }
        }

        return records;
    }

    private static string? Refusal(string body) => JsonDocument.Parse(body).RootElement.GetProperty("refusal").GetString();

    private static string? Event(JsonElement r) => Str(r, "event");

    private static string? Str(JsonElement r, string name) => r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static DateTimeOffset Time(JsonElement r) => DateTimeOffset.Parse(Str(r, "time")!, System.Globalization.CultureInfo.InvariantCulture);
}
