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
/// QEMU in namespaces) with one guest, the users' latency shaped to 300/20/60 ms; a real Prometheus
/// scrapes it. One lab and one boot for the whole fixture; the tests run in order on the same
/// controller: the move to the nearest host, the scrape, drain, pin, SIGTERM during a migration, the
/// audit log. (Anti-affinity needs a second guest; the rules' own tests cover it, see the README.)
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class ControllerLabTests : LabFixture
{
    private const string Token = "lab-operator-token-0123456789abcdef";
    private static readonly TimeSpan MoveBound = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan HoldWatch = TimeSpan.FromSeconds(10);

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };
    private string _folder = "";
    private string _audit = "";
    private string _base = "";
    private INetemShaper? _shaper;
    private ControllerProcess? _controller;
    private PrometheusServer? _prometheus;

    protected override string LabPrefix => "ctl";

    protected override int LabHosts => 3;

    protected override IReadOnlyList<string> LabGuestsOn => ["cloudlet-1"];

    private LabGuest Guest => Lab.Guests[0];

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
        await File.WriteAllTextAsync(config, ConfigFor(Lab, Guest, port, _audit), timeout.Token);
        _controller = ControllerProcess.Start("--config", config);
        _prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{port}", timeout.Token);
    }

    [OneTimeTearDown]
    public async Task StopControllerAsync()
    {
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
        var (_, health) = await ControllerProcessTests.WaitForAsync(
            _http, _base + "/healthz", (s, b) => s == HttpStatusCode.OK && b.Contains("\"status\":\"Healthy\"", StringComparison.Ordinal), _controller!, TimeSpan.FromSeconds(90));
        await WaitGuestOnAsync("cloudlet-2");
        Assert.That(JsonDocument.Parse(health).RootElement.GetProperty("checks").GetProperty("hosts").GetProperty("status").GetString(), Is.EqualTo("Healthy"));
    }

    [Test]
    [Order(2)]
    public async Task Prometheus_ScrapesMetrics_PromQlReturnsRttPerHostAndMigrationCount()
    {
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
    [Order(3)]
    public async Task Drain_GuestsHost_MovesItAwayAndNotBackWhileDrained()
    {
        var (noToken, noTokenBody) = await PostAsync("/api/v1/hosts/cloudlet-2/drain", token: null);
        var (wrongToken, wrongTokenBody) = await PostAsync("/api/v1/hosts/cloudlet-2/drain", token: "not-the-token-at-all-0000");
        var (drained, drainedBody) = await PostAsync("/api/v1/hosts/cloudlet-2/drain", Token);
        await WaitGuestOnAsync("cloudlet-3");
        var (moveBack, moveBackBody) = await PostAsync($"/api/v1/vms/{Guest.Name}/move", Token, """{"host":"cloudlet-2"}""");
        var drainedAt = DateTimeOffset.UtcNow;
        var placements = await WatchPlacementAsync(HoldWatch);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(noToken, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(Refusal(noTokenBody), Is.EqualTo("MissingToken"));
            Assert.That(wrongToken, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(Refusal(wrongTokenBody), Is.EqualTo("InvalidToken"));
            Assert.That(drained, Is.EqualTo(HttpStatusCode.OK), drainedBody);
            Assert.That(moveBack, Is.EqualTo(HttpStatusCode.Conflict), "an order to a drained host is refused");
            Assert.That(Refusal(moveBackBody), Is.EqualTo("DestinationDrained"));
            Assert.That(placements, Is.All.EqualTo("cloudlet-3"), "no later decision moves it back while cloudlet-2 is drained");
            Assert.That(AuditRecords().Where(r => Event(r) == "migration.started" && Str(r, "destination") == "cloudlet-2" && Time(r) >= drainedAt), Is.Empty);
        }
    }

    [Test]
    [Order(4)]
    public async Task Pin_BetterHostUndrained_HoldsGuestUntilUnpinned()
    {
        var (pinned, pinnedBody) = await PostAsync($"/api/v1/vms/{Guest.Name}/pin", Token);
        var (undrained, _) = await PostAsync("/api/v1/hosts/cloudlet-2/undrain", Token);
        var placements = await WatchPlacementAsync(HoldWatch);
        var vm = JsonDocument.Parse(await _http.GetStringAsync(new Uri($"{_base}/api/v1/vms/{Guest.Name}"))).RootElement;
        var (unpinned, _) = await PostAsync($"/api/v1/vms/{Guest.Name}/unpin", Token);
        await WaitGuestOnAsync("cloudlet-2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pinned, Is.EqualTo(HttpStatusCode.OK), pinnedBody);
            Assert.That(undrained, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(placements, Is.All.EqualTo("cloudlet-3"), "the pin holds it against the better cloudlet-2 (20 ms vs 60 ms)");
            Assert.That(vm.GetProperty("pinned").GetBoolean(), Is.True);
            Assert.That(vm.GetProperty("decision").GetProperty("reason").GetString(), Is.EqualTo("Pinned"));
            Assert.That(unpinned, Is.EqualTo(HttpStatusCode.OK));
        }
    }

    [Test]
    [Order(5)]
    public async Task Sigterm_DuringMigration_LetsItFinishAndExitsZero()
    {
        var (moved, movedBody) = await PostAsync($"/api/v1/vms/{Guest.Name}/move", Token, """{"host":"cloudlet-3"}""");
        Assert.That(moved, Is.EqualTo(HttpStatusCode.Accepted), movedBody);
        _controller!.Terminate();
        var code = await _controller.WaitForExitAsync(TimeSpan.FromMinutes(3));
        var copies = await Lab.FindGuestCopiesAsync(Guest);
        var audit = AuditRecords();
        var stopping = audit.FindIndex(r => Event(r) == "controller.stopping");
        var finished = audit.FindLastIndex(r => Event(r) == "migration.finished" && Str(r, "destination") == "cloudlet-3");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, _controller.Output);
            Assert.That(copies.Select(h => h.Name), Is.EqualTo(new[] { "cloudlet-3" }), "one copy, on the destination");
            Assert.That(stopping, Is.GreaterThanOrEqualTo(0));
            Assert.That(finished, Is.GreaterThan(stopping), "the migration finished after the stop began");
            Assert.That(finished >= 0 ? Str(audit[finished], "outcome") : null, Is.EqualTo("Succeeded"));
            Assert.That(Event(audit[^1]), Is.EqualTo("controller.stopped"));
            Assert.That(audit[^1].GetProperty("exitCode").GetInt32(), Is.Zero);
        }
    }

    [Test]
    [Order(6)]
    public void AuditLog_AfterTheRun_HoldsEveryEventAsJsonLines()
    {
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

    /// <summary>The lab controller's configuration; <paramref name="election"/> adds a Controller:Election section, <paramref name="bandwidthMiBps"/> limits migrations.</summary>
    internal static string ConfigFor(CloudletLab lab, LabGuest guest, int port, string audit, object? election = null, long? bandwidthMiBps = null)
    {
        // The lab's hosts are reachable only from inside the lab: probe and connect from the edge.
        var config = new
        {
            Controller = new
            {
                VantagePoints = new[] { new { Name = "edge", NetworkNamespace = lab.Edge.Namespace } },
                Hosts = lab.Hosts.Select(h => new
                {
                    h.Name,
                    Uri = h.Uri.ToString(),
                    NetworkNamespace = lab.Edge.Namespace,
                    Probe = new { Address = h.Address.ToString() },
                    MigrationUri = h.MigrationUri.ToString(),
                    KeepAliveInterval = "00:00:01",
                    KeepAliveCount = 2,
                }),
                Vms = new[] { new { guest.Name, Users = new[] { new { VantagePoint = "edge" } }, Probe = new { Address = guest.Address.ToString() } } },
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
            },
        };
        return JsonSerializer.Serialize(config, Indented);
    }

    /// <summary>Waits until the hosts show the guest on <paramref name="host"/> AND the controller's own view says so (a move-now order needs the controller to know where the VM runs).</summary>
    private async Task WaitGuestOnAsync(string host)
    {
        await WaitHostsShowAsync(host);
        var until = DateTime.UtcNow + MoveBound;
        string? seen = null;
        while (DateTime.UtcNow < until && !_controller!.HasExited)
        {
            var vm = JsonDocument.Parse(await _http.GetStringAsync(new Uri($"{_base}/api/v1/vms/{Guest.Name}"))).RootElement;
            seen = vm.GetProperty("host").GetString();
            // A migration's outcome (published after its latency check) ends it for the executor.
            var audit = AuditRecords();
            if (seen == host && audit.Count(r => Event(r) == "migration.started") == audit.Count(r => Event(r) == "migration.finished"))
            {
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"The controller did not see the guest on {host} within {MoveBound} (it said {seen ?? "unknown"}).");
    }

    private async Task WaitHostsShowAsync(string host)
    {
        var until = DateTime.UtcNow + MoveBound;
        string? last = null;
        while (DateTime.UtcNow < until && !_controller!.HasExited)
        {
            last = (await Lab.FindGuestHostAsync(Guest))?.Name;
            if (last == host)
            {
                return;
            }

            await Task.Delay(500);
        }

        Assert.Fail($"The guest did not come to {host} within {MoveBound} (last seen on {last ?? "none"}).\n{_controller!.Output[^Math.Min(_controller.Output.Length, 6000)..]}");
    }

    /// <summary>Where the guest runs, read from the hosts every half second for <paramref name="duration"/>.</summary>
    private async Task<List<string?>> WatchPlacementAsync(TimeSpan duration)
    {
        var seen = new List<string?>();
        var until = DateTime.UtcNow + duration;
        while (DateTime.UtcNow < until)
        {
            seen.Add((await Lab.FindGuestHostAsync(Guest))?.Name);
            await Task.Delay(500);
        }

        return seen;
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

    private List<JsonElement> AuditRecords() =>
        [.. File.ReadAllLines(_audit).Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    private static string? Refusal(string body) => JsonDocument.Parse(body).RootElement.GetProperty("refusal").GetString();

    private static string? Event(JsonElement r) => Str(r, "event");

    private static string? Str(JsonElement r, string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static DateTimeOffset Time(JsonElement r) => DateTimeOffset.Parse(Str(r, "time")!, System.Globalization.CultureInfo.InvariantCulture);
}
