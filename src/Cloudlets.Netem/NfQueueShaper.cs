using System.Globalization;
using System.Runtime.Versioning;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Options;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem.Iptables;
using Cloudlets.Netem.NfQueue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Netns = Cloudlets.Probing.Linux.NetworkNamespace;

namespace Cloudlets.Netem;

/// <summary>Options of <see cref="NfQueueShaper"/>. Validated once, when the shaper is built.</summary>
public sealed class NfQueueShaperOptions : IValidatableOptions
{
    /// <summary>
    /// The packet rate a rule is expected to carry; a queue holds at least rate × (delay + jitter) × 2
    /// packets (and at least the rule's <see cref="Impairment.Limit"/>). The default is 2000 packets per second.
    /// </summary>
    public int ExpectedPacketsPerSecond { get; set; } = 2000;

    /// <summary>
    /// Whether a full queue lets packets pass undelayed (true, the default) rather than dropping them.
    /// Either way a dead delayer never blackholes traffic: every rule carries <c>--queue-bypass</c>.
    /// </summary>
    public bool FailOpen { get; set; } = true;

    /// <summary>The netlink receive buffer of each delayer. The default is 8 MiB.</summary>
    public int ReceiveBufferBytes { get; set; } = 8 << 20;

    /// <summary>
    /// The SCHED_FIFO priority (1–99) of each delayer thread, so packets leave on time on a busy machine;
    /// 0 keeps normal scheduling. The thread sleeps in <c>ppoll</c> between packets, it never spins. If the
    /// kernel refuses (no CAP_SYS_NICE), the thread runs normally. The default is 10.
    /// </summary>
    public int RealtimePriority { get; set; } = 10;

    /// <summary>The clock of the delay line. The default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Where the owner locks live (see <see cref="ShapingOwnerInUseException"/>): one file per owner, locked
    /// while a shaper holds the owner. An absolute path. The default is <c>/run/cloudlets-netem/owners</c>.
    /// </summary>
    public string OwnerLockDirectory { get; set; } = TcNetemShaperOptions.DefaultOwnerLockDirectory;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.InRange(nameof(ExpectedPacketsPerSecond), ExpectedPacketsPerSecond, 1, 10_000_000);
        errors.InRange(nameof(ReceiveBufferBytes), ReceiveBufferBytes, 65536, 1 << 30);
        errors.InRange(nameof(RealtimePriority), RealtimePriority, 0, 99);
        errors.Require(TimeProvider is not null, nameof(TimeProvider), "is required.");
        TcNetemShaperOptions.AbsoluteDirectory(errors, nameof(OwnerLockDirectory), OwnerLockDirectory);
    }
}

/// <summary>
/// Latency shaping for kernels without netem: iptables rules in chains the owner owns
/// (<c>NETEM_&lt;owner&gt;_OUT/_IN</c> in the mangle table, tagged with <c>-m comment</c>) send matched
/// packets to NFQUEUE with <c>--queue-bypass</c>, and an in-process delay line (raw netlink, one thread
/// per network namespace) accepts each packet when it is due. If this process dies, the queues lose
/// their listener and the kernel lets packets pass undelayed; the next apply or clear of the same owner
/// removes the leftover rules. Must run on the machine being shaped, as root.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class NfQueueShaper : INetemShaper
{
    /// <summary>The backend's name.</summary>
    public const string BackendName = "nfqueue";

    /// <summary>What this backend supports.</summary>
    public const ShapingFeatures SupportedFeatures =
        ShapingFeatures.Delay | ShapingFeatures.Jitter | ShapingFeatures.Loss | ShapingFeatures.PerDestination |
        ShapingFeatures.Ingress | ShapingFeatures.Ipv6 | ShapingFeatures.NormalDistribution | ShapingFeatures.BridgePorts;

    private readonly NfQueueShaperOptions options;
    private readonly ICommandRunner runner;
    private readonly ILogger logger;
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly Dictionary<string, NfQueueDelayer> delayers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<(string? Ns, ushort Queue)>> queuesByOwner = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OwnerLock> locks = new(StringComparer.Ordinal);
    private bool disposed;

    /// <summary>Creates a shaper.</summary>
    /// <param name="options">Options; <see langword="null"/> for the defaults.</param>
    /// <param name="runner">Runs iptables on this machine; the default is <see cref="LocalCommandRunner"/>.</param>
    /// <param name="logger">A logger.</param>
    /// <param name="reason">Why this backend was chosen (shown in <see cref="Capabilities"/>).</param>
    /// <exception cref="OptionsValidationException">An option is invalid.</exception>
    public NfQueueShaper(NfQueueShaperOptions? options = null, ICommandRunner? runner = null, ILogger<NfQueueShaper>? logger = null, string? reason = null)
    {
        this.options = options ?? new NfQueueShaperOptions();
        OptionsErrors.ValidateAndThrow(this.options);
        this.runner = runner ?? LocalCommandRunner.Instance;
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        Capabilities = new ShaperCapabilities(BackendName, SupportedFeatures, reason ?? "userspace NFQUEUE delay line");
    }

    /// <inheritdoc />
    public ShaperCapabilities Capabilities { get; }

    /// <summary>Counters of every running delayer (one per network namespace).</summary>
    public IReadOnlyList<DelayerStatistics> GetStatistics()
    {
        lock (delayers)
        {
            return [.. delayers.Values.Select(d => d.Statistics)];
        }
    }

    /// <summary>Forgets the lateness recorded so far by every delayer.</summary>
    public void ResetStatistics()
    {
        lock (delayers)
        {
            foreach (var d in delayers.Values)
            {
                d.Lateness.Reset();
            }
        }
    }

    /// <inheritdoc />
    public ShapingChanges Plan(ShapingPlan plan, ShapingState current) =>
        ShapingChanges.Between(plan, current, backendHasWork: PlanCommands(plan, current).Count > 0);

    /// <summary>
    /// The commands <see cref="ApplyAsync"/> would run to get from <paramref name="current"/> to
    /// <paramref name="plan"/>, in order. Pure: runs nothing. Empty when the kernel already matches.
    /// </summary>
    /// <exception cref="ShapingValidationException">The plan is invalid.</exception>
    public static IReadOnlyList<CommandLine> PlanCommands(ShapingPlan plan, ShapingState current)
    {
        Check(plan);
        ArgumentNullException.ThrowIfNull(current);
        return IptablesPlanner.Plan(plan, current);
    }

    /// <inheritdoc />
    public async Task<ShapingState> ApplyAsync(ShapingPlan plan, CancellationToken cancellationToken = default)
    {
        Check(plan);
        foreach (var ns in plan.Rules.Select(r => r.NetworkNamespace).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            if (!Netns.Exists(ns))
            {
                throw new ShapingValidationException("NetworkNamespace", $"the network namespace '{ns}' does not exist.");
            }
        }

        ObjectDisposedException.ThrowIf(disposed, this);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Hold(plan.Owner);
            var interesting = plan.Rules.Select(r => r.NetworkNamespace).ToHashSet();
            var current = await ReadAsync(plan.Owner, interesting, cancellationToken).ConfigureAwait(false);
            var commands = IptablesPlanner.Plan(plan, current);
            NetemLog.Applying(logger, plan.Owner, BackendName, commands.Count);
            try
            {
                // Listener first, rules second: a queued packet always finds someone to release it.
                var wanted = new HashSet<(string? Ns, ushort Queue)>();
                foreach (var q in IptablesPlanner.Queues(plan, current))
                {
                    var delayer = GetOrStartDelayer(q.NetworkNamespace);
                    var maxLength = (uint)Math.Max(q.Impairment.Limit,
                        Math.Ceiling(options.ExpectedPacketsPerSecond * (q.Impairment.Delay + q.Impairment.Jitter).TotalSeconds * 2) + 64);
                    await delayer.BindAsync((ushort)q.Queue, q.Impairment, maxLength, options.FailOpen, cancellationToken).ConfigureAwait(false);
                    wanted.Add((q.NetworkNamespace, (ushort)q.Queue));
                }

                foreach (var command in commands)
                {
                    NetemLog.Running(logger, command);
                    await runner.RunCheckedAsync(command, cancellationToken).ConfigureAwait(false);
                }

                var old = queuesByOwner.GetValueOrDefault(plan.Owner) ?? [];
                foreach (var (ns, queue) in old.Except(wanted))
                {
                    if (delayers.TryGetValue(Key(ns), out var d))
                    {
                        await d.UnbindAsync(queue, cancellationToken).ConfigureAwait(false);
                    }
                }

                queuesByOwner[plan.Owner] = wanted;
                await StopIdleDelayersAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                NetemLog.RollingBack(logger, plan.Owner, ex);
                await ClearCoreAsync(plan.Owner, CancellationToken.None).ConfigureAwait(false);
                Release(plan.Owner);
                throw;
            }

            if (plan.Rules.Count == 0)
            {
                Release(plan.Owner);
            }

            return await ReadAsync(plan.Owner, null, cancellationToken).ConfigureAwait(false);
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
        ObjectDisposedException.ThrowIf(disposed, this);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Hold(owner);
            await ClearCoreAsync(owner, cancellationToken).ConfigureAwait(false);
            Release(owner);
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
        return ReadAsync(owner, null, cancellationToken);
    }

    /// <summary>Clears every owner this instance applied, stops the delayers and closes their sockets.</summary>
    public async ValueTask DisposeAsync()
    {
        if (disposed)
        {
            return;
        }

        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var owner in queuesByOwner.Keys.ToList())
            {
                try
                {
                    await ClearCoreAsync(owner, CancellationToken.None).ConfigureAwait(false);
                }
                catch (ShapingException ex)
                {
                    NetemLog.RollingBack(logger, owner, ex);
                }
            }

            List<NfQueueDelayer> all;
            lock (delayers)
            {
                all = [.. delayers.Values];
                delayers.Clear();
            }

            foreach (var d in all)
            {
                await d.DisposeAsync().ConfigureAwait(false);
            }

            foreach (var owner in locks.Keys.ToList())
            {
                Release(owner);
            }

            disposed = true;
        }
        finally
        {
            gate.Release();
        }

        gate.Dispose();
    }

    private void Hold(string owner)
    {
        if (!locks.ContainsKey(owner))
        {
            locks[owner] = OwnerLock.Acquire(options.OwnerLockDirectory, "local", owner);
        }
    }

    private void Release(string owner)
    {
        if (locks.Remove(owner, out var held))
        {
            held.Dispose();
        }
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
            if (rule.BridgePort) { required |= ShapingFeatures.BridgePorts; }
            if ((rule.Match.Destination ?? rule.Match.Source)?.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6) { required |= ShapingFeatures.Ipv6; }
        }

        var missing = required & ~SupportedFeatures;
        if (missing != ShapingFeatures.None)
        {
            throw new UnsupportedImpairmentException(BackendName, missing);
        }
    }

    private async Task ClearCoreAsync(string owner, CancellationToken cancellationToken)
    {
        var current = await ReadAsync(owner, null, cancellationToken).ConfigureAwait(false);
        var commands = IptablesPlanner.ClearPlan(owner, current);
        var failures = new List<string>();
        foreach (var command in commands)
        {
            NetemLog.Running(logger, command);
            var result = await runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                failures.Add($"{command}: {result.StandardError.Trim()}");
            }
        }

        if (queuesByOwner.Remove(owner, out var queues))
        {
            foreach (var (ns, queue) in queues)
            {
                if (delayers.TryGetValue(Key(ns), out var d))
                {
                    await d.UnbindAsync(queue, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        await StopIdleDelayersAsync().ConfigureAwait(false);
        NetemLog.Cleared(logger, owner, BackendName, commands.Count);
        if (failures.Count > 0)
        {
            // Something may have raced us; only fail if the owner's objects are really still there.
            var after = await ReadAsync(owner, null, cancellationToken).ConfigureAwait(false);
            if (!after.IsEmpty)
            {
                throw new ShapingException($"Clearing '{owner}' left objects behind:{Environment.NewLine}{string.Join(Environment.NewLine, failures)}");
            }
        }
    }

    private NfQueueDelayer GetOrStartDelayer(string? ns)
    {
        lock (delayers)
        {
            if (!delayers.TryGetValue(Key(ns), out var d))
            {
                d = NfQueueDelayer.Start(ns, options.TimeProvider, logger, options.ReceiveBufferBytes, options.RealtimePriority);
                delayers[Key(ns)] = d;
            }

            return d;
        }
    }

    private async Task StopIdleDelayersAsync()
    {
        var inUse = queuesByOwner.Values.SelectMany(s => s).Select(q => Key(q.Ns)).ToHashSet(StringComparer.Ordinal);
        List<NfQueueDelayer> idle;
        lock (delayers)
        {
            idle = [.. delayers.Where(kv => !inUse.Contains(kv.Key)).Select(kv => kv.Value)];
            foreach (var d in idle)
            {
                delayers.Remove(Key(d.NetworkNamespace));
            }
        }

        foreach (var d in idle)
        {
            await d.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string Key(string? ns) => ns ?? "";

    /// <summary>Reads the owner's rules (current namespace and every named one), queue health, and the bridge sysctls of <paramref name="sysctlNamespaces"/>.</summary>
    private async Task<ShapingState> ReadAsync(string owner, HashSet<string?>? sysctlNamespaces, CancellationToken cancellationToken)
    {
        var objects = new List<KernelObject>();
        var foreign = new List<KernelObject>();
        foreach (var (kind, save) in new[] { (IptablesPlanner.IptablesKind, "iptables-save"), (IptablesPlanner.Ip6tablesKind, "ip6tables-save") })
        {
            var local = await runner.RunAsync(CommandLine.Of(save, "-t", IptablesPlanner.Table), cancellationToken).ConfigureAwait(false);
            objects.AddRange(IptablesPlanner.ParseSave(owner, null, kind, local.StandardOutput));
            foreign.AddRange(IptablesPlanner.ForeignQueues(owner, null, local.StandardOutput));
            var all = await runner.RunAsync(CommandLine.Of("ip", "-all", "netns", "exec", save, "-t", IptablesPlanner.Table), cancellationToken).ConfigureAwait(false);
            foreach (var (ns, output) in IptablesPlanner.SplitAllNetns(all.StandardOutput))
            {
                objects.AddRange(IptablesPlanner.ParseSave(owner, ns, kind, output));
                foreign.AddRange(IptablesPlanner.ForeignQueues(owner, ns, output));
            }
        }

        var owned = objects.Select(o => o.NetworkNamespace).ToHashSet();
        var health = new Dictionary<(string?, int), QueueHealth>();
        var catProc = new[] { QueueProcFile.Path, "/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables" };
        var sections = new List<(string? Ns, string Output)>
        {
            (null, (await runner.RunAsync(CommandLine.Of("cat", catProc), cancellationToken).ConfigureAwait(false)).StandardOutput),
        };
        var allProc = await runner.RunAsync(CommandLine.Of("ip", ["-all", "netns", "exec", "cat", .. catProc]), cancellationToken).ConfigureAwait(false);
        sections.AddRange(IptablesPlanner.SplitAllNetns(allProc.StandardOutput).Select(s => ((string?)s.Namespace, s.Output)));
        foreach (var (ns, output) in sections)
        {
            foreach (var h in QueueProcFile.Parse(output))
            {
                health[(ns, h.QueueNumber)] = h;
            }

            if (owned.Contains(ns) || sysctlNamespaces?.Contains(ns) == true)
            {
                var single = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Where(l => l.Length > 0 && l.All(char.IsAsciiDigit)).ToList();
                if (single.Count == 2)
                {
                    objects.Add(new KernelObject(ns, IptablesPlanner.SysctlKind, IptablesPlanner.BridgeSysctlV4, single[0]));
                    objects.Add(new KernelObject(ns, IptablesPlanner.SysctlKind, IptablesPlanner.BridgeSysctlV6, single[1]));
                }
            }
        }

        // A queue someone listens on that none of this owner's rules names is someone else's (another
        // owner of this process, another program): never allocated.
        var own = new ShapingState(owner, BackendName, [], objects, []);
        var ownQueues = IptablesPlanner.AppliedRules(own, health).Where(r => r.KernelObjectId.StartsWith("nfq:", StringComparison.Ordinal))
            .Select(r => (r.NetworkNamespace, r.KernelObjectId[4..])).ToHashSet();
        foreach (var ((ns, queue), h) in health)
        {
            var number = queue.ToString(CultureInfo.InvariantCulture);
            if (h.PeerPortId != 0 && !ownQueues.Contains((ns, number)))
            {
                foreign.Add(new KernelObject(ns, IptablesPlanner.ForeignQueueKind, number, "bound by netlink port " + h.PeerPortId.ToString(CultureInfo.InvariantCulture)));
            }
        }

        return new ShapingState(owner, BackendName, IptablesPlanner.AppliedRules(own, health), objects, [.. foreign.Distinct()]);
    }
}
