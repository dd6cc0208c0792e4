using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Options;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

public sealed partial class LibvirtHypervisorHost
{
    /// <summary>
    /// Live-migrates a VM from this host to <paramref name="destination"/> with this host's
    /// <see cref="LibvirtHostOptions.Migration"/> choices; see
    /// <see cref="MigrateAsync(string, MigrationDestination, MigrationOptions, LibvirtMigrationOptions, IProgress{MigrationProgress}?, CancellationToken)"/>.
    /// </summary>
    public Task<MigrationResult> MigrateAsync(
        string vmName,
        MigrationDestination destination,
        MigrationOptions options,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        MigrateAsync(vmName, destination, options, _options.Migration, progress, cancellationToken);

    /// <summary>
    /// Live-migrates a VM from this host to <paramref name="destination"/>, peer-to-peer
    /// (<c>virDomainMigrateToURI3</c>) or client-managed (<c>virDomainMigrate3</c>). The destination
    /// is reached through its <see cref="MigrationDestination.ManagementUri"/> (from this host's
    /// network namespace) to check it before and to recover after; its data travels to
    /// <see cref="MigrationDestination.DataUri"/>. Progress is sampled from the source's job
    /// statistics every <see cref="MigrationOptions.ProgressInterval"/> while a caller listens.
    /// Cancelling aborts the job on the source. When the migration fails, both hosts are read again
    /// and only the state table's rules decide what is touched (see the package README): the VM is
    /// never lost, and the <see cref="MigrationException"/> says where it is.
    /// </summary>
    /// <exception cref="OptionsValidationException">Invalid options: nothing was changed.</exception>
    /// <exception cref="HypervisorException">Bad input (kind <see cref="HypervisorErrorKind.InvalidArgument"/>,
    /// <see cref="HypervisorErrorKind.NotFound"/>, <see cref="HypervisorErrorKind.AlreadyExists"/>): nothing was changed.</exception>
    /// <exception cref="MigrationException">The migration failed; says where the VM is.</exception>
    /// <exception cref="OperationCanceledException">Cancelled and aborted; the inner exception is the <see cref="MigrationException"/>.</exception>
    public async Task<MigrationResult> MigrateAsync(
        string vmName,
        MigrationDestination destination,
        MigrationOptions options,
        LibvirtMigrationOptions libvirtOptions,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(libvirtOptions);
        DomainXml.ValidateVmName(vmName);
        var (common, own) = ValidateMigration(options, libvirtOptions, destination);
        cancellationToken.ThrowIfCancellationRequested();
        var source = RequireConnection();

        // Pre-flight: everything that can be wrong is found before anything changes.
        var (domain, target) = await Task.Run(() => PrepareMigration(source, vmName, destination), cancellationToken).ConfigureAwait(false);
        var flags = Flags(common, own);
        var schedule = own.Convergence.IsActive ? new ConvergenceSchedule(own.Convergence, common.MaxDowntime) : null;
        var escalations = new ConvergenceLog();
        TypedParamsBuilder parameters;
        try
        {
            parameters = BuildParameters(common, own, destination);
            if ((schedule?.InitialDowntime ?? common.MaxDowntime) is { } maxDowntime)
            {
                await Task.Run(
                    () =>
                    {
                        if (LibvirtNative.virDomainMigrateSetMaxDowntime(domain, (ulong)Math.Ceiling(maxDowntime.TotalMilliseconds), 0) < 0)
                        {
                            throw LibvirtException.FromLastError("virDomainMigrateSetMaxDowntime");
                        }
                    },
                    cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            domain.Dispose();
            target.Dispose();
            throw;
        }

        var peerUri = (own.PeerUri ?? destination.ManagementUri).OriginalString;
        var clientManaged = own.Mode == LibvirtMigrationMode.ClientManaged ? target : null;
        var waiter = new TaskCompletionSource<IReadOnlyDictionary<string, object>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _jobWaiters[vmName] = waiter;
        Log.MigrationStarting(_logger, vmName, Name, destination.Name, own.Mode.ToString(), flags);
        var started = _time.GetTimestamp();
        var call = Task.Factory.StartNew(
            () => MigrateBlocking(domain, clientManaged, peerUri, parameters, flags),
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

        var abort = new AbortLoop(() => TryAbortJob(domain), call, _time);
        var registration = cancellationToken.Register(() =>
        {
            Log.MigrationAborting(_logger, vmName, Name);
            abort.Start(common.AbortTimeout);
        });

        // Started after the call: a convergence step may abort through the same loop a cancellation uses.
        using var pollStop = new CancellationTokenSource();
        var poller = progress is null && schedule is null
            ? Task.CompletedTask
            : WatchMigrationAsync(domain, vmName, common.ProgressInterval, progress, schedule, escalations, () => abort.Start(common.AbortTimeout), started, pollStop.Token);

        LibvirtException? failure = null;
        var gaveUp = false;
        try
        {
            return await FinishAsync().ConfigureAwait(false);
        }
        finally
        {
            if (gaveUp)
            {
                // The native call still uses these; release them when it returns.
                _ = call.ContinueWith(_ => Release(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            else
            {
                Release();
            }
        }

        void Release()
        {
            parameters.Dispose();
            domain.Dispose();
            target.Dispose();
        }

        async Task<MigrationResult> FinishAsync()
        {
            try
            {
                await Task.WhenAny(call, abort.GaveUp).ConfigureAwait(false);
                if (call.IsCompleted)
                {
                    await call.ConfigureAwait(false);
                }
                else
                {
                    gaveUp = true;
                }
            }
            catch (LibvirtException ex)
            {
                failure = ex;
            }
            finally
            {
                await registration.DisposeAsync().ConfigureAwait(false);
                await pollStop.CancelAsync().ConfigureAwait(false);
                await poller.ConfigureAwait(false);
            }

            var total = _time.GetElapsedTime(started);
            if (gaveUp)
            {
                _jobWaiters.TryRemove(new(vmName, waiter));
                Log.AbortUnconfirmed(_logger, vmName, Name, destination.Name, common.AbortTimeout);
                var unknown = new MigrationException(
                    HypervisorErrorKind.OperationFailed,
                    $"The migration of '{vmName}' from {Name} to {destination.Name} was {(escalations.LibraryAbort() is null ? "cancelled" : "aborted by its convergence control")}, but {Name} did not confirm the abort within {common.AbortTimeout}: where the VM runs is unknown; the daemons may still complete or abort it. Nothing was touched.",
                    vmName,
                    Name,
                    destination.Name,
                    vmRunningOnSource: false,
                    DestinationCopyAction.Unknown,
                    innerException: null);
                if (!cancellationToken.IsCancellationRequested && escalations.LibraryAbort() is not null)
                {
                    // The library's own abort (completion timeout or stall), not the caller's cancellation.
                    throw unknown;
                }

                throw new OperationCanceledException(unknown.Message, unknown, cancellationToken);
            }

            if (failure is null)
            {
                var result = await CompleteAsync(domain, vmName, destination, waiter, total).ConfigureAwait(false);
                return result with { Escalations = escalations.Snapshot() };
            }

            _jobWaiters.TryRemove(new(vmName, waiter));
            Log.MigrationFailed(_logger, vmName, Name, destination.Name, failure);
            var error = await RecoverAsync(vmName, destination, target, failure).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested && abort.Started)
            {
                throw new OperationCanceledException($"The migration of '{vmName}' from {Name} to {destination.Name} was cancelled and aborted.", error, cancellationToken);
            }

            if (escalations.LibraryAbort() is { } libraryAbort)
            {
                throw ConvergenceFailure(error, libraryAbort, escalations.Snapshot());
            }

            throw error;
        }
    }

    /// <summary>
    /// Switches a running migration of <paramref name="vmName"/> (started with
    /// <see cref="LibvirtMigrationOptions.AllowPostCopy"/>) to post-copy: the VM runs on the destination at
    /// once and pulls the rest of its memory from here. Opt-in and irreversible: if either host
    /// fails after the switch, the VM is lost, which is why the library switches on its own only when
    /// told to (<see cref="LibvirtConvergenceOptions.CompletionAction"/> = <see cref="LibvirtCompletionAction.PostCopy"/>).
    /// </summary>
    public Task StartPostCopyAsync(string vmName, CancellationToken cancellationToken = default) =>
        OnDomainAsync(vmName, "switched to post-copy", "virDomainMigrateStartPostCopy", d => LibvirtNative.virDomainMigrateStartPostCopy(d, 0), cancellationToken);

    private (MigrationOptions Common, LibvirtMigrationOptions Own) ValidateMigration(MigrationOptions options, LibvirtMigrationOptions libvirtOptions, MigrationDestination destination)
    {
        // Copies: what was validated is what runs, whatever the caller changes afterwards.
        var common = options.Clone();
        var own = libvirtOptions.Clone();
        var errors = new OptionsErrors();
        common.Validate(errors);
        errors.Nested("Libvirt", own);
        if (!common.Live && own.AllowPostCopy)
        {
            errors.Add("Libvirt.AllowPostCopy", "needs a live migration (Live = true).");
        }

        if (common.MaxDowntime is { } first && own.Convergence?.FinalMaxDowntime is { } final && first >= final)
        {
            errors.Add("Libvirt.Convergence.FinalMaxDowntime", $"must be above MaxDowntime ({first}), where the downtime steps start.");
        }

        errors.ThrowIfAny(nameof(MigrationOptions));

        static HypervisorException Invalid(string m) => new(HypervisorErrorKind.InvalidArgument, m);
        if (destination.DataUri is { } data && (!data.IsAbsoluteUri || data.Scheme is not ("tcp" or "rdma" or "unix") || (data.Scheme != "unix" && data.Host.Length == 0) || data.UserInfo.Length > 0 || data.Query.Length > 0))
        {
            throw Invalid($"Destination {destination.Name}: data URI '{LibvirtUri.Redact(data)}' must be tcp://HOST[:PORT] (or rdma://HOST[:PORT], unix:///PATH).");
        }

        var problems = LibvirtUri.Problems(destination.ManagementUri.OriginalString);
        if (problems.Count > 0)
        {
            throw Invalid($"Destination {destination.Name}: management URI {string.Join(" ", problems)}");
        }

        if (Uri.Equals(destination.ManagementUri) || string.Equals(destination.Name, Name, StringComparison.Ordinal))
        {
            throw Invalid($"The destination {destination.Name} ({LibvirtUri.Redact(destination.ManagementUri)}) is the host the VM is on ({Name}).");
        }

        return (common, own);
    }

    /// <summary>Looks the VM up and connects to the destination; both checked before anything changes.</summary>
    private (DomainHandle Domain, LibvirtConnection Target) PrepareMigration(LibvirtConnection source, string vmName, MigrationDestination destination)
    {
        var domain = Lookup(source, vmName);
        LibvirtConnection? target = null;
        try
        {
            var vm = ReadVm(domain);
            if (vm.State is not (VmState.Running or VmState.Paused or VmState.Blocked))
            {
                throw new HypervisorException(HypervisorErrorKind.InvalidArgument, $"VM '{vmName}' on {Name} is {vm.State}: only a running VM can be live-migrated.");
            }

            target = OpenPeer(destination);
            if (_hostUuid is not null && string.Equals(_hostUuid, ReadHostUuid(target), StringComparison.OrdinalIgnoreCase))
            {
                throw new HypervisorException(
                    HypervisorErrorKind.InvalidArgument,
                    $"The destination {destination.Name} ({LibvirtUri.Redact(destination.ManagementUri)}) is the host the VM is on ({Name}): both report host UUID {_hostUuid}.");
            }

            if (TryReadVm(target, vmName) is { State: not VmState.ShutOff } existing)
            {
                throw new HypervisorException(
                    HypervisorErrorKind.AlreadyExists,
                    $"Destination {destination.Name} already has VM '{vmName}' ({existing.State}); is the VM already there?");
            }

            return (domain, target);
        }
        catch
        {
            target?.Dispose();
            domain.Dispose();
            throw;
        }
    }

    /// <summary>A connection to the destination's daemon, from this host's network namespace.</summary>
    private LibvirtConnection OpenPeer(MigrationDestination destination)
    {
        var connection = LibvirtConnection.Open(destination.ManagementUri.OriginalString, _options.NetworkNamespace, _options.Credentials);
        try
        {
            // A dead destination must make calls fail, not hang (the test driver has no keepalive).
            if (_options.KeepAliveInterval > TimeSpan.Zero)
            {
                connection.SetKeepAlive((int)_options.KeepAliveInterval.TotalSeconds, (uint)_options.KeepAliveCount);
            }

            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static bool TryAbortJob(DomainHandle domain)
    {
        try
        {
            if (LibvirtNative.virDomainAbortJob(domain) == 0)
            {
                return true;
            }

            LibvirtNative.virResetLastError();
            return false;
        }
        catch (ObjectDisposedException)
        {
            // The migration call returned and released the domain: nothing left to abort.
            return true;
        }
    }

    private static uint Flags(MigrationOptions common, LibvirtMigrationOptions own)
    {
        uint flags = 0;
        flags |= common.Live ? Vir.MigrateLive : 0;
        flags |= own.Mode == LibvirtMigrationMode.PeerToPeer ? Vir.MigratePeer2Peer : 0;
        flags |= own.PersistOnDestination ? Vir.MigratePersistDest : 0;
        flags |= own.UndefineSource ? Vir.MigrateUndefineSource : 0;
        flags |= own.AutoConverge ? Vir.MigrateAutoConverge : 0;
        flags |= own.AllowPostCopy ? Vir.MigratePostCopy : 0;
        flags |= own.Compressed ? Vir.MigrateCompressed : 0;
        flags |= own.Tls ? Vir.MigrateTls : 0;
        flags |= own.ParallelConnections is not null ? Vir.MigrateParallel : 0;
        return flags;
    }

    private static TypedParamsBuilder BuildParameters(MigrationOptions common, LibvirtMigrationOptions own, MigrationDestination destination)
    {
        var p = new TypedParamsBuilder();
        try
        {
            if (destination.DataUri is { } uri)
            {
                p.Add("migrate_uri", uri.OriginalString.TrimEnd('/'));
            }

            if (common.BandwidthMiBps is { } bandwidth)
            {
                p.Add("bandwidth", (ulong)bandwidth);
            }

            if (own.Compressed)
            {
                p.Add("compression", "xbzrle");
            }

            if (own.AutoConvergeInitialPercent is { } initial)
            {
                p.Add("auto_converge.initial", initial);
            }

            if (own.AutoConvergeIncrementPercent is { } increment)
            {
                p.Add("auto_converge.increment", increment);
            }

            if (own.ParallelConnections is { } connections)
            {
                p.Add("parallel.connections", connections);
            }

            return p;
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }

    private static unsafe void MigrateBlocking(DomainHandle domain, LibvirtConnection? clientManaged, string peerUri, TypedParamsBuilder parameters, uint flags)
    {
        if (clientManaged is null)
        {
            if (LibvirtNative.virDomainMigrateToURI3(domain, peerUri, parameters.Pointer, (uint)parameters.Count, flags) < 0)
            {
                throw LibvirtException.FromLastError("virDomainMigrateToURI3");
            }

            return;
        }

        var moved = LibvirtNative.virDomainMigrate3(domain, clientManaged.Handle, parameters.Pointer, (uint)parameters.Count, flags);
        if (moved.IsInvalid)
        {
            var ex = LibvirtException.FromLastError("virDomainMigrate3");
            moved.Dispose();
            throw ex;
        }

        moved.Dispose();
    }

    private async Task<MigrationResult> CompleteAsync(DomainHandle domain, string vmName, MigrationDestination destination, TaskCompletionSource<IReadOnlyDictionary<string, object>> waiter, TimeSpan total)
    {
        IReadOnlyDictionary<string, object>? stats;
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
            JobStats.Milliseconds(stats, "downtime"),
            JobStats.Long(stats, "data_processed") ?? JobStats.Long(stats, "memory_processed"));
        Log.MigrationDone(_logger, vmName, Name, destination.Name, total, result.Downtime);
        return result;
    }

    private static unsafe Dictionary<string, object>? CompletedStats(DomainHandle domain)
    {
        try
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
        catch (ObjectDisposedException)
        {
            return null;
        }
    }
}
