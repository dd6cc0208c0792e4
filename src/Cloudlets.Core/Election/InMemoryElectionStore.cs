namespace Cloudlets.Core.Election;

/// <summary>
/// An in-process stand-in for an election store (what etcd is to <c>EtcdLeaderElection</c>), shared by
/// the <see cref="InMemoryLeaderElection"/> candidates of a unit test: leases with a TTL on the given
/// <see cref="TimeProvider"/>, one election key per election, revisions, and the faults a test needs
/// (a candidate cut off from the store, a revoked lease, a deleted key). For unit tests of logic
/// only: it is not distributed and proves nothing about a real store.
/// </summary>
/// <remarks>
/// Every candidate of a store runs under the store's one lock (so the simulation is deterministic
/// under a fake time provider and cannot deadlock); observers of the candidates' states are called
/// under it and must not block.
/// </remarks>
public sealed class InMemoryElectionStore : IDisposable
{
    private readonly TimeProvider _time;
    private readonly Dictionary<long, LeaseEntry> _leases = [];
    private readonly Dictionary<string, Holder> _holders = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unreachable = new(StringComparer.Ordinal);
    private readonly ITimer _expiry;
    private long _revision = 1;
    private long _nextLease = 0x1000;
    private bool _disposed;

    /// <summary>Creates an empty store whose leases expire on <paramref name="timeProvider"/>'s clock.</summary>
    public InMemoryElectionStore(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        _time = timeProvider;
        _expiry = timeProvider.CreateTimer(_ => ExpireDue(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The store's clock.</summary>
    public TimeProvider TimeProvider => _time;

    /// <summary>The current revision (raised by every change of an election key).</summary>
    public long Revision
    {
        get
        {
            lock (Gate)
            {
                return _revision;
            }
        }
    }

    internal Lock Gate { get; } = new();

    /// <summary>Raised under <see cref="Gate"/> after an election key was released: the election and the lease that held it.</summary>
    internal event Action<string, long, LeadershipReason>? KeyReleased;

    /// <summary>The candidate id holding <paramref name="election"/>, or <see langword="null"/>.</summary>
    public string? LeaderOf(string election)
    {
        lock (Gate)
        {
            return _holders.TryGetValue(election, out var holder) ? holder.CandidateId : null;
        }
    }

    /// <summary>Simulates a partition: while unreachable, every call of <paramref name="candidateId"/> to the store fails (its lease then expires).</summary>
    public void SetReachable(string candidateId, bool reachable)
    {
        lock (Gate)
        {
            if (reachable)
            {
                _unreachable.Remove(candidateId);
            }
            else
            {
                _unreachable.Add(candidateId);
            }
        }
    }

    /// <summary>Revokes a lease at once (what <c>etcdctl lease revoke</c> does): the key it holds is released.</summary>
    /// <returns>Whether the lease existed.</returns>
    public bool RevokeLease(long leaseId)
    {
        lock (Gate)
        {
            return RemoveLease(leaseId, LeadershipReason.LeaseLost);
        }
    }

    /// <summary>Deletes an election key (what <c>etcdctl del</c> does); the holder's lease stays alive.</summary>
    /// <returns>Whether the key existed.</returns>
    public bool DeleteKey(string election)
    {
        lock (Gate)
        {
            if (!_holders.Remove(election, out var holder))
            {
                return false;
            }

            _revision++;
            KeyReleased?.Invoke(election, holder.LeaseId, LeadershipReason.KeyLost);
            return true;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (Gate)
        {
            _disposed = true;
            _expiry.Dispose();
        }
    }

    internal long Grant(string candidateId, TimeSpan ttl)
    {
        ThrowIfUnreachable(candidateId);
        var id = _nextLease++;
        _leases[id] = new LeaseEntry(candidateId, ttl, _time.GetUtcNow() + ttl);
        ArmExpiry();
        return id;
    }

    internal bool KeepAlive(string candidateId, long leaseId)
    {
        ThrowIfUnreachable(candidateId);
        if (!_leases.TryGetValue(leaseId, out var lease) || lease.ExpiresAt <= _time.GetUtcNow())
        {
            return false;
        }

        _leases[leaseId] = lease with { ExpiresAt = _time.GetUtcNow() + lease.Ttl };
        ArmExpiry();
        return true;
    }

    /// <summary>Takes the key if it is free (the create-revision-is-zero transaction); returns the holder after the attempt.</summary>
    internal (bool Acquired, string? LeaderId, long? Revision) TryAcquire(string election, string candidateId, long leaseId)
    {
        ThrowIfUnreachable(candidateId);
        if (_holders.TryGetValue(election, out var holder))
        {
            return (holder.LeaseId == leaseId, holder.CandidateId, holder.CreateRevision);
        }

        if (!_leases.ContainsKey(leaseId))
        {
            return (false, null, null);
        }

        var revision = ++_revision;
        _holders[election] = new Holder(candidateId, leaseId, revision);
        return (true, candidateId, revision);
    }

    /// <summary>The fencing transaction: whether the key is held by this lease at this revision.</summary>
    internal bool Confirm(string election, string candidateId, long leaseId, long revision)
    {
        ThrowIfUnreachable(candidateId);
        return _holders.TryGetValue(election, out var holder) && holder.LeaseId == leaseId && holder.CreateRevision == revision;
    }

    internal bool IsLeaseAlive(long leaseId) => _leases.ContainsKey(leaseId);

    internal void Revoke(string candidateId, long leaseId)
    {
        ThrowIfUnreachable(candidateId);
        RemoveLease(leaseId, LeadershipReason.Resigned);
    }

    private void ThrowIfUnreachable(string candidateId)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_unreachable.Contains(candidateId))
        {
            throw new TimeoutException($"The in-memory store is unreachable for candidate '{candidateId}' (simulated partition).");
        }
    }

    private bool RemoveLease(long leaseId, LeadershipReason reason)
    {
        if (!_leases.Remove(leaseId))
        {
            return false;
        }

        var released = _holders.Where(h => h.Value.LeaseId == leaseId).Select(h => h.Key).ToArray();
        foreach (var election in released)
        {
            _holders.Remove(election);
            _revision++;
        }

        foreach (var election in released)
        {
            KeyReleased?.Invoke(election, leaseId, reason);
        }

        ArmExpiry();
        return true;
    }

    private void ExpireDue()
    {
        lock (Gate)
        {
            if (_disposed)
            {
                return;
            }

            var now = _time.GetUtcNow();
            foreach (var id in _leases.Where(l => l.Value.ExpiresAt <= now).Select(l => l.Key).ToArray())
            {
                RemoveLease(id, LeadershipReason.LeaseLost);
            }

            ArmExpiry();
        }
    }

    private void ArmExpiry()
    {
        if (_disposed)
        {
            return;
        }

        if (_leases.Count == 0)
        {
            _expiry.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        var due = _leases.Values.Min(l => l.ExpiresAt) - _time.GetUtcNow();
        _expiry.Change(due < TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
    }

    private sealed record LeaseEntry(string CandidateId, TimeSpan Ttl, DateTimeOffset ExpiresAt);

    private sealed record Holder(string CandidateId, long LeaseId, long CreateRevision);
}
