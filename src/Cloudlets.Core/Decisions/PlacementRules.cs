using System.Collections.ObjectModel;
using System.Globalization;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Decisions;

/// <summary>Which placement rule shaped a decision, or forbids a host for a VM.</summary>
public enum PlacementRuleKind : byte
{
    /// <summary>No rule.</summary>
    None,
    /// <summary>The host is drained (for maintenance): it receives no VM, and its VMs move away.</summary>
    Drained,
    /// <summary>The VM is pinned: it is never moved.</summary>
    Pinned,
    /// <summary>The host is excluded for the VM: the VM never runs there.</summary>
    Excluded,
    /// <summary>The VM must share a host with the other members of its affinity group.</summary>
    Affinity,
    /// <summary>The VM must not share a host with another member of one of its anti-affinity groups.</summary>
    AntiAffinity,
}

/// <summary>
/// A named set of VMs for an affinity rule (they must share a host) or an anti-affinity rule (no
/// two of them on one host). Immutable once built: <see cref="Vms"/> is copied when set.
/// </summary>
public sealed record PlacementGroup : IValidatableOptions
{
    private readonly IReadOnlyList<string> _vms = [];

    /// <summary>The group's name, unique among the groups of its kind; it names the rule in explanations. Required.</summary>
    public string Name { get; init; } = "";

    /// <summary>The VM names of the group: at least 2, none repeated. The default is empty (invalid).</summary>
    public IReadOnlyList<string> Vms
    {
        get => _vms;
        init => _vms = PlacementRules.Freeze(value);
    }

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.NotEmpty(nameof(Name), Name);
        if (Vms.Count < 2)
        {
            errors.Add(nameof(Vms), string.Create(CultureInfo.InvariantCulture, $"has {Vms.Count} VM(s); a group needs at least 2."));
        }

        PlacementRules.CheckNames(errors, nameof(Vms), Vms);
    }
}

/// <summary>
/// What an operator or the configuration asks of placement, beyond latency: drained hosts, pinned
/// VMs, affinity and anti-affinity groups, and hosts excluded per VM. An immutable value (every list is
/// copied when set, so it can be bound from configuration and then shared); change it through
/// <see cref="WithDrained"/>, <see cref="WithPinned"/> or <c>with</c>. Names compare ordinally.
/// </summary>
/// <remarks>
/// Validate with <see cref="Validate(OptionsErrors)"/> (the structure) or
/// <see cref="ValidateAndThrow(IReadOnlyCollection{string}, IReadOnlyCollection{string})"/> (also every
/// name against the hosts and VMs a pipeline knows). Record equality compares the lists by reference.
/// </remarks>
public sealed record PlacementRules : IValidatableOptions
{
    private static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> NoExclusions =
        new ReadOnlyDictionary<string, IReadOnlyList<string>>(new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal));

    private readonly IReadOnlyList<string> _drained = [];
    private readonly IReadOnlyList<string> _pinned = [];
    private readonly ReadOnlyCollection<PlacementGroup> _affinity = ReadOnlyCollection<PlacementGroup>.Empty;
    private readonly ReadOnlyCollection<PlacementGroup> _antiAffinity = ReadOnlyCollection<PlacementGroup>.Empty;
    private readonly IReadOnlyDictionary<string, IReadOnlyList<string>> _excluded = NoExclusions;

    /// <summary>No rules: placement follows latency alone.</summary>
    public static PlacementRules Empty { get; } = new();

    /// <summary>Hosts that receive no VM and whose VMs are moved away (maintenance). The default is none.</summary>
    public IReadOnlyList<string> DrainedHosts
    {
        get => _drained;
        init => _drained = Freeze(value);
    }

    /// <summary>VMs that are never moved, by the policy or by an operator's move. The default is none.</summary>
    public IReadOnlyList<string> PinnedVms
    {
        get => _pinned;
        init => _pinned = Freeze(value);
    }

    /// <summary>Groups of VMs that must share a host; a VM in two groups joins them into one. The default is none.</summary>
    public IReadOnlyList<PlacementGroup> AffinityGroups
    {
        get => _affinity;
        init => _affinity = value is null ? ReadOnlyCollection<PlacementGroup>.Empty : Array.AsReadOnly(value.ToArray());
    }

    /// <summary>Groups of VMs no two of which may share a host. The default is none.</summary>
    public IReadOnlyList<PlacementGroup> AntiAffinityGroups
    {
        get => _antiAffinity;
        init => _antiAffinity = value is null ? ReadOnlyCollection<PlacementGroup>.Empty : Array.AsReadOnly(value.ToArray());
    }

    /// <summary>Per VM name, the hosts it may never run on. The default is none.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> ExcludedHosts
    {
        get => _excluded;
        init
        {
            if (value is null || value.Count == 0)
            {
                _excluded = NoExclusions;
                return;
            }

            var copy = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            foreach (var (vm, hosts) in value)
            {
                copy[vm] = Freeze(hosts);
            }

            _excluded = new ReadOnlyDictionary<string, IReadOnlyList<string>>(copy);
        }
    }

    /// <summary>Whether there is no rule at all.</summary>
    public bool IsEmpty => _drained.Count == 0 && _pinned.Count == 0 && _affinity.Count == 0 && _antiAffinity.Count == 0 && _excluded.Count == 0;

    /// <summary>Whether the host is drained.</summary>
    public bool IsDrained(string host) => Contains(_drained, host);

    /// <summary>Whether the VM is pinned.</summary>
    public bool IsPinned(string vm) => Contains(_pinned, vm);

    /// <summary>Whether the host is excluded for the VM.</summary>
    public bool IsExcluded(string vm, string host) => vm is not null && _excluded.TryGetValue(vm, out var hosts) && Contains(hosts, host);

    /// <summary>These rules with the host drained or not; the same instance when nothing changes.</summary>
    /// <exception cref="ArgumentException"><paramref name="host"/> is null or empty.</exception>
    public PlacementRules WithDrained(string host, bool drained)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        return IsDrained(host) == drained ? this
            : this with { DrainedHosts = drained ? [.. _drained, host] : [.. _drained.Where(h => !string.Equals(h, host, StringComparison.Ordinal))] };
    }

    /// <summary>These rules with the VM pinned or not; the same instance when nothing changes.</summary>
    /// <exception cref="ArgumentException"><paramref name="vm"/> is null or empty.</exception>
    public PlacementRules WithPinned(string vm, bool pinned)
    {
        ArgumentException.ThrowIfNullOrEmpty(vm);
        return IsPinned(vm) == pinned ? this
            : this with { PinnedVms = pinned ? [.. _pinned, vm] : [.. _pinned.Where(v => !string.Equals(v, vm, StringComparison.Ordinal))] };
    }

    /// <summary>
    /// Checks the structure, every error with its path: empty or repeated names, groups of fewer than
    /// two VMs, repeated group names, and VMs that affinity groups put together while an anti-affinity
    /// group keeps them apart (affinity is transitive: a VM in two groups joins them).
    /// </summary>
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        CheckNames(errors, nameof(DrainedHosts), _drained);
        CheckNames(errors, nameof(PinnedVms), _pinned);
        CheckGroups(errors, nameof(AffinityGroups), _affinity, "affinity");
        CheckGroups(errors, nameof(AntiAffinityGroups), _antiAffinity, "anti-affinity");
        foreach (var (vm, hosts) in _excluded)
        {
            if (string.IsNullOrWhiteSpace(vm))
            {
                errors.Add(nameof(ExcludedHosts), "has an entry whose VM name is empty.");
                continue;
            }

            CheckNames(errors, $"{nameof(ExcludedHosts)}[{vm}]", hosts);
        }

        var components = AffinityComponents(_affinity);
        for (var g = 0; g < _antiAffinity.Count; g++)
        {
            var vms = _antiAffinity[g]?.Vms ?? [];
            for (var i = 0; i < vms.Count; i++)
            {
                for (var j = i + 1; j < vms.Count; j++)
                {
                    if (vms[i] is null || vms[j] is null || string.Equals(vms[i], vms[j], StringComparison.Ordinal)
                        || !components.TryGetValue(vms[i], out var a) || !components.TryGetValue(vms[j], out var b) || a != b)
                    {
                        continue;
                    }

                    var together = string.Join(", ", _affinity.Where(x => x?.Vms is { } m && (m.Contains(vms[i]) || m.Contains(vms[j]))).Select(x => $"'{x.Name}'"));
                    errors.Add(
                        string.Create(CultureInfo.InvariantCulture, $"{nameof(AntiAffinityGroups)}[{g}].{nameof(PlacementGroup.Vms)}"),
                        $"'{vms[i]}' and '{vms[j]}' must share a host (affinity groups {together}) and must not (anti-affinity group '{_antiAffinity[g].Name}').");
                }
            }
        }
    }

    /// <summary>
    /// <see cref="Validate(OptionsErrors)"/>, and every name against the hosts and VMs a pipeline knows:
    /// an unknown host or VM is an error, and so is a VM whose every host is excluded.
    /// </summary>
    public void Validate(OptionsErrors errors, IReadOnlyCollection<string> hosts, IReadOnlyCollection<string> vms)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(hosts);
        ArgumentNullException.ThrowIfNull(vms);
        Validate(errors);
        var knownHosts = new HashSet<string>(hosts, StringComparer.Ordinal);
        var knownVms = new HashSet<string>(vms, StringComparer.Ordinal);
        var hostList = string.Join(", ", hosts);
        var vmList = string.Join(", ", vms);
        Known(errors, nameof(DrainedHosts), _drained, knownHosts, "host", hostList);
        Known(errors, nameof(PinnedVms), _pinned, knownVms, "VM", vmList);
        for (var g = 0; g < _affinity.Count; g++)
        {
            Known(errors, string.Create(CultureInfo.InvariantCulture, $"{nameof(AffinityGroups)}[{g}].{nameof(PlacementGroup.Vms)}"), _affinity[g]?.Vms ?? [], knownVms, "VM", vmList);
        }

        for (var g = 0; g < _antiAffinity.Count; g++)
        {
            Known(errors, string.Create(CultureInfo.InvariantCulture, $"{nameof(AntiAffinityGroups)}[{g}].{nameof(PlacementGroup.Vms)}"), _antiAffinity[g]?.Vms ?? [], knownVms, "VM", vmList);
        }

        foreach (var (vm, excluded) in _excluded)
        {
            if (string.IsNullOrWhiteSpace(vm))
            {
                continue;
            }

            var path = $"{nameof(ExcludedHosts)}[{vm}]";
            if (!knownVms.Contains(vm))
            {
                errors.Add(path, $"VM '{vm}' is not one of the pipeline's VMs ({vmList}).");
            }

            Known(errors, path, excluded, knownHosts, "host", hostList);
            if (knownHosts.Count > 0 && knownHosts.All(h => excluded.Contains(h, StringComparer.Ordinal)))
            {
                errors.Add(path, "excludes every host: the VM could run nowhere.");
            }
        }
    }

    /// <summary>Validates against the pipeline's hosts and VMs and throws listing every error.</summary>
    /// <exception cref="OptionsValidationException">At least one error (<see cref="OptionsValidationException.Errors"/> lists them all).</exception>
    public void ValidateAndThrow(IReadOnlyCollection<string> hosts, IReadOnlyCollection<string> vms)
    {
        var errors = new OptionsErrors();
        Validate(errors, hosts, vms);
        errors.ThrowIfAny(nameof(PlacementRules));
    }

    /// <summary>
    /// The affinity components: each VM of an affinity group mapped to the smallest index of the
    /// groups it is joined with (directly or through other VMs).
    /// </summary>
    internal static Dictionary<string, int> AffinityComponents(IReadOnlyList<PlacementGroup> groups)
    {
        var parent = new int[groups.Count];
        for (var i = 0; i < parent.Length; i++)
        {
            parent[i] = i;
        }

        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var g = 0; g < groups.Count; g++)
        {
            foreach (var vm in groups[g]?.Vms ?? [])
            {
                if (vm is null)
                {
                    continue;
                }

                if (first.TryGetValue(vm, out var other))
                {
                    var a = Find(parent, g);
                    var b = Find(parent, other);
                    parent[Math.Max(a, b)] = Math.Min(a, b);
                }
                else
                {
                    first[vm] = g;
                }
            }
        }

        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (vm, g) in first)
        {
            result[vm] = Find(parent, g);
        }

        return result;

        static int Find(int[] parent, int i)
        {
            while (parent[i] != i)
            {
                i = parent[i] = parent[parent[i]];
            }

            return i;
        }
    }

    internal static IReadOnlyList<string> Freeze(IReadOnlyList<string>? value) =>
        value is null || value.Count == 0 ? [] : Array.AsReadOnly(value.ToArray());

    internal static void CheckNames(OptionsErrors errors, string path, IReadOnlyList<string> names)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < names.Count; i++)
        {
            var item = string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]");
            if (string.IsNullOrWhiteSpace(names[i]))
            {
                errors.Add(item, "must not be empty.");
            }
            else if (!seen.Add(names[i]))
            {
                errors.Add(item, $"'{names[i]}' appears twice.");
            }
        }
    }

    private static void CheckGroups(OptionsErrors errors, string path, ReadOnlyCollection<PlacementGroup> groups, string kind)
    {
        errors.Each(path, groups);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var g = 0; g < groups.Count; g++)
        {
            if (groups[g] is { Name: { Length: > 0 } name } && !names.Add(name))
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{path}[{g}].{nameof(PlacementGroup.Name)}"), $"'{name}' is used by another {kind} group.");
            }
        }
    }

    private static void Known(OptionsErrors errors, string path, IReadOnlyList<string> names, HashSet<string> known, string what, string list)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (!string.IsNullOrWhiteSpace(names[i]) && !known.Contains(names[i]))
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]"), $"{what} '{names[i]}' is not one of the pipeline's {what}s ({list}).");
            }
        }
    }

    private static bool Contains(IReadOnlyList<string> names, string name)
    {
        if (name is null)
        {
            return false;
        }

        foreach (var n in names)
        {
            if (string.Equals(n, name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
