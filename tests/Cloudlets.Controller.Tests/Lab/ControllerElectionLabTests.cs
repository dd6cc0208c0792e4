using System.Globalization;
using System.Text.Json;
using Cloudlets.Core.Shaping;
using Cloudlets.Etcd.Tests.Support;
using Cloudlets.Lab;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.TestUtils;

namespace Cloudlets.Controller.Tests.Lab;

/// <summary>
/// Three cloudlet-controller processes in automatic mode, one real etcd (Debian's etcd-server on
/// loopback, started here) and a real 3-host lab with one guest on cloudlet-1, the users' latency
/// shaped to 300/20/60 ms, so the leader moves the guest to cloudlet-2. Exactly one controller leads;
/// the leader is SIGKILLed as soon as its migration starts: the daemons carry the migration to its
/// end (peer-to-peer: the source's libvirtd drives it), a follower leads within the lease TTL plus one
/// evaluation window (and generous slack for a loaded machine), and the guest is not migrated again
/// because of the takeover. Every migration.started record in the three audit logs was written by
/// the controller that led at that moment, with its lease. One lab, one guest boot, one etcd.
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
    private Instance? _killed;
    private DateTimeOffset _killedAt;

    protected override string LabPrefix => "cel";

    protected override int LabHosts => 3;

    protected override IReadOnlyList<string> LabGuestsOn => ["cloudlet-1"];

    private LabGuest Guest => Lab.Guests[0];

    private sealed record Instance(string Id, int Port, string Audit, ControllerProcess Process)
    {
        public string Base => $"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";
    }

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        EtcdServer.Require();
        _folder = Directory.CreateTempSubdirectory("cloudlets-controller-election-lab-").FullName;
        _shaper = await NetemShaperFactory.CreateAsync(cancellationToken: timeout.Token);
        await Lab.ShapeAsync(_shaper, [("cloudlet-1", TimeSpan.FromMilliseconds(300)), ("cloudlet-2", TimeSpan.FromMilliseconds(20)), ("cloudlet-3", TimeSpan.FromMilliseconds(60))], timeout.Token);
        _etcd = await EtcdServer.StartAsync(timeout.Token);
        foreach (var id in new[] { "ctl-a", "ctl-b", "ctl-c" })
        {
            var port = ControllerProcess.FreePort();
            var audit = Path.Combine(_folder, id + ".jsonl");
            var config = Path.Combine(_folder, id + ".json");
            var election = new { Endpoints = new[] { _etcd.Endpoint }, Region = "lab", CandidateId = id, LeaseTtl = LeaseTtl.ToString("c", CultureInfo.InvariantCulture) };
            await File.WriteAllTextAsync(config, ControllerLabTests.ConfigFor(Lab, [Guest], port, audit, election, MigrationBandwidthMiBps), timeout.Token);
            _instances.Add(new Instance(id, port, audit, ControllerProcess.Start("--config", config)));
        }
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        // Progress, not Out: a one-time tear-down's Out is not shown in the console log, and these lines explain a failure.
        foreach (var i in _instances)
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

        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
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

    private async Task<(string Id, string? Role, string? Leader)> RoleAsync(Instance i)
    {
        try
        {
            using var response = await _http.GetAsync(new Uri(i.Base + "/healthz"));
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            var data = body.GetProperty("checks").GetProperty("election").GetProperty("data");
            return (i.Id, Str(data, "role"), Str(data, "leader"));
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException)
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

    private async Task WaitGuestOnlyOnAsync(string host)
    {
        var until = DateTime.UtcNow + Bound;
        IReadOnlyList<LabHost> copies = [];
        while (DateTime.UtcNow < until)
        {
            copies = await Lab.FindGuestCopiesAsync(Guest);
            if (copies.Count == 1 && copies[0].Name == host)
            {
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"The guest did not end up only on {host} within {Bound} (copies on: {string.Join(", ", copies.Select(c => c.Name))}).\n{Tail()}");
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
