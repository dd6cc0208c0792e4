using System.Diagnostics;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Options;
using Cloudlets.Core.Scheduling;
using Cloudlets.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Core.Pipeline;

/// <summary>
/// Runs migrations through <see cref="IHypervisorHost.MigrateAsync"/> within limits (one per VM, a
/// number per host and in total), aborts a migration that makes no progress or does not finish in
/// time (by cancelling it: the source host aborts its job and the VM stays there), backs a failing
/// destination off exponentially, checks after each move that the users' latency really improved,
/// and reports every outcome on <see cref="Outcomes"/>. It never destroys or undefines a VM itself.
/// </summary>
public sealed class MigrationExecutor : IAsyncDisposable
{
    private readonly MigrationExecutorOptions _options;
    private readonly IScheduler _scheduler;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<ImprovementCheckArguments, ValueTask<ImprovementCheck>>? _check;
    private readonly IMigrationStartGate? _startGate;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _vms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _perHost = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Failures, DateTimeOffset Until)> _backoff = new(StringComparer.Ordinal);
    private readonly Dictionary<MigrationHandle, Task> _running = [];
    private readonly Dictionary<string, (string Source, string? Destination)> _elsewhere = new(StringComparer.Ordinal);
    private readonly ISubject<MigrationOutcome> _outcomes = Subject.Synchronize(new Subject<MigrationOutcome>());
    private readonly CancellationTokenSource _disposing = new();
    private readonly CancellationTokenSource _checksEnding = new();
    private int _active;
    private bool _stopping;
    private bool _disposed;

    /// <summary>Builds an executor, validating the options once.</summary>
    /// <param name="options">The options, copied; <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">
    /// The clock: it stamps outcomes and backoffs, and the Rx scheduler of the timeouts and of the
    /// improvement-check delay is derived from it (<see cref="TimeProviderScheduler"/>), so a fake
    /// provider drives all of them. <see langword="null"/> for <see cref="TimeProvider.System"/>.
    /// </param>
    /// <param name="loggerFactory">Where to log (category <c>Cloudlets.Core.Executor</c>), or <see langword="null"/> to log nothing.</param>
    /// <param name="improvementCheck">Measures the users' latency after a move, or <see langword="null"/> for no check.</param>
    /// <param name="startGate">
    /// Asked right before each admitted migration starts (a leadership fence), or <see langword="null"/> for none.
    /// A refusal skips the move: <see cref="MigrationOutcomeKind.Skipped"/>, nothing started, no host backed off.
    /// </param>
    /// <exception cref="OptionsValidationException">An option is out of its range (every error is listed).</exception>
    public MigrationExecutor(
        MigrationExecutorOptions? options = null,
        TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null,
        Func<ImprovementCheckArguments, ValueTask<ImprovementCheck>>? improvementCheck = null,
        IMigrationStartGate? startGate = null)
    {
        _options = (options ?? new MigrationExecutorOptions()).Clone();
        OptionsErrors.ValidateAndThrow(_options);
        _time = timeProvider ?? TimeProvider.System;
        _scheduler = new TimeProviderScheduler(_time);
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger(LoggerCategory);
        _check = improvementCheck;
        _startGate = startGate;
    }

    /// <summary>The logger category of the executor.</summary>
    public const string LoggerCategory = "Cloudlets.Core.Executor";

    /// <summary>Every migration's outcome (after its improvement check, for successes). Completes when the executor is disposed.</summary>
    public IObservable<MigrationOutcome> Outcomes => _outcomes.AsObservable();

    /// <summary>Migrations running now (including those awaiting their improvement check).</summary>
    public int ActiveCount
    {
        get
        {
            lock (_gate)
            {
                return _active;
            }
        }
    }

    /// <summary>Whether the VM is being migrated (or its move is being checked).</summary>
    public bool IsMigrating(string vmName)
    {
        lock (_gate)
        {
            return _vms.Contains(vmName);
        }
    }

    /// <summary>Where a running migration of the VM goes, or <see langword="null"/> when none runs.</summary>
    internal string? DestinationOf(string vmName)
    {
        lock (_gate)
        {
            foreach (var handle in _running.Keys)
            {
                if (string.Equals(handle.VmName, vmName, StringComparison.Ordinal))
                {
                    return handle.Request.Destination.Name;
                }
            }

            return null;
        }
    }

    /// <summary>Until when a host is backed off after failed migrations to it, or <see langword="null"/> when it is not.</summary>
    public DateTimeOffset? BackedOffUntil(string hostName)
    {
        lock (_gate)
        {
            return _backoff.TryGetValue(hostName, out var b) && b.Until > _time.GetUtcNow() ? b.Until : null;
        }
    }

    /// <summary>
    /// Starts a migration unless a limit, a backoff or a stop refuses it. Returns at once with the
    /// migration's handle (its outcome, and an abort of this one migration); the outcome is also
    /// published on <see cref="Outcomes"/>.
    /// </summary>
    /// <param name="request">What to migrate where.</param>
    /// <param name="rejection">Why it was not started, or <see langword="null"/>.</param>
    /// <returns>The running migration, or <see langword="null"/> when it was not started.</returns>
    /// <exception cref="ArgumentException">The source and the destination are the same host.</exception>
    /// <exception cref="ObjectDisposedException">The executor was disposed.</exception>
    public MigrationHandle? TryStart(MigrationRequest request, out string? rejection) => TryStartTyped(request, out _, out rejection);

    /// <summary><see cref="TryStart(MigrationRequest, out string?)"/> with the refusal typed.</summary>
    internal MigrationHandle? TryStartTyped(MigrationRequest request, out MigrationRejection reason, out string? rejection)
    {
        ArgumentNullException.ThrowIfNull(request);
        var source = request.Source.Name;
        var destination = request.Destination.Name;
        if (string.Equals(source, destination, StringComparison.Ordinal))
        {
            throw new ArgumentException($"VM '{request.VmName}': the source and the destination are the same host '{source}'.", nameof(request));
        }

        MigrationHandle handle;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            (reason, rejection) = _stopping ? (MigrationRejection.Stopping, "the executor is stopping: no new migration starts.") : Admit(request.VmName, source, destination);
            if (rejection is not null)
            {
                DecisionsLog.MigrationRejected(_logger, request.VmName, destination, rejection);
                return null;
            }

            _vms.Add(request.VmName);
            _perHost[source] = _perHost.GetValueOrDefault(source) + 1;
            _perHost[destination] = _perHost.GetValueOrDefault(destination) + 1;
            _active++;
            handle = new MigrationHandle(request, _time.GetUtcNow(), _disposing.Token);
        }

        // Started outside the lock: the migration call runs synchronously up to its first await.
        var task = RunAsync(request, handle);
        lock (_gate)
        {
            if (!task.IsCompleted)
            {
                _running.Add(handle, task);
            }
        }

        _ = task.ContinueWith(_ => Forget(handle), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return handle;
    }

    /// <summary>
    /// Stops gracefully: no new migration starts from now on (<see cref="TryStart"/> rejects),
    /// pending improvement checks end without a verdict, and running migrations may finish for up
    /// to <paramref name="drainTimeout"/> (on the executor's clock). Those still running then — or
    /// when <paramref name="cancellationToken"/> is cancelled — are aborted (each VM stays on its
    /// source). Returns when none runs; every outcome is published. Idempotent.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="drainTimeout"/> is negative.</exception>
    public async Task StopAsync(TimeSpan drainTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(drainTimeout, TimeSpan.Zero);
        Task[] running;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _stopping = true;
            running = [.. _running.Values];
        }

        await _checksEnding.CancelAsync().ConfigureAwait(false);
        if (running.Length == 0)
        {
            return;
        }

        var all = Task.WhenAll(running);
        try
        {
            await all.WaitAsync(drainTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            MigrationHandle[] left;
            lock (_gate)
            {
                left = [.. _running.Keys];
            }

            DecisionsLog.StopAbortingMigrations(_logger, left.Length, drainTimeout);
            foreach (var handle in left)
            {
                handle.Abort(MigrationAbortCause.Shutdown);
            }

            await all.ConfigureAwait(false); // migrations never fault: every failure is an outcome
        }
    }

    /// <summary>Aborts every running migration (each VM stays on its source), waits for them, and completes <see cref="Outcomes"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        Task[] running;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stopping = true;
            running = [.. _running.Values];
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        await _checksEnding.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(running).ConfigureAwait(false);
        _outcomes.OnCompleted();
        _disposing.Dispose();
        _checksEnding.Dispose();
    }

    private void Forget(MigrationHandle handle)
    {
        lock (_gate)
        {
            _running.Remove(handle);
        }
    }

    /// <summary>
    /// Migrations under way on the hosts that this executor did not start (another instance did, e.g. a
    /// leader before a takeover), keyed by VM: they count against the limits like this executor's own
    /// (on their destination too once it is known), and their VMs are not admitted, until the next call
    /// leaves them out.
    /// </summary>
    internal void SetStartedElsewhere(IReadOnlyDictionary<string, (string Source, string? Destination)> migrations)
    {
        lock (_gate)
        {
            _elsewhere.Clear();
            foreach (var (vm, hosts) in migrations)
            {
                _elsewhere[vm] = hosts;
            }
        }
    }

    /// <summary>Publishes the outcome of a migration another instance started, once it ended (not counted in this executor's metrics).</summary>
    internal void PublishStartedElsewhere(MigrationOutcome outcome) => _outcomes.OnNext(outcome);

    private (MigrationRejection Reason, string? Text) Admit(string vm, string source, string destination)
    {
        if (_vms.Contains(vm))
        {
            return (MigrationRejection.AlreadyMigrating, $"VM '{vm}' is already being migrated.");
        }

        if (_elsewhere.TryGetValue(vm, out var other))
        {
            return (MigrationRejection.AlreadyMigrating, $"VM '{vm}' is being migrated from '{other.Source}' to {(other.Destination is null ? "a host not seen yet" : $"'{other.Destination}'")} (started by another instance).");
        }

        if (_backoff.TryGetValue(destination, out var b) && b.Until > _time.GetUtcNow())
        {
            return (MigrationRejection.BackedOff, $"host '{destination}' is backed off until {b.Until:O} after {b.Failures} failed migration(s).");
        }

        var active = _active + _elsewhere.Count;
        if (active >= _options.MaxConcurrentMigrations)
        {
            return (MigrationRejection.Limit, $"{active} migrations are running, the limit in total is {_options.MaxConcurrentMigrations}.");
        }

        foreach (var host in (ReadOnlySpan<string>)[source, destination])
        {
            var taking = _perHost.GetValueOrDefault(host);
            foreach (var (from, to) in _elsewhere.Values)
            {
                taking += (from == host ? 1 : 0) + (to == host ? 1 : 0);
            }

            if (taking >= _options.MaxConcurrentPerHost)
            {
                return (MigrationRejection.Limit, $"host '{host}' already takes part in {taking} migration(s), the limit per host is {_options.MaxConcurrentPerHost}.");
            }
        }

        return (MigrationRejection.None, null);
    }

    private async Task RunAsync(MigrationRequest request, MigrationHandle handle)
    {
        var source = request.Source.Name;
        var destination = request.Destination.Name;
        var started = handle.StartedAt;
        using var activity = CloudletsTelemetry.ActivitySource.StartActivity("cloudlets.migrate", ActivityKind.Internal);
        activity?.SetTag(CloudletsTelemetry.Tags.Vm, request.VmName);
        activity?.SetTag(CloudletsTelemetry.Tags.SourceHost, source);
        activity?.SetTag(CloudletsTelemetry.Tags.DestinationHost, destination);
        CloudletsTelemetry.ActiveMigrations.Add(1);
        DecisionsLog.MigrationStarted(_logger, request.VmName, source, destination);

        using var completionTimer = _scheduler.Schedule(_options.CompletionTimeout, () => handle.Abort(MigrationAbortCause.CompletionTimeout));
        using var progress = new ProgressWatch(_scheduler, _options.ProgressTimeout, () => handle.Abort(MigrationAbortCause.ProgressTimeout));
        using var shutdown = _disposing.Token.Register(() => handle.Abort(MigrationAbortCause.Shutdown));

        MigrationResult? result = null;
        Exception? error = null;
        try
        {
            var verdict = await PassGateAsync(request, handle).ConfigureAwait(false);
            if (!verdict.Allowed)
            {
                throw new MigrationNotStartedException($"VM '{request.VmName}' was not migrated from '{source}' to '{destination}': the start gate refused ({verdict.Reason}); nothing was started.");
            }

            handle.MarkStarted(true);
            result = await request.Source.MigrateAsync(
                request.VmName, MigrationDestination.Of(request.Destination, request.DestinationDataUri), request.Options ?? _options.Migration, progress, handle.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Every failure of a migration is an outcome, never a crash of the loop.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            error = ex;
        }

        progress.Stop();
        completionTimer.Dispose();
        var finished = _time.GetUtcNow();
        handle.MigrationReturned();
        handle.MarkStarted(false); // no-op when the migration call was made
        var why = handle.Cause;
        var kind = error is null ? MigrationOutcomeKind.Succeeded
            : why != MigrationAbortCause.None ? MigrationOutcomeKind.Aborted
            : error is MigrationNotStartedException ? MigrationOutcomeKind.Skipped
            : MigrationOutcomeKind.Failed;
        if (kind == MigrationOutcomeKind.Succeeded)
        {
            why = MigrationAbortCause.None;
        }

        // The hosts are free as soon as the migration call returned; the VM stays locked until its outcome is out.
        lock (_gate)
        {
            _perHost[source]--;
            _perHost[destination]--;
            if (kind == MigrationOutcomeKind.Succeeded)
            {
                _backoff.Remove(destination);
            }
            else if (kind != MigrationOutcomeKind.Skipped)
            {
                // A skipped move never reached the destination: it says nothing about that host.
                var failures = _backoff.TryGetValue(destination, out var b) ? b.Failures + 1 : 1;
                var delay = TimeSpan.FromTicks((long)Math.Min(_options.BackoffMax.Ticks, _options.BackoffBase.Ticks * Math.Pow(2, Math.Min(failures - 1, 40))));
                var until = finished + delay;
                _backoff[destination] = (failures, until);
                DecisionsLog.HostBackedOff(_logger, destination, until, failures);
            }
        }

        switch (kind)
        {
            case MigrationOutcomeKind.Succeeded:
                DecisionsLog.MigrationSucceeded(_logger, request.VmName, source, destination, finished - started);
                break;
            case MigrationOutcomeKind.Aborted:
                DecisionsLog.MigrationAborted(_logger, request.VmName, source, destination, why);
                break;
            case MigrationOutcomeKind.Skipped:
                DecisionsLog.MigrationSkipped(_logger, request.VmName, source, destination, error!.Message);
                break;
            default:
                DecisionsLog.MigrationFailed(_logger, request.VmName, source, destination, error!);
                break;
        }

        var improvement = ImprovementCheck.NotChecked;
        if (kind == MigrationOutcomeKind.Succeeded && _check is not null)
        {
            improvement = await CheckAsync(request, result!, finished).ConfigureAwait(false);
        }

        var outcome = new MigrationOutcome(request.VmName, source, destination, kind, started, finished, result, error, why, improvement)
        {
            Measured = progress.Measured(),
        };
        var tags = new TagList
        {
            { CloudletsTelemetry.Tags.Outcome, kind.ToString() },
            { CloudletsTelemetry.Tags.SourceHost, source },
            { CloudletsTelemetry.Tags.DestinationHost, destination },
        };
        CloudletsTelemetry.Migrations.Add(1, tags);
        CloudletsTelemetry.MigrationDuration.Record(outcome.Duration.TotalSeconds, tags);
        CloudletsTelemetry.ActiveMigrations.Add(-1);
        activity?.SetTag(CloudletsTelemetry.Tags.Outcome, kind.ToString());
        if (kind != MigrationOutcomeKind.Succeeded)
        {
            activity?.SetStatus(ActivityStatusCode.Error, error?.Message);
        }

        lock (_gate)
        {
            _vms.Remove(request.VmName);
            _active--;
        }

        _outcomes.OnNext(outcome);
        handle.Complete(outcome);
    }

    /// <summary>The start gate's verdict; a gate that throws refuses (an abort meanwhile surfaces as the abort).</summary>
    private async ValueTask<MigrationStartVerdict> PassGateAsync(MigrationRequest request, MigrationHandle handle)
    {
        if (_startGate is null)
        {
            return MigrationStartVerdict.Allow;
        }

        try
        {
            return await _startGate.CheckAsync(request, handle.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (handle.Token.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // A gate that cannot answer is a no: a fence fails closed.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return MigrationStartVerdict.Refuse("the start gate failed: " + ex.Message);
        }
    }

    private async Task<ImprovementCheck> CheckAsync(MigrationRequest request, MigrationResult result, DateTimeOffset completedAt)
    {
        try
        {
            if (_options.ImprovementCheckDelay > TimeSpan.Zero)
            {
                await SchedulerDelay.Delay(_scheduler, _options.ImprovementCheckDelay, _checksEnding.Token).ConfigureAwait(false);
            }

            var check = await _check!(new ImprovementCheckArguments(request, result, completedAt, _checksEnding.Token)).ConfigureAwait(false);
            DecisionsLog.ImprovementChecked(_logger, request.VmName, request.Destination.Name, check.Verdict, check.BeforeMs, check.AfterMs);
            if (check.GainMs is { } gain)
            {
                CloudletsTelemetry.LatencyGain.Record(gain, new KeyValuePair<string, object?>(CloudletsTelemetry.Tags.DestinationHost, request.Destination.Name));
            }

            return check;
        }
        catch (OperationCanceledException)
        {
            return ImprovementCheck.NotChecked;
        }
#pragma warning disable CA1031 // A failed check must not hide the migration's outcome.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            DecisionsLog.ImprovementCheckFailed(_logger, request.VmName, ex);
            return ImprovementCheck.NotChecked;
        }
    }

    /// <summary>
    /// Re-arms the progress timeout whenever a report shows progress: more data processed, less
    /// remaining, or (when the hypervisor reports no counters) any report at all.
    /// </summary>
    private sealed class ProgressWatch : IProgress<MigrationProgress>, IDisposable
    {
        private readonly IScheduler _scheduler;
        private readonly TimeSpan _timeout;
        private readonly Action _onTimeout;
        private readonly Lock _gate = new();
        private IDisposable? _timer;
        private readonly List<double> _bandwidths = [];
        private long _processed = -1;
        private long _remaining = long.MaxValue;
        private long? _dirtyPagesPerSecond;
        private bool _stopped;

        public ProgressWatch(IScheduler scheduler, TimeSpan timeout, Action onTimeout)
        {
            _scheduler = scheduler;
            _timeout = timeout;
            _onTimeout = onTimeout;
            Arm();
        }

        public void Report(MigrationProgress value)
        {
            lock (_gate)
            {
                if (_stopped)
                {
                    return;
                }

                // QEMU reports 0 before the first bytes move and after the switchover: not a rate of the link.
                if (value.BandwidthBytesPerSecond is > 0 and var bandwidth)
                {
                    _bandwidths.Add(bandwidth);
                }

                if (value.DirtyRatePagesPerSecond is { } dirty)
                {
                    _dirtyPagesPerSecond = dirty;
                }

                var progressed = value.DataProcessedBytes is null && value.DataRemainingBytes is null;
                if (value.DataProcessedBytes is { } p && p > _processed)
                {
                    _processed = p;
                    progressed = true;
                }

                if (value.DataRemainingBytes is { } r && r < _remaining)
                {
                    _remaining = r;
                    progressed = true;
                }

                if (progressed)
                {
                    Arm();
                }
            }
        }

        public void Stop()
        {
            lock (_gate)
            {
                _stopped = true;
                _timer?.Dispose();
            }
        }

        public void Dispose() => Stop();

        /// <summary>
        /// The median of the transfer rates reported (a rate of one moment swings with what QEMU was sending), and
        /// the last dirty rate (the pass closest to the end, when the rate decides whether the copy converges).
        /// </summary>
        public MigrationMeasurements? Measured()
        {
            lock (_gate)
            {
                if (_bandwidths.Count == 0 && _dirtyPagesPerSecond is null)
                {
                    return null;
                }

                double? median = null;
                if (_bandwidths.Count > 0)
                {
                    _bandwidths.Sort();
                    var mid = _bandwidths.Count / 2;
                    median = _bandwidths.Count % 2 == 1 ? _bandwidths[mid] : (_bandwidths[mid - 1] + _bandwidths[mid]) / 2;
                }

                return new MigrationMeasurements(median, _dirtyPagesPerSecond * MigrationMeasurements.PageSizeBytes);
            }
        }

        private void Arm()
        {
            _timer?.Dispose();
            _timer = _scheduler.Schedule(_timeout, _onTimeout);
        }
    }
}

/// <summary>Why the executor refused to start a migration.</summary>
internal enum MigrationRejection
{
    None,
    Stopping,
    AlreadyMigrating,
    BackedOff,
    Limit,
}
