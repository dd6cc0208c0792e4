using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Decisions;

/// <summary>
/// What a policy knows at one evaluation: per host its availability and free capacity; per vantage
/// point and host a latency summary; per VM its users (with weights), placement, size, dirty rate and
/// migration history. The layout (which hosts, VMs and vantage points, in which order) is fixed when
/// the snapshot is created; values are updated in place between evaluations, so a caller that
/// evaluates every window allocates nothing. Not thread-safe: one writer, then one evaluation.
/// </summary>
/// <remarks>
/// Data is stored in flat arrays indexed by host, vantage point and VM index (see <c>IndexOf…</c>)
/// so that one evaluation over a large fleet touches contiguous memory.
/// </remarks>
public sealed class FleetSnapshot
{
    private readonly string[] _hosts;
    private readonly string[] _vantagePoints;
    private readonly string[] _vms;
    private readonly Dictionary<string, int> _hostIndex;
    private readonly Dictionary<string, int> _vantageIndex;
    private readonly Dictionary<string, int> _vmIndex;

    // Hosts.
    internal readonly HostAvailability[] Availability;
    internal readonly long[] FreeMemoryBytes;
    internal readonly int[] FreeVCpus;
    internal readonly double[] Bandwidth; // [source * H + destination], NaN = unknown
    internal readonly int[] KnownBandwidthFrom; // per source host: how many of its Bandwidth entries are known (not NaN)

    // Latency cells, [vantage * H + host].
    internal readonly LatencyCell[] Cells;

    // Change counters, so that a policy re-reads only what changed since its last evaluation: one per
    // vantage point's row of cells, and one for the hosts' availability.
    internal readonly long[] RowVersion;
    internal long AvailabilityVersion;

    // VMs: users in CSR layout.
    internal readonly int[] UserStart;
    internal readonly int[] UserCount;
    internal readonly int[] UserVantage;
    internal readonly double[] UserWeight;
    internal readonly double[] TotalWeight;
    internal readonly int[] CurrentHost;
    internal readonly long[] VmMemoryBytes;
    internal readonly int[] VmVCpus;
    internal readonly double[] DirtyRate;
    internal readonly long[] LastMoveTicks; // UTC ticks, long.MinValue = never
    internal readonly bool[] InFlight;
    internal readonly int[] PendingHost;
    internal readonly int[] PendingWindows;
    internal readonly int[] InFlightDestination; // -1 = unknown or none

    // The smallest memory and vCPUs any VM was ever given by SetPlacement (a lower bound of every VM's
    // size, so a host with less room than this can take no VM).
    internal long MinVmMemoryBytes = long.MaxValue;
    internal int MinVmVCpus = int.MaxValue;

    // Placement rules, compiled to indices by SetRules.
    internal bool HasRules;
    internal readonly bool[] HostDrained;
    internal readonly bool[] VmPinned;
    internal bool[]? Excluded;                 // [vm * H + host], null when no VM excludes a host
    internal bool AnyExclusion;
    internal readonly int[] AntiStart;         // per VM: its anti-affinity partners in AntiPartner
    internal readonly int[] AntiCount;
    internal int[] AntiPartner = [];
    internal readonly int[] AffinityLeader;    // per VM: the leader of its affinity group, -1 for none
    internal readonly int[] AffinityStart;     // per VM: its group's members (ascending) in AffinityMember
    internal readonly int[] AffinityCount;
    internal int[] AffinityMember = [];

    // Per vantage point, the VMs it is a user of (VantageVm[VantageVmStart[p] .. VantageVmStart[p + 1]]): an
    // evaluation brings the VMs of the rows it prepared again up to date without looking at the others.
    internal readonly int[] VantageVmStart;
    internal readonly int[] VantageVm;

    // The VMs whose host, size or migration state changed, in the order they did (InputChanged): an evaluation
    // reads those added since the one before. Bounded by twice the VM count (setting every VM's placement once
    // leaves room for as many changes again): once full it starts a new round, and an evaluation that finds a
    // new round since it last read looks at every VM.
    internal readonly int[] InputChanges;
    internal int InputChangeCount;
    internal long InputChangeRound;

    /// <summary>Creates a snapshot for a fixed set of hosts and VMs; the vantage points are the VMs' users, in order of first appearance.</summary>
    /// <param name="hosts">Host names, unique.</param>
    /// <param name="vms">VMs with their users; names unique, each user with a finite weight greater than 0.</param>
    /// <exception cref="ArgumentException">A name is repeated or empty, or a weight is invalid.</exception>
    public FleetSnapshot(IReadOnlyList<string> hosts, IReadOnlyList<VmDefinition> vms)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        ArgumentNullException.ThrowIfNull(vms);
        _hosts = [.. hosts];
        _hostIndex = IndexNames(_hosts, "host");
        _vms = new string[vms.Count];
        for (var i = 0; i < vms.Count; i++)
        {
            _vms[i] = vms[i]?.Name ?? throw new ArgumentException($"VM {i} is null.", nameof(vms));
        }

        _vmIndex = IndexNames(_vms, "VM");

        var vantage = new List<string>();
        _vantageIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var users = 0;
        foreach (var vm in vms)
        {
            users += vm.Users?.Count ?? throw new ArgumentException($"VM '{vm.Name}' has no user list.", nameof(vms));
        }

        var v = vms.Count;
        var h = _hosts.Length;
        UserStart = new int[v];
        UserCount = new int[v];
        UserVantage = new int[users];
        UserWeight = new double[users];
        TotalWeight = new double[v];
        var next = 0;
        for (var i = 0; i < v; i++)
        {
            UserStart[i] = next;
            UserCount[i] = vms[i].Users.Count;
            foreach (var user in vms[i].Users)
            {
                if (string.IsNullOrEmpty(user.VantagePoint))
                {
                    throw new ArgumentException($"VM '{_vms[i]}' has a user without a vantage point.", nameof(vms));
                }

                if (!double.IsFinite(user.Weight) || user.Weight <= 0)
                {
                    throw new ArgumentException($"VM '{_vms[i]}': user '{user.VantagePoint}' has weight {user.Weight}; a weight must be finite and greater than 0.", nameof(vms));
                }

                if (!_vantageIndex.TryGetValue(user.VantagePoint, out var vp))
                {
                    vp = vantage.Count;
                    vantage.Add(user.VantagePoint);
                    _vantageIndex.Add(user.VantagePoint, vp);
                }

                UserVantage[next] = vp;
                UserWeight[next] = user.Weight;
                TotalWeight[i] += user.Weight;
                next++;
            }
        }

        _vantagePoints = [.. vantage];
        VantageVmStart = new int[_vantagePoints.Length + 1];
        VantageVm = new int[users];
        foreach (var vp in UserVantage)
        {
            VantageVmStart[vp + 1]++;
        }

        for (var p = 0; p < _vantagePoints.Length; p++)
        {
            VantageVmStart[p + 1] += VantageVmStart[p];
        }

        var fill = VantageVmStart[..^1];
        for (var i = 0; i < v; i++)
        {
            for (var j = UserStart[i]; j < UserStart[i] + UserCount[i]; j++)
            {
                VantageVm[fill[UserVantage[j]]++] = i;
            }
        }

        InputChanges = new int[Math.Max(1, (int)Math.Min(Array.MaxLength, 2L * v))];
        Availability = new HostAvailability[h];
        FreeMemoryBytes = new long[h];
        FreeVCpus = new int[h];
        Bandwidth = new double[h * h];
        Array.Fill(Bandwidth, double.NaN);
        KnownBandwidthFrom = new int[h];
        Cells = new LatencyCell[_vantagePoints.Length * h];
        RowVersion = new long[_vantagePoints.Length];
        CurrentHost = new int[v];
        Array.Fill(CurrentHost, -1);
        VmMemoryBytes = new long[v];
        VmVCpus = new int[v];
        DirtyRate = new double[v];
        Array.Fill(DirtyRate, double.NaN);
        LastMoveTicks = new long[v];
        Array.Fill(LastMoveTicks, long.MinValue);
        InFlight = new bool[v];
        PendingHost = new int[v];
        Array.Fill(PendingHost, -1);
        PendingWindows = new int[v];
        InFlightDestination = new int[v];
        Array.Fill(InFlightDestination, -1);
        HostDrained = new bool[h];
        VmPinned = new bool[v];
        AntiStart = new int[v];
        AntiCount = new int[v];
        AffinityLeader = new int[v];
        Array.Fill(AffinityLeader, -1);
        AffinityStart = new int[v];
        AffinityCount = new int[v];
    }

    /// <summary>The evaluation time; every age and cooldown is measured against it.</summary>
    public DateTimeOffset Now { get; set; }

    /// <summary>The number of hosts.</summary>
    public int HostCount => _hosts.Length;

    /// <summary>The number of VMs.</summary>
    public int VmCount => _vms.Length;

    /// <summary>The number of vantage points (distinct users).</summary>
    public int VantagePointCount => _vantagePoints.Length;

    /// <summary>The host at an index.</summary>
    public string HostName(int host) => _hosts[host];

    /// <summary>The VM at an index.</summary>
    public string VmName(int vm) => _vms[vm];

    /// <summary>The vantage point at an index.</summary>
    public string VantagePointName(int vantagePoint) => _vantagePoints[vantagePoint];

    /// <summary>The index of a host, or -1.</summary>
    public int IndexOfHost(string name) => name is not null && _hostIndex.TryGetValue(name, out var i) ? i : -1;

    /// <summary>The index of a VM, or -1.</summary>
    public int IndexOfVm(string name) => name is not null && _vmIndex.TryGetValue(name, out var i) ? i : -1;

    /// <summary>The index of a vantage point, or -1.</summary>
    public int IndexOfVantagePoint(string name) => name is not null && _vantageIndex.TryGetValue(name, out var i) ? i : -1;

    /// <summary>The VM's current host index, or -1 when unknown.</summary>
    public int PlacementOf(int vm) => CurrentHost[vm];

    /// <summary>Sets a host's availability and free capacity.</summary>
    /// <param name="host">The host index.</param>
    /// <param name="availability">Whether it answers, or is backed off.</param>
    /// <param name="freeMemoryBytes">Free memory in bytes.</param>
    /// <param name="freeVCpus">vCPUs it can still give to VMs.</param>
    public void SetHost(int host, HostAvailability availability, long freeMemoryBytes, int freeVCpus)
    {
        if (Availability[host] != availability)
        {
            AvailabilityVersion++;
        }

        Availability[host] = availability;
        FreeMemoryBytes[host] = freeMemoryBytes;
        FreeVCpus[host] = freeVCpus;
    }

    /// <summary>Sets the measured bandwidth for migrations from one host to another (bytes per second; NaN for unknown).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A host index is not one of the snapshot's hosts.</exception>
    public void SetBandwidth(int sourceHost, int destinationHost, double bytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sourceHost);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(sourceHost, _hosts.Length);
        ArgumentOutOfRangeException.ThrowIfNegative(destinationHost);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(destinationHost, _hosts.Length);
        ref var entry = ref Bandwidth[(sourceHost * _hosts.Length) + destinationHost];
        KnownBandwidthFrom[sourceHost] += (double.IsNaN(bytesPerSecond) ? 0 : 1) - (double.IsNaN(entry) ? 0 : 1);
        entry = bytesPerSecond;
    }

    /// <summary>Sets what a vantage point measured to a host.</summary>
    public void SetLatency(int vantagePoint, int host, in LatencySummary summary)
    {
        Cells[(vantagePoint * _hosts.Length) + host] = new LatencyCell(summary);
        RowVersion[vantagePoint]++;
    }

    /// <summary>Forgets what a vantage point measured to a host (no data: unreachable).</summary>
    public void ClearLatency(int vantagePoint, int host)
    {
        Cells[(vantagePoint * _hosts.Length) + host] = default;
        RowVersion[vantagePoint]++;
    }

    /// <summary>Sets where a VM runs and its size.</summary>
    /// <param name="vm">The VM index.</param>
    /// <param name="host">The host index, or -1 when unknown.</param>
    /// <param name="memoryBytes">The VM's memory in bytes.</param>
    /// <param name="vCpus">The VM's vCPUs.</param>
    /// <param name="dirtyRateBytesPerSecond">How fast the VM dirties memory, or NaN when unknown.</param>
    public void SetPlacement(int vm, int host, long memoryBytes, int vCpus, double dirtyRateBytesPerSecond = double.NaN)
    {
        if (CurrentHost[vm] != host || VmMemoryBytes[vm] != memoryBytes || VmVCpus[vm] != vCpus)
        {
            InputChanged(vm);
        }

        CurrentHost[vm] = host;
        VmMemoryBytes[vm] = memoryBytes;
        VmVCpus[vm] = vCpus;
        MinVmMemoryBytes = Math.Min(MinVmMemoryBytes, memoryBytes);
        MinVmVCpus = Math.Min(MinVmVCpus, vCpus);
        DirtyRate[vm] = dirtyRateBytesPerSecond;
    }

    private void InputChanged(int vm)
    {
        if (InputChangeCount == InputChanges.Length)
        {
            InputChangeRound++;
            InputChangeCount = 0;
        }

        InputChanges[InputChangeCount++] = vm;
    }

    /// <summary>Sets the VM's migration history: when it last moved, and whether it is moving now (and where to, when known: anti-affinity counts it there).</summary>
    /// <param name="vm">The VM index.</param>
    /// <param name="lastMoveAt">When it last moved, or <see langword="null"/>.</param>
    /// <param name="inFlight">Whether a migration of it is under way.</param>
    /// <param name="destinationHost">The host index a running migration goes to, or -1 when unknown or none.</param>
    public void SetMigrationHistory(int vm, DateTimeOffset? lastMoveAt, bool inFlight, int destinationHost = -1)
    {
        if (InFlight[vm] != inFlight)
        {
            InputChanged(vm);
        }

        LastMoveTicks[vm] = lastMoveAt?.UtcTicks ?? long.MinValue;
        InFlight[vm] = inFlight;
        InFlightDestination[vm] = inFlight ? destinationHost : -1;
    }

    /// <summary>The rules last given to <see cref="SetRules"/> (<see cref="PlacementRules.Empty"/> at first).</summary>
    public PlacementRules Rules { get; private set; } = PlacementRules.Empty;

    /// <summary>
    /// Sets the placement rules every policy must honour, compiled to this snapshot's indices (allocates;
    /// call when the rules change, not every window). Names the snapshot does not know are ignored:
    /// validate the rules against the fleet first (<see cref="PlacementRules.ValidateAndThrow"/>).
    /// </summary>
    /// <remarks>
    /// An affinity group's leader — the member a policy scores for the whole group and the others
    /// follow — is its first pinned member, or else its first member in VM order.
    /// </remarks>
    public void SetRules(PlacementRules rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        Rules = rules;
        var h = _hosts.Length;
        var v = _vms.Length;
        Array.Clear(HostDrained);
        Array.Clear(VmPinned);
        foreach (var name in rules.DrainedHosts)
        {
            if (IndexOfHost(name) is var i and >= 0)
            {
                HostDrained[i] = true;
            }
        }

        foreach (var name in rules.PinnedVms)
        {
            if (IndexOfVm(name) is var i and >= 0)
            {
                VmPinned[i] = true;
            }
        }

        Excluded = null;
        AnyExclusion = false;
        foreach (var (vmName, hosts) in rules.ExcludedHosts)
        {
            var vm = IndexOfVm(vmName);
            foreach (var hostName in hosts)
            {
                if (vm >= 0 && IndexOfHost(hostName) is var host and >= 0)
                {
                    Excluded ??= new bool[v * h];
                    Excluded[(vm * h) + host] = true;
                    AnyExclusion = true;
                }
            }
        }

        // Anti-affinity: each VM's partners over all its groups, ascending, without repeats.
        var partners = new SortedSet<int>[v];
        foreach (var group in rules.AntiAffinityGroups)
        {
            var members = Indices(group.Vms);
            foreach (var a in members)
            {
                foreach (var b in members)
                {
                    if (a != b)
                    {
                        (partners[a] ??= []).Add(b);
                    }
                }
            }
        }

        var flat = new List<int>();
        for (var i = 0; i < v; i++)
        {
            AntiStart[i] = flat.Count;
            AntiCount[i] = partners[i]?.Count ?? 0;
            if (partners[i] is { } p)
            {
                flat.AddRange(p);
            }
        }

        AntiPartner = [.. flat];

        // Affinity: groups joined through shared VMs; members ascending; the leader as documented.
        Array.Fill(AffinityLeader, -1);
        Array.Clear(AffinityStart);
        Array.Clear(AffinityCount);
        var components = new Dictionary<int, SortedSet<int>>();
        foreach (var (vmName, component) in PlacementRules.AffinityComponents(rules.AffinityGroups))
        {
            if (IndexOfVm(vmName) is var i and >= 0)
            {
                if (!components.TryGetValue(component, out var set))
                {
                    components[component] = set = [];
                }

                set.Add(i);
            }
        }

        flat.Clear();
        foreach (var members in components.Values)
        {
            if (members.Count < 2)
            {
                continue;
            }

            var leader = members.FirstOrDefault(m => VmPinned[m], members.Min);
            var start = flat.Count;
            flat.AddRange(members);
            foreach (var m in members)
            {
                AffinityLeader[m] = leader;
                AffinityStart[m] = start;
                AffinityCount[m] = members.Count;
            }
        }

        AffinityMember = [.. flat];
        HasRules = !rules.IsEmpty;

        List<int> Indices(IReadOnlyList<string> names)
        {
            var list = new List<int>(names.Count);
            foreach (var name in names)
            {
                if (IndexOfVm(name) is var i and >= 0 && !list.Contains(i))
                {
                    list.Add(i);
                }
            }

            return list;
        }
    }

    /// <summary>Whether the host is drained (it may receive no VM; its VMs should leave).</summary>
    public bool IsDrained(int host) => HostDrained[host];

    /// <summary>Whether the VM is pinned (it must not be moved).</summary>
    public bool IsPinned(int vm) => VmPinned[vm];

    /// <summary>Whether the host is excluded for the VM.</summary>
    public bool IsExcluded(int vm, int host) => Excluded is { } e && e[(vm * _hosts.Length) + host];

    /// <summary>The VMs that must not share a host with this one (over all its anti-affinity groups), ascending.</summary>
    public ReadOnlySpan<int> AntiAffinityPartnersOf(int vm) => AntiPartner.AsSpan(AntiStart[vm], AntiCount[vm]);

    /// <summary>The members of the VM's affinity group, itself included, ascending; empty when it has none.</summary>
    public ReadOnlySpan<int> AffinityMembersOf(int vm) => AffinityMember.AsSpan(AffinityStart[vm], AffinityCount[vm]);

    /// <summary>The leader of the VM's affinity group (scored for the group; the others follow it), or -1 when it has none.</summary>
    public int AffinityLeaderOf(int vm) => AffinityLeader[vm];

    /// <summary>Where a running migration of the VM goes, or -1 when unknown or none.</summary>
    public int InFlightDestinationOf(int vm) => InFlightDestination[vm];

    /// <summary>Sets the VM's confirmation state: the host a move is pending to (-1 for none) and for how many consecutive windows.</summary>
    public void SetConfirmation(int vm, int pendingHost, int windows)
    {
        PendingHost[vm] = pendingHost;
        PendingWindows[vm] = windows;
    }

    /// <summary>The VM's confirmation state.</summary>
    public (int PendingHost, int Windows) ConfirmationOf(int vm) => (PendingHost[vm], PendingWindows[vm]);

    // Read-only views for policies (IMigrationPolicy implementations in any assembly). None allocates.

    /// <summary>A host's availability: whether it answers and may receive VMs.</summary>
    public HostAvailability AvailabilityOf(int host) => Availability[host];

    /// <summary>A host's free memory in bytes (what it can still give to incoming VMs, before any reserve).</summary>
    public long FreeMemoryBytesOf(int host) => FreeMemoryBytes[host];

    /// <summary>The vCPUs a host can still give to VMs.</summary>
    public int FreeVCpusOf(int host) => FreeVCpus[host];

    /// <summary>The measured bandwidth for migrations from one host to another in bytes per second, or NaN when unknown.</summary>
    public double BandwidthOf(int sourceHost, int destinationHost) => Bandwidth[(sourceHost * _hosts.Length) + destinationHost];

    /// <summary>What a vantage point measured to a host (default, <see cref="LatencyCell.HasData"/> false, when nothing is known).</summary>
    public ref readonly LatencyCell LatencyOf(int vantagePoint, int host) => ref Cells[(vantagePoint * _hosts.Length) + host];

    /// <summary>What a vantage point measured to every host, indexed by host.</summary>
    public ReadOnlySpan<LatencyCell> LatencyRow(int vantagePoint) => Cells.AsSpan(vantagePoint * _hosts.Length, _hosts.Length);

    /// <summary>How old a vantage point's newest sample to a host is at <see cref="Now"/>; <see cref="TimeSpan.MaxValue"/> without data.</summary>
    public TimeSpan LatencyAgeOf(int vantagePoint, int host) => Cells[(vantagePoint * _hosts.Length) + host].AgeAt(Now);

    /// <summary>The VM's users' vantage point indices, in the order of its definition.</summary>
    public ReadOnlySpan<int> UserVantagePointsOf(int vm) => UserVantage.AsSpan(UserStart[vm], UserCount[vm]);

    /// <summary>The VM's users' weights, parallel to <see cref="UserVantagePointsOf"/>.</summary>
    public ReadOnlySpan<double> UserWeightsOf(int vm) => UserWeight.AsSpan(UserStart[vm], UserCount[vm]);

    /// <summary>The sum of the VM's users' weights.</summary>
    public double TotalWeightOf(int vm) => TotalWeight[vm];

    /// <summary>The VM's memory in bytes, as last set by <see cref="SetPlacement"/>.</summary>
    public long MemoryBytesOf(int vm) => VmMemoryBytes[vm];

    /// <summary>The VM's vCPUs.</summary>
    public int VCpusOf(int vm) => VmVCpus[vm];

    /// <summary>How fast the VM dirties memory in bytes per second, or NaN when unknown.</summary>
    public double DirtyRateOf(int vm) => DirtyRate[vm];

    /// <summary>When the VM last moved, or <see langword="null"/> when it never did.</summary>
    public DateTimeOffset? LastMoveOf(int vm) => LastMoveTicks[vm] == long.MinValue ? null : new DateTimeOffset(LastMoveTicks[vm], TimeSpan.Zero);

    /// <summary>Whether a migration of the VM is under way.</summary>
    public bool IsMigrating(int vm) => InFlight[vm];

    /// <summary>
    /// Carries the confirmation state an evaluation produced into this snapshot, so that the next
    /// evaluation continues counting consecutive windows. Call once after each evaluation.
    /// </summary>
    public void AdvanceConfirmations(DecisionBuffer results)
    {
        ArgumentNullException.ThrowIfNull(results);
        Array.Copy(results.NextPendingHost, PendingHost, PendingHost.Length);
        Array.Copy(results.NextPendingWindows, PendingWindows, PendingWindows.Length);
    }

    private static Dictionary<string, int> IndexNames(string[] names, string what)
    {
        var index = new Dictionary<string, int>(names.Length, StringComparer.Ordinal);
        for (var i = 0; i < names.Length; i++)
        {
            if (string.IsNullOrEmpty(names[i]))
            {
                throw new ArgumentException($"A {what} name is empty (index {i}).");
            }

            if (!index.TryAdd(names[i], i))
            {
                throw new ArgumentException($"The {what} name '{names[i]}' appears twice.");
            }
        }

        return index;
    }
}

/// <summary>
/// What one vantage point measured to one host, reduced to plain numbers: the view a policy reads
/// through <see cref="FleetSnapshot.LatencyOf"/> or <see cref="FleetSnapshot.LatencyRow"/>.
/// </summary>
public readonly struct LatencyCell
{
    private readonly long _newestTicks;

    /// <summary>Creates a cell from the summary of a vantage point's samples to a host.</summary>
    public LatencyCell(in LatencySummary summary)
    {
        HasData = summary.Sent > 0 && summary.NewestSampleAt is not null;
        Received = summary.Received;
        LossRate = summary.LossRate;
        _newestTicks = summary.NewestSampleAt?.UtcTicks ?? long.MinValue;
        MedianMs = summary.Median?.TotalMilliseconds ?? double.NaN;
        P95Ms = summary.P95?.TotalMilliseconds ?? double.NaN;
        MeanMs = summary.Mean?.TotalMilliseconds ?? double.NaN;
    }

    /// <summary>Whether any probe was sent and answered or lost (<see langword="false"/>: nothing known, the host counts as unreachable).</summary>
    public bool HasData { get; }

    /// <summary>How many probes of the window were answered.</summary>
    public int Received { get; }

    /// <summary>The share of the window's probes that were lost, in [0, 1].</summary>
    public double LossRate { get; }

    /// <summary>When the newest sample was taken, or <see langword="null"/> without data.</summary>
    public DateTimeOffset? NewestSampleAt => !HasData ? null : new DateTimeOffset(_newestTicks, TimeSpan.Zero);

    /// <summary>The median RTT of the window in ms, or NaN when nothing was answered.</summary>
    public double MedianMs { get; }

    /// <summary>The 95th percentile RTT in ms, or NaN.</summary>
    public double P95Ms { get; }

    /// <summary>The mean RTT in ms, or NaN.</summary>
    public double MeanMs { get; }

    /// <summary>UTC ticks of the newest sample, meaningful only with <see cref="HasData"/> (the hot path compares ticks).</summary>
    internal long NewestTicks => _newestTicks;

    /// <summary>The statistic a policy chose, in ms (NaN when nothing was answered).</summary>
    public double Value(LatencyStatistic statistic) => statistic switch
    {
        LatencyStatistic.P95 => P95Ms,
        LatencyStatistic.Mean => MeanMs,
        _ => MedianMs,
    };

    /// <summary>How old the newest sample is at <paramref name="now"/>; <see cref="TimeSpan.MaxValue"/> without data.</summary>
    public TimeSpan AgeAt(DateTimeOffset now) => !HasData ? TimeSpan.MaxValue : TimeSpan.FromTicks(now.UtcTicks - _newestTicks);
}
