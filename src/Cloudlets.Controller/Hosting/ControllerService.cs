using System.Globalization;
using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Cloudlets.Controller.Audit;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Telemetry;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Election;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;
using Cloudlets.Etcd;
using Cloudlets.Libvirt;
using Cloudlets.Mqtt;
using Cloudlets.Probing.Icmp;
using Cloudlets.Probing.Tcp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cloudlets.Controller.Hosting;

/// <summary>
/// The controller as a hosted service. Start: connects every host (all must answer), starts the
/// probes (and the MQTT source), builds and starts the pipeline, and records every sample, decision
/// and outcome in <see cref="ControllerState"/>, the metrics and the audit log. Stop: no new move;
/// migrations under way finish within <see cref="MigrationPipelineOptions.StopTimeout"/>, or are
/// aborted (each VM stays on its source; exit code <see cref="ControllerExitCodes.MigrationAbortedAtStop"/>).
/// A sample stream that fails stops the application with <see cref="ControllerExitCodes.Failed"/>.
/// Owns the hosts, probers and pipeline it creates; disposes them when disposed.
/// </summary>
public sealed class ControllerService : IHostedService, IAsyncDisposable
{
    private readonly ControllerOptions _options;
    private readonly ControllerState _state;
    private readonly AuditLog _audit;
    private readonly ControllerMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly CompositeDisposable _subscriptions = [];
    private readonly List<IAsyncDisposable> _owned = [];
    private MigrationPipeline? _pipeline;
    private EtcdLeaderElection? _election;
    private IConnectableObservable<LatencySample>? _samples;

    /// <summary>Creates the service (nothing connects until <see cref="StartAsync"/>).</summary>
    public ControllerService(
        IOptions<ControllerOptions> options,
        ControllerState state,
        AuditLog audit,
        ControllerMetrics metrics,
        TimeProvider time,
        ILoggerFactory loggers,
        IHostApplicationLifetime lifetime)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _state = state ?? throw new ArgumentNullException(nameof(state));
        _audit = audit ?? throw new ArgumentNullException(nameof(audit));
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _loggers = loggers ?? throw new ArgumentNullException(nameof(loggers));
        _lifetime = lifetime ?? throw new ArgumentNullException(nameof(lifetime));
        _logger = loggers.CreateLogger(LoggerCategory);
    }

    /// <summary>The logger category.</summary>
    public const string LoggerCategory = "Cloudlets.Controller";

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var options = _options;
        _state.Mode = options.Pipeline.Mode;
        var hosts = await ConnectHostsAsync(cancellationToken).ConfigureAwait(false);
        _state.SetHosts(hosts);

        var probes = new List<IAsyncDisposable>();
        IObservable<LatencySample> samples;
        try
        {
            samples = CreateSamples(probes);
        }
        catch
        {
            _owned.AddRange(probes);
            throw;
        }

        if (options.Election is { } election)
        {
            // Built (and its options checked) now; it connects to etcd only when it starts campaigning below.
            _election = EtcdLeaderElection.Create(election.ToEtcdOptions(), _time, _loggers.CreateLogger<EtcdLeaderElection>());
        }

        var gate = new ControllerStartGate(_election, _audit);
        _state.StartGate = gate;
        _samples = samples.Publish();
        var builder = new MigrationPipelineBuilder()
            .WithStartGate(gate)
            .WithOptions(options.Pipeline)
            .WithSamples(_samples)
            .WithPolicy(new LowestLatencyPolicy(options.Policy))
            .WithTimeProvider(_time)
            .WithLoggerFactory(_loggers);
        ConfigureRules(builder);
        foreach (var probe in probes)
        {
            builder.Owns(probe);
        }

        for (var i = 0; i < hosts.Count; i++)
        {
            var h = options.Hosts[i];
            builder.AddHost(hosts[i], ControllerOptions.HostTarget(h.Name), h.MigrationUri is null ? null : new Uri(h.MigrationUri, UriKind.Absolute));
        }

        foreach (var vm in options.Vms)
        {
            builder.AddVm(vm.ToDefinition());
        }

        _pipeline = builder.Build();
        _owned.Clear(); // the pipeline owns the hosts and probes now
        _state.Pipeline = _pipeline;

        _subscriptions.Add(_samples.Subscribe(OnSample, OnSamplesFailed));
        _subscriptions.Add(_pipeline.Decisions.Subscribe(OnDecision));
        _subscriptions.Add(_pipeline.Outcomes.Subscribe(OnOutcome));
        SubscribeControl(_pipeline);
        await _pipeline.StartAsync(cancellationToken).ConfigureAwait(false);
        _subscriptions.Add(_samples.Connect());
        if (_election is not null)
        {
            // A follower's pipeline runs like a leader's (samples, windows, placement, decisions); only its starts are refused.
            _subscriptions.Add(_election.States.Subscribe(OnLeadership));
            await _election.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        _state.SetPhase(ControllerPhase.Running);
        ControllerLog.Started(_logger, options.Pipeline.Mode, hosts.Count, options.Vms.Count);
        _audit.Lifecycle("controller.started", w =>
        {
            w.WriteString("mode", options.Pipeline.Mode.ToString());
            w.WriteNumber("hosts", hosts.Count);
            w.WriteNumber("vms", options.Vms.Count);
            w.WriteString("version", typeof(ControllerService).Assembly.GetName().Version?.ToString());
            if (_election is not null)
            {
                w.WriteString("region", _election.Election);
                w.WriteString("candidate", _election.CandidateId);
            }
        });
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_pipeline is null)
        {
            return;
        }

        _state.SetPhase(ControllerPhase.Stopping);
        ControllerLog.Stopping(_logger, _options.Pipeline.StopTimeout);
        _audit.Lifecycle("controller.stopping", w => w.WriteNumber("stopTimeoutSeconds", _options.Pipeline.StopTimeout.TotalSeconds));
        await _pipeline.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_election is not null)
        {
            // Released at once, so a follower takes over now instead of after the lease's TTL.
            await _election.ResignAsync(cancellationToken).ConfigureAwait(false);
        }

        _state.SetPhase(ControllerPhase.Stopped);
        _audit.Lifecycle("controller.stopped", w => w.WriteNumber("exitCode", _state.ExitCode));
        ControllerLog.Stopped(_logger, _state.ExitCode);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _subscriptions.Dispose();
        if (_pipeline is not null)
        {
            await _pipeline.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var owned in _owned)
        {
            await owned.DisposeAsync().ConfigureAwait(false);
        }

        _owned.Clear();
        if (_election is not null)
        {
            await _election.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Connects every host at once; when any fails, the others are closed and the start fails naming every host that did not answer.</summary>
    private async Task<IReadOnlyList<IHypervisorHost>> ConnectHostsAsync(CancellationToken cancellationToken)
    {
        var tasks = _options.Hosts.Select(h => LibvirtHypervisorHost.ConnectAsync(
            h.ToLibvirtOptions(), _loggers.CreateLogger<LibvirtHypervisorHost>(), _time, cancellationToken)).ToList();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception) when (tasks.Any(t => t.IsFaulted || t.IsCanceled))
        {
            var failures = new List<string>();
            for (var i = 0; i < tasks.Count; i++)
            {
                if (tasks[i].IsCompletedSuccessfully)
                {
                    await tasks[i].Result.DisposeAsync().ConfigureAwait(false);
                }
                else
                {
                    var h = _options.Hosts[i];
                    var why = tasks[i].Exception?.GetBaseException().Message ?? "cancelled";
                    failures.Add($"{h.Name} ({LibvirtUri.Redact(new Uri(h.Uri))}): {why}");
                }
            }

            var message = "Could not connect to every host: " + string.Join("; ", failures);
            _state.Fail(message);
            _audit.Lifecycle("controller.failed", w => w.WriteString("reason", message));
            throw new ControllerStartException(message);
        }

        if (_logger.IsEnabled(LogLevel.Information))
        {
            foreach (var (task, h) in tasks.Zip(_options.Hosts))
            {
                var shown = LibvirtUri.Redact(task.Result.Uri);
                ControllerLog.HostConnected(_logger, h.Name, shown);
            }
        }

        return [.. tasks.Select(t => (IHypervisorHost)t.Result)];
    }

    /// <summary>One ICMP prober (targets without a port) and one TCP prober (targets with one) per vantage point, and the MQTT source, merged.</summary>
    private IObservable<LatencySample> CreateSamples(List<IAsyncDisposable> probes)
    {
        var options = _options;
        var targets = options.Hosts.Select(h => new ProbeTarget(ControllerOptions.HostTarget(h.Name), h.Probe!.ParsedAddress, h.Probe.Port))
            .Concat(options.Vms.Where(v => v.Probe is not null).Select(v => new ProbeTarget(ControllerOptions.VmTarget(v.Name), v.Probe!.ParsedAddress, v.Probe.Port)))
            .ToList();
        var icmp = targets.Where(t => t.Port is null).ToList();
        var tcp = targets.Where(t => t.Port is not null).ToList();
        var streams = new List<IObservable<LatencySample>>();
        foreach (var vp in options.VantagePoints)
        {
            if (icmp.Count > 0)
            {
                var prober = IcmpProber.Create(new IcmpProberOptions
                {
                    VantagePoint = vp.Name,
                    NetworkNamespace = vp.NetworkNamespace,
                    EnableIPv6 = icmp.Any(t => t.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6),
                    Logger = _loggers.CreateLogger<IcmpProber>(),
                });
                probes.Add(prober);
                streams.Add(prober.Observe(icmp, options.Probing.Period, options.Probing.Timeout, TaskPoolScheduler.Default));
            }

            if (tcp.Count > 0)
            {
                var prober = new TcpConnectProber(new TcpConnectProberOptions { VantagePoint = vp.Name, NetworkNamespace = vp.NetworkNamespace });
                probes.Add(prober);
                streams.Add(prober.Observe(tcp, options.Probing.Period, options.Probing.Timeout, TaskPoolScheduler.Default));
            }
        }

        if (options.Mqtt is { } mqtt)
        {
            var source = MqttLatencySampleSource.Start(new MqttSampleSourceOptions
            {
                Broker = new MqttBrokerOptions
                {
                    Broker = mqtt.Broker,
                    Username = mqtt.Username,
                    Password = string.IsNullOrEmpty(mqtt.PasswordFile) ? null : File.ReadLines(mqtt.PasswordFile).FirstOrDefault()?.TrimEnd('\r'),
                    CaCertificateFile = string.IsNullOrEmpty(mqtt.CaCertificateFile) ? null : mqtt.CaCertificateFile,
                    ClientId = "cloudlets-controller-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
                },
                VantagePoints = mqtt.VantagePoints.Count == 0 ? null : [.. mqtt.VantagePoints],
                TimeProvider = _time,
                Logger = _loggers.CreateLogger<MqttLatencySampleSource>(),
            });
            probes.Add(source);
            streams.Add(source.Samples);
        }

        return streams.Merge();
    }

    private void OnSample(LatencySample sample)
    {
        _state.OnSample(sample, _time.GetUtcNow());
        _metrics.OnSample(sample);
    }

    private void OnSamplesFailed(Exception error)
    {
        // Without samples every host turns stale and nothing is decided: a service manager should know.
        var message = "The latency samples failed: " + error.Message;
        ControllerLog.SamplesFailed(_logger, error);
        _state.Fail(message);
        _audit.Lifecycle("controller.failed", w => w.WriteString("reason", message));
        _lifetime.StopApplication();
    }

    private void OnDecision(MigrationDecision decision)
    {
        var before = _state.OnDecision(decision);
        if (before is null || before.Kind != decision.Kind || before.Reason != decision.Reason
            || before.CurrentHost != decision.CurrentHost || before.TargetHost != decision.TargetHost || RuleChanged(before, decision))
        {
            _audit.Decision(decision, before);
        }

        // migration.started is written by the start gate, when the executor really starts a move.
    }

    private void OnOutcome(MigrationOutcome outcome)
    {
        _state.OnOutcome(outcome);
        _metrics.OnOutcome(outcome);

        // A follower's executor is refused by the fence every window it would move: nothing started and
        // its decision records already say what it would do, so the audit log is spared one line a window.
        if (outcome.Kind != MigrationOutcomeKind.Skipped || _state.Leadership is not { IsLeader: false })
        {
            _audit.MigrationFinished(outcome);
        }

        if (outcome.Kind == MigrationOutcomeKind.Aborted && outcome.AbortCause == MigrationAbortCause.Shutdown)
        {
            _state.SetExitCode(ControllerExitCodes.MigrationAbortedAtStop);
        }
    }

    private void ConfigureRules(MigrationPipelineBuilder builder) => builder.WithRules(_options.Rules);

    private void SubscribeControl(MigrationPipeline pipeline) => _subscriptions.Add(pipeline.ControlEvents.Subscribe(OnControl));

    private static bool RuleChanged(MigrationDecision before, MigrationDecision after) => before.HeldBy != after.HeldBy;

    /// <summary>Every operator action and rule change (from the API or a configuration reload), accepted or refused.</summary>
    private void OnControl(PlacementControlEvent e)
    {
        var accepted = e.Action == PlacementAction.MoveNow ? e.Changed : true;
        _audit.OperatorAction(e, accepted);
    }

    /// <summary>The election's states: the role in the state (health, metrics), and a record and a log line when it changes.</summary>
    private void OnLeadership(LeadershipState state)
    {
        var before = _state.SetLeadership(state);
        if (state.IsLeader && before?.IsLeader != true)
        {
            ControllerLog.LeadershipAcquired(_logger, state.CandidateId, state.Election, state.LeaseId, state.Revision);
            _audit.Leadership(state, acquired: true);
        }
        else if (!state.IsLeader && before?.IsLeader == true)
        {
            ControllerLog.LeadershipLost(_logger, state.CandidateId, state.Election, state.Reason, state.Detail);
            _audit.Leadership(state, acquired: false);
        }
        else if (!state.IsLeader && state.LeaderId != before?.LeaderId)
        {
            ControllerLog.Following(_logger, state.Election, state.LeaderId, state.CandidateId, state.Reason);
            if (state.LeaderId is not null)
            {
                // Only a known leader is a record; "no leader known" (etcd out of reach) is in health and the log.
                _audit.Following(state);
            }
        }
    }
}

/// <summary>The controller could not start (a host did not answer); nothing keeps running.</summary>
public sealed class ControllerStartException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ControllerStartException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ControllerStartException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public ControllerStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
