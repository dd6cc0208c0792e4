using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

public sealed partial class LibvirtHypervisorHost
{
    private static readonly TimeSpan RecoveryRetry = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// After a failed migration: read both hosts (the source's job, both domains' states and
    /// reasons) in one bounded step, let <see cref="MigrationRecovery.Decide"/> say what may be
    /// touched, and act only on that; a copy is destroyed only after a second reading agrees.
    /// </summary>
    private async Task<MigrationException> RecoverAsync(string vmName, MigrationDestination destination, LibvirtConnection target, LibvirtException failure)
    {
        var started = _time.GetTimestamp();
        var peer = new PeerLink(this, destination, target);
        try
        {
            var resumed = false;
            while (true)
            {
                var (source, copy) = await ObserveAsync(vmName, peer, started).ConfigureAwait(false);
                var decision = MigrationRecovery.Decide(source, copy);
                var timeLeft = _time.GetElapsedTime(started) < _options.RecoveryCheckTimeout;
                Log.RecoveryObserved(_logger, vmName, Name, source.ToString(), destination.Name, copy.ToString(), decision.Rule);
                switch (decision.Action)
                {
                    case RecoveryAction.WaitForSourceJob when timeLeft:
                        await Task.Delay(RecoveryRetry, _time).ConfigureAwait(false);
                        continue;
                    case RecoveryAction.Report when timeLeft && (!source.Reachable || !copy.Reachable):
                        // A host whose connection was lost may be reconnecting: ask again.
                        await Task.Delay(RecoveryRetry, _time).ConfigureAwait(false);
                        continue;
                    case RecoveryAction.ResumeSource when !resumed:
                        resumed = true;
                        if (await TryResumeAsync(vmName).ConfigureAwait(false))
                        {
                            Log.ResumedSource(_logger, vmName, Name);
                        }

                        continue;
                    case RecoveryAction.DestroyDestinationCopy:
                        return Report(vmName, destination, failure, source, copy, await DestroyIncomingCopyAsync(vmName, destination, peer, started).ConfigureAwait(false));
                    case RecoveryAction.Alarm:
                        Log.BothRunning(_logger, vmName, Name, destination.Name);
                        return Report(vmName, destination, failure, source, copy, decision);
                    default:
                        if (decision.Copy == DestinationCopyAction.LeftUntouched && !decision.VmRunningOnSource)
                        {
                            Log.LeftDestinationCopy(_logger, vmName, Name, destination.Name, copy.ToString());
                        }

                        return Report(vmName, destination, failure, source, copy, decision);
                }
            }
        }
        finally
        {
            peer.Dispose();
        }
    }

    /// <summary>Reads again right before the destroy, and destroys only when that reading decides the same.</summary>
    private async Task<RecoveryDecision> DestroyIncomingCopyAsync(string vmName, MigrationDestination destination, PeerLink peer, long started)
    {
        var (source, copy) = await ObserveAsync(vmName, peer, started).ConfigureAwait(false);
        var again = MigrationRecovery.Decide(source, copy);
        if (again.Action != RecoveryAction.DestroyDestinationCopy)
        {
            Log.RecoveryObserved(_logger, vmName, Name, source.ToString(), destination.Name, copy.ToString(), "changed before the destroy: " + again.Rule);
            return again with { Action = RecoveryAction.Report, Copy = again.Copy == DestinationCopyAction.Removed ? DestinationCopyAction.LeftUntouched : again.Copy };
        }

        try
        {
            await Task.Run(() =>
            {
                var c = peer.Connection() ?? throw new HypervisorException(HypervisorErrorKind.ConnectionLost, $"{destination.Name} is not reachable.");
                using var d = Lookup(c, vmName);
                if (LibvirtNative.virDomainDestroyFlags(d, 0) < 0)
                {
                    throw LibvirtException.FromLastError("virDomainDestroyFlags");
                }
            }).ConfigureAwait(false);
            Log.RemovedIncomingCopy(_logger, vmName, Name, destination.Name);
            return again;
        }
        catch (HypervisorException ex) when (ex.Kind == HypervisorErrorKind.NotFound)
        {
            // libvirt removed it itself in the meantime.
            return again with { Action = RecoveryAction.Report, Copy = DestinationCopyAction.None };
        }
        catch (HypervisorException)
        {
            return again with { Action = RecoveryAction.Report, Copy = DestinationCopyAction.Unknown };
        }
    }

    private async Task<bool> TryResumeAsync(string vmName)
    {
        try
        {
            await ResumeVmAsync(vmName).ConfigureAwait(false);
            return true;
        }
        catch (HypervisorException)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Both hosts read at once, each bounded by what is left of the recovery time (at least one retry interval).</summary>
    private async Task<(DomainObservation Source, DomainObservation Destination)> ObserveAsync(string vmName, PeerLink peer, long started)
    {
        var left = _options.RecoveryCheckTimeout - _time.GetElapsedTime(started);
        var bound = left > RecoveryRetry ? left : RecoveryRetry;
        var source = ObserveOneAsync(() => CurrentConnection, vmName, bound);
        var destination = ObserveOneAsync(peer.Connection, vmName, bound);
        return (await source.ConfigureAwait(false), await destination.ConfigureAwait(false));
    }

    private async Task<DomainObservation> ObserveOneAsync(Func<LibvirtConnection?> connection, string vmName, TimeSpan bound)
    {
        var read = Task.Run(() =>
        {
            try
            {
                var c = connection();
                return c is null ? DomainObservation.Unreachable : Observe(c, vmName);
            }
            catch (HypervisorException)
            {
                return DomainObservation.Unreachable;
            }
            catch (ObjectDisposedException)
            {
                return DomainObservation.Unreachable;
            }
        });
        try
        {
            return await read.WaitAsync(bound, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return DomainObservation.Unreachable;
        }
    }

    /// <summary>Reads a domain's state, reason and migration job (blocking).</summary>
    internal static unsafe DomainObservation Observe(LibvirtConnection c, string vmName)
    {
        using var d = TryLookup(c, vmName);
        if (d is null)
        {
            return DomainObservation.Absent;
        }

        if (LibvirtNative.virDomainGetState(d, out var state, out var reason, 0) < 0)
        {
            throw LibvirtException.FromLastError("virDomainGetState");
        }

        var vmState = ToVmState(state);
        var job = false;
        if (vmState != VmState.ShutOff)
        {
            if (LibvirtNative.virDomainGetJobStats(d, out var type, out var p, out var n, 0) < 0)
            {
                var error = LibvirtException.FromLastError("virDomainGetJobStats");
                if (error.Kind != HypervisorErrorKind.NotSupported)
                {
                    throw error;
                }
            }
            else
            {
                try
                {
                    var stats = TypedParams.Read(p, n);

                    // Operation 4/5 is an incoming/outgoing migration; an active job without it counts as one (the safe side).
                    job = type is 1 or 2 && JobStats.Long(stats, "operation") is null or 4 or 5;
                }
                finally
                {
                    LibvirtNative.virTypedParamsFree(p, n);
                }
            }
        }

        return new DomainObservation(true, true, vmState, reason, job);
    }

    private MigrationException Report(string vmName, MigrationDestination destination, LibvirtException failure, DomainObservation source, DomainObservation copy, RecoveryDecision decision)
    {
        var where = decision.VmRunningOnSource
            ? $"'{vmName}' still runs on {Name}"
            : source.Reachable
                ? $"'{vmName}' is NOT running on {Name} ({source})"
                : $"{Name} could not be asked whether '{vmName}' still runs there";
        var what = decision.Copy switch
        {
            DestinationCopyAction.None => $"{destination.Name} has no copy",
            DestinationCopyAction.Removed => $"the paused incoming copy on {destination.Name} was removed",
            DestinationCopyAction.LeftUntouched => $"the copy on {destination.Name} ({copy}) was left untouched: it may be the only one",
            DestinationCopyAction.BothRunning => $"ALARM: the VM also runs on {destination.Name}; nothing was touched and an operator must choose the copy to keep",
            _ => $"{destination.Name} could not be checked",
        };
        return new MigrationException(
            failure.Kind == HypervisorErrorKind.Other ? HypervisorErrorKind.OperationFailed : failure.Kind,
            $"Migration of '{vmName}' from {Name} to {destination.Name} failed: {failure.LibvirtMessage} (libvirt error {failure.Code}). Afterwards {where}; {what}. [{decision.Rule}]",
            vmName,
            Name,
            destination.Name,
            decision.VmRunningOnSource,
            decision.Copy,
            failure);
    }

    /// <summary>The destination's connection during recovery: the migration's own while it lives, else a fresh one.</summary>
    private sealed class PeerLink(LibvirtHypervisorHost host, MigrationDestination destination, LibvirtConnection first) : IDisposable
    {
        private readonly Lock _gate = new();
        private LibvirtConnection? _current = first;
        private LibvirtConnection? _opened;

        public LibvirtConnection? Connection()
        {
            lock (_gate)
            {
                if (_current is { IsAlive: true })
                {
                    return _current;
                }

                _opened?.Dispose();
                _opened = null;
                try
                {
                    _opened = host.OpenPeer(destination);
                }
                catch (HypervisorException)
                {
                    return null;
                }

                _current = _opened;
                return _current;
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _opened?.Dispose();
                _opened = null;
                _current = null;
            }
        }
    }
}
