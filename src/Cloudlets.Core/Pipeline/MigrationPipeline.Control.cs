using System.Globalization;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Telemetry;

namespace Cloudlets.Core.Pipeline;

// The operator's seam (IPlacementControl): placement rules and moves ordered now.
public sealed partial class MigrationPipeline
{
    private readonly ISubject<PlacementControlEvent> _control = Subject.Synchronize(new Subject<PlacementControlEvent>());
    private readonly Lock _controlOrder = new(); // a change and its event, in one order for every observer
    private PlacementRules _rules;

    /// <inheritdoc />
    public PlacementRules Rules
    {
        get
        {
            lock (_gate)
            {
                return _rules;
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Observers run on the caller's thread, in order; they must not block.</remarks>
    public IObservable<PlacementControlEvent> ControlEvents => _control.AsObservable();

    /// <inheritdoc />
    public PlacementChange DrainHost(string host, string? requestedBy = null) =>
        Change(PlacementAction.DrainHost, RequireHost(host), requestedBy, r => r.WithDrained(host, true));

    /// <inheritdoc />
    public PlacementChange UndrainHost(string host, string? requestedBy = null) =>
        Change(PlacementAction.UndrainHost, RequireHost(host), requestedBy, r => r.WithDrained(host, false));

    /// <inheritdoc />
    public PlacementChange PinVm(string vm, string? requestedBy = null) =>
        Change(PlacementAction.PinVm, RequireVm(vm), requestedBy, r => r.WithPinned(vm, true));

    /// <inheritdoc />
    public PlacementChange UnpinVm(string vm, string? requestedBy = null) =>
        Change(PlacementAction.UnpinVm, RequireVm(vm), requestedBy, r => r.WithPinned(vm, false));

    /// <inheritdoc />
    public PlacementChange ReplaceRules(PlacementRules rules, string? requestedBy = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        rules.ValidateAndThrow(HostNames, VmNames);
        return Change(PlacementAction.ReplaceRules, null, requestedBy, _ => rules);
    }

    /// <inheritdoc />
    public async Task<MoveNowResult> MoveNowAsync(string vm, string host, string? requestedBy = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(host);
        var result = Admit(vm, host);
        if (result.Refusal == MoveNowRefusal.None)
        {
            result = await StartMoveAsync(result, cancellationToken).ConfigureAwait(false);
        }

        PlacementRules rules;
        lock (_gate)
        {
            rules = _rules;
        }

        if (result.Started)
        {
            DecisionsLog.MoveNowStarted(_logger, vm, host, requestedBy);
        }
        else
        {
            DecisionsLog.MoveNowRefused(_logger, vm, host, requestedBy, result.Refusal, result.Explanation);
        }

        lock (_controlOrder)
        {
            _control.OnNext(new PlacementControlEvent(_time.GetUtcNow(), PlacementAction.MoveNow, vm, host, requestedBy, result.Started, result.Refusal, result.Explanation, rules));
        }

        return result;
    }

    private string[] HostNames => [.. _hosts.Select(h => h.Host.Name)];

    private string[] VmNames => [.. _vms.Select(v => v.Name)];

    private string RequireHost(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return _snapshot.IndexOfHost(host) >= 0 ? host : throw new UnknownPlacementNameException(PlacementNameKind.Host, host, HostNames);
    }

    private string RequireVm(string vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return _snapshot.IndexOfVm(vm) >= 0 ? vm : throw new UnknownPlacementNameException(PlacementNameKind.Vm, vm, VmNames);
    }

    private PlacementChange Change(PlacementAction action, string? subject, string? requestedBy, Func<PlacementRules, PlacementRules> change)
    {
        PlacementChange result;
        bool evaluate;
        lock (_controlOrder)
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var before = _rules;
                var after = change(before);
                if (!ReferenceEquals(before, after))
                {
                    _rules = after;
                    _snapshot.SetRules(after);
                    _journal?.Rules(_time.GetUtcNow(), after);
                }

                result = new PlacementChange(action, subject, !ReferenceEquals(before, after), before, after, _time.GetUtcNow());
                evaluate = result.Changed && _started && !_stopped;
            }

            var explanation = Explain(result);
            DecisionsLog.PlacementRulesChanged(_logger, action, subject, requestedBy, explanation);
            _control.OnNext(new PlacementControlEvent(
                result.At,
                action,
                action is PlacementAction.PinVm or PlacementAction.UnpinVm ? subject : null,
                action is PlacementAction.DrainHost or PlacementAction.UndrainHost ? subject : null,
                requestedBy,
                result.Changed,
                MoveNowRefusal.None,
                explanation,
                result.After));
        }

        if (evaluate)
        {
            // At once rather than at the next window: a drain should not wait for it. Outside the
            // locks: with a fake clock the evaluation runs here, on this thread.
            _scheduler.Schedule(Evaluate);
        }

        return result;
    }

    private static string Explain(PlacementChange change)
    {
        var s = change.Subject;
        var text = change.Action switch
        {
            PlacementAction.DrainHost => $"host '{s}' is drained: it receives no VM and its VMs move to the best allowed hosts with room",
            PlacementAction.UndrainHost => $"host '{s}' is a candidate again",
            PlacementAction.PinVm => $"VM '{s}' is pinned: it is not moved",
            PlacementAction.UnpinVm => $"VM '{s}' may be moved again",
            _ => string.Create(
                CultureInfo.InvariantCulture,
                $"the rules were replaced: {change.After.DrainedHosts.Count} drained host(s), {change.After.PinnedVms.Count} pinned VM(s), {change.After.AffinityGroups.Count} affinity and {change.After.AntiAffinityGroups.Count} anti-affinity group(s), exclusions for {change.After.ExcludedHosts.Count} VM(s)"),
        };
        return change.Changed ? char.ToUpperInvariant(text[0]) + text[1..] + "." : "No change: " + text + " already.";
    }

    /// <summary>Every check an operator's move must pass before the executor is asked, under the lock.</summary>
    private MoveNowResult Admit(string vmName, string hostName)
    {
        MoveNowResult Refuse(MoveNowRefusal refusal, string why) => new(vmName, hostName, refusal, why, null);

        lock (_gate)
        {
            if (_disposed || !_started || _stopped)
            {
                return Refuse(MoveNowRefusal.NotRunning, "The pipeline is not running.");
            }

            if (_executor is null)
            {
                return Refuse(MoveNowRefusal.AdvisoryMode, "The pipeline runs advisory: it migrates nothing.");
            }

            var vm = _snapshot.IndexOfVm(vmName);
            if (vm < 0)
            {
                return Refuse(MoveNowRefusal.UnknownVm, $"The pipeline has no VM '{vmName}'.");
            }

            var destination = _snapshot.IndexOfHost(hostName);
            if (destination < 0)
            {
                return Refuse(MoveNowRefusal.UnknownHost, $"The pipeline has no host '{hostName}'.");
            }

            var source = RunningOn(vmName, out var info);
            if (source < 0 || info is null)
            {
                return Refuse(MoveNowRefusal.PlacementUnknown, $"VM '{vmName}' does not run on exactly one known host.");
            }

            if (source == destination)
            {
                return Refuse(MoveNowRefusal.AlreadyThere, $"VM '{vmName}' already runs on '{hostName}'.");
            }

            if (_snapshot.IsPinned(vm))
            {
                return Refuse(MoveNowRefusal.Pinned, $"VM '{vmName}' is pinned; unpin it first.");
            }

            if (_snapshot.IsDrained(destination))
            {
                return Refuse(MoveNowRefusal.DestinationDrained, $"Host '{hostName}' is drained.");
            }

            if (_snapshot.IsExcluded(vm, destination))
            {
                return Refuse(MoveNowRefusal.DestinationExcluded, $"Host '{hostName}' is excluded for VM '{vmName}'.");
            }

            if (PartnerOn(vm, destination) is { } partner)
            {
                return Refuse(MoveNowRefusal.AntiAffinity, $"VM '{partner}' runs (or is going) on '{hostName}', and an anti-affinity group keeps it apart from '{vmName}'.");
            }

            if (AffinityBlocks(vm, destination) is { } why)
            {
                return Refuse(MoveNowRefusal.Affinity, why);
            }

            if (!Answers(source))
            {
                return Refuse(MoveNowRefusal.SourceUnavailable, $"Host '{_hosts[source].Host.Name}', where VM '{vmName}' runs, does not answer.");
            }

            if (!Answers(destination))
            {
                return Refuse(MoveNowRefusal.DestinationUnavailable, $"Host '{hostName}' does not answer.");
            }

            if (_executor.BackedOffUntil(hostName) is { } until)
            {
                return Refuse(MoveNowRefusal.DestinationUnavailable, $"Host '{hostName}' is backed off until {until:O} after failed migrations.");
            }

            var freeMemory = _hostStates[destination].Info!.FreeMemoryBytes;
            var freeVCpus = FreeVCpus(destination);
            if (freeMemory < info.MemoryBytes || freeVCpus < info.VCpus)
            {
                return Refuse(MoveNowRefusal.NoCapacity, string.Create(
                    CultureInfo.InvariantCulture,
                    $"Host '{hostName}' has {freeMemory / (1024 * 1024)} MiB and {freeVCpus} vCPU(s) free; VM '{vmName}' needs {info.MemoryBytes / (1024 * 1024)} MiB and {info.VCpus}."));
            }

            if (_executor.IsMigrating(vmName))
            {
                return Refuse(MoveNowRefusal.AlreadyMigrating, $"A migration of VM '{vmName}' is under way.");
            }

            var before = _policy.Score(_snapshot, vm, source);
            var request = new MigrationRequest(vmName, _hosts[source].Host, _hosts[destination].Host, null, double.IsFinite(before) ? before : null, _hosts[destination].MigrationUri);
            return new MoveNowResult(vmName, hostName, MoveNowRefusal.None, "", null) { Request = request };
        }
    }

    /// <summary>Hands an admitted move to the executor and waits until it started (its start gate passed) or was skipped.</summary>
    private async Task<MoveNowResult> StartMoveAsync(MoveNowResult admitted, CancellationToken cancellationToken)
    {
        var request = admitted.Request!;
        var handle = _executor!.TryStartTyped(request, out var rejection, out var why);
        if (handle is null)
        {
            var refusal = rejection switch
            {
                MigrationRejection.AlreadyMigrating => MoveNowRefusal.AlreadyMigrating,
                MigrationRejection.BackedOff => MoveNowRefusal.DestinationUnavailable,
                MigrationRejection.Stopping => MoveNowRefusal.NotRunning,
                _ => MoveNowRefusal.LimitReached,
            };
            return admitted with { Refusal = refusal, Explanation = "The executor refused: " + why, Request = null };
        }

        bool started;
        try
        {
            started = await handle.Started.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return admitted with { Explanation = $"Admitted: migrating VM '{admitted.VmName}' to '{admitted.Host}' (stopped waiting for its start gate).", Handle = handle, Request = null };
        }

        if (started)
        {
            return admitted with { Explanation = $"Migrating VM '{admitted.VmName}' from '{request.Source.Name}' to '{admitted.Host}'.", Handle = handle, Request = null };
        }

        // It ended before the migration call: the start gate refused (Skipped), or an abort came first.
        var outcome = await handle.Outcome.ConfigureAwait(false);
        return outcome.Kind == MigrationOutcomeKind.Skipped
            ? admitted with { Refusal = MoveNowRefusal.NotLeading, Explanation = outcome.Error?.Message ?? "The start gate refused.", Request = null }
            : admitted with { Refusal = MoveNowRefusal.NotRunning, Explanation = $"The migration was aborted before it started ({outcome.AbortCause}).", Request = null };
    }

    private bool Answers(int host)
    {
        var state = _hostStates[host];
        return state.Answering && state.Info is not null && _hosts[host].Host.ConnectionState != HostConnectionState.Reconnecting;
    }

    /// <summary>An anti-affinity partner of the VM that runs on, or is being migrated to, the host; called under the lock.</summary>
    private string? PartnerOn(int vm, int host)
    {
        foreach (var p in _snapshot.AntiAffinityPartnersOf(vm))
        {
            var name = _snapshot.VmName(p);
            if (RunningOn(name, out _) == host || (_executor?.DestinationOf(name) is { } d && _snapshot.IndexOfHost(d) == host))
            {
                return name;
            }
        }

        return null;
    }

    /// <summary>
    /// Why moving the VM alone to the host would break its affinity group, or <see langword="null"/>: a
    /// member may join the others; the group's leader may go first (the others follow it) when the host
    /// is allowed for every member. Called under the lock.
    /// </summary>
    private string? AffinityBlocks(int vm, int host)
    {
        var members = _snapshot.AffinityMembersOf(vm);
        if (members.IsEmpty)
        {
            return null;
        }

        var vmName = _snapshot.VmName(vm);
        var allThere = true;
        foreach (var m in members)
        {
            allThere &= m == vm || RunningOn(_snapshot.VmName(m), out _) == host;
        }

        if (allThere)
        {
            return null;
        }

        if (_snapshot.AffinityLeaderOf(vm) != vm)
        {
            return $"VM '{vmName}' must share a host with its affinity group, led by '{_snapshot.VmName(_snapshot.AffinityLeaderOf(vm))}': move the leader, the others follow.";
        }

        foreach (var m in members)
        {
            if (m != vm && (_snapshot.IsPinned(m) || _snapshot.IsExcluded(m, host) || PartnerOn(m, host) is not null))
            {
                return $"VM '{_snapshot.VmName(m)}' of the affinity group of '{vmName}' could not follow it to '{_hosts[host].Host.Name}' (pinned, excluded there, or kept apart from a VM there).";
            }
        }

        return null;
    }
}
