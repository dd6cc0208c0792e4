using System.Globalization;
using System.Net;
using System.Text;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Lab.Shaping;

/// <summary>
/// Shaping plans for a cloudlet lab, the demonstration's way: each host looks far from the users,
/// not from its peers. Traffic from host N (the host itself and every guest on it) toward the edge is
/// delayed as it enters the lab switch on port <c>hN</c> (a bridge port, matched once, in the switch
/// namespace); host-to-host traffic, live migration included, is never delayed.
/// </summary>
public static class LabShapingPlans
{
    /// <summary>The shaping owner of a lab: <c>lab-</c> and a hash of the lab name (12 characters).</summary>
    public static string OwnerFor(string labName)
    {
        ArgumentException.ThrowIfNullOrEmpty(labName);
        var h = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(labName))
        {
            h = unchecked((h ^ b) * 16777619u);
        }

        return "lab-" + h.ToString("x8", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The plan that gives each listed host its one-way delay toward the edge; hosts not listed stay
    /// unshaped. Validated before it is returned.
    /// </summary>
    /// <param name="labName">The lab's name.</param>
    /// <param name="hostCount">How many hosts the lab has.</param>
    /// <param name="edge">The edge's address.</param>
    /// <param name="delays">Host name (<c>cloudlet-N</c>) and delay pairs.</param>
    /// <exception cref="ShapingValidationException">An unknown or repeated host, or an invalid delay.</exception>
    public static ShapingPlan Build(string labName, int hostCount, IPAddress edge, IEnumerable<(string Host, TimeSpan Delay)> delays)
    {
        ArgumentException.ThrowIfNullOrEmpty(labName);
        ArgumentNullException.ThrowIfNull(edge);
        ArgumentNullException.ThrowIfNull(delays);
        var rules = new List<ShapingRule>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (host, delay) in delays)
        {
            if (!LabNaming.TryParseHostName(host, out var index) || index > hostCount)
            {
                throw new ShapingValidationException("Host", $"'{host}' is not a host of lab '{labName}' (cloudlet-1 … cloudlet-{hostCount.ToString(CultureInfo.InvariantCulture)}).");
            }

            if (!seen.Add(host))
            {
                throw new ShapingValidationException("Host", $"'{host}' is listed twice.");
            }

            rules.Add(new ShapingRule(LabNaming.SwitchPortForHost(index), ShapingDirection.Ingress, TrafficMatch.To(edge), Impairment.FromDelay(delay))
            {
                NetworkNamespace = LabNaming.SwitchNamespace(labName),
                BridgePort = true,
                Name = host,
            });
        }

        var plan = new ShapingPlan(OwnerFor(labName), rules);
        ShapingPlanValidator.Validate(plan);
        return plan;
    }
}

/// <summary>Latency shaping of a started <see cref="CloudletLab"/> through an <see cref="INetemShaper"/>.</summary>
/// <example>
/// <code>
/// await using var shaper = await NetemShaperFactory.CreateAsync();
/// await lab.ShapeAsync(shaper, ("cloudlet-1", TimeSpan.FromMilliseconds(300)), ("cloudlet-2", TimeSpan.FromMilliseconds(20)), ("cloudlet-3", TimeSpan.FromMilliseconds(20)));
/// // … the NFQUEUE backend delays only while this process (and the shaper) lives …
/// await lab.ClearShapingAsync(shaper);
/// </code>
/// </example>
public static class CloudletLabShapingExtensions
{
    /// <summary>The plan <see cref="ShapeAsync(CloudletLab, INetemShaper, IEnumerable{ValueTuple{string, TimeSpan}}, CancellationToken)"/> applies.</summary>
    public static ShapingPlan ShapingPlanFor(this CloudletLab lab, IEnumerable<(string Host, TimeSpan Delay)> delays)
    {
        ArgumentNullException.ThrowIfNull(lab);
        return LabShapingPlans.Build(lab.Name, lab.Hosts.Count, lab.Edge.Address, delays);
    }

    /// <summary>
    /// Gives each listed host its delay toward the edge (one way: the edge's RTT to the host grows by
    /// the delay) and removes the lab's shaping from hosts not listed. Validated before anything runs.
    /// </summary>
    public static Task<ShapingState> ShapeAsync(this CloudletLab lab, INetemShaper shaper, IEnumerable<(string Host, TimeSpan Delay)> delays, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(shaper);
        return shaper.ApplyAsync(lab.ShapingPlanFor(delays), cancellationToken);
    }

    /// <inheritdoc cref="ShapeAsync(CloudletLab, INetemShaper, IEnumerable{ValueTuple{string, TimeSpan}}, CancellationToken)"/>
    public static Task<ShapingState> ShapeAsync(this CloudletLab lab, INetemShaper shaper, params (string Host, TimeSpan Delay)[] delays) =>
        lab.ShapeAsync(shaper, (IEnumerable<(string, TimeSpan)>)delays);

    /// <summary>
    /// Applies the delays, then holds them until <paramref name="cancellationToken"/> is cancelled (for
    /// example Ctrl+C in a sample's <c>shape</c> command), and clears them on the way out. With the
    /// NFQUEUE backend the delay exists only while this process runs, so a command-line tool must hold.
    /// </summary>
    /// <param name="lab">The started lab.</param>
    /// <param name="shaper">The shaper.</param>
    /// <param name="delays">Host and delay pairs.</param>
    /// <param name="onApplied">Called once the delays are in place, with the state read back from the kernel.</param>
    /// <param name="cancellationToken">Ends the hold.</param>
    public static async Task HoldShapingAsync(this CloudletLab lab, INetemShaper shaper, IEnumerable<(string Host, TimeSpan Delay)> delays,
        Action<ShapingState>? onApplied = null, CancellationToken cancellationToken = default)
    {
        var state = await lab.ShapeAsync(shaper, delays, cancellationToken).ConfigureAwait(false);
        try
        {
            onApplied?.Invoke(state);
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The hold ended as asked.
        }
        finally
        {
            await lab.ClearShapingAsync(shaper, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Removes the lab's shaping (also leftovers of a crashed run).</summary>
    public static Task ClearShapingAsync(this CloudletLab lab, INetemShaper shaper, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lab);
        ArgumentNullException.ThrowIfNull(shaper);
        return shaper.ClearAsync(LabShapingPlans.OwnerFor(lab.Name), cancellationToken);
    }

    /// <summary>The lab's shaping, read back from the kernel.</summary>
    public static Task<ShapingState> ShowShapingAsync(this CloudletLab lab, INetemShaper shaper, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lab);
        ArgumentNullException.ThrowIfNull(shaper);
        return shaper.ShowAsync(LabShapingPlans.OwnerFor(lab.Name), cancellationToken);
    }
}
