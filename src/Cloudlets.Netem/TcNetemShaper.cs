using System.Text.Json;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Options;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem.Tc;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Netem;

/// <summary>Options of <see cref="TcNetemShaper"/>.</summary>
public sealed class TcNetemShaperOptions : IValidatableOptions
{
    /// <summary>
    /// Where the owner locks of this machine live (see <see cref="ShapingOwnerInUseException"/>): one file per
    /// shaped host and owner, locked while a shaper holds the owner. An absolute path. The default is
    /// <c>/run/cloudlets-netem/owners</c>.
    /// </summary>
    public string OwnerLockDirectory { get; set; } = DefaultOwnerLockDirectory;

    /// <summary>
    /// Where, on the shaped host, the record of which owner holds which tc handle lives (directories
    /// <c>HANDLE/OWNER</c>, made with <c>mkdir</c> through the command runner). An absolute path. The default is
    /// <c>/run/cloudlets-netem/tc-handles</c>.
    /// </summary>
    public string HandleRecordDirectory { get; set; } = Tc.TcHandleRecord.DefaultDirectory;

    /// <summary>
    /// The iproute2 <c>tc</c> program on the shaped host: a name looked up in its PATH, or an absolute path. The
    /// default is <c>tc</c>. A host whose shell or <c>env</c> is busybox runs busybox's own <c>tc</c> applet ahead
    /// of PATH (it knows neither netem nor <c>-j</c>), so such a host needs the absolute path of iproute2's;
    /// <see cref="FindIproute2Async"/> finds it.
    /// </summary>
    public string TcPath { get; set; } = "tc";

    /// <summary>The iproute2 <c>ip</c> program on the shaped host, as <see cref="TcPath"/>. The default is <c>ip</c>.</summary>
    public string IpPath { get; set; } = "ip";

    internal const string DefaultOwnerLockDirectory = "/run/cloudlets-netem/owners";

    /// <summary>Where iproute2 usually installs tc and ip, tried after the plain name.</summary>
    private static readonly string[] Iproute2Folders = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        AbsoluteDirectory(errors, nameof(OwnerLockDirectory), OwnerLockDirectory);
        AbsoluteDirectory(errors, nameof(HandleRecordDirectory), HandleRecordDirectory);
        Program(errors, nameof(TcPath), TcPath);
        Program(errors, nameof(IpPath), IpPath);
    }

    /// <summary>
    /// Sets <see cref="TcPath"/> and <see cref="IpPath"/> to the first of the current value, then
    /// <c>/usr/sbin</c>, <c>/sbin</c>, <c>/usr/bin</c> and <c>/bin</c>, whose <c>-V</c> says it is iproute2's, on
    /// the host <paramref name="runner"/> reaches; a program found nowhere keeps its value (the first command
    /// that uses it then fails with what the host says).
    /// </summary>
    public async Task FindIproute2Async(ICommandRunner runner, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        TcPath = await FindAsync(runner, TcPath, "tc", cancellationToken).ConfigureAwait(false);
        IpPath = await FindAsync(runner, IpPath, "ip", cancellationToken).ConfigureAwait(false);
    }

    private static async Task<string> FindAsync(ICommandRunner runner, string current, string name, CancellationToken cancellationToken)
    {
        foreach (var candidate in new[] { current }.Concat(Iproute2Folders.Select(f => f + "/" + name)).Distinct(StringComparer.Ordinal))
        {
            var version = await runner.RunAsync(CommandLine.Of(candidate, "-V"), cancellationToken).ConfigureAwait(false);
            if (version.Succeeded && version.StandardOutput.Contains("iproute2", StringComparison.Ordinal))
            {
                return candidate;
            }
        }

        return current;
    }

    /// <summary><paramref name="command"/> with <c>tc</c> and <c>ip</c> (also the program run by <c>ip netns exec NS</c>) replaced by <see cref="TcPath"/> and <see cref="IpPath"/>.</summary>
    public CommandLine Resolve(CommandLine command)
    {
        ArgumentNullException.ThrowIfNull(command);
        string Map(string program) => program switch { "tc" => TcPath, "ip" => IpPath, _ => program };
        var args = command.Arguments;
        if (command.Program == "ip" && args.Count > 3 && args[0] == "netns" && args[1] == "exec")
        {
            return new CommandLine(IpPath, [args[0], args[1], args[2], Map(args[3]), .. args.Skip(4)]);
        }

        return command.Program is "tc" or "ip" ? command with { Program = Map(command.Program) } : command;
    }

    private static void Program(OptionsErrors errors, string property, string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)) ||
            (value.Contains('/', StringComparison.Ordinal) && (!value.StartsWith('/') || value.EndsWith('/') || value.Split('/').Any(p => p is ".." or "."))))
        {
            errors.Add(property, $"'{value}' is neither a program name nor an absolute path without '.', '..', spaces or control characters.");
        }
    }

    internal static void AbsoluteDirectory(OptionsErrors errors, string property, string? value)
    {
        if (string.IsNullOrEmpty(value) || !value.StartsWith('/') || value.Split('/').Any(p => p is ".." or ".") ||
            value.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            errors.Add(property, $"'{value}' is not an absolute directory path without '.', '..', spaces or control characters.");
        }
    }
}

/// <summary>
/// Latency shaping with the kernel's netem qdisc, run through <c>tc</c> on this machine or on a remote
/// host (<see cref="ICommandRunner"/>, for example <see cref="Ssh.SshCommandRunner"/>). The whole
/// interface (<c>root netem</c>, as in the demonstration) or per destination (HTB + u32 + netem leaves);
/// ingress through an IFB device. Only qdiscs under the owner's reserved handle are touched; a foreign
/// root qdisc is never overwritten. On a kernel without netem, <see cref="NetemUnavailableException"/>
/// is thrown and whatever this call built is removed again.
/// <para>
/// Ownership: an owner's handle slot is allocated and recorded on the shaped host (so two owners never
/// share a handle, an IFB device or a qdisc), and a shaper holds the owner's lock on this machine from
/// its first apply until it clears the owner or is disposed; a second shaper of the same owner fails
/// with <see cref="ShapingOwnerInUseException"/> before it reads or changes anything. Disposing leaves
/// the kernel state in place (another shaper may take the owner over and clear it).
/// </para>
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

    private readonly ProgramRunner runner;
    private readonly ILogger logger;
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly Dictionary<string, OwnerLock> locks = new(StringComparer.Ordinal);
    private readonly string lockDirectory;
    private readonly string recordDirectory;
    private readonly string lockScope;
    private readonly TcNetemShaperOptions programs;

    /// <summary>Creates a shaper.</summary>
    /// <param name="runner">Where tc runs; the default is <see cref="LocalCommandRunner"/>.</param>
    /// <param name="logger">A logger.</param>
    /// <param name="reason">Why this backend was chosen (shown in <see cref="Capabilities"/>).</param>
    /// <param name="options">Options; <see langword="null"/> for the defaults. Validated here.</param>
    /// <exception cref="OptionsValidationException">An option is invalid.</exception>
    public TcNetemShaper(ICommandRunner? runner = null, ILogger<TcNetemShaper>? logger = null, string? reason = null, TcNetemShaperOptions? options = null)
    {
        options ??= new TcNetemShaperOptions();
        OptionsErrors.ValidateAndThrow(options);
        lockDirectory = options.OwnerLockDirectory;
        recordDirectory = options.HandleRecordDirectory;
        programs = new TcNetemShaperOptions { TcPath = options.TcPath, IpPath = options.IpPath };
        runner ??= LocalCommandRunner.Instance;
        lockScope = OwnerLock.Scope((runner as Ssh.SshCommandRunner)?.Destination);

        // Every command of this shaper goes through here, so tc and ip are the configured programs everywhere.
        this.runner = new ProgramRunner(runner, programs);
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        Capabilities = new ShaperCapabilities(BackendName, SupportedFeatures, reason ?? "tc netem");
    }

    /// <inheritdoc />
    public ShaperCapabilities Capabilities { get; }

    /// <inheritdoc />
    public ShapingChanges Plan(ShapingPlan plan, ShapingState current) =>
        ShapingChanges.Between(plan, current, backendHasWork: PlanCommands(plan, current).Count > 0);

    /// <summary>
    /// The commands <see cref="ApplyAsync"/> would run to get from <paramref name="current"/> to
    /// <paramref name="plan"/>, in order. Pure: runs nothing. Empty when the kernel already matches.
    /// </summary>
    /// <exception cref="ShapingValidationException">The plan is invalid.</exception>
    public IReadOnlyList<CommandLine> PlanCommands(ShapingPlan plan, ShapingState current)
    {
        Check(plan);
        ArgumentNullException.ThrowIfNull(current);
        return [.. TcPlanner.Plan(plan, current, recordDirectory).Select(programs.Resolve)];
    }

    /// <inheritdoc />
    public async Task<ShapingState> ApplyAsync(ShapingPlan plan, CancellationToken cancellationToken = default)
    {
        Check(plan);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Hold(plan.Owner);
            if (plan.Rules.Count == 0)
            {
                await ClearCoreAsync(plan.Owner, cancellationToken).ConfigureAwait(false);
                Release(plan.Owner);
                return await ReadAsync(plan.Owner, cancellationToken).ConfigureAwait(false);
            }

            var current = await ReadAsync(plan.Owner, cancellationToken).ConfigureAwait(false);
            var commands = TcPlanner.Plan(plan, current, recordDirectory);
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
                Release(plan.Owner);
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
        return ReadAsync(owner, cancellationToken);
    }

    /// <summary>Releases the owner locks; the tc state stays in the kernel until an owner is cleared.</summary>
    public ValueTask DisposeAsync()
    {
        foreach (var owner in locks.Keys.ToList())
        {
            Release(owner);
        }

        gate.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Hold(string owner)
    {
        if (!locks.ContainsKey(owner))
        {
            locks[owner] = OwnerLock.Acquire(lockDirectory, lockScope, owner);
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

        if (result.Command.Program == "mkdir")
        {
            return new ShapingException($"Cannot claim a tc handle on the shaped host ({result.Command}: {stderr.Trim()}); another owner may have taken it meanwhile: apply again.", new CommandException(result));
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
        var commands = TcPlanner.Plan(new ShapingPlan(owner, []), current, recordDirectory);
        var failures = new List<string>();
        foreach (var command in commands)
        {
            NetemLog.Running(logger, command);
            // "Not found" is success: something else may have removed it already; what is left is checked below.
            var result = await runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                failures.Add($"{command}: {result.StandardError.Trim()}");
            }
        }

        // The handle is given back only when nothing under it is left, so it is never handed to another
        // owner while a qdisc of this one still uses it.
        var after = await ReadAsync(owner, cancellationToken).ConfigureAwait(false);
        if (after.Objects.Any(o => o.Kind != Tc.TcHandleRecord.OwnedKind))
        {
            throw new ShapingException($"Clearing '{owner}' left objects behind ({string.Join("; ", after.Objects.Select(o => o.Location + " " + o.Text))}):{Environment.NewLine}{string.Join(Environment.NewLine, failures)}");
        }

        if (TcPlanner.OwnedHandle(after) is { } handle)
        {
            foreach (var command in Tc.TcHandleRecord.Release(recordDirectory, handle, owner))
            {
                NetemLog.Running(logger, command);
                await runner.RunCheckedAsync(command, cancellationToken).ConfigureAwait(false);
            }
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
        var records = Tc.TcHandleRecord.Parse(recordDirectory, await runner.RunAsync(Tc.TcHandleRecord.List(recordDirectory), cancellationToken).ConfigureAwait(false));
        int? h = records.Where(r => r.Owner == owner).Select(r => (int?)r.Handle).FirstOrDefault();
        if (h is { } recorded)
        {
            objects.Add(new KernelObject(null, Tc.TcHandleRecord.OwnedKind, OwnerNames.Hex(recorded), owner));
        }

        objects.AddRange(records.Where(r => r.Owner != owner).Select(r => new KernelObject(null, Tc.TcHandleRecord.ForeignKind, OwnerNames.Hex(r.Handle), r.Owner)));
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

            var found = TcPlanner.ParseQdiscs(h, ns, qdiscs.StandardOutput, ifbs);
            objects.AddRange(found);
            if (h is not { } root)
            {
                continue;   // no handle, so nothing here is this owner's
            }

            var devices = JsonDevices(qdiscs.StandardOutput);
            foreach (var dev in devices.Where(d => ifbs.Contains(OwnerNames.IfbDevice(root, d))).Order(StringComparer.Ordinal))
            {
                objects.Add(new KernelObject(ns, TcPlanner.LinkKind, OwnerNames.IfbDevice(root, dev), "ifb " + dev));
            }

            foreach (var dev in found.Where(o => o.Kind == TcPlanner.QdiscKind && o.Text.StartsWith($"root {OwnerNames.Hex(root)}: htb", StringComparison.Ordinal)).Select(o => o.Location).Distinct())
            {
                var filters = await runner.RunAsync(CommandLine.Of("tc", "-j", "filter", "show", "dev", dev, "parent", OwnerNames.Hex(root) + ":").InNamespace(ns), cancellationToken).ConfigureAwait(false);
                if (filters.Succeeded)
                {
                    objects.AddRange(TcPlanner.ParseFilters(ns, dev, filters.StandardOutput));
                }
            }
        }

        var owned = objects.Where(o => o.Kind is TcPlanner.QdiscKind or TcPlanner.FilterKind or TcPlanner.LinkKind or TcPlanner.IngressKind or Tc.TcHandleRecord.OwnedKind).ToList();
        var foreign = objects.Except(owned).ToList();
        var rules = owned.Where(o => o.Kind == TcPlanner.QdiscKind && o.Text.Contains("netem", StringComparison.Ordinal))
            .Select(o => new AppliedRule(o.NetworkNamespace, o.Location, ShapingDirection.Egress, o.Text.Split(' ')[o.Text.StartsWith("root", StringComparison.Ordinal) ? 1 : 2], ImpairmentOf(o.Text), "tc:" + o.Location, null))
            .ToList();

        return new ShapingState(owner, BackendName, rules, owned, foreign);
    }

    /// <summary>Runs each command with tc and ip replaced by the configured programs.</summary>
    private sealed class ProgramRunner(ICommandRunner inner, TcNetemShaperOptions programs) : ICommandRunner
    {
        public Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default) =>
            inner.RunAsync(programs.Resolve(command), cancellationToken);
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
