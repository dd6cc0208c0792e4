namespace Cloudlets.Libvirt;

/// <summary>
/// Aborts a running migration job until the migration call returns. A cancellation can arrive
/// before libvirt has started the job, or while the job is in a phase that refuses an abort, so
/// one attempt is not enough; it tries again (100 ms, doubling to 1 s) for as long as the call
/// runs, never a fixed number of times. <see cref="GaveUp"/> completes when the call has not returned
/// within the abort timeout, so the caller stops waiting instead of waiting without bound.
/// </summary>
internal sealed class AbortLoop
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(1);
    private readonly Func<bool> _tryAbort;
    private readonly Task _migration;
    private readonly TimeProvider _time;
    private readonly TimeSpan _firstRetry;
    private readonly TaskCompletionSource _gaveUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _started;
    private int _attempts;

    /// <summary>Creates the loop; nothing runs until <see cref="Start"/>.</summary>
    /// <param name="tryAbort">One abort attempt (blocking); true when the hypervisor accepted it.</param>
    /// <param name="migration">The migration call; the loop ends when it completes.</param>
    /// <param name="time">The clock for retries and the timeout.</param>
    /// <param name="firstRetry">The first retry delay (tests shorten it); the default is 100 ms.</param>
    public AbortLoop(Func<bool> tryAbort, Task migration, TimeProvider time, TimeSpan? firstRetry = null)
    {
        _tryAbort = tryAbort;
        _migration = migration;
        _time = time;
        _firstRetry = firstRetry ?? FirstRetry;
    }

    /// <summary>Whether an abort was started.</summary>
    public bool Started => Volatile.Read(ref _started) == 1;

    /// <summary>How many abort attempts were made.</summary>
    public int Attempts => Volatile.Read(ref _attempts);

    /// <summary>Completes when the migration call has not returned within the timeout given to <see cref="Start"/>.</summary>
    public Task GaveUp => _gaveUp.Task;

    /// <summary>The running loop (completed when it has not been started).</summary>
    public Task Running { get; private set; } = Task.CompletedTask;

    /// <summary>Starts aborting (once; later calls do nothing), off the caller's thread: an abort is a blocking RPC.</summary>
    public void Start(TimeSpan timeout)
    {
        if (Interlocked.Exchange(ref _started, 1) == 1)
        {
            return;
        }

        Running = Task.Run(() => RunAsync(timeout));
    }

    private async Task RunAsync(TimeSpan timeout)
    {
        var deadline = Task.Delay(timeout, _time).ContinueWith(
            _ => _gaveUp.TrySetResult(),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        var delay = _firstRetry;
        while (!_migration.IsCompleted && !_gaveUp.Task.IsCompleted)
        {
            Interlocked.Increment(ref _attempts);
            if (_tryAbort())
            {
                return;
            }

            await Task.WhenAny(_migration, _gaveUp.Task, Task.Delay(delay, _time)).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Math.Max(LastRetry.Ticks, _firstRetry.Ticks)));
        }

        GC.KeepAlive(deadline);
    }
}
