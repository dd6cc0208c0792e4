using System.Globalization;
using System.Net.Sockets;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Iptables;

/// <summary>One rule the NFQUEUE backend wants in an owned chain.</summary>
internal sealed record DesiredIptablesRule(string? NetworkNamespace, string Tool, string Chain, IReadOnlyList<string> Spec, RuleComment Comment);

/// <summary>One delay queue the NFQUEUE backend wants in a namespace.</summary>
internal sealed record DesiredQueue(string? NetworkNamespace, int Queue, string Rule, Impairment Impairment);

/// <summary>
/// Pure planning for the NFQUEUE backend: which iptables rules a plan needs, and the argument lists
/// that turn the current state (as <see cref="KernelObject"/>s from <c>iptables-save</c>) into them.
/// </summary>
internal static class IptablesPlanner
{
    public const string Table = "mangle";
    public const string IptablesKind = "iptables";
    public const string Ip6tablesKind = "ip6tables";
    public const string SysctlKind = "sysctl";
    public const string BridgeSysctlV4 = "net.bridge.bridge-nf-call-iptables";
    public const string BridgeSysctlV6 = "net.bridge.bridge-nf-call-ip6tables";

    public static string Hook(ShapingDirection direction) => direction == ShapingDirection.Egress ? "POSTROUTING" : "PREROUTING";

    /// <summary>A queue number another owner's rule uses, or one bound by a listener this owner's rules do not name (foreign).</summary>
    public const string ForeignQueueKind = "nfqueue-in-use";

    /// <summary>
    /// The queues of a plan, one per rule that delays. Queue numbers are allocated per namespace, not
    /// derived: a rule keeps the number its ownership comment in <paramref name="current"/> records,
    /// unless another owner uses it; a new rule gets the lowest number from <see cref="OwnerNames.FirstQueue"/>
    /// up that no other owner's rule and no other listener uses (<see cref="ForeignQueueKind"/> objects).
    /// </summary>
    /// <exception cref="ShapingException">No queue number is free.</exception>
    public static IReadOnlyList<DesiredQueue> Queues(ShapingPlan plan, ShapingState current)
    {
        var taken = new HashSet<(string?, int)>();
        foreach (var o in current.ForeignObjects.Where(o => o.Kind == ForeignQueueKind))
        {
            if (int.TryParse(o.Location, NumberStyles.Integer, CultureInfo.InvariantCulture, out var q))
            {
                taken.Add((o.NetworkNamespace, q));
            }
        }

        var recorded = new Dictionary<(string?, string), int>();
        foreach (var o in current.Objects.Where(o => o.Kind is IptablesKind or Ip6tablesKind && o.Text.StartsWith("-A NETEM_", StringComparison.Ordinal)))
        {
            if (RuleComment.TryParse(IptablesLine.ValueOf(IptablesLine.Tokenize(o.Text), "--comment"), out var c) && c.Owner == plan.Owner && c.Queue > 0)
            {
                recorded.TryAdd((o.NetworkNamespace, c.Rule), c.Queue);
                taken.Add((o.NetworkNamespace, c.Queue));   // a new rule never takes a number an old rule still names
            }
        }

        var result = new List<DesiredQueue>();
        var used = new HashSet<(string?, int)>();
        for (var i = 0; i < plan.Rules.Count; i++)
        {
            var rule = plan.Rules[i];
            if (rule.Impairment.Delay <= TimeSpan.Zero)
            {
                continue;
            }

            var ns = rule.NetworkNamespace;
            var name = plan.RuleName(i);
            if (!recorded.TryGetValue((ns, name), out var queue) || current.ForeignObjects.Any(o => o.Kind == ForeignQueueKind && o.NetworkNamespace == ns && o.Location == queue.ToString(CultureInfo.InvariantCulture)) || used.Contains((ns, queue)))
            {
                queue = OwnerNames.FirstQueue;
                while (taken.Contains((ns, queue)) || used.Contains((ns, queue)))
                {
                    if (++queue > OwnerNames.LastQueue)
                    {
                        throw new ShapingException($"No NFQUEUE number is free in namespace '{ns ?? "(current)"}'.");
                    }
                }
            }

            used.Add((ns, queue));
            result.Add(new DesiredQueue(ns, queue, name, rule.Impairment));
        }

        return result;
    }

    /// <summary>
    /// The queue numbers other owners' rules name in one <c>iptables-save</c> output (from their ownership
    /// comments), as <see cref="ForeignQueueKind"/> objects.
    /// </summary>
    public static IEnumerable<KernelObject> ForeignQueues(string owner, string? ns, string output)
    {
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (!line.StartsWith("-A ", StringComparison.Ordinal) || !line.Contains(OwnerNames.CommentPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            if (RuleComment.TryParse(IptablesLine.ValueOf(IptablesLine.Tokenize(line), "--comment"), out var c) && c.Owner != owner && c.Queue > 0)
            {
                yield return new KernelObject(ns, ForeignQueueKind, c.Queue.ToString(CultureInfo.InvariantCulture), "rule of owner " + c.Owner);
            }
        }
    }

    /// <summary>The rules a (validated) plan needs, in chain order, with queue numbers allocated against <paramref name="current"/>.</summary>
    public static IReadOnlyList<DesiredIptablesRule> DesiredRules(ShapingPlan plan, ShapingState current)
    {
        var queues = Queues(plan, current).ToDictionary(q => q.Rule, q => q.Queue, StringComparer.Ordinal);
        var result = new List<DesiredIptablesRule>();
        for (var i = 0; i < plan.Rules.Count; i++)
        {
            var rule = plan.Rules[i];
            var name = plan.RuleName(i);
            var im = rule.Impairment;
            var family = (rule.Match.Destination ?? rule.Match.Source)?.BaseAddress.AddressFamily;
            var tools = family switch
            {
                AddressFamily.InterNetwork => new[] { IptablesKind },
                AddressFamily.InterNetworkV6 => new[] { Ip6tablesKind },
                _ => new[] { IptablesKind, Ip6tablesKind },
            };
            foreach (var tool in tools)
            {
                var chain = OwnerNames.Chain(plan.Owner, rule.Direction);
                var match = MatchTokens(rule, tool);
                var hasQueue = queues.TryGetValue(name, out var queue);
                if (im.LossPercent > 0)
                {
                    var target = new List<string> { "-m", "statistic", "--mode", "random", "--probability", (im.LossPercent / 100).ToString("0.##########", CultureInfo.InvariantCulture), "-j", "DROP" };
                    result.Add(Make(plan.Owner, name, "loss", rule, tool, chain, match, target, hasQueue ? queue : 0));
                }

                if (hasQueue)
                {
                    var target = new List<string> { "-j", "NFQUEUE", "--queue-num", queue.ToString(CultureInfo.InvariantCulture), "--queue-bypass" };
                    result.Add(Make(plan.Owner, name, "queue", rule, tool, chain, match, target, queue));
                }
            }
        }

        return result;
    }

    private static DesiredIptablesRule Make(string owner, string name, string part, ShapingRule rule, string tool, string chain, List<string> match, List<string> target, int queue)
    {
        var im = rule.Impairment;
        var hashInput = string.Join('\u001f', [rule.NetworkNamespace ?? "", tool, chain, .. match, .. target]);
        var comment = new RuleComment(owner, name, part, queue, Micros(im.Delay), Micros(im.Jitter), im.Distribution, im.LossPercent,
            OwnerNames.Fnv1a(hashInput).ToString("x8", CultureInfo.InvariantCulture));
        List<string> spec = [.. match, "-m", "comment", "--comment", comment.ToString(), .. target];
        return new DesiredIptablesRule(rule.NetworkNamespace, tool, chain, spec, comment);
    }

    private static long Micros(TimeSpan t) => t.Ticks / TimeSpan.TicksPerMicrosecond;

    private static List<string> MatchTokens(ShapingRule rule, string tool)
    {
        var t = new List<string>();
        var egress = rule.Direction == ShapingDirection.Egress;
        if (rule.BridgePort)
        {
            t.AddRange(["-m", "physdev", egress ? "--physdev-out" : "--physdev-in", rule.Interface]);
        }
        else
        {
            t.AddRange([egress ? "-o" : "-i", rule.Interface]);
        }

        var m = rule.Match;
        if (m.Source is { } s)
        {
            t.AddRange(["-s", s.ToString()]);
        }

        if (m.Destination is { } d)
        {
            t.AddRange(["-d", d.ToString()]);
        }

        switch (m.Protocol)
        {
            case TrafficProtocol.Tcp:
                t.AddRange(["-p", "tcp"]);
                break;
            case TrafficProtocol.Udp:
                t.AddRange(["-p", "udp"]);
                break;
            case TrafficProtocol.Icmp:
                t.AddRange(["-p", tool == Ip6tablesKind ? "ipv6-icmp" : "icmp"]);
                break;
        }

        if (m.SourcePort is { } sp)
        {
            t.AddRange(["--sport", sp.ToString(CultureInfo.InvariantCulture)]);
        }

        if (m.DestinationPort is { } dp)
        {
            t.AddRange(["--dport", dp.ToString(CultureInfo.InvariantCulture)]);
        }

        return t;
    }

    /// <summary>The commands that turn <paramref name="current"/> into what <paramref name="plan"/> needs. Pure.</summary>
    public static IReadOnlyList<CommandLine> Plan(ShapingPlan plan, ShapingState current)
    {
        var desired = DesiredRules(plan, current);
        var commands = new List<CommandLine>();

        // br_netfilter hands bridged packets to iptables only when asked to, per namespace.
        foreach (var group in plan.Rules.Where(r => r.BridgePort).GroupBy(r => r.NetworkNamespace))
        {
            foreach (var (kind, key) in new[] { (IptablesKind, BridgeSysctlV4), (Ip6tablesKind, BridgeSysctlV6) })
            {
                if (!desired.Any(d => d.NetworkNamespace == group.Key && d.Tool == kind))
                {
                    continue;
                }

                var now = current.Objects.FirstOrDefault(o => o.Kind == SysctlKind && o.NetworkNamespace == group.Key && o.Location == key);
                if (now?.Text != "1")
                {
                    commands.Add(CommandLine.Of("sysctl", "-q", "-w", key + "=1").InNamespace(group.Key));
                }
            }
        }

        var scopes = desired.Select(d => (d.NetworkNamespace, d.Tool))
            .Concat(current.Objects.Where(o => o.Kind is IptablesKind or Ip6tablesKind).Select(o => (o.NetworkNamespace, Tool: o.Kind)))
            .Distinct()
            .OrderBy(s => s.NetworkNamespace ?? "", StringComparer.Ordinal).ThenBy(s => s.Tool, StringComparer.Ordinal)
            .ToList();
        foreach (var (ns, tool) in scopes)
        {
            foreach (var direction in new[] { ShapingDirection.Egress, ShapingDirection.Ingress })
            {
                var chain = OwnerNames.Chain(plan.Owner, direction);
                var want = desired.Where(d => d.NetworkNamespace == ns && d.Tool == tool && d.Chain == chain).ToList();
                var have = current.Objects.Where(o => o.NetworkNamespace == ns && o.Kind == tool).ToList();
                PlanChain(commands, ns, tool, chain, Hook(direction), plan.Owner, want, have);
            }
        }

        return commands;
    }

    /// <summary>The commands that remove everything in <paramref name="current"/>. Pure.</summary>
    public static IReadOnlyList<CommandLine> ClearPlan(string owner, ShapingState current) =>
        Plan(new ShapingPlan(owner, []), current);

    private static void PlanChain(List<CommandLine> commands, string? ns, string tool, string chain, string hook, string owner, List<DesiredIptablesRule> want, List<KernelObject> have)
    {
        CommandLine Cmd(params string[] args) => CommandLine.Of(tool, ["-w", "-t", Table, .. args]).InNamespace(ns);

        var chainExists = have.Any(o => o.Location == chain && o.Text == "-N " + chain);
        var rules = have.Where(o => o.Location == chain && o.Text.StartsWith("-A ", StringComparison.Ordinal)).Select(o => IptablesLine.Tokenize(o.Text)).ToList();
        var jumps = have.Where(o => o.Location == hook).Select(o => IptablesLine.Tokenize(o.Text))
            .Where(t => IptablesLine.ValueOf(t, "-j") == chain).ToList();

        if (want.Count == 0)
        {
            foreach (var j in jumps)
            {
                commands.Add(Cmd(["-D", .. j.Skip(1)]));
            }

            if (chainExists)
            {
                commands.Add(Cmd("-F", chain));
                commands.Add(Cmd("-X", chain));
            }

            return;
        }

        if (!chainExists)
        {
            commands.Add(Cmd("-N", chain));
        }

        for (var i = 0; i < want.Count; i++)
        {
            if (i < rules.Count)
            {
                if (IptablesLine.ValueOf(rules[i], "--comment") != want[i].Comment.ToString())
                {
                    // Replacing in place is atomic per rule: no moment without the rule.
                    commands.Add(Cmd(["-R", chain, (i + 1).ToString(CultureInfo.InvariantCulture), .. want[i].Spec]));
                }
            }
            else
            {
                commands.Add(Cmd(["-A", chain, .. want[i].Spec]));
            }
        }

        for (var i = rules.Count - 1; i >= want.Count; i--)
        {
            commands.Add(Cmd("-D", chain, (i + 1).ToString(CultureInfo.InvariantCulture)));
        }

        if (jumps.Count == 0)
        {
            var comment = new RuleComment(owner, "", RuleComment.JumpPart, 0, 0, 0, DelayDistribution.Uniform, 0, "").ToString();
            commands.Add(Cmd("-A", hook, "-m", "comment", "--comment", comment, "-j", chain));
        }

        foreach (var extra in jumps.Skip(1))
        {
            commands.Add(Cmd(["-D", .. extra.Skip(1)]));
        }
    }

    /// <summary>
    /// The owner's objects in one <c>iptables-save -t mangle</c> output: chain declarations (as
    /// <c>-N CHAIN</c>), the owned chains' rules, and the hook rules that jump to them.
    /// </summary>
    public static IEnumerable<KernelObject> ParseSave(string owner, string? ns, string tool, string output)
    {
        var chains = new[] { OwnerNames.EgressChain(owner), OwnerNames.IngressChain(owner) };
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith(':'))
            {
                var name = line[1..].Split(' ')[0];
                if (chains.Contains(name, StringComparer.Ordinal))
                {
                    yield return new KernelObject(ns, tool, name, "-N " + name);
                }

                continue;
            }

            if (!line.StartsWith("-A ", StringComparison.Ordinal))
            {
                continue;
            }

            var tokens = IptablesLine.Tokenize(line);
            if (tokens.Count < 2)
            {
                continue;
            }

            var chain = tokens[1];
            if (chains.Contains(chain, StringComparer.Ordinal))
            {
                yield return new KernelObject(ns, tool, chain, line);
            }
            else if (chain is "POSTROUTING" or "PREROUTING" && chains.Contains(IptablesLine.ValueOf(tokens, "-j"), StringComparer.Ordinal))
            {
                yield return new KernelObject(ns, tool, chain, line);
            }
        }
    }

    /// <summary>Splits <c>ip -all netns exec …</c> output into sections per namespace.</summary>
    public static IEnumerable<(string Namespace, string Output)> SplitAllNetns(string output)
    {
        string? current = null;
        var sb = new System.Text.StringBuilder();
        foreach (var line in output.Split('\n'))
        {
            if (line.StartsWith("netns: ", StringComparison.Ordinal))
            {
                if (current is not null)
                {
                    yield return (current, sb.ToString());
                }

                current = line["netns: ".Length..].Trim();
                sb.Clear();
            }
            else if (current is not null)
            {
                sb.Append(line).Append('\n');
            }
        }

        if (current is not null)
        {
            yield return (current, sb.ToString());
        }
    }

    /// <summary>The rules found for the owner, rebuilt from the ownership comments and the match.</summary>
    public static IReadOnlyList<AppliedRule> AppliedRules(ShapingState state, IReadOnlyDictionary<(string? Ns, int Queue), QueueHealth> health)
    {
        var result = new List<AppliedRule>();
        var seen = new HashSet<(string?, string)>();
        foreach (var o in state.Objects.Where(o => o.Kind is IptablesKind or Ip6tablesKind && o.Text.StartsWith("-A NETEM_", StringComparison.Ordinal)))
        {
            var tokens = IptablesLine.Tokenize(o.Text);
            if (!RuleComment.TryParse(IptablesLine.ValueOf(tokens, "--comment"), out var c) || c.Owner != state.Owner || !seen.Add((o.NetworkNamespace, c.Rule)))
            {
                continue;
            }

            var direction = o.Location == OwnerNames.EgressChain(state.Owner) ? ShapingDirection.Egress : ShapingDirection.Ingress;
            var iface = IptablesLine.ValueOf(tokens, "-o") ?? IptablesLine.ValueOf(tokens, "-i") ??
                        IptablesLine.ValueOf(tokens, "--physdev-out") ?? IptablesLine.ValueOf(tokens, "--physdev-in") ?? "";
            var im = new Impairment
            {
                Delay = TimeSpan.FromTicks(c.DelayMicroseconds * TimeSpan.TicksPerMicrosecond),
                Jitter = TimeSpan.FromTicks(c.JitterMicroseconds * TimeSpan.TicksPerMicrosecond),
                Distribution = c.Distribution,
                LossPercent = c.LossPercent,
            };
            health.TryGetValue((o.NetworkNamespace, c.Queue), out var h);
            result.Add(new AppliedRule(o.NetworkNamespace, iface, direction, c.Rule, im, c.Delay() ? "nfq:" + c.Queue.ToString(CultureInfo.InvariantCulture) : "iptables:" + o.Location, h));
        }

        return result;
    }

    private static bool Delay(this RuleComment c) => c.DelayMicroseconds > 0;
}
