using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>
/// The journal of a REAL pipeline run in virtual time (fake hosts, automatic mode) replays to the same
/// decisions, field by field; a policy with other options does not; a journal this version cannot read
/// fails with a typed error naming the line.
/// </summary>
public sealed class PipelineJournalTests
{
    private static LowestLatencyPolicyOptions FleetPolicy() => new() { ConfirmationWindows = 3, Cooldown = TimeSpan.FromSeconds(60) };

    // a best for 30 s, then b; c loses every 7th probe.
    private static double? Trace(TimeSpan t, string host) => host switch
    {
        "a" => t < TimeSpan.FromSeconds(30) ? 20 : 60,
        "b" => 25,
        _ => (int)t.TotalSeconds % 7 == 0 ? double.NaN : 40,
    };

    /// <summary>
    /// Two VMs on a, one migration at a time (so one move is held back by the executor), lost probes, then
    /// b drained (a rule change): the run has moves, held-back moves, in-flight holds, a cooldown and a rule.
    /// </summary>
    private static (string Journal, List<MigrationDecision> Published) Run(out int samples)
    {
        using var text = new StringWriter();
        using var journal = new PipelineJournal(text, leaveOpen: true);
        List<MigrationDecision> published;
        var fleet = TraceFleet.Start(
            PipelineMode.Automatic,
            policy: null,
            options: o => o.Executor.MaxConcurrentMigrations = 1,
            extraVms: ["vm2"],
            arrange: h =>
            {
                h["a"].AddVm("vm2");
                // The moves from a measure the path and the VMs, so the journal records rates the policy used.
                h["a"].ReportDuringMigration = new MigrationProgress(TimeSpan.FromSeconds(1), 1L << 20, 1L << 27, 1L << 28, 2_000, 1, null, 400_000_000);
            },
            build: b => b.WithJournal(journal));
        try
        {
            fleet.Replay(TimeSpan.FromSeconds(150), Trace);
            fleet.Pipeline.DrainHost("b", "test");
            fleet.Replay(TimeSpan.FromSeconds(150), Trace);
            published = [.. fleet.Decisions];
        }
        finally
        {
            fleet.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        journal.Flush();
        samples = text.ToString().Split('\n').Count(l => l.StartsWith("{\"k\":\"s\"", StringComparison.Ordinal));
        return (text.ToString(), published);
    }

    [Test]
    public void Replay_JournalOfAutomaticRunWithHeldMovesLossAndDrain_DecidesTheSame()
    {
        var (journal, published) = Run(out var samples);
        var replay = PipelineJournal.Replay(new StringReader(journal), new LowestLatencyPolicy(FleetPolicy()));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(replay.Differences, Is.Empty, "the replay decided differently: " + string.Join(Environment.NewLine, replay.Differences.Take(10)));
            Assert.That(replay.Same, Is.True);
            Assert.That(journal, Does.Contain("\"bw\":[[0,1,400000000]]"), "the transfer rate measured from a to b is an input of the later evaluations");
            Assert.That(replay.Samples, Is.EqualTo(samples).And.GreaterThan(800), "every sample the pipeline took is in the journal");

            // The journal holds what the pipeline published, in order.
            Assert.That(replay.Recorded.Select(Key), Is.EqualTo(published.Select(Key)), "the journal's decisions are the published ones");
            Assert.That(replay.Evaluations, Is.EqualTo(published.Count / 2), "one evaluation per 2 decisions (2 VMs)");

            // The run exercised what makes replay hard: moves, a move held by the executor, a drain.
            Assert.That(published.Count(d => d.IsMove), Is.GreaterThanOrEqualTo(3), "moves to b, and away from b after the drain");
            Assert.That(published.Any(d => d.Reason == DecisionReason.MigrationLimitReached && d.Explanation.Contains("The executor said", StringComparison.Ordinal)), Is.True, "a move held back by the executor's limit");
            Assert.That(published.Any(d => d.Reason == DecisionReason.RuleRequiresMove), Is.True, "the drain of b required a move");
        }

        static string Key(MigrationDecision d) => $"{d.At:O} {d.VmName} {d.Kind} {d.Reason} {d.CurrentHost}->{d.TargetHost} {d.Explanation}";
    }

    [Test]
    public void Replay_PolicyWithOtherOptions_ReportsTheDifferences()
    {
        var (journal, _) = Run(out _);
        var other = FleetPolicy();
        other.ConfirmationWindows = 1;
        var replay = PipelineJournal.Replay(new StringReader(journal), new LowestLatencyPolicy(other));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(replay.Same, Is.False, "a policy that confirms in 1 window instead of 3 decides differently");
            Assert.That(replay.Differences, Has.Some.Contains("confirmed windows").Or.Some.Contains("kind"));
        }
    }

    [Test]
    public void Dispose_WriterLeftOpen_WriterStillUsable()
    {
        using var text = new StringWriter();
        var journal = new PipelineJournal(text, leaveOpen: true);
        journal.Dispose();
        journal.Dispose();
        text.Write("x");
        Assert.That(text.ToString(), Is.EqualTo("x"));
    }

    [TestCase("", "empty")]
    [TestCase("{\"k\":\"s\",\"vp\":\"edge\"}", "line 1: a journal starts with its \"start\" line")]
    [TestCase("not json", "line 1:")]
    [TestCase("{\"k\":\"start\",\"format\":2}", "line 1: format 2; this version reads format 1")]
    [Category("BadInput")]
    public void Replay_UnreadableJournal_ThrowsFormatExceptionNamingTheLine(string journal, string expected)
    {
        var error = Assert.Throws<PipelineJournalFormatException>(() => PipelineJournal.Replay(new StringReader(journal), new LowestLatencyPolicy()));
        Assert.That(error!.Message, Does.Contain(expected));
    }

    [Test]
    [Category("BadInput")]
    public void Replay_DecisionsWithoutTheirEvaluation_ThrowsFormatException()
    {
        var (journal, _) = Run(out _);
        var lines = journal.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var firstEvaluation = lines.FindIndex(l => l.StartsWith("{\"k\":\"e\"", StringComparison.Ordinal));
        lines.RemoveAt(firstEvaluation);
        var error = Assert.Throws<PipelineJournalFormatException>(() => PipelineJournal.Replay(new StringReader(string.Join('\n', lines)), new LowestLatencyPolicy(FleetPolicy())));
        Assert.That(error!.Message, Does.Contain("decisions without the evaluation"));
    }
}
