using System.Net;
using System.Net.Sockets;
using Cloudlets.Core.Probing;
using static Cloudlets.Mqtt.Tests.BrokerTestKit;

namespace Cloudlets.Mqtt.Tests;

/// <summary>cloudlets-agent as a child process against a real mosquitto, probing loopback.</summary>
[NonParallelizable]
public sealed class AgentCommandTests
{
    private MosquittoBroker _broker = null!;
    private TcpListener _service = null!;
    private string _folder = null!;
    private string _targets = null!;
    private string _passwordFile = null!;
    private int _closedPort;

    [OneTimeSetUp]
    public async Task StartBrokerAndService()
    {
        _broker = await MosquittoBroker.StartAsync();
        _service = new TcpListener(IPAddress.Loopback, 0);
        _service.Start(1024);
        _ = Task.Run(async () =>
        {
            // Accept and drop: the agent times the handshake only.
            while (true)
            {
                try
                {
                    (await _service.AcceptSocketAsync()).Dispose();
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        });
        using (var closed = new TcpListener(IPAddress.Loopback, 0))
        {
            closed.Start();
            _closedPort = ((IPEndPoint)closed.LocalEndpoint).Port;
        }

        _folder = Directory.CreateTempSubdirectory("cloudlets-agent-").FullName;
        _targets = Path.Combine(_folder, "targets.json");
        var port = ((IPEndPoint)_service.LocalEndpoint).Port;
        await File.WriteAllTextAsync(_targets, $$"""
            { "targets": [
                { "name": "loopback-icmp", "address": "127.0.0.1" },
                { "name": "service", "address": "127.0.0.1", "port": {{port}} },
                { "name": "closed", "address": "127.0.0.1", "port": {{_closedPort}} } ] }
            """);
        _passwordFile = Path.Combine(_folder, "cell-3.password");
        await File.WriteAllTextAsync(_passwordFile, MosquittoBroker.Users["cell-3"] + "\n");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _service.Stop();
        _service.Dispose();
        await _broker.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task Run_Help_ExitsZeroAndListsTheOptions()
    {
        var (code, output, _) = await AgentProcess.RunAsync("--help");

        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("--vantage-point").And.Contain("--broker").And.Contain("--password-file").And.Contain("--ca"));
    }

    [Test]
    public async Task Run_Version_ExitsZero()
    {
        var (code, output, _) = await AgentProcess.RunAsync("--version");

        Assert.That(code, Is.Zero);
        Assert.That(output, Does.StartWith("0.1.0"));
    }

    [TestCase(new[] { "--broker", "mqtt://127.0.0.1" }, "--vantage-point")]
    [TestCase(new[] { "--vantage-point", "cell-3", "--broker", "http://127.0.0.1", "--targets", "TARGETS" }, "mqtt:// or mqtts://")]
    [TestCase(new[] { "--vantage-point", "a/b", "--broker", "mqtt://127.0.0.1", "--targets", "TARGETS" }, "VantagePoint")]
    [TestCase(new[] { "--vantage-point", "cell-3", "--broker", "mqtt://127.0.0.1", "--targets", "/nonexistent.json" }, "cannot be read")]
    [TestCase(new[] { "--vantage-point", "cell-3", "--broker", "mqtt://127.0.0.1", "--targets", "TARGETS", "--ca", "/nonexistent.pem" }, "not mqtts")]
    [TestCase(new[] { "--vantage-point", "cell-3", "--broker", "mqtt://127.0.0.1", "--targets", "TARGETS", "--period", "x" }, "--period")]
    public async Task Run_BadInput_ExitsTwoAndSaysWhy(string[] arguments, string expected)
    {
        var (code, _, errors) = await AgentProcess.RunAsync(arguments.Select(a => a == "TARGETS" ? _targets : a).ToArray());

        Assert.That(code, Is.EqualTo(2));
        Assert.That(errors, Does.Contain(expected));
    }

    [Test]
    public async Task Run_BadTargetsFile_ExitsTwoListingEveryError()
    {
        var bad = Path.Combine(_folder, "bad.json");
        await File.WriteAllTextAsync(bad, """{ "targets": [ { "name": "a", "address": "nowhere" }, { "name": "a", "address": "127.0.0.1", "port": 0 } ] }""");

        var (code, _, errors) = await AgentProcess.RunAsync("--vantage-point", "cell-3", "--broker", "mqtt://127.0.0.1", "--targets", bad);

        Assert.That(code, Is.EqualTo(2));
        Assert.That(errors, Does.Contain("3 errors").And.Contain("targets[0].address").And.Contain("targets[1].port").And.Contain("listed twice"));
    }

    [TestCase(AgentProcess.SigTerm)]
    [TestCase(AgentProcess.SigInt)]
    public async Task Run_OverTls_PublishesItsProbesAndStopsCleanlyOnSignal(int signal)
    {
        var options = Source(_broker);
        options.Broker = Broker(_broker.Tls, "controller", _broker.CaFile);
        await using var source = MqttLatencySampleSource.Start(options);
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);

        await using var agent = AgentProcess.Start(
            "--vantage-point", "cell-3", "--broker", $"mqtt://127.0.0.1:{_broker.TlsPort}", "--tls", "--ca", _broker.CaFile,
            "--targets", _targets, "--username", "cell-3", "--password-file", _passwordFile, "--period", "200", "--timeout", "500");
        await WaitUntilAsync(() => new[] { "loopback-icmp", "service", "closed" }.All(n => recorder.Items.Any(s => s.Target.Name == n)),
            "samples of every target arrived: " + string.Join('\n', agent.Errors));

        agent.Signal(signal);
        var code = await agent.WaitForExitAsync(TimeSpan.FromSeconds(15));

        var samples = recorder.Items.ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, string.Join('\n', agent.Errors));
            Assert.That(agent.Output.Last(), Does.StartWith("cloudlets-agent: stopped; posted"));
            Assert.That(samples.Select(s => s.VantagePoint), Is.All.EqualTo("cell-3"));
            Assert.That(samples.Where(s => s.Target.Name == "loopback-icmp").Select(s => s.Status), Has.Some.EqualTo(ProbeStatus.Ok));
            Assert.That(samples.Where(s => s.Target.Name == "service").Select(s => s.Status), Has.Some.EqualTo(ProbeStatus.Ok));
            Assert.That(samples.Where(s => s.Target.Name == "closed").Select(s => s.Status), Is.All.EqualTo(ProbeStatus.Unreachable));
            Assert.That(samples.Where(s => s.Status == ProbeStatus.Ok).Select(s => s.RoundTripTime!.Value), Is.All.InRange(TimeSpan.FromTicks(1), TimeSpan.FromMilliseconds(500)));
            Assert.That(source.Counters.Malformed + source.Counters.Foreign, Is.Zero);
        }
    }

    [Test]
    public async Task Run_AgentKilled_SamplesStopAndGoStaleOnTheControllersClock()
    {
        await using var source = MqttLatencySampleSource.Start(Source(_broker));
        var recorder = new Recorder<LatencySample>();
        using var subscription = source.Samples.Subscribe(recorder);
        await source.WaitConnectedAsync().WaitAsync(Patience);
        await using var agent = AgentProcess.Start(
            "--vantage-point", "cell-3", "--broker", _broker.Plain.ToString(), "--targets", _targets,
            "--username", "cell-3", "--password-file", _passwordFile, "--period", "200", "--timeout", "500");
        await WaitUntilAsync(() => recorder.Items.Count >= 10, "samples flow: " + string.Join('\n', agent.Errors));

        agent.Signal(AgentProcess.SigKill);
        await agent.WaitForExitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(500); // anything in flight lands
        var countAfterKill = recorder.Items.Count;
        var lastArrival = source.GetVantagePoints().Single(v => v.VantagePoint == "cell-3").LastArrival;
        await Task.Delay(TimeSpan.FromSeconds(2));

        var newest = recorder.Items.Max(s => s.SentAt);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(recorder.Items, Has.Count.EqualTo(countAfterKill), "no sample after the agent died");
            Assert.That(source.GetVantagePoints().Single(v => v.VantagePoint == "cell-3").LastArrival, Is.EqualTo(lastArrival));
            // A pipeline with a 1 s staleness bound sees cell-3's data as stale now, on its own clock.
            Assert.That(DateTimeOffset.UtcNow - newest, Is.GreaterThan(TimeSpan.FromSeconds(2)));
            Assert.That(source.IsConnected, Is.True);
        }
    }
}
