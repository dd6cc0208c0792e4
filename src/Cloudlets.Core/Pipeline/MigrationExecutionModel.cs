using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Pipeline;

/// <summary>How a migration ended.</summary>
public enum MigrationOutcomeKind
{
    /// <summary>The VM runs on the destination.</summary>
    Succeeded,
    /// <summary>The migration failed; the VM stays on the source.</summary>
    Failed,
    /// <summary>The executor aborted the migration (a timeout or shutdown); the VM stays on the source.</summary>
    Aborted,
    /// <summary>
    /// Nothing was started: the start gate refused (a leadership fence), or the host refused before doing
    /// anything (<see cref="MigrationNotStartedException"/>, such as a fenced host's
    /// <see cref="Election.LeadershipLostException"/>). Not a failure: no host is backed off, and the VM's
    /// next window may propose the move again.
    /// </summary>
    Skipped,
}

/// <summary>Why the executor aborted a migration.</summary>
public enum MigrationAbortCause
{
    /// <summary>Not aborted.</summary>
    None,
    /// <summary>No progress was reported within the progress timeout.</summary>
    ProgressTimeout,
    /// <summary>The migration did not finish within the completion timeout.</summary>
    CompletionTimeout,
    /// <summary>The executor was stopped or disposed while the migration ran (after the stop's drain timeout, for a stop).</summary>
    Shutdown,
    /// <summary>Aborted through its <see cref="MigrationHandle.Abort()"/>.</summary>
    Requested,
}

/// <summary>
/// A migration the executor started: its outcome, and an abort of this one migration (the VM then
/// stays on its source). Returned by <see cref="MigrationExecutor.TryStart"/>.
/// </summary>
public sealed class MigrationHandle
{
    private readonly CancellationTokenSource _abort;
    private readonly TaskCompletionSource<MigrationOutcome> _outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<bool> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _cause;
    private int _returned;

    internal MigrationHandle(MigrationRequest request, DateTimeOffset startedAt, CancellationToken executorDisposing)
    {
        Request = request;
        StartedAt = startedAt;
        _abort = CancellationTokenSource.CreateLinkedTokenSource(executorDisposing);
    }

    /// <summary>What is being migrated where.</summary>
    public MigrationRequest Request { get; }

    /// <summary>The VM.</summary>
    public string VmName => Request.VmName;

    /// <summary>When the executor started it.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>
    /// The outcome, once the migration ended and (for a success) its improvement check is done; the
    /// same value <see cref="MigrationExecutor.Outcomes"/> publishes. Never faults.
    /// </summary>
    public Task<MigrationOutcome> Outcome => _outcome.Task;

    /// <summary>
    /// <see langword="true"/> once the executor has called the source host's migration (its start gate, if
    /// any, passed); <see langword="false"/> when the migration ended before that (the start gate refused,
    /// or it was aborted first). Never faults.
    /// </summary>
    public Task<bool> Started => _started.Task;

    /// <summary>
    /// Aborts this migration through the source host (the VM stays on its source): the outcome
    /// becomes <see cref="MigrationOutcomeKind.Aborted"/> with <see cref="MigrationAbortCause.Requested"/>,
    /// unless the hypervisor finished the migration first.
    /// </summary>
    /// <returns>Whether this call asked for the abort: <see langword="false"/> when the migration call already returned or another abort came first.</returns>
    public bool Abort() => Abort(MigrationAbortCause.Requested);

    internal CancellationToken Token => _abort.Token;

    internal MigrationAbortCause Cause => (MigrationAbortCause)Volatile.Read(ref _cause);

    internal bool Abort(MigrationAbortCause cause)
    {
        if (Volatile.Read(ref _returned) == 1
            || Interlocked.CompareExchange(ref _cause, (int)cause, (int)MigrationAbortCause.None) != (int)MigrationAbortCause.None)
        {
            return false;
        }

        try
        {
            _abort.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The migration ended meanwhile.
        }

        return true;
    }

    internal void MigrationReturned() => Volatile.Write(ref _returned, 1);

    internal void MarkStarted(bool started) => _started.TrySetResult(started);

    internal void Complete(MigrationOutcome outcome)
    {
        _outcome.TrySetResult(outcome);
        _abort.Dispose();
    }
}

/// <summary>What the check after a move found.</summary>
public enum ImprovementVerdict
{
    /// <summary>No check was made (the migration did not succeed, or no check is configured).</summary>
    NotChecked,
    /// <summary>The users' latency after the move is lower than before.</summary>
    Improved,
    /// <summary>The users' latency after the move is not lower than before.</summary>
    NotImproved,
    /// <summary>No fresh samples were available to decide.</summary>
    NoData,
}

/// <summary>The users' latency before and after a move.</summary>
/// <param name="Verdict">What the check found.</param>
/// <param name="BeforeMs">The VM's score before the move in ms, or <see langword="null"/>.</param>
/// <param name="AfterMs">The VM's score after the move in ms, or <see langword="null"/>.</param>
public sealed record ImprovementCheck(ImprovementVerdict Verdict, double? BeforeMs, double? AfterMs)
{
    /// <summary>No check was made.</summary>
    public static ImprovementCheck NotChecked { get; } = new(ImprovementVerdict.NotChecked, null, null);

    /// <summary>The measured gain in ms (before minus after), or <see langword="null"/>.</summary>
    public double? GainMs => BeforeMs is { } b && AfterMs is { } a && double.IsFinite(b) ? b - a : null;
}

/// <summary>A migration to run.</summary>
/// <param name="VmName">The VM.</param>
/// <param name="Source">The host it runs on.</param>
/// <param name="Destination">The host it should run on.</param>
/// <param name="Options">The migration options, or <see langword="null"/> for the executor's.</param>
/// <param name="ScoreBeforeMs">The VM's score on its source before the move, as the improvement check measures it (the pipeline: the policy's <see cref="Decisions.IMigrationPolicy.Score"/>, in ms for <see cref="Decisions.LowestLatencyPolicy"/>), or <see langword="null"/>.</param>
/// <param name="DestinationDataUri">The address the destination receives migration data on, or <see langword="null"/> for its own choice (see <see cref="MigrationDestination.DataUri"/>).</param>
public sealed record MigrationRequest(
    string VmName,
    IHypervisorHost Source,
    IHypervisorHost Destination,
    MigrationOptions? Options = null,
    double? ScoreBeforeMs = null,
    Uri? DestinationDataUri = null);

/// <summary>How a migration ended, with the error and the improvement check.</summary>
/// <param name="VmName">The VM.</param>
/// <param name="Source">The source host name.</param>
/// <param name="Destination">The destination host name; empty only for a migration <see cref="StartedElsewhere"/> that failed before its destination was seen (only the source's job showed it).</param>
/// <param name="Kind">Succeeded, failed or aborted.</param>
/// <param name="StartedAt">When the executor started it.</param>
/// <param name="FinishedAt">When the migration call returned.</param>
/// <param name="Result">The hypervisor's result for a success, otherwise <see langword="null"/>.</param>
/// <param name="Error">The error for a failure or an abort, otherwise <see langword="null"/>.</param>
/// <param name="AbortCause">Why it was aborted, or <see cref="MigrationAbortCause.None"/>.</param>
/// <param name="Improvement">Whether the users' latency really improved (successes only).</param>
public sealed record MigrationOutcome(
    string VmName,
    string Source,
    string Destination,
    MigrationOutcomeKind Kind,
    DateTimeOffset StartedAt,
    DateTimeOffset FinishedAt,
    MigrationResult? Result,
    Exception? Error,
    MigrationAbortCause AbortCause,
    ImprovementCheck Improvement)
{
    /// <summary>From start to the end of the migration call.</summary>
    public TimeSpan Duration => FinishedAt - StartedAt;

    /// <summary>
    /// Whether another instance started this migration (for example a leader before a takeover) and this
    /// one found it under way on the hosts and watched it end; then <see cref="StartedAt"/> is when it started
    /// as the source's job tells (when it was found, for a host without job state), the result carries no
    /// downtime or byte counts, and the executor's metrics do not count it.
    /// </summary>
    public bool StartedElsewhere { get; init; }

    /// <summary>
    /// The link's transfer rate and the VM's dirty rate as this migration's progress reports showed them (also when it
    /// failed or was aborted: a copy that did not converge measured both), or <see langword="null"/> when no report
    /// carried them. The pipeline gives them to the policy's cost estimate for later moves over the same pair of hosts
    /// and of the same VM.
    /// </summary>
    public MigrationMeasurements? Measured { get; init; }
}

/// <summary>What a migration measured of the path between its hosts and of its VM.</summary>
/// <param name="BandwidthBytesPerSecond">The median transfer rate of its progress reports (QEMU's <c>memory_bps</c>), or <see langword="null"/>.</param>
/// <param name="DirtyRateBytesPerSecond">The VM's memory dirty rate in its last report, in bytes (pages × <see cref="PageSizeBytes"/>), or <see langword="null"/>.</param>
public sealed record MigrationMeasurements(double? BandwidthBytesPerSecond, double? DirtyRateBytesPerSecond)
{
    /// <summary>The page size a dirty rate in pages is converted with: 4 KiB, QEMU's target page size on x86-64.</summary>
    public const int PageSizeBytes = 4096;
}

/// <summary>What an improvement check is given.</summary>
/// <param name="Request">The migration that ran.</param>
/// <param name="Result">The hypervisor's result.</param>
/// <param name="CompletedAt">When the migration finished; samples sent after it measure the new placement.</param>
/// <param name="CancellationToken">Cancelled when the executor is disposed.</param>
public readonly record struct ImprovementCheckArguments(
    MigrationRequest Request,
    MigrationResult Result,
    DateTimeOffset CompletedAt,
    CancellationToken CancellationToken);

/// <summary>
/// Options of <see cref="MigrationExecutor"/>. Every option documents its default and range; the
/// executor validates them once, when it is built.
/// </summary>
public sealed class MigrationExecutorOptions : IValidatableOptions
{
    /// <summary>Migrations running at once in total. Range [1, 1000]. The default is 2.</summary>
    public int MaxConcurrentMigrations { get; set; } = 2;

    /// <summary>Migrations touching one host (as source or destination) at once. Range [1, 100]. The default is 1.</summary>
    public int MaxConcurrentPerHost { get; set; } = 1;

    /// <summary>A migration with no progress for this long is aborted. Range (0, 1 day]. The default is 30 seconds.</summary>
    public TimeSpan ProgressTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A migration still running after this long is aborted. Range (0, 1 day]. The default is 10 minutes.</summary>
    public TimeSpan CompletionTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The first backoff of a host after a failed or aborted migration to it; it doubles with each further failure. Range (0, 1 day]. The default is 30 seconds.</summary>
    public TimeSpan BackoffBase { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest backoff. Range [<see cref="BackoffBase"/>, 1 day]. The default is 10 minutes.</summary>
    public TimeSpan BackoffMax { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long after a successful move the users' latency is checked, so fresh samples exist. Range [0, 1 hour]. The default is 15 seconds.</summary>
    public TimeSpan ImprovementCheckDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The migration options for requests that carry none. The default is a live, peer-to-peer migration (<see cref="MigrationOptions"/>'s defaults).</summary>
    public MigrationOptions Migration { get; set; } = new();

    /// <summary>Returns a copy.</summary>
    public MigrationExecutorOptions Clone() => (MigrationExecutorOptions)MemberwiseClone();

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.InRange(nameof(MaxConcurrentMigrations), MaxConcurrentMigrations, 1, 1000);
        errors.InRange(nameof(MaxConcurrentPerHost), MaxConcurrentPerHost, 1, 100);
        MigrationPipelineOptions.Positive(errors, nameof(ProgressTimeout), ProgressTimeout, TimeSpan.FromDays(1));
        MigrationPipelineOptions.Positive(errors, nameof(CompletionTimeout), CompletionTimeout, TimeSpan.FromDays(1));
        MigrationPipelineOptions.Positive(errors, nameof(BackoffBase), BackoffBase, TimeSpan.FromDays(1));
        errors.Require(
            BackoffMax >= BackoffBase && BackoffMax <= TimeSpan.FromDays(1),
            nameof(BackoffMax),
            FormattableString.Invariant($"is {BackoffMax}; the range is [BackoffBase ({BackoffBase}), 1 day]."));
        errors.InRange(nameof(ImprovementCheckDelay), ImprovementCheckDelay, TimeSpan.Zero, TimeSpan.FromHours(1));
        errors.Require(Migration is not null, nameof(Migration), "is required.");
    }
}
