using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Core.Pipeline;

/// <summary>
/// Builds a <see cref="MigrationPipeline"/>: the latency samples, the hosts and which probe target
/// stands for each, the VMs and their users, the policy, the scheduler and clock, and the options.
/// Everything is validated in <see cref="Build"/>; a builder builds once and refuses any change after it.
/// </summary>
public sealed class MigrationPipelineBuilder
{
    private readonly List<PipelineHost> _hosts = [];
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<VmDefinition> _vms = [];
    private MigrationPipelineOptions _options = new();
    private IObservable<LatencySample>? _samples;
    private IMigrationPolicy? _policy;
    private TimeProvider? _time;
    private ILoggerFactory? _loggers;
    private PlacementRules _rules = PlacementRules.Empty;
    private PipelineJournal? _journal;
    private IMigrationStartGate? _startGate;
    private bool _built;

    /// <summary>The latency samples (from any number of vantage points).</summary>
    public MigrationPipelineBuilder WithSamples(IObservable<LatencySample> samples)
    {
        ThrowIfBuilt();
        _samples = samples ?? throw new ArgumentNullException(nameof(samples));
        return this;
    }

    /// <summary>Adds a host.</summary>
    /// <param name="host">The host.</param>
    /// <param name="probeTarget">The name of the probe target whose samples measure the latency to this host (<see cref="ProbeTarget.Name"/>).</param>
    /// <param name="migrationUri">The data-channel URI migrations to this host use (for example <c>tcp://198.18.0.12</c>), or <see langword="null"/> for the executor's options.</param>
    /// <param name="leaveOpen">
    /// <see langword="false"/> (the default): the pipeline owns the host and disposes it when it is
    /// disposed. <see langword="true"/>: the caller keeps it and disposes it after the pipeline.
    /// </param>
    public MigrationPipelineBuilder AddHost(IHypervisorHost host, string probeTarget, Uri? migrationUri = null, bool leaveOpen = false)
    {
        ThrowIfBuilt();
        ArgumentNullException.ThrowIfNull(host);
        ArgumentException.ThrowIfNullOrEmpty(probeTarget);
        _hosts.Add(new PipelineHost(host, probeTarget, migrationUri, leaveOpen));
        return this;
    }

    /// <summary>
    /// Gives the pipeline something to dispose with it — typically the prober or the sample source
    /// behind <see cref="WithSamples"/>. Owned resources are disposed in the order given, after the
    /// pipeline has stopped and before its hosts.
    /// </summary>
    public MigrationPipelineBuilder Owns(IAsyncDisposable resource)
    {
        ThrowIfBuilt();
        ArgumentNullException.ThrowIfNull(resource);
        _owned.Add(resource);
        return this;
    }

    /// <summary>Adds a VM with its users.</summary>
    /// <param name="vm">The VM and its weighted users.</param>
    public MigrationPipelineBuilder AddVm(VmDefinition vm)
    {
        ThrowIfBuilt();
        ArgumentNullException.ThrowIfNull(vm);
        _vms.Add(vm);
        return this;
    }

    /// <summary>Adds a VM with one user of weight 1 (the demonstration's case).</summary>
    public MigrationPipelineBuilder AddVm(string vmName, string vantagePoint) =>
        AddVm(new VmDefinition(vmName, [new VmUser(vantagePoint)]));

    /// <summary>The policy. The default is a <see cref="LowestLatencyPolicy"/> with default options.</summary>
    public MigrationPipelineBuilder WithPolicy(IMigrationPolicy policy)
    {
        ThrowIfBuilt();
        _policy = policy ?? throw new ArgumentNullException(nameof(policy));
        return this;
    }

    /// <summary>
    /// The clock of the whole pipeline: sample ages, cooldowns and outcome times read it, and the Rx
    /// scheduler of its windows, refreshes and timeouts is derived from it
    /// (<see cref="Scheduling.TimeProviderScheduler"/>), so a fake provider (for example
    /// <c>FakeTimeProvider</c>) runs the whole loop in virtual time. The default is <see cref="TimeProvider.System"/>.
    /// </summary>
    public MigrationPipelineBuilder WithTimeProvider(TimeProvider timeProvider)
    {
        ThrowIfBuilt();
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        return this;
    }

    /// <summary>
    /// The placement rules the pipeline starts with (drained hosts, pinned VMs, affinity and
    /// anti-affinity groups, excluded hosts); change them later through <see cref="IPlacementControl"/>.
    /// Validated in <see cref="Build"/> against the hosts and VMs. The default is <see cref="PlacementRules.Empty"/>.
    /// </summary>
    public MigrationPipelineBuilder WithRules(PlacementRules rules)
    {
        ThrowIfBuilt();
        _rules = rules ?? throw new ArgumentNullException(nameof(rules));
        return this;
    }

    /// <summary>
    /// Asked by the executor right before each migration starts (automatic moves and operator moves
    /// alike), typically <see cref="Election.LeadershipStartGate"/>: a refusal skips the move
    /// (<see cref="MigrationOutcomeKind.Skipped"/>; nothing started, no host backed off). The default is none.
    /// </summary>
    public MigrationPipelineBuilder WithStartGate(IMigrationStartGate startGate)
    {
        ThrowIfBuilt();
        _startGate = startGate ?? throw new ArgumentNullException(nameof(startGate));
        return this;
    }

    /// <summary>
    /// Records everything the pipeline's decisions depend on, and the decisions, in
    /// <paramref name="journal"/> (not owned: dispose it after the pipeline), so that
    /// <see cref="PipelineJournal.Replay"/> can show the same inputs give the same decisions. The default is none.
    /// </summary>
    public MigrationPipelineBuilder WithJournal(PipelineJournal journal)
    {
        ThrowIfBuilt();
        _journal = journal ?? throw new ArgumentNullException(nameof(journal));
        return this;
    }

    /// <summary>Where to log. The default logs nothing.</summary>
    public MigrationPipelineBuilder WithLoggerFactory(ILoggerFactory loggerFactory)
    {
        ThrowIfBuilt();
        _loggers = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        return this;
    }

    /// <summary>
    /// Replaces the options with a copy of <paramref name="options"/> (for example bound from
    /// configuration); later <see cref="Configure"/> calls change the copy. Validated in <see cref="Build"/>.
    /// </summary>
    public MigrationPipelineBuilder WithOptions(MigrationPipelineOptions options)
    {
        ThrowIfBuilt();
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Clone();
        return this;
    }

    /// <summary>Changes the options (the callbacks run in the order given; the result is validated once, in <see cref="Build"/>).</summary>
    public MigrationPipelineBuilder Configure(Action<MigrationPipelineOptions> configure)
    {
        ThrowIfBuilt();
        ArgumentNullException.ThrowIfNull(configure);
        configure(_options);
        return this;
    }

    /// <summary>Validates everything and builds the pipeline (not started: call <see cref="MigrationPipeline.StartAsync"/>).</summary>
    /// <exception cref="InvalidOperationException">The builder already built, or an input is missing.</exception>
    /// <exception cref="OptionsValidationException">An option is out of its range, or the placement rules are invalid or name unknown hosts or VMs (every error is listed with its path).</exception>
    /// <exception cref="ArgumentException">A probe target stands for two hosts, or a VM has no users.</exception>
    public MigrationPipeline Build()
    {
        ThrowIfBuilt();

        if (_samples is null)
        {
            throw new InvalidOperationException("No latency samples: call WithSamples.");
        }

        if (_hosts.Count == 0)
        {
            throw new InvalidOperationException("No hosts: call AddHost at least once.");
        }

        if (_vms.Count == 0)
        {
            throw new InvalidOperationException("No VMs: call AddVm at least once.");
        }

        var options = _options.Clone();
        OptionsErrors.ValidateAndThrow(options);

        var targets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var h in _hosts)
        {
            if (!targets.Add(h.ProbeTarget))
            {
                throw new ArgumentException($"The probe target '{h.ProbeTarget}' stands for more than one host.");
            }
        }

        foreach (var vm in _vms)
        {
            if (vm.Users is null || vm.Users.Count == 0)
            {
                throw new ArgumentException($"VM '{vm.Name}' has no users.");
            }
        }

        _rules.ValidateAndThrow([.. _hosts.Select(h => h.Host.Name)], [.. _vms.Select(v => v.Name)]);
        _built = true;
        var loggers = _loggers ?? NullLoggerFactory.Instance;
        return new MigrationPipeline(
            _samples,
            [.. _hosts],
            [.. _vms],
            _policy ?? new LowestLatencyPolicy(),
            _time ?? TimeProvider.System,
            options,
            loggers,
            [.. _owned, .. _hosts.Where(h => !h.LeaveOpen).Select(h => (IAsyncDisposable)h.Host)],
            _rules,
            _startGate,
            _journal);
    }

    private void ThrowIfBuilt()
    {
        if (_built)
        {
            throw new InvalidOperationException("This builder already built a pipeline; use a new builder.");
        }
    }
}

/// <summary>A host as the pipeline knows it.</summary>
internal sealed record PipelineHost(IHypervisorHost Host, string ProbeTarget, Uri? MigrationUri, bool LeaveOpen);
