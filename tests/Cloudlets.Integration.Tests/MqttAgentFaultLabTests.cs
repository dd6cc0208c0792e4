using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Pipeline;
using Cloudlets.Lab;
using Cloudlets.Lab.Agents;
using Cloudlets.Libvirt;
using Cloudlets.Mqtt;
using Cloudlets.TestUtils;

namespace Cloudlets.Integration.Tests;

/// <summary>
/// The transport faults of issue 14, on one lab shared by the fixture (two cloudlets, three sites, two guests
/// booted once, the lab's mosquitto in the edge namespace and a cloudlets-agent per site): the real pipeline in
/// advisory mode reads its samples from the broker through <see cref="MqttLatencySampleSource"/>. guest-1 serves
/// users at site-2, guest-2 users at site-3. An agent is killed; the broker is restarted; a flood of malformed
/// messages arrives on a sample topic.
/// </summary>
[Category("Lab")]
[NonParallelizable]
[SupportedOSPlatform("linux")]
public sealed class MqttAgentFaultLabTests
{
    private const string SiteOfGuest1 = "site-2";
    private const string SiteOfGuest2 = "site-3";
    private static readonly TimeSpan MaxSampleAge = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Evaluation = TimeSpan.FromMilliseconds(500);

    // A decision may lag the newest sample it read by one evaluation and the scheduling of its tick.
    private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(750);

    private readonly Lock _gate = new();
    private readonly List<MigrationDecision> _decisions = [];
    private readonly List<(string VantagePoint, DateTimeOffset ArrivedAt)> _arrivals = [];
    private readonly List<IDisposable> _subscriptions = [];
    private CloudletLab? _lab;
    private MqttLatencySampleSource? _source;
    private MigrationPipeline? _pipeline;

    private CloudletLab Lab => _lab ?? throw new InvalidOperationException("No lab.");

    private MqttLatencySampleSource Source => _source ?? throw new InvalidOperationException("No source.");

    [OneTimeSetUp]
    public async Task StartLabAndPipelineAsync()
    {
        LabGate.Require();
        LabGate.RequireRoot("MQTT lab tests", "mosquitto", "mosquitto_pub", "setsid");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        _lab = new CloudletLabBuilder()
            .WithName(TestLabs.UniqueName("labagents"))
            .WithHosts(2)
            .WithSites(3)
            .WithGuestOn("cloudlet-1")
            .WithGuestOn("cloudlet-1")
            .WithAgents(new LabAgentOptions { AgentAssembly = Path.Combine(AppContext.BaseDirectory, "cloudlets-agent.dll"), Period = TimeSpan.FromMilliseconds(500) })
            .Build();
        await _lab.StartAsync(timeout.Token);
        var broker = Lab.Broker!;
        TestContext.Progress.WriteLine($"lab {Lab.Name} up in {Lab.Timings.Startup.TotalSeconds:0.0} s; broker {broker.Url}; agents {string.Join(", ", Lab.Agents.Select(a => $"{a.Site}={a.Pid}"))}");

        _source = MqttLatencySampleSource.Start(new MqttSampleSourceOptions
        {
            Broker = new MqttBrokerOptions
            {
                Broker = broker.Url,
                Username = broker.Username,
                Password = File.ReadLines(broker.CredentialsFile).First(),
                SocketFactory = Lab.CreateBrokerSocket,
                KeepAlive = TimeSpan.FromSeconds(2),
                ConnectTimeout = TimeSpan.FromSeconds(2),
                ReconnectMinDelay = TimeSpan.FromMilliseconds(100),
                ReconnectMaxDelay = TimeSpan.FromSeconds(1),
            },
        });
        _subscriptions.Add(Source.Batches.Subscribe(b =>
        {
            lock (_gate)
            {
                _arrivals.Add((b.VantagePoint, b.ArrivedAt));
            }
        }));
        await Source.WaitConnectedAsync(timeout.Token);

        var builder = new MigrationPipelineBuilder()
            .WithSamples(Source.Samples)
            .WithPolicy(new LowestLatencyPolicy(new LowestLatencyPolicyOptions { MaxSampleAge = MaxSampleAge }))
            .AddVm(new VmDefinition(Lab.Guests[0].Name, [new VmUser(SiteOfGuest1)]))
            .AddVm(new VmDefinition(Lab.Guests[1].Name, [new VmUser(SiteOfGuest2)]))
            .Configure(o =>
            {
                o.Mode = PipelineMode.Advisory;
                o.EvaluationInterval = Evaluation;
                o.PlacementRefreshInterval = TimeSpan.FromSeconds(2);
                o.HostTimeout = TimeSpan.FromSeconds(3);
                o.SampleWindow = 6;
            });
        foreach (var h in Lab.Hosts)
        {
            var host = await LibvirtHypervisorHost.ConnectAsync(
                new LibvirtHostOptions { Name = h.Name, Uri = h.Uri, NetworkNamespace = Lab.Edge.Namespace, KeepAliveInterval = TimeSpan.FromSeconds(1), KeepAliveCount = 2 },
                cancellationToken: timeout.Token);
            builder.AddHost(host, h.Name, h.MigrationUri);
        }

        _pipeline = builder.Build();
        _subscriptions.Add(_pipeline.Decisions.Subscribe(d =>
        {
            lock (_gate)
            {
                _decisions.Add(d);
            }
        }));
        await _pipeline.StartAsync(timeout.Token);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        foreach (var s in _subscriptions)
        {
            s.Dispose();
        }

        if (_pipeline is not null)
        {
            await _pipeline.DisposeAsync();
        }

        if (_source is not null)
        {
            await _source.DisposeAsync();
        }

        if (_lab is not null)
        {
            var name = _lab.Name;
            await _lab.DisposeAsync();
            Assert.That(CloudletLab.FindLeftovers(name), Is.Empty, "the lab's teardown ends its broker and agents with the rest");
        }
    }

    [SetUp]
    public async Task EverythingRunningAsync()
    {
        // Every test starts with the broker and all three agents up, and fresh decisions for both guests.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await Lab.StartBrokerAsync(timeout.Token);
        foreach (var site in Lab.Sites)
        {
            await Lab.StartAgentAsync(site.Name, timeout.Token);
        }

        var from = DateTimeOffset.UtcNow;
        Assert.That(await WaitUntilAsync(() => FreshDecisionSince(Lab.Guests[0].Name, from) && FreshDecisionSince(Lab.Guests[1].Name, from), TimeSpan.FromSeconds(45)),
            Is.True, "precondition: both guests get decisions on fresh data");
    }

    [Test]
    public async Task Pipeline_AgentKilled_ItsVmHoldsOnStaleDataOthersCarryOn()
    {
        var guest1 = Lab.Guests[0].Name;
        var guest2 = Lab.Guests[1].Name;
        var killedAt = DateTimeOffset.UtcNow;
        await Lab.KillAgentAsync(SiteOfGuest1);
        Assert.That(Lab.Agents.Select(a => a.Site), Does.Not.Contain(SiteOfGuest1), "the killed agent is no longer listed");

        // Past the staleness bound (and one evaluation), every decision for guest-1 is a hold on stale data.
        var staleFrom = killedAt + MaxSampleAge + Slack;
        var until = staleFrom + TimeSpan.FromSeconds(4);
        await Task.Delay(until - DateTimeOffset.UtcNow);
        var (g1, g2) = (DecisionsBetween(guest1, staleFrom, until), DecisionsBetween(guest2, killedAt, until));
        Dump(g1.Concat(g2));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ArrivalsSince(SiteOfGuest1, killedAt + TimeSpan.FromSeconds(1)), Is.Zero, "nothing arrives from the killed agent's site");
            Assert.That(ArrivalsSince(SiteOfGuest2, staleFrom), Is.GreaterThan(4), "the other sites keep publishing");
            Assert.That(g1, Has.Count.GreaterThanOrEqualTo(4), "guest-1 is still decided on every evaluation");
            Assert.That(g1.Select(d => (d.IsMove, d.Reason)), Has.All.EqualTo((false, DecisionReason.StaleData)), "guest-1 holds with the stale-data reason");
            Assert.That(g2, Has.Count.GreaterThanOrEqualTo(8), "guest-2 is decided on every evaluation");
            Assert.That(g2.Select(d => d.Reason), Has.None.EqualTo(DecisionReason.StaleData), "guest-2, whose users are at another site, carries on");
            Assert.That(StaleDecisionsOnFreshData(), Is.Empty, "no decision without the stale-data reason was made on data older than the bound");
        }

        // The agent started again: guest-1 is decided on fresh data again.
        var restartedAt = DateTimeOffset.UtcNow;
        await Lab.StartAgentAsync(SiteOfGuest1);
        Assert.That(await WaitUntilAsync(() => FreshDecisionSince(guest1, restartedAt), TimeSpan.FromSeconds(30)), Is.True, "guest-1's decisions resume once its agent is back");
    }

    [Test]
    public async Task Pipeline_BrokerRestarted_AgentsAndSourceReconnectDecisionsResumeNothingDecidedOnOldData()
    {
        var stoppedAt = DateTimeOffset.UtcNow;
        await Lab.StopBrokerAsync();
        // Down for longer than the staleness bound: every guest's data goes stale meanwhile.
        await Task.Delay(MaxSampleAge + TimeSpan.FromSeconds(3));
        var startedAt = DateTimeOffset.UtcNow;
        await Lab.RestartBrokerAsync();

        var resumed = await WaitUntilAsync(
            () => Lab.Sites.All(s => ArrivalsSince(s.Name, startedAt) > 0) && Lab.Guests.All(g => FreshDecisionSince(g.Name, startedAt)),
            TimeSpan.FromSeconds(45));
        var resumedAt = DateTimeOffset.UtcNow;
        var outage = Lab.Guests.SelectMany(g => DecisionsBetween(g.Name, stoppedAt + MaxSampleAge + Slack, startedAt)).ToList();
        Dump(outage);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(resumed, Is.True, "every agent and the source reconnected, and both guests are decided on fresh data again");
            Assert.That(Source.IsConnected, Is.True, "the source is connected again");
            Assert.That(Lab.Agents, Has.Count.EqualTo(3), "the agents kept running through the outage");
            Assert.That(Lab.Sites.Select(s => ArrivalsBetween(s.Name, stoppedAt + TimeSpan.FromSeconds(1), startedAt)), Has.All.Zero, "nothing arrived while the broker was down");
            Assert.That(outage, Has.Count.GreaterThanOrEqualTo(2), "the guests were decided during the outage");
            Assert.That(outage.Select(d => (d.IsMove, d.Reason)), Has.All.EqualTo((false, DecisionReason.StaleData)), "during the outage every decision is a hold on stale data");
            Assert.That(StaleDecisionsOnFreshData(), Is.Empty, "no decision without the stale-data reason was made on data older than the bound");
        }

        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"broker down {(startedAt - stoppedAt).TotalSeconds:0.0} s; decisions resumed {(resumedAt - startedAt).TotalSeconds:0.0} s after it was back"));
    }

    [Test]
    public async Task Pipeline_MalformedFlood_CountedAndDroppedPipelineUnaffected()
    {
        const int Flood = 2000;
        const int Foreign = 50;
        var before = Source.Counters;
        var floodStart = DateTimeOffset.UtcNow;

        // site-2's own credentials: the ACL lets them publish on its topic only. The 50 on site-3's topic are refused by the broker.
        var floodCode = await PublishLinesAsync(SiteOfGuest1, MqttTopics.Samples(SiteOfGuest1), MalformedLines(Flood, seed: 14));
        var deniedCode = await PublishLinesAsync(SiteOfGuest1, MqttTopics.Samples(SiteOfGuest2), MalformedLines(Foreign, seed: 15));
        var counted = await WaitUntilAsync(() => Source.Counters.Malformed - before.Malformed >= Flood, TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(3)); // what else would arrive, and decisions after the flood
        var after = Source.Counters;
        var floodEnd = DateTimeOffset.UtcNow;
        var decisions = Lab.Guests.Select(g => DecisionsBetween(g.Name, floodStart, floodEnd)).ToList();
        TestContext.Out.WriteLine($"malformed {after.Malformed - before.Malformed}, foreign {after.Foreign - before.Foreign}, samples {after.Samples - before.Samples}, flood {(floodEnd - floodStart).TotalSeconds:0.0} s");
        using (Assert.EnterMultipleScope())
        {
            Assert.That((floodCode, deniedCode), Is.EqualTo((0, 0)), "mosquitto_pub ran");
            Assert.That(counted, Is.True, "every malformed message was counted");
            Assert.That(after.Malformed - before.Malformed, Is.EqualTo(Flood), "exactly the flood was counted as malformed: the messages on another site's topic never got past the ACL");
            Assert.That(after.Samples - before.Samples, Is.GreaterThan(0), "valid samples kept flowing");
            Assert.That(ArrivalsSince(SiteOfGuest1, floodStart), Is.GreaterThan(4), "site-2's own agent kept being heard during the flood");
            Assert.That(Source.IsConnected, Is.True, "the source is still connected");
            Assert.That(decisions.Select(d => d.Count), Has.All.GreaterThanOrEqualTo(4), "both guests were decided during the flood");
            Assert.That(decisions.SelectMany(d => d).Select(d => d.Reason), Has.None.EqualTo(DecisionReason.StaleData), "the flood made no guest's data stale");
        }
    }

    /// <summary>Publishes each line as one QoS 1 message with <c>mosquitto_pub -l</c>, from the site's namespace with the site's credentials.</summary>
    private async Task<int> PublishLinesAsync(string site, string topic, IEnumerable<string> lines)
    {
        var broker = Lab.Broker!;
        var info = new ProcessStartInfo(LabPrerequisites.FindProgram("ip")!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "netns", "exec", Lab.GetSite(site).Namespace, LabPrerequisites.FindProgram("mosquitto_pub")!, "-h", broker.Url.Host, "-p", broker.Url.Port.ToString(CultureInfo.InvariantCulture),
                     "-u", site, "-P", File.ReadLines(broker.CredentialsFileFor(site)).First(), "-t", topic, "-q", "1", "-l",
                 })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        foreach (var line in lines)
        {
            await process.StandardInput.WriteLineAsync(line);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        TestContext.Out.WriteLine($"mosquitto_pub {topic}: exit {process.ExitCode} {await output} {await errors}".Trim());
        return process.ExitCode;
    }

    /// <summary>Lines that are not version-1 batches: random printable bytes, some starting like one.</summary>
    private static IEnumerable<string> MalformedLines(int count, int seed)
    {
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var sb = new StringBuilder(i % 3 == 0 ? "CL" : "");
            var length = random.Next(1, 200);
            for (var j = 0; j < length; j++)
            {
                sb.Append((char)random.Next(33, 127));
            }

            yield return sb.ToString();
        }
    }

    private bool FreshDecisionSince(string vm, DateTimeOffset from)
    {
        lock (_gate)
        {
            return _decisions.Any(d => d.VmName == vm && d.At >= from && d.Reason != DecisionReason.StaleData && d.Reason != DecisionReason.PlacementUnknown);
        }
    }

    private List<MigrationDecision> DecisionsBetween(string vm, DateTimeOffset from, DateTimeOffset to)
    {
        lock (_gate)
        {
            return [.. _decisions.Where(d => d.VmName == vm && d.At >= from && d.At < to)];
        }
    }

    private int ArrivalsSince(string vantagePoint, DateTimeOffset from) => ArrivalsBetween(vantagePoint, from, DateTimeOffset.MaxValue);

    private int ArrivalsBetween(string vantagePoint, DateTimeOffset from, DateTimeOffset to)
    {
        lock (_gate)
        {
            return _arrivals.Count(a => a.VantagePoint == vantagePoint && a.ArrivedAt >= from && a.ArrivedAt < to);
        }
    }

    /// <summary>
    /// Every decision of the whole run, other than a hold on stale data, whose VM's site had no message arrive within
    /// the staleness bound before it (arrival times on the controller's clock, the one the pipeline decides on).
    /// </summary>
    private List<string> StaleDecisionsOnFreshData()
    {
        lock (_gate)
        {
            var site = new Dictionary<string, string> { [Lab.Guests[0].Name] = SiteOfGuest1, [Lab.Guests[1].Name] = SiteOfGuest2 };
            return [.. _decisions
                .Where(d => d.Reason is not (DecisionReason.StaleData or DecisionReason.PlacementUnknown or DecisionReason.CurrentHostDown))
                .Where(d => !_arrivals.Any(a => a.VantagePoint == site[d.VmName] && a.ArrivedAt <= d.At + Slack && a.ArrivedAt >= d.At - MaxSampleAge - Slack))
                .Select(d => string.Create(CultureInfo.InvariantCulture, $"{d.At:HH:mm:ss.fff} {d.VmName} {d.Kind}/{d.Reason}"))];
        }
    }

    private static void Dump(IEnumerable<MigrationDecision> decisions)
    {
        foreach (var group in decisions.GroupBy(d => (d.VmName, d.Kind, d.Reason)))
        {
            TestContext.Out.WriteLine($"  {group.Key.VmName}: {group.Count()} x {group.Key.Kind}/{group.Key.Reason}, {group.First().At:HH:mm:ss.f}-{group.Last().At:HH:mm:ss.f}");
        }
    }

    private static async Task<bool> WaitUntilAsync(Func<bool> condition, TimeSpan within)
    {
        var started = Stopwatch.GetTimestamp();
        while (!condition())
        {
            if (Stopwatch.GetElapsedTime(started) >= within)
            {
                return false;
            }

            await Task.Delay(100);
        }

        return true;
    }
}
