using System.Diagnostics;

namespace Cloudlets.Core.Decisions;

/// <summary>
/// The threads that run the lanes evaluations hand over (<see cref="EvaluationLane"/>): process-wide, at most
/// one fewer than the processors (and <see cref="EvaluationLane.MaxLanes"/>), each started the first time a lane
/// is handed over while every started one is busy, then kept for the life of the process, parked on a monitor
/// while idle (background threads: they never hold a process open).
/// </summary>
/// <remarks>
/// Why not the thread pool: a pool thread retires after 20 s idle, and the pool allocates managed objects
/// when it creates one again, so a controller that ticks less often than that (or a benchmark after a slow
/// baseline) paid about 2 KB per tick, and the pool's thread injection added a few bytes now and then even
/// between back-to-back ticks. These threads allocate when they are created, once, and never after. What
/// they own is no handle a caller could release: like the pool's, their lifetime is the process's, so no
/// type that uses them has to become disposable. Nothing waits on them: a lane that no thread has taken
/// when its evaluation needs it is run by the evaluating thread (or, for a look-ahead, dropped).
/// </remarks>
internal static class LaneWorkers
{
    /// <summary>Lanes waiting for a thread; beyond this many, a lane is not queued (its evaluation runs it).</summary>
    private const int QueueCapacity = 256;

    /// <summary>An idle thread's spin between two looks at the queue.</summary>
    private const int SpinIterations = 20;

    /// <summary>How long an idle thread spins before it parks.</summary>
    private static readonly TimeSpan SpinBeforeParking = TimeSpan.FromMilliseconds(1);

    private static readonly object Gate = new();
    private static readonly EvaluationLane?[] Waiting = new EvaluationLane?[QueueCapacity];
    private static int _head;
    private static int _count;
    private static int _threads;
    private static int _idle;     // parked on the gate
    private static int _spinning; // idle, not parked yet: takes what is queued without a pulse
    private static long _completed;

    /// <summary>The most threads this process starts: one fewer than the processors, at least one.</summary>
    internal static int MaxThreadCount { get; } = Math.Clamp(Environment.ProcessorCount - 1, 1, EvaluationLane.MaxLanes - 1);

    /// <summary>The threads started so far (for the tests).</summary>
    internal static int ThreadCount => Volatile.Read(ref _threads);

    /// <summary>How many shares these threads have run, not counting those the evaluating thread had claimed first (for the tests).</summary>
    internal static long Completed => Interlocked.Read(ref _completed);

    /// <summary>Queues <paramref name="lane"/> for the next free thread, starting one if none is idle and fewer than the most run.</summary>
    internal static void Queue(EvaluationLane lane)
    {
        var start = false;
        lock (Gate)
        {
            if (_count == QueueCapacity)
            {
                // The threads are far behind (or none could be started): the oldest entry gives way. Its
                // evaluation runs that lane itself, or drops a look-ahead; a thread start is still tried below.
                Waiting[_head] = null;
                _head = (_head + 1) % QueueCapacity;
                _count--;
            }

            Waiting[(_head + _count) % QueueCapacity] = lane;
            _count++;
            if (_idle > 0)
            {
                // Counted off here, not by the woken thread once it has the gate again: a share queued in the
                // meantime must not count on the same wake-up, but wake another thread or start one.
                _idle--;
                Monitor.Pulse(Gate);
            }
            else if (Volatile.Read(ref _spinning) < _count && _threads < MaxThreadCount)
            {
                _threads++;
                start = true;
            }
        }

        if (!start)
        {
            return;
        }

        // Started outside the lock: creating a thread takes a while, and the new thread takes the gate first.
        try
        {
            new Thread(Work) { IsBackground = true, Name = "Cloudlets policy lane" }.Start();
        }
#pragma warning disable CA1031 // Whatever Start throws, throwing here would leave the lanes started before unwaited for.
        catch (Exception)
#pragma warning restore CA1031
        {
            // No thread could be made: the lane stays queued, and its evaluation runs it.
            lock (Gate)
            {
                _threads--;
            }
        }
    }

    private static void Work()
    {
        while (true)
        {
            // An evaluation hands over its shares a little apart (rows, refresh, look-ahead): spin for a while
            // before parking, as the pool's threads do, so that the next one starts without a wake-up. Measured
            // in ticks at 1,000,000 VMs: parking at once made windows with moves about 10 ms slower.
            Interlocked.Increment(ref _spinning);
            var idleSince = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref _count) == 0 && Stopwatch.GetElapsedTime(idleSince) < SpinBeforeParking)
            {
                Thread.SpinWait(SpinIterations);
            }

            Interlocked.Decrement(ref _spinning); // then it looks under the gate, so a lane queued meanwhile is taken

            EvaluationLane lane;
            lock (Gate)
            {
                while (_count == 0)
                {
                    _idle++; // the thread that pulses counts it off
                    Monitor.Wait(Gate);
                }

                lane = Waiting[_head]!;
                Waiting[_head] = null;
                _head = (_head + 1) % QueueCapacity;
                _count--;
            }

            if (lane.Execute()) // catches what the share throws: the lane keeps it for its evaluation
            {
                Interlocked.Increment(ref _completed);
            }
        }
    }
}
