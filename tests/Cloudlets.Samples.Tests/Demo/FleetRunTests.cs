using System.Diagnostics;
using System.Text.Json;
using Cloudlets.TestUtils;

namespace Cloudlets.Samples.Tests.Demo;

/// <summary>
/// The fleet scenario end to end (issue 14), run as a user runs it (a child process): five cloudlets, three sites, the
/// lab's mosquitto and an agent per site, five guests, the pipeline in automatic mode reading only the broker, and
/// three acts that move the users. The assertions read its JSON summary.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class FleetRunTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp()
    {
        LabGate.Require();
        LabGate.RequireRoot("the fleet demo", "mosquitto");
        _folder = Directory.CreateTempSubdirectory("cloudlets-fleet-").FullName;
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public async Task Run_FleetScenario_EveryVmFollowsItsUsersWithinCapacityThroughTheBroker()
    {
        var json = Path.Combine(_folder, "fleet.json");
        var started = Stopwatch.StartNew();
        var plot = Path.Combine(_folder, "fleet.svg");
        var (exitCode, output) = await RunAsync(json, plot, TestLabs.UniqueName("fleet"));
        TestContext.Out.WriteLine($"the run took {started.Elapsed.TotalSeconds:0} s");
        Assert.That(File.Exists(json), Is.True, "the demo wrote no summary:\n" + output);
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var summary = document.RootElement;
        var vms = summary.GetProperty("vms").EnumerateArray().ToList();
        var hosts = summary.GetProperty("hosts").EnumerateArray().ToList();
        var transport = summary.GetProperty("transport");
        var acts = summary.GetProperty("acts").EnumerateArray().ToList();
        var migrations = vms.SelectMany(v => v.GetProperty("migrations").EnumerateArray()).ToList();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, "the scenario completed:\n" + output);
            Assert.That(vms, Has.Count.EqualTo(5));
            Assert.That(hosts, Has.Count.EqualTo(5));
            foreach (var vm in vms)
            {
                Assert.That(vm.GetProperty("finalHost").GetString(), Is.EqualTo(vm.GetProperty("bestFeasibleHost").GetString()), $"{vm.GetProperty("name")} ends on its best feasible host");
            }

            foreach (var host in hosts)
            {
                Assert.That(host.GetProperty("capacityVms").GetInt32(), Is.EqualTo(2), "two CPUs, overcommit 1, guests of 1 vCPU");
                Assert.That(host.GetProperty("peakVms").GetInt32(), Is.LessThanOrEqualTo(host.GetProperty("capacityVms").GetInt32()), $"{host.GetProperty("name")} never held more than its capacity");
            }

            Assert.That(hosts.Max(h => h.GetProperty("peakVms").GetInt32()), Is.EqualTo(2), "some host was full");
            Assert.That(migrations, Has.Count.GreaterThanOrEqualTo(6), "act 1 moves three VMs, act 2 two, act 3 one");
            Assert.That(migrations.Select(m => m.GetProperty("outcome").GetString()), Has.All.EqualTo("succeeded"), "every migration succeeded");
            Assert.That(transport.GetProperty("samplesReceived").GetInt64(), Is.GreaterThan(0), "samples came through the broker (the pipeline's only source)");
            Assert.That(transport.GetProperty("samplesDropped").GetInt64(), Is.Zero, "nothing was dropped on the way");
            Assert.That(transport.GetProperty("broker").GetString(), Does.StartWith("mqtt://"));

            // After each act, every VM whose best host changed (its users moved) is on the new best host.
            Assert.That(acts, Has.Count.EqualTo(3));
            var svg = File.Exists(plot) ? System.Xml.Linq.XDocument.Parse(File.ReadAllText(plot)) : null;
            Assert.That(svg, Is.Not.Null, "the run wrote its plot (--plot)");
            var texts = svg!.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value).ToList();
            Assert.That(texts, Is.SupersetOf(vms.Select(v => v.GetProperty("name").GetString())), "a series per VM in the legend");
            Assert.That(svg.Descendants().Count(e => e.Name.LocalName == "polyline"), Is.GreaterThanOrEqualTo(4), "each VM's users' latency drawn over time");
            Assert.That(texts.Count(t => t.StartsWith("migration ", StringComparison.Ordinal)), Is.EqualTo(migrations.Count), "every migration marked");
            var previous = vms.ToDictionary(v => v.GetProperty("name").GetString()!, v => v.GetProperty("initialHost").GetString());
            foreach (var act in acts)
            {
                Assert.That(act.GetProperty("completed").GetBoolean(), Is.True, $"{act.GetProperty("label")} settled");
                var moved = 0;
                foreach (var vm in act.GetProperty("vms").EnumerateArray())
                {
                    var name = vm.GetProperty("name").GetString()!;
                    var best = vm.GetProperty("bestFeasibleHost").GetString();
                    if (best != previous[name])
                    {
                        moved++;
                        Assert.That(vm.GetProperty("host").GetString(), Is.EqualTo(best), $"{act.GetProperty("label")}: {name} followed its users to {best}");
                    }

                    previous[name] = best;
                }

                Assert.That(moved, Is.GreaterThan(0), $"{act.GetProperty("label")} moves some VM's users");
            }

            // Capacity binds live: in some act a VM's best feasible host is not its nearest (its nearest was full),
            // and it ran there, not on the nearest (act 1: guest-4 on cloudlet-4 while guest-1 and guest-5 fill cloudlet-3).
            var pushed = acts.SelectMany(a => a.GetProperty("vms").EnumerateArray()
                    .Where(v => v.GetProperty("nearestHost").GetString() != v.GetProperty("bestFeasibleHost").GetString())
                    .Select(v => (Act: a.GetProperty("label").GetString(), Vm: v)))
                .ToList();
            Assert.That(pushed, Is.Not.Empty, "capacity sends some VM to a host other than its nearest");
            foreach (var (act, vm) in pushed)
            {
                Assert.That(vm.GetProperty("host").GetString(), Is.EqualTo(vm.GetProperty("bestFeasibleHost").GetString()), $"{act}: {vm.GetProperty("name")} ran on its best feasible host, not its full nearest {vm.GetProperty("nearestHost")}");
            }
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string json, string plot, string labName)
    {
        var (exitCode, output) = await DemoProcess.RunAsync(
            ["--scenario", Path.Combine(AppContext.BaseDirectory, "scenarios", "fleet.json"), "--json", json, "--plot", plot, "--plain", "--name", labName],
            TimeSpan.FromMinutes(8));
        return (exitCode, DemoProcess.Tail(output, 60));
    }
}
