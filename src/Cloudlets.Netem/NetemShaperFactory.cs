using System.Globalization;
using System.Runtime.Versioning;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Options;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem.NfQueue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Netem;

/// <summary>Which backend to use.</summary>
public enum ShapingBackend
{
    /// <summary>Probe the kernel: tc netem when it has netem, otherwise the NFQUEUE delay line.</summary>
    Auto,

    /// <summary>tc netem (fails if the kernel has no netem).</summary>
    TcNetem,

    /// <summary>The NFQUEUE delay line (local only).</summary>
    NfQueue,
}

/// <summary>What a kernel probe found.</summary>
/// <param name="Netem">Whether <c>tc qdisc add … netem</c> works.</param>
/// <param name="NetemDetail">What tc said.</param>
/// <param name="NfQueue">Whether an <c>-j NFQUEUE --queue-bypass</c> rule and a netlink queue bind work (probed only locally).</param>
/// <param name="NfQueueDetail">What the NFQUEUE probe found.</param>
public sealed record KernelProbeResult(bool Netem, string NetemDetail, bool? NfQueue, string NfQueueDetail);

/// <summary>Options of <see cref="NetemShaperFactory"/>. Validated once, when <see cref="NetemShaperFactory.CreateAsync"/> is called.</summary>
public sealed class NetemShaperFactoryOptions : IValidatableOptions
{
    /// <summary>Which backend. The default is <see cref="ShapingBackend.Auto"/>.</summary>
    public ShapingBackend Backend { get; set; } = ShapingBackend.Auto;

    /// <summary>Where commands run. The default (<see langword="null"/>) is this machine; a remote runner allows tc netem only.</summary>
    public ICommandRunner? Runner { get; set; }

    /// <summary>Options for the NFQUEUE backend. The default (<see langword="null"/>) is <see cref="NfQueueShaperOptions"/>'s defaults.</summary>
    public NfQueueShaperOptions? NfQueue { get; set; }

    /// <summary>Options for the tc-netem backend. The default (<see langword="null"/>) is <see cref="TcNetemShaperOptions"/>'s defaults.</summary>
    public TcNetemShaperOptions? TcNetem { get; set; }

    /// <summary>Loggers. The default is none.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.Defined(nameof(Backend), Backend);
        errors.Nested(nameof(NfQueue), NfQueue, required: false);
        errors.Nested(nameof(TcNetem), TcNetem, required: false);
    }
}

/// <summary>Probes the kernel in a throwaway network namespace and builds the right <see cref="INetemShaper"/>.</summary>
[SupportedOSPlatform("linux")]
public static class NetemShaperFactory
{
    /// <summary>Builds a shaper; its <see cref="ShaperCapabilities.Reason"/> says which backend and why.</summary>
    /// <exception cref="NetemUnavailableException">Remote host (or tc forced) and the kernel has no netem.</exception>
    /// <exception cref="ShapingException">No backend works here.</exception>
    public static async Task<INetemShaper> CreateAsync(NetemShaperFactoryOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new NetemShaperFactoryOptions();
        OptionsErrors.ValidateAndThrow(options);
        var loggers = options.LoggerFactory ?? NullLoggerFactory.Instance;
        var local = options.Runner is null or LocalCommandRunner;
        var runner = options.Runner ?? LocalCommandRunner.Instance;
        if (options.Backend == ShapingBackend.NfQueue)
        {
            if (!local)
            {
                throw new ShapingException("The NFQUEUE backend holds packets in this process, so it can only shape this machine.");
            }

            return new NfQueueShaper(options.NfQueue, runner, loggers.CreateLogger<NfQueueShaper>(), "NFQUEUE chosen by the caller");
        }

        var probe = await ProbeAsync(runner, probeNfQueue: local && options.Backend == ShapingBackend.Auto, options.TcNetem, cancellationToken).ConfigureAwait(false);
        var logger = loggers.CreateLogger(typeof(NetemShaperFactory).FullName!);
        if (probe.Netem)
        {
            var reason = "the kernel has netem (" + probe.NetemDetail + ")";
            NetemLog.BackendChosen(logger, TcNetemShaper.BackendName, reason);
            return new TcNetemShaper(runner, loggers.CreateLogger<TcNetemShaper>(), reason, options.TcNetem);
        }

        if (options.Backend == ShapingBackend.TcNetem || !local)
        {
            throw new NetemUnavailableException($"The kernel has no netem qdisc ({NetemUnavailableException.KernelOption} is not set): {probe.NetemDetail}");
        }

        if (probe.NfQueue == true)
        {
            var reason = $"no netem ({NetemUnavailableException.KernelOption} not set: {probe.NetemDetail}); NFQUEUE works ({probe.NfQueueDetail})";
            NetemLog.BackendChosen(logger, NfQueueShaper.BackendName, reason);
            return new NfQueueShaper(options.NfQueue, runner, loggers.CreateLogger<NfQueueShaper>(), reason);
        }

        throw new ShapingException($"No shaping backend works here: netem: {probe.NetemDetail}; NFQUEUE: {probe.NfQueueDetail}");
    }

    /// <summary>
    /// Tries netem (and, locally, NFQUEUE) in a throwaway network namespace that is deleted afterwards,
    /// so nothing on the host is touched.
    /// </summary>
    public static Task<KernelProbeResult> ProbeAsync(ICommandRunner runner, bool probeNfQueue, CancellationToken cancellationToken = default) =>
        ProbeAsync(runner, probeNfQueue, null, cancellationToken);

    /// <summary>As <see cref="ProbeAsync(ICommandRunner, bool, CancellationToken)"/>, with tc and ip as <paramref name="programs"/> names them (null: <c>tc</c> and <c>ip</c>).</summary>
    public static async Task<KernelProbeResult> ProbeAsync(ICommandRunner runner, bool probeNfQueue, TcNetemShaperOptions? programs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        if (programs is not null)
        {
            var inner = runner;
            runner = new ResolvingRunner(inner, programs);
        }

        var ns = string.Create(CultureInfo.InvariantCulture, $"cln-probe-{Environment.ProcessId}-{Random.Shared.Next(0x10000):x4}");
        var add = await runner.RunAsync(CommandLine.Of("ip", "netns", "add", ns), cancellationToken).ConfigureAwait(false);
        if (!add.Succeeded)
        {
            throw new ShapingException($"Cannot create a network namespace to probe the kernel (root is needed): {add.StandardError.Trim()}", new CommandException(add));
        }

        try
        {
            await runner.RunAsync(CommandLine.Of("ip", "-n", ns, "link", "set", "lo", "up"), cancellationToken).ConfigureAwait(false);
            var tc = await runner.RunAsync(CommandLine.Of("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms").InNamespace(ns), cancellationToken).ConfigureAwait(false);
            var netem = tc.Succeeded;
            var netemDetail = netem ? "tc qdisc add … netem works" : "tc: " + tc.StandardError.Trim();
            if (!probeNfQueue)
            {
                return new KernelProbeResult(netem, netemDetail, null, "not probed");
            }

            var ipt = await runner.RunAsync(CommandLine.Of("iptables", "-w", "-t", "mangle", "-A", "OUTPUT", "-j", "NFQUEUE", "--queue-num", "1", "--queue-bypass").InNamespace(ns), cancellationToken).ConfigureAwait(false);
            if (!ipt.Succeeded)
            {
                return new KernelProbeResult(netem, netemDetail, false, "iptables -j NFQUEUE: " + ipt.StandardError.Trim());
            }

            try
            {
                var delayer = NfQueueDelayer.Start(ns, TimeProvider.System, NullLogger.Instance, 1 << 16);
                await using (delayer.ConfigureAwait(false))
                {
                    await delayer.BindAsync(1, Impairment.FromDelay(TimeSpan.FromMilliseconds(1)), 1024, true, cancellationToken).ConfigureAwait(false);
                }

                return new KernelProbeResult(netem, netemDetail, true, "iptables -j NFQUEUE --queue-bypass and a NETLINK_NETFILTER queue bind work");
            }
            catch (Exception ex) when (ex is ShapingException or System.Net.Sockets.SocketException or IOException)
            {
                return new KernelProbeResult(netem, netemDetail, false, "netlink queue bind: " + ex.Message);
            }
        }
        finally
        {
            await runner.RunAsync(CommandLine.Of("ip", "netns", "del", ns), CancellationToken.None).ConfigureAwait(false);
        }
    }

    private sealed class ResolvingRunner(ICommandRunner inner, TcNetemShaperOptions programs) : ICommandRunner
    {
        public Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default) =>
            inner.RunAsync(programs.Resolve(command), cancellationToken);
    }
}
