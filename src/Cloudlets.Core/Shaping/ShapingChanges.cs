using System.Globalization;

namespace Cloudlets.Core.Shaping;

/// <summary>What kind of change a shaper would make to one rule.</summary>
public enum ShapingChangeKind
{
    /// <summary>The rule is in the plan and not in the kernel: it is created.</summary>
    Add,

    /// <summary>The rule is in both, with a different impairment: it is changed in place.</summary>
    Change,

    /// <summary>The rule is in the kernel and not in the plan: it is removed.</summary>
    Remove,

    /// <summary>
    /// No rule differs, but the owner's kernel objects do (leftovers of a crashed run, a half-applied
    /// change): they are rebuilt or removed.
    /// </summary>
    Repair,
}

/// <summary>One change a shaper would make, in words every backend shares.</summary>
/// <param name="Kind">What happens to the rule.</param>
/// <param name="NetworkNamespace">The rule's named network namespace, or <see langword="null"/> for the caller's.</param>
/// <param name="Interface">The interface (empty for a <see cref="ShapingChangeKind.Repair"/>).</param>
/// <param name="Direction">The direction.</param>
/// <param name="RuleName">The rule's effective name (empty for a <see cref="ShapingChangeKind.Repair"/>).</param>
/// <param name="Description">One readable line, for logs and dry runs.</param>
public sealed record ShapingChange(ShapingChangeKind Kind, string? NetworkNamespace, string Interface, ShapingDirection Direction, string RuleName, string Description);

/// <summary>
/// What <see cref="INetemShaper.ApplyAsync"/> would change to get from a state read back from the
/// kernel to a plan, independent of the backend (each backend can also show its own commands).
/// </summary>
/// <param name="Owner">The owner.</param>
/// <param name="Changes">The changes, in the order: additions and changes in plan order, then removals, then a repair.</param>
public sealed record ShapingChanges(string Owner, IReadOnlyList<ShapingChange> Changes)
{
    /// <summary>Whether nothing would change.</summary>
    public bool IsEmpty => Changes.Count == 0;

    /// <summary>
    /// The rule-by-rule difference between <paramref name="plan"/> and <paramref name="current"/>, for a
    /// backend that has decided whether the kernel needs any work (<paramref name="backendHasWork"/>).
    /// A backend's own comparison is authoritative: when it has nothing to do the result is empty even
    /// if a read-back impairment lacks a field the kernel does not report; when it has work but no rule
    /// differs, the result is one <see cref="ShapingChangeKind.Repair"/>.
    /// </summary>
    public static ShapingChanges Between(ShapingPlan plan, ShapingState current, bool backendHasWork)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(current);
        if (!backendHasWork)
        {
            return new ShapingChanges(plan.Owner, []);
        }

        var changes = new List<ShapingChange>();
        var planned = new HashSet<(string?, string, ShapingDirection, string)>();
        for (var i = 0; i < plan.Rules.Count; i++)
        {
            var rule = plan.Rules[i];
            var name = plan.RuleName(i);
            planned.Add((rule.NetworkNamespace, rule.Interface, rule.Direction, name));
            var found = current.Rules.FirstOrDefault(r => Same(r, rule.NetworkNamespace, rule.Interface, rule.Direction, name));
            if (found is null)
            {
                changes.Add(new(ShapingChangeKind.Add, rule.NetworkNamespace, rule.Interface, rule.Direction, name,
                    $"add {Where(name, rule.NetworkNamespace, rule.Interface, rule.Direction)}: {Describe(rule.Impairment)}"));
            }
            else if (found.Impairment != rule.Impairment)
            {
                changes.Add(new(ShapingChangeKind.Change, rule.NetworkNamespace, rule.Interface, rule.Direction, name,
                    $"change {Where(name, rule.NetworkNamespace, rule.Interface, rule.Direction)}: {Describe(found.Impairment)} -> {Describe(rule.Impairment)}"));
            }
        }

        foreach (var r in current.Rules)
        {
            if (!planned.Contains((r.NetworkNamespace, r.Interface, r.Direction, r.Name)))
            {
                changes.Add(new(ShapingChangeKind.Remove, r.NetworkNamespace, r.Interface, r.Direction, r.Name,
                    $"remove {Where(r.Name, r.NetworkNamespace, r.Interface, r.Direction)}: {Describe(r.Impairment)}"));
            }
        }

        if (changes.Count == 0)
        {
            changes.Add(new(ShapingChangeKind.Repair, null, "", ShapingDirection.Egress, "",
                $"repair: owner '{plan.Owner}' has kernel objects that differ from its rules; they are rebuilt"));
        }

        return new ShapingChanges(plan.Owner, changes);
    }

    private static bool Same(AppliedRule r, string? ns, string iface, ShapingDirection direction, string name) =>
        r.NetworkNamespace == ns && r.Interface == iface && r.Direction == direction && r.Name == name;

    private static string Where(string name, string? ns, string iface, ShapingDirection direction) =>
        string.Create(CultureInfo.InvariantCulture, $"rule '{name}' ({direction} on {iface}{(ns is null ? "" : " in netns " + ns)})");

    private static string Describe(Impairment i) => string.Create(CultureInfo.InvariantCulture,
        $"delay {i.Delay.TotalMilliseconds} ms, jitter {i.Jitter.TotalMilliseconds} ms, loss {i.LossPercent} %");
}
