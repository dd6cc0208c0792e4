using Cloudlets.Core.Decisions;
using Cloudlets.Core.DependencyInjection;
using Cloudlets.Core.Options;
using Microsoft.Extensions.Configuration;

namespace Cloudlets.Core.Tests.Decisions;

public class PlacementRulesTests
{
    private static readonly string[] Hosts = ["a", "b", "c"];
    private static readonly string[] Vms = ["web1", "web2", "db1", "db2"];

    private static PlacementGroup Group(string name, params string[] vms) => new() { Name = name, Vms = vms };

    private static string[] Errors(PlacementRules rules, bool known = true)
    {
        var errors = new OptionsErrors();
        if (known)
        {
            rules.Validate(errors, Hosts, Vms);
        }
        else
        {
            rules.Validate(errors);
        }

        return [.. errors.Errors.Select(e => e.ToString())];
    }

    [Test]
    public void Validate_Empty_NoErrors()
    {
        Assert.That(Errors(PlacementRules.Empty), Is.Empty);
        Assert.That(PlacementRules.Empty.IsEmpty, Is.True);
    }

    [Test]
    public void Validate_FullValidRules_NoErrors()
    {
        var rules = new PlacementRules
        {
            DrainedHosts = ["a"],
            PinnedVms = ["db1"],
            AffinityGroups = [Group("web", "web1", "web2")],
            AntiAffinityGroups = [Group("db", "db1", "db2")],
            ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["db2"] = ["c"] },
        };
        Assert.That(Errors(rules), Is.Empty);
        Assert.That(rules.IsEmpty, Is.False);
    }

    [Test]
    public void Validate_EmptyAndRepeatedNames_EachListedWithItsPath()
    {
        var rules = new PlacementRules
        {
            DrainedHosts = ["a", " ", "a"],
            PinnedVms = ["", "db1", "db1"],
            ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["db2"] = ["c", ""], [""] = ["a"] },
        };
        Assert.That(Errors(rules, known: false), Is.EquivalentTo(new[]
        {
            "DrainedHosts[1]: must not be empty.",
            "DrainedHosts[2]: 'a' appears twice.",
            "PinnedVms[0]: must not be empty.",
            "PinnedVms[2]: 'db1' appears twice.",
            "ExcludedHosts[db2][1]: must not be empty.",
            "ExcludedHosts: has an entry whose VM name is empty.",
        }));
    }

    [Test]
    public void Validate_BadGroups_EachListedWithItsPath()
    {
        var rules = new PlacementRules
        {
            AffinityGroups = [Group("", "web1", "web2"), Group("solo", "web1"), null!],
            AntiAffinityGroups = [Group("db", "db1", "db2"), Group("db", "db1", "db1")],
        };
        Assert.That(Errors(rules, known: false), Is.EquivalentTo(new[]
        {
            "AffinityGroups[0].Name: must not be empty.",
            "AffinityGroups[1].Vms: has 1 VM(s); a group needs at least 2.",
            "AffinityGroups[2]: is null.",
            "AntiAffinityGroups[1].Vms[1]: 'db1' appears twice.",
            "AntiAffinityGroups[1].Name: 'db' is used by another anti-affinity group.",
        }));
    }

    [Test]
    public void Validate_AffinityJoinedThroughASharedVmConflictsWithAntiAffinity_Error()
    {
        // web1~web2 and web2~db1: web1 and db1 must share a host, and an anti-affinity group keeps them apart.
        var rules = new PlacementRules
        {
            AffinityGroups = [Group("front", "web1", "web2"), Group("back", "web2", "db1")],
            AntiAffinityGroups = [Group("spread", "web1", "db1")],
        };
        var errors = Errors(rules);
        Assert.That(errors, Has.Length.EqualTo(1));
        Assert.That(errors[0], Does.StartWith("AntiAffinityGroups[0].Vms: 'web1' and 'db1' must share a host (affinity groups 'front', 'back') and must not (anti-affinity group 'spread')."));
    }

    [Test]
    public void Validate_UnknownNames_EachListedWithItsPath()
    {
        var rules = new PlacementRules
        {
            DrainedHosts = ["x"],
            PinnedVms = ["ghost"],
            AffinityGroups = [Group("web", "web1", "nope")],
            AntiAffinityGroups = [Group("db", "db1", "nada")],
            ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["who"] = ["a"], ["db1"] = ["z"] },
        };
        Assert.That(Errors(rules), Is.EquivalentTo(new[]
        {
            "DrainedHosts[0]: host 'x' is not one of the pipeline's hosts (a, b, c).",
            "PinnedVms[0]: VM 'ghost' is not one of the pipeline's VMs (web1, web2, db1, db2).",
            "AffinityGroups[0].Vms[1]: VM 'nope' is not one of the pipeline's VMs (web1, web2, db1, db2).",
            "AntiAffinityGroups[0].Vms[1]: VM 'nada' is not one of the pipeline's VMs (web1, web2, db1, db2).",
            "ExcludedHosts[who]: VM 'who' is not one of the pipeline's VMs (web1, web2, db1, db2).",
            "ExcludedHosts[db1][0]: host 'z' is not one of the pipeline's hosts (a, b, c).",
        }));
    }

    [Test]
    [Category("BadInput")]
    public void Validate_VmExcludedFromEveryHost_Error()
    {
        var rules = new PlacementRules { ExcludedHosts = new Dictionary<string, IReadOnlyList<string>> { ["db1"] = ["a", "b", "c"] } };
        Assert.That(Errors(rules), Is.EqualTo(new[] { "ExcludedHosts[db1]: excludes every host: the VM could run nowhere." }));
    }

    [Test]
    [Category("BadInput")]
    public void ValidateAndThrow_Invalid_OptionsValidationExceptionListingEveryError()
    {
        var rules = new PlacementRules { DrainedHosts = ["x"], PinnedVms = [""] };
        var e = Assert.Throws<OptionsValidationException>(() => rules.ValidateAndThrow(Hosts, Vms))!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(e.OptionsType, Is.EqualTo("PlacementRules"));
            Assert.That(e.Errors.Select(x => x.Path), Is.EquivalentTo(new[] { "DrainedHosts[0]", "PinnedVms[0]" }));
        }
    }

    [Test]
    public void WithDrained_ChangeAndNoChange_NewValueOrSameInstance()
    {
        var drained = PlacementRules.Empty.WithDrained("a", true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(drained.IsDrained("a"), Is.True);
            Assert.That(PlacementRules.Empty.IsDrained("a"), Is.False, "the original is unchanged");
            Assert.That(drained.WithDrained("a", true), Is.SameAs(drained));
            Assert.That(drained.WithDrained("a", false).IsDrained("a"), Is.False);
            Assert.That(PlacementRules.Empty.WithDrained("a", false), Is.SameAs(PlacementRules.Empty));
        }
    }

    [Test]
    public void WithPinned_ChangeAndNoChange_NewValueOrSameInstance()
    {
        var pinned = PlacementRules.Empty.WithPinned("db1", true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pinned.IsPinned("db1"), Is.True);
            Assert.That(pinned.WithPinned("db1", true), Is.SameAs(pinned));
            Assert.That(pinned.WithPinned("db1", false).IsPinned("db1"), Is.False);
        }
    }

    [Test]
    public void Init_ListChangedAfterwards_RulesKeepTheirCopy()
    {
        var drained = new List<string> { "a" };
        var excluded = new Dictionary<string, IReadOnlyList<string>> { ["db1"] = ["b"] };
        var rules = new PlacementRules { DrainedHosts = drained, ExcludedHosts = excluded };
        drained.Add("b");
        excluded["db2"] = ["c"];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rules.DrainedHosts, Is.EqualTo(new[] { "a" }));
            Assert.That(rules.ExcludedHosts.Keys, Is.EqualTo(new[] { "db1" }));
            Assert.That(rules.IsExcluded("db1", "b"), Is.True);
            Assert.That(rules.IsExcluded("db1", "a"), Is.False);
        }
    }

    [Test]
    public void Bind_FromConfiguration_EveryRuleRead()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Rules:DrainedHosts:0"] = "a",
            ["Rules:PinnedVms:0"] = "db1",
            ["Rules:AffinityGroups:0:Name"] = "web",
            ["Rules:AffinityGroups:0:Vms:0"] = "web1",
            ["Rules:AffinityGroups:0:Vms:1"] = "web2",
            ["Rules:AntiAffinityGroups:0:Name"] = "db",
            ["Rules:AntiAffinityGroups:0:Vms:0"] = "db1",
            ["Rules:AntiAffinityGroups:0:Vms:1"] = "db2",
            ["Rules:ExcludedHosts:db2:0"] = "c",
        }).Build();
        var options = new CloudletsOptions();
        configuration.Bind(options);
        var rules = options.Rules;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rules.DrainedHosts, Is.EqualTo(new[] { "a" }));
            Assert.That(rules.PinnedVms, Is.EqualTo(new[] { "db1" }));
            Assert.That(rules.AffinityGroups.Select(g => (g.Name, string.Join(",", g.Vms))), Is.EqualTo(new[] { ("web", "web1,web2") }));
            Assert.That(rules.AntiAffinityGroups.Select(g => (g.Name, string.Join(",", g.Vms))), Is.EqualTo(new[] { ("db", "db1,db2") }));
            Assert.That(rules.IsExcluded("db2", "c"), Is.True);
            Assert.That(PlacementRules.Empty.IsEmpty, Is.True, "binding must not write into the shared empty rules");
            Assert.That(Errors(rules), Is.Empty);
        }
    }
}
