using System.Globalization;
using System.Net;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem.Tc;

namespace Cloudlets.Netem.Tests.Tc;

public sealed class TcPlannerTests
{
    private const string Owner = "demo";
    private static readonly string Fixtures = Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures");
    private const string Dir = TcHandleRecord.DefaultDirectory;

    // The slot recorded for the owner in these tests (its preferred one; pinned below).
    private static readonly int Handle = OwnerNames.PreferredHandle(Owner);
    private static readonly string H = OwnerNames.Hex(Handle);
    private static readonly string H1 = OwnerNames.Hex(Handle + 1);
    private static readonly KernelObject Record = new(null, TcHandleRecord.OwnedKind, OwnerNames.Hex(Handle), Owner);

    private static string Line(CommandLine c) => string.Join(' ', [c.Program, .. c.Arguments]);

    private static string Fixture(string name) =>
        File.ReadAllText(Path.Combine(Fixtures, name)).Replace("4a10", H, StringComparison.Ordinal).Replace("4a11", H1, StringComparison.Ordinal);

    /// <summary>A state in which the owner holds its recorded handle, plus <paramref name="objects"/>.</summary>
    private static ShapingState State(params KernelObject[] objects) => new(Owner, TcNetemShaper.BackendName, [], [Record, .. objects], []);

    private static List<KernelObject> Parse(string json) => TcPlanner.ParseQdiscs(Handle, null, json, []);

    [Test]
    public void Plan_WholeInterface_IsTheDemonstrationsRootNetem()
    {
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]);
        Assert.That(TcPlanner.Plan(plan, State()).Select(Line), Is.EqualTo(new[]
        {
            $"tc qdisc replace dev eth0 root handle {H}: netem limit 1000 delay 300ms",
        }));
    }

    [Test]
    public void Plan_PerDestinationWithJitterAndLoss_BuildsHtbClassesNetemLeavesAndU32Filters()
    {
        var plan = new ShapingPlan(Owner,
        [
            ShapingRule.Egress("eth0", new Impairment { Delay = TimeSpan.FromMilliseconds(300), Jitter = TimeSpan.FromMilliseconds(10), Distribution = DelayDistribution.Normal, LossPercent = 1.5 },
                TrafficMatch.To(IPAddress.Parse("198.19.200.1"))),
            ShapingRule.Egress("eth0", new Impairment { Delay = TimeSpan.FromMilliseconds(20), RateBitsPerSecond = 10_000_000 },
                new TrafficMatch { Destination = IPNetwork.Parse("198.19.201.0/24"), Protocol = TrafficProtocol.Udp, DestinationPort = 53 }),
        ]) ;
        var h2 = OwnerNames.Hex(Handle + 2);
        Assert.That(TcPlanner.Plan(plan, State()).Select(Line), Is.EqualTo(new[]
        {
            $"tc qdisc replace dev eth0 root handle {H}: htb",
            $"tc class replace dev eth0 parent {H}: classid {H}:1 htb rate 10gbit ceil 10gbit quantum 60000",
            $"tc qdisc replace dev eth0 parent {H}:1 handle {H1}: netem limit 1000 delay 300ms 10ms distribution normal loss random 1.5%",
            $"tc filter add dev eth0 parent {H}: protocol ip prio 1 u32 match ip dst 198.19.200.1/32 flowid {H}:1",
            $"tc class replace dev eth0 parent {H}: classid {H}:2 htb rate 10000000bit ceil 10000000bit quantum 60000",
            $"tc qdisc replace dev eth0 parent {H}:2 handle {h2}: netem limit 1000 delay 20ms",
            $"tc filter add dev eth0 parent {H}: protocol ip prio 2 u32 match ip dst 198.19.201.0/24 match ip protocol 17 0xff match ip dport 53 0xffff flowid {H}:2",
        }));
    }

    [Test]
    public void Plan_UniformJitter_NamesNoDistributionTable()
    {
        // iproute2 ships no uniform.dist: "distribution uniform" fails on a real kernel (seen on the lab's netem guest).
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", new Impairment { Delay = TimeSpan.FromMilliseconds(100), Jitter = TimeSpan.FromMilliseconds(20) })]);
        Assert.That(TcPlanner.Plan(plan, State()).Select(Line).Single(l => l.Contains("netem", StringComparison.Ordinal)),
            Is.EqualTo($"tc qdisc replace dev eth0 root handle {H}: netem limit 1000 delay 100ms 20ms"));
    }

    [Test]
    public void Plan_Ingress_GoesThroughAnIfbDevice()
    {
        var plan = new ShapingPlan(Owner, [new ShapingRule("eth0", ShapingDirection.Ingress, TrafficMatch.All, Impairment.FromDelay(50)) { NetworkNamespace = "ns1" }]);
        var ifb = OwnerNames.IfbDevice(Handle, "eth0");
        Assert.That(TcPlanner.Plan(plan, State()).Select(Line), Is.EqualTo(new[]
        {
            $"ip netns exec ns1 ip link add {ifb} type ifb",
            $"ip netns exec ns1 ip link set {ifb} up",
            "ip netns exec ns1 tc qdisc add dev eth0 handle ffff: ingress",
            $"ip netns exec ns1 tc filter add dev eth0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev {ifb}",
            $"ip netns exec ns1 tc qdisc replace dev {ifb} root handle {H}: netem limit 1000 delay 50ms",
        }));
    }

    [Test]
    public void ParseQdiscs_NetemTree_RePlansToNothing()
    {
        var plan = new ShapingPlan(Owner,
        [
            ShapingRule.Egress("eth0", new Impairment { Delay = TimeSpan.FromMilliseconds(300), Jitter = TimeSpan.FromMilliseconds(10), LossPercent = 1.5 },
                new TrafficMatch { Destination = IPNetwork.Parse("198.19.200.1/32"), Protocol = TrafficProtocol.Udp, DestinationPort = 53 }),
        ]);
        var objects = Parse(Fixture("tc-qdisc-netem-tree.json"));
        objects.AddRange(TcPlanner.ParseFilters(null, "eth0", Fixture("tc-filter-u32.json")));
        Assert.That(TcPlanner.Plan(plan, State([.. objects])), Is.Empty);
    }

    /// <summary>A fixture captured from the lab's netem guest (owner handle 5000 there), with the test owner's handles.</summary>
    private static string Captured(string name) =>
        File.ReadAllText(Path.Combine(Fixtures, name)).Replace("5000", H, StringComparison.Ordinal).Replace("5001", H1, StringComparison.Ordinal)
            .Replace("5002", OwnerNames.Hex(Handle + 2), StringComparison.Ordinal);

    [Test]
    public void ParseQdiscs_CapturedPerDestinationTree_RePlansToNothing()
    {
        var plan = new ShapingPlan(Owner,
        [
            ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(IPAddress.Parse("198.18.2.1"))),
            ShapingRule.Egress("eth0", Impairment.FromDelay(300), TrafficMatch.To(IPAddress.Parse("198.18.2.2"))),
        ]);
        var objects = Parse(Captured("tc-qdisc-guest-htb-netem.json"));
        objects.AddRange(TcPlanner.ParseFilters(null, "eth0", Captured("tc-filter-guest-u32.json")));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(objects.Where(o => o.Text.Contains("netem", StringComparison.Ordinal)).Select(o => o.Text).Order(StringComparer.Ordinal), Is.EqualTo(new[]
            {
                $"parent {H}:1 {H1}: netem limit=1000 delay=20000us jitter=0us loss=0 duplicate=0 corrupt=0 reorder=0",
                $"parent {H}:2 {OwnerNames.Hex(Handle + 2)}: netem limit=1000 delay=300000us jitter=0us loss=0 duplicate=0 corrupt=0 reorder=0",
            }));
            Assert.That(TcPlanner.Plan(plan, State([.. objects])), Is.Empty);
            Assert.That(TcPlanner.Plan(plan with { Rules = [plan.Rules[0]] }, State([.. objects])), Is.Not.Empty, "a changed plan is not read as applied");
        }
    }

    [Test]
    public void ParseQdiscs_CapturedIngressThroughIfb_RePlansToNothing()
    {
        var ifb = OwnerNames.IfbDevice(Handle, "eth0");
        var plan = new ShapingPlan(Owner, [new ShapingRule("eth0", ShapingDirection.Ingress, TrafficMatch.All, Impairment.FromDelay(50))]);
        var objects = TcPlanner.ParseQdiscs(Handle, null, Captured("tc-qdisc-guest-ingress-ifb.json"), [ifb]);
        objects.Add(new KernelObject(null, TcPlanner.LinkKind, ifb, "ifb eth0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Captured("tc-qdisc-guest-ingress-ifb.json"), Does.Contain(ifb), "the captured IFB device is the owner's");
            Assert.That(TcPlanner.Plan(plan, State([.. objects])), Is.Empty);
        }
    }

    [Test]
    public void ParseQdiscs_NetemTree_ReadsSecondsAndFractions()
    {
        var objects = Parse(Fixture("tc-qdisc-netem-tree.json"));
        Assert.That(objects.Single(o => o.Text.Contains("netem", StringComparison.Ordinal)).Text,
            Is.EqualTo($"parent {H}:1 {H1}: netem limit=1000 delay=300000us jitter=10000us loss=1.5 duplicate=0 corrupt=0 reorder=0"));
    }

    [Test]
    public void Plan_DelayChanged_RebuildsTheOwnedTree()
    {
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", Impairment.FromDelay(50), new TrafficMatch { Destination = IPNetwork.Parse("198.19.200.1/32"), Protocol = TrafficProtocol.Udp, DestinationPort = 53 })]);
        var objects = Parse(Fixture("tc-qdisc-netem-tree.json"));
        objects.AddRange(TcPlanner.ParseFilters(null, "eth0", Fixture("tc-filter-u32.json")));
        var lines = TcPlanner.Plan(plan, State([.. objects])).Select(Line).ToList();
        Assert.That(lines[0], Is.EqualTo("tc qdisc del dev eth0 root"));
        Assert.That(lines, Has.Some.Contains("netem limit 1000 delay 50ms"));
    }

    [Test]
    public void Plan_ForeignRootQdisc_Refuses()
    {
        const string json = """[{"kind":"htb","handle":"1:","dev":"eth0","root":true,"options":{}}]""";
        var state = State([.. Parse(json)]);
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]);
        Assert.Throws<ForeignQdiscException>(() => TcPlanner.Plan(plan, state));
    }

    [Test]
    public void Plan_DefaultRootQdiscs_AreNotForeign()
    {
        var state = State([.. Parse(Fixture("tc-qdisc-netem-tree.json"))]);
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth2", Impairment.FromDelay(300)), ShapingRule.Egress("eth1", Impairment.FromDelay(20))]);
        Assert.That(TcPlanner.Plan(plan, state).Select(Line), Has.Some.StartWith("tc qdisc replace dev eth2 root"));
    }

    [Test]
    public void ParseQdiscs_ForeignIngress_IsReportedAndRefusedForIngressRules()
    {
        var json = File.ReadAllText(Path.Combine(Fixtures, "tc-qdisc-noqueue-ingress.json")).Replace("\"handle\":\"ffff:\"", "\"dev\":\"eth0\",\"handle\":\"ffff:\"", StringComparison.Ordinal);
        var state = State([.. Parse(json)]);
        var plan = new ShapingPlan(Owner, [new ShapingRule("eth0", ShapingDirection.Ingress, TrafficMatch.All, Impairment.FromDelay(5))]);
        Assert.Throws<ForeignQdiscException>(() => TcPlanner.Plan(plan, state));
    }

    [Test]
    public void Keys_SourceAndDestinationPorts_MergeAtOneOffsetLikeTc() =>
        Assert.That(TcPlanner.Keys(new TrafficMatch { Protocol = TrafficProtocol.Tcp, SourcePort = 1, DestinationPort = 2 }),
            Is.EqualTo(new[] { "60000/ff0000@8", "10002/ffffffff@20" }));

    [Test]
    public void ClearPlan_OwnedTreeAndIngress_RemovesTreeIngressAndIfb()
    {
        var ifb = OwnerNames.IfbDevice(Handle, "eth0");
        var state = State(
            new KernelObject(null, TcPlanner.QdiscKind, ifb, $"root {H}: netem limit=1000 delay=50000us jitter=0us loss=0 duplicate=0 corrupt=0 reorder=0"),
            new KernelObject(null, TcPlanner.IngressKind, "eth0", "ingress redirect " + ifb),
            new KernelObject(null, TcPlanner.LinkKind, ifb, "ifb eth0"));
        Assert.That(TcPlanner.Plan(new ShapingPlan(Owner, []), state).Select(Line), Is.EqualTo(new[]
        {
            $"tc qdisc del dev {ifb} root",
            "tc qdisc del dev eth0 ingress",
            $"ip link del {ifb}",
        }));
    }

    [Test]
    public void PreferredHandle_Demo_IsPinned()
    {
        // Cleanup of leftovers finds an owner's tree through the handle record; the preferred slot only
        // decides what a new owner tries first. Pinned so a change of the derivation is a visible diff.
        using (Assert.EnterMultipleScope())
        {
            Assert.That(OwnerNames.PreferredHandle(Owner), Is.EqualTo(0x4360));
            Assert.That(OwnerNames.IfbDevice(0x4360, "eth0"), Is.EqualTo("ifb4360" + OwnerNames.Fnv1a("eth0").ToString("x8", CultureInfo.InvariantCulture)).And.Length.EqualTo(15));
        }
    }

    [Test]
    public void Plan_OwnerWithoutHandle_ClaimsItsPreferredSlotFirst()
    {
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]);
        var empty = new ShapingState(Owner, TcNetemShaper.BackendName, [], [], []);
        Assert.That(TcPlanner.Plan(plan, empty).Select(Line), Is.EqualTo(new[]
        {
            $"mkdir -p {Dir}",
            $"mkdir {Dir}/{H}",
            $"mkdir {Dir}/{H}/{Owner}",
            $"tc qdisc replace dev eth0 root handle {H}: netem limit 1000 delay 300ms",
        }));
    }

    [Test]
    public void Plan_PreferredSlotHeldByAnotherOwnerOrInUse_TakesTheNextFreeSlot()
    {
        var plan = new ShapingPlan(Owner, [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]);
        var next = OwnerNames.Hex(Handle + OwnerNames.HandlesPerOwner);
        var afterNext = OwnerNames.Hex(Handle + (2 * OwnerNames.HandlesPerOwner));
        var otherOwner = new ShapingState(Owner, TcNetemShaper.BackendName, [], [], [new KernelObject(null, TcHandleRecord.ForeignKind, H, "someone")]);
        var inKernel = otherOwner with { ForeignObjects = [.. otherOwner.ForeignObjects, new KernelObject("ns1", TcHandleRecord.HandleInUseKind, OwnerNames.Hex(Handle + OwnerNames.HandlesPerOwner + 3), "eth9")] };
        using (Assert.EnterMultipleScope())
        {
            Assert.That(TcPlanner.Plan(plan, otherOwner).Select(Line), Has.Member($"tc qdisc replace dev eth0 root handle {next}: netem limit 1000 delay 300ms"));
            Assert.That(TcPlanner.Plan(plan, inKernel).Select(Line), Has.Member($"mkdir {Dir}/{afterNext}"));
        }
    }

    [Test]
    public void ParseQdiscs_HandleInTheRangeButNotRecordedForTheOwner_IsNotTheOwners()
    {
        var json = Fixture("tc-qdisc-netem-tree.json");
        var unowned = TcPlanner.ParseQdiscs(null, null, json, []);
        var otherSlot = TcPlanner.ParseQdiscs(Handle + OwnerNames.HandlesPerOwner, null, json, []);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(unowned.Where(o => o.Kind is TcPlanner.QdiscKind or TcPlanner.FilterKind), Is.Empty);
            Assert.That(unowned, Has.Some.Matches<KernelObject>(o => o.Kind == TcPlanner.ForeignKind && o.Text.StartsWith($"root {H}: htb", StringComparison.Ordinal)), "a tree in the range without the owner's record is foreign");
            Assert.That(otherSlot.Where(o => o.Kind == TcPlanner.QdiscKind), Is.Empty);
            Assert.That(unowned.Where(o => o.Kind == TcHandleRecord.HandleInUseKind).Select(o => o.Location), Has.Member(H).And.Member(H1));
        }
    }

    [Test]
    public void Allocate_EverySlotTaken_Throws()
    {
        var all = Enumerable.Range(0, OwnerNames.HandleSlots)
            .Select(i => new KernelObject(null, TcHandleRecord.ForeignKind, OwnerNames.Hex(OwnerNames.FirstHandle + (i * OwnerNames.HandlesPerOwner)), "o" + i.ToString(CultureInfo.InvariantCulture)));
        Assert.Throws<ShapingException>(() => TcPlanner.Allocate(Owner, new ShapingState(Owner, TcNetemShaper.BackendName, [], [], [.. all])));
    }

    [Test]
    public void Parse_FindOutput_ReadsHandleAndOwnerAndMissingDirectoryIsEmpty()
    {
        var ok = new CommandResult(TcHandleRecord.List(Dir), 0, $"{Dir}/4360/demo\n{Dir}/4370/own-1\n{Dir}/junk\n", "", TimeSpan.Zero);
        var missing = new CommandResult(TcHandleRecord.List(Dir), 1, "", $"find: '{Dir}': No such file or directory\n", TimeSpan.Zero);
        var denied = new CommandResult(TcHandleRecord.List(Dir), 1, "", "find: Permission denied\n", TimeSpan.Zero);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(TcHandleRecord.Parse(Dir, ok), Is.EqualTo(new[] { (0x4360, "demo"), (0x4370, "own-1") }));
            Assert.That(TcHandleRecord.Parse(Dir, missing), Is.Empty);
            Assert.Throws<ShapingException>(() => TcHandleRecord.Parse(Dir, denied));
        }
    }
}
