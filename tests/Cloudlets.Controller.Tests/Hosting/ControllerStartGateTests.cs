using System.Text.Json;
using Cloudlets.Controller.Audit;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Hosting;
using Cloudlets.Core.Election;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Libvirt;
using Microsoft.Extensions.Time.Testing;

namespace Cloudlets.Controller.Tests.Hosting;

/// <summary>
/// The controller's start gate: the fencing check first, then the migration.started record — only for
/// a start it lets through. Two libvirt test-driver hosts (inside libvirt.so.0) stand for the source
/// and destination; the election is the in-memory one (a unit test of the logic; the etcd election is
/// tested against a real etcd in the process and lab tests).
/// </summary>
public sealed class ControllerStartGateTests
{
    private string _folder = "";
    private LibvirtHypervisorHost? _source;
    private LibvirtHypervisorHost? _destination;

    [SetUp]
    public async Task SetUpAsync()
    {
        _folder = Directory.CreateTempSubdirectory("cloudlets-gate-").FullName;
        _source = await LibvirtHypervisorHost.ConnectAsync(new LibvirtHostOptions { Name = "c1", Uri = new Uri("test:///default") });
        _destination = await LibvirtHypervisorHost.ConnectAsync(new LibvirtHostOptions { Name = "c2", Uri = new Uri("test:///default") });
    }

    [TearDown]
    public async Task TearDownAsync()
    {
        await _source!.DisposeAsync();
        await _destination!.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private MigrationRequest Request(string vm = "web") => new(vm, _source!, _destination!);

    private List<JsonElement> Records(string path) =>
        File.Exists(path) ? [.. File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement)] : [];

    [Test]
    public async Task CheckAsync_NoElection_AllowsAndRecordsPolicyStart()
    {
        var path = Path.Combine(_folder, "audit.jsonl");
        using var audit = new AuditLog(new AuditLogOptions { Path = path });
        var gate = new ControllerStartGate(null, audit);
        var verdict = await gate.CheckAsync(Request(), CancellationToken.None);
        var records = Records(path);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(verdict.Allowed, Is.True);
            Assert.That(records, Has.Count.EqualTo(1));
            Assert.That(records[0].GetProperty("event").GetString(), Is.EqualTo("migration.started"));
            Assert.That(records[0].GetProperty("trigger").GetString(), Is.EqualTo("policy"));
            Assert.That(records[0].GetProperty("source").GetString(), Is.EqualTo("c1"));
            Assert.That(records[0].GetProperty("destination").GetString(), Is.EqualTo("c2"));
            Assert.That(records[0].TryGetProperty("leaseId", out _), Is.False);
        }
    }

    [Test]
    public async Task CheckAsync_Follower_RefusesAndRecordsNothing()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        using var store = new InMemoryElectionStore(time);
        await using var leader = new InMemoryLeaderElection(store, new LeaderElectionOptions { Election = "eu", CandidateId = "a" });
        await using var follower = new InMemoryLeaderElection(store, new LeaderElectionOptions { Election = "eu", CandidateId = "b" });
        await leader.StartAsync();
        await follower.StartAsync();
        var path = Path.Combine(_folder, "audit.jsonl");
        using var audit = new AuditLog(new AuditLogOptions { Path = path });
        var gate = new ControllerStartGate(follower, audit);

        var verdict = await gate.CheckAsync(Request(), CancellationToken.None);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(verdict.Allowed, Is.False);
            Assert.That(verdict.Reason, Does.Contain("'b' does not lead election 'eu'").And.Contain("'a' does"));
            Assert.That(Records(path), Is.Empty, "a skipped move is never logged as started");
        }
    }

    [Test]
    public async Task CheckAsync_LeaderAfterOperatorNote_AllowsAndRecordsOperatorWithLease()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        using var store = new InMemoryElectionStore(time);
        await using var leader = new InMemoryLeaderElection(store, new LeaderElectionOptions { Election = "eu", CandidateId = "a" });
        await leader.StartAsync();
        Assert.That(leader.Current.IsLeader, Is.True);
        var path = Path.Combine(_folder, "audit.jsonl");
        using var audit = new AuditLog(new AuditLogOptions { Path = path });
        var gate = new ControllerStartGate(leader, audit);

        gate.NoteOperatorMove("web", "127.0.0.1");
        var first = await gate.CheckAsync(Request(), CancellationToken.None);
        gate.ForgetOperatorMove("web");
        var second = await gate.CheckAsync(Request(), CancellationToken.None);
        var records = Records(path);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.Allowed && second.Allowed, Is.True);
            Assert.That(records.Select(r => r.GetProperty("trigger").GetString()), Is.EqualTo(new[] { "operator", "policy" }));
            Assert.That(records[0].GetProperty("reason").GetString(), Is.EqualTo("127.0.0.1"));
            Assert.That(records[0].GetProperty("candidate").GetString(), Is.EqualTo("a"));
            Assert.That(records[0].GetProperty("role").GetString(), Is.EqualTo("leader"));
            Assert.That(records[0].GetProperty("leaseId").GetInt64(), Is.EqualTo(leader.Current.LeaseId));
            Assert.That(records[0].GetProperty("term").GetInt64(), Is.EqualTo(leader.Current.Revision));
            Assert.That(records[0].GetProperty("region").GetString(), Is.EqualTo("eu"));
        }
    }

    [Test]
    public async Task CheckAsync_LeaseExpiredWithoutKeepalive_RefusesAndRecordsNothing()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        using var store = new InMemoryElectionStore(time);
        await using var leader = new InMemoryLeaderElection(store, new LeaderElectionOptions { Election = "eu", CandidateId = "a", LeaseTtl = TimeSpan.FromSeconds(3) });
        await leader.StartAsync();
        store.SetReachable("a", false); // a partition: keepalives stop reaching the store
        time.Advance(TimeSpan.FromSeconds(4));
        var path = Path.Combine(_folder, "audit.jsonl");
        using var audit = new AuditLog(new AuditLogOptions { Path = path });
        var verdict = await new ControllerStartGate(leader, audit).CheckAsync(Request(), CancellationToken.None);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(verdict.Allowed, Is.False);
            Assert.That(Records(path), Is.Empty);
        }
    }
}
