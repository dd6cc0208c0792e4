using System.Globalization;
using System.Runtime.InteropServices;

namespace Cloudlets.Core.Decisions;

/// <summary>
/// The results of one evaluation, one entry per VM of a <see cref="FleetSnapshot"/>, plus the scratch
/// space a policy needs. Created once for a snapshot's layout and reused for every evaluation, so the
/// evaluation path allocates nothing; <see cref="ToDecision"/> turns an entry into an explained
/// <see cref="MigrationDecision"/> (that allocates).
/// </summary>
public sealed class DecisionBuffer
{
    internal readonly DecisionKind[] Kind;
    internal readonly DecisionReason[] Reason;
    internal readonly int[] Target;
    internal readonly double[] CurrentScore;
    internal readonly double[] TargetScore;
    internal readonly double[] Detail1;
    internal readonly double[] Detail2;
    internal readonly int[] NextPendingHost;
    internal readonly int[] NextPendingWindows;
    internal readonly PlacementRuleKind[] Rule;

    // Per VM × host candidate records, only when recording candidates.
    internal readonly CandidateStatus[]? CandidateStatuses;
    internal readonly double[]? CandidateScores;

    // Scratch, reused by every evaluation.
    internal readonly double[] CellValue;      // [vantage * H + host]: the user's latency in ms; +inf = unreachable, NaN = stale
    internal readonly long[] RoomMemory;     // free memory minus the reserve minus this window's moves; MinValue = not a destination
    internal readonly int[] RoomVCpus;
    internal readonly double[] UserValues;
    internal readonly int[] UserRows;
    internal readonly double[] NearestBounds;  // per user of one VM: the latency at the current rank of its nearest-host list

    internal readonly double[] HostScores;     // one VM's score on every host
    internal readonly int[] StaleCount;        // per vantage point: stale cells on hosts that may receive VMs
    internal readonly int[] Planned;           // per VM: where it runs after this evaluation's moves (-1 unknown)
    internal readonly int[] ReservedFor;       // per VM: the host its affinity leader reserved room on for it this evaluation, or -1

    // What the cell values were prepared from, so the next evaluation re-reads only rows that changed:
    // the policy and snapshot, the snapshot's availability version, the evaluation time, and per
    // vantage point the row's version and the time until which every fresh cell of it stays fresh.
    internal object? PreparedBy;
    internal FleetSnapshot? PreparedFrom;
    internal long PreparedAvailabilityVersion;
    internal long PreparedAtTicks;
    internal readonly long[] PreparedRowVersion;
    internal readonly long[] RowFreshUntilTicks;

    // The nearest-host index (LowestLatencyPolicy.CandidateIndexDepth): per vantage point up to Depth
    // hosts that may receive VMs and are reachable, by (latency, host index); allocated on first use.
    internal int NearestDepth;
    internal int[] NearestHost = [];        // [vantage * NearestDepth + rank]
    internal double[] NearestValue = [];    // the same cells' latency in ms
    internal int[] NearestCount = [];       // per vantage point: how many entries; fewer than the depth = every such host is listed

    // Reuse of each VM's search between evaluations (LowestLatencyPolicy with its index on, no rules, no
    // candidate recording); allocated on first use. Evaluation numbers: the evaluation a row was last
    // prepared in, the last evaluation in which some host's room at the start grew, and per VM the
    // evaluation its entry was computed in (-1: none) with the inputs it was computed for (current host,
    // memory, vCPUs) and its results (current score, best other host under the rooms at the start of that
    // evaluation, its score).
    internal long EvaluationNumber;
    internal long RoomGrewAt;
    internal long[] RowPreparedAt = [];
    internal long[] StartRoomMemory = [];
    internal int[] StartRoomVCpus = [];
    internal long[] RefreshMarkedAt = [];   // per VM: the evaluation whose refresh looks at it (a user's row prepared again, or its inputs changed)
    internal bool RefreshEvery;             // this evaluation's refresh looks at every VM
    internal long RefreshedEvaluation = -1; // the last evaluation that marked VMs for its refresh (one that threw too: the next looks at every VM then)
    internal long SeenInputChangeRound = -1;
    internal int SeenInputChangeCount;
    internal int RowsPreparedCount;         // how many entries of RowsToPrepare this evaluation prepared
    internal bool AllRowsPrepared;          // every row, whether written or not
    internal long[] ReuseComputedAt = [];
    internal int[] ReuseHost = [];
    internal long[] ReuseMemory = [];
    internal int[] ReuseVCpus = [];
    internal double[] ReuseCurrentScore = [];
    internal int[] ReuseBest = [];
    internal double[] ReuseBestScore = [];

    // Hosts that can still take the smallest VM, in host order (for a search that ran out of its lists);
    // OpenStale: some host in the list has filled up since it was compacted.
    internal int[] OpenHosts = [];
    internal int OpenCount;
    internal bool OpenStale;

    // Once few hosts are open (the policy's OpenScanMaximum or fewer), every vantage point's latency to
    // them, side by side, so that a scan of the open hosts reads one short row instead of a cache line per
    // host from the whole cell matrix. Built once per evaluation (OpenCellsAt: which), when first needed:
    // within an evaluation the open hosts only leave, so each one still open has its column (OpenColumn).
    internal double[] OpenCells = [];   // [vantage * OpenCellsWidth + column]
    internal int[] OpenColumn = [];     // per host: its column, valid for the hosts in OpenHosts
    internal long OpenCellsAt = -1;

    // The look-ahead (LowestLatencyPolicy.LookAhead, allocated on first use): per VM, the best other host
    // another lane found for it while this evaluation ran, under rooms it read then, and the evaluation it
    // was found in (written last; -1 none); the lane's own walk cursors; the evaluating thread's progress.
    internal int[] AheadBest = [];
    internal double[] AheadScore = [];
    internal long[] AheadAt = [];
    internal int[] AheadCursor = [];
    internal long[] AheadCursorAt = [];
    internal bool AheadPending;             // this evaluation may start the look-ahead, and has not yet
    internal EvaluationLane? AheadLane;     // the lane running it, once started
    internal readonly LookAheadProgress[] AheadProgress = new LookAheadProgress[1];

    // The shares of an evaluation's work that other threads take (made on first use, one per extra lane),
    // and the rows an evaluation prepares again (their vantage points, the first RowsToPrepare entries).
    private EvaluationLane[] _lanes = [];
    internal readonly int[] RowsToPrepare;
    internal const int OpenCellsWidth = 32;

    /// <summary>The first VM that lanes still bring up to date while the decisions run (see LowestLatencyPolicy's AwaitRefresh), or -1 when none.</summary>
    internal int OverlapFrom = -1;

    /// <summary>How many VMs each of those lanes takes, in order from <see cref="OverlapFrom"/>.</summary>
    internal int OverlapLength;

    /// <summary>How many lanes share them.</summary>
    internal int OverlapLanes;

    // Every vantage point's full host ordering (with the index and reuse on; allocated on first use): the
    // hosts that may receive VMs and that it reaches, by (latency, host index), rebuilt only when its row is
    // prepared again. A one-user VM whose nearest-host list holds no host with room walks it instead of
    // scanning every host. Within an evaluation room only shrinks, so a host passed over for lack of vCPUs
    // stays unfit for every VM at least that large: per vantage point one cursor per vCPU class (1, 2, 3,
    // 4 or more) past the leading hosts that cannot fit that class any more, reset each evaluation
    // (OrderCursorAt: the evaluation they were set in).
    internal int[] OrderHost = [];      // [vantage * H + rank]
    internal int[] OrderCount = [];
    internal int[] OrderCursor = [];    // [vantage * OrderClasses + class]
    internal long[] OrderCursorAt = [];
    internal const int OrderClasses = 4;
    internal double[] OrderKeys = [];   // sort scratch, one row
    internal long[] OrderSeen = [];     // per host: the OrderStamp of the row being prepared that lists it
    internal long OrderStamp;

    /// <summary>Creates a buffer for a snapshot's layout.</summary>
    /// <param name="layout">The snapshot whose VMs and hosts this buffer holds results for.</param>
    /// <param name="recordCandidates">Whether every candidate's status and score is kept (needed for <see cref="MigrationDecision.Candidates"/>; costs VMs × hosts memory).</param>
    public DecisionBuffer(FleetSnapshot layout, bool recordCandidates = true)
    {
        ArgumentNullException.ThrowIfNull(layout);
        VmCount = layout.VmCount;
        HostCount = layout.HostCount;
        VantagePointCount = layout.VantagePointCount;
        var v = layout.VmCount;
        Kind = new DecisionKind[v];
        Reason = new DecisionReason[v];
        Target = new int[v];
        CurrentScore = new double[v];
        TargetScore = new double[v];
        Detail1 = new double[v];
        Detail2 = new double[v];
        NextPendingHost = new int[v];
        NextPendingWindows = new int[v];
        Rule = new PlacementRuleKind[v];
        Planned = new int[v];
        ReservedFor = new int[v];
        RecordsCandidates = recordCandidates;
        if (recordCandidates)
        {
            CandidateStatuses = new CandidateStatus[v * layout.HostCount];
            CandidateScores = new double[v * layout.HostCount];
        }

        CellValue = new double[layout.VantagePointCount * layout.HostCount];
        RoomMemory = new long[layout.HostCount];
        RoomVCpus = new int[layout.HostCount];
        var maxUsers = 1;
        foreach (var c in layout.UserCount)
        {
            maxUsers = Math.Max(maxUsers, c);
        }

        UserValues = new double[maxUsers];
        UserRows = new int[maxUsers];
        NearestBounds = new double[maxUsers];
        HostScores = new double[layout.HostCount];
        StaleCount = new int[layout.VantagePointCount];
        RowsToPrepare = new int[layout.VantagePointCount];
        PreparedRowVersion = new long[layout.VantagePointCount];
        RowFreshUntilTicks = new long[layout.VantagePointCount];
    }

    /// <summary>Makes room for a nearest-host index of <paramref name="depth"/> hosts per vantage point (allocates only the first time, or for a deeper index).</summary>
    internal void EnsureNearestIndex(int depth)
    {
        if (NearestDepth == depth)
        {
            return;
        }

        NearestDepth = depth;
        NearestHost = new int[VantagePointCount * depth];
        NearestValue = new double[VantagePointCount * depth];
        NearestCount = new int[VantagePointCount];
    }

    /// <summary>Makes room for the full host orderings (allocates only the first time); <see langword="true"/> when it did (every ordering then has to be built).</summary>
    internal bool EnsureOrder()
    {
        if (OrderCount.Length == VantagePointCount && OrderHost.Length == VantagePointCount * HostCount)
        {
            return false;
        }

        OrderHost = new int[VantagePointCount * HostCount];
        OrderCount = new int[VantagePointCount];
        OrderCursor = new int[VantagePointCount * OrderClasses];
        OrderCursorAt = new long[VantagePointCount];
        Array.Fill(OrderCursorAt, -1);
        OrderKeys = new double[HostCount];
        OrderSeen = new long[HostCount];
        return true;
    }

    /// <summary>Makes room for the look-ahead's results and cursors (allocates only the first time); every result starts invalid.</summary>
    internal void EnsureLookAhead()
    {
        if (AheadAt.Length == VmCount && AheadCursorAt.Length == VantagePointCount)
        {
            return;
        }

        AheadBest = new int[VmCount];
        AheadScore = new double[VmCount];
        AheadAt = new long[VmCount];
        Array.Fill(AheadAt, -1);
        AheadCursor = new int[VantagePointCount * OrderClasses];
        AheadCursorAt = new long[VantagePointCount];
        Array.Fill(AheadCursorAt, -1);
    }

    /// <summary>What the lanes' shares allocated on the threads that ran them, so far (for the allocation tests).</summary>
    internal long LaneAllocatedBytes
    {
        get
        {
            var sum = 0L;
            foreach (var lane in _lanes)
            {
                sum += lane.AllocatedBytes;
            }

            return sum;
        }
    }

    /// <summary>The lanes for work split with other threads: at least <paramref name="lanes"/> of them (the evaluating thread's own share needs none); made only the first time.</summary>
    internal EvaluationLane[] EnsureLanes(int lanes)
    {
        if (_lanes.Length < lanes)
        {
            var grown = new EvaluationLane[lanes];
            for (var i = 0; i < lanes; i++)
            {
                grown[i] = i < _lanes.Length ? _lanes[i] : new EvaluationLane(HostCount);
            }

            _lanes = grown;
        }

        return _lanes;
    }

    /// <summary>Makes room for the reuse of searches between evaluations (allocates only the first time); every entry starts invalid.</summary>
    internal void EnsureReuse()
    {
        if (ReuseComputedAt.Length == VmCount && VmCount > 0)
        {
            return;
        }

        RowPreparedAt = new long[VantagePointCount];
        StartRoomMemory = new long[HostCount];
        StartRoomVCpus = new int[HostCount];
        ReuseComputedAt = new long[VmCount];
        Array.Fill(ReuseComputedAt, -1);
        RefreshMarkedAt = new long[VmCount];
        Array.Fill(RefreshMarkedAt, -1);
        RefreshedEvaluation = -1;
        ReuseHost = new int[VmCount];
        ReuseMemory = new long[VmCount];
        ReuseVCpus = new int[VmCount];
        ReuseCurrentScore = new double[VmCount];
        ReuseBest = new int[VmCount];
        ReuseBestScore = new double[VmCount];
        OpenHosts = new int[HostCount];
        OpenColumn = new int[HostCount];
        OpenCells = new double[VantagePointCount * OpenCellsWidth];
        OpenCellsAt = -1;
        RoomGrewAt = 0;
    }

    /// <summary>The number of VM entries.</summary>
    public int VmCount { get; }

    /// <summary>The number of hosts of the layout.</summary>
    public int HostCount { get; }

    /// <summary>The number of vantage points of the layout.</summary>
    public int VantagePointCount { get; }

    /// <summary>Whether every candidate's status and score is kept.</summary>
    public bool RecordsCandidates { get; }

    /// <summary>The evaluation time of the last evaluation.</summary>
    public DateTimeOffset EvaluatedAt { get; internal set; }

    /// <summary>The number of moves in the last evaluation.</summary>
    public int MoveCount { get; internal set; }

    /// <summary>The confirmation windows the policy requires (for explanations), as given to <see cref="Begin"/>.</summary>
    public int RequiredWindows { get; internal set; }

    /// <summary>Whether this buffer was created for the layout of <paramref name="snapshot"/> (same numbers of VMs, hosts and vantage points).</summary>
    public bool Fits(FleetSnapshot snapshot) =>
        snapshot is not null && snapshot.VmCount == VmCount && snapshot.HostCount == HostCount && snapshot.VantagePointCount == VantagePointCount;

    // The writer side, for IMigrationPolicy implementations in any assembly: Begin once per
    // evaluation, then Set (and optionally SetNextConfirmation, SetCandidate) per VM. None allocates.

    /// <summary>
    /// Starts an evaluation of <paramref name="snapshot"/>: every entry becomes "no decision" without a
    /// target, scores or pending confirmation, and every candidate "not evaluated".
    /// </summary>
    /// <param name="snapshot">The snapshot about to be evaluated (its <see cref="FleetSnapshot.Now"/> is the evaluation time).</param>
    /// <param name="requiredWindows">How many consecutive windows the policy requires before a move (used in explanations); at least 1.</param>
    /// <exception cref="ArgumentException">The buffer was created for another layout.</exception>
    public void Begin(FleetSnapshot snapshot, int requiredWindows = 1)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (!Fits(snapshot))
        {
            throw new ArgumentException("The decision buffer was created for a different snapshot layout.", nameof(snapshot));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(requiredWindows, 1);
        EvaluatedAt = snapshot.Now;
        RequiredWindows = requiredWindows;
        MoveCount = 0;
        Array.Fill(Kind, DecisionKind.NoDecision);
        Array.Fill(Reason, DecisionReason.NoUsers);
        Array.Fill(Target, -1);
        Array.Fill(CurrentScore, double.NaN);
        Array.Fill(TargetScore, double.NaN);
        Array.Fill(Detail1, double.NaN);
        Array.Fill(Detail2, double.NaN);
        Array.Fill(NextPendingHost, -1);
        Array.Clear(NextPendingWindows);
        Array.Clear(Rule);
        if (RecordsCandidates)
        {
            Array.Fill(CandidateStatuses!, CandidateStatus.NotEvaluated);
            Array.Fill(CandidateScores!, double.NaN);
        }
    }

    /// <summary>Records what the evaluation concluded for a VM (the last call for a VM wins; <see cref="MoveCount"/> follows).</summary>
    /// <param name="vm">The VM index.</param>
    /// <param name="kind">Stay, move or no decision.</param>
    /// <param name="reason">Why.</param>
    /// <param name="targetHost">A move's destination, a held-back move's best host, or -1.</param>
    /// <param name="currentScore">The VM's score on its current host (the policy's unit, lower is better), or NaN.</param>
    /// <param name="targetScore">The VM's score on the target host, or NaN.</param>
    /// <param name="figure1">A figure the explanation quotes: the minimum gain (<see cref="DecisionReason.BelowAbsoluteGain"/>, <see cref="DecisionReason.BelowRelativeGain"/>), the migration cost (<see cref="DecisionReason.CostExceedsGain"/>), the seconds of cooldown left (<see cref="DecisionReason.Cooldown"/>), the windows a move's gain held (<see cref="DecisionReason.Move"/>; NaN: the required windows); otherwise NaN.</param>
    /// <param name="figure2">The expected gain for <see cref="DecisionReason.CostExceedsGain"/>, the benefit-to-cost ratio of a decisive <see cref="DecisionReason.Move"/>; otherwise NaN.</param>
    /// <exception cref="ArgumentOutOfRangeException">The VM or target host index is out of range, or a move has no target.</exception>
    public void Set(int vm, DecisionKind kind, DecisionReason reason, int targetHost = -1, double currentScore = double.NaN, double targetScore = double.NaN, double figure1 = double.NaN, double figure2 = double.NaN)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)vm, (uint)VmCount, nameof(vm));
        if (targetHost < -1 || targetHost >= HostCount || (kind == DecisionKind.Move && targetHost < 0))
        {
            throw new ArgumentOutOfRangeException(nameof(targetHost), targetHost, "A target is -1 or a host index; a move needs one.");
        }

        MoveCount += (kind == DecisionKind.Move ? 1 : 0) - (Kind[vm] == DecisionKind.Move ? 1 : 0);
        Kind[vm] = kind;
        Reason[vm] = reason;
        Target[vm] = targetHost;
        CurrentScore[vm] = currentScore;
        TargetScore[vm] = targetScore;
        Detail1[vm] = figure1;
        Detail2[vm] = figure2;
    }

    /// <summary>
    /// Records the confirmation state the next evaluation starts from (carried into the snapshot by
    /// <see cref="FleetSnapshot.AdvanceConfirmations"/>): the host a move is pending to (-1 for none)
    /// and for how many consecutive windows it has been seen.
    /// </summary>
    public void SetNextConfirmation(int vm, int pendingHost, int windows)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)vm, (uint)VmCount, nameof(vm));
        ArgumentOutOfRangeException.ThrowIfLessThan(pendingHost, -1);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(pendingHost, HostCount);
        ArgumentOutOfRangeException.ThrowIfNegative(windows);
        NextPendingHost[vm] = pendingHost;
        NextPendingWindows[vm] = windows;
    }

    /// <summary>Records which placement rule shaped the VM's decision (<see cref="MigrationDecision.HeldBy"/>); <see cref="Begin"/> resets it to none.</summary>
    public void SetRule(int vm, PlacementRuleKind rule)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)vm, (uint)VmCount, nameof(vm));
        Rule[vm] = rule;
    }

    /// <summary>The placement rule that shaped the VM's decision in the last evaluation.</summary>
    public PlacementRuleKind RuleOf(int vm) => Rule[vm];

    /// <summary>Records one host's status and score as a candidate for a VM; ignored unless <see cref="RecordsCandidates"/>.</summary>
    public void SetCandidate(int vm, int host, CandidateStatus status, double score)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)vm, (uint)VmCount, nameof(vm));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)host, (uint)HostCount, nameof(host));
        if (RecordsCandidates)
        {
            var i = (vm * HostCount) + host;
            CandidateStatuses![i] = status;
            CandidateScores![i] = double.IsFinite(score) ? score : double.NaN;
        }
    }

    /// <summary>The confirmation state the last evaluation left for the next one.</summary>
    public (int PendingHost, int Windows) NextConfirmationOf(int vm) => (NextPendingHost[vm], NextPendingWindows[vm]);

    /// <summary>What the last evaluation concluded for a VM.</summary>
    public DecisionKind KindOf(int vm) => Kind[vm];

    /// <summary>Why.</summary>
    public DecisionReason ReasonOf(int vm) => Reason[vm];

    /// <summary>The target host index (a move's destination, a held-back move's best host), or -1.</summary>
    public int TargetOf(int vm) => Target[vm];

    /// <summary>The VM's score on its current host in ms, or NaN when not scored.</summary>
    public double CurrentScoreOf(int vm) => CurrentScore[vm];

    /// <summary>The VM's score on the target host in ms, or NaN.</summary>
    public double TargetScoreOf(int vm) => TargetScore[vm];

    /// <summary>
    /// Turns a move into a held-back stay (for example when the executor's limits refuse it), and
    /// keeps its confirmation so that it is retried in the next window.
    /// </summary>
    public void HoldBack(int vm, DecisionReason reason)
    {
        if (Kind[vm] != DecisionKind.Move)
        {
            return;
        }

        Kind[vm] = DecisionKind.Stay;
        Reason[vm] = reason;
        NextPendingHost[vm] = Target[vm];
        NextPendingWindows[vm] = Math.Max(RequiredWindows - 1, 0);
        MoveCount--;
    }

    /// <summary>Turns one entry into an explained decision, with every candidate when they were recorded.</summary>
    public MigrationDecision ToDecision(FleetSnapshot snapshot, int vm)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var current = snapshot.CurrentHost[vm];
        var target = Target[vm];
        CandidateScore[] candidates = [];
        if (RecordsCandidates)
        {
            candidates = new CandidateScore[HostCount];
            for (var h = 0; h < HostCount; h++)
            {
                var i = (vm * HostCount) + h;
                var score = CandidateScores![i];
                candidates[h] = new CandidateScore(snapshot.HostName(h), CandidateStatuses![i], double.IsNaN(score) ? null : score, h == current);
            }
        }

        // A move's figure 1 is the windows its gain held (a decisive move may need fewer); NaN: the required number.
        var windows = Kind[vm] != DecisionKind.Move ? NextPendingWindows[vm]
            : Reason[vm] == DecisionReason.Move && double.IsFinite(Detail1[vm]) ? (int)Detail1[vm] : RequiredWindows;
        return new MigrationDecision(
            snapshot.VmName(vm),
            EvaluatedAt,
            Kind[vm],
            Reason[vm],
            current >= 0 ? snapshot.HostName(current) : null,
            target >= 0 ? snapshot.HostName(target) : null,
            double.IsNaN(CurrentScore[vm]) ? null : CurrentScore[vm],
            double.IsNaN(TargetScore[vm]) || target < 0 ? null : TargetScore[vm],
            windows,
            candidates,
            Explain(snapshot, vm, current, target, windows))
        {
            HeldBy = Rule[vm],
        };
    }

    private string Explain(FleetSnapshot snapshot, int vm, int current, int target, int windows)
    {
        var c = CultureInfo.InvariantCulture;
        var cur = current >= 0 ? snapshot.HostName(current) : "?";
        var tgt = target >= 0 ? snapshot.HostName(target) : "?";
        var cs = Ms(CurrentScore[vm]);
        var ts = Ms(TargetScore[vm]);
        return Reason[vm] switch
        {
            DecisionReason.Move => double.IsFinite(Detail2[vm])
                ? string.Format(c, "Move from {0} ({1}) to {2} ({3}): the gain held for {4} of {5} windows and is decisive (its benefit over the expected stay is {6:0.0} × the migration cost, and even {2}'s 95th percentile is better).", cur, cs, tgt, ts, windows, RequiredWindows, Detail2[vm])
                : string.Format(c, "Move from {0} ({1}) to {2} ({3}): the gain held for {4} windows and outweighs the migration cost.", cur, cs, tgt, ts, windows),
            DecisionReason.AlreadyBest => string.Format(c, "Stay on {0} ({1}): no candidate scores lower.", cur, cs),
            DecisionReason.Tie => string.Format(c, "Stay on {0} ({1}): {2} ({3}) is no better within the tie tolerance; ties keep the VM.", cur, cs, tgt, ts),
            DecisionReason.NoCandidates => string.Format(c, "Stay on {0} ({1}): no other host is a candidate (down, backed off, unreachable or full).", cur, cs),
            DecisionReason.BelowAbsoluteGain => string.Format(c, "Stay on {0} ({1}): {2} ({3}) gains less than the minimum {4}.", cur, cs, tgt, ts, Ms(Detail1[vm])),
            DecisionReason.BelowRelativeGain => string.Format(c, "Stay on {0} ({1}): {2} ({3}) gains less than the minimum {4:0.#} %.", cur, cs, tgt, ts, Detail1[vm] * 100),
            DecisionReason.CostExceedsGain => double.IsPositiveInfinity(Detail1[vm])
                ? string.Format(c, "Stay on {0} ({1}): a migration to {2} ({3}) would not converge (the dirty rate reaches the bandwidth).", cur, cs, tgt, ts)
                : string.Format(c, "Stay on {0} ({1}): moving to {2} ({3}) costs {4:0} ms·s, more than the expected gain of {5:0} ms·s over the expected stay.", cur, cs, tgt, ts, Detail1[vm], Detail2[vm]),
            DecisionReason.Cooldown => string.Format(c, "Stay on {0} ({1}): {2} ({3}) is better, but the VM moved recently; the cooldown ends in {4:0.#} s.", cur, cs, tgt, ts, Detail1[vm]),
            DecisionReason.AwaitingConfirmation => string.Format(c, "Stay on {0} ({1}) for now: {2} ({3}) is better in {4} of {5} consecutive windows.", cur, cs, tgt, ts, windows, RequiredWindows),
            DecisionReason.MigrationLimitReached => string.Format(c, "Stay on {0} ({1}) for now: the move to {2} ({3}) is due{4}, but the executor's limits or a host backoff hold it back.", cur, cs, tgt, ts, Rule[vm] == PlacementRuleKind.None ? "" : " (" + Requires(Rule[vm], cur) + ")"),
            DecisionReason.StaleData => string.Format(c, "No decision for VM on {0}: the latency data is older than the staleness bound.", cur),
            DecisionReason.CurrentHostDown => string.Format(c, "No decision: the current host {0} does not answer.", cur),
            DecisionReason.PlacementUnknown => "No decision: the VM was not found running on exactly one known host.",
            DecisionReason.MigrationInProgress => string.Format(c, "No decision: the VM is being migrated from {0}.", cur),
            DecisionReason.NoUsers => "No decision: the VM has no users.",
            DecisionReason.Pinned => target >= 0
                ? string.Format(c, "Stay on {0} ({1}): the VM is pinned; {2} ({3}) would otherwise be considered.", cur, cs, tgt, ts)
                : string.Format(c, "Stay on {0} ({1}): the VM is pinned.", cur, cs),
            DecisionReason.HeldByRule => string.Format(c, "Stay on {0} ({1}): {2} ({3}) would be better, but {4}.", cur, cs, tgt, ts, Forbids(Rule[vm], tgt)),
            DecisionReason.RuleRequiresMove => string.Format(c, "Move from {0} ({1}) to {2} ({3}): {4}; {2} is the best allowed host with room.", cur, cs, tgt, ts, Requires(Rule[vm], cur)),
            DecisionReason.NoAllowedHost => string.Format(c, "Stay on {0} ({1}) for now: {2}, but no allowed host has room.", cur, cs, Requires(Rule[vm], cur)),
            _ => Reason[vm].ToString(),
        };

        static string Forbids(PlacementRuleKind rule, string host) => rule switch
        {
            PlacementRuleKind.Drained => host + " is drained",
            PlacementRuleKind.Excluded => host + " is excluded for this VM",
            PlacementRuleKind.AntiAffinity => "a member of one of its anti-affinity groups runs (or is going) on " + host,
            PlacementRuleKind.Affinity => "it would leave its affinity group",
            PlacementRuleKind.Pinned => "a member of its affinity group is pinned",
            _ => "a placement rule forbids it",
        };

        static string Requires(PlacementRuleKind rule, string host) => rule switch
        {
            PlacementRuleKind.Drained => host + " is drained",
            PlacementRuleKind.Excluded => host + " is excluded for this VM",
            PlacementRuleKind.AntiAffinity => "a member of one of its anti-affinity groups runs on " + host + " too",
            PlacementRuleKind.Affinity => "its affinity group runs elsewhere",
            _ => "a placement rule requires it to leave " + host,
        };

        string Ms(double value) => double.IsNaN(value) ? "n/a" : double.IsPositiveInfinity(value) ? "unreachable" : value.ToString("0.0", c) + " ms";
    }
}

/// <summary>
/// How far the evaluating thread has decided and whether the look-ahead lane is to stop (written by the
/// evaluating thread, read by the lane), and how many of the lane's results that thread took or refused
/// (its own). The first two share a cache line, the counts have another; nothing else uses either (one
/// array element of its own, each line's fields 64 bytes and more from the element's ends and from the
/// other line's), so that a write evicts no line the other thread reads but that one.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 320)]
internal struct LookAheadProgress
{
    /// <summary>Every VM below this one is decided.</summary>
    [FieldOffset(64)]
    public int DecidedUpTo;

    /// <summary>Not 0: the evaluation is over, the lane stops.</summary>
    [FieldOffset(68)]
    public int Stop;

    /// <summary>How many results the evaluating thread took from the lane, over every evaluation (for the tests).</summary>
    [FieldOffset(184)]
    public long Used;

    /// <summary>How many it refused because the host found had filled up since (for the tests).</summary>
    [FieldOffset(192)]
    public long Refused;
}
