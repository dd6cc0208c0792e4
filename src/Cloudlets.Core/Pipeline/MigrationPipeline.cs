using System.Diagnostics;
using System.Reactive.Concurrency;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Probing;
using Cloudlets.Core.Scheduling;
using Cloudlets.Core.Telemetry;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Core.Pipeline;

/// <summary>
/// The control loop: latency samples in, one explained <see cref="MigrationDecision"/> per VM per
/// window out — including moves held back and why. In <see cref="PipelineMode.Automatic"/> mode a
/// <see cref="MigrationExecutor"/> runs the moves and <see cref="Outcomes"/> reports them.
/// Placement and capacity are read from the hosts and refreshed; a host that does not answer leaves
/// the candidates and returns when it answers again. Built by <see cref="MigrationPipelineBuilder"/>.
/// </summary>
public sealed partial class MigrationPipeline : IPlacementControl, IAsyncDisposable
{
    private readonly IObservable<LatencySample> _samples;
    private readonly PipelineHost[] _hosts;
    private readonly HostState[] _hostStates;
    private readonly VmDefinition[] _vms;
    private readonly IMigrationPolicy _policy;
    private readonly IScheduler _scheduler;
    private readonly TimeProvider _time;
    private readonly MigrationPipelineOptions _options;
    private readonly ILogger _logger;
    private readonly FleetSnapshot _snapshot;
    private readonly DecisionBuffer _buffer;
    private readonly LatencyWindows _windows;
    private readonly DateTimeOffset?[] _lastMove;
    private readonly double[] _measuredDirtyRate; // per VM, bytes/s; NaN until a migration of it measured it
    private readonly MigrationExecutor? _executor;
    private readonly PipelineJournal? _journal;
    private readonly ISubject<MigrationDecision> _decisions = Subject.Synchronize(new Subject<MigrationDecision>());
    private readonly CompositeDisposable _subscriptions = [];
    private readonly CompositeDisposable _loop = [];
    private readonly IAsyncDisposable[] _owned;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly Lock _evaluation = new(); // one evaluation at a time: windows, and those a rule change triggers
    private readonly Dictionary<string, (string Source, string? Destination, DateTimeOffset Since)> _startedElsewhere = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _ownMigrationEndedAt = new(StringComparer.Ordinal);
    private readonly Dictionary<string, VmCopies> _copies = new(StringComparer.Ordinal); // scratch of IndexCopies
    private int _refreshing;
    private int _refreshRequested;
    private bool _started;
    private bool _stopped;
    private bool _disposed;

    internal MigrationPipeline(
        IObservable<LatencySample> samples,
        PipelineHost[] hosts,
        VmDefinition[] vms,
        IMigrationPolicy policy,
        TimeProvider time,
        MigrationPipelineOptions options,
        ILoggerFactory loggers,
        IAsyncDisposable[] owned,
        PlacementRules rules,
        IMigrationStartGate? startGate,
        PipelineJournal? journal)
    {
        _owned = owned;
        _journal = journal;
        _samples = samples;
        _hosts = hosts;
        _vms = vms;
        _policy = policy;
        _time = time;
        _scheduler = new TimeProviderScheduler(time);
        _options = options;
        _logger = loggers.CreateLogger(LoggerCategory);
        _snapshot = new FleetSnapshot([.. hosts.Select(h => h.Host.Name)], vms);
        _buffer = new DecisionBuffer(_snapshot, recordCandidates: true);
        _windows = new LatencyWindows(options.SampleWindow);
        _lastMove = new DateTimeOffset?[vms.Length];
        _measuredDirtyRate = new double[vms.Length];
        Array.Fill(_measuredDirtyRate, double.NaN);
        _rules = rules;
        _snapshot.SetRules(rules);
        _hostStates = new HostState[hosts.Length];
        for (var i = 0; i < hosts.Length; i++)
        {
            _hostStates[i] = new HostState();
        }

        if (options.Mode == PipelineMode.Automatic)
        {
            _executor = new MigrationExecutor(options.Executor, time, loggers, CheckImprovementAsync, startGate);
            _subscriptions.Add(_executor.Outcomes.Subscribe(OnOutcome));
        }
    }

    /// <summary>The logger category of the pipeline.</summary>
    public const string LoggerCategory = "Cloudlets.Core.Pipeline";

    /// <summary>Advisory or automatic.</summary>
    public PipelineMode Mode => _options.Mode;

    /// <summary>
    /// Every evaluation's outcome, one decision per VM per window (hot: subscribe before
    /// <see cref="StartAsync"/> to see the first window). Completes when the pipeline is disposed.
    /// </summary>
    public IObservable<MigrationDecision> Decisions => _decisions.AsObservable();

    /// <summary>The executor's migration outcomes (automatic mode); empty in advisory mode. Completes when the pipeline is disposed.</summary>
    public IObservable<MigrationOutcome> Outcomes => _executor?.Outcomes ?? Observable.Empty<MigrationOutcome>();

    /// <summary>
    /// Starts the loop: subscribes the samples and every host's lifecycle events, reads the hosts at
    /// once and then periodically (and again whenever a host reports a VM event, so a VM moved
    /// outside the pipeline is seen at once), and evaluates every window.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already started, or stopped.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before it started.</exception>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_started)
            {
                throw new InvalidOperationException(_stopped ? "The pipeline was stopped; build a new one." : "The pipeline is already started.");
            }

            _started = true;
            _journal?.Start(_time.GetUtcNow(), _options.SampleWindow, [.. _hosts.Select(h => (h.Host.Name, h.ProbeTarget))], _vms, _rules);
        }

        _loop.Add(_samples.Subscribe(OnSample, ex => DecisionsLog.SampleStreamFailed(_logger, ex)));
        foreach (var h in _hosts)
        {
            var name = h.Host.Name;
            _loop.Add(h.Host.Events.Subscribe(e => OnHostEvent(name, e), ex => DecisionsLog.HostEventsFailed(_logger, name, ex)));
        }

        _loop.Add(_scheduler.Schedule(KickRefresh));
        _loop.Add(Observable.Interval(_options.PlacementRefreshInterval, _scheduler).Subscribe(_ => KickRefresh()));
        _loop.Add(Observable.Interval(_options.EvaluationInterval, _scheduler).Subscribe(_ => Evaluate()));
        DecisionsLog.PipelineStarted(_logger, _options.Mode, _vms.Length, _hosts.Length, _options.EvaluationInterval);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops gracefully: no more windows, so no new move starts; running migrations may finish for
    /// up to <see cref="MigrationPipelineOptions.StopTimeout"/> (on the pipeline's clock), and those
    /// still running then — or when <paramref name="cancellationToken"/> is cancelled — are aborted,
    /// each VM staying on its source. Returns when no migration runs; their outcomes are published.
    /// The pipeline cannot start again; <see cref="DisposeAsync"/> then releases what it owns. Idempotent.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_started || _stopped || _disposed)
            {
                return;
            }

            _stopped = true;
        }

        DecisionsLog.PipelineStopping(_logger, _options.StopTimeout);
        _loop.Dispose();
        if (_executor is not null)
        {
            await _executor.StopAsync(_options.StopTimeout, cancellationToken).ConfigureAwait(false);
        }

        DecisionsLog.PipelineStopped(_logger);
    }

    /// <summary>
    /// Where the pipeline last saw the VM running (from its last read of the hosts, or from the
    /// outcome of its own migration), or <see langword="null"/> when it runs on none of them or on two.
    /// </summary>
    public string? PlacementOf(string vmName)
    {
        ArgumentNullException.ThrowIfNull(vmName);
        lock (_gate)
        {
            return RunningOn(vmName, out _) is var h and >= 0 ? _hosts[h].Host.Name : null;
        }
    }

    /// <summary>The index of the one host the VM runs on, -1 for none, -2 for more than one; called under the lock.</summary>
    private int RunningOn(string vmName, out VmInfo? info)
    {
        var placed = -1;
        info = null;
        for (var h = 0; h < _hosts.Length; h++)
        {
            foreach (var vm in _hostStates[h].Vms)
            {
                if (vm.State is VmState.Running or VmState.Blocked && string.Equals(vm.Name, vmName, StringComparison.Ordinal))
                {
                    // Running on two hosts at once is not a placement to act on.
                    placed = placed == -1 ? h : -2;
                    info = vm;
                }
            }
        }

        return placed;
    }

    /// <summary>
    /// Stops at once: aborts running migrations (each VM stays on its source), completes the
    /// streams, then disposes what the pipeline owns (the hosts it was given unless told to leave
    /// them open, and what was handed to <see cref="MigrationPipelineBuilder.Owns"/>). Call
    /// <see cref="StopAsync"/> first to let migrations finish.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _loop.Dispose();
        _subscriptions.Dispose();
        if (_executor is not null)
        {
            await _executor.DisposeAsync().ConfigureAwait(false);
        }

        _decisions.OnCompleted();
        _control.OnCompleted();
        foreach (var owned in _owned)
        {
            try
            {
                await owned.DisposeAsync().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // One failed release must not keep the others (hosts, probers) open.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                DecisionsLog.OwnedDisposeFailed(_logger, owned is IHypervisorHost host ? "host " + host.Name : owned.GetType().Name, ex);
            }
        }

        _stopping.Dispose();
    }

    private void OnHostEvent(string host, HostEvent e)
    {
        if (e is VmLifecycleEvent or HostConnectionEvent { State: HostConnectionState.Connected })
        {
            DecisionsLog.HostEventSeen(_logger, host, e);
            KickRefresh();
        }
    }

    private void OnSample(LatencySample sample)
    {
        lock (_gate)
        {
            _windows.Add(sample);
            _journal?.Sample(sample);
        }
    }

    private void KickRefresh()
    {
        // One refresh at a time, and at most one more asked for while it runs: a host that hangs
        // must not pile refreshes up, and an event during a refresh must not be lost (that refresh
        // may have read the hosts before the change).
        Volatile.Write(ref _refreshRequested, 1);
        if (Interlocked.CompareExchange(ref _refreshing, 1, 0) == 1)
        {
            return;
        }

        _ = RefreshAllAsync();
    }

    private async Task RefreshAllAsync()
    {
        try
        {
            while (Interlocked.Exchange(ref _refreshRequested, 0) == 1 && !_stopping.IsCancellationRequested)
            {
                await Task.WhenAll(_hosts.Select((h, i) => RefreshHostAsync(i))).ConfigureAwait(false);
            }
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }

        // Asked for between the last check and the release above.
        if (Volatile.Read(ref _refreshRequested) == 1 && !_stopping.IsCancellationRequested)
        {
            KickRefresh();
        }
    }

    private async Task RefreshHostAsync(int index)
    {
        var host = _hosts[index].Host;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        try
        {
            var read = ReadAsync(host, cts.Token);
            var timeout = SchedulerDelay.Delay(_scheduler, _options.HostTimeout, cts.Token);
            if (await Task.WhenAny(read, timeout).ConfigureAwait(false) != read)
            {
                cts.Cancel(); // synchronously: the rest stays on this thread (virtual time in tests)
                _ = read.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                throw new HypervisorException(HypervisorErrorKind.Timeout, $"Host '{host.Name}' did not answer within {_options.HostTimeout}.");
            }

            var (info, vms) = await read.ConfigureAwait(false);
            cts.Cancel(); // synchronously: the rest stays on this thread (virtual time in tests)
            bool cameBack;
            lock (_gate)
            {
                var state = _hostStates[index];
                cameBack = !state.Answering && state.EverFailed;
                state.Answering = true;
                state.Info = info;
                state.Vms = vms;
            }

            if (cameBack)
            {
                DecisionsLog.HostAvailable(_logger, host.Name);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutting down.
        }
#pragma warning disable CA1031 // A host that fails to answer is data (it leaves the candidates), not a crash.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            bool wentAway;
            lock (_gate)
            {
                var state = _hostStates[index];
                wentAway = state.Answering || !state.EverFailed;
                state.Answering = false;
                state.EverFailed = true;
            }

            if (wentAway)
            {
                DecisionsLog.HostUnavailable(_logger, host.Name, ex);
            }
        }
    }

    private static async Task<(HostInfo Info, IReadOnlyList<VmInfo> Vms)> ReadAsync(IHypervisorHost host, CancellationToken cancellationToken)
    {
        var info = await host.GetInfoAsync(cancellationToken).ConfigureAwait(false);
        var vms = await host.ListVmsAsync(cancellationToken).ConfigureAwait(false);
        return (info, vms);
    }

    private void Evaluate()
    {
        lock (_evaluation)
        {
            EvaluateOnce();
        }
    }

    private void EvaluateOnce()
    {
        using var activity = CloudletsTelemetry.ActivitySource.StartActivity("cloudlets.evaluate");
        MigrationDecision[] decisions;
        try
        {
            List<MigrationRequest>? moves = null;
            List<MigrationOutcome>? endedElsewhere;
            lock (_gate)
            {
                if (_disposed || _stopped)
                {
                    return;
                }

                endedElsewhere = TrackStartedElsewhere();
                Fill();
                _journal?.Inputs(_snapshot);
                _policy.Evaluate(_snapshot, _buffer);
                if (_executor is not null && _buffer.MoveCount > 0)
                {
                    moves = [];
                    for (var vm = 0; vm < _vms.Length; vm++)
                    {
                        if (_buffer.KindOf(vm) == DecisionKind.Move)
                        {
                            var target = _hosts[_buffer.TargetOf(vm)];
                            var source = _hosts[_snapshot.PlacementOf(vm)].Host;
                            var before = _policy.Score(_snapshot, vm, _snapshot.PlacementOf(vm));
                            moves.Add(new MigrationRequest(_snapshot.VmName(vm), source, target.Host, null, double.IsFinite(before) ? before : null, target.MigrationUri));
                        }
                    }
                }
            }

            foreach (var outcome in endedElsewhere ?? [])
            {
                DecisionsLog.MigrationElsewhereEnded(_logger, outcome.VmName, outcome.Source, outcome.Destination, outcome.Kind);
                _executor?.PublishStartedElsewhere(outcome);
            }

            // The executor is called outside the lock: a migration call runs synchronously up to its first await.
            List<(int Vm, string Why)>? held = null;
            foreach (var move in moves ?? [])
            {
                // An affinity group moves behind its leader: when the leader's move is held back, so are its followers'.
                var index = _snapshot.IndexOfVm(move.VmName);
                var leader = _snapshot.AffinityLeaderOf(index);
                if (leader >= 0 && leader != index && held?.Exists(x => x.Vm == leader) == true)
                {
                    held.Add((index, $"the move of its affinity group's leader '{_snapshot.VmName(leader)}' is held back."));
                    continue;
                }

                if (_executor!.TryStart(move, out var why) is null)
                {
                    (held ??= []).Add((index, why!));
                }
            }

            lock (_gate)
            {
                foreach (var (vm, _) in held ?? [])
                {
                    _buffer.HoldBack(vm, DecisionReason.MigrationLimitReached);
                }

                _snapshot.AdvanceConfirmations(_buffer);
                decisions = new MigrationDecision[_vms.Length];
                for (var vm = 0; vm < decisions.Length; vm++)
                {
                    decisions[vm] = _buffer.ToDecision(_snapshot, vm);
                }

                foreach (var (vm, why) in held ?? [])
                {
                    decisions[vm] = decisions[vm] with { Explanation = decisions[vm].Explanation + " The executor said: " + why };
                }

                _journal?.Outputs(held, decisions);
            }
        }
#pragma warning disable CA1031 // One failed window must not end the loop; the next window tries again.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            DecisionsLog.EvaluationFailed(_logger, ex);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            return;
        }

        activity?.SetTag("cloudlets.decisions.moves", decisions.Count(d => d.IsMove));
        foreach (var d in decisions)
        {
            CloudletsTelemetry.Decisions.Add(
                1,
                new KeyValuePair<string, object?>(CloudletsTelemetry.Tags.DecisionKind, d.Kind.ToString()),
                new KeyValuePair<string, object?>(CloudletsTelemetry.Tags.DecisionReason, d.Reason.ToString()));
            if (d.IsMove)
            {
                DecisionsLog.MoveDecided(_logger, d.VmName, d.CurrentHost, d.TargetHost, d.Explanation);
            }
            else
            {
                DecisionsLog.Decision(_logger, d.VmName, d.Kind, d.Reason, d.Explanation);
            }

            _decisions.OnNext(d);
        }
    }

    /// <summary>
    /// Copies what is known into the snapshot: the latency statistics of the whole windows, or of the
    /// samples sent from <paramref name="samplesFrom"/> on. Called under the lock.
    /// </summary>
    private void Fill(DateTimeOffset? samplesFrom = null)
    {
        var now = _time.GetUtcNow();
        _snapshot.Now = now;
        for (var h = 0; h < _hosts.Length; h++)
        {
            var state = _hostStates[h];
            var host = _hosts[h].Host;
            var down = !state.Answering || state.Info is null || host.ConnectionState == HostConnectionState.Reconnecting;
            var availability = down ? HostAvailability.Down
                : _executor?.BackedOffUntil(host.Name) is not null ? HostAvailability.BackedOff
                : HostAvailability.Available;
            _snapshot.SetHost(h, availability, state.Info?.FreeMemoryBytes ?? 0, FreeVCpus(h));
            for (var p = 0; p < _snapshot.VantagePointCount; p++)
            {
                var summary = samplesFrom is { } from
                    ? _windows.Summarize(_snapshot.VantagePointName(p), _hosts[h].ProbeTarget, from, DateTimeOffset.MaxValue)
                    : _windows.Summarize(_snapshot.VantagePointName(p), _hosts[h].ProbeTarget);
                _snapshot.SetLatency(p, h, summary);
            }
        }

        for (var v = 0; v < _vms.Length; v++)
        {
            var name = _vms[v].Name;
            var placed = RunningOn(name, out var info);
            if (placed < 0 || info is null)
            {
                _snapshot.SetPlacement(v, -1, 0, 0);
            }
            else
            {
                _snapshot.SetPlacement(v, placed, info.MemoryBytes, info.VCpus, _measuredDirtyRate[v]);
            }

            var destination = _executor?.DestinationOf(name) is { } d ? _snapshot.IndexOfHost(d) : -1;
            var elsewhere = _startedElsewhere.TryGetValue(name, out var other);
            if (elsewhere)
            {
                destination = other.Destination is { } d2 ? _snapshot.IndexOfHost(d2) : -1;
            }

            _snapshot.SetMigrationHistory(v, _lastMove[v], (_executor?.IsMigrating(name) ?? false) || elsewhere, destination);
        }
    }

    /// <summary>
    /// Finds migrations under way that this instance did not start, so a new leader learns them before it
    /// decides: they count against the executor's limits, their VMs are not moved (the policy sees them in
    /// flight), and each one's outcome is returned when it ends. Two kinds of evidence, either one enough:
    /// the source's own job (<see cref="VmInfo.OutgoingMigration"/>: the hypervisor keeps it on the source,
    /// visible from any connection, from the first byte to the hand-over, whoever started it), and, for a
    /// host that cannot tell, placement (the VM running on one host with a paused copy on another: the
    /// destination's incoming domain, which libvirt keeps paused until the hand-over). It ended once no
    /// host reports its job and the VM runs on one host only again: on the destination (or, when that was
    /// never seen, any host but the source) it succeeded, on the source it did not. Followers track them
    /// too, so a takeover starts with them known. Called under the lock, before <see cref="Fill"/>.
    /// </summary>
    private List<MigrationOutcome>? TrackStartedElsewhere()
    {
        var now = _time.GetUtcNow();
        List<MigrationOutcome>? ended = null;
        var changed = false;
        IndexCopies();
        foreach (var vm in _vms)
        {
            var name = vm.Name;
            if (_executor?.IsMigrating(name) == true)
            {
                // This instance's own migration: the executor tracks it.
                changed |= _startedElsewhere.Remove(name);
                continue;
            }

            if (_ownMigrationEndedAt.TryGetValue(name, out var endedAt) && now - endedAt < _options.PlacementRefreshInterval + _options.HostTimeout)
            {
                // This instance's own migration just ended: a host read that began while it ran can still
                // land and show the VM on two hosts (or its job on the source). Such a read is over within a
                // refresh interval plus the host timeout; until then neither is a migration of someone else's.
                continue;
            }

            var copies = _copies.GetValueOrDefault(name, VmCopies.None);
            var (running, paused, migrating) = (copies.Running, copies.Paused, copies.Migrating);
            if (migrating >= 0 || (running >= 0 && paused >= 0))
            {
                // The source is the host whose job migrates the VM out (in post-copy it lists the VM paused,
                // the destination runs it); without a job, the host it runs on. The destination is the other copy.
                var source = migrating >= 0 ? migrating : running;
                var destination = paused >= 0 && paused != source ? paused : running >= 0 && running != source ? running : -1;
                var destinationName = destination >= 0 ? _hosts[destination].Host.Name : null;
                if (!_startedElsewhere.TryGetValue(name, out var known))
                {
                    changed = true;

                    // The source's job says how long it has run: its outcome then spans the whole migration.
                    var since = copies.Elapsed is { } elapsed && elapsed > TimeSpan.Zero ? now - elapsed : now;
                    _startedElsewhere[name] = (_hosts[source].Host.Name, destinationName, since);
                    DecisionsLog.MigrationFoundUnderWay(
                        _logger, name, _hosts[source].Host.Name, destinationName ?? "a host not seen yet", migrating >= 0 ? "the source's migration job" : "a paused copy on the destination");
                }
                else if (known.Destination is null && destinationName is not null)
                {
                    // The destination's incoming copy was seen after the source's job: it now counts on that host too.
                    changed = true;
                    _startedElsewhere[name] = known with { Destination = destinationName };
                }

                continue;
            }

            // Ended once no job reports it and the VM runs on one host only again (while none or two run, it is not over yet).
            if (running >= 0 && _startedElsewhere.Remove(name, out var m))
            {
                changed = true;
                var endedOn = _hosts[running].Host.Name;
                var succeeded = m.Destination is { } to ? endedOn == to : endedOn != m.Source;
                var destinationName = m.Destination ?? (succeeded ? endedOn : string.Empty);
                (ended ??= []).Add(new MigrationOutcome(
                    name, m.Source, destinationName, succeeded ? MigrationOutcomeKind.Succeeded : MigrationOutcomeKind.Failed, m.Since, now,
                    succeeded ? new MigrationResult(name, m.Source, destinationName, now - m.Since, null, null) : null,
                    succeeded ? null : new InvalidOperationException($"The migration of VM '{name}' from '{m.Source}' to {(m.Destination is null ? "a host not seen" : $"'{m.Destination}'")}, started by another instance, ended with the VM on '{endedOn}'."),
                    MigrationAbortCause.None,
                    ImprovementCheck.NotChecked) { StartedElsewhere = true });
            }
        }

        if (changed)
        {
            _executor?.SetStartedElsewhere(_startedElsewhere.ToDictionary(kv => kv.Key, kv => (kv.Value.Source, kv.Value.Destination), StringComparer.Ordinal));
        }

        return ended;
    }

    /// <summary>
    /// Where every VM listed by the hosts has its copies, in one pass over the hosts' lists (not one per VM):
    /// the host it runs on (-1 none, -2 several, as <see cref="RunningOn"/> says), the one host that lists
    /// it paused (-1 none, -3 several: no single destination), and the one host whose job migrates it out
    /// (-1 none, -3 several: no single migration to follow), with how long that job has run; called under the lock.
    /// </summary>
    private void IndexCopies()
    {
        _copies.Clear();
        for (var h = 0; h < _hosts.Length; h++)
        {
            foreach (var vm in _hostStates[h].Vms)
            {
                var running = vm.State is VmState.Running or VmState.Blocked;
                if (!running && vm.State != VmState.Paused)
                {
                    continue;
                }

                var c = _copies.GetValueOrDefault(vm.Name, VmCopies.None);
                c = running ? c with { Running = c.Running == -1 ? h : -2 } : c with { Paused = c.Paused == -1 ? h : -3 };
                if (vm.OutgoingMigration is { } job)
                {
                    // Two sources migrating one VM out is no single migration to follow: placement decides then.
                    c = c.Migrating == -1 ? c with { Migrating = h, Elapsed = job.Elapsed } : c with { Migrating = -3, Elapsed = null };
                }

                _copies[vm.Name] = c;
            }
        }
    }

    /// <summary>A VM's copies on the hosts, as <see cref="IndexCopies"/> found them.</summary>
    private readonly record struct VmCopies(int Running, int Paused, int Migrating, TimeSpan? Elapsed)
    {
        public static VmCopies None => new(-1, -1, -1, null);
    }

    /// <summary>The vCPUs a host can still give to VMs (its CPUs times the overcommit, minus its VMs'); called under the lock.</summary>
    private int FreeVCpus(int host)
    {
        var state = _hostStates[host];
        var used = 0;
        foreach (var vm in state.Vms)
        {
            if (vm.State is VmState.Running or VmState.Blocked or VmState.Paused)
            {
                used += vm.VCpus;
            }
        }

        return (state.Info is null ? 0 : (int)Math.Floor(state.Info.Cpus * _options.VCpuOvercommit)) - used;
    }

    private void OnOutcome(MigrationOutcome outcome)
    {
        lock (_gate)
        {
            if (!outcome.StartedElsewhere && outcome.Kind != MigrationOutcomeKind.Skipped)
            {
                // A skipped start ran nothing on the hosts (a follower's fenced move is one): only a
                // migration that ran can leave a stale read behind.
                _ownMigrationEndedAt[outcome.VmName] = _time.GetUtcNow();
            }

            var vm = _snapshot.IndexOfVm(outcome.VmName);
            Remember(vm, outcome);
            if (vm < 0 || outcome.Kind != MigrationOutcomeKind.Succeeded)
            {
                return;
            }

            _lastMove[vm] = outcome.FinishedAt;

            // Until the next refresh, the VM is where the migration put it.
            var source = Array.FindIndex(_hosts, h => h.Host.Name == outcome.Source);
            var destination = Array.FindIndex(_hosts, h => h.Host.Name == outcome.Destination);
            if (source >= 0 && destination >= 0)
            {
                var moved = _hostStates[source].Vms.FirstOrDefault(v => v.Name == outcome.VmName);
                _hostStates[source].Vms = [.. _hostStates[source].Vms.Where(v => v.Name != outcome.VmName)];
                if (moved is not null)
                {
                    _hostStates[destination].Vms = [.. _hostStates[destination].Vms.Where(v => v.Name != outcome.VmName), moved with { State = VmState.Running }];
                }
            }
        }

        KickRefresh();
    }

    /// <summary>
    /// Keeps what a migration measured for the policy's cost estimate: the transfer rate for its pair of hosts (one
    /// direction: the paths may differ) and the VM's dirty rate. The last measurement wins: a path or a workload
    /// changes, and the latest migration is the best guess of the next. Called under the lock.
    /// </summary>
    private void Remember(int vm, MigrationOutcome outcome)
    {
        if (outcome.Measured is not { } measured || outcome.StartedElsewhere)
        {
            return;
        }

        var source = _snapshot.IndexOfHost(outcome.Source);
        var destination = _snapshot.IndexOfHost(outcome.Destination);
        if (measured.BandwidthBytesPerSecond is { } bandwidth && source >= 0 && destination >= 0)
        {
            // Straight into the snapshot: nothing else writes its rates, so an evaluation need not copy hosts² cells.
            _snapshot.SetBandwidth(source, destination, bandwidth);
        }

        if (measured.DirtyRateBytesPerSecond is { } dirty && vm >= 0)
        {
            _measuredDirtyRate[vm] = dirty;
        }
    }

    /// <summary>
    /// After a move: the policy's own score of the VM on its destination
    /// (<see cref="IMigrationPolicy.Score"/>), computed from samples sent after the move completed
    /// only, against its score on the source when the move was started
    /// (<see cref="MigrationRequest.ScoreBeforeMs"/>). Lower is better.
    /// </summary>
    private ValueTask<ImprovementCheck> CheckImprovementAsync(ImprovementCheckArguments args)
    {
        lock (_gate)
        {
            var vm = _snapshot.IndexOfVm(args.Request.VmName);
            var destination = _snapshot.IndexOfHost(args.Request.Destination.Name);
            if (vm < 0 || destination < 0 || _disposed)
            {
                return ValueTask.FromResult(ImprovementCheck.NotChecked);
            }

            // The next window fills the snapshot again from the whole windows.
            Fill(samplesFrom: args.CompletedAt);
            var after = _policy.Score(_snapshot, vm, destination);
            var before = args.Request.ScoreBeforeMs;
            if (double.IsNaN(after) || before is null)
            {
                return ValueTask.FromResult(new ImprovementCheck(ImprovementVerdict.NoData, before, double.IsNaN(after) ? null : after));
            }

            return ValueTask.FromResult(new ImprovementCheck(after < before ? ImprovementVerdict.Improved : ImprovementVerdict.NotImproved, before, after));
        }
    }

    private sealed class HostState
    {
        public bool Answering { get; set; }
        public bool EverFailed { get; set; }
        public HostInfo? Info { get; set; }
        public IReadOnlyList<VmInfo> Vms { get; set; } = [];
    }
}
