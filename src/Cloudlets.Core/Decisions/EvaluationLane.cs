using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Cloudlets.Core.Decisions;

/// <summary>
/// One share of an evaluation's independent work, run on one of the policy's lane threads (<see cref="LaneWorkers"/>): the rows of latencies to
/// prepare again, the VMs whose reused searches to bring up to date, or the look-ahead that searches, ahead
/// of the evaluating thread, for the VMs whose reused best host has filled up (see <see cref="LowestLatencyPolicy"/>).
/// Owned by a <see cref="DecisionBuffer"/> and reused by every evaluation into it, with scratch of its own,
/// so handing work over allocates nothing. It owns no thread and no kernel object: whoever claims it first —
/// a lane thread, or the evaluating thread once its own share is done — runs it, so an evaluation never
/// waits on busy lane threads.
/// </summary>
internal sealed class EvaluationLane
{
    /// <summary>The most lanes an evaluation uses.</summary>
    internal const int MaxLanes = 64;

    private const int Idle = 0;
    private const int Running = 1;
    private const int Done = 2;

    private readonly double[] _scores;
    private readonly double[] _orderKeys;
    private readonly long[] _orderSeen;
    private long _orderStamp;
    private int _state = Done;
    private Share _share;
    private LowestLatencyPolicy? _policy;
    private FleetSnapshot? _snapshot;
    private DecisionBuffer? _buffer;
    private bool _indexed;
    private bool _ordered;
    private long _now;
    private long _evaluation;
    private ExceptionDispatchInfo? _failure;

    internal EvaluationLane(int hostCount)
    {
        _scores = new double[hostCount];
        _orderKeys = new double[hostCount];
        _orderSeen = new long[hostCount];
    }

    /// <summary>What the shares run so far allocated on the threads that ran them (for the allocation tests: the lane threads are not the test's).</summary>
    internal long AllocatedBytes { get; private set; }

    /// <summary>The first VM (or entry of <see cref="DecisionBuffer.RowsToPrepare"/>) of the share.</summary>
    internal int From { get; private set; }

    /// <summary>One past the last of the share.</summary>
    internal int To { get; private set; }

    /// <summary>Hands the VMs <paramref name="from"/> to <paramref name="to"/> of up to three users to the lane threads, to bring their searches up to date.</summary>
    internal void StartRefresh(LowestLatencyPolicy policy, FleetSnapshot snapshot, DecisionBuffer buffer, bool indexed, long evaluation, int from, int to)
    {
        _share = Share.Refresh;
        Set(policy, snapshot, buffer, indexed, evaluation, from, to);
    }

    /// <summary>
    /// Hands the VMs <paramref name="from"/> to <paramref name="to"/> of up to three users to the lane threads, to bring
    /// their searches up to date under the rooms at the start while the evaluating thread decides; it follows
    /// <see cref="Progress"/>.
    /// </summary>
    internal void StartOverlappedRefresh(LowestLatencyPolicy policy, FleetSnapshot snapshot, DecisionBuffer buffer, bool indexed, long evaluation, int from, int to)
    {
        _share = Share.OverlappedRefresh;
        Progress.RefreshedUpTo = from;
        Set(policy, snapshot, buffer, indexed, evaluation, from, to);
    }

    /// <summary>How far an overlapped refresh has got (written by whoever runs it, read by the evaluating thread).</summary>
    internal RefreshProgress Progress;

    /// <summary>Hands the look-ahead of an evaluation's decisions to the lane threads (see <see cref="LowestLatencyPolicy.LookAhead"/>); end it with <see cref="Stop(bool)"/>.</summary>
    internal void StartLookAhead(LowestLatencyPolicy policy, FleetSnapshot snapshot, DecisionBuffer buffer, long evaluation)
    {
        _share = Share.LookAhead;
        Set(policy, snapshot, buffer, indexed: true, evaluation, 0, snapshot.VmCount);
    }

    /// <summary>Whether no thread runs this lane's share or will run it (once true, everything the share wrote is visible to the reader).</summary>
    internal bool IsDone => Volatile.Read(ref _state) == Done;

    /// <summary>Tests: waits until some thread has claimed the share (or it is done), for up to <paramref name="limit"/>.</summary>
    internal void WaitClaimed(TimeSpan limit)
    {
        var until = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        while (Volatile.Read(ref _state) == Idle && Environment.TickCount64 < until)
        {
            Thread.Yield();
        }
    }

    /// <summary>
    /// Stops the first <paramref name="count"/> lanes (see <see cref="Stop(bool)"/>), then rethrows what the first of them that
    /// failed threw: for an evaluation that fails, whose half-done work the next one prepares again anyway.
    /// </summary>
    internal static void Stop(EvaluationLane[] lanes, int count, bool rethrow)
    {
        for (var i = 0; i < count; i++)
        {
            lanes[i].Stop(rethrow: false);
        }

        for (var i = 0; i < count && rethrow; i++)
        {
            lanes[i]._failure?.Throw();
        }
    }

    /// <summary>
    /// Ends a share: a look-ahead once the evaluating thread has decided every VM (the buffer's stop flag is
    /// set before), or any share of an evaluation that fails. One that no thread has claimed yet never runs;
    /// one that runs is waited for, so that it writes nothing after this returns. Then rethrows what it threw.
    /// </summary>
    internal void Stop(bool rethrow)
    {
        if (Interlocked.CompareExchange(ref _state, Done, Idle) != Idle)
        {
            var spin = default(SpinWait);
            while (Volatile.Read(ref _state) != Done)
            {
                spin.SpinOnce();
            }
        }

        if (rethrow)
        {
            _failure?.Throw();
        }
    }

    /// <summary>Hands the entries <paramref name="from"/> to <paramref name="to"/> of <see cref="DecisionBuffer.RowsToPrepare"/> to the lane threads, to prepare those rows.</summary>
    internal void StartRows(LowestLatencyPolicy policy, FleetSnapshot snapshot, DecisionBuffer buffer, long now, bool indexed, bool ordered, long evaluation, int from, int to)
    {
        _share = Share.Rows;
        _now = now;
        _ordered = ordered;
        Set(policy, snapshot, buffer, indexed, evaluation, from, to);
    }

    /// <summary>Runs the share if no other thread has claimed it (a lane thread's entry); whether it ran it.</summary>
    internal bool Execute()
    {
        if (Interlocked.CompareExchange(ref _state, Running, Idle) != Idle)
        {
            return false;
        }

        Run();
        return true;
    }

    /// <summary>
    /// Runs the shares nobody has claimed yet on this thread, then waits until every one of the first
    /// <paramref name="count"/> lanes is done, so that no lane thread writes the buffer after this returns;
    /// then rethrows what a share threw. Call it after every start, also when this thread's own share threw.
    /// </summary>
    internal static void Finish(EvaluationLane[] lanes, int count, bool rethrow = true)
    {
        for (var i = 0; i < count; i++)
        {
            if (Interlocked.CompareExchange(ref lanes[i]._state, Running, Idle) == Idle)
            {
                lanes[i].Run(); // catches what the share throws
            }
        }

        for (var i = 0; i < count; i++)
        {
            var spin = default(SpinWait);
            while (Volatile.Read(ref lanes[i]._state) != Done)
            {
                spin.SpinOnce();
            }
        }

        for (var i = 0; i < count && rethrow; i++)
        {
            lanes[i]._failure?.Throw();
        }
    }

    private void Set(LowestLatencyPolicy policy, FleetSnapshot snapshot, DecisionBuffer buffer, bool indexed, long evaluation, int from, int to)
    {
        _policy = policy;
        _snapshot = snapshot;
        _buffer = buffer;
        _indexed = indexed;
        _evaluation = evaluation;
        From = from;
        To = to;
        _failure = null;

        // Published last: a lane thread claims the share only after seeing it idle, so it sees the fields
        // above. A work item of an earlier evaluation that a lane thread runs late finds it taken or claims this
        // one; either way it runs once.
        Volatile.Write(ref _state, Idle);
        LaneWorkers.Queue(this);
    }

    private void Run()
    {
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            switch (_share)
            {
                case Share.Rows:
                    _policy!.PrepareRows(_snapshot!, _buffer!, _now, _indexed, _ordered, _evaluation, From, To, _orderKeys, _orderSeen, ref _orderStamp);
                    break;
                case Share.Refresh:
                    _policy!.RefreshRange(_snapshot!, _buffer!, _indexed, _evaluation, From, To, _scores, LowestLatencyPolicy.RefreshPart.FewUsers);
                    break;
                case Share.OverlappedRefresh:
                    _policy!.RefreshRange(_snapshot!, _buffer!, _indexed, _evaluation, From, To, _scores, LowestLatencyPolicy.RefreshPart.FewUsersAtStart, this);
                    break;
                default:
                    _policy!.LookAhead(_snapshot!, _buffer!, _evaluation, _scores);
                    break;
            }
        }
        catch (Exception e)
        {
            _failure = ExceptionDispatchInfo.Capture(e);
        }
        finally
        {
            AllocatedBytes += GC.GetAllocatedBytesForCurrentThread() - allocated;
            Volatile.Write(ref _state, Done);
        }
    }

    private enum Share
    {
        Rows,
        Refresh,
        OverlappedRefresh,
        LookAhead,
    }
}

/// <summary>
/// How far a refresh that runs while the evaluating thread decides has got: every VM of the share below it is up to
/// date. On a cache line of its own (64 bytes and more from either end), so that its writes evict no line the
/// evaluating thread reads but this one.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct RefreshProgress
{
    /// <summary>Every VM of the share below this one is up to date.</summary>
    [FieldOffset(64)]
    public int RefreshedUpTo;
}
