using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Cloudlets.Etcd.Tests.Support;

namespace Cloudlets.Controller.Tests.Tool;

/// <summary>
/// cloudlets-controller as a child process without root: two hosts on libvirt's built-in test
/// driver (inside libvirt.so.0, no daemon), TCP-connect probes to a listener of this test on
/// loopback, HTTP on a loopback port. Health, metrics, the API, SIGTERM and the audit log as an
/// operator sees them.
/// </summary>
[NonParallelizable]
public sealed class ControllerProcessTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly JsonSerializerOptions NoNulls = new() { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
    private string _folder = "";
    private TcpListener? _listener;
    private CancellationTokenSource? _accepting;

    [SetUp]
    public void SetUp()
    {
        _folder = Directory.CreateTempSubdirectory("cloudlets-controller-proc-").FullName;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = new CancellationTokenSource();
        _ = AcceptAsync(_listener, _accepting.Token);
    }

    [TearDown]
    public void TearDown()
    {
        _accepting?.Cancel();
        _listener?.Stop();
        _listener?.Dispose();
        _accepting?.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private static async Task AcceptAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(cancellationToken);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private string Config(int httpPort, string hostUri = "test:///default", object? election = null, string file = "controller.json", string audit = "audit.jsonl")
    {
        var probePort = ((IPEndPoint)_listener!.LocalEndpoint).Port;
        var config = new
        {
            Controller = new
            {
                VantagePoints = new[] { new { Name = "local" } },
                Hosts = new[] { "h1", "h2" }.Select(h => new { Name = h, Uri = hostUri, Probe = new { Address = "127.0.0.1", Port = probePort } }),
                Vms = new[] { new { Name = "test", Users = new[] { new { VantagePoint = "local" } } } },
                Probing = new { Period = "00:00:00.250" },
                Pipeline = new { EvaluationInterval = "00:00:00.500" },
                Http = new { Urls = $"http://127.0.0.1:{httpPort}", Token = "process-test-token-0123456789" },
                Audit = new { Path = Path.Combine(_folder, audit) },
                Election = election,
            },
        };
        var path = Path.Combine(_folder, file);
        File.WriteAllText(path, JsonSerializer.Serialize(config, NoNulls));
        return path;
    }

    internal static async Task<(HttpStatusCode Status, string Body)> WaitForAsync(HttpClient http, string url, Func<HttpStatusCode, string, bool> done, ControllerProcess process, TimeSpan bound)
    {
        var until = DateTime.UtcNow + bound;
        (HttpStatusCode, string) last = (0, "");
        while (DateTime.UtcNow < until && !process.HasExited)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(url));
                last = (response.StatusCode, await response.Content.ReadAsStringAsync());
                if (done(last.Item1, last.Item2))
                {
                    return last;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            await Task.Delay(250);
        }

        Assert.Fail($"{url} did not become ready within {bound} (last: {last.Item1} {last.Item2}).\n{process.Output}");
        return last;
    }

    [Test]
    public async Task Run_HealthyThenSigterm_ServesHealthMetricsApiAndExitsZeroWithAuditLog()
    {
        var port = ControllerProcess.FreePort();
        await using var controller = ControllerProcess.Start("--config", Config(port));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var baseUrl = $"http://127.0.0.1:{port}";

        var (_, health) = await WaitForAsync(http, baseUrl + "/healthz", (s, b) => s == HttpStatusCode.OK && b.Contains("\"status\":\"Healthy\"", StringComparison.Ordinal), controller, Bound);
        var (readyStatus, _) = await WaitForAsync(http, baseUrl + "/readyz", (s, _) => s == HttpStatusCode.OK, controller, Bound);
        // Healthy comes with the first samples; the first decision follows at the first evaluation window,
        // so wait for it (seen in CI: a scrape between the two had no decisions counter yet).
        var (_, metrics) = await WaitForAsync(http, baseUrl + "/metrics", (s, b) => s == HttpStatusCode.OK && b.Contains("cloudlets_decisions_total{", StringComparison.Ordinal), controller, Bound);
        var hosts = JsonDocument.Parse(await http.GetStringAsync(new Uri(baseUrl + "/api/v1/hosts"))).RootElement;
        var (_, vmsBody) = await WaitForAsync(http, baseUrl + "/api/v1/vms", (s, b) => s == HttpStatusCode.OK && b.Contains("\"explanation\":\"", StringComparison.Ordinal), controller, Bound);
        var vms = JsonDocument.Parse(vmsBody).RootElement;

        controller.Terminate();
        var code = await controller.WaitForExitAsync(Bound);
        var audit = File.ReadAllLines(Path.Combine(_folder, "audit.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(JsonDocument.Parse(health).RootElement.GetProperty("checks").EnumerateObject().Select(c => c.Name), Is.EquivalentTo(new[] { "pipeline", "hosts", "samples", "election" }));
            Assert.That(readyStatus, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(metrics, Does.Match("cloudlets_probe_rtt_milliseconds\\{[^}]*cloudlets_host=\"h1\"[^}]*cloudlets_vantage_point=\"local\"[^}]*\\} [0-9.]+"));
            Assert.That(metrics, Does.Match("cloudlets_host_connected\\{[^}]*cloudlets_host=\"h2\"[^}]*\\} 1"));
            Assert.That(metrics, Does.Match("cloudlets_sample_age_seconds\\{[^}]*cloudlets_target=\"host:h1\""));
            Assert.That(metrics, Does.Match("cloudlets_decisions_total\\{[^}]*cloudlets_decision_kind=\"NoDecision\""));
            Assert.That(metrics, Does.Match("cloudlets_controller_up\\{[^}]*\\} 1"));
            Assert.That(hosts.EnumerateArray().Select(h => h.GetProperty("name").GetString()), Is.EqualTo(new[] { "h1", "h2" }));
            Assert.That(hosts[0].GetProperty("vms")[0].GetProperty("name").GetString(), Is.EqualTo("test"));
            Assert.That(vms[0].GetProperty("decision").GetProperty("explanation").GetString(), Is.Not.Empty);
            Assert.That(code, Is.Zero, controller.Output);
            Assert.That(audit.Select(r => r.GetProperty("event").GetString()), Is.SupersetOf(new[] { "controller.started", "decision", "controller.stopping", "controller.stopped" }));
            Assert.That(audit[^1].GetProperty("exitCode").GetInt32(), Is.Zero);
        }
    }

    [Test]
    public async Task Run_HostUnreachableAtStart_ExitsOneNamingTheHost()
    {
        // A loopback port nobody listens on: the connection is refused at once.
        var closed = ControllerProcess.FreePort();
        var (code, output) = await ControllerProcess.RunAsync(Bound, "--config", Config(ControllerProcess.FreePort(), $"qemu+tcp://127.0.0.1:{closed}/system"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(1), output);
            Assert.That(output, Does.Contain("Could not connect to every host: h1"));
        }
    }

    /// <summary>
    /// Two controllers and a real etcd (Debian's etcd-server on loopback, started here): one leads, the
    /// other follows, as /healthz, /metrics and the audit logs say; the leader's SIGTERM resigns and the
    /// follower takes over. One is configured by the file's Controller:Election, the other by --election.
    /// </summary>
    [Test]
    public async Task Run_TwoControllersWithEtcdElection_OneLeadsAndSigtermHandsOver()
    {
        await using var etcd = await EtcdServer.StartAsync();
        var portA = ControllerProcess.FreePort();
        var portB = ControllerProcess.FreePort();
        var configA = Config(portA, election: new { Endpoints = new[] { etcd.Endpoint }, Region = "proc", CandidateId = "ctl-a", LeaseTtl = "00:00:03" }, file: "a.json", audit: "a.jsonl");
        var configB = Config(portB, file: "b.json", audit: "b.jsonl");
        await using var a = ControllerProcess.Start("--config", configA);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await WaitForAsync(http, $"http://127.0.0.1:{portA}/healthz", (s, b) => s == HttpStatusCode.OK && b.Contains("\"role\":\"leader\"", StringComparison.Ordinal), a, Bound);
        await using var b = ControllerProcess.Start(
            "--config", configB, "--election", $"etcd://127.0.0.1:{etcd.ClientPort}/proc", "--set", "Controller:Election:CandidateId=ctl-b", "--set", "Controller:Election:LeaseTtl=00:00:03");
        var (_, followerHealth) = await WaitForAsync(http, $"http://127.0.0.1:{portB}/healthz", (s, body) => s == HttpStatusCode.OK && body.Contains("\"leader\":\"ctl-a\"", StringComparison.Ordinal), b, Bound);
        var leaderMetrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{portA}/metrics"));
        var followerMetrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{portB}/metrics"));
        var key = await etcd.GetValueAsync("/cloudlets/v1/elections/proc");

        a.Terminate();
        var codeA = await a.WaitForExitAsync(Bound);
        var (_, takenOver) = await WaitForAsync(http, $"http://127.0.0.1:{portB}/healthz", (s, body) => s == HttpStatusCode.OK && body.Contains("\"role\":\"leader\"", StringComparison.Ordinal), b, Bound);
        b.Terminate();
        var codeB = await b.WaitForExitAsync(Bound);

        var auditA = File.ReadAllLines(Path.Combine(_folder, "a.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var auditB = File.ReadAllLines(Path.Combine(_folder, "b.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var election = JsonDocument.Parse(followerHealth).RootElement.GetProperty("checks").GetProperty("election").GetProperty("data");
        var leaderEvents = auditA.Where(r => r.GetProperty("event").GetString()!.StartsWith("leadership.", StringComparison.Ordinal)).ToList();
        var acquiredB = auditB.Where(r => r.GetProperty("event").GetString() == "leadership.acquired").ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(key, Is.EqualTo("ctl-a"), "the election key holds the leader's candidate id");
            Assert.That(election.GetProperty("role").GetString(), Is.EqualTo("follower"));
            Assert.That(election.GetProperty("region").GetString(), Is.EqualTo("proc"));
            Assert.That(election.GetProperty("leaseId").GetInt64(), Is.Positive, "a follower campaigns with its own lease");
            Assert.That(JsonDocument.Parse(followerHealth).RootElement.GetProperty("role").GetString(), Is.EqualTo("follower"));
            Assert.That(leaderMetrics, Does.Match("cloudlets_controller_leader\\{[^}]*cloudlets_region=\"proc\"[^}]*\\} 1"));
            Assert.That(followerMetrics, Does.Match("cloudlets_controller_leader\\{[^}]*cloudlets_region=\"proc\"[^}]*\\} 0"));
            Assert.That(JsonDocument.Parse(takenOver).RootElement.GetProperty("checks").GetProperty("election").GetProperty("data").GetProperty("candidate").GetString(), Is.EqualTo("ctl-b"));
            Assert.That(codeA, Is.Zero, a.Output);
            Assert.That(codeB, Is.Zero, b.Output);
            Assert.That(leaderEvents.Select(r => r.GetProperty("event").GetString()), Is.EqualTo(new[] { "leadership.acquired", "leadership.lost" }));
            Assert.That(leaderEvents[^1].GetProperty("reason").GetString(), Is.EqualTo("Resigned"));
            Assert.That(leaderEvents[0].GetProperty("leaseId").GetInt64(), Is.Positive);
            Assert.That(acquiredB, Has.Count.EqualTo(1));
            Assert.That(
                auditB.Where(r => r.GetProperty("event").GetString()!.StartsWith("leadership.", StringComparison.Ordinal)).Select(r => $"{r.GetProperty("event").GetString()} {r.GetProperty("leader").GetString()}"),
                Is.EqualTo(new[] { "leadership.following ctl-a", "leadership.acquired ctl-b", "leadership.lost " }),
                "the follower's audit log: whom it followed, its own lead, and its resignation at SIGTERM (no leader known then)");
            Assert.That(acquiredB[0].GetProperty("candidate").GetString(), Is.EqualTo("ctl-b"));
            Assert.That(auditA.Concat(auditB).Where(r => r.GetProperty("event").GetString() == "migration.started"), Is.Empty, "advisory: nothing starts");
        }
    }

    [Test]
    [Category("BadInput")]
    public async Task Run_ElectionWithPasswordInUri_ExitsTwoBeforeConnecting()
    {
        var (code, output) = await ControllerProcess.RunAsync(Bound, "--config", Config(ControllerProcess.FreePort()), "--election", "etcd://root:pw@127.0.0.1:2379");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2), output);
            Assert.That(output, Does.Contain("holds a user or password"));
        }
    }
}
