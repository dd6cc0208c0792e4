using System.Text.Json;
using Cloudlets.Controller.Audit;
using Cloudlets.Controller.Configuration;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace Cloudlets.Controller.Tests.Audit;

public sealed class AuditLogTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("cloudlets-audit-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    private static MigrationDecision Move(string vm) => new(
        vm, DateTimeOffset.UnixEpoch, DecisionKind.Move, DecisionReason.Move, "c1", "c2", 300.25, 20.5, 3,
        [new CandidateScore("c1", CandidateStatus.Eligible, 300.25, true), new CandidateScore("c2", CandidateStatus.Eligible, 20.5, false)],
        "Move from c1 (300.2 ms) to c2 (20.5 ms).");

    [Test]
    public void Write_EveryEventKind_OneJsonObjectPerLineWithTimeAndEvent()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 1, 2, 3, 456, TimeSpan.Zero));
        var path = Path.Combine(_folder, "audit.jsonl");
        using (var log = new AuditLog(new AuditLogOptions { Path = path }, time))
        {
            log.Decision(Move("web"), null);
            log.MigrationStarted("web", "c1", "c2", "policy", "Move");
            log.MigrationFinished(new MigrationOutcome("web", "c1", "c2", MigrationOutcomeKind.Succeeded, time.GetUtcNow(), time.GetUtcNow().AddSeconds(1.9),
                new MigrationResult("web", "c1", "c2", TimeSpan.FromSeconds(1.9), TimeSpan.FromMilliseconds(115), 1234), null, MigrationAbortCause.None,
                new ImprovementCheck(ImprovementVerdict.Improved, 300, 20)));
            log.OperatorAction("drain", null, "c1", "127.0.0.1", accepted: true, refusal: null, "Host c1 is drained.");
            log.ConfigurationReload(valid: false, [], [], ["Hosts[0].Uri: is missing."]);
            log.Lifecycle("controller.stopped", w => w.WriteNumber("exitCode", 0));
        }

        var lines = File.ReadAllLines(path);
        var records = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(records.Select(r => r.GetProperty("event").GetString()), Is.EqualTo(new[]
                { "decision", "migration.started", "migration.finished", "operator", "config.reload", "controller.stopped" }));
            Assert.That(records.Select(r => r.GetProperty("time").GetString()), Is.All.EqualTo("2026-12-02T01:02:03.456Z"));
            Assert.That(records[0].GetProperty("vm").GetString(), Is.EqualTo("web"));
            Assert.That(records[0].GetProperty("target").GetString(), Is.EqualTo("c2"));
            Assert.That(records[0].GetProperty("gainMs").GetDouble(), Is.EqualTo(279.75));
            Assert.That(records[0].GetProperty("explanation").GetString(), Does.StartWith("Move from c1"));
            Assert.That(records[2].GetProperty("outcome").GetString(), Is.EqualTo("Succeeded"));
            Assert.That(records[2].GetProperty("durationSeconds").GetDouble(), Is.EqualTo(1.9));
            Assert.That(records[2].GetProperty("downtimeMs").GetDouble(), Is.EqualTo(115));
            Assert.That(records[3].GetProperty("accepted").GetBoolean(), Is.True);
            Assert.That(records[4].GetProperty("errors")[0].GetString(), Is.EqualTo("Hosts[0].Uri: is missing."));
        }
    }

    [Test]
    public void Write_PastMaxFileBytes_RotatesKeepingMaxFilesAndNoLineSplit()
    {
        var path = Path.Combine(_folder, "audit.jsonl");
        using (var log = new AuditLog(new AuditLogOptions { Path = path, MaxFileBytes = 4096, MaxFiles = 3 }))
        {
            for (var i = 0; i < 600; i++)
            {
                log.Lifecycle("test", w => w.WriteNumber("n", i));
            }
        }

        var files = Directory.GetFiles(_folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var numbers = new[] { path + ".3", path + ".2", path + ".1", path }
            .SelectMany(File.ReadAllLines).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("n").GetInt32()).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(files, Is.EqualTo(new[] { "audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3" }));
            Assert.That(Directory.GetFiles(_folder).Select(f => new FileInfo(f).Length), Is.All.LessThanOrEqualTo(4096));
            Assert.That(numbers, Is.Ordered, "oldest file first, newest last: the records stay in order");
            Assert.That(numbers[^1], Is.EqualTo(599), "the newest record is in the current file");
            Assert.That(numbers, Has.Count.LessThan(600), "the oldest were dropped with the file past MaxFiles");
            Assert.That(numbers.Zip(numbers.Skip(1)).All(p => p.Second == p.First + 1), Is.True, "no record lost or split between kept files");
        }
    }

    [Test]
    public void Write_ExistingFile_Appends()
    {
        var path = Path.Combine(_folder, "audit.jsonl");
        File.WriteAllText(path, "{\"time\":\"x\",\"event\":\"earlier\"}\n");
        using (var log = new AuditLog(new AuditLogOptions { Path = path }))
        {
            log.Lifecycle("later");
        }

        Assert.That(File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("event").GetString()), Is.EqualTo(new[] { "earlier", "later" }));
    }

    [Test]
    public void Write_NoPath_WritesNothing()
    {
        using var log = new AuditLog(new AuditLogOptions());
        log.Lifecycle("controller.started");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(log.IsEnabled, Is.False);
            Assert.That(Directory.GetFiles(_folder), Is.Empty);
        }
    }

    [Test]
    public void Ctor_InvalidOptions_ListsEveryError()
    {
        var ex = Assert.Throws<Cloudlets.Core.Options.OptionsValidationException>(() =>
            _ = new AuditLog(new AuditLogOptions { Path = Path.Combine(_folder, "missing", "audit.jsonl"), MaxFileBytes = 10, MaxFiles = 0 }));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "Path", "MaxFileBytes", "MaxFiles" }));
    }
}
