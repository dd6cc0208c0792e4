using System.Text.Json;
using Cloudlets.Core.Commands;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem.Tc;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Netem;

/// <summary>
/// Latency shaping with the kernel's netem qdisc, run through <c>tc</c> on this machine or on a remote
/// host (<see cref="ICommandRunner"/>, for example <see cref="Ssh.SshCommandRunner"/>). The whole
/// interface (<c>root netem</c>, as in the demonstration) or per destination (HTB + u32 + netem leaves);
/// ingress through an IFB device. Only qdiscs under the owner's reserved handle are touched; a foreign
/// root qdisc is never overwritten. On a kernel without netem, <see cref="NetemUnavailableException"/>
/// is thrown and whatever this call built is removed again.
/// </summary>
public sealed class TcNetemShaper : INetemShaper
{
    /// <summary>The backend's name.</summary>
    public const string BackendName = "tc-netem";

    /// <summary>What this backend supports (u32 matches are IPv4 only).</summary>
    public const ShapingFeatures SupportedFeatures =
        ShapingFeatures.Delay | ShapingFeatures.Jitter | ShapingFeatures.Loss | ShapingFeatures.Duplicate | ShapingFeatures.Corrupt |
        ShapingFeatures.Reorder | ShapingFeatures.Rate | ShapingFeatures.PerDestination | ShapingFeatures.Ingress |
        ShapingFeatures.NormalDistribution | ShapingFeatures.ParetoDistribution | ShapingFeatures.BridgePorts;

    private readonly ICommandRunner runner;
    private readonly ILogger logger;
    private readonly SemaphoreSlim gate = new(1, 1);

    /// <summary>Creates a shaper.</summary>
    /// <param name="runner">Where tc runs; the default is <see cref="LocalCommandRunner"/>.</param>
    /// <param name="logger">A logger.</param>
    /// <param name="reason">Why this backend was chosen (shown in <see cref="Capabilities"/>).</param>
    public TcNetemShaper(ICommandRunner? runner = null, ILogger<TcNetemShaper>? logger = null, string? reason = null)
    {
        this.runner = runner ?? LocalCommandRunner.Instance;
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        Capabilities = new ShaperCapabilities(BackendName, SupportedFeatures, reason ?? "tc netem");
    }

    /// <inheritdoc />
    public ShaperCapabilities Capabilities { get; }

    /// <inheritdoc />
    public IReadOnlyList<CommandLine> Plan(ShapingPlan plan, ShapingState current)
    {
        Check(plan);
        ArgumentNullException.ThrowIfNull(current);
        return TcPlanner.Plan(plan, current);
    }

    /// <inheritdoc />
    public async Task<ShapingState> ApplyAsync(ShapingPlan plan, CancellationToken cancellationToken = default)
    {
        Check(plan);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = await ReadAsync(plan.Owner, cancellationToken).ConfigureAwait(false);
            var commands = TcPlanner.Plan(plan, current);
            NetemLog.Applying(logger, plan.Owner, BackendName, commands.Count);
            foreach (var command in commands)
            {
                NetemLog.Running(logger, command);
                var result = await runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
                if (result.Succeeded)
                {
                    continue;
                }

                var failure = Translate(result);
                NetemLog.RollingBack(logger, plan.Owner, failure);
                await ClearCoreAsync(plan.Owner, CancellationToken.None).ConfigureAwait(false);
                throw failure;
            }

            return await ReadAsync(plan.Owner, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task ClearAsync(string owner, CancellationToken cancellationToken = default)
    {
        ShapingPlanValidator.ValidateOwner(owner);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ClearCoreAsync(owner, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    public Task<ShapingState> ShowAsync(string owner, CancellationToken cancellationToken = default)
    {
        ShapingPlanValidator.ValidateOwner(owner);
        return ReadAsync(owner, cancellationToken);
    }

    /// <summary>Nothing to release: tc state lives in the kernel until cleared.</summary>
    public ValueTask DisposeAsync()
    {
        gate.Dispose();
        return ValueTask.CompletedTask;
    }

    private static void Check(ShapingPlan plan)
    {
        ShapingPlanValidator.Validate(plan);
        var required = ShapingFeatures.None;
        foreach (var rule in plan.Rules)
        {
            required |= rule.Impairment.RequiredFeatures;
            if (!rule.Match.IsAll) { required |= ShapingFeatures.PerDestination; }
            if (rule.Direction == ShapingDirection.Ingress) { required |= ShapingFeatures.Ingress; }
        }

        if (TcPlanner.UsesIpv6(plan))
        {
            required |= ShapingFeatures.Ipv6;
        }

        var missing = required & ~SupportedFeatures;
        if (missing != ShapingFeatures.None)
        {
            throw new UnsupportedImpairmentException(BackendName, missing);
        }

        if (plan.Rules.GroupBy(r => (r.NetworkNamespace, r.Interface, r.Direction)).Any(g => g.Count() >= OwnerNames.HandlesPerOwner))
        {
            throw new ShapingValidationException("Rules", $"at most {OwnerNames.HandlesPerOwner - 1} rules per interface and direction.");
        }
    }

    private static ShapingException Translate(CommandResult result)
    {
        var stderr = result.StandardError;
        if (result.Command.Arguments.Contains("netem") &&
            (stderr.Contains("Specified qdisc kind is unknown", StringComparison.Ordinal) || stderr.Contains("Specified qdisc not found", StringComparison.Ordinal)))
        {
            return new NetemUnavailableException(
                $"The kernel has no netem qdisc ({NetemUnavailableException.KernelOption} is not set): {stderr.Trim()}. Use the NFQUEUE backend (NetemShaperFactory picks it).",
                new CommandException(result));
        }

        if (stderr.Contains("Unknown device type", StringComparison.Ordinal) && result.Command.Arguments.Contains("ifb"))
        {
            return new ShapingException("The kernel has no IFB devices (CONFIG_IFB is not set); ingress shaping with tc needs them.", new CommandException(result));
        }

        return new ShapingException($"tc failed: {result.Command}: {stderr.Trim()}", new CommandException(result));
    }

    private async Task ClearCoreAsync(string owner, CancellationToken cancellationToken)
    {
        var current = await ReadAsync(owner, cancellationToken).ConfigureAwait(false);
        var commands = TcPlanner.Plan(new ShapingPlan(owner, []), current);
        foreach (var command in commands)
        {
            NetemLog.Running(logger, command);
            // "Not found" is success: something else may have removed it already.
            _ = await runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
        }

        NetemLog.Cleared(logger, owner, BackendName, commands.Count);
    }

    private async Task<ShapingState> ReadAsync(string owner, CancellationToken cancellationToken)
    {
        var namespaces = new List<string?> { null };
        var list = await runner.RunAsync(CommandLine.Of("ip", "-j", "netns", "list"), cancellationToken).ConfigureAwait(false);
        if (list.Succeeded && !string.IsNullOrWhiteSpace(list.StandardOutput))
        {
            using var doc = JsonDocument.Parse(list.StandardOutput);
            namespaces.AddRange(doc.RootElement.EnumerateArray().Select(e => e.TryGetProperty("name", out var n) ? n.GetString() : null).OfType<string>());
        }

        var objects = new List<KernelObject>();
        var h = OwnerNames.HandleBase(owner);
        foreach (var ns in namespaces)
        {
            var qdiscs = await runner.RunAsync(CommandLine.Of("tc", "-j", "qdisc", "show").InNamespace(ns), cancellationToken).ConfigureAwait(false);
            if (!qdiscs.Succeeded)
            {
                if (ns is null)
                {
                    throw new ShapingException($"Cannot read qdiscs: {qdiscs.StandardError.Trim()}", new CommandException(qdiscs));
                }

                continue;   // a namespace that vanished meanwhile
            }

            var links = await runner.RunAsync(CommandLine.Of("ip", "-j", "link", "show", "type", "ifb").InNamespace(ns), cancellationToken).ConfigureAwait(false);
            var ifbs = new HashSet<string>(StringComparer.Ordinal);
            if (links.Succeeded && !string.IsNullOrWhiteSpace(links.StandardOutput))
            {
                using var doc = JsonDocument.Parse(links.StandardOutput);
                foreach (var l in doc.RootElement.EnumerateArray())
                {
                    if (l.TryGetProperty("ifname", out var n) && n.GetString() is { } name)
                    {
                        ifbs.Add(name);
                    }
                }
            }

            var found = TcPlanner.ParseQdiscs(owner, ns, qdiscs.StandardOutput, ifbs);
            var ourIfbs = found.Where(o => o.Kind == TcPlanner.IngressKind).Select(o => OwnerNames.IfbDevice(owner, o.Location)).ToHashSet(StringComparer.Ordinal);
            var devices = JsonDevices(qdiscs.StandardOutput);
            foreach (var dev in devices)
            {
                var ifb = OwnerNames.IfbDevice(owner, dev);
                if (ifbs.Contains(ifb))
                {
                    ourIfbs.Add(ifb);
                }
            }

            foreach (var ifb in ourIfbs.Where(ifbs.Contains).Order(StringComparer.Ordinal))
            {
                var source = devices.FirstOrDefault(d => OwnerNames.IfbDevice(owner, d) == ifb) ?? "?";
                objects.Add(new KernelObject(ns, TcPlanner.LinkKind, ifb, "ifb " + source));
            }

            objects.AddRange(found);
            foreach (var dev in found.Where(o => o.Kind == TcPlanner.QdiscKind && o.Text.StartsWith($"root {OwnerNames.Hex(h)}: htb", StringComparison.Ordinal)).Select(o => o.Location).Distinct())
            {
                var filters = await runner.RunAsync(CommandLine.Of("tc", "-j", "filter", "show", "dev", dev, "parent", OwnerNames.Hex(h) + ":").InNamespace(ns), cancellationToken).ConfigureAwait(false);
                if (filters.Succeeded)
                {
                    objects.AddRange(TcPlanner.ParseFilters(ns, dev, filters.StandardOutput));
                }
            }
        }

        var owned = objects.Where(o => o.Kind != TcPlanner.ForeignKind).ToList();
        var foreign = objects.Where(o => o.Kind == TcPlanner.ForeignKind).ToList();
        var rules = owned.Where(o => o.Kind == TcPlanner.QdiscKind && o.Text.Contains("netem", StringComparison.Ordinal))
            .Select(o => new AppliedRule(o.NetworkNamespace, o.Location, ShapingDirection.Egress, o.Text.Split(' ')[o.Text.StartsWith("root", StringComparison.Ordinal) ? 1 : 2], ImpairmentOf(o.Text), "tc:" + o.Location, null))
            .ToList();

        return new ShapingState(owner, BackendName, rules, owned, foreign);
    }

    private static List<string> JsonDevices(string qdiscJson)
    {
        var result = new List<string>();
        if (string.IsNullOrWhiteSpace(qdiscJson))
        {
            return result;
        }

        using var doc = JsonDocument.Parse(qdiscJson);
        foreach (var q in doc.RootElement.EnumerateArray())
        {
            if (q.TryGetProperty("dev", out var d) && d.GetString() is { } name && !result.Contains(name))
            {
                result.Add(name);
            }
        }

        return result;
    }

    private static Impairment ImpairmentOf(string signature)
    {
        long Us(string key)
        {
            var i = signature.IndexOf(key + "=", StringComparison.Ordinal);
            if (i < 0) { return 0; }
            var s = signature[(i + key.Length + 1)..].Split(' ')[0].Replace("us", "", StringComparison.Ordinal);
            return long.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;
        }

        double Pct(string key)
        {
            var i = signature.IndexOf(key + "=", StringComparison.Ordinal);
            if (i < 0) { return 0; }
            var s = signature[(i + key.Length + 1)..].Split(' ')[0];
            return double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;
        }

        return new Impairment
        {
            Delay = TimeSpan.FromMicroseconds(Us("delay")),
            Jitter = TimeSpan.FromMicroseconds(Us("jitter")),
            LossPercent = Pct("loss"),
            DuplicatePercent = Pct("duplicate"),
            CorruptPercent = Pct("corrupt"),
            ReorderPercent = Pct("reorder"),
            Limit = (int)Math.Max(1, Us("limit")),
        };
    }
}
