using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

public sealed partial class LibvirtHypervisorHost
{
    /// <summary>
    /// Live-migrates a VM from this host to <paramref name="destination"/>, peer-to-peer
    /// (<c>virDomainMigrateToURI3</c>) or client-managed (<c>virDomainMigrate3</c>). Progress is sampled
    /// from the source's job statistics every <see cref="MigrationOptions.ProgressInterval"/>.
    /// Cancelling aborts the job on the source. When the migration fails, the source is checked
    /// first: a paused incoming copy on the destination is removed only when the source still runs
    /// the VM; otherwise nothing on the destination is touched and the
    /// <see cref="MigrationException"/> says so.
    /// </summary>
    /// <exception cref="HypervisorException">Bad input (kind <see cref="HypervisorErrorKind.InvalidArgument"/>,
    /// <see cref="HypervisorErrorKind.NotFound"/>, <see cref="HypervisorErrorKind.AlreadyExists"/>): nothing was changed.</exception>
    /// <exception cref="MigrationException">The migration failed; says where the VM is.</exception>
    /// <exception cref="OperationCanceledException">Cancelled and aborted; the inner exception is the <see cref="MigrationException"/>.</exception>
    public async Task<MigrationResult> MigrateAsync(
        string vmName,
        IHypervisorHost destination,
        MigrationOptions options,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(options);
        DomainXml.ValidateVmName(vmName);
        ValidateMigration(options, destination);
        cancellationToken.ThrowIfCancellationRequested();
        var source = RequireConnection();
        LibvirtConnection? target = null;
        if (options.Mode == MigrationMode.ClientManaged)
        {
            target = ((LibvirtHypervisorHost)destination).RequireConnection();
        }

        // Pre-flight: everything that can be wrong is found before anything changes.
        var domain = await Task.Run(
            () =>
            {
                var d = Lookup(source, vmName);
                var vm = ReadVm(d);
                if (vm.State is not (VmState.Running or VmState.Paused or VmState.Blocked))
                {
                    d.Dispose();
                    throw new HypervisorException(HypervisorErrorKind.InvalidArgument, $"VM '{vmName}' on {Name} is {vm.State}: only a running VM can be live-migrated.");
                }

                return d;
            },
            cancellationToken).ConfigureAwait(false);
        using var domainScope = domain;
        var existing = await destination.TryGetVmAsync(vmName, cancellationToken).ConfigureAwait(false);
        if (existing is { State: not VmState.ShutOff })
        {
            throw new HypervisorException(
                HypervisorErrorKind.AlreadyExists,
                $"Destination {destination.Name} already has VM '{vmName}' ({existing.State}); is the VM already there?");
        }

        var flags = Flags(options);
        using var parameters = BuildParameters(options);
        if (options.MaxDowntime is { } maxDowntime)
        {
            await Task.Run(
                () =>
                {
                    if (LibvirtNative.virDomainMigrateSetMaxDowntime(domain, (ulong)maxDowntime.TotalMilliseconds, 0) < 0)
                    {
                        throw LibvirtException.FromLastError("virDomainMigrateSetMaxDowntime");
                    }
                },
                cancellationToken).ConfigureAwait(false);
        }

        var destinationUri = (options.DestinationUri ?? destination.Uri).OriginalString;
        var waiter = new TaskCompletionSource<IReadOnlyDictionary<string, object>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _jobWaiters[vmName] = waiter;
        Log.MigrationStarting(_logger, vmName, Name, destination.Name, options.Mode.ToString(), flags);
        var started = _time.GetTimestamp();
        using var pollStop = new CancellationTokenSource();
        var poller = progress is null ? Task.CompletedTask : PollProgressAsync(domain, vmName, options.ProgressInterval, progress, started, pollStop.Token);
        var aborted = 0;
        LibvirtException? failure = null;
        var migration = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task abortLoop = Task.CompletedTask;
        var registration = cancellationToken.Register(() =>
        {
            // Off the caller's thread: AbortJob is a blocking RPC.
            Interlocked.Exchange(ref aborted, 1);
            abortLoop = Task.Run(() => AbortUntilStoppedAsync(domain, vmName, migration.Task));
        });
        try
        {
            await Task.Factory.StartNew(
                () => MigrateBlocking(domain, target, destinationUri, parameters, flags),
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default).ConfigureAwait(false);
        }
        catch (LibvirtException ex)
        {
            failure = ex;
        }
        finally
        {
            migration.TrySetResult();
            await registration.DisposeAsync().ConfigureAwait(false);
            await abortLoop.ConfigureAwait(false);
            await pollStop.CancelAsync().ConfigureAwait(false);
            await poller.ConfigureAwait(false);
        }

        var total = _time.GetElapsedTime(started);
        if (failure is null)
        {
            IReadOnlyDictionary<string, object>? stats = null;
            try
            {
                stats = await waiter.Task.WaitAsync(_options.JobCompletedWait, _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                stats = await Task.Run(() => CompletedStats(domain)).ConfigureAwait(false);
            }
            finally
            {
                _jobWaiters.TryRemove(new(vmName, waiter));
            }

            var result = new MigrationResult(
                vmName,
                Name,
                destination.Name,
                total,
                Milliseconds(stats, "downtime"),
                Long(stats, "data_processed") ?? Long(stats, "memory_processed"));
            Log.MigrationDone(_logger, vmName, Name, destination.Name, total, result.Downtime);
            return result;
        }

        _jobWaiters.TryRemove(new(vmName, waiter));
        Log.MigrationFailed(_logger, vmName, Name, destination.Name, failure);
        var error = await RecoverAsync(vmName, destination, failure).ConfigureAwait(false);
        if (cancellationToken.IsCancellationRequested && Volatile.Read(ref aborted) == 1)
        {
            throw new OperationCanceledException($"The migration of '{vmName}' from {Name} to {destination.Name} was cancelled and aborted.", error, cancellationToken);
        }

        throw error;
    }

    /// <summary>
    /// Switches a running migration of <paramref name="vmName"/> (started with
    /// <see cref="MigrationOptions.AllowPostCopy"/>) to post-copy: the VM runs on the destination at
    /// once and pulls the rest of its memory from here. Opt-in and irreversible: if either host
    /// fails after the switch, the VM is lost, which is why the library never switches on its own.
    /// </summary>
    public Task StartPostCopyAsync(string vmName, CancellationToken cancellationToken = default) =>
        OnDomainAsync(vmName, "switched to post-copy", "virDomainMigrateStartPostCopy", d => LibvirtNative.virDomainMigrateStartPostCopy(d, 0), cancellationToken);

    /// <summary>
    /// Aborts the source's job. A cancellation can arrive before libvirt has started the job (then
    /// there is nothing to abort yet), so it retries briefly until the migration call returns.
    /// </summary>
    private async Task AbortUntilStoppedAsync(DomainHandle domain, string vmName, Task migration)
    {
        Log.MigrationAborting(_logger, vmName, Name);
        for (var attempt = 0; attempt < 50 && !migration.IsCompleted; attempt++)
        {
            try
            {
                if (LibvirtNative.virDomainAbortJob(domain) == 0)
                {
                    return;
                }

                LibvirtNative.virResetLastError();
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            await Task.WhenAny(migration, Task.Delay(TimeSpan.FromMilliseconds(100), _time)).ConfigureAwait(false);
        }
    }

    private void ValidateMigration(MigrationOptions options, IHypervisorHost destination)
    {
        static HypervisorException Invalid(string m) => new(HypervisorErrorKind.InvalidArgument, m);
        if (options.BandwidthMiBps is < 0)
        {
            throw Invalid($"Bandwidth {options.BandwidthMiBps} MiB/s must not be negative.");
        }

        if (options.MaxDowntime is { } d && (d <= TimeSpan.Zero || d > TimeSpan.FromHours(1)))
        {
            throw Invalid($"MaxDowntime {d} must be positive and at most one hour.");
        }

        if (options.ProgressInterval <= TimeSpan.Zero)
        {
            throw Invalid($"ProgressInterval {options.ProgressInterval} must be positive.");
        }

        if (options.MigrationUri is { } mu && (!mu.IsAbsoluteUri || mu.Scheme is not ("tcp" or "rdma" or "unix") || (mu.Scheme != "unix" && mu.Host.Length == 0)))
        {
            throw Invalid($"Migration URI '{mu}' must be tcp://HOST[:PORT] (or rdma://, unix://).");
        }

        if (options.DestinationUri is { } du)
        {
            LibvirtHostOptions.ValidateUri(du);
        }

        if (options.Mode == MigrationMode.ClientManaged && destination is not LibvirtHypervisorHost)
        {
            throw Invalid($"Client-managed migration needs a libvirt destination host; {destination.Name} is a {destination.GetType().Name}.");
        }

        if (!options.Live && options.AllowPostCopy)
        {
            throw Invalid("Post-copy needs a live migration.");
        }

        if (ReferenceEquals(destination, this) ||
            Uri.Equals(destination.Uri) ||
            (destination is LibvirtHypervisorHost other && _hostUuid is not null && string.Equals(_hostUuid, other._hostUuid, StringComparison.OrdinalIgnoreCase)))
        {
            throw Invalid($"The destination {destination.Name} ({destination.Uri}) is the host the VM is on ({Name}).");
        }
    }

    private static uint Flags(MigrationOptions o)
    {
        uint flags = 0;
        if (o.Live)
        {
            flags |= Vir.MigrateLive;
        }

        if (o.Mode == MigrationMode.PeerToPeer)
        {
            flags |= Vir.MigratePeer2Peer;
        }

        if (o.PersistOnDestination)
        {
            flags |= Vir.MigratePersistDest;
        }

        if (o.UndefineSource)
        {
            flags |= Vir.MigrateUndefineSource;
        }

        if (o.AutoConverge)
        {
            flags |= Vir.MigrateAutoConverge;
        }

        if (o.AllowPostCopy)
        {
            flags |= Vir.MigratePostCopy;
        }

        if (o.Compressed)
        {
            flags |= Vir.MigrateCompressed;
        }

        return flags;
    }

    private static TypedParamsBuilder BuildParameters(MigrationOptions o)
    {
        var p = new TypedParamsBuilder();
        try
        {
            if (o.MigrationUri is { } uri)
            {
                p.Add("migrate_uri", uri.OriginalString.TrimEnd('/'));
            }

            if (o.BandwidthMiBps is { } bandwidth and > 0)
            {
                p.Add("bandwidth", (ulong)bandwidth);
            }

            if (o.Compressed)
            {
                p.Add("compression", "xbzrle");
            }

            return p;
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }

    private static unsafe void MigrateBlocking(DomainHandle domain, LibvirtConnection? target, string destinationUri, TypedParamsBuilder parameters, uint flags)
    {
        if (target is null)
        {
            if (LibvirtNative.virDomainMigrateToURI3(domain, destinationUri, parameters.Pointer, (uint)parameters.Count, flags) < 0)
            {
                throw LibvirtException.FromLastError("virDomainMigrateToURI3");
            }

            return;
        }

        var moved = LibvirtNative.virDomainMigrate3(domain, target.Handle, parameters.Pointer, (uint)parameters.Count, flags);
        if (moved.IsInvalid)
        {
            var ex = LibvirtException.FromLastError("virDomainMigrate3");
            moved.Dispose();
            throw ex;
        }

        moved.Dispose();
    }

    private async Task PollProgressAsync(DomainHandle domain, string vmName, TimeSpan interval, IProgress<MigrationProgress> progress, long started, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var sample = await Task.Run(() => SampleProgress(domain, started), CancellationToken.None).ConfigureAwait(false);
                if (sample is not null && !cancellationToken.IsCancellationRequested)
                {
                    progress.Report(sample);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
#pragma warning disable CA1031 // Progress is best effort; the migration's own outcome decides.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.ProgressFailed(_logger, vmName, ex);
        }
    }

    private unsafe MigrationProgress? SampleProgress(DomainHandle domain, long started)
    {
        if (LibvirtNative.virDomainGetJobStats(domain, out var type, out var p, out var n, 0) < 0)
        {
            // The job may just have finished (the domain is gone, or no longer running).
            LibvirtNative.virResetLastError();
            return null;
        }

        Dictionary<string, object> stats;
        try
        {
            stats = TypedParams.Read(p, n);
        }
        finally
        {
            LibvirtNative.virTypedParamsFree(p, n);
        }

        if (type is not (1 or 2))
        {
            return null;
        }

        return new MigrationProgress(
            Milliseconds(stats, "time_elapsed") ?? _time.GetElapsedTime(started),
            Long(stats, "data_processed"),
            Long(stats, "data_remaining"),
            Long(stats, "data_total"),
            Long(stats, "memory_dirty_rate"),
            Long(stats, "memory_iteration") is { } it ? (int)it : null,
            Milliseconds(stats, "downtime"),
            Long(stats, "memory_bps"));
    }

    private static unsafe Dictionary<string, object>? CompletedStats(DomainHandle domain)
    {
        if (LibvirtNative.virDomainGetJobStats(domain, out var type, out var p, out var n, Vir.JobStatsCompleted) < 0)
        {
            LibvirtNative.virResetLastError();
            return null;
        }

        try
        {
            return type == 3 ? TypedParams.Read(p, n) : null;
        }
        finally
        {
            LibvirtNative.virTypedParamsFree(p, n);
        }
    }

    /// <summary>
    /// After a failed migration: confirm where the VM runs, and only then clean up. The source is
    /// checked first; a paused copy on the destination is removed only when the source runs the VM.
    /// </summary>
    private async Task<MigrationException> RecoverAsync(string vmName, IHypervisorHost destination, LibvirtException failure)
    {
        var (onSource, sourceKnown) = await TryAskAsync(this, vmName).ConfigureAwait(false);
        var (onDestination, destinationKnown) = await TryAskAsync(destination, vmName).ConfigureAwait(false);

        var sourceRunning = onSource?.State is VmState.Running or VmState.Blocked;
        if (!sourceRunning && sourceKnown && onSource?.State == VmState.Paused && destinationKnown && onDestination is null)
        {
            // Paused on the source and no copy anywhere else: the source copy is the VM; let it run.
            try
            {
                await ResumeVmAsync(vmName).ConfigureAwait(false);
                Log.ResumedSource(_logger, vmName, Name);
                sourceRunning = (await TryGetVmAsync(vmName).ConfigureAwait(false))?.State == VmState.Running;
            }
            catch (HypervisorException)
            {
            }
        }

        DestinationCopyAction action;
        if (!destinationKnown)
        {
            action = DestinationCopyAction.Unknown;
        }
        else if (onDestination is null || onDestination.State == VmState.ShutOff)
        {
            action = DestinationCopyAction.None;
        }
        else if (sourceRunning && onDestination.State == VmState.Paused)
        {
            try
            {
                await destination.DestroyVmAsync(vmName).ConfigureAwait(false);
                action = DestinationCopyAction.Removed;
                Log.RemovedIncomingCopy(_logger, vmName, Name, destination.Name);
            }
            catch (HypervisorException ex) when (ex.Kind == HypervisorErrorKind.NotFound)
            {
                // libvirt removed it itself in the meantime.
                action = DestinationCopyAction.None;
            }
            catch (HypervisorException)
            {
                action = DestinationCopyAction.Unknown;
            }
        }
        else
        {
            action = DestinationCopyAction.LeftUntouched;
            Log.LeftDestinationCopy(_logger, vmName, Name, destination.Name, onDestination.State.ToString());
        }

        var where = sourceRunning
            ? $"'{vmName}' still runs on {Name}"
            : sourceKnown
                ? $"'{vmName}' is NOT running on {Name} ({onSource?.State.ToString() ?? "absent"})"
                : $"{Name} could not be asked whether '{vmName}' still runs there";
        var copy = action switch
        {
            DestinationCopyAction.None => $"{destination.Name} has no copy",
            DestinationCopyAction.Removed => $"the paused incoming copy on {destination.Name} was removed",
            DestinationCopyAction.LeftUntouched => $"the copy on {destination.Name} ({onDestination?.State}) was left untouched: it may be the only one",
            _ => $"{destination.Name} could not be checked",
        };
        return new MigrationException(
            failure.Kind == HypervisorErrorKind.Other ? HypervisorErrorKind.OperationFailed : failure.Kind,
            $"Migration of '{vmName}' from {Name} to {destination.Name} failed: {failure.LibvirtMessage} (libvirt error {failure.Code}). Afterwards {where}; {copy}.",
            vmName,
            Name,
            destination.Name,
            sourceRunning,
            action,
            failure);
    }

    /// <summary>
    /// Asks a host for a VM; while the host's connection is lost (it may be reconnecting), asks
    /// again until <see cref="LibvirtHostOptions.RecoveryCheckTimeout"/>. Returns whether it answered.
    /// </summary>
    private async Task<(VmInfo? Vm, bool Answered)> TryAskAsync(IHypervisorHost host, string vmName)
    {
        var started = _time.GetTimestamp();
        while (true)
        {
            try
            {
                return (await host.TryGetVmAsync(vmName).ConfigureAwait(false), true);
            }
            catch (HypervisorException ex) when (ex.IsTransient && _time.GetElapsedTime(started) < _options.RecoveryCheckTimeout)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), _time).ConfigureAwait(false);
            }
            catch (HypervisorException)
            {
                return (null, false);
            }
            catch (ObjectDisposedException)
            {
                return (null, false);
            }
        }
    }

    private static long? Long(IReadOnlyDictionary<string, object>? stats, string key) =>
        stats is not null && stats.TryGetValue(key, out var v)
            ? v switch
            {
                ulong u => (long)u,
                long l => l,
                int i => i,
                uint ui => ui,
                _ => null,
            }
            : null;

    private static TimeSpan? Milliseconds(IReadOnlyDictionary<string, object>? stats, string key) =>
        Long(stats, key) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;
}
