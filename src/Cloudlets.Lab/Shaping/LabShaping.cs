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

    /// <summary>
    /// The plan of a latency matrix: each listed (site, host) pair gets its one-way delay on the way
    /// from the host (and its guests) to that site, as the traffic enters the lab switch on port
    /// <c>hN</c> toward the site's address. One rule per pair with a delay; a pair with zero delay and
    /// pairs not listed stay unshaped, and host-to-host traffic matches no rule. Validated before it is returned.
    /// </summary>
    /// <param name="labName">The lab's name.</param>
    /// <param name="hostCount">How many hosts the lab has.</param>
    /// <param name="sites">The lab's sites (see <see cref="CloudletLab.Sites"/>).</param>
    /// <param name="delays">The (site, host, delay) entries.</param>
    /// <exception cref="ShapingValidationException">An unknown site or host, a repeated pair, or a delay below 0 or above <see cref="Impairment.MaxDelay"/>.</exception>
    public static ShapingPlan BuildMatrix(string labName, int hostCount, IReadOnlyList<LabSite> sites, IEnumerable<LabSiteDelay> delays)
    {
        ArgumentException.ThrowIfNullOrEmpty(labName);
        ArgumentNullException.ThrowIfNull(sites);
        ArgumentNullException.ThrowIfNull(delays);
        var rules = new List<ShapingRule>();
        var seen = new HashSet<(string, string)>();
        foreach (var entry in delays)
        {
            ArgumentNullException.ThrowIfNull(entry);
            var site = sites.FirstOrDefault(s => s.Name == entry.Site)
                ?? throw new ShapingValidationException("Site", $"'{entry.Site}' is not a site of lab '{labName}' ({string.Join(", ", sites.Select(s => s.Name))}).");
            if (!LabNaming.TryParseHostName(entry.Host, out var index) || index > hostCount)
            {
                throw new ShapingValidationException("Host", $"'{entry.Host}' is not a host of lab '{labName}' (cloudlet-1 … cloudlet-{hostCount.ToString(CultureInfo.InvariantCulture)}).");
            }

            if (!seen.Add((site.Name, entry.Host)))
            {
                throw new ShapingValidationException("Host", $"the pair ({site.Name}, {entry.Host}) is listed twice.");
            }

            if (entry.Delay < TimeSpan.Zero || entry.Delay > Impairment.MaxDelay)
            {
                throw new ShapingValidationException("Delay", string.Create(CultureInfo.InvariantCulture,
                    $"the delay of ({site.Name}, {entry.Host}), {entry.Delay.TotalMilliseconds} ms, is not between 0 and {Impairment.MaxDelay.TotalMilliseconds} ms."));
            }

            if (entry.Delay > TimeSpan.Zero)
            {
                rules.Add(new ShapingRule(LabNaming.SwitchPortForHost(index), ShapingDirection.Ingress, TrafficMatch.To(site.Address), Impairment.FromDelay(entry.Delay))
                {
                    NetworkNamespace = LabNaming.SwitchNamespace(labName),
                    BridgePort = true,
                    Name = site.Name + "_" + entry.Host,
                });
            }
        }

        var plan = new ShapingPlan(OwnerFor(labName), rules);
        ShapingPlanValidator.Validate(plan);
        return plan;
    }
}

/// <summary>One entry of a latency matrix: the one-way delay from a host (and its guests) to a site.</summary>
/// <param name="Site">The site (<c>site-S</c>).</param>
/// <param name="Host">The host (<c>cloudlet-N</c>).</param>
/// <param name="Delay">The one-way delay (the site's RTT to the host grows by it); zero leaves the pair unshaped.</param>
public sealed record LabSiteDelay(string Site, string Host, TimeSpan Delay);

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

    /// <summary>The plan <see cref="ShapeMatrixAsync"/> applies: one rule per (site, host) pair with a delay (see <see cref="LabShapingPlans.BuildMatrix"/>).</summary>
    public static ShapingPlan ShapingPlanFor(this CloudletLab lab, IEnumerable<LabSiteDelay> matrix)
    {
        ArgumentNullException.ThrowIfNull(lab);
        return LabShapingPlans.BuildMatrix(lab.Name, lab.Hosts.Count, lab.Sites, matrix);
    }

    /// <summary>
    /// Gives each listed (site, host) pair its delay and removes the lab's other shaping (per-host delays
    /// included: a lab has one plan). Validated before anything runs.
    /// </summary>
    public static Task<ShapingState> ShapeMatrixAsync(this CloudletLab lab, INetemShaper shaper, IEnumerable<LabSiteDelay> matrix, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(shaper);
        return shaper.ApplyAsync(lab.ShapingPlanFor(matrix), cancellationToken);
    }

    /// <summary>
    /// As <see cref="HoldShapingAsync"/>, for a latency matrix: applies it, holds it until
    /// <paramref name="cancellationToken"/> is cancelled, and clears it on the way out.
    /// </summary>
    public static Task HoldMatrixShapingAsync(this CloudletLab lab, INetemShaper shaper, IEnumerable<LabSiteDelay> matrix,
        Action<ShapingState>? onApplied = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(shaper);
        return HoldAsync(lab, shaper, lab.ShapingPlanFor(matrix), onApplied, cancellationToken);
    }

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
    public static Task HoldShapingAsync(this CloudletLab lab, INetemShaper shaper, IEnumerable<(string Host, TimeSpan Delay)> delays,
        Action<ShapingState>? onApplied = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(shaper);
        return HoldAsync(lab, shaper, lab.ShapingPlanFor(delays), onApplied, cancellationToken);
    }

    private static async Task HoldAsync(CloudletLab lab, INetemShaper shaper, ShapingPlan plan, Action<ShapingState>? onApplied, CancellationToken cancellationToken)
    {
        var state = await shaper.ApplyAsync(plan, cancellationToken).ConfigureAwait(false);
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
