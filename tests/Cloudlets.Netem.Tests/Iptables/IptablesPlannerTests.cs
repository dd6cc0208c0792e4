using System.Net;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem.Iptables;
using Cloudlets.Netem.NfQueue;

namespace Cloudlets.Netem.Tests.Iptables;

public sealed class IptablesPlannerTests
{
    private static readonly string Fixtures = Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures");

    private static ShapingPlan FixturePlan(double delayMs = 300) => new("fixture",
    [
        ShapingRule.Egress("eth0", Impairment.FromDelay(delayMs), TrafficMatch.To(IPAddress.Parse("198.19.200.1"))) with { NetworkNamespace = "nt-fx" },
    ]);

    private static ShapingState FixtureState()
    {
        var save = File.ReadAllText(Path.Combine(Fixtures, "iptables-save-demo.txt"));
        var objects = IptablesPlanner.ParseSave("fixture", "nt-fx", IptablesPlanner.IptablesKind, save).ToList();
        return new ShapingState("fixture", NfQueueShaper.BackendName, [], objects, []);
    }

    private static string[] Argv(CommandLine c) => [c.Program, .. c.Arguments];

    [Test]
    public void Plan_EmptyKernel_CreatesChainRuleAndJump()
    {
        var plan = FixturePlan();
        const string q = "2048";   // the first queue of the allocated range: nothing else is in use
        var comment = IptablesPlanner.DesiredRules(plan, ShapingState.Empty("fixture", "nfqueue")).Single().Comment.ToString();
        var commands = IptablesPlanner.Plan(plan, ShapingState.Empty("fixture", "nfqueue")).Select(Argv).ToList();
        string[] prefix = ["ip", "netns", "exec", "nt-fx", "iptables", "-w", "-t", "mangle"];
        Assert.That(commands, Is.EqualTo(new string[][]
        {
            [.. prefix, "-N", "NETEM_fixture_OUT"],
            [.. prefix, "-A", "NETEM_fixture_OUT", "-o", "eth0", "-d", "198.19.200.1/32", "-m", "comment", "--comment", comment, "-j", "NFQUEUE", "--queue-num", q, "--queue-bypass"],
            [.. prefix, "-A", "POSTROUTING", "-m", "comment", "--comment", "cloudlets-netem:o=fixture,r=,p=jump", "-j", "NETEM_fixture_OUT"],
        }));
        Assert.That(comment, Is.EqualTo($"cloudlets-netem:o=fixture,r=r0,p=queue,q={q},d=300000,j=0,dist=uniform,l=0,h=b60121a6"));
    }

    [Test]
    public void Queues_NumbersOfOtherOwnersAndOtherListeners_AreSkipped()
    {
        var save = File.ReadAllText(Path.Combine(Fixtures, "iptables-save-demo.txt")).Replace("56704", "2048", StringComparison.Ordinal);
        var foreign = IptablesPlanner.ForeignQueues("other", "nt-fx", save).Append(new KernelObject("nt-fx", IptablesPlanner.ForeignQueueKind, "2049", "bound by netlink port 7")).ToList();
        var state = new ShapingState("other", NfQueueShaper.BackendName, [], [], foreign);
        var plan = new ShapingPlan("other", [.. FixturePlan().Rules, FixturePlan().Rules[0] with { Name = "second", Match = TrafficMatch.To(IPAddress.Parse("198.19.200.2")) }]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(foreign[0].Text, Is.EqualTo("rule of owner fixture"));
            Assert.That(IptablesPlanner.Queues(plan, state).Select(q => q.Queue), Is.EqualTo(new[] { 2050, 2051 }));
            Assert.That(IptablesPlanner.Queues(plan, ShapingState.Empty("other", "nfqueue")).Select(q => q.Queue), Is.EqualTo(new[] { 2048, 2049 }));
        }
    }

    [Test]
    public void Queues_OwnRecordedNumber_IsKeptUnlessAnotherOwnerUsesIt()
    {
        var kept = IptablesPlanner.Queues(FixturePlan(50), FixtureState()).Single().Queue;
        var taken = FixtureState() with { ForeignObjects = [new KernelObject("nt-fx", IptablesPlanner.ForeignQueueKind, "56704", "rule of owner x")] };
        var moved = IptablesPlanner.Queues(FixturePlan(50), taken).Single().Queue;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(kept, Is.EqualTo(56704), "the number recorded in the rule's comment");
            Assert.That(moved, Is.EqualTo(2048));
        }
    }

    [Test]
    public void Plan_KernelAlreadyHasThePlan_IsEmpty() =>
        Assert.That(IptablesPlanner.Plan(FixturePlan(), FixtureState()), Is.Empty);

    [Test]
    public void Plan_DelayChanged_ReplacesTheRuleInPlace()
    {
        var commands = IptablesPlanner.Plan(FixturePlan(50), FixtureState()).Select(Argv).ToList();
        Assert.That(commands, Has.Count.EqualTo(1));
        Assert.That(commands[0][8..11], Is.EqualTo(new[] { "-R", "NETEM_fixture_OUT", "1" }));
        Assert.That(commands[0], Does.Contain("-j").And.Contain("NFQUEUE"));
    }

    [Test]
    public void ClearPlan_FixtureState_RemovesJumpThenChain()
    {
        var commands = IptablesPlanner.ClearPlan("fixture", FixtureState()).Select(c => string.Join(' ', Argv(c)[8..])).ToList();
        Assert.That(commands, Is.EqualTo(new[]
        {
            "-D POSTROUTING -m comment --comment cloudlets-netem:o=fixture,r=,p=jump -j NETEM_fixture_OUT",
            "-F NETEM_fixture_OUT",
            "-X NETEM_fixture_OUT",
        }));
    }

    [Test]
    public void ParseSave_OtherOwnersChains_AreIgnored()
    {
        var save = File.ReadAllText(Path.Combine(Fixtures, "iptables-save-demo.txt"));
        Assert.That(IptablesPlanner.ParseSave("other", null, IptablesPlanner.IptablesKind, save), Is.Empty);
    }

    [Test]
    public void Plan_BridgePortWithLoss_SetsSysctlUsesPhysdevAndDropsBeforeQueueing()
    {
        var plan = new ShapingPlan("br", [new ShapingRule("p-c1", ShapingDirection.Ingress, TrafficMatch.All,
            new Impairment { Delay = TimeSpan.FromMilliseconds(20), LossPercent = 1.5 }) { BridgePort = true }]);
        var commands = IptablesPlanner.Plan(plan, ShapingState.Empty("br", "nfqueue")).Select(c => string.Join(' ', Argv(c))).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(commands[0], Is.EqualTo("sysctl -q -w net.bridge.bridge-nf-call-iptables=1"));
            Assert.That(commands[1], Is.EqualTo("sysctl -q -w net.bridge.bridge-nf-call-ip6tables=1"));
            Assert.That(commands.Count(c => c.StartsWith("iptables -w -t mangle -A NETEM_br_IN -m physdev --physdev-in p-c1", StringComparison.Ordinal)), Is.EqualTo(2));
            Assert.That(commands.FindIndex(c => c.Contains("iptables -w -t mangle -A NETEM_br_IN", StringComparison.Ordinal) && c.Contains("--probability 0.015 -j DROP", StringComparison.Ordinal)),
                Is.LessThan(commands.FindIndex(c => c.Contains("iptables -w -t mangle -A NETEM_br_IN", StringComparison.Ordinal) && c.Contains("-j NFQUEUE", StringComparison.Ordinal))));
            Assert.That(commands, Has.Some.StartWith("iptables -w -t mangle -A PREROUTING"));
            Assert.That(commands, Has.Some.StartWith("ip6tables -w -t mangle -A NETEM_br_IN -m physdev --physdev-in p-c1"), "no address: both families");
        }
    }

    [Test]
    public void AppliedRules_FixtureAndProcFile_RebuildTheRuleWithHealth()
    {
        var state = FixtureState();
        var health = QueueProcFile.Parse(File.ReadAllText(Path.Combine(Fixtures, "nfnetlink_queue.txt"))).ToDictionary(h => ((string?)"nt-fx", h.QueueNumber));
        var rule = IptablesPlanner.AppliedRules(state, health).Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rule.Interface, Is.EqualTo("eth0"));
            Assert.That(rule.Direction, Is.EqualTo(ShapingDirection.Egress));
            Assert.That(rule.Name, Is.EqualTo("r0"));
            Assert.That(rule.Impairment.Delay, Is.EqualTo(TimeSpan.FromMilliseconds(300)));
            Assert.That(rule.Health?.PeerPortId, Is.EqualTo(24949u));
        }
    }

    [Test]
    public void SplitAllNetns_TwoSections_SplitsByHeader()
    {
        var sections = IptablesPlanner.SplitAllNetns("\nnetns: a\nline1\n\nnetns: b\nline2\n").ToList();
        Assert.That(sections.Select(s => (s.Namespace, s.Output.Trim())), Is.EqualTo(new[] { ("a", "line1"), ("b", "line2") }));
    }

    [Test]
    public void Tokenize_QuotedComment_Unquotes() =>
        Assert.That(IptablesLine.Tokenize("-A X -m comment --comment \"a b \\\"c\\\"\" -j Y"),
            Is.EqualTo(new[] { "-A", "X", "-m", "comment", "--comment", "a b \"c\"", "-j", "Y" }));

    [Test]
    public void RuleComment_RoundTrips()
    {
        var c = new RuleComment("own", "r1", "queue", 2050, 20000, 500, DelayDistribution.Normal, 0.5, "deadbeef");
        Assert.That(RuleComment.TryParse(c.ToString(), out var back), Is.True);
        Assert.That(back, Is.EqualTo(c));
    }
}
