namespace Cloudlets.Core.Probing;

/// <summary>
/// The checks every multi-target probe API makes on its target list before it sends anything; public
/// so that a prober written outside this package checks its targets the same way.
/// </summary>
public static class ProbeTargetList
{
    /// <summary>
    /// Throws unless <paramref name="targets"/> is a non-empty list without nulls (each also passing
    /// <paramref name="check"/>), and returns a private copy, so a caller changing its list later
    /// cannot change a run under way.
    /// </summary>
    public static ProbeTarget[] Copy(IReadOnlyList<ProbeTarget> targets, string parameterName, Action<ProbeTarget>? check = null)
    {
        ArgumentNullException.ThrowIfNull(targets, parameterName);
        if (targets.Count == 0)
        {
            throw new ArgumentException("At least one target is needed.", parameterName);
        }

        var copy = new ProbeTarget[targets.Count];
        for (var i = 0; i < copy.Length; i++)
        {
            copy[i] = targets[i] ?? throw new ArgumentException($"Target {i} is null.", parameterName);
            check?.Invoke(copy[i]);
        }

        return copy;
    }
}
