using System.Text.Json;
using Cloudlets.Lab.Ownership;
using Cloudlets.Lab.Processes;
using Cloudlets.Probing.Commands;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>
/// <c>cloudlets-lab up --agents</c> on a real lab (issue 14): the broker runs inside the edge namespace and listens on
/// the edge's address only, each site's agent runs inside the site's namespace, <c>status --json</c> lists them, and
/// <c>down</c> ends exactly them, also after <c>up</c> was killed half-way.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class LabAgentsLabTests
{
    private string _name = "";

    [SetUp]
    public void Gate()
    {
        LabGate.Require();
        LabGate.RequireRoot("Lab agent tests", "mosquitto", "setsid", "ss");
        _name = TestLabs.UniqueName("agents");
    }

    [TearDown]
    public async Task DownAsync()
    {
        // Only after the gate let the test run (it names the lab last).
        if (_name.Length > 0)
        {
            await CloudletLab.DownAsync(_name);
        }
    }

    [Test]
    public async Task Up_WithAgents_StatusListsBrokerAndAgentsInTheirNamespacesAndDownEndsThem()
    {
        var up = await LabSample.RunAsync("up", "--hosts", "1", "--sites", "2", "--agents", "--name", _name);
        Assert.That(up.ExitCode, Is.Zero, up.StandardError);
        var status = await LabSample.RunAsync("status", "--json", "--name", _name);
        Assert.That(status.ExitCode, Is.Zero, status.StandardError);
        using var doc = JsonDocument.Parse(status.StandardOutput);
        var broker = doc.RootElement.GetProperty("broker");
        var edge = doc.RootElement.GetProperty("edge");
        var agents = doc.RootElement.GetProperty("agents").EnumerateArray().Select(a => (Site: a.GetProperty("site").GetString()!, Pid: a.GetProperty("pid").GetInt32())).ToList();
        var state = new LabPaths(LabPaths.DefaultRoot).TryReadState(_name)!;
        var mosquitto = state.Processes.Single(p => p.Role == "mosquitto");
        var listening = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("ss", "-Hltn").InNamespace(edge.GetProperty("namespace").GetString()));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(broker.GetProperty("url").GetString(), Is.EqualTo($"mqtt://{edge.GetProperty("address").GetString()}:1883"));
            Assert.That(broker.GetProperty("namespace").GetString(), Is.EqualTo(_name + "-edge"));
            Assert.That(File.GetUnixFileMode(broker.GetProperty("credentialsFile").GetString()!), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(agents.Select(a => a.Site), Is.EqualTo(new[] { "site-1", "site-2" }));
            foreach (var (site, pid) in agents)
            {
                var ns = site == "site-1" ? _name + "-edge" : _name + "-s2";
                Assert.That(LabProcess.NetNamespaceInode(pid), Is.EqualTo(LabOwnership.NamespaceInode(ns)), $"the agent of {site} runs inside {ns}");
                Assert.That(Path.GetFileName(LabProcess.ExecutablePath(pid)), Is.EqualTo("dotnet"));
            }

            Assert.That(mosquitto.Identity.IsAlive(), Is.True);
            Assert.That(LabProcess.NetNamespaceInode(mosquitto.Pid), Is.EqualTo(LabOwnership.NamespaceInode(_name + "-edge")), "the broker runs inside the edge namespace");
            Assert.That(listening.StandardOutput, Does.Contain($" {edge.GetProperty("address").GetString()}:1883 "));
            Assert.That(listening.StandardOutput, Does.Not.Contain("0.0.0.0:1883").And.Not.Contain("*:1883").And.Not.Contain("]:1883"), "no listener on any other address");
        }

        var down = await LabSample.RunAsync("down", "--name", _name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(agents.Select(a => LabProcess.IsAlive(a.Pid)), Has.All.False, "down ended every agent");
            Assert.That(mosquitto.Identity.Exists(), Is.False, "down ended the broker");
            Assert.That(CloudletLab.FindLeftovers(_name), Is.Empty);
        }
    }

    [TestCase(LabPhases.Broker, 0)]
    [TestCase(LabPhases.Agents, 2)]
    public async Task Up_KilledAfterPhase_StateRecordsWhatRunsAndDownEndsIt(string phase, int agents)
    {
        await LabSample.KillAtPhaseAsync(phase, "up", "--hosts", "1", "--sites", "2", "--agents", "--name", _name);
        var recorded = new LabPaths(LabPaths.DefaultRoot).TryReadState(_name)!.Processes.Where(p => p.Host == 0).ToList();
        Assert.That(recorded.Select(p => p.Role), Is.EqualTo(new[] { "mosquitto", "agent site-1", "agent site-2" }.Take(1 + agents)));
        Assert.That(recorded.Select(p => p.Identity.IsAlive()), Has.All.True, "they outlive the killed up (their own session)");

        var down = await LabSample.RunAsync("down", "--name", _name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(recorded.Select(p => p.Identity.Exists()), Has.All.False);
            Assert.That(CloudletLab.FindLeftovers(_name), Is.Empty);
        }
    }

    [Test]
    public async Task Down_BrokerAndAgentsNotRecorded_EndsThemByNamespaceAndTheirLabFiles()
    {
        var up = await LabSample.RunAsync("up", "--hosts", "1", "--sites", "2", "--agents", "--name", _name);
        Assert.That(up.ExitCode, Is.Zero, up.StandardError);
        // What a run killed between starting them and recording them leaves: they run, the state does not list them.
        var paths = new LabPaths(LabPaths.DefaultRoot);
        var state = paths.TryReadState(_name)!;
        var spawned = state.Processes.Where(p => p.Host == 0).ToList();
        paths.WriteState(state with { Processes = [.. state.Processes.Where(p => p.Host != 0)] });
        Assert.That(spawned.Select(p => p.Identity.IsAlive()), Is.EqualTo(new[] { true, true, true }), "precondition: the broker and two agents run");

        var down = await LabSample.RunAsync("down", "--name", _name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(down.ExitCode, Is.Zero, down.StandardError);
            Assert.That(spawned.Select(p => p.Identity.Exists()), Has.All.False, "found in the lab's namespaces with the lab's broker files in their arguments, and ended");
            Assert.That(CloudletLab.FindLeftovers(_name), Is.Empty);
        }
    }
}
