using Cloudlets.Core.Decisions;
using Cloudlets.Core.Election;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;

namespace Cloudlets.Controller.Hosting;

/// <summary>Where the controller is in its life.</summary>
public enum ControllerPhase
{
    /// <summary>Not started yet (connecting to hosts, building the pipeline).</summary>
    Starting,
    /// <summary>The pipeline runs.</summary>
    Running,
    /// <summary>Stopping: no new move starts; migrations under way finish (bounded).</summary>
    Stopping,
    /// <summary>Stopped.</summary>
    Stopped,
    /// <summary>Failed (a host could not be reached at start, or the samples stopped with an error).</summary>
    Failed,
}

/// <summary>The exit codes of <c>cloudlets-controller</c>.</summary>
public static class ControllerExitCodes
{
    /// <summary>Stopped cleanly (SIGTERM, SIGINT); every migration under way at the stop finished.</summary>
    public const int Success = 0;

    /// <summary>The controller failed: a host could not be reached at start, the samples failed, the HTTP endpoint could not listen, or an unexpected error.</summary>
    public const int Failed = 1;

    /// <summary>Bad command line or configuration (every error is printed with its path); nothing was connected.</summary>
    public const int BadConfiguration = 2;

    /// <summary>Stopped, but a migration still running when the stop's bound (Pipeline.StopTimeout) ran out was aborted (the VM stays on its source).</summary>
    public const int MigrationAbortedAtStop = 3;
}

/// <summary>A latency sample as last seen from one vantage point to one target.</summary>
/// <param name="VantagePoint">The vantage point.</param>
/// <param name="Target">The probe target name (<c>host:NAME</c> or <c>vm:NAME</c>).</param>
/// <param name="ReceivedAt">When the controller received it.</param>
/// <param name="Status">The probe's status.</param>
/// <param name="RoundTripTime">The round trip, or <see langword="null"/> when lost.</param>
public sealed record LastSample(string VantagePoint, string Target, DateTimeOffset ReceivedAt, ProbeStatus Status, TimeSpan? RoundTripTime);

/// <summary>
/// The controller's live state, shared by its health checks, metrics and operator API: the phase, the
/// hosts, the last sample per vantage point and target, and the latest decision per VM. Thread-safe.
/// </summary>
public sealed class ControllerState
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string VantagePoint, string Target), LastSample> _samples = [];
    private readonly Dictionary<string, MigrationDecision> _decisions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MigrationOutcome> _outcomes = new(StringComparer.Ordinal);
    private IReadOnlyList<IHypervisorHost> _hosts = [];
    private ControllerPhase _phase = ControllerPhase.Starting;
    private int _exitCode = ControllerExitCodes.Success;
    private string? _failure;
    private LeadershipState? _leadership;

    /// <summary>Where the controller is in its life.</summary>
    public ControllerPhase Phase
    {
        get
        {
            lock (_gate)
            {
                return _phase;
            }
        }
    }

    /// <summary>Why it failed, when <see cref="Phase"/> is <see cref="ControllerPhase.Failed"/> or a failure was recorded.</summary>
    public string? Failure
    {
        get
        {
            lock (_gate)
            {
                return _failure;
            }
        }
    }

    /// <summary>The exit code the process should end with (see <see cref="ControllerExitCodes"/>).</summary>
    public int ExitCode
    {
        get
        {
            lock (_gate)
            {
                return _exitCode;
            }
        }
    }

    /// <summary>The pipeline's mode.</summary>
    public PipelineMode Mode { get; internal set; }

    /// <summary>The connected hosts (empty until started).</summary>
    public IReadOnlyList<IHypervisorHost> Hosts
    {
        get
        {
            lock (_gate)
            {
                return _hosts;
            }
        }
    }

    /// <summary>
    /// This controller's role in its region's election (leader or follower, lease id, term, who leads),
    /// or <see langword="null"/> when no election is configured (the controller acts alone).
    /// </summary>
    public LeadershipState? Leadership
    {
        get
        {
            lock (_gate)
            {
                return _leadership;
            }
        }
    }

    /// <summary>The executor's start gate (fencing and the <c>migration.started</c> record), or <see langword="null"/> before the pipeline is built.</summary>
    internal ControllerStartGate? StartGate { get; set; }

    /// <summary>The running pipeline, or <see langword="null"/> before it is built.</summary>
    public MigrationPipeline? Pipeline { get; internal set; }

    /// <summary>The last sample of every vantage point and target.</summary>
    public IReadOnlyList<LastSample> LastSamples
    {
        get
        {
            lock (_gate)
            {
                return [.. _samples.Values];
            }
        }
    }

    /// <summary>The latest decision of every VM that has one.</summary>
    public IReadOnlyList<MigrationDecision> LatestDecisions
    {
        get
        {
            lock (_gate)
            {
                return [.. _decisions.Values];
            }
        }
    }

    /// <summary>The latest decision of <paramref name="vmName"/>, or <see langword="null"/>.</summary>
    public MigrationDecision? LatestDecision(string vmName)
    {
        lock (_gate)
        {
            return _decisions.GetValueOrDefault(vmName);
        }
    }

    /// <summary>The outcome of the last migration of <paramref name="vmName"/>, or <see langword="null"/>.</summary>
    public MigrationOutcome? LastOutcome(string vmName)
    {
        lock (_gate)
        {
            return _outcomes.GetValueOrDefault(vmName);
        }
    }

    internal void SetHosts(IReadOnlyList<IHypervisorHost> hosts)
    {
        lock (_gate)
        {
            _hosts = hosts;
        }
    }

    /// <summary>Records the election's latest state; returns the previous one (or <see langword="null"/>).</summary>
    internal LeadershipState? SetLeadership(LeadershipState state)
    {
        lock (_gate)
        {
            var before = _leadership;
            _leadership = state;
            return before;
        }
    }

    internal void SetPhase(ControllerPhase phase)
    {
        lock (_gate)
        {
            if (_phase != ControllerPhase.Failed)
            {
                _phase = phase;
            }
        }
    }

    /// <summary>Records a failure: the phase becomes Failed and the exit code <see cref="ControllerExitCodes.Failed"/>.</summary>
    internal void Fail(string why)
    {
        lock (_gate)
        {
            _phase = ControllerPhase.Failed;
            _failure ??= why;
            _exitCode = ControllerExitCodes.Failed;
        }
    }

    /// <summary>Raises the exit code to <paramref name="code"/> unless a worse one is already set (Failed wins).</summary>
    internal void SetExitCode(int code)
    {
        lock (_gate)
        {
            if (_exitCode == ControllerExitCodes.Success)
            {
                _exitCode = code;
            }
        }
    }

    internal void OnSample(LatencySample sample, DateTimeOffset receivedAt)
    {
        lock (_gate)
        {
            _samples[(sample.VantagePoint, sample.Target.Name)] = new LastSample(sample.VantagePoint, sample.Target.Name, receivedAt, sample.Status, sample.RoundTripTime);
        }
    }

    /// <summary>Records a decision; returns the VM's previous decision (or <see langword="null"/>).</summary>
    internal MigrationDecision? OnDecision(MigrationDecision decision)
    {
        lock (_gate)
        {
            var before = _decisions.GetValueOrDefault(decision.VmName);
            _decisions[decision.VmName] = decision;
            return before;
        }
    }

    internal void OnOutcome(MigrationOutcome outcome)
    {
        lock (_gate)
        {
            _outcomes[outcome.VmName] = outcome;
        }
    }
}
