using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Cloudlets.Core.Shaping;
using Cloudlets.Etcd.Tests.Support;
using Cloudlets.Lab;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.Probing.Linux;
using Cloudlets.TestUtils;

namespace Cloudlets.Controller.Tests.Lab;

/// <summary>
/// Two regions on one real etcd (Debian's etcd-server on loopback, started here) over a real 4-host lab:
/// region <c>lab</c> (cloudlet-1 and -2, the guest on cloudlet-1) with three cloudlet-controller processes
/// in automatic mode, and region <c>west</c> (cloudlet-3 and -4, the second guest on cloudlet-3) with one
/// controller of its own. The users' latency is shaped to 300/20/60/20 ms, so lab's leader moves its guest
/// to cloudlet-2 and west's leader moves its guest to cloudlet-4; both lead at once, each moves only its
/// own VM, on its own hosts. Exactly one controller leads;
/// the leader is SIGKILLed as soon as its migration starts: the daemons carry the migration to its
/// end (peer-to-peer: the source's libvirtd drives it), a follower leads within the lease TTL plus one
/// evaluation window (and generous slack for a loaded machine), and the guest is not migrated again
/// because of the takeover. Every migration.started record in the three audit logs was written by
/// the controller that led at that moment, with its lease. Then a partition: the first run's controllers
/// step aside, a second etcd runs in a network namespace made here, one controller in a namespace of its
/// own leads and has its packets to etcd dropped there (iptables); it starts no migration from the cut on,
/// a controller on etcd's side takes over and makes the move the users now need, and when the cut is
/// healed the old leader rejoins as a follower. One lab, one boot of each guest; the guests' placement is
/// sampled from the hosts for the whole run.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class ControllerElectionLabTests : LabFixture
{
    private static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan EvaluationWindow = TimeSpan.FromSeconds(1);

    // A correctness bound, not a speed bound: a takeover needs the lease to expire (TTL after the last
    // keepalive), the follower's watch to fire and one campaign transaction. The slack absorbs a loaded
    // 2-core CI machine (process start, GC, thread-pool starvation); the measured figure is printed.
    private static readonly TimeSpan TakeoverBound = LeaseTtl + EvaluationWindow + TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    // Migrations limited to 4 MiB/s so the one the killed leader started is still running when a follower
    // takes over (a few seconds on an idle TCG guest): the takeover must find it under way and leave it be.
    private const long MigrationBandwidthMiBps = 4;

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };
    private readonly List<Instance> _instances = [];
    private string _folder = "";
    private INetemShaper? _shaper;
    private EtcdServer? _etcd;
    private readonly Dictionary<string, HttpClient> _namespaceClients = [];
    private Instance? _west;
    private Instance? _killed;
    private DateTimeOffset _killedAt;
    private PartitionNetwork? _network;
    private EtcdServer? _partitionEtcd;
    private PlacementSampler? _sampler;

    protected override string LabPrefix => "cel";

    protected override int LabHosts => 4;

    protected override IReadOnlyList<string> LabGuestsOn => ["cloudlet-1", "cloudlet-3"];

    /// <summary>Region lab's guest (on cloudlet-1 at the start).</summary>
    private LabGuest Guest => Lab.Guests[0];

    /// <summary>Region west's guest (on cloudlet-3 at the start).</summary>
    private LabGuest WestGuest => Lab.Guests[1];

    private IReadOnlyList<LabHost> LabRegionHosts => [Lab.GetHost("cloudlet-1"), Lab.GetHost("cloudlet-2")];

    private IReadOnlyList<LabHost> WestRegionHosts => [Lab.GetHost("cloudlet-3"), Lab.GetHost("cloudlet-4")];

    /// <param name="Namespace">The network namespace the controller runs in (its HTTP endpoint is on that namespace's loopback), or null for the test's own.</param>
    private sealed record Instance(string Id, int Port, string Audit, ControllerProcess Process, string? Namespace = null)
    {
        public string Base => $"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";
    }

    private readonly StorySteps _story = new(nameof(ControllerElectionLabTests));

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        EtcdServer.Require();
        _folder = Directory.CreateTempSubdirectory("cloudlets-controller-election-lab-").FullName;
        _shaper = await NetemShaperFactory.CreateAsync(cancellationToken: timeout.Token);
        await Lab.ShapeAsync(_shaper, [("cloudlet-1", TimeSpan.FromMilliseconds(300)), ("cloudlet-2", TimeSpan.FromMilliseconds(20)), ("cloudlet-3", TimeSpan.FromMilliseconds(60)), ("cloudlet-4", TimeSpan.FromMilliseconds(20))], timeout.Token);
        _sampler = await PlacementSampler.StartAsync(Lab, [Guest.Name, WestGuest.Name], timeout.Token);
        _etcd = await EtcdServer.StartAsync(timeout.Token);
        foreach (var id in new[] { "ctl-a", "ctl-b", "ctl-c" })
        {
            _instances.Add(await StartInstanceAsync(id, "lab", LabRegionHosts, Guest, null, _etcd.Endpoint, timeout.Token));
        }

        _west = await StartInstanceAsync("ctl-west", "west", WestRegionHosts, WestGuest, null, _etcd.Endpoint, timeout.Token);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        // Progress, not Out: a one-time tear-down's Out is not shown in the console log, and these lines explain a failure.
        foreach (var i in _west is null ? _instances : [.. _instances, _west])
        {
            await i.Process.DisposeAsync();
            await TestContext.Progress.WriteLineAsync($"--- {i.Id} output (migration and leadership lines)");
            foreach (var line in i.Process.Output.Split('\n').Where(l => l.Contains("igrat", StringComparison.Ordinal) || l.Contains("lead", StringComparison.Ordinal)).TakeLast(40))
            {
                await TestContext.Progress.WriteLineAsync(line.Length > 400 ? line[..400] : line);
            }

            if (File.Exists(i.Audit))
            {
                await TestContext.Progress.WriteLineAsync($"--- {i.Id} audit (no decisions)");
                foreach (var line in File.ReadLines(i.Audit).Where(l => !l.Contains("\"event\":\"decision\"", StringComparison.Ordinal)))
                {
                    await TestContext.Progress.WriteLineAsync(line.Length > 400 ? line[..400] : line);
                }
            }
        }

        if (_sampler is not null)
        {
            await _sampler.DisposeAsync();
        }

        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }

        if (_partitionEtcd is not null)
        {
            await _partitionEtcd.DisposeAsync();
        }

        if (_network is not null)
        {
            await _network.DisposeAsync();
        }

        foreach (var client in _namespaceClients.Values)
        {
            client.Dispose();
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
    public async Task Election_ThreeControllers_ExactlyOneLeads()
    {
        _story.Enter(1);
        var roles = await WaitRolesAsync(r => r.Count(x => x.Role == "leader") == 1 && r.Count(x => x.Role == "follower") == 2 && r.All(x => x.Leader is not null && x.Leader == r.Single(y => y.Role == "leader").Id));
        var leader = roles.Single(r => r.Role == "leader");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(roles.Select(r => r.Leader), Is.All.EqualTo(leader.Id), "every controller names the same leader");
            Assert.That(await _etcd!.GetValueAsync("/cloudlets/v1/elections/lab"), Is.EqualTo(leader.Id));
        }
    }

    [Test]
    [Order(2)]
    public async Task SigkillOfLeader_DuringMigration_MigrationCompletesFollowerLeadsNoSecondMigration()
    {
        _story.Enter(2);
        // The leader moves the guest to cloudlet-2 (20 ms) as soon as its windows confirm; kill it the moment its migration starts.
        var (leader, started) = await WaitMigrationStartedAsync();

        // The record is written when the executor passes its start gate; the libvirt job begins a moment
        // later. Kill once the source's libvirtd runs the job (virsh domjobinfo), so the kill falls inside it.
        await WaitSourceJobAsync(Str(started, "source")!);
        leader.Process.Kill();
        _killedAt = DateTimeOffset.UtcNow;
        _killed = leader;
        await leader.Process.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await TestContext.Out.WriteLineAsync($"Killed {leader.Id} {(_killedAt - Time(started)).TotalMilliseconds:0} ms after its migration.started record.");

        var survivors = _instances.Where(i => i != leader).ToList();
        var (newLeader, acquired) = await WaitNewLeaderAsync(survivors);
        var takeover = Time(acquired) - _killedAt;
        await TestContext.Out.WriteLineAsync($"Takeover: {newLeader.Id} led {takeover.TotalSeconds:0.00} s after the SIGKILL (lease TTL {LeaseTtl.TotalSeconds} s, bound {TakeoverBound.TotalSeconds} s).");

        await WaitGuestOnlyOnAsync("cloudlet-2");
        var copies = await Lab.FindGuestCopiesAsync(Guest);

        // Watch well past the takeover: the new leader sees the guest on its best host and must not move it again.
        await Task.Delay(TimeSpan.FromSeconds(10));
        var startsAfterKill = survivors.SelectMany(i => Records(i).Where(r => Event(r) == "migration.started" && Time(r) >= _killedAt).Select(r => (i.Id, r))).ToList();
        var finishedByNewLeader = Records(newLeader).Where(r => Event(r) == "migration.finished").ToList();
        var learned = finishedByNewLeader.Where(r => StartedElsewhere(r) && Str(r, "vm") == Guest.Name).ToList();
        await TestContext.Out.WriteLineAsync($"The new leader reported the migration it found under way: {string.Join(" ", learned)}");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(copies.Select(h => h.Name), Is.EqualTo(new[] { "cloudlet-2" }), "the migration the killed leader started completed: one copy, on the destination");
            Assert.That(takeover, Is.LessThan(TakeoverBound), $"a follower leads within the lease TTL plus one window (and slack): measured {takeover.TotalSeconds:0.00} s");
            Assert.That(takeover, Is.GreaterThan(TimeSpan.Zero));
            Assert.That(startsAfterKill.Select(s => $"{s.Id}: {s.r}"), Is.Empty, "the guest is not migrated again because of the takeover");
            Assert.That(finishedByNewLeader.Where(r => Str(r, "outcome") != "Succeeded").Select(r => r.ToString()), Is.Empty, "the new leader reports no failed or skipped migration");
            Assert.That(learned.Select(r => Str(r, "outcome")), Is.EqualTo(new[] { "Succeeded" }),
                "the new leader (a follower then) found the killed leader's migration under way on the hosts and reported its outcome when it ended");
            Assert.That(learned.Select(r => Str(r, "destination")), Is.EqualTo(new[] { "cloudlet-2" }));
        }
    }

    [Test]
    [Order(3)]
    public void AuditLogs_EveryMigrationStarted_ByTheInstanceThatLedThen()
    {
        _story.Enter(3);
        var all = _instances.SelectMany(i => Records(i).Select(r => (i.Id, Record: r))).ToList();
        var acquisitions = all.Where(x => Event(x.Record) == "leadership.acquired").OrderBy(x => Time(x.Record)).ToList();
        var starts = all.Where(x => Event(x.Record) == "migration.started").ToList();
        Assert.That(starts, Is.Not.Empty, "the run started at least the one migration");
        using (Assert.EnterMultipleScope())
        {
            foreach (var (id, start) in starts)
            {
                var at = Time(start);

                // The last acquisition before the start, in any instance, must be this instance's, with the lease the start names.
                var last = acquisitions.LastOrDefault(a => Time(a.Record) <= at);
                Assert.That(last.Id, Is.EqualTo(id), $"{id} started {Str(start, "vm")} at {at:O} while {last.Id ?? "nobody"} led");
                Assert.That(Str(start, "candidate"), Is.EqualTo(id));
                Assert.That(Str(start, "role"), Is.EqualTo("leader"));
                Assert.That(start.GetProperty("leaseId").GetInt64(), Is.EqualTo(last.Record.ValueKind == JsonValueKind.Undefined ? -1 : last.Record.GetProperty("leaseId").GetInt64()));

                // No leadership.lost of this instance between its acquisition and the start.
                var lost = Records(_instances.Single(i => i.Id == id)).Where(r => Event(r) == "leadership.lost" && Time(r) >= Time(last.Record) && Time(r) <= at);
                Assert.That(lost, Is.Empty, $"{id} had lost its leadership before starting {Str(start, "vm")}");
            }

            // No VM had two migrations at once: per VM, a start is followed by its finish before the next start (across instances; the killed one never wrote its finish).
            foreach (var vm in starts.Select(s => Str(s.Record, "vm")).Distinct())
            {
                var events = all.Where(x => Str(x.Record, "vm") == vm && (Event(x.Record) == "migration.started" || (Event(x.Record) == "migration.finished" && !StartedElsewhere(x.Record))))
                    .OrderBy(x => Time(x.Record)).ToList();
                var open = 0;
                foreach (var (id, r) in events)
                {
                    open += Event(r) == "migration.started" ? 1 : -1;
                    Assert.That(open, Is.LessThanOrEqualTo(1), $"VM {vm} had two migrations at once ({id} at {Time(r):O})");
                    open = Math.Max(open, 0);
                }
            }
        }
    }

    [Test]
    [Order(4)]
    public async Task TwoRegions_OneEtcd_BothLeadAtOnceAndEachMovesOnlyItsOwnVm()
    {
        _story.Enter(4);
        await WaitWestGuestOnAsync("cloudlet-4");
        var west = _west!;
        var live = _instances.Where(i => !i.Process.HasExited).ToList();

        // One round of every controller's /healthz: both regions have a leader at the same moment.
        var roles = await WaitAsync(
            async () =>
            {
                var r = new List<(string Id, string? Role, string? Leader, string? Region)>();
                foreach (var i in live.Append(west))
                {
                    var (id, role, leader) = await RoleAsync(i);
                    r.Add((id, role, leader, await RegionAsync(i)));
                }

                return r;
            },
            r => r.Count(x => x.Region == "lab" && x.Role == "leader") == 1 && r.Single(x => x.Id == west.Id).Role == "leader",
            "one leader in region lab and ctl-west leading region west at the same time");
        var labLeader = roles.Single(x => x.Region == "lab" && x.Role == "leader").Id;
        var labKey = await _etcd!.GetValueAsync("/cloudlets/v1/elections/lab");
        var westKey = await _etcd.GetValueAsync("/cloudlets/v1/elections/west");
        var westMetrics = await ClientFor(west).GetStringAsync(new Uri(west.Base + "/metrics"));
        var labMetrics = await ClientFor(live.Single(i => i.Id == labLeader)).GetStringAsync(new Uri(live.Single(i => i.Id == labLeader).Base + "/metrics"));
        var westHosts = JsonDocument.Parse(await _http.GetStringAsync(new Uri(west.Base + "/api/v1/hosts"))).RootElement;

        var labRegion = LabRegionHosts.Select(h => h.Name).ToHashSet();
        var westRegion = WestRegionHosts.Select(h => h.Name).ToHashSet();
        var westStarts = Records(west).Where(r => Event(r) == "migration.started").ToList();
        var labStarts = _instances.SelectMany(i => Records(i).Where(r => Event(r) == "migration.started").Select(r => (i.Id, r))).ToList();
        var samples = _sampler!.Samples;
        await TestContext.Out.WriteLineAsync($"Regions: lab led by {labLeader} (etcd: {labKey}), west by ctl-west (etcd: {westKey}); {westStarts.Count} west and {labStarts.Count} lab migrations started; {samples.Count} placement samples.");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(roles.Where(x => x.Region == "lab").Select(x => x.Id), Is.EquivalentTo(live.Select(i => i.Id)), "every live lab controller reports region lab");
            Assert.That(labKey, Is.EqualTo(labLeader), "region lab's election key names its leader");
            Assert.That(westKey, Is.EqualTo(west.Id), "region west's election key names ctl-west");
            Assert.That(westMetrics, Does.Match("cloudlets_controller_leader\\{[^}]*cloudlets_region=\"west\"[^}]*\\} 1"), "ctl-west's leader metric");
            Assert.That(labMetrics, Does.Match("cloudlets_controller_leader\\{[^}]*cloudlets_region=\"lab\"[^}]*\\} 1"), $"{labLeader}'s leader metric");
            Assert.That(westHosts.EnumerateArray().Select(h => Str(h, "name")), Is.EquivalentTo(westRegion), "ctl-west knows only its region's hosts");

            // Each moved only its own VM, between its own hosts.
            Assert.That(westStarts.Select(r => $"{Str(r, "vm")} {Str(r, "source")}->{Str(r, "destination")}"), Is.EqualTo(new[] { $"{WestGuest.Name} cloudlet-3->cloudlet-4" }), "west's migrations");
            Assert.That(westStarts.Select(r => Str(r, "candidate")), Is.All.EqualTo(west.Id));
            Assert.That(labStarts.Where(s => Str(s.r, "vm") != Guest.Name || !labRegion.Contains(Str(s.r, "source") ?? "") || !labRegion.Contains(Str(s.r, "destination") ?? "")).Select(s => $"{s.Id}: {s.r}"), Is.Empty,
                "a lab controller started a migration of another VM or outside its region's hosts");
            Assert.That(labStarts, Is.Not.Empty, "region lab moved its guest");

            // The hosts' own record over the run so far: each guest stayed on its region's hosts.
            Assert.That(samples.SelectMany(p => p.Of(Guest.Name)).Distinct().Where(h => !labRegion.Contains(h)), Is.Empty, $"{Guest.Name} had a copy outside region lab's hosts");
            Assert.That(samples.SelectMany(p => p.Of(WestGuest.Name)).Distinct().Order(), Is.EqualTo(new[] { "cloudlet-3", "cloudlet-4" }), $"{WestGuest.Name}'s copies");
        }
    }

    [Test]
    [Order(5)]
    public async Task PartitionedLeader_PacketsToEtcdDropped_StartsNoMigrationAFollowerTakesOverAndItRejoinsAsFollower()
    {
        _story.Enter(5);
        // The first run's controllers step aside (SIGTERM): the pair started here alone decides for the guest.
        foreach (var i in _instances.Where(i => !i.Process.HasExited))
        {
            i.Process.Terminate();
        }

        foreach (var i in _instances.Where(i => !i.Process.HasExited))
        {
            await i.Process.WaitForExitAsync(Bound);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        _network = await PartitionNetwork.CreateAsync();
        _partitionEtcd = await EtcdServer.StartAsync(_network.ServerAddress, 2379, 2380, _network.ServerNamespace, cancellationToken: timeout.Token);
        var from = (await Lab.FindGuestHostAsync(Guest, timeout.Token))?.Name;
        Assert.That(from, Is.EqualTo("cloudlet-2"), "the guest should be on cloudlet-2 after the first run");

        // The one to be cut off starts first and leads; the other, on etcd's side, follows it.
        var cut = await StartInstanceAsync("ctl-cut", "lab", LabRegionHosts, Guest, _network.CandidateNamespace, _partitionEtcd.Endpoint, timeout.Token);
        _instances.Add(cut);
        await WaitRoleOfAsync(cut, "leader", "ctl-cut", "the controller in the namespace to be cut off leads");
        var ok = await StartInstanceAsync("ctl-ok", "lab", LabRegionHosts, Guest, _network.ServerNamespace, _partitionEtcd.Endpoint, timeout.Token);
        _instances.Add(ok);
        await WaitRoleOfAsync(ok, "follower", "ctl-cut", "the controller on etcd's side follows ctl-cut");
        await WaitRecordAsync(ok, r => Event(r) == "decision" && Str(r, "vm") == Guest.Name && Str(r, "host") == "cloudlet-2", "a decision for the guest (warm)");

        // Cut, then make a move due: the users are now nearest cloudlet-1 (20 ms), and cloudlet-2 is far (300 ms).
        var cutAt = DateTimeOffset.UtcNow;
        await _network.CutAsync();
        await Lab.ShapeAsync(_shaper!, [("cloudlet-1", TimeSpan.FromMilliseconds(20)), ("cloudlet-2", TimeSpan.FromMilliseconds(300))], timeout.Token);
        var acquired = await WaitRecordAsync(ok, r => Event(r) == "leadership.acquired" && Time(r) >= cutAt, "ctl-ok's leadership.acquired after the cut");
        var lost = await WaitRecordAsync(cut, r => Event(r) == "leadership.lost" && Time(r) >= cutAt, "ctl-cut's leadership.lost after the cut");
        await WaitGuestOnlyOnAsync("cloudlet-1");
        var roleWhileCut = await RoleAsync(cut);

        // Past one more lease and some windows cut off: it still starts nothing. Then heal.
        await Task.Delay(LeaseTtl);
        var healedAt = DateTimeOffset.UtcNow;
        await _network.HealAsync();
        var rejoined = await WaitRoleOfAsync(cut, "follower", "ctl-ok", "ctl-cut rejoins as ctl-ok's follower after the heal");
        await Task.Delay(TimeSpan.FromSeconds(5));
        var cutMetrics = await ClientFor(cut).GetStringAsync(new Uri(cut.Base + "/metrics"));
        var okMetrics = await ClientFor(ok).GetStringAsync(new Uri(ok.Base + "/metrics"));
        var okRole = await RoleAsync(ok);

        var cutRecords = Records(cut).Where(r => Time(r) >= cutAt).ToList();
        var okStarts = Records(ok).Where(r => Event(r) == "migration.started" && Time(r) >= cutAt).ToList();
        var samples = _sampler!.Samples.Where(p => p.At >= cutAt).ToList();
        var firstOnDestination = samples.FirstOrDefault(p => p.Of(Guest.Name).Contains("cloudlet-1"));
        var cutDecisions = cutRecords.Where(r => Event(r) == "decision" && Str(r, "vm") == Guest.Name).Select(r => $"{Time(r):O} {Str(r, "kind")} {Str(r, "reason")} {Str(r, "target")}");
        await TestContext.Out.WriteLineAsync($"Partition: ctl-cut lost its lease {(Time(lost) - cutAt).TotalSeconds:0.00} s after the cut, ctl-ok led {(Time(acquired) - cutAt).TotalSeconds:0.00} s after it, healed at {(healedAt - cutAt).TotalSeconds:0.00} s; {samples.Count} placement samples.");
        await TestContext.Out.WriteLineAsync($"ctl-cut's decisions for the guest from the cut on: {string.Join("; ", cutDecisions)}");
        await TestContext.Out.WriteLineAsync($"ctl-cut's migration outcomes from the cut on: {string.Join("; ", cutRecords.Where(r => Event(r) == "migration.finished"))}");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cutRecords.Where(r => Event(r) == "migration.started").Select(r => r.ToString()), Is.Empty, "the cut-off leader started a migration after the cut");
            Assert.That(cutRecords.Where(r => Event(r) == "leadership.acquired").Select(r => r.ToString()), Is.Empty, "the cut-off controller led again after the cut");
            Assert.That(Str(lost, "role"), Is.EqualTo("follower"), lost.ToString());
            Assert.That(roleWhileCut.Role, Is.EqualTo("follower"), "while cut off, after its lease expired, /healthz says follower");
            Assert.That(Str(acquired, "candidate"), Is.EqualTo("ctl-ok"));
            Assert.That(okStarts.Select(r => $"{Str(r, "vm")} {Str(r, "source")}->{Str(r, "destination")} by {Str(r, "candidate")}"), Is.EqualTo(new[] { $"{Guest.Name} cloudlet-2->cloudlet-1 by ctl-ok" }),
                "the one migration after the cut is the new leader's move to the users' new nearest host");
            Assert.That(okStarts.Select(r => Time(r) >= Time(acquired)), Is.All.True, "the new leader's migration started after it acquired the lease");
            Assert.That(okStarts.Select(r => r.GetProperty("leaseId").GetInt64()), Is.All.EqualTo(acquired.GetProperty("leaseId").GetInt64()), "the migration names the new leader's lease");

            // The hosts' own record: from the cut on, the guest reached cloudlet-1 only once ctl-ok led.
            Assert.That(firstOnDestination, Is.Not.Null, "the hosts never showed the guest on cloudlet-1 after the cut");
            Assert.That(firstOnDestination?.At, Is.GreaterThanOrEqualTo(Time(acquired)), "the hosts showed a copy on cloudlet-1 before ctl-ok led");

            // Healed: a follower of the new leader, in health and metrics.
            Assert.That(rejoined.Leader, Is.EqualTo("ctl-ok"));
            Assert.That(cutRecords.Where(r => Event(r) == "leadership.following" && Time(r) >= healedAt).Select(r => Str(r, "leader")), Does.Contain("ctl-ok"), "ctl-cut's audit log records that it follows ctl-ok after the heal");
            Assert.That(okRole.Role, Is.EqualTo("leader"), "ctl-ok still leads after the heal");
            Assert.That(cutMetrics, Does.Match("cloudlets_controller_leader\\{[^}]*cloudlets_region=\"lab\"[^}]*\\} 0"), "ctl-cut's leader metric after the heal");
            Assert.That(okMetrics, Does.Match("cloudlets_controller_leader\\{[^}]*cloudlets_region=\"lab\"[^}]*\\} 1"), "ctl-ok's leader metric after the heal");
        }
    }

    /// <summary>Starts a controller of <paramref name="region"/> for <paramref name="guest"/> on <paramref name="hosts"/>, electing on <paramref name="endpoint"/>, in <paramref name="networkNamespace"/> (null: the test's own).</summary>
    private async Task<Instance> StartInstanceAsync(string id, string region, IReadOnlyList<LabHost> hosts, LabGuest guest, string? networkNamespace, string endpoint, CancellationToken cancellationToken)
    {
        var port = ControllerProcess.FreePort();
        var audit = Path.Combine(_folder, id + ".jsonl");
        var config = Path.Combine(_folder, id + ".json");
        var election = new { Endpoints = new[] { endpoint }, Region = region, CandidateId = id, LeaseTtl = LeaseTtl.ToString("c", CultureInfo.InvariantCulture) };
        await File.WriteAllTextAsync(config, ControllerLabTests.ConfigFor(Lab, [guest], port, audit, election, MigrationBandwidthMiBps, hosts: hosts), cancellationToken);
        var process = networkNamespace is null ? ControllerProcess.Start("--config", config) : ControllerProcess.StartInNamespace(networkNamespace, "--config", config);
        return new Instance(id, port, audit, process, networkNamespace);
    }

    private async Task<(string Id, string? Role, string? Leader)> WaitRoleOfAsync(Instance i, string role, string leader, string what)
    {
        var until = DateTime.UtcNow + Bound;
        (string Id, string? Role, string? Leader) last = (i.Id, null, null);
        while (DateTime.UtcNow < until && !i.Process.HasExited)
        {
            last = await RoleAsync(i);
            if (last.Role == role && last.Leader == leader)
            {
                return last;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"Not seen within {Bound}: {what} ({i.Id} said role {last.Role ?? "none"}, leader {last.Leader ?? "none"}{(i.Process.HasExited ? ", and exited" : "")}).\n{Tail()}");
        return last;
    }

    private async Task<JsonElement> WaitRecordAsync(Instance i, Func<JsonElement, bool> match, string what)
    {
        var until = DateTime.UtcNow + Bound;
        while (DateTime.UtcNow < until)
        {
            var found = Records(i).FirstOrDefault(match);
            if (found.ValueKind == JsonValueKind.Object)
            {
                return found;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"Not in {i.Id}'s audit log within {Bound}: {what}.\n{Tail()}");
        return default;
    }

    /// <summary>An HTTP client whose connections are made inside the instance's namespace (its endpoint is on that namespace's loopback).</summary>
    private HttpClient ClientFor(Instance i)
    {
        if (i.Namespace is not { } ns)
        {
            return _http;
        }

        if (!_namespaceClients.TryGetValue(ns, out var client))
        {
            client = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (context, cancellationToken) =>
                {
                    if (!OperatingSystem.IsLinux())
                    {
                        throw new PlatformNotSupportedException("Network namespaces are Linux's.");
                    }

                    // A socket created inside the namespace stays in it.
                    var socket = NetworkNamespace.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                    try
                    {
                        await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            })
            { Timeout = TimeSpan.FromSeconds(15) };
            _namespaceClients[ns] = client;
        }

        return client;
    }

    private async Task<List<(string Id, string? Role, string? Leader)>> WaitRolesAsync(Func<List<(string Id, string? Role, string? Leader)>, bool> done)
    {
        var until = DateTime.UtcNow + Bound;
        List<(string Id, string? Role, string? Leader)> roles = [];
        while (DateTime.UtcNow < until)
        {
            roles = [];
            foreach (var i in _instances.Where(i => !i.Process.HasExited))
            {
                roles.Add(await RoleAsync(i));
            }

            if (roles.Count == _instances.Count && done(roles))
            {
                return roles;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"The controllers did not settle on one leader within {Bound}: {string.Join(", ", roles.Select(r => $"{r.Id}={r.Role} (leader {r.Leader})"))}.\n{Tail()}");
        return roles;
    }

    private async Task<string?> RegionAsync(Instance i)
    {
        try
        {
            var body = JsonDocument.Parse(await ClientFor(i).GetStringAsync(new Uri(i.Base + "/healthz"))).RootElement;
            return Str(body.GetProperty("checks").GetProperty("election").GetProperty("data"), "region");
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    private async Task<T> WaitAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what)
    {
        var until = DateTime.UtcNow + Bound;
        var last = await read();
        while (!done(last))
        {
            if (DateTime.UtcNow > until)
            {
                Assert.Fail($"Not seen within {Bound}: {what} (last: {(last is System.Collections.IEnumerable items ? string.Join(", ", items.Cast<object>()) : last)}).\n{Tail()}");
            }

            await Task.Delay(250);
            last = await read();
        }

        return last;
    }

    private async Task<(string Id, string? Role, string? Leader)> RoleAsync(Instance i)
    {
        try
        {
            using var response = await ClientFor(i).GetAsync(new Uri(i.Base + "/healthz"));
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            var data = body.GetProperty("checks").GetProperty("election").GetProperty("data");
            return (i.Id, Str(data, "role"), Str(data, "leader"));
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return (i.Id, null, null);
        }
    }

    private async Task<(Instance Leader, JsonElement Started)> WaitMigrationStartedAsync()
    {
        var until = DateTime.UtcNow + Bound;
        while (DateTime.UtcNow < until)
        {
            foreach (var i in _instances)
            {
                var start = Records(i).FirstOrDefault(r => Event(r) == "migration.started" && Str(r, "vm") == Guest.Name);
                if (start.ValueKind == JsonValueKind.Object)
                {
                    return (i, start);
                }
            }

            await Task.Delay(50);
        }

        Assert.Fail($"No controller started a migration of the guest within {Bound}.\n{Tail()}");
        return default;
    }

    private async Task WaitSourceJobAsync(string source)
    {
        var host = Lab.Hosts.Single(h => h.Name == source);
        var until = DateTime.UtcNow + Bound;
        var last = "";
        while (DateTime.UtcNow < until)
        {
            last = (await Lab.VirshAsync(host, ["domjobinfo", Guest.Name])).StandardOutput;
            if (last.Contains("Unbounded", StringComparison.Ordinal))
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"The source {source} ran no migration job of the guest within {Bound} (domjobinfo: {last}).\n{Tail()}");
    }

    private async Task<(Instance Leader, JsonElement Acquired)> WaitNewLeaderAsync(List<Instance> survivors)
    {
        var until = DateTime.UtcNow + TakeoverBound + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < until)
        {
            foreach (var i in survivors)
            {
                var acquired = Records(i).FirstOrDefault(r => Event(r) == "leadership.acquired" && Time(r) >= _killedAt);
                if (acquired.ValueKind == JsonValueKind.Object)
                {
                    return (i, acquired);
                }
            }

            await Task.Delay(100);
        }

        Assert.Fail($"No follower took over within {TakeoverBound + TimeSpan.FromSeconds(30)} of the SIGKILL.\n{Tail()}");
        return default;
    }

    private Task WaitGuestOnlyOnAsync(string host) =>
        WaitOnlyOnAsync(Guest, host, () => true, "The guest", Tail);

    /// <summary>Region west's guest on <paramref name="host"/> only, and ctl-west's audit log shows every migration it started finished.</summary>
    private Task WaitWestGuestOnAsync(string host) => WaitOnlyOnAsync(
        WestGuest,
        host,
        () =>
        {
            var west = Records(_west!);
            return west.Count(r => Event(r) == "migration.started") == west.Count(r => Event(r) == "migration.finished");
        },
        "Region west's guest",
        () => $"--- ctl-west:\n{_west!.Process.Output[^Math.Min(_west.Process.Output.Length, 2500)..]}");

    /// <summary>Waits (within <see cref="Bound"/>) until the hosts list <paramref name="guest"/> on <paramref name="host"/> only and <paramref name="settled"/> holds.</summary>
    private async Task WaitOnlyOnAsync(LabGuest guest, string host, Func<bool> settled, string who, Func<string> output)
    {
        var until = DateTime.UtcNow + Bound;
        IReadOnlyList<LabHost> copies = [];
        while (DateTime.UtcNow < until)
        {
            copies = await Lab.FindGuestCopiesAsync(guest);
            if (copies.Count == 1 && copies[0].Name == host && settled())
            {
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"{who} did not end up only on {host} within {Bound} (copies on: {string.Join(", ", copies.Select(c => c.Name))}).\n{output()}");
    }

    private string Tail() => string.Join("\n", _instances.Select(i => $"--- {i.Id}:\n{i.Process.Output[^Math.Min(i.Process.Output.Length, 2500)..]}"));

    private static List<JsonElement> Records(Instance i) =>
        File.Exists(i.Audit) ? [.. ReadShared(i.Audit).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone())] : [];

    private static List<string> ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            // A line being written has no end yet: only whole JSON objects count.
            if (line.EndsWith('}'))
            {
                lines.Add(line);
            }
        }

        return lines;
    }

    private static string? Event(JsonElement r) => Str(r, "event");

    private static bool StartedElsewhere(JsonElement r) => r.TryGetProperty("startedElsewhere", out var v) && v.ValueKind == JsonValueKind.True;

    private static string? Str(JsonElement r, string name) => r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static DateTimeOffset Time(JsonElement r) => DateTimeOffset.Parse(Str(r, "time")!, CultureInfo.InvariantCulture);
}
