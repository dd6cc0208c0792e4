using System.Diagnostics;
using System.Globalization;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.Probing.Tcp;
using Cloudlets.Libvirt;

namespace Cloudlets.Samples.Advisor;

/// <summary>
/// The advisor: connects to the configured hosts, probes them (and the VMs) from every vantage point,
/// runs the migration pipeline — advisory unless asked to apply — and prints each change of decision
/// with its reason, then a summary.
/// </summary>
internal sealed class AdvisorRun(AdvisorConfig config, bool apply, TextWriter output)
{
    private readonly Lock _gate = new();
    private readonly Stopwatch _clock = new();
    private readonly Dictionary<string, MigrationDecision> _last = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (DecisionKind, DecisionReason, string?, string?)> _printed = new(StringComparer.Ordinal);
    private int _decisions;
    private int _movesAdvised;
    private int _migrationsStarted;
    private readonly List<MigrationOutcome> _outcomes = [];
    private readonly List<ProgressObservingHost> _observed = [];
    private readonly Dictionary<string, TimeSpan> _progressPrinted = new(StringComparer.Ordinal);

    /// <summary>How long the end of an --apply run waits for migrations under way.</summary>
    private static readonly TimeSpan MigrationWaitBound = TimeSpan.FromMinutes(5);

    /// <summary>Runs for <paramref name="duration"/> (or until cancelled); returns the exit code.</summary>
    public async Task<int> RunAsync(TimeSpan? duration, CancellationToken cancellationToken)
    {
        // The builder takes each host as it connects and each prober as it is made; the pipeline it
        // builds owns them all, so one dispose releases everything. Until it is built, "owned" holds
        // what a failure must release.
        var builder = new MigrationPipelineBuilder();
        var owned = new List<IAsyncDisposable>();
        MigrationPipeline? pipeline = null;
        var subscriptions = new List<IDisposable>();
        try
        {
            foreach (var h in config.Hosts)
            {
                var host = await LibvirtHypervisorHost.ConnectAsync(
                    new LibvirtHostOptions { Name = h.Name, Uri = h.Uri, NetworkNamespace = h.NetworkNamespace },
                    cancellationToken: cancellationToken);
                // Counts the migrations really started from each host (the summary reports them) and shows their progress.
                var observed = new ProgressObservingHost(host, OnProgress);
                owned.Add(observed);
                _observed.Add(observed);
                builder.AddHost(observed, AdvisorConfig.HostTarget(h.Name), h.MigrationUri);
                Write($"connected to {h.Name} ({LibvirtUri.Redact(h.Uri)}{(h.NetworkNamespace is null ? "" : ", from netns " + h.NetworkNamespace)})");
            }

            var probes = new List<IAsyncDisposable>();
            var samples = CreateSamples(probes).Publish();
            owned.AddRange(probes);
            foreach (var probe in probes)
            {
                builder.Owns(probe);
            }

            builder
                .WithSamples(samples)
                .WithPolicy(new LowestLatencyPolicy(config.Policy))
                .Configure(o =>
                {
                    o.Mode = apply ? PipelineMode.Automatic : PipelineMode.Advisory;
                    o.EvaluationInterval = config.Pipeline.EvaluationInterval;
                    o.PlacementRefreshInterval = config.Pipeline.PlacementRefreshInterval;
                    o.HostTimeout = config.Pipeline.HostTimeout;
                    o.SampleWindow = config.Pipeline.SampleWindow;
                    o.StopTimeout = MigrationWaitBound;
                });
            foreach (var vm in config.Vms)
            {
                builder.AddVm(new VmDefinition(vm.Name, vm.Users));
            }

            pipeline = builder.Build();
            owned.Clear(); // the pipeline owns them now
            Write(apply
                ? "mode: AUTOMATIC (--apply): decided moves are executed"
                : "mode: advisory: decisions are printed, nothing is migrated (--apply to migrate)");
            _clock.Start();
            subscriptions.Add(pipeline.Decisions.Subscribe(OnDecision));
            subscriptions.Add(pipeline.Outcomes.Subscribe(OnOutcome));
            subscriptions.Add(samples.Connect());
            await pipeline.StartAsync(cancellationToken);

            try
            {
                await Task.Delay(duration ?? Timeout.InfiniteTimeSpan, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                Write("stopped");
            }

            // With --apply, a migration under way is let finish (at most MigrationWaitBound) so its
            // outcome is reported rather than cut off; after Ctrl+C the stop aborts it at once.
            if (apply && !cancellationToken.IsCancellationRequested)
            {
                Write($"stopping: migrations under way may finish (at most {MigrationWaitBound.TotalMinutes:0} min)");
            }

            await pipeline.StopAsync(cancellationToken);
        }
        finally
        {
            foreach (var s in subscriptions)
            {
                s.Dispose();
            }

            if (pipeline is not null)
            {
                await pipeline.DisposeAsync();
            }

            foreach (var o in owned)
            {
                await o.DisposeAsync();
            }
        }

        WriteSummary();
        return 0;
    }

    /// <summary>One ICMP prober (targets without a port) and one TCP prober (targets with one) per vantage point, merged.</summary>
    private IObservable<LatencySample> CreateSamples(List<IAsyncDisposable> probes)
    {
        var targets = config.Hosts.Select(h => new ProbeTarget(AdvisorConfig.HostTarget(h.Name), h.Probe.Address, h.Probe.Port))
            .Concat(config.Vms.Where(v => v.Probe is not null).Select(v => new ProbeTarget(AdvisorConfig.VmTarget(v.Name), v.Probe!.Address, v.Probe.Port)))
            .ToList();
        var icmp = targets.Where(t => t.Port is null).ToList();
        var tcp = targets.Where(t => t.Port is not null).ToList();
        var streams = new List<IObservable<LatencySample>>();
        foreach (var vp in config.VantagePoints)
        {
            if (icmp.Count > 0)
            {
                var prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = vp.Name, NetworkNamespace = vp.NetworkNamespace });
                probes.Add(prober);
                streams.Add(prober.Observe(icmp, config.ProbePeriod, config.ProbeTimeout, TaskPoolScheduler.Default));
            }

            if (tcp.Count > 0)
            {
                var prober = new TcpConnectProber(new TcpConnectProberOptions { VantagePoint = vp.Name, NetworkNamespace = vp.NetworkNamespace });
                probes.Add(prober);
                streams.Add(prober.Observe(tcp, config.ProbePeriod, config.ProbeTimeout, TaskPoolScheduler.Default));
            }

            Write($"probing from {vp.Name}{(vp.NetworkNamespace is null ? "" : " (netns " + vp.NetworkNamespace + ")")}: " +
                  string.Join(", ", targets.Select(t => $"{t.Name} {t.Address}{(t.Port is { } port ? ":" + port.ToString(CultureInfo.InvariantCulture) + "/tcp" : "/icmp")}")));
        }

        return streams.Merge();
    }

    private void OnDecision(MigrationDecision decision)
    {
        lock (_gate)
        {
            _decisions++;
            _last[decision.VmName] = decision;
            var key = (decision.Kind, decision.Reason, decision.CurrentHost, decision.TargetHost);
            if (decision.IsMove)
            {
                if (apply)
                {
                    _migrationsStarted++;
                }
                else
                {
                    _movesAdvised++;
                }
            }
            else if (_printed.TryGetValue(decision.VmName, out var before) && before == key)
            {
                return; // the same decision as last time: print changes only
            }

            _printed[decision.VmName] = key;
            var where = decision.CurrentHost ?? "(placement unknown)";
            var head = decision.IsMove
                ? $"MOVE {decision.VmName} {where} -> {decision.TargetHost}" + (decision.GainMs is { } g ? string.Create(CultureInfo.InvariantCulture, $" (gain {g:0.0} ms)") : "")
                : $"{decision.Kind.ToString().ToUpperInvariant()} {decision.VmName} on {where} [{decision.Reason}]";
            WriteLocked($"decision: {head}: {decision.Explanation}");
            if (decision.IsMove && !apply)
            {
                WriteLocked($"  advice only: {decision.VmName} is not migrated (advisory mode; --apply migrates)");
            }
        }
    }

    private void OnProgress(string vmName, MigrationProgress progress)
    {
        lock (_gate)
        {
            // At most one line every 2 s per VM.
            if (_progressPrinted.TryGetValue(vmName, out var last) && progress.Elapsed - last < TimeSpan.FromSeconds(2) && progress.Elapsed >= last)
            {
                return;
            }

            _progressPrinted[vmName] = progress.Elapsed;
            var done = progress.DataTotalBytes is > 0 && progress.DataProcessedBytes is { } processed
                ? string.Create(CultureInfo.InvariantCulture, $"{100.0 * processed / progress.DataTotalBytes.Value:0}% of {progress.DataTotalBytes.Value / 1048576.0:0} MiB")
                : "started";
            WriteLocked(string.Create(CultureInfo.InvariantCulture,
                $"progress: {vmName} {done} after {progress.Elapsed.TotalSeconds:0.0} s{(progress.Iteration is { } i ? $", pass {i}" : "")}"));
        }
    }

    private void OnOutcome(MigrationOutcome outcome)
    {
        lock (_gate)
        {
            _outcomes.Add(outcome);
            var total = (outcome.FinishedAt - outcome.StartedAt).TotalMilliseconds;
            WriteLocked(string.Create(CultureInfo.InvariantCulture,
                $"migration: {outcome.VmName} {outcome.Source} -> {outcome.Destination}: {outcome.Kind} after {total:0} ms{(outcome.Error is { } e ? " (" + e.Message + ")" : "")}"));
        }
    }

    private void WriteSummary()
    {
        lock (_gate)
        {
            // Migrations counted at the hosts themselves, not inferred from the decisions.
            var started = _observed.Sum(h => h.MigrationsStarted);
            WriteLocked($"summary: {_decisions} decisions; " + (apply
                ? $"{_migrationsStarted} moves decided, {started} migrations started, {_outcomes.Count} finished ({_outcomes.Count(o => o.Kind == MigrationOutcomeKind.Succeeded)} succeeded)"
                : $"{_movesAdvised} moves advised, {started} migrations started" + (started == 0 ? " (advisory mode: nothing was migrated)" : "")));
            foreach (var vm in config.Vms)
            {
                if (!_last.TryGetValue(vm.Name, out var d))
                {
                    WriteLocked($"  {vm.Name}: no decision yet");
                    continue;
                }

                WriteLocked($"  {vm.Name}: last decision {d.Kind} [{d.Reason}] on {d.CurrentHost ?? "?"}: {d.Explanation}");
                foreach (var c in d.Candidates)
                {
                    WriteLocked(string.Create(CultureInfo.InvariantCulture,
                        $"    {c.Host,-16} {c.Status,-12} {(c.ScoreMs is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) + " ms" : "-"),12}{(c.IsCurrent ? "  (current)" : "")}"));
                }
            }
        }
    }

    private void Write(string line)
    {
        lock (_gate)
        {
            WriteLocked(line);
        }
    }

    private void WriteLocked(string line) =>
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,7:0.0}s] {line}"));
}
