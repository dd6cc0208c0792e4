using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Decisions;

/// <summary>
/// The default policy: move a VM to the host with the lowest latency to its users, calmly.
/// </summary>
/// <remarks>
/// <para>
/// A VM's score on a host is the weighted percentile (<see cref="LowestLatencyPolicyOptions.UserPercentile"/>)
/// of its users' latency to that host; an unreachable user counts as infinitely slow, and a host whose
/// data is stale for any user is not scored.
/// </para>
/// <para>
/// The gates, in order: ties keep the VM; the gain must reach both the absolute and the relative
/// minimum; the estimated migration cost must be below the gain over the expected stay; the VM must
/// be out of its cooldown; and the gain must have been seen in
/// <see cref="LowestLatencyPolicyOptions.ConfirmationWindows"/> consecutive windows. A move reserves
/// the VM's memory and vCPUs on its destination for the rest of the evaluation, so two VMs are never
/// sent into the same last slot.
/// </para>
/// </remarks>
public sealed class LowestLatencyPolicy : IMigrationPolicy
{
    private readonly LowestLatencyPolicyOptions _options;
    private readonly double _percentile;
    private readonly double _minAbsolute;
    private readonly double _minRelative;
    private readonly double _tie;
    private readonly double _maxLoss;
    private readonly long _maxAgeTicks;
    private readonly long _cooldownTicks;
    private readonly int _windows;
    private readonly int _decisiveWindows;
    private readonly double _decisiveFactor;
    private readonly long _reserve;
    private readonly double _bandwidth;
    private readonly double _dirty;
    private readonly double _staySeconds;
    private readonly double _impact;
    private readonly double _penalty;
    private readonly LatencyStatistic _statistic;
    private readonly int _depth;
    private readonly int _lanes;

    /// <summary>The index is used from this many hosts per index entry on (128 hosts at the default depth of 16).</summary>
    internal const int IndexMinimumHostsPerEntry = 8;

    /// <summary>Builds the policy, validating the options once.</summary>
    /// <param name="options">The options, copied; <see langword="null"/> for the defaults.</param>
    /// <exception cref="OptionsValidationException">An option is out of its range (the exception lists every violation with its property).</exception>
    public LowestLatencyPolicy(LowestLatencyPolicyOptions? options = null)
    {
        _options = (options ?? new LowestLatencyPolicyOptions()).Clone();
        OptionsErrors.ValidateAndThrow(_options);

        _statistic = _options.Statistic;
        _percentile = _options.UserPercentile;
        _minAbsolute = _options.MinAbsoluteGainMs;
        _minRelative = _options.MinRelativeGain;
        _tie = _options.TieToleranceMs;
        _maxLoss = _options.MaxLossRate;
        _maxAgeTicks = _options.MaxSampleAge.Ticks;
        _cooldownTicks = _options.Cooldown.Ticks;
        _windows = _options.ConfirmationWindows;
        _decisiveWindows = _options.DecisiveConfirmationWindows;
        _decisiveFactor = _options.DecisiveBenefitFactor;
        _reserve = _options.MemoryReserveBytes;
        _bandwidth = _options.DefaultBandwidthBytesPerSecond;
        _dirty = _options.DefaultDirtyRateBytesPerSecond;
        _staySeconds = _options.ExpectedStay.TotalSeconds;
        _impact = _options.MigrationImpactMs;
        _penalty = _options.MigrationPenaltyMsSeconds;
        _depth = _options.CandidateIndexDepth;
        _lanes = Math.Min(_options.MaxDegreeOfParallelism == 0 ? Environment.ProcessorCount : _options.MaxDegreeOfParallelism, EvaluationLane.MaxLanes);
    }

    /// <summary>
    /// From this many VMs on, the searches brought up to date before the decisions are split across
    /// threads (<see cref="LowestLatencyPolicyOptions.MaxDegreeOfParallelism"/>): below it, handing work to
    /// the lane threads costs more than it saves. Settable for tests.
    /// </summary>
    internal int ParallelMinimumVms { get; init; } = 65_536;

    /// <summary>For the fault tests: a refresh share starting at this VM throws (null: none does).</summary>
    internal Func<int, bool>? FailRefreshShare { get; init; }

    /// <summary>A copy of the options the policy was built with.</summary>
    public LowestLatencyPolicyOptions Options => _options.Clone();

    /// <inheritdoc />
    public void Evaluate(FleetSnapshot snapshot, DecisionBuffer results)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(results);
        if (!results.Fits(snapshot))
        {
            throw new ArgumentException("The decision buffer was created for a different snapshot layout.", nameof(results));
        }

        var now = snapshot.Now.UtcTicks;

        // Each VM's search is reused from an earlier evaluation while its inputs stand (see Refresh);
        // not with placement rules or candidate recording (they take the checked scan), nor with the
        // index off (the naive scan).
        var reuse = _depth > 0 && !snapshot.HasRules && !results.RecordsCandidates;
        if (reuse)
        {
            results.EnsureReuse();
        }

        try
        {
            EvaluateAll(snapshot, results, reuse);
        }
        catch
        {
            // Whatever the evaluation had prepared may be half done: the next one prepares everything again.
            results.PreparedBy = null;
            if (results.OverlapFrom >= 0)
            {
                // Lanes that refresh while the decisions run are stopped: none writes the buffer after this returns.
                results.OverlapFrom = -1;
                EvaluationLane.Stop(results.EnsureLanes(results.OverlapLanes), results.OverlapLanes, rethrow: false);
            }

            throw;
        }
    }

    private void EvaluateAll(FleetSnapshot snapshot, DecisionBuffer results, bool reuse)
    {
        var now = snapshot.Now.UtcTicks;
        var evaluation = ++results.EvaluationNumber;
        PrepareRooms(snapshot, results, evaluation);
        if (snapshot.HasRules)
        {
            PreparePlan(snapshot, results);
        }

        // On a small fleet the vectorised scan of every host is cheaper than searching lists.
        var indexed = _depth > 0 && snapshot.HostCount >= IndexMinimumHostsPerEntry * _depth;
        PrepareCells(snapshot, results, now, indexed, evaluation);
        if (reuse)
        {
            PrepareOpenHosts(snapshot, results);
            MarkForRefresh(snapshot, results, evaluation);
            Refresh(snapshot, results, indexed, evaluation);
        }

        results.RequiredWindows = _windows;
        results.EvaluatedAt = snapshot.Now;

        // Another lane may search ahead for the VMs whose reused best host fills up (see LookAhead); it
        // starts with the first such search, so a window without one never hands it over. Only in a 64-bit
        // process: the lane reads rooms (longs) while this thread writes them, and only there is such a
        // read never torn.
        var lookAhead = reuse && indexed && _lanes > 1 && snapshot.VmCount >= ParallelMinimumVms && Environment.Is64BitProcess;
        results.AheadLane = null;

        // While other lanes still refresh, the look-ahead waits: it would need one of them, and reads the
        // entries they write. It may start at the first search after they are done. From where they start,
        // this thread brings the VMs of more than three users up to date itself as it comes to them.
        var refreshing = reuse && results.OverlapFrom >= 0;
        var atStartFrom = refreshing ? results.OverlapFrom : int.MaxValue;
        results.AheadPending = lookAhead && !refreshing;
        if (lookAhead)
        {
            results.EnsureLookAhead();
            results.AheadProgress[0].DecidedUpTo = 0;
            results.AheadProgress[0].Stop = 0;
        }

        var moves = 0;
        var finished = false;
        var refreshedUpTo = atStartFrom;
        try
        {
            for (var vm = 0; vm < snapshot.VmCount; vm++)
            {
                if (vm == FailDecisionAt)
                {
                    throw new InvalidOperationException($"Injected fault in the decision of VM {vm}.");
                }

                if (vm >= atStartFrom)
                {
                    if (RefreshInline)
                    {
                        RefreshRange(snapshot, results, indexed, evaluation, vm, vm + 1, results.HostScores, RefreshPart.FewUsersAtStart);
                    }
                    else if (refreshing)
                    {
                        refreshedUpTo = AwaitRefresh(results, vm, refreshedUpTo);
                    }

                    if (snapshot.UserCount[vm] > 3)
                    {
                        RefreshRange(snapshot, results, indexed, evaluation, vm, vm + 1, results.HostScores, RefreshPart.ManyUsersAtStart);
                    }
                }

                if (refreshing && !RefreshInline && (vm & (RefreshProgressStep - 1)) == 0 && RefreshDone(results, wait: false))
                {
                    refreshing = false;
                    results.AheadPending = lookAhead;
                }

                if (EvaluateVm(snapshot, results, vm, now, indexed, reuse))
                {
                    moves++;
                }

                if ((vm & (AheadProgressStep - 1)) == AheadProgressStep - 1 && results.AheadLane is not null)
                {
                    Volatile.Write(ref results.AheadProgress[0].DecidedUpTo, vm + 1);
                }
            }

            if (refreshing)
            {
                RefreshDone(results, wait: true); // each has passed its last VM; the thread may still be leaving it
            }

            finished = true;
        }
        finally
        {
            results.AheadPending = false;
            if (results.AheadLane is { } lane)
            {
                results.AheadLane = null;
                Volatile.Write(ref results.AheadProgress[0].Stop, 1);
                lane.Stop(rethrow: finished);
            }
        }

        results.MoveCount = moves;
    }

    /// <summary>
    /// Whether every lane that refreshes while the evaluating thread decides is done, rethrowing what one threw;
    /// with <paramref name="wait"/>, once they are.
    /// </summary>
    private static bool RefreshDone(DecisionBuffer r, bool wait)
    {
        var shares = r.EnsureLanes(r.OverlapLanes);
        for (var lane = 0; lane < r.OverlapLanes && !wait; lane++)
        {
            if (!shares[lane].IsDone)
            {
                return false;
            }
        }

        r.OverlapFrom = -1;
        EvaluationLane.Finish(shares, r.OverlapLanes, rethrow: true);
        return true;
    }

    /// <summary>The evaluating thread tells the look-ahead how far it has decided once every this many VMs (a power of two).</summary>
    private const int AheadProgressStep = 16;

    /// <summary>
    /// How many VMs past the evaluating thread's reported progress the look-ahead works: those nearer are
    /// decided before a search there could finish (one search costs about as much as deciding a few dozen
    /// VMs without one).
    /// </summary>
    private const int AheadGap = 32;

    /// <summary>
    /// How far past that the look-ahead may run before it waits. Unbounded, it ran far ahead under rooms that
    /// were still wide: it skipped the VMs whose best host filled only later, and hosts it found filled up
    /// before they were used (at 1,000,000 VMs, 12,000 of 117,000 results used, against 50,000–58,000 of
    /// 53,000–68,000 with a window of 256–4,096 VMs).
    /// </summary>
    private const int AheadWindow = 1024;

    /// <summary>Tests: the look-ahead runs on the evaluating thread, at every search it would make, over every VM after that one.</summary>
    internal bool LookAheadInline { get; init; }

    /// <summary>Tests: once it has handed the look-ahead over, the evaluating thread waits (up to 10 s) until a lane thread has claimed it.</summary>
    internal bool LookAheadClaimed { get; init; }

    /// <summary>Tests: given how many results the look-ahead has written in this evaluation (0 as it starts), whether it throws now.</summary>
    internal Func<int, bool>? FailLookAhead { get; init; }

    /// <summary>
    /// Tests: what the lanes would refresh while the evaluating thread decides, that thread refreshes itself, each VM as
    /// it comes to decide it, so that every room reserved before is reserved by then.
    /// </summary>
    internal bool RefreshInline { get; init; }

    /// <summary>Tests: once it has handed a share of the refresh beside the decisions over, the evaluating thread waits (up to 10 s) until a lane thread has claimed it.</summary>
    internal bool RefreshClaimed { get; init; }

    /// <summary>Tests: the evaluating thread throws when it comes to decide this VM.</summary>
    internal int FailDecisionAt { get; init; } = -1;

    /// <summary>
    /// Searches, on another lane and ahead of the evaluating thread, the best other host of each VM of up
    /// to three users whose reused best host (see <see cref="Refresh"/>) has no room for it any more, as
    /// the evaluating thread would; that thread takes the result when it reaches the VM and the host found
    /// still has room for it (or none was found), and searches itself otherwise. Exact: within an
    /// evaluation room only shrinks, so every room this lane reads, however late, is at least the room
    /// at the moment the evaluating thread takes the result; the hosts this lane saw fit are a superset
    /// of those that fit then, and the best of a set is the best of any subset that holds it (no host
    /// found: none fits then either). The lane reads only what stays fixed during the decisions (cell
    /// values, orderings, lists, reuse entries, the VMs' inputs), the rooms, and how many hosts are still
    /// open (only to stop early once none is: that count only falls), writes only its own results and cursors (a cursor passes hosts that can take no VM of its class: they never can again
    /// in this evaluation), and never touches the open-host list the evaluating thread compacts: where
    /// that thread would scan the open hosts, it runs the vectorised scan of every host, which gives the
    /// same answer. It works at least <see cref="AheadGap"/> VMs past the last progress the evaluating thread
    /// reported, so the two rarely search the same VM, and it stops once that thread is done.
    /// </summary>
    // bounded: whether it keeps within AheadWindow of the evaluating thread (not when it runs on that thread, for the tests).
    internal void LookAhead(FleetSnapshot s, DecisionBuffer r, long evaluation, double[] scores, bool bounded = true)
    {
        var roomMemory = r.RoomMemory;
        var roomVCpus = r.RoomVCpus;
        var reuseBest = r.ReuseBest;
        var reuseBestScore = r.ReuseBestScore;
        var reuseCurrent = r.ReuseCurrentScore;
        var aheadBest = r.AheadBest;
        var aheadScore = r.AheadScore;
        var aheadAt = r.AheadAt;
        var progress = r.AheadProgress;
        var written = 0;
        if (FailLookAhead?.Invoke(written) == true)
        {
            throw new InvalidOperationException("Injected fault in the look-ahead as it starts.");
        }

        for (var vm = 0; vm < s.VmCount; vm++)
        {
            if (Volatile.Read(ref progress[0].Stop) != 0)
            {
                return;
            }

            var decided = Volatile.Read(ref progress[0].DecidedUpTo);
            if (vm < decided + AheadGap)
            {
                vm = decided + AheadGap;
                if (vm >= s.VmCount)
                {
                    return;
                }
            }
            else if (bounded)
            {
                var wait = default(SpinWait);
                while (vm > decided + AheadGap + AheadWindow)
                {
                    // Waits for the evaluating thread: it reports every few hundred nanoseconds, and stops this
                    // lane when done. Spins, then yields now and then, never sleeps a millisecond.
                    wait.SpinOnce(sleep1Threshold: -1);
                    if (Volatile.Read(ref progress[0].Stop) != 0)
                    {
                        return;
                    }

                    decided = Volatile.Read(ref progress[0].DecidedUpTo);
                }
            }

            if ((vm & (AheadProgressStep - 1)) == 0 && Volatile.Read(ref r.OpenCount) == 0)
            {
                return; // no host can take even the smallest VM: the evaluating thread searches no more
            }

            // What the evaluating thread would search again (Reused): a VM it decides with a search, of
            // up to three users (more use the buffer's scratch), whose reused best host is full and did
            // not score worse than its current host by more than the tie tolerance (those take AnyOpen).
            var users = s.UserCount[vm];
            var cur = s.CurrentHost[vm];
            if (users == 0 || users > 3 || cur < 0 || s.InFlight[vm] || s.Availability[cur] == HostAvailability.Down)
            {
                continue;
            }

            var best = reuseBest[vm];
            var memory = s.VmMemoryBytes[vm];
            var vcpus = s.VmVCpus[vm];
            if (best < 0 || (roomMemory[best] >= memory && roomVCpus[best] >= vcpus))
            {
                continue;
            }

            var currentScore = reuseCurrent[vm];
            if (double.IsNaN(currentScore) || reuseBestScore[vm] > currentScore + _tie)
            {
                continue;
            }

            aheadBest[vm] = SearchAhead(s, r, vm, cur, memory, vcpus, evaluation, scores, out var score);
            aheadScore[vm] = score;
            Volatile.Write(ref aheadAt[vm], evaluation);
            if (FailLookAhead?.Invoke(++written) == true)
            {
                throw new InvalidOperationException($"Injected fault in the look-ahead after {written} results.");
            }
        }
    }

    /// <summary>The search of the evaluating thread (<c>Search</c>) for the look-ahead: the same answer from what another lane may read (its own cursors and scores; no open-host list).</summary>
    private int SearchAhead(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, long evaluation, double[] scores, out double bestScore)
    {
        int found;
        if (r.OrderCount.Length == s.VantagePointCount)
        {
            var p = EssentialUser(s, r, vm, cur);
            if (p >= 0)
            {
                return WalkOrder(s, r, r.RoomMemory, r.RoomVCpus, vm, p, cur, memory, vcpus, evaluation, r.AheadCursor, r.AheadCursorAt, out found, out bestScore)
                    ? found
                    : ScanFast(s, r, vm, cur, memory, vcpus, scores, out bestScore);
            }
        }

        return SearchNearest(s, r, vm, cur, memory, vcpus, out found, out bestScore) ? found : ScanFast(s, r, vm, cur, memory, vcpus, scores, out bestScore);
    }

    /// <summary>
    /// Each user's latency to each host as one number (ms, +inf when unreachable, NaN when stale), the
    /// stale cells per vantage point, and the nearest-host index when <paramref name="indexed"/>. Only the
    /// rows that can have changed since this buffer's last evaluation by this policy of this snapshot
    /// are read again: rows written since (their version moved) and rows where a fresh cell may have
    /// turned stale; everything when host availability changed or time went back. A row left alone
    /// has the same values, count and index it would get again.
    /// </summary>
    private void PrepareCells(FleetSnapshot s, DecisionBuffer r, long now, bool indexed, long evaluation)
    {
        if (indexed)
        {
            r.EnsureNearestIndex(_depth);
        }

        // The full orderings serve only the searches of the reuse path (Refresh, Reused); once made they are
        // kept up to date in every indexed evaluation. When they are made (say, the first evaluation
        // without rules after some with), every row is prepared again: the rows left alone have none yet.
        var ordered = indexed && r.RowPreparedAt.Length != 0;
        var newOrders = ordered && r.EnsureOrder();

        var all = newOrders || !ReferenceEquals(r.PreparedBy, this) || !ReferenceEquals(r.PreparedFrom, s)
            || r.PreparedAvailabilityVersion != s.AvailabilityVersion || now < r.PreparedAtTicks;
        var rows = r.RowsToPrepare;
        var count = 0;
        for (var p = 0; p < s.VantagePointCount; p++)
        {
            if (all || r.PreparedRowVersion[p] != s.RowVersion[p] || now > r.RowFreshUntilTicks[p])
            {
                rows[count++] = p;
            }
        }

        // Rows are independent: with many to prepare (new samples from many vantage points), other lanes
        // take shares of the list, each with its own sort scratch.
        var lanes = count >= ParallelMinimumRows && s.VmCount >= ParallelMinimumVms ? _lanes : 1;
        if (lanes <= 1)
        {
            PrepareRows(s, r, now, indexed, ordered, evaluation, 0, count, r.OrderKeys, r.OrderSeen, ref r.OrderStamp);
        }
        else
        {
            // Lane k (from 1) takes the k-th share; this thread takes share 0, then any share no lane thread took.
            var work = r.EnsureLanes(lanes - 1);
            var size = (count + lanes - 1) / lanes;
            for (var lane = 1; lane < lanes; lane++)
            {
                work[lane - 1].StartRows(this, s, r, now, indexed, ordered, evaluation, Math.Min(count, lane * size), Math.Min(count, (lane + 1) * size));
            }

            var finished = false;
            try
            {
                PrepareRows(s, r, now, indexed, ordered, evaluation, 0, Math.Min(count, size), r.OrderKeys, r.OrderSeen, ref r.OrderStamp);
                finished = true;
            }
            finally
            {
                EvaluationLane.Finish(work, lanes - 1, rethrow: finished);
            }
        }

        r.RowsPreparedCount = count;
        r.AllRowsPrepared = all;
        r.PreparedBy = this;
        r.PreparedFrom = s;
        r.PreparedAvailabilityVersion = s.AvailabilityVersion;
        r.PreparedAtTicks = now;
    }

    /// <summary>From this many rows to prepare on (in a fleet of <see cref="ParallelMinimumVms"/> or more), the rows are split across lanes. Settable for tests.</summary>
    internal int ParallelMinimumRows { get; init; } = 256;

    /// <summary>Prepares the rows <paramref name="from"/> to <paramref name="to"/> of <see cref="DecisionBuffer.RowsToPrepare"/> (one lane's share, with its sort scratch).</summary>
    internal void PrepareRows(FleetSnapshot s, DecisionBuffer r, long now, bool indexed, bool ordered, long evaluation, int from, int to, double[] keys, long[] seen, ref long stamp)
    {
        var hosts = s.HostCount;
        for (var i = from; i < to; i++)
        {
            var p = r.RowsToPrepare[i];
            PrepareRow(s, r, p, now);
            if (r.RowPreparedAt.Length != 0)
            {
                r.RowPreparedAt[p] = evaluation;
            }

            if (indexed)
            {
                PrepareNearest(r, p, hosts);
            }

            if (ordered)
            {
                PrepareOrder(r, p, hosts, keys, seen, ref stamp);
            }
        }
    }

    private void PrepareRow(FleetSnapshot s, DecisionBuffer r, int p, long now)
    {
        var hosts = s.HostCount;
        var cells = s.Cells.AsSpan(p * hosts, hosts);
        var values = r.CellValue.AsSpan(p * hosts, hosts);
        var availability = s.Availability;
        var stale = 0;
        var freshUntil = long.MaxValue;
        for (var h = 0; h < cells.Length; h++)
        {
            ref readonly var c = ref cells[h];
            if (c.HasData)
            {
                if (now - c.NewestTicks > _maxAgeTicks)
                {
                    values[h] = double.NaN;
                    if (availability[h] == HostAvailability.Available)
                    {
                        stale++;
                    }

                    continue;
                }

                // This cell turns stale once the time passes its newest sample plus the maximum age.
                freshUntil = Math.Min(freshUntil, c.NewestTicks + _maxAgeTicks);
            }

            values[h] = Reachable(c);
        }

        r.StaleCount[p] = stale;
        r.RowFreshUntilTicks[p] = freshUntil;
        r.PreparedRowVersion[p] = s.RowVersion[p];
    }

    /// <summary>
    /// The nearest-host index: for every vantage point, the <see cref="LowestLatencyPolicyOptions.CandidateIndexDepth"/>
    /// hosts with the lowest latency among those that may receive VMs and that it reaches (a finite
    /// cell), ordered by (latency, host index) — the order in which a scan would prefer them. One pass
    /// over the cells with an insertion into a short sorted list: vantage points × hosts, nothing allocated.
    /// </summary>
    private void PrepareNearest(DecisionBuffer r, int p, int hosts)
    {
        var depth = _depth;
        var row = r.CellValue.AsSpan(p * hosts, hosts);
        var rooms = r.RoomMemory;
        var listHosts = r.NearestHost.AsSpan(p * depth, depth);
        var listValues = r.NearestValue.AsSpan(p * depth, depth);
        var count = 0;
        var worst = double.PositiveInfinity; // the last entry's latency once the list is full
        for (var h = 0; h < row.Length; h++)
        {
            var v = row[h];
            // NaN (stale) and +inf (unreachable) fail "v < worst"; so does a tie with a full list's
            // last entry, which a lower host index already holds.
            if (!(v < worst) || rooms[h] == long.MinValue)
            {
                continue;
            }

            var at = count < depth ? count++ : depth - 1;
            while (at > 0 && listValues[at - 1] > v)
            {
                listValues[at] = listValues[at - 1];
                listHosts[at] = listHosts[at - 1];
                at--;
            }

            listValues[at] = v;
            listHosts[at] = h;
            if (count == depth)
            {
                worst = listValues[depth - 1];
            }
        }

        r.NearestCount[p] = count;
    }

    /// <summary>
    /// The vantage point's full host ordering: the hosts the nearest-host index could list (a finite
    /// latency, may receive VMs), sorted by (latency, host index) — the order in which a scan prefers
    /// them. New samples move a row's latencies a little, so the previous ordering is nearly sorted: an
    /// insertion sort from it costs little more than one pass. When that takes too many shifts (the first
    /// time, or after large changes) a full sort does it instead.
    /// </summary>
    private static void PrepareOrder(DecisionBuffer r, int p, int hosts, double[] scratchKeys, long[] seen, ref long scratchStamp)
    {
        var row = r.CellValue.AsSpan(p * hosts, hosts);
        var rooms = r.RoomMemory;
        var order = r.OrderHost.AsSpan(p * hosts, hosts);
        var keys = scratchKeys.AsSpan(0, hosts);
        var stamp = ++scratchStamp;
        var count = 0;

        // The previous ordering's hosts that still qualify, in their old order, then the others (count
        // never passes i, so the row is rewritten in place).
        for (var i = 0; i < r.OrderCount[p]; i++)
        {
            var h = order[i];
            seen[h] = stamp;
            if (double.IsFinite(row[h]) && rooms[h] != long.MinValue)
            {
                keys[count] = row[h];
                order[count++] = h;
            }
        }

        for (var h = 0; h < row.Length; h++)
        {
            if (seen[h] != stamp && double.IsFinite(row[h]) && rooms[h] != long.MinValue)
            {
                keys[count] = row[h];
                order[count++] = h;
            }
        }

        keys = keys[..count];
        order = order[..count];
        var budget = 8L * count;
        var sorted = true;
        for (var i = 1; i < count && sorted; i++)
        {
            var v = keys[i];
            var h = order[i];
            var at = i;
            while (at > 0 && (keys[at - 1] > v || (keys[at - 1] == v && order[at - 1] > h)))
            {
                keys[at] = keys[at - 1];
                order[at] = order[at - 1];
                at--;
                if (--budget < 0)
                {
                    sorted = false;
                    break;
                }
            }

            keys[at] = v;
            order[at] = h;
        }

        if (!sorted)
        {
            // Every entry is still in the row once (the interrupted insertion put its value back), so a
            // full sort by latency and then the runs of equal latency by host index finishes the job.
            keys.Sort(order);
            for (var i = 1; i < count; i++)
            {
                var h = order[i];
                var at = i;
                while (at > 0 && keys[at - 1] == keys[i] && order[at - 1] > h)
                {
                    order[at] = order[at - 1];
                    at--;
                }

                order[at] = h;
            }
        }

        r.OrderCount[p] = count;
        r.OrderCursorAt[p] = -1; // the cursors point into the old ordering
    }

    /// <summary>
    /// The VM's best other host with room for it, by walking the ordering of one user's vantage point
    /// <paramref name="p"/>, an essential user (<see cref="EssentialUser"/>): no host scores below that user's
    /// own latency to it. With one user the first host with room is the answer; with several, every host
    /// with room is scored until the walked user's latency passes the best score found, which bounds every
    /// host after it. The answer is the one <see cref="ScanFast"/> gives (the lowest score, ties to the
    /// lowest index). The walk starts at the cursor of the VM's vCPU class, which first moves past the
    /// leading hosts that can take no VM of that class any more, for good in this evaluation; so once the
    /// near hosts fill up, the walks of the VMs after that stay short. Returns <see langword="false"/> when
    /// more than <see cref="WalkBudget"/> hosts would be scored (users far apart): the caller scans instead.
    /// An <paramref name="evaluation"/> of -1 walks without the cursors (from another thread).
    /// </summary>
    private bool WalkOrder(FleetSnapshot s, DecisionBuffer r, int vm, int p, int cur, long memory, int vcpus, long evaluation, out int best, out double bestScore) =>
        WalkOrder(s, r, r.RoomMemory, r.RoomVCpus, vm, p, cur, memory, vcpus, evaluation, r.OrderCursor, r.OrderCursorAt, out best, out bestScore);

    // roomMemory, roomVCpus: the rooms read (the buffer's, or those at the start of the evaluation); cursor,
    // cursorAt: the cursors walked (the evaluating thread's, or the look-ahead's own), with evaluation >= 0.
    private bool WalkOrder(FleetSnapshot s, DecisionBuffer r, long[] roomMemory, int[] roomVCpus, int vm, int p, int cur, long memory, int vcpus, long evaluation, int[] cursor, long[] cursorAt, out int best, out double bestScore)
    {
        var hosts = s.HostCount;
        var order = r.OrderHost.AsSpan(p * hosts, r.OrderCount[p]);
        if (evaluation >= 0 && cursorAt[p] != evaluation)
        {
            Array.Clear(cursor, p * DecisionBuffer.OrderClasses, DecisionBuffer.OrderClasses);
            cursorAt[p] = evaluation;
        }

        var minMemory = s.MinVmMemoryBytes;
        var minVCpus = s.MinVmVCpus;
        var i = 0;
        if (vcpus >= 1 && evaluation >= 0)
        {
            // Class k holds the VMs with at least k + 1 vCPUs: a host with fewer, or with room for no VM
            // at all, can take none of them for the rest of the evaluation.
            var k = Math.Min(vcpus, DecisionBuffer.OrderClasses) - 1;
            var cursors = cursor.AsSpan(p * DecisionBuffer.OrderClasses, DecisionBuffer.OrderClasses);
            for (var j = 0; j <= k; j++)
            {
                // A host no VM of a smaller class fits, fits none of this class either.
                i = Math.Max(i, cursors[j]);
            }

            while (i < order.Length && (roomVCpus[order[i]] <= k || roomMemory[order[i]] < minMemory || roomVCpus[order[i]] < minVCpus))
            {
                i++;
            }

            cursors[k] = i;
        }

        var cells = r.CellValue;
        var row = p * hosts;
        best = -1;
        bestScore = double.PositiveInfinity;
        var users = s.UserCount[vm];
        if (users == 1)
        {
            for (; i < order.Length; i++)
            {
                var h = order[i];
                if (h != cur && roomMemory[h] >= memory && roomVCpus[h] >= vcpus)
                {
                    best = h;
                    bestScore = cells[row + h];
                    return true;
                }
            }

            return true;
        }

        var threshold = Threshold(s, vm);
        var start = s.UserStart[vm];
        var three = users == 3;
        int rowA = s.UserVantage[start] * hosts, rowB = s.UserVantage[start + 1] * hosts, rowC = three ? s.UserVantage[start + 2] * hosts : rowB;
        double wa = s.UserWeight[start], wb = s.UserWeight[start + 1], wc = three ? s.UserWeight[start + 2] : 0;
        var scored = 0;
        for (; i < order.Length; i++)
        {
            var h = order[i];
            if (cells[row + h] > bestScore)
            {
                return true; // this host and every one after it score above the best
            }

            if (h == cur || roomMemory[h] < memory || roomVCpus[h] < vcpus)
            {
                continue;
            }

            if (++scored > WalkBudget)
            {
                return false;
            }

            var v = users <= 3 ? Percentile3(cells[rowA + h], cells[rowB + h], cells[rowC + h], wa, wb, wc, threshold) : Score(s, r, vm, h, threshold);
            if (v < bestScore || (v == bestScore && h < best))
            {
                best = h;
                bestScore = v;
            }
        }

        return true;
    }

    /// <summary>A walk of one user's ordering scores at most this many hosts before it gives way to a scan (users far apart make walks long).</summary>
    private const int WalkBudget = 8;

    /// <summary>
    /// The vantage point of one of the VM's essential users, or -1 when it has none: a user whose weight
    /// the others' together cannot replace in reaching the percentile's threshold, so that every score is
    /// at least that user's latency (the weighted percentile is one of the users' values, and the users at
    /// or below it reach the threshold only with this one among them). Of several, the one with the
    /// highest latency to the current host: its ordering reaches the best score soonest. With one user,
    /// that user. A small margin keeps a sum that rounds up to the threshold from counting as short.
    /// </summary>
    private int EssentialUser(FleetSnapshot s, DecisionBuffer r, int vm, int cur)
    {
        var start = s.UserStart[vm];
        var users = s.UserCount[vm];
        if (users == 1)
        {
            return s.UserVantage[start];
        }

        var total = s.TotalWeight[vm];
        var limit = Threshold(s, vm) - (1e-9 * total);
        var chosen = -1;
        var highest = double.NegativeInfinity;
        for (var j = 0; j < users; j++)
        {
            if (total - s.UserWeight[start + j] < limit)
            {
                var p = s.UserVantage[start + j];
                var v = cur >= 0 ? r.CellValue[(p * s.HostCount) + cur] : 0;
                if (chosen < 0 || v > highest)
                {
                    chosen = p;
                    highest = v;
                }
            }
        }

        return chosen;
    }

    /// <summary>
    /// The best candidate from the nearest-host index (the threshold algorithm): the users' lists are
    /// read in step, every host met is scored in full, and the search ends once the score that the
    /// lists' current entries would give (a lower bound for every host not met yet, the weighted
    /// percentile being monotone in each user's latency) is above the best score found. Returns
    /// <see langword="false"/> when the lists run out before that, and the caller scans every host; the
    /// answer is always the one <see cref="ScanFast"/> gives (the lowest score, ties to the lowest index).
    /// </summary>
    private bool SearchNearest(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, out int best, out double bestScore) =>
        SearchNearestUnder(s, r, r.RoomMemory, r.RoomVCpus, vm, cur, memory, vcpus, out best, out bestScore);

    // roomMemory, roomVCpus: the rooms read (the buffer's, or those at the start of the evaluation).
    private bool SearchNearestUnder(FleetSnapshot s, DecisionBuffer r, long[] roomMemory, int[] roomVCpus, int vm, int cur, long memory, int vcpus, out int best, out double bestScore)
    {
        var depth = _depth;
        var start = s.UserStart[vm];
        var users = s.UserCount[vm];
        best = -1;
        bestScore = double.PositiveInfinity;
        if (users == 1)
        {
            // One user: the first host of the list with room is the answer.
            var p = s.UserVantage[start];
            var count = r.NearestCount[p];
            var offset = p * depth;
            for (var i = 0; i < count; i++)
            {
                var h = r.NearestHost[offset + i];
                if (h != cur && roomMemory[h] >= memory && roomVCpus[h] >= vcpus)
                {
                    best = h;
                    bestScore = r.NearestValue[offset + i];
                    return true;
                }
            }

            // A list shorter than the depth holds every host that could be a candidate.
            return count < depth;
        }

        var threshold = Threshold(s, vm);
        if (users <= 3)
        {
            return SearchNearestFew(s, r, roomMemory, roomVCpus, vm, cur, memory, vcpus, threshold, out best, out bestScore);
        }

        var bounds = r.NearestBounds; // not UserValues: scoring a host writes those
        var complete = true;
        for (var rank = 0; rank < depth; rank++)
        {
            for (var j = 0; j < users; j++)
            {
                var p = s.UserVantage[start + j];
                if (rank >= r.NearestCount[p])
                {
                    // This user's list is exhausted: every host still unmet is unreachable, stale or
                    // not a destination for this user.
                    bounds[j] = double.PositiveInfinity;
                    continue;
                }

                var h = r.NearestHost[(p * depth) + rank];
                bounds[j] = r.NearestValue[(p * depth) + rank];
                if (h == cur || roomMemory[h] < memory || roomVCpus[h] < vcpus)
                {
                    continue;
                }

                var v = Score(s, r, vm, h, threshold);
                if (v < bestScore || (v == bestScore && h < best))
                {
                    best = h;
                    bestScore = v;
                }
            }

            // Stale data reads NaN and never wins; the bound treats nothing as NaN.
            var bound = WeightedPercentile(bounds.AsSpan(0, users), s.UserWeight.AsSpan(start, users), threshold);
            if (bound > bestScore || double.IsPositiveInfinity(bound))
            {
                return true;
            }
        }

        for (var j = 0; j < users; j++)
        {
            complete &= r.NearestCount[s.UserVantage[start + j]] < depth;
        }

        // Every list shorter than the depth: every host a user reaches was met.
        return complete;
    }

    /// <summary>
    /// <see cref="SearchNearest"/> for two or three users, with the percentile of three values inline (for
    /// two users the third list is the second's with weight 0): the same answer, fewer memory reads.
    /// </summary>
    private bool SearchNearestFew(FleetSnapshot s, DecisionBuffer r, long[] roomMemory, int[] roomVCpus, int vm, int cur, long memory, int vcpus, double threshold, out int best, out double bestScore)
    {
        var depth = _depth;
        var hosts = s.HostCount;
        var start = s.UserStart[vm];
        var three = s.UserCount[vm] == 3;
        int pa = s.UserVantage[start], pb = s.UserVantage[start + 1], pc = three ? s.UserVantage[start + 2] : pb;
        double wa = s.UserWeight[start], wb = s.UserWeight[start + 1], wc = three ? s.UserWeight[start + 2] : 0;
        int na = r.NearestCount[pa], nb = r.NearestCount[pb], nc = three ? r.NearestCount[pc] : 0;
        var cells = r.CellValue;
        var nearestHost = r.NearestHost;
        var nearestValue = r.NearestValue;
        int rowA = pa * hosts, rowB = pb * hosts, rowC = pc * hosts;
        best = -1;
        bestScore = double.PositiveInfinity;
        for (var rank = 0; rank < depth; rank++)
        {
            var boundA = double.PositiveInfinity;
            var boundB = double.PositiveInfinity;
            var boundC = three ? double.PositiveInfinity : 0; // unused for two users (weight 0)
            for (var j = 0; j < (three ? 3 : 2); j++)
            {
                var (p, n) = j switch { 0 => (pa, na), 1 => (pb, nb), _ => (pc, nc) };
                if (rank >= n)
                {
                    continue; // exhausted: every host still unmet is unreachable, stale or no destination for this user
                }

                var at = (p * depth) + rank;
                var h = nearestHost[at];
                switch (j)
                {
                    case 0: boundA = nearestValue[at]; break;
                    case 1: boundB = nearestValue[at]; break;
                    default: boundC = nearestValue[at]; break;
                }

                if (h == cur || roomMemory[h] < memory || roomVCpus[h] < vcpus)
                {
                    continue;
                }

                var b = cells[rowB + h];
                var v = Percentile3(cells[rowA + h], b, three ? cells[rowC + h] : b, wa, wb, wc, threshold);
                if (v < bestScore || (v == bestScore && h < best))
                {
                    best = h;
                    bestScore = v;
                }
            }

            var bound = Percentile3(boundA, boundB, three ? boundC : boundB, wa, wb, wc, threshold);
            if (bound > bestScore || double.IsPositiveInfinity(bound))
            {
                return true;
            }
        }

        // Every list shorter than the depth: every host a user reaches was met.
        return na < depth && nb < depth && (!three || nc < depth);
    }

    /// <summary>A fresh cell's value: the chosen statistic in ms, or +inf when the users cannot reach the host (no data, nothing answered, too lossy).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private double Reachable(in LatencyCell c)
    {
        var value = c.Value(_statistic);
        return !c.HasData || c.Received == 0 || c.LossRate > _maxLoss || double.IsNaN(value) ? double.PositiveInfinity : value;
    }

    /// <inheritdoc />
    /// <remarks>
    /// The weighted percentile of the VM's users' latency to the host at <see cref="FleetSnapshot.Now"/>:
    /// +inf when its users cannot reach it, NaN when any user's data is stale or the VM has no users —
    /// the same number an evaluation compares.
    /// </remarks>
    public double Score(FleetSnapshot snapshot, int vmIndex, int hostIndex)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)vmIndex, (uint)snapshot.VmCount, nameof(vmIndex));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)hostIndex, (uint)snapshot.HostCount, nameof(hostIndex));
        var vantage = snapshot.UserVantagePointsOf(vmIndex);
        if (vantage.Length == 0)
        {
            return double.NaN;
        }

        var now = snapshot.Now.UtcTicks;
        Span<double> values = vantage.Length <= 64 ? stackalloc double[vantage.Length] : new double[vantage.Length];
        for (var j = 0; j < vantage.Length; j++)
        {
            ref readonly var c = ref snapshot.LatencyOf(vantage[j], hostIndex);
            if (c.HasData && now - c.NewestTicks > _maxAgeTicks)
            {
                return double.NaN;
            }

            values[j] = Reachable(c);
        }

        return WeightedPercentile(values, snapshot.UserWeightsOf(vmIndex), Threshold(snapshot, vmIndex));
    }

    /// <summary>
    /// The room on each host for incoming VMs; a host that may not receive VMs has none at all. With
    /// reuse, also whether any host has more room than at the start of the buffer's previous evaluation
    /// (then no search of an earlier evaluation stands: a host it passed over may fit now).
    /// </summary>
    private void PrepareRooms(FleetSnapshot s, DecisionBuffer r, long evaluation)
    {
        var track = r.StartRoomMemory.Length == s.HostCount;
        var grew = false;
        for (var h = 0; h < s.HostCount; h++)
        {
            var available = s.Availability[h] == HostAvailability.Available;
            var memory = available ? s.FreeMemoryBytes[h] - _reserve : long.MinValue;
            var vcpus = available ? s.FreeVCpus[h] : int.MinValue;
            r.RoomMemory[h] = memory;
            r.RoomVCpus[h] = vcpus;
            if (track)
            {
                grew |= memory > r.StartRoomMemory[h] || vcpus > r.StartRoomVCpus[h];
                r.StartRoomMemory[h] = memory;
                r.StartRoomVCpus[h] = vcpus;
            }
        }

        if (grew || !ReferenceEquals(r.PreparedBy, this))
        {
            r.RoomGrewAt = evaluation;
        }
    }

    /// <summary>The hosts that can take the smallest VM of the snapshot, in host order (what a search that ran out of its lists scans).</summary>
    private static void PrepareOpenHosts(FleetSnapshot s, DecisionBuffer r)
    {
        var count = 0;
        for (var h = 0; h < s.HostCount; h++)
        {
            if (r.RoomMemory[h] >= s.MinVmMemoryBytes && r.RoomVCpus[h] >= s.MinVmVCpus)
            {
                r.OpenHosts[count++] = h;
            }
        }

        r.OpenCount = count;
        r.OpenStale = false;
    }

    /// <summary>
    /// Marks the VMs whose reuse entries may not stand (see <see cref="Refresh"/>): those of the rows prepared
    /// again in this evaluation and those whose host, size or migration state changed since the last one, so
    /// that the refresh looks at no other. Every VM is looked at instead when room grew (or the evaluation
    /// before was another policy's, or threw), every row was prepared again (host availability changed,
    /// another snapshot), the last evaluation into this buffer did not refresh (it used rules, say), or
    /// the snapshot's change list started a new round since this buffer last read it. The rest cannot
    /// have changed: an entry left alone was computed after its rows were last prepared, or its VM was
    /// passed over then (in flight, host unknown or down), and leaving that state is a change of its
    /// inputs or of availability.
    /// </summary>
    private static void MarkForRefresh(FleetSnapshot s, DecisionBuffer r, long evaluation)
    {
        var every = r.RoomGrewAt == evaluation || r.AllRowsPrepared || r.RefreshedEvaluation != evaluation - 1
            || r.SeenInputChangeRound != s.InputChangeRound || r.SeenInputChangeCount > s.InputChangeCount;
        if (!every)
        {
            var marked = r.RefreshMarkedAt;
            var rows = r.RowsToPrepare;
            for (var i = 0; i < r.RowsPreparedCount; i++)
            {
                var p = rows[i];
                for (var k = s.VantageVmStart[p]; k < s.VantageVmStart[p + 1]; k++)
                {
                    marked[s.VantageVm[k]] = evaluation;
                }
            }

            for (var i = r.SeenInputChangeCount; i < s.InputChangeCount; i++)
            {
                marked[s.InputChanges[i]] = evaluation;
            }
        }

        r.RefreshEvery = every;
        r.RefreshedEvaluation = evaluation;
        r.SeenInputChangeRound = s.InputChangeRound;
        r.SeenInputChangeCount = s.InputChangeCount;
    }

    /// <summary>
    /// Brings every VM's reuse entry up to date, or, with other lanes and enough hosts open, its own share
    /// of them and hands the rest to those lanes, which go on while this thread decides (<see cref="AwaitRefresh"/>
    /// keeps it behind them): a VM whose entry stands keeps it, the others are searched again under the
    /// rooms at the start of this evaluation, before any move of it reserved room. An entry stands while the VM's current host, memory and vCPUs are those it was
    /// computed for, none of its users' rows was prepared again since (their latencies, staleness and
    /// nearest-host lists are unchanged), and no host's room at the start of an evaluation grew since.
    /// Then its current score is the same, and its best host is the same whenever that host still has
    /// room for it: room only shrank, so the hosts that fit are a subset of those that fitted, and the
    /// best of a set is the best of any subset that holds it (the same lowest score, ties to the lowest
    /// index). <see cref="Reused"/> checks that room when the VM is evaluated.
    /// </summary>
    private void Refresh(FleetSnapshot s, DecisionBuffer r, bool indexed, long evaluation)
    {
        r.OverlapFrom = -1;
        var lanes = s.VmCount >= ParallelMinimumVms ? _lanes : 1;
        if (lanes <= 1)
        {
            RefreshRange(s, r, indexed, evaluation, 0, s.VmCount, r.HostScores, RefreshPart.All);
            return;
        }

        // The other lanes bring the VMs after this thread's first share up to date while this thread decides
        // (see AwaitRefresh): they search under the rooms at the start, which stay as they are, and without
        // the open-host list, which the decisions compact. With the index on, not when few hosts are open:
        // then the scan of the open hosts is what keeps a search cheap (without it every search scans every host).
        if (!indexed || CompactOpen(s, r) > OpenScanMaximum)
        {
            var own = OverlapStart(s.VmCount, lanes);
            var shares = r.EnsureLanes(lanes - 1);
            var length = (s.VmCount - own + lanes - 2) / (lanes - 1);
            r.OverlapFrom = own;
            r.OverlapLength = length;
            r.OverlapLanes = RefreshInline ? 0 : lanes - 1;
            for (var lane = 0; lane < r.OverlapLanes; lane++)
            {
                var from = Math.Min(s.VmCount, own + (lane * length));
                shares[lane].StartOverlappedRefresh(this, s, r, indexed, evaluation, from, Math.Min(s.VmCount, from + length));
                if (RefreshClaimed)
                {
                    shares[lane].WaitClaimed(TimeSpan.FromSeconds(10));
                }
            }

            var done = false;
            try
            {
                RefreshRange(s, r, indexed, evaluation, 0, own, r.HostScores, RefreshPart.All);
                done = true;
            }
            finally
            {
                if (!done)
                {
                    r.OverlapFrom = -1;
                    EvaluationLane.Stop(shares, r.OverlapLanes, rethrow: false);
                }
            }

            return;
        }

        // Every VM's entry depends on its own inputs and the rooms at the start only, so the VMs can be
        // brought up to date in any order. The other lanes leave the shared state alone: they walk no
        // cursors, scan with scores of their own, and leave the VMs of more than three users (whose scores
        // use the buffer's scratch) to this thread, after them. The side-by-side copy is made first.
        if (indexed && CompactOpen(s, r) <= OpenScanMaximum)
        {
            PrepareOpenCells(s, r);
        }

        var work = r.EnsureLanes(lanes - 1);
        var size = (s.VmCount + lanes - 1) / lanes;
        for (var lane = 1; lane < lanes; lane++)
        {
            work[lane - 1].StartRefresh(this, s, r, indexed, evaluation, Math.Min(s.VmCount, lane * size), Math.Min(s.VmCount, (lane + 1) * size));
        }

        var finished = false;
        try
        {
            RefreshRange(s, r, indexed, evaluation, 0, Math.Min(s.VmCount, size), r.HostScores, RefreshPart.All);
            finished = true;
        }
        finally
        {
            EvaluationLane.Finish(work, lanes - 1, rethrow: finished);
        }

        for (var lane = 0; lane < lanes - 1; lane++)
        {
            RefreshRange(s, r, indexed, evaluation, work[lane].From, work[lane].To, r.HostScores, RefreshPart.ManyUsers);
        }
    }

    /// <summary>
    /// The first VM the other lanes bring up to date while the evaluating thread decides, which is that thread's
    /// own share before it starts deciding: 35 % of the VMs with one other lane, less with more. The
    /// evaluating thread then refreshes and decides while the others only refresh, so both should finish
    /// together. Measured at 1,000,000 VMs after new samples, where bringing every VM up to date took about
    /// 100 ms of one thread and deciding them about 30 ms: a quarter left the lane 79 ms of work and the
    /// evaluating thread waited 10–15 ms for it; 35–40 % gave 56–77 ms against 36–40 ms and no wait.
    /// </summary>
    internal static int OverlapStart(int vmCount, int lanes) => (int)(vmCount * 7L / (10L * lanes));

    /// <summary>
    /// Waits, before the evaluating thread decides <paramref name="vm"/> (at or past <see cref="DecisionBuffer.OverlapFrom"/>),
    /// until the lane that brings it up to date has passed it (<paramref name="refreshedUpTo"/>: how far that
    /// thread last saw it): that thread runs the lane's share itself when no lane thread has claimed it by then,
    /// and rethrows what the share threw. Returns how far the lane has got.
    /// </summary>
    private static int AwaitRefresh(DecisionBuffer r, int vm, int refreshedUpTo)
    {
        if (vm >= refreshedUpTo)
        {
            var shares = r.EnsureLanes(r.OverlapLanes);
            var lane = shares[(vm - r.OverlapFrom) / r.OverlapLength];
            if (vm == lane.From)
            {
                lane.Execute(); // this thread's now unless a lane thread has claimed it
            }

            var wait = default(SpinWait);
            while ((refreshedUpTo = Volatile.Read(ref lane.Progress.RefreshedUpTo)) <= vm)
            {
                // Done is written after the last progress: read again once done, it is the share's last.
                if (lane.IsDone && (refreshedUpTo = Volatile.Read(ref lane.Progress.RefreshedUpTo)) <= vm)
                {
                    // It stopped short: it threw. Every lane is stopped before that is rethrown.
                    r.OverlapFrom = -1;
                    EvaluationLane.Stop(shares, r.OverlapLanes, rethrow: true);
                    throw new InvalidOperationException($"The refresh share from VM {lane.From} ended at VM {refreshedUpTo} without a fault.");
                }

                wait.SpinOnce(sleep1Threshold: -1);
            }
        }

        return refreshedUpTo;
    }

    /// <summary>Which VMs of a range <see cref="RefreshRange"/> brings up to date.</summary>
    internal enum RefreshPart
    {
        /// <summary>Every VM.</summary>
        All,

        /// <summary>The VMs of up to three users (another lane: no shared scratch, no cursors).</summary>
        FewUsers,

        /// <summary>The VMs of more than three users (after another lane did the rest).</summary>
        ManyUsers,

        /// <summary>
        /// The VMs of up to three users while the evaluating thread decides (a lane's share, which that thread
        /// runs itself when no lane thread has claimed it; or, in the tests, one VM at a time): no shared
        /// scratch, no cursors, the rooms at the start, no open-host list; how far it got is published.
        /// </summary>
        FewUsersAtStart,

        /// <summary>The VMs of more than three users, by the evaluating thread while it decides: the rooms at the start, no cursors, no open-host list.</summary>
        ManyUsersAtStart,
    }

    // progress: where a FewUsersAtStart share publishes how far it got (its lane's), else null.
    internal void RefreshRange(FleetSnapshot s, DecisionBuffer r, bool indexed, long evaluation, int from, int to, double[] scores, RefreshPart part, EvaluationLane? progress = null)
    {
        if (part is not (RefreshPart.ManyUsers or RefreshPart.ManyUsersAtStart) && FailRefreshShare?.Invoke(from) == true)
        {
            throw new InvalidOperationException($"Injected fault in the refresh share from VM {from}.");
        }

        var grewAt = r.RoomGrewAt;
        var preparedAt = r.RowPreparedAt;
        var every = r.RefreshEvery;
        var marked = r.RefreshMarkedAt;
        var cursors = part is RefreshPart.All or RefreshPart.ManyUsers;
        var atStart = part is RefreshPart.FewUsersAtStart or RefreshPart.ManyUsersAtStart;
        var fewOnly = part is RefreshPart.FewUsers or RefreshPart.FewUsersAtStart;
        var manyOnly = part is RefreshPart.ManyUsers or RefreshPart.ManyUsersAtStart;
        for (var vm = from; vm < to; vm++)
        {
            if (progress is not null && (vm & (RefreshProgressStep - 1)) == 0)
            {
                Volatile.Write(ref progress.Progress.RefreshedUpTo, vm);
            }

            if (!every && marked[vm] != evaluation)
            {
                continue; // its entry stands (see MarkForRefresh)
            }

            var cur = s.CurrentHost[vm];
            var users = s.UserCount[vm];
            if (users == 0 || cur < 0 || s.InFlight[vm] || s.Availability[cur] == HostAvailability.Down
                || (fewOnly && users > 3) || (manyOnly && users <= 3))
            {
                continue; // evaluated without a search, or in another part
            }

            var memory = s.VmMemoryBytes[vm];
            var vcpus = s.VmVCpus[vm];
            var at = r.ReuseComputedAt[vm];
            if (at >= grewAt && r.ReuseHost[vm] == cur && r.ReuseMemory[vm] == memory && r.ReuseVCpus[vm] == vcpus)
            {
                var stands = true;
                var start = s.UserStart[vm];
                for (var j = 0; j < users; j++)
                {
                    stands &= preparedAt[s.UserVantage[start + j]] <= at;
                }

                if (stands)
                {
                    continue;
                }
            }

            var currentScore = Score(s, r, vm, cur);
            var best = -1;
            var bestScore = double.PositiveInfinity;
            if (!double.IsNaN(currentScore))
            {
                best = atStart
                    ? SearchAtStart(s, r, vm, cur, memory, vcpus, indexed, scores, out bestScore)
                    : Search(s, r, vm, cur, memory, vcpus, indexed, scores, cursors, out bestScore);
            }

            r.ReuseComputedAt[vm] = evaluation;
            r.ReuseHost[vm] = cur;
            r.ReuseMemory[vm] = memory;
            r.ReuseVCpus[vm] = vcpus;
            r.ReuseCurrentScore[vm] = currentScore;
            r.ReuseBest[vm] = best;
            r.ReuseBestScore[vm] = bestScore;
        }

        if (progress is not null)
        {
            Volatile.Write(ref progress.Progress.RefreshedUpTo, to);
        }
    }

    /// <summary>A share that refreshes while the evaluating thread decides publishes how far it got once every this many VMs (a power of two).</summary>
    private const int RefreshProgressStep = 16;

    /// <summary>
    /// The search of <c>Search</c> under the rooms at the start of the evaluation, for a refresh while the
    /// evaluating thread decides (and reserves room): the walk of an essential user's ordering without
    /// cursors, the index's search, and the vectorised scan of every host where <c>Search</c> would scan the
    /// open hosts (the same answer; that list is compacted meanwhile).
    /// </summary>
    private int SearchAtStart(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, bool indexed, double[] scores, out double bestScore)
    {
        var roomMemory = r.StartRoomMemory;
        var roomVCpus = r.StartRoomVCpus;
        int found;
        if (indexed)
        {
            if (r.OrderCount.Length == s.VantagePointCount)
            {
                var p = EssentialUser(s, r, vm, cur);
                if (p >= 0)
                {
                    return WalkOrder(s, r, roomMemory, roomVCpus, vm, p, cur, memory, vcpus, -1, r.OrderCursor, r.OrderCursorAt, out found, out bestScore)
                        ? found
                        : ScanFastUnder(s, r, roomMemory, roomVCpus, vm, cur, memory, vcpus, scores, out bestScore);
                }
            }

            if (SearchNearestUnder(s, r, roomMemory, roomVCpus, vm, cur, memory, vcpus, out found, out bestScore))
            {
                return found;
            }
        }

        return ScanFastUnder(s, r, roomMemory, roomVCpus, vm, cur, memory, vcpus, scores, out bestScore);
    }

    /// <summary>
    /// The open-host list is scanned directly once it is this short: cheaper than walking users' lists
    /// whose hosts have mostly filled up (what happens in a window with many moves).
    /// </summary>
    private const int OpenScanMaximum = DecisionBuffer.OpenCellsWidth;

    /// <summary>
    /// The best other host with room for the VM under the rooms as they are now: the scan of the open hosts
    /// when few are left, the walk of an essential user's ordering, the index's search, or the scan when
    /// the walk or the lists run out. All give the answer <see cref="ScanFast"/> gives.
    /// </summary>
    private int Search(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, bool indexed, out double bestScore) =>
        Search(s, r, vm, cur, memory, vcpus, indexed, r.HostScores, cursors: true, out bestScore);

    // scores: scratch for one score per host (a lane's own); cursors: whether walks may use and move the
    // vantage points' cursors (only on the evaluating thread).
    private int Search(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, bool indexed, double[] scores, bool cursors, out double bestScore)
    {
        if (!indexed)
        {
            return ScanFast(s, r, vm, cur, memory, vcpus, scores, out bestScore);
        }

        if (CompactOpen(s, r) <= OpenScanMaximum)
        {
            return ScanOpen(s, r, vm, cur, memory, vcpus, out bestScore);
        }

        int found;
        if (r.OrderCount.Length == s.VantagePointCount)
        {
            var p = EssentialUser(s, r, vm, cur);
            if (p >= 0)
            {
                if (WalkOrder(s, r, vm, p, cur, memory, vcpus, cursors ? r.EvaluationNumber : -1, out found, out bestScore))
                {
                    return found;
                }

                return ScanWide(s, r, vm, cur, memory, vcpus, scores, out bestScore);
            }
        }

        return SearchNearest(s, r, vm, cur, memory, vcpus, out found, out bestScore) ? found : ScanWide(s, r, vm, cur, memory, vcpus, scores, out bestScore);
    }

    /// <summary>
    /// The scan when a search ran out: for up to three users, the vectorised scan of every host unless a
    /// quarter of them or fewer are open; else the scan of the open hosts, one by one. Measured over the
    /// ~4,150 such scans of a window with moves at 1,000 hosts: a quarter 18–24 ms, an eighth 21–25 ms,
    /// always the vectorised scan 24–29 ms.
    /// </summary>
    private int ScanWide(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, double[] scores, out double bestScore) =>
        s.UserCount[vm] <= 3 && r.OpenCount * 4 > s.HostCount
            ? ScanFast(s, r, vm, cur, memory, vcpus, scores, out bestScore)
            : ScanOpen(s, r, vm, cur, memory, vcpus, out bestScore);

    /// <summary>
    /// The VM's best host from its reuse entry when that host still has room for it (or there was none).
    /// Otherwise, when the entry's best score is worse than the current score by more than the tie
    /// tolerance, any host with room and a latency will do: the best under the smaller rooms scores at
    /// least as badly, so the VM stays with <see cref="DecisionReason.AlreadyBest"/> and no target either
    /// way, unless no host has room at all (<see cref="DecisionReason.NoCandidates"/>). Else searched again now.
    /// </summary>
    private int Reused(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, double currentScore, bool indexed, out double bestScore)
    {
        var best = r.ReuseBest[vm];
        if (best < 0 || (r.RoomMemory[best] >= memory && r.RoomVCpus[best] >= vcpus))
        {
            bestScore = best < 0 ? double.PositiveInfinity : r.ReuseBestScore[vm];
            return best;
        }

        if (indexed && r.ReuseBestScore[vm] > currentScore + _tie)
        {
            return AnyOpen(s, r, vm, cur, memory, vcpus, out bestScore);
        }

        if (r.AheadAt.Length == s.VmCount && Volatile.Read(ref r.AheadAt[vm]) == r.EvaluationNumber)
        {
            // The look-ahead searched this VM (LookAhead): its host, if it still has room, is the answer.
            var ahead = r.AheadBest[vm];
            if (ahead < 0 || (r.RoomMemory[ahead] >= memory && r.RoomVCpus[ahead] >= vcpus))
            {
                r.AheadProgress[0].Used++;
                bestScore = ahead < 0 ? double.PositiveInfinity : r.AheadScore[vm];
                return ahead;
            }

            r.AheadProgress[0].Refused++; // the host found has filled up since
        }
        else if (r.AheadPending)
        {
            if (LookAheadInline)
            {
                r.AheadProgress[0].DecidedUpTo = vm + 1 - AheadGap;
                LookAhead(s, r, r.EvaluationNumber, r.HostScores, bounded: false);
            }
            else
            {
                // The first search of this evaluation: from here on another lane searches ahead.
                r.AheadPending = false;
                r.AheadLane = r.EnsureLanes(1)[0];
                Volatile.Write(ref r.AheadProgress[0].DecidedUpTo, vm);
                r.AheadLane.StartLookAhead(this, s, r, r.EvaluationNumber);
                if (LookAheadClaimed)
                {
                    r.AheadLane.WaitClaimed(TimeSpan.FromSeconds(10));
                }
            }
        }

        return Search(s, r, vm, cur, memory, vcpus, indexed, out bestScore);
    }

    /// <summary>
    /// <see cref="ScanFast"/> over the hosts that could take the smallest VM only (<see cref="PrepareOpenHosts"/>;
    /// a host that filled up during this evaluation leaves the list before the next scan): the same
    /// answer, since a host that cannot take the smallest VM cannot take this one. When the hosts fill up,
    /// the VMs whose lists hold only full hosts scan what is left instead of every host.
    /// </summary>
    private int ScanOpen(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, out double bestScore) =>
        ScanOpen(s, r, vm, cur, memory, vcpus, firstOnly: false, out bestScore);

    /// <summary>The first host in host order with room for the VM and a latency for all its users (finite score), or -1.</summary>
    private int AnyOpen(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, out double score) =>
        ScanOpen(s, r, vm, cur, memory, vcpus, firstOnly: true, out score);

    private int ScanOpen(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, bool firstOnly, out double bestScore)
    {
        var roomMemory = r.RoomMemory;
        var roomVCpus = r.RoomVCpus;
        var open = r.OpenHosts;

        // With few hosts open the users' latencies come from the side-by-side copy (the same values).
        var compact = CompactOpen(s, r) <= OpenScanMaximum && PrepareOpenCells(s, r);
        var cells = compact ? r.OpenCells : r.CellValue;
        var width = compact ? OpenScanMaximum : s.HostCount;
        var column = r.OpenColumn;
        var start = s.UserStart[vm];
        var count = s.UserCount[vm];
        var threshold = Threshold(s, vm);
        var rowA = s.UserVantage[start] * width;
        var rowB = count > 1 ? s.UserVantage[start + 1] * width : rowA;
        var three = count == 3;
        var rowC = three ? s.UserVantage[start + 2] * width : rowB;
        double wa = s.UserWeight[start], wb = count > 1 ? s.UserWeight[start + 1] : 0, wc = three ? s.UserWeight[start + 2] : 0;
        var best = -1;
        var bestValue = double.PositiveInfinity;
        for (var i = 0; i < r.OpenCount; i++)
        {
            var h = open[i];
            if (h == cur || roomMemory[h] < memory || roomVCpus[h] < vcpus)
            {
                continue;
            }

            var at = compact ? column[h] : h;
            var v = count == 1 ? cells[rowA + at]
                : count <= 3 ? Percentile3(cells[rowA + at], cells[rowB + at], cells[rowC + at], wa, wb, wc, threshold)
                : Score(s, r, vm, h, threshold);
            if (v < bestValue)
            {
                best = h;
                bestValue = v;
                if (firstOnly)
                {
                    break;
                }
            }
        }

        bestScore = bestValue;
        return best;
    }

    /// <summary>
    /// Copies every vantage point's latency to the open hosts side by side (<see cref="DecisionBuffer.OpenCells"/>),
    /// once per evaluation, when few hosts are left open: the hosts open now are the only ones that can be open
    /// for the rest of it. <see langword="false"/> when the buffer has no room for the copy (made with reuse).
    /// </summary>
    private static bool PrepareOpenCells(FleetSnapshot s, DecisionBuffer r)
    {
        if (r.OpenCellsAt == r.EvaluationNumber)
        {
            return true;
        }

        if (r.OpenCells.Length != s.VantagePointCount * OpenScanMaximum)
        {
            return false;
        }

        var hosts = s.HostCount;
        var open = r.OpenHosts.AsSpan(0, r.OpenCount);
        for (var c = 0; c < open.Length; c++)
        {
            r.OpenColumn[open[c]] = c;
        }

        var cells = r.CellValue;
        var copy = r.OpenCells;
        for (var p = 0; p < s.VantagePointCount; p++)
        {
            var from = p * hosts;
            var to = p * OpenScanMaximum;
            for (var c = 0; c < open.Length; c++)
            {
                copy[to + c] = cells[from + open[c]];
            }
        }

        r.OpenCellsAt = r.EvaluationNumber;
        return true;
    }

    /// <summary>Drops the hosts that filled up from the open-host list; returns how many are left.</summary>
    private static int CompactOpen(FleetSnapshot s, DecisionBuffer r)
    {
        if (r.OpenStale)
        {
            var open = r.OpenHosts;
            var kept = 0;
            for (var i = 0; i < r.OpenCount; i++)
            {
                var h = open[i];
                if (r.RoomMemory[h] >= s.MinVmMemoryBytes && r.RoomVCpus[h] >= s.MinVmVCpus)
                {
                    open[kept++] = h;
                }
            }

            r.OpenCount = kept;
            r.OpenStale = false;
        }

        return r.OpenCount;
    }

    /// <summary>Where every VM runs before this evaluation's moves: its host, or a running migration's destination.</summary>
    private static void PreparePlan(FleetSnapshot s, DecisionBuffer r)
    {
        for (var vm = 0; vm < s.VmCount; vm++)
        {
            r.Planned[vm] = s.InFlight[vm] && s.InFlightDestination[vm] >= 0 ? s.InFlightDestination[vm] : s.CurrentHost[vm];
            r.ReservedFor[vm] = -1;
        }
    }

    /// <returns>Whether the VM moves.</returns>
    private bool EvaluateVm(FleetSnapshot s, DecisionBuffer r, int vm, long now, bool indexed, bool reuse)
    {
        var hosts = s.HostCount;
        var cur = s.CurrentHost[vm];
        r.Target[vm] = -1;
        r.CurrentScore[vm] = double.NaN;
        r.TargetScore[vm] = double.NaN;
        r.Detail1[vm] = double.NaN;
        r.Detail2[vm] = double.NaN;
        r.NextPendingHost[vm] = -1;
        r.NextPendingWindows[vm] = 0;
        var record = r.CandidateStatuses is not null;
        var row = vm * hosts;
        if (record)
        {
            Array.Fill(r.CandidateStatuses!, CandidateStatus.NotEvaluated, row, hosts);
            Array.Fill(r.CandidateScores!, double.NaN, row, hosts);
        }

        if (s.UserCount[vm] == 0)
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.NoUsers);
        }

        if (cur < 0)
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.PlacementUnknown);
        }

        if (s.InFlight[vm])
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.MigrationInProgress);
        }

        if (s.Availability[cur] == HostAvailability.Down)
        {
            if (record)
            {
                r.CandidateStatuses![row + cur] = CandidateStatus.HostDown;
            }

            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.CurrentHostDown);
        }

        var rules = s.HasRules;
        var leads = rules && s.AffinityLeader[vm] == vm;
        var currentScore = reuse ? r.ReuseCurrentScore[vm] : leads ? GroupScore(s, r, vm, cur) : Score(s, r, vm, cur);
        var currentStale = double.IsNaN(currentScore);
        if (record)
        {
            r.CandidateStatuses![row + cur] = currentStale ? CandidateStatus.Stale
                : double.IsPositiveInfinity(currentScore) ? CandidateStatus.Unreachable : CandidateStatus.Eligible;
            r.CandidateScores![row + cur] = double.IsFinite(currentScore) ? currentScore : double.NaN;
        }

        if (rules && !s.VmPinned[vm])
        {
            var need = Requirement(s, r, vm, cur, out var home);
            if (need != PlacementRuleKind.None)
            {
                return Evacuate(s, r, vm, cur, currentScore, need, home, record);
            }
        }

        if (currentStale)
        {
            return Set(r, vm, DecisionKind.NoDecision, DecisionReason.StaleData);
        }

        r.CurrentScore[vm] = currentScore;
        var memory = leads ? GroupMemory(s, vm) : s.VmMemoryBytes[vm];
        var vcpus = s.VmVCpus[vm];
        double bestScore;
        int blocked = -1;
        double blockedScore = double.NaN;
        var blockedRule = PlacementRuleKind.None;
        var best = record || rules
            ? ScanChecked(s, r, vm, cur, record, evacuate: false, out bestScore, out blocked, out blockedScore, out blockedRule)
            : reuse && CompactOpen(s, r) == 0 ? NoRoomAnywhere(out bestScore) // every host filled up in this window
            : reuse ? Reused(s, r, vm, cur, memory, vcpus, currentScore, indexed, out bestScore)
            : Search(s, r, vm, cur, memory, vcpus, indexed, out bestScore);
        if (rules && s.VmPinned[vm])
        {
            if (best >= 0 && currentScore - bestScore > _tie)
            {
                r.Target[vm] = best;
                r.TargetScore[vm] = bestScore;
            }

            r.Rule[vm] = PlacementRuleKind.Pinned;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.Pinned);
        }

        if (best < 0)
        {
            return HeldByRule(r, vm, currentScore, double.PositiveInfinity, blocked, blockedScore, blockedRule)
                || (AnyStale(s, r, vm, cur)
                ? Set(r, vm, DecisionKind.NoDecision, DecisionReason.StaleData)
                : Set(r, vm, DecisionKind.Stay, DecisionReason.NoCandidates));
        }

        // Stickiness among near-equal candidates: noise must not flip the target and restart confirmation.
        var pending = s.PendingHost[vm];
        if (pending >= 0 && pending < hosts && pending != best && pending != cur
            && s.Availability[pending] == HostAvailability.Available
            && (rules ? RuleAt(s, r, vm, pending) == PlacementRuleKind.None && HasRoom(s, r, vm, pending)
                : r.RoomMemory[pending] >= memory && r.RoomVCpus[pending] >= vcpus))
        {
            var pendingScore = leads ? GroupScore(s, r, vm, pending) : Score(s, r, vm, pending);
            if (double.IsFinite(pendingScore) && pendingScore <= bestScore + _tie)
            {
                best = pending;
                bestScore = pendingScore;
            }
        }

        var gain = currentScore - bestScore;
        if (Math.Abs(gain) <= _tie)
        {
            r.Target[vm] = best;
            r.TargetScore[vm] = bestScore;
            return HeldByRule(r, vm, currentScore, bestScore, blocked, blockedScore, blockedRule)
                || Set(r, vm, DecisionKind.Stay, DecisionReason.Tie);
        }

        if (gain < 0)
        {
            return HeldByRule(r, vm, currentScore, bestScore, blocked, blockedScore, blockedRule)
                || Set(r, vm, DecisionKind.Stay, DecisionReason.AlreadyBest);
        }

        r.Target[vm] = best;
        r.TargetScore[vm] = bestScore;
        if (gain < _minAbsolute)
        {
            r.Detail1[vm] = _minAbsolute;
            return HeldByRule(r, vm, currentScore, bestScore, blocked, blockedScore, blockedRule)
                || Set(r, vm, DecisionKind.Stay, DecisionReason.BelowAbsoluteGain);
        }

        var relative = double.IsPositiveInfinity(currentScore) ? 1.0 : gain / currentScore;
        if (relative < _minRelative)
        {
            r.Detail1[vm] = _minRelative;
            return HeldByRule(r, vm, currentScore, bestScore, blocked, blockedScore, blockedRule)
                || Set(r, vm, DecisionKind.Stay, DecisionReason.BelowRelativeGain);
        }

        // The matrix is large (hosts²) and read at random here: skip it for a source with no measured pair.
        var bandwidth = s.KnownBandwidthFrom[cur] == 0 ? double.NaN : s.Bandwidth[(cur * hosts) + best];
        if (double.IsNaN(bandwidth))
        {
            bandwidth = _bandwidth;
        }

        var dirty = s.DirtyRate[vm];
        if (double.IsNaN(dirty))
        {
            dirty = _dirty;
        }

        var effective = bandwidth - dirty;
        var cost = effective <= 0 ? double.PositiveInfinity : _penalty + (memory / effective * _impact);
        var benefit = gain * _staySeconds;
        if (double.IsPositiveInfinity(cost) || cost > benefit)
        {
            r.Detail1[vm] = cost;
            r.Detail2[vm] = benefit;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.CostExceedsGain);
        }

        var lastMove = s.LastMoveTicks[vm];
        if (lastMove != long.MinValue && now - lastMove < _cooldownTicks)
        {
            r.Detail1[vm] = TimeSpan.FromTicks(_cooldownTicks - (now - lastMove)).TotalSeconds;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.Cooldown);
        }

        var streak = (s.PendingHost[vm] >= 0 ? s.PendingWindows[vm] : 0) + 1;
        var decisive = streak < _windows && streak >= _decisiveWindows && Decisive(s, r, vm, best, currentScore, now, benefit, cost);
        if (streak < _windows && !decisive)
        {
            r.NextPendingHost[vm] = best;
            r.NextPendingWindows[vm] = streak;
            return Set(r, vm, DecisionKind.Stay, DecisionReason.AwaitingConfirmation);
        }

        if (rules)
        {
            Reserve(s, r, vm, best);
        }
        else
        {
            r.RoomMemory[best] -= memory;
            r.RoomVCpus[best] -= vcpus;
            r.OpenStale |= r.RoomMemory[best] < s.MinVmMemoryBytes || r.RoomVCpus[best] < s.MinVmVCpus;
        }

        Set(r, vm, DecisionKind.Move, DecisionReason.Move);
        r.Detail1[vm] = streak;
        r.Detail2[vm] = decisive ? benefit / cost : double.NaN;
        return true;
    }

    /// <summary>What every search answers once no host can take even the smallest VM of the snapshot.</summary>
    private static int NoRoomAnywhere(out double bestScore)
    {
        bestScore = double.PositiveInfinity;
        return -1;
    }

    /// <summary>
    /// Whether a move that passed every other gate is decisive (<see cref="LowestLatencyPolicyOptions.DecisiveBenefitFactor"/>):
    /// a penalty is set, the benefit is at least the factor times the cost, the current score is finite,
    /// and the weighted percentile of the users' 95th-percentile latency to the target (its pessimistic
    /// score, from fresh, reachable cells only) is below the current score by at least the minimum gain.
    /// Asked only for moves awaiting confirmation, so rarely.
    /// </summary>
    private bool Decisive(FleetSnapshot s, DecisionBuffer r, int vm, int target, double currentScore, long now, double benefit, double cost)
    {
        if (_decisiveFactor == 0 || _penalty <= 0 || !double.IsFinite(currentScore) || benefit < _decisiveFactor * cost)
        {
            return false;
        }

        var start = s.UserStart[vm];
        var count = s.UserCount[vm];
        var values = r.UserValues.AsSpan(0, count);
        for (var j = 0; j < count; j++)
        {
            ref readonly var c = ref s.Cells[(s.UserVantage[start + j] * s.HostCount) + target];
            var v = c.P95Ms;
            if (!c.HasData || c.Received == 0 || c.LossRate > _maxLoss || now - c.NewestTicks > _maxAgeTicks || double.IsNaN(v))
            {
                return false;
            }

            values[j] = v;
        }

        var pessimistic = WeightedPercentile(values, s.UserWeight.AsSpan(start, count), Threshold(s, vm));
        return currentScore - pessimistic >= Math.Max(_minAbsolute, _tie);
    }

    /// <summary>
    /// Whether the VM must leave its current host, and by which rule: its affinity group's leader runs (or
    /// goes) elsewhere (<paramref name="home"/>: there); the host is drained or excluded for it (for a
    /// leader: for any member there); or an anti-affinity partner that stays there comes first in VM order
    /// or is pinned.
    /// </summary>
    private static PlacementRuleKind Requirement(FleetSnapshot s, DecisionBuffer r, int vm, int cur, out int home)
    {
        home = -1;
        var leader = s.AffinityLeader[vm];
        if (leader >= 0 && leader != vm && !s.InFlight[leader] && r.Planned[leader] is var h and >= 0 && h != cur)
        {
            home = h;
            return PlacementRuleKind.Affinity;
        }

        if (leader == vm)
        {
            // The leader answers for its group: a member excluded from the group's host moves the group.
            foreach (var m in s.AffinityMembersOf(vm))
            {
                if (s.CurrentHost[m] == cur && s.IsExcluded(m, cur))
                {
                    return PlacementRuleKind.Excluded;
                }
            }
        }

        if (s.HostDrained[cur])
        {
            return PlacementRuleKind.Drained;
        }

        if (s.IsExcluded(vm, cur))
        {
            return PlacementRuleKind.Excluded;
        }

        foreach (var p in s.AntiAffinityPartnersOf(vm))
        {
            if (r.Planned[p] == cur && (p < vm || s.VmPinned[p]))
            {
                return PlacementRuleKind.AntiAffinity;
            }
        }

        return PlacementRuleKind.None;
    }

    /// <summary>
    /// A move the rules require, whatever latency says: to the leader's host for an affinity follower,
    /// otherwise to the allowed host with room and the lowest score (hosts whose users' data is missing or
    /// stale come last). No gain, cost, cooldown or confirmation gate applies.
    /// </summary>
    private bool Evacuate(FleetSnapshot s, DecisionBuffer r, int vm, int cur, double currentScore, PlacementRuleKind need, int home, bool record)
    {
        r.CurrentScore[vm] = currentScore;
        r.Rule[vm] = need;
        int target;
        double targetScore;
        if (need == PlacementRuleKind.Affinity)
        {
            target = home;
            targetScore = Score(s, r, vm, home);
            var reserved = r.ReservedFor[vm] == home;
            var allowed = s.Availability[home] == HostAvailability.Available && !s.HostDrained[home] && !s.IsExcluded(vm, home)
                && AntiAffinityAt(s, r, vm, home) == PlacementRuleKind.None && (reserved || HasRoom(s, r, vm, home));
            if (record)
            {
                r.CandidateStatuses![(vm * s.HostCount) + home] = allowed ? CandidateStatus.Eligible : CandidateStatus.NoCapacity;
                r.CandidateScores![(vm * s.HostCount) + home] = double.IsFinite(targetScore) ? targetScore : double.NaN;
            }

            r.Target[vm] = home;
            r.TargetScore[vm] = targetScore;
            if (!allowed)
            {
                return Set(r, vm, DecisionKind.Stay, DecisionReason.NoAllowedHost);
            }

            if (!reserved)
            {
                Reserve(s, r, vm, home);
            }

            r.Planned[vm] = home;
            Set(r, vm, DecisionKind.Move, DecisionReason.RuleRequiresMove);
            return true;
        }

        if (s.AffinityLeader[vm] is var leader and >= 0 && leader != vm)
        {
            // A follower never leaves alone: its group leaves with its leader (who could not, this window).
            return Set(r, vm, DecisionKind.Stay, DecisionReason.NoAllowedHost);
        }

        target = ScanChecked(s, r, vm, cur, record, evacuate: true, out targetScore, out _, out _, out _);
        if (target < 0)
        {
            return Set(r, vm, DecisionKind.Stay, DecisionReason.NoAllowedHost);
        }

        r.Target[vm] = target;
        r.TargetScore[vm] = targetScore;
        Reserve(s, r, vm, target);
        Set(r, vm, DecisionKind.Move, DecisionReason.RuleRequiresMove);
        return true;
    }

    /// <summary>
    /// Turns a stay into "held by a rule" when a host the rules forbid scores better than every allowed
    /// one and would pass the gain gates: the decision then names that host and the rule.
    /// </summary>
    private bool HeldByRule(DecisionBuffer r, int vm, double currentScore, double bestAllowed, int blocked, double blockedScore, PlacementRuleKind rule)
    {
        if (blocked < 0 || !(blockedScore < bestAllowed - _tie))
        {
            return false;
        }

        var gain = currentScore - blockedScore;
        var relative = double.IsPositiveInfinity(currentScore) ? 1.0 : gain / currentScore;
        if (gain <= _tie || gain < _minAbsolute || relative < _minRelative)
        {
            return false;
        }

        r.Target[vm] = blocked;
        r.TargetScore[vm] = blockedScore;
        r.Detail1[vm] = double.NaN;
        r.Rule[vm] = rule;
        Set(r, vm, DecisionKind.Stay, DecisionReason.HeldByRule);
        return true;
    }

    /// <summary>The rule that forbids the host for the VM (for an affinity leader: for any member of its group), or none.</summary>
    private static PlacementRuleKind RuleAt(FleetSnapshot s, DecisionBuffer r, int vm, int host)
    {
        if (s.HostDrained[host])
        {
            return PlacementRuleKind.Drained;
        }

        if (s.IsExcluded(vm, host))
        {
            return PlacementRuleKind.Excluded;
        }

        if (AntiAffinityAt(s, r, vm, host) != PlacementRuleKind.None)
        {
            return PlacementRuleKind.AntiAffinity;
        }

        var leader = s.AffinityLeader[vm];
        if (leader < 0)
        {
            return PlacementRuleKind.None;
        }

        if (leader != vm)
        {
            return r.Planned[leader] == host ? PlacementRuleKind.None : PlacementRuleKind.Affinity;
        }

        foreach (var m in s.AffinityMembersOf(vm))
        {
            if (m == vm)
            {
                continue;
            }

            if (s.IsExcluded(m, host))
            {
                return PlacementRuleKind.Excluded;
            }

            if (AntiAffinityAt(s, r, m, host) != PlacementRuleKind.None)
            {
                return PlacementRuleKind.AntiAffinity;
            }
        }

        return PlacementRuleKind.None;
    }

    /// <summary>Whether an anti-affinity partner of the VM runs on the host or goes there in a running migration or in this evaluation.</summary>
    private static PlacementRuleKind AntiAffinityAt(FleetSnapshot s, DecisionBuffer r, int vm, int host)
    {
        foreach (var p in s.AntiAffinityPartnersOf(vm))
        {
            if (s.CurrentHost[p] == host || r.Planned[p] == host)
            {
                return PlacementRuleKind.AntiAffinity;
            }
        }

        return PlacementRuleKind.None;
    }

    /// <summary>Whether the host has room for the VM — for an affinity leader, for every member not there yet.</summary>
    private static bool HasRoom(FleetSnapshot s, DecisionBuffer r, int vm, int host)
    {
        if (s.AffinityLeader[vm] != vm)
        {
            return r.RoomMemory[host] >= s.VmMemoryBytes[vm] && r.RoomVCpus[host] >= s.VmVCpus[vm];
        }

        long memory = 0;
        var vcpus = 0;
        foreach (var m in s.AffinityMembersOf(vm))
        {
            if (m == vm || s.CurrentHost[m] != host)
            {
                memory += s.VmMemoryBytes[m];
                vcpus += s.VmVCpus[m];
            }
        }

        return r.RoomMemory[host] >= memory && r.RoomVCpus[host] >= vcpus;
    }

    /// <summary>Takes the VM's room on the host (an affinity leader's also for its members, who then follow without asking again) and plans it there.</summary>
    private static void Reserve(FleetSnapshot s, DecisionBuffer r, int vm, int host)
    {
        r.RoomMemory[host] -= s.VmMemoryBytes[vm];
        r.RoomVCpus[host] -= s.VmVCpus[vm];
        r.Planned[vm] = host;
        if (s.AffinityLeader[vm] != vm)
        {
            return;
        }

        foreach (var m in s.AffinityMembersOf(vm))
        {
            if (m != vm && s.CurrentHost[m] != host)
            {
                r.RoomMemory[host] -= s.VmMemoryBytes[m];
                r.RoomVCpus[host] -= s.VmVCpus[m];
                r.ReservedFor[m] = host;
            }
        }
    }

    /// <summary>An affinity leader's score for its group on a host: the sum of the members' scores (members without users count nothing).</summary>
    private double GroupScore(FleetSnapshot s, DecisionBuffer r, int vm, int host)
    {
        var sum = 0.0;
        foreach (var m in s.AffinityMembersOf(vm))
        {
            if (s.UserCount[m] > 0)
            {
                sum += Score(s, r, m, host);
            }
        }

        return sum;
    }

    /// <summary>The memory of an affinity leader's whole group (what a group move copies).</summary>
    private static long GroupMemory(FleetSnapshot s, int vm)
    {
        long memory = 0;
        foreach (var m in s.AffinityMembersOf(vm))
        {
            memory += s.VmMemoryBytes[m];
        }

        return memory;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Set(DecisionBuffer r, int vm, DecisionKind kind, DecisionReason reason)
    {
        r.Kind[vm] = kind;
        r.Reason[vm] = reason;
        return false;
    }

    /// <summary>
    /// The best candidate, checking the placement rules and recording every host's status and score when
    /// <paramref name="record"/>. Statuses in order of precedence: down, backed off, a rule (drained,
    /// excluded, anti-affinity, affinity), stale, unreachable, no room, eligible. Also the best host a rule
    /// forbids (<paramref name="blocked"/>), for the explanation. With <paramref name="evacuate"/>, hosts
    /// whose data is stale or unreachable are candidates too, after every host with a latency.
    /// </summary>
    private int ScanChecked(
        FleetSnapshot s, DecisionBuffer r, int vm, int cur, bool record, bool evacuate,
        out double bestScore, out int blocked, out double blockedScore, out PlacementRuleKind blockedRule)
    {
        var hosts = s.HostCount;
        var row = vm * hosts;
        var rules = s.HasRules;
        var leads = rules && s.AffinityLeader[vm] == vm;
        var memory = s.VmMemoryBytes[vm];
        var vcpus = s.VmVCpus[vm];
        var best = -1;
        var bestKey = double.PositiveInfinity;
        bestScore = double.PositiveInfinity;
        blocked = -1;
        blockedScore = double.PositiveInfinity;
        blockedRule = PlacementRuleKind.None;
        for (var h = 0; h < hosts; h++)
        {
            if (h == cur)
            {
                continue;
            }

            CandidateStatus status;
            var score = double.NaN;
            var availability = s.Availability[h];
            if (availability == HostAvailability.Down)
            {
                status = CandidateStatus.HostDown;
            }
            else if (availability == HostAvailability.BackedOff)
            {
                status = CandidateStatus.BackedOff;
            }
            else
            {
                score = leads ? GroupScore(s, r, vm, h) : Score(s, r, vm, h);
                var rule = rules ? RuleAt(s, r, vm, h) : PlacementRuleKind.None;
                if (rule != PlacementRuleKind.None)
                {
                    status = rule switch
                    {
                        PlacementRuleKind.Drained => CandidateStatus.Drained,
                        PlacementRuleKind.Excluded => CandidateStatus.Excluded,
                        PlacementRuleKind.AntiAffinity => CandidateStatus.AntiAffinity,
                        _ => CandidateStatus.Affinity,
                    };
                    if (double.IsFinite(score) && score < blockedScore)
                    {
                        blocked = h;
                        blockedScore = score;
                        blockedRule = rule;
                    }
                }
                else if (double.IsNaN(score) && !evacuate)
                {
                    status = CandidateStatus.Stale;
                }
                else if (double.IsPositiveInfinity(score) && !evacuate)
                {
                    status = CandidateStatus.Unreachable;
                }
                else if (rules ? !HasRoom(s, r, vm, h) : r.RoomMemory[h] < memory || r.RoomVCpus[h] < vcpus)
                {
                    status = CandidateStatus.NoCapacity;
                }
                else
                {
                    status = double.IsNaN(score) ? CandidateStatus.Stale
                        : double.IsPositiveInfinity(score) ? CandidateStatus.Unreachable
                        : CandidateStatus.Eligible;

                    // Evacuating: a host with a latency first, then unreachable, then stale ones; ties keep the lower index.
                    var key = double.IsFinite(score) ? score : double.IsPositiveInfinity(score) ? double.MaxValue / 2 : double.MaxValue;
                    if (key < bestKey && (evacuate || double.IsFinite(score)))
                    {
                        best = h;
                        bestKey = key;
                        bestScore = score;
                    }
                }
            }

            if (record)
            {
                r.CandidateStatuses![row + h] = status;
                r.CandidateScores![row + h] = double.IsFinite(score) ? score : double.NaN;
            }
        }

        return best;
    }

    /// <summary>
    /// The best candidate without recording anything: the hot path over a whole fleet. A stale host
    /// (NaN) and an unreachable one (+inf) never compare lower; a host that may not receive VMs has no room.
    /// </summary>
    private int ScanFast(FleetSnapshot s, DecisionBuffer r, int vm, int cur, long memory, int vcpus, double[] hostScores, out double bestScore) =>
        ScanFastUnder(s, r, r.RoomMemory, r.RoomVCpus, vm, cur, memory, vcpus, hostScores, out bestScore);

    // rooms, roomsVCpus: the rooms read (the buffer's, or those at the start of the evaluation).
    private int ScanFastUnder(FleetSnapshot s, DecisionBuffer r, long[] rooms, int[] roomsVCpus, int vm, int cur, long memory, int vcpus, double[] hostScores, out double bestScore)
    {
        var hosts = s.HostCount;
        var start = s.UserStart[vm];
        var count = s.UserCount[vm];
        var cells = r.CellValue;
        var roomMemory = rooms.AsSpan(0, hosts);
        var roomVCpus = roomsVCpus.AsSpan(0, hosts);
        var best = -1;
        var bestValue = double.PositiveInfinity;
        if (count == 1)
        {
            var line = cells.AsSpan(s.UserVantage[start] * hosts, hosts);
            for (var h = 0; h < line.Length; h++)
            {
                var v = line[h];
                if (v < bestValue && h != cur && roomMemory[h] >= memory && roomVCpus[h] >= vcpus)
                {
                    best = h;
                    bestValue = v;
                }
            }
        }
        else if (count <= 3)
        {
            // Two or three users: every host's weighted percentile at once (vectorised), then the
            // same scan as for one user.
            var scores = hostScores.AsSpan(0, hosts);
            var line1 = cells.AsSpan(s.UserVantage[start] * hosts, hosts);
            var line2 = cells.AsSpan(s.UserVantage[start + 1] * hosts, hosts);
            var three = count == 3;
            var line3 = three ? cells.AsSpan(s.UserVantage[start + 2] * hosts, hosts) : line2;
            WeightedPercentiles(
                line1, line2, line3,
                s.UserWeight[start], s.UserWeight[start + 1], three ? s.UserWeight[start + 2] : 0,
                Threshold(s, vm),
                scores);
            for (var h = 0; h < scores.Length; h++)
            {
                var v = scores[h];
                if (v < bestValue && h != cur && roomMemory[h] >= memory && roomVCpus[h] >= vcpus)
                {
                    best = h;
                    bestValue = v;
                }
            }
        }
        else
        {
            var rows = r.UserRows;
            for (var j = 0; j < count; j++)
            {
                rows[j] = s.UserVantage[start + j] * hosts;
            }

            var threshold = Threshold(s, vm);
            var line1 = cells.AsSpan(rows[0], hosts);
            var line2 = cells.AsSpan(rows[1], hosts);
            var line3 = cells.AsSpan(rows[2], hosts);
            for (var h = 0; h < line1.Length && h < line2.Length && h < line3.Length; h++)
            {
                var beats = (line1[h] < bestValue) | (line2[h] < bestValue) | (line3[h] < bestValue);
                for (var j = 3; j < count; j++)
                {
                    beats |= cells[rows[j] + h] < bestValue;
                }

                // Percentile passes NaN (stale) through, and NaN never compares lower.
                if (!beats || h == cur || roomMemory[h] < memory || roomVCpus[h] < vcpus)
                {
                    continue;
                }

                var v = Percentile(s, r, start, count, rows, h, threshold);
                if (v < bestValue)
                {
                    best = h;
                    bestValue = v;
                }
            }
        }

        bestScore = bestValue;
        return best;
    }

    /// <summary>
    /// The weighted percentile of three users' latencies (a, b, c with weights; for two users c
    /// repeats b with weight 0) for every host: the smallest latency x whose users at or below x carry
    /// at least the threshold of weight — the same value <see cref="Percentile"/> gives, lane by lane
    /// without branches. NaN where any latency is NaN (stale).
    /// </summary>
    private static void WeightedPercentiles(
        ReadOnlySpan<double> la, ReadOnlySpan<double> lb, ReadOnlySpan<double> lc,
        double wa, double wb, double wc, double threshold, Span<double> scores)
    {
        var n = scores.Length;
        var h = 0;
        if (Vector256.IsHardwareAccelerated && la.Length >= n && lb.Length >= n && lc.Length >= n)
        {
            var va = Vector256.Create(wa);
            var vb = Vector256.Create(wb);
            var vc = Vector256.Create(wc);
            var t = Vector256.Create(threshold);
            var inf = Vector256.Create(double.PositiveInfinity);
            var nan = Vector256.Create(double.NaN);
            for (; h <= n - Vector256<double>.Count; h += Vector256<double>.Count)
            {
                var a = Vector256.Create(la.Slice(h, Vector256<double>.Count));
                var b = Vector256.Create(lb.Slice(h, Vector256<double>.Count));
                var c = Vector256.Create(lc.Slice(h, Vector256<double>.Count));
                var weightA = va + (Vector256.LessThanOrEqual(b, a) & vb) + (Vector256.LessThanOrEqual(c, a) & vc);
                var weightB = (Vector256.LessThanOrEqual(a, b) & va) + vb + (Vector256.LessThanOrEqual(c, b) & vc);
                var weightC = (Vector256.LessThanOrEqual(a, c) & va) + (Vector256.LessThanOrEqual(b, c) & vb) + vc;
                var ca = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(weightA, t), a, inf);
                var cb = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(weightB, t), b, inf);
                var cc = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(weightC, t), c, inf);
                var min = Vector256.ConditionalSelect(Vector256.LessThan(ca, cb), ca, cb);
                min = Vector256.ConditionalSelect(Vector256.LessThan(cc, min), cc, min);
                var stale = ~(Vector256.Equals(a, a) & Vector256.Equals(b, b) & Vector256.Equals(c, c));
                Vector256.ConditionalSelect(stale, nan, min).CopyTo(scores.Slice(h, Vector256<double>.Count));
            }
        }

        for (; h < n; h++)
        {
            scores[h] = Percentile3(la[h], lb[h], lc[h], wa, wb, wc, threshold);
        }
    }

    /// <summary>The weighted percentile of three latencies (for two, c repeats b with weight 0): the same value as <see cref="WeightedPercentile"/>; NaN when any is NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Percentile3(double a, double b, double c, double wa, double wb, double wc, double threshold)
    {
        if (double.IsNaN(a) || double.IsNaN(b) || double.IsNaN(c))
        {
            return double.NaN;
        }

        var result = double.PositiveInfinity;
        if (wa + (b <= a ? wb : 0) + (c <= a ? wc : 0) >= threshold)
        {
            result = a;
        }

        if (b < result && (a <= b ? wa : 0) + wb + (c <= b ? wc : 0) >= threshold)
        {
            result = b;
        }

        if (c < result && (a <= c ? wa : 0) + (b <= c ? wb : 0) + wc >= threshold)
        {
            result = c;
        }

        return result;
    }

    /// <summary>
    /// Whether some other host that may receive VMs has stale data for the VM (asked only when no
    /// candidate was found). A host is stale for the VM when it is stale for any user, so this is
    /// whether any user has a stale cell on such a host: counted per vantage point in advance.
    /// </summary>
    private static bool AnyStale(FleetSnapshot s, DecisionBuffer r, int vm, int cur)
    {
        var start = s.UserStart[vm];
        var currentCounts = s.Availability[cur] == HostAvailability.Available;
        for (var j = 0; j < s.UserCount[vm]; j++)
        {
            var vantage = s.UserVantage[start + j];
            // The current host's own cell is read only when it could be the one stale cell: when the
            // hosts fill up, most VMs end here, and that read is a cache miss each.
            var stale = r.StaleCount[vantage];
            if (stale > 1 || (stale == 1 && !(currentCounts && double.IsNaN(r.CellValue[(vantage * s.HostCount) + cur]))))
            {
                return true;
            }
        }

        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private double Threshold(FleetSnapshot s, int vm) => _percentile * s.TotalWeight[vm] * (1 - 1e-12);

    /// <summary>The VM's weighted-percentile latency on a host: ms, +inf when unreachable, NaN when any user's data is stale.</summary>
    private double Score(FleetSnapshot s, DecisionBuffer r, int vm, int host) => Score(s, r, vm, host, Threshold(s, vm));

    private static double Score(FleetSnapshot s, DecisionBuffer r, int vm, int host, double threshold)
    {
        var hosts = s.HostCount;
        var start = s.UserStart[vm];
        var count = s.UserCount[vm];
        var cells = r.CellValue;
        if (count == 1)
        {
            return cells[(s.UserVantage[start] * hosts) + host];
        }

        if (count <= 3)
        {
            var b = cells[(s.UserVantage[start + 1] * hosts) + host];
            return count == 2
                ? Percentile3(cells[(s.UserVantage[start] * hosts) + host], b, b, s.UserWeight[start], s.UserWeight[start + 1], 0, threshold)
                : Percentile3(cells[(s.UserVantage[start] * hosts) + host], b, cells[(s.UserVantage[start + 2] * hosts) + host], s.UserWeight[start], s.UserWeight[start + 1], s.UserWeight[start + 2], threshold);
        }

        var rows = r.UserRows;
        for (var j = 0; j < count; j++)
        {
            rows[j] = s.UserVantage[start + j] * hosts;
        }

        return Percentile(s, r, start, count, rows, host, threshold);
    }

    /// <summary>
    /// The smallest latency v such that the users seeing v or better carry at least
    /// <paramref name="threshold"/> of weight — the weighted percentile, without sorting (a VM has few users).
    /// NaN when any user's data is stale.
    /// </summary>
    private static double Percentile(FleetSnapshot s, DecisionBuffer r, int start, int count, int[] rows, int host, double threshold)
    {
        var values = r.UserValues;
        for (var j = 0; j < count; j++)
        {
            var v = r.CellValue[rows[j] + host];
            if (double.IsNaN(v))
            {
                return double.NaN;
            }

            values[j] = v;
        }

        return WeightedPercentile(values.AsSpan(0, count), s.UserWeight.AsSpan(start, count), threshold);
    }

    /// <summary>The smallest value whose users at or below it carry at least <paramref name="threshold"/> of weight (no NaN in <paramref name="values"/>).</summary>
    private static double WeightedPercentile(ReadOnlySpan<double> values, ReadOnlySpan<double> weights, double threshold)
    {
        var result = double.PositiveInfinity;
        for (var i = 0; i < values.Length; i++)
        {
            var candidate = values[i];
            if (candidate >= result)
            {
                continue;
            }

            var weight = 0.0;
            for (var j = 0; j < values.Length && j < weights.Length; j++)
            {
                if (values[j] <= candidate)
                {
                    weight += weights[j];
                }
            }

            if (weight >= threshold)
            {
                result = candidate;
            }
        }

        return result;
    }
}
